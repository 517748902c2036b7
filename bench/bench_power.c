/* bench_power: a simulated week of training-job arrivals against 100 racks
 * with realistic feeds, phases, branch breakers and row busways (issue 20),
 * admitted two ways in the same run from the same arrivals:
 *
 *   model   the aggregator's own admission (linked in: policy, gate with
 *           its power and topology checks, reservations, best-fit packing,
 *           the wait queue, energy), fed every tick with frames from the
 *           simulated PDUs as the consumer applies them, in simulated time;
 *   before  the previous admission, re-implemented here from its formula
 *           (git show 464c03b^:aggregator/gate.c): headroom = breaker x
 *           derating - measured draw - every reservation's kW (running ones
 *           counted twice) - margin, worst fit (the most headroom), one
 *           number per rack (no feeds, phases, branches or rows); given the
 *           same wait queue so that waits compare.
 *
 * The floor: 10 rows of 10 racks, pools of two rows. A rack has two PDUs
 * (feeds A and B, N+N): 3-phase 230/400 V, 63 A per phase (43.5 kW a
 * feed), 6 branch breakers of 32 A (two a phase), derating 0.8: 34.8 kW a
 * rack. A row's busway: 400 A at 400 V (277 kW) x 0.8 = 221.7 kW for 348
 * kW of racks (oversubscribed 1.57x, as rows usually are).
 *
 * Jobs (one reservation on one rack each): Poisson arrivals at an offered
 * reserved load of --load x the floor's usable capacity (rows), each job's
 * kW a bounded Pareto on [4, 34] kW (alpha 1.1), its duration lognormal
 * (median 2 h, sigma 1.5, 5 min .. 3 days), waiting at most 30 min. The
 * shapes follow published GPU-cluster traces (most jobs small and short, a
 * heavy tail of large, long ones: Jeon et al., "Analysis of large-scale
 * multi-tenant GPU clusters for DNN training workloads", USENIX ATC 2019,
 * Microsoft Philly; Hu et al., "Characterization and prediction of deep
 * learning workloads in large-scale GPU datacenters", SC 2021, SenseTime
 * Helios); the parameters are ours, not fitted to either trace. A running
 * job draws 75..95 % of its kW (per job) with +-5 % noise per tick; every
 * rack draws 1 kW of its own (switches, fans) that no reservation holds.
 * Phases carry a fixed per-rack imbalance (up to +-6 %), branches +-10 %.
 *
 * Figures, per model: jobs admitted, refused (wait ran out), admitted kW.h
 * reserved and kWh drawn, stranded power (at ticks where a request waits,
 * in the pools where one waits: usable capacity not committed, every watt
 * once, as a % of those pools' usable capacity: free but unusable, the
 * time average over those ticks; wait_ticks: the share of ticks with a
 * request waiting), overloads (circuit-ticks over rating x
 * derating in the simulated draw: a phase or branch of one feed carrying
 * both feeds' load (N+N), a feed carrying the rack, a row busway), wait p50
 * and p95 of admitted jobs.
 *
 *   bench_power [--days 7] [--load 1.0] [--seed 1] [--tick 300]
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aggregator.h"
#include "gate.h"
#include "ledger.h"
#include "reservations.h"
#include "store.h"

#define ROWS 10
#define PER_ROW 10
#define NRACKS (ROWS * PER_ROW)
#define POOL_ROWS 2
#define VOLTS 230.0
#define PHASE_A 63.0
#define BRANCH_A 32.0
#define DERATE 0.8
#define FEED_KW (3 * VOLTS * PHASE_A / 1000.0) /* 43.47 kW */
#define RACK_KW (FEED_KW * DERATE)             /* 34.78 kW usable (N+N) */
#define ROW_KW (sqrt(3) * 400 * 400 / 1000.0)  /* 277.1 kW busway */
#define ROW_USABLE (ROW_KW * DERATE)           /* 221.7 kW */
#define BASE_KW 1.0                            /* per rack, held by no reservation */
#define MARGIN_KW 0.5                          /* power_margin_kw of both models */
#define PACK_MARGIN_KW 2.0                     /* reservations.pack_margin_kw */
#define WAIT_MS (30LL * 60 * 1000)
#define T0 1796515200000LL /* 2026-12-06T00:00:00Z */

struct opts {
  double days, load;
  unsigned seed;
  int tick_s;
};

