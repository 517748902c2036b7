/* Backtest replay benchmark (issue 23): frames of a simulated site (R racks,
 * one frame a rack a second, 8 series and 2 window statistics each, a
 * dictionary every 100 frames), packed in memory first, then
 *   replay:  decoded and fed to the backtest engine (aggregator/replay.c)
 *            under two policies, every rack evaluated under both each
 *            simulated second (gate, ladder, SLOs);
 *   ingest:  decoded and applied through the normal ingest path
 *            (store_apply in batches of 500, durable commits, as consume.c).
 * Both single-threaded: frames/s is per core. Prints the figures and what a
 * day of the site would take at that rate.
 *
 *   bench_replay [--racks R] [--seconds S] [--dir DIR]
 * DIR defaults to /dev/shm, as rackpulsectl policy simulate's scratch
 * state does; the ingest half then measures CPU, not the disk's syncs. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"
#include "replay.h"
#include "store.h"

#define NSERIES 8

struct packed {
  uint8_t *buf;
  size_t len;
};

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Frame `sec` of rack r, packed. */
static struct packed pack_frame(int r, long sec, int64_t base_ms) {
  static const char *const names[NSERIES] = {
      "cdu.supply_temp",   "cdu.return_temp", "cdu.flow",     "server.inlet_temp",
      "server.inlet_temp", "server.power",    "server.power", "pdu.power"};
  static const char *const units[NSERIES] = {"Cel", "Cel", "L/min", "Cel", "Cel", "W", "W", "kW"};
  static const char *const devices[NSERIES] = {"cdu1", "cdu1", "cdu1", "bmc0",
                                               "bmc1", "bmc0", "bmc1", "pdu1"};
  Rackpulse__V1__Frame f = RACKPULSE__V1__FRAME__INIT;
  Rackpulse__V1__SeriesDef d[NSERIES], *dp[NSERIES];
  Rackpulse__V1__SampleBlock b = RACKPULSE__V1__SAMPLE_BLOCK__INIT, *bp = &b;
  Rackpulse__V1__WindowStats st[2], *stp[2];
  uint32_t ids[NSERIES];
  int64_t scaled[NSERIES];
  char agent[32], rack[32];
  snprintf(agent, sizeof(agent), "agent-r%04d", r);
  snprintf(rack, sizeof(rack), "r%04d", r);
  int64_t ts = base_ms + sec * 1000;
  for (int i = 0; i < NSERIES; i++) {
    d[i] = (Rackpulse__V1__SeriesDef)RACKPULSE__V1__SERIES_DEF__INIT;
    d[i].id = (uint32_t)i;
    d[i].name = (char *)names[i];
    d[i].unit = (char *)units[i];
    d[i].device = (char *)devices[i];
    d[i].decimals = 1;
    dp[i] = &d[i];
    ids[i] = (uint32_t)i;
    scaled[i] = 250 + (r * 31 + i * 3 + sec) % 100;
  }
  double v0 = (double)scaled[0] / 10;
  for (int w = 0; w < 2; w++) {
    st[w] = (Rackpulse__V1__WindowStats)RACKPULSE__V1__WINDOW_STATS__INIT;
    st[w].series = 0;
    st[w].window_s = w ? 300 : 60;
    st[w].count = w ? 300 : 60;
    st[w].min = v0 - 1.5;
    st[w].max = v0 + 1.5;
    st[w].mean = st[w].p50 = v0;
    st[w].p95 = v0 + 1;
    st[w].p99 = v0 + 1.25;
    st[w].has_slope = true;
    st[w].slope_per_min = 0.1;
    st[w].newest_ms = ts;
    stp[w] = &st[w];
  }
  f.schema_version = 1;
  f.agent_id = agent;
  f.rack_id = rack;
  f.seq = (uint64_t)sec + 1;
  f.ts_ms = b.ts_ms = ts;
  f.interval_ms = 1000;
  f.dictionary_version = 1;
  if (sec % 100 == 0) {
    f.n_dictionary = NSERIES;
    f.dictionary = dp;
  }
  b.n_series = b.n_scaled = NSERIES;
  b.series = ids;
  b.scaled = scaled;
  f.n_samples = 1;
  f.samples = &bp;
  f.n_stats = 2;
  f.stats = stp;
  struct packed p = {.len = rackpulse__v1__frame__get_packed_size(&f)};
  p.buf = malloc(p.len);
  if (p.buf == NULL)
    abort();
  rackpulse__v1__frame__pack(&f, p.buf);
  return p;
}

static rp_frame *decode(const struct packed *p) {
  rp_frame *f = NULL;
  char err[256];
  if (rp_frame_decode(p->buf, p->len, &f, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_replay: decode: %s\n", err);
    exit(1);
  }
  return f;
}

static struct rp_policy *policy(const char *version, double max) {
  struct rp_policy *p;
  if (rp_policy_builtin(version, 10000, max, "cdu.supply_temp", &p) != 0)
    exit(1);
  return p;
}

static void run_replay(const char *dir, const struct packed *fr, size_t n, int64_t from,
                       int64_t to) {
  char err[512];
  struct rp_replay_options o = {.dir = dir, .from_ms = from, .to_ms = to};
  struct rp_replay *r;
  if (rp_replay_new(policy("cand", 33), policy("cur", 40), &o, &r, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_replay: %s\n", err);
    exit(1);
  }
  double c0 = cpu_s(), w0 = wall_s();
  for (size_t i = 0; i < n; i++)
    if (rp_replay_frame(r, decode(&fr[i]), err, sizeof(err)) != 0) {
      fprintf(stderr, "bench_replay: %s\n", err);
      exit(1);
    }
  rp_replay_finish(r, to, err, sizeof(err));
  double cpu = cpu_s() - c0, wall = wall_s() - w0;
  uint64_t frames, ticks;
  rp_replay_counts(r, &frames, &ticks);
  json_t *rep = rp_replay_report(r);
  printf("replay (2 policies, every rack evaluated each simulated second): %zu frames, %llu "
         "ticks in %.2f s CPU (%.2f s wall): %.0f frames/s per core; allow->deny %lld\n",
         n, (unsigned long long)ticks, cpu, wall, (double)n / cpu,
         (long long)json_integer_value(
             json_object_get(json_object_get(rep, "decisions"), "allow_to_deny")));
  json_decref(rep);
  rp_replay_free(r);
}

static void run_ingest(const char *dir, const struct packed *fr, size_t n) {
  char err[512];
  struct store *s;
  if (store_open(dir, (size_t)256 << 20, &s, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_replay: %s\n", err);
    exit(1);
  }
  enum { BATCH = 500 };
  struct store_msg msgs[BATCH];
  double c0 = cpu_s(), w0 = wall_s();
  for (size_t i = 0; i < n; i += BATCH) {
    size_t k = n - i < BATCH ? n - i : BATCH;
    for (size_t j = 0; j < k; j++)
      msgs[j] = (struct store_msg){
          .frame = decode(&fr[i + j]), .topic = "bench", .offset = (int64_t)(i + j)};
    if (store_apply(s, msgs, k, err, sizeof(err)) != 0) {
      fprintf(stderr, "bench_replay: ingest: %s\n", err);
      exit(1);
    }
    for (size_t j = 0; j < k; j++)
      rp_frame_free((rp_frame *)msgs[j].frame);
  }
  double cpu = cpu_s() - c0, wall = wall_s() - w0;
  printf("ingest (store_apply, batches of %d, durable): %zu frames in %.2f s CPU (%.2f s "
         "wall): %.0f frames/s per core\n",
         BATCH, n, cpu, wall, (double)n / cpu);
  store_close(s);
}

int main(int argc, char **argv) {
  int racks = 100;
  long seconds = 600;
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"; /* as the CLI */
  static const struct option opts[] = {{"racks", required_argument, NULL, 'r'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"dir", required_argument, NULL, 'd'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "r:s:d:", opts, NULL)) != -1) {
    if (c == 'r')
      racks = atoi(optarg);
    else if (c == 's')
      seconds = atol(optarg);
    else if (c == 'd')
      dir = optarg;
    else
      return 2;
  }
  rp_log_set_level(RP_LOG_ERROR); /* the replayed flags are not news */
  size_t n = (size_t)racks * (size_t)seconds;
  struct packed *fr = calloc(n, sizeof(*fr));
  int64_t base = 1790000000000;
  for (long sec = 0; sec < seconds; sec++)
    for (int r = 1; r <= racks; r++)
      fr[(size_t)sec * (size_t)racks + (size_t)(r - 1)] = pack_frame(r, sec, base);
  char rdir[512], idir[512];
  snprintf(rdir, sizeof(rdir), "%s/bench_replay_XXXXXX", dir);
  snprintf(idir, sizeof(idir), "%s/bench_ingest_XXXXXX", dir);
  if (mkdtemp(rdir) == NULL || mkdtemp(idir) == NULL) {
    perror("bench_replay: mkdtemp");
    return 1;
  }
  printf("site: %d racks x %ld s = %zu frames (one a rack a second)\n", racks, seconds, n);
  run_replay(rdir, fr, n, base, base + seconds * 1000);
  run_ingest(idir, fr, n);
  char cmd[1100];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", rdir, idir);
  int rc = system(cmd);
  for (size_t i = 0; i < n; i++)
    free(fr[i].buf);
  free(fr);
  return rc == 0 ? 0 : 1;
}