struct job {
  double kw, util;
  int64_t arrive, dur;
  int pool;
};

enum jstate { J_FUTURE, J_WAITING, J_RUNNING, J_DONE, J_REFUSED };

struct model {
  const char *name;
  enum jstate *st;
  int *rack;
  int64_t *start, *end;
  int64_t *offered; /* the tick the job was first offered at (arrivals are seen once a tick) */
  size_t *queue, nqueue;
  double *draw;      /* kW per rack this tick */
  double *waits_min; /* of admitted jobs */
  size_t nwaits, admitted, refused;
  double kwh_reserved, kwh_drawn, stranded_sum;
  size_t stranded_ticks, ticks;
  size_t over_phase, over_branch, over_feed, over_row;
};

/* ---- random numbers (one stream for the arrivals, a hash for noise) ---- */

static uint64_t rng_state;
static double uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) { return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform()); }
/* Deterministic noise in [-1, 1] for (job, tick): the same in both models. */
static double noise(size_t job, long tick) {
  uint64_t h = (uint64_t)job * 0x9E3779B97F4A7C15ULL ^ (uint64_t)tick * 0xC2B2AE3D27D4EB4FULL;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 29;
  return (double)(h >> 11) / 4503599627370496.0 - 1.0;
}

/* Bounded Pareto on [lo, hi] with shape a (inverse transform). */
static double bounded_pareto(double lo, double hi, double a) {
  double u = uniform(), la = pow(lo, a), ha = pow(hi, a);
  return pow(-(u * ha - u * la - ha) / (ha * la), -1.0 / a);
}

static double pareto_mean(double lo, double hi, double a) {
  return pow(lo, a) / (1 - pow(lo / hi, a)) * (a / (a - 1)) *
         (1 / pow(lo, a - 1) - 1 / pow(hi, a - 1));
}

/* ---- the floor ---- */

static double phase_share[NRACKS][3], branch_split[NRACKS];

static void floor_init(void) {
  for (int r = 0; r < NRACKS; r++) {
    double sum = 0;
    for (int p = 0; p < 3; p++)
      sum += phase_share[r][p] = 1 + 0.06 * (2 * uniform() - 1);
    for (int p = 0; p < 3; p++)
      phase_share[r][p] /= sum;
    branch_split[r] = 0.5 + 0.1 * (2 * uniform() - 1);
  }
}

/* Rack r's phase p current (A, both feeds: what one feed carries under
 * N+N) and branch b's (b = 2p, 2p+1). */
static double phase_amps(int r, int p, double kw) { return kw * 1000 * phase_share[r][p] / VOLTS; }
static double branch_amps(int r, int b, double kw) {
  double s = b % 2 ? 1 - branch_split[r] : branch_split[r];
  return phase_amps(r, b / 2, kw) * s;
}

static size_t njobs;
static struct job *jobs;

static void make_jobs(const struct opts *o) {
  double mean_kw = pareto_mean(4, 34, 1.1);
  double mean_h = 0;
  /* the mean duration, capped: by sampling (the cap makes it not closed form) */
  for (int i = 0; i < 200000; i++) {
    double h = 2 * exp(1.5 * normal());
    mean_h += fmin(fmax(h, 5 / 60.0), 72);
  }
  mean_h /= 200000;
  double usable = ROWS * ROW_USABLE;
  double lambda = o->load * usable / (mean_kw * mean_h); /* jobs per hour */
  size_t cap = (size_t)(lambda * o->days * 24 * 1.5) + 16;
  jobs = calloc(cap, sizeof(*jobs));
  double t_h = 0;
  while (jobs != NULL && njobs < cap) {
    t_h += -log(uniform()) / lambda;
    if (t_h >= o->days * 24)
      break;
    struct job *j = &jobs[njobs++];
    j->arrive = T0 + (int64_t)(t_h * 3.6e6);
    j->kw = round(bounded_pareto(4, 34, 1.1) * 10) / 10;
    double h = fmin(fmax(2 * exp(1.5 * normal()), 5 / 60.0), 72);
    j->dur = (int64_t)(h * 3.6e6);
    j->util = 0.75 + 0.2 * uniform();
    j->pool = (int)(uniform() * (ROWS / POOL_ROWS));
  }
  printf("jobs: %zu in %.1f days (%.1f an hour), mean %.1f kW, mean %.2f h; offered %.0f kW "
         "reserved = %.2f x the rows' usable %.0f kW\n",
         njobs, o->days, lambda, mean_kw, mean_h, lambda * mean_kw * mean_h, o->load, usable);
}

/* This tick's draw of job i (kW). */
static double job_draw(size_t i, long tick) {
  double u = jobs[i].util * (1 + 0.05 * noise(i, tick));
  return jobs[i].kw * (u > 1 ? 1 : u);
}

static void draws(struct model *m, long tick) {
  for (int r = 0; r < NRACKS; r++)
    m->draw[r] = BASE_KW;
  for (size_t i = 0; i < njobs; i++)
    if (m->st[i] == J_RUNNING)
      m->draw[m->rack[i]] += job_draw(i, tick);
}

/* Overloads of the simulated draw: circuit-ticks over rating x derating. */
static void overloads(struct model *m) {
  for (int row = 0; row < ROWS; row++) {
    double sum = 0;
    for (int k = 0; k < PER_ROW; k++) {
      int r = row * PER_ROW + k;
      double kw = m->draw[r];
      sum += kw;
      m->over_feed += kw > FEED_KW * DERATE + 1e-9;
      for (int p = 0; p < 3; p++)
        m->over_phase += phase_amps(r, p, kw) > PHASE_A * DERATE + 1e-9;
      for (int b = 0; b < 6; b++)
        m->over_branch += branch_amps(r, b, kw) > BRANCH_A * DERATE + 1e-9;
    }
    m->over_row += sum > ROW_USABLE + 1e-9;
  }
}

/* Stranded power while requests wait: in the pools where a request waits,
 * usable capacity not committed (every watt once: each running job at
 * max(kW, its draw), plus the racks' own draw), free but unused, as a
 * share of those pools' usable capacity (racks within their rows). */
static void stranded(struct model *m, long tick) {
  bool waiting[ROWS / POOL_ROWS] = {false};
  for (size_t q = 0; q < m->nqueue; q++)
    waiting[jobs[m->queue[q]].pool] = true;
  double committed[NRACKS];
  for (int r = 0; r < NRACKS; r++)
    committed[r] = BASE_KW;
  for (size_t i = 0; i < njobs; i++)
    if (m->st[i] == J_RUNNING)
      committed[m->rack[i]] += fmax(jobs[i].kw, job_draw(i, tick));
  double free_kw = 0, usable = 0;
  for (int row = 0; row < ROWS; row++) {
    if (!waiting[row / POOL_ROWS])
      continue;
    double racks_free = 0, row_committed = 0;
    for (int k = 0; k < PER_ROW; k++) {
      racks_free += fmax(0, RACK_KW - committed[row * PER_ROW + k]);
      row_committed += committed[row * PER_ROW + k];
    }
    free_kw += fmax(0, fmin(racks_free, ROW_USABLE - row_committed));
    usable += ROW_USABLE;
  }
  if (usable > 0) {
    m->stranded_sum += free_kw / usable;
    m->stranded_ticks++;
  }
}

static void admitted(struct model *m, size_t i, int rack, int64_t at) {
  m->st[i] = J_RUNNING;
  m->rack[i] = rack;
  m->start[i] = at;
  m->end[i] = at + jobs[i].dur;
  m->waits_min[m->nwaits++] = (double)(at - m->offered[i]) / 60000.0;
  m->admitted++;
}

/* ---- before: the previous admission ---- */

static bool before_place(struct model *m, size_t i, long tick) {
  (void)tick;
  double reserved[NRACKS] = {0};
  for (size_t k = 0; k < njobs; k++)
    if (m->st[k] == J_RUNNING)
      reserved[m->rack[k]] += jobs[k].kw;
  int best = -1;
  double best_h = -INFINITY;
  for (int k = 0; k < POOL_ROWS * PER_ROW; k++) {
    int r = jobs[i].pool * POOL_ROWS * PER_ROW + k;
    double h = RACK_KW - m->draw[r] - reserved[r] - MARGIN_KW; /* running ones twice */
    if (h > best_h) {
      best_h = h;
      best = r;
    }
  }
  return best >= 0 && best_h >= jobs[i].kw ? (m->rack[i] = best, true) : false;
}

static void queue_add(struct model *m, size_t i) {
  m->st[i] = J_WAITING;
  m->queue[m->nqueue++] = i;
}

static void before_tick(struct model *m, long tick, int64_t now, size_t *next) {
  for (size_t i = 0; i < njobs; i++)
    if (m->st[i] == J_RUNNING && m->end[i] <= now)
      m->st[i] = J_DONE;
  size_t kept = 0;
  for (size_t q = 0; q < m->nqueue; q++) { /* oldest first, as the aggregator's queue */
    size_t i = m->queue[q];
    if (m->offered[i] + WAIT_MS <= now) {
      m->st[i] = J_REFUSED;
      m->refused++;
    } else if (before_place(m, i, tick)) {
      admitted(m, i, m->rack[i], now);
    } else {
      m->queue[kept++] = i;
    }
  }
  m->nqueue = kept;
  for (; *next < njobs && jobs[*next].arrive <= now; (*next)++)
    if ((m->offered[*next] = now, before_place(m, *next, tick)))
      admitted(m, *next, m->rack[*next], now);
    else
      queue_add(m, *next);
}

/* ---- model: the aggregator's admission ---- */

struct frame_builder {
  Rackpulse__V1__SeriesDef d[64], *dp[64];
  Rackpulse__V1__Label lab[64], *labp[64];
  char lval[64][24];
  uint32_t ids[64];
  int64_t scaled[64];
  size_t n;
};

static void fb_add(struct frame_builder *f, const char *name, const char *unit, const char *device,
                   const char *lkey, const char *lval, double v, int decimals) {
  if (f->n == 64)
    return;
  size_t i = f->n++;
  f->d[i] = (Rackpulse__V1__SeriesDef)RACKPULSE__V1__SERIES_DEF__INIT;
  f->d[i].id = (uint32_t)i;
  f->d[i].name = (char *)name;
  f->d[i].unit = (char *)unit;
  f->d[i].device = (char *)device;
  f->d[i].decimals = decimals;
  snprintf(f->lval[i], sizeof(f->lval[i]), "%s", lval);
  f->lab[i] = (Rackpulse__V1__Label)RACKPULSE__V1__LABEL__INIT;
  f->lab[i].key = (char *)lkey;
  f->lab[i].value = f->lval[i];
  f->labp[i] = &f->lab[i];
  f->d[i].n_labels = 1;
  f->d[i].labels = &f->labp[i];
  f->dp[i] = &f->d[i];
  f->ids[i] = (uint32_t)i;
  f->scaled[i] = llround(v * pow(10, decimals));
}

/* What the rack's two PDUs report: each feed carries half the rack. */
static void rack_frame(struct frame_builder *f, const struct model *m, int r, long tick) {
  static const char *const pdus[2] = {"pdu-a", "pdu-b"};
  static const char *const num[6] = {"1", "2", "3", "4", "5", "6"};
  f->n = 0;
  double kw = m->draw[r];
  for (int k = 0; k < 2; k++) {
    fb_add(f, "pdu.power", "W", pdus[k], "inlet", "1", kw * 500, 0);
    for (int p = 0; p < 3; p++)
      fb_add(f, "pdu.phase.current", "A", pdus[k], "phase", num[p], phase_amps(r, p, kw) / 2, 2);
    for (int b = 0; b < 6; b++)
      fb_add(f, "pdu.breaker.current", "A", pdus[k], "breaker", num[b], branch_amps(r, b, kw) / 2,
             2);
  }
  for (size_t i = 0; i < njobs && f->n + 2 <= 64; i++) {
    if (m->st[i] != J_RUNNING || m->rack[i] != r)
      continue;
    char label[24];
    snprintf(label, sizeof(label), "j%zu", i);
    for (int k = 0; k < 2; k++)
      fb_add(f, "pdu.outlet.power", "W", pdus[k], "outlet", label, job_draw(i, tick) * 500, 0);
  }
}

/* A rack's dictionary changes only when its set of running jobs does (as
 * an agent's does only when its devices do): the version is bumped then. */
static uint32_t dict_version(int r, const struct model *m) {
  static uint64_t sig[NRACKS];
  static uint32_t ver[NRACKS];
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < njobs; i++)
    if (m->st[i] == J_RUNNING && m->rack[i] == r)
      h = (h ^ i) * 1099511628211ULL;
  if (ver[r] == 0 || h != sig[r]) {
    sig[r] = h;
    ver[r]++;
  }
  return ver[r];
}

static int write_frames(struct rp_aggregator *a, const struct model *m, long tick, int64_t now) {
  static int64_t offset;
  static struct frame_builder f;
  struct store_batch *b;
  char err[256];
  if (store_batch_begin(a->store, &b, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_power: store: %s\n", err);
    return -1;
  }
  store_batch_set_received(b, now);
  for (int r = 0; r < NRACKS; r++) {
    char rack[16], agent[24];
    snprintf(rack, sizeof(rack), "r%03d", r);
    snprintf(agent, sizeof(agent), "agent-%s", rack);
    rack_frame(&f, m, r, tick);
    Rackpulse__V1__Frame fr = RACKPULSE__V1__FRAME__INIT;
    Rackpulse__V1__SampleBlock blk = RACKPULSE__V1__SAMPLE_BLOCK__INIT, *bp = &blk;
    fr.schema_version = 1;
    fr.agent_id = agent;
    fr.rack_id = rack;
    fr.seq = (uint64_t)tick + 1;
    fr.ts_ms = now;
    fr.interval_ms = 300000;
    fr.dictionary_version = dict_version(r, m);
    fr.n_dictionary = f.n;
    fr.dictionary = f.dp;
    blk.ts_ms = now;
    blk.n_series = f.n;
    blk.series = f.ids;
    blk.n_scaled = f.n;
    blk.scaled = f.scaled;
    fr.n_samples = 1;
    fr.samples = &bp;
    enum store_outcome out;
    if (store_batch_apply(b, &fr, "rackpulse.frames", 0, offset++, &out, err, sizeof(err)) != 0) {
      fprintf(stderr, "bench_power: apply: %s\n", err);
      store_batch_abort(b);
      return -1;
    }
  }
  return store_batch_commit(b, err, sizeof(err));
}

static int rack_index(const char *rack) { return rack && rack[0] == 'r' ? atoi(rack + 1) : -1; }

/* Job states from the ledger after the upkeep pass; ended records go. */
static void sync_model(struct rp_aggregator *a, struct model *m) {
  json_t *all = rp_ledger_res_list(a->ledger);
  size_t k;
  json_t *r;
  json_array_foreach(all, k, r) {
    const char *owner = json_string_value(json_object_get(r, "owner"));
    const char *state = json_string_value(json_object_get(r, "state"));
    const char *id = json_string_value(json_object_get(r, "id"));
    if (owner == NULL || state == NULL || id == NULL || owner[0] != 'j')
      continue;
    size_t i = (size_t)strtoul(owner + 1, NULL, 10);
    if (i >= njobs)
      continue;
    if (strcmp(state, "active") == 0) {
      if (m->st[i] == J_WAITING)
        admitted(m, i, rack_index(json_string_value(json_object_get(r, "rack"))),
                 json_integer_value(json_object_get(r, "admitted_ms")));
      continue;
    }
    if (strcmp(state, "waiting") == 0)
      continue;
    if (strcmp(state, "refused") == 0) {
      m->st[i] = J_REFUSED;
      m->refused++;
    } else {
      m->st[i] = J_DONE;
    }
    rp_ledger_res_del(a->ledger, id);
  }
  json_decref(all);
  size_t kept = 0;
  for (size_t q = 0; q < m->nqueue; q++)
    if (m->st[m->queue[q]] == J_WAITING)
      m->queue[kept++] = m->queue[q];
  m->nqueue = kept;
}

static void model_arrival(struct rp_aggregator *a, struct model *m, size_t i, int64_t now) {
  char pool[16], owner[24];
  snprintf(pool, sizeof(pool), "p%d", jobs[i].pool);
  snprintf(owner, sizeof(owner), "j%zu", i);
  json_t *body =
      json_pack("{s:s, s:f, s:s, s:I, s:s, s:[s]}", "pool", pool, "kw", jobs[i].kw, "owner", owner,
                "end", (json_int_t)(now + jobs[i].dur), "wait", "30m", "outlets", owner);
  int status = 0;
  json_t *r = rp_reservation_create(a, body, now, &status);
  if (status == 201) {
    admitted(m, i, rack_index(json_string_value(json_object_get(r, "rack"))), now);
  } else if (status == 202) {
    queue_add(m, i);
  } else {
    m->st[i] = J_REFUSED;
    m->refused++;
  }
  json_decref(r);
  json_decref(body);
}

static int model_tick(struct rp_aggregator *a, struct model *m, long tick, int64_t now,
                      size_t *next) {
  if (write_frames(a, m, tick, now) != 0)
    return -1;
  rp_reservations_expire(a, now);
  sync_model(a, m);
  for (; *next < njobs && jobs[*next].arrive <= now; (*next)++) {
    m->offered[*next] = now;
    model_arrival(a, m, *next, now);
  }
  return 0;
}

static int write_policy(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fprintf(f,
          "version: bench-power-1\n"
          "defaults:\n"
          "  max_staleness: 15m\n"
          "  clock_skew: 1h\n"
          "  power_margin_kw: %g\n"
          "  supply_temp: {enabled: false}\n"
          "  alarms: {enabled: false}\n"
          "  power: {enabled: true, series: pdu.power, stat: latest, across: sum}\n"
          "rows:\n",
          MARGIN_KW);
  for (int row = 0; row < ROWS; row++)
    fprintf(f, "  row%02d: {limit_kw: %.3f, derating: %g}\n", row, ROW_KW, DERATE);
  fprintf(f, "racks:\n");
  for (int r = 0; r < NRACKS; r++)
    fprintf(f,
            "  - {id: r%03d, pool: p%d, row: row%02d, breaker_kw: %.3f, derating: %g, feed_a: "
            "pdu-a, feed_b: pdu-b, feed_kw: %.3f, phase_amps: %g, branch_amps: %g, volts: %g}\n",
            r, r / (POOL_ROWS * PER_ROW), r / PER_ROW, FEED_KW, DERATE, FEED_KW, PHASE_A, BRANCH_A,
            VOLTS);
  return fclose(f);
}

static int open_aggregator(struct rp_aggregator *a, char *dir) {
  char path[160], err[512];
  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(path, sizeof(path), "%s/policy.yaml", dir);
  struct rp_policy *p;
  if (write_policy(path) != 0 || rp_policy_load(path, &p, err, sizeof(err)) != 0 ||
      rp_gate_new(p, &a->gate) != 0) {
    fprintf(stderr, "bench_power: policy: %s\n", err);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/store", dir);
  if (mkdir(path, 0700) != 0 || store_open(path, 1u << 30, &a->store, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_power: store: %s\n", err);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/ledger", dir);
  struct rp_ledger_limits lim = {
      .map_size = 256u << 20, .audit_max_age_ms = 30LL * 86400000, .audit_max_entries = 1000000};
  if (rp_ledger_open(path, &lim, &a->ledger, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_power: ledger: %s\n", err);
    return -1;
  }
  a->cfg.reservations.unused_grace_ms = 86400000;
  a->cfg.reservations.idle_window_ms = 86400000;
  a->cfg.reservations.idle_threshold = 0.05;
  a->cfg.reservations.pack_margin_kw = PACK_MARGIN_KW;
  return 0;
}

static int model_new(struct model *m, const char *name) {
  m->name = name;
  m->st = calloc(njobs + 1, sizeof(*m->st));
  m->rack = calloc(njobs + 1, sizeof(*m->rack));
  m->start = calloc(njobs + 1, sizeof(*m->start));
  m->end = calloc(njobs + 1, sizeof(*m->end));
  m->offered = calloc(njobs + 1, sizeof(*m->offered));
  m->queue = calloc(njobs + 1, sizeof(*m->queue));
  m->waits_min = calloc(njobs + 1, sizeof(*m->waits_min));
  m->draw = calloc(NRACKS, sizeof(*m->draw));
  return m->st && m->rack && m->start && m->end && m->offered && m->queue && m->waits_min && m->draw
             ? 0
             : -1;
}

static void model_free(struct model *m) {
  free(m->st);
  free(m->rack);
  free(m->start);
  free(m->end);
  free(m->offered);
  free(m->queue);
  free(m->waits_min);
  free(m->draw);
}

/* Per tick, before admission: the draw, its overloads, energy. */
static void measure(struct model *m, long tick, double tick_h) {
  draws(m, tick);
  overloads(m);
  for (size_t i = 0; i < njobs; i++)
    if (m->st[i] == J_RUNNING) {
      m->kwh_reserved += jobs[i].kw * tick_h;
      m->kwh_drawn += job_draw(i, tick) * tick_h;
    }
  m->ticks++;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) {
  return n ? v[(size_t)fmin((double)n - 1, floor(p * (double)n))] : NAN;
}

static void report(struct model *m) {
  qsort(m->waits_min, m->nwaits, sizeof(double), cmp_double);
  printf("%-7s %8zu %7zu %12.0f %11.0f %9.2f %%  %8.1f %%  %5zu %6zu %4zu %4zu  %7.1f %7.1f\n",
         m->name, m->admitted, m->refused, m->kwh_reserved, m->kwh_drawn,
         m->stranded_ticks ? 100 * m->stranded_sum / (double)m->stranded_ticks : 0.0,
         100.0 * (double)m->stranded_ticks / (double)(m->ticks ? m->ticks : 1), m->over_phase,
         m->over_branch, m->over_feed, m->over_row, pct(m->waits_min, m->nwaits, 0.5),
         pct(m->waits_min, m->nwaits, 0.95));
}

int main(int argc, char **argv) {
  struct opts o = {.days = 7, .load = 1.0, .seed = 1, .tick_s = 300};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--days") == 0)
      o.days = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--load") == 0)
      o.load = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--seed") == 0)
      o.seed = (unsigned)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--tick") == 0)
      o.tick_s = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: bench_power [--days D] [--load X] [--seed N] [--tick S]\n");
      return 2;
    }
  }
  if (argc % 2 == 0 || o.days <= 0 || o.load <= 0 || o.tick_s < 10) {
    fprintf(stderr, "usage: bench_power [--days D] [--load X] [--seed N] [--tick S]\n");
    return 2;
  }
  rng_state = 0x2545F4914F6CDD1DULL ^ o.seed;
  floor_init();
  make_jobs(&o);
  struct rp_aggregator a = {0};
  char dir[] = "/dev/shm/rp_bench_power_XXXXXX";
  struct model mod = {0}, bef = {0};
  int rc = 1;
  if (jobs == NULL || model_new(&mod, "model") != 0 || model_new(&bef, "before") != 0 ||
      open_aggregator(&a, dir) != 0)
    goto cleanup;
  struct timespec w0, w1;
  clock_gettime(CLOCK_MONOTONIC, &w0);
  long ticks = (long)(o.days * 86400 / o.tick_s);
  double tick_h = o.tick_s / 3600.0;
  size_t next_mod = 0, next_bef = 0;
  for (long t = 1; t <= ticks; t++) {
    int64_t now = T0 + (int64_t)t * o.tick_s * 1000;
    measure(&mod, t, tick_h);
    measure(&bef, t, tick_h);
    if (model_tick(&a, &mod, t, now, &next_mod) != 0)
      goto cleanup;
    before_tick(&bef, t, now, &next_bef);
    stranded(&mod, t);
    stranded(&bef, t);
    if (t % (86400 / o.tick_s) == 0)
      fprintf(stderr, "bench_power: day %ld: model %zu admitted, %zu waiting; before %zu, %zu\n",
              t / (86400 / o.tick_s), mod.admitted, mod.nqueue, bef.admitted, bef.nqueue);
  }
  clock_gettime(CLOCK_MONOTONIC, &w1);
  printf("floor: %d racks (%d rows, pools of %d), rack %.2f kW usable (feed %.2f kW N+N, "
         "phases %g A, branches %g A, x %.1f), row busway %.1f kW usable; tick %d s; "
         "pack_margin_kw %g, power_margin_kw %g\n",
         NRACKS, ROWS, POOL_ROWS * PER_ROW, RACK_KW, FEED_KW, PHASE_A, BRANCH_A, DERATE, ROW_USABLE,
         o.tick_s, PACK_MARGIN_KW, MARGIN_KW);
  printf("%-7s %8s %7s %12s %11s %11s %10s  %5s %6s %4s %4s  %7s %7s\n", "", "admitted", "refused",
         "reserved_kWh", "drawn_kWh", "stranded", "wait_ticks", "phase", "branch", "feed", "row",
         "wait_p50", "p95_min");
  report(&mod);
  report(&bef);
  printf("wall %.1f s for %ld ticks (the model's side: the aggregator's admission, queue and "
         "upkeep on LMDB in /dev/shm)\n",
         (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9, ticks);
  rc = 0;
cleanup:
  if (a.ledger)
    rp_ledger_close(a.ledger);
  if (a.store)
    store_close(a.store);
  rp_gate_free(a.gate);
  model_free(&mod);
  model_free(&bef);
  free(jobs);
  if (dir[sizeof(dir) - 2] != 'X') {
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "bench_power: could not remove %s\n", dir);
  }
  return rc;
}
