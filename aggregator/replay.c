/* The backtest engine (see replay.h): a scratch store fed with the frames,
 * and per policy a gate, a ledger, a ladder and SLOs, evaluated every tick
 * of frame time; the decisions of both policies compared rack by rack. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gate.h"
#include "ladder.h"
#include "ledger.h"
#include "replay_internal.h"
#include "slo.h"

static void on_flag(void *ctx, const json_t *f, bool set, int64_t now) {
  struct replay_side *s = ctx;
  const char *rack = json_string_value(json_object_get(f, "rack"));
  const char *flag = json_string_value(json_object_get(f, "flag"));
  if (set) {
    json_array_append_new(s->flags,
                          json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "rack", rack, "flag", flag,
                                    "check", json_string_value(json_object_get(f, "check")), "step",
                                    json_integer_value(json_object_get(f, "step")), "set_ms",
                                    (json_int_t)now, "cleared_ms", (json_int_t)0));
    return;
  }
  for (size_t i = json_array_size(s->flags); i-- > 0;) {
    json_t *e = json_array_get(s->flags, i);
    if (strcmp(json_string_value(json_object_get(e, "rack")), rack) == 0 &&
        strcmp(json_string_value(json_object_get(e, "flag")), flag) == 0) {
      json_object_set_new(e, "cleared_ms", json_integer((json_int_t)now));
      return;
    }
  }
}

static int side_open(struct rp_replay *r, int i, struct rp_policy *p, char *err, size_t errlen) {
  struct replay_side *s = &r->side[i];
  s->r = r;
  s->index = i;
  s->a.store = r->store;
  s->a.cfg.flags.automatic = true;
  s->a.cfg.flags.min_hold_ms = r->o.hold_ms;
  s->flags = json_array();
  s->placement = json_array();
  int rc = rp_gate_new(p, &s->a.gate);
  if (rc != 0) {
    rp_policy_free(p);
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/ledger-%s", r->dir, i == SIDE_CAND ? "candidate" : "current");
  struct rp_ledger_limits lim = {.map_size = (size_t)256 << 20,
                                 .audit_map_size = (size_t)1 << 20,
                                 .audit_max_age_ms = 1000,
                                 .audit_max_entries = 1};
  if ((rc = rp_ledger_open(dir, &lim, &s->a.ledger, err, errlen)) != 0)
    return rc;
  if ((rc = rp_ladder_new(&s->a.ladder)) != 0 || (rc = rp_slo_new(&s->a.slo)) != 0) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  rp_ladder_set_observer(s->a.ladder, on_flag, s);
  rp_slo_configure(s->a.slo, &p->slo);
  for (size_t k = 0; k < r->o.nincidents; k++)
    json_array_append_new(s->placement, json_null());
  return s->flags && s->placement ? 0 : -ENOMEM;
}

int rp_replay_new(struct rp_policy *candidate, struct rp_policy *current,
                  const struct rp_replay_options *o, struct rp_replay **out, char *err,
                  size_t errlen) {
  struct rp_replay *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    rp_policy_free(candidate);
    rp_policy_free(current);
    return -ENOMEM;
  }
  r->o = *o;
  if (r->o.tick_ms <= 0)
    r->o.tick_ms = 1000;
  if (r->o.placement_count == 0)
    r->o.placement_count = 3;
  snprintf(r->dir, sizeof(r->dir), "%s", o->dir);
  r->rack_index = json_object();
  r->by_check = json_object();
  r->tally = calloc(o->nincidents + 1, sizeof(*r->tally));
  char path[600];
  snprintf(path, sizeof(path), "%s/store", r->dir);
  int rc = -ENOMEM;
  if (r->rack_index == NULL || r->by_check == NULL || r->tally == NULL) {
    rp_policy_free(candidate);
    rp_policy_free(current);
    goto fail;
  }
  if (mkdir(path, 0700) != 0) {
    rc = -errno;
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    rp_policy_free(candidate);
    rp_policy_free(current);
    goto fail;
  }
  if ((rc = store_open(path, (size_t)64 << 20, &r->store, err, errlen)) != 0) {
    rp_policy_free(candidate);
    rp_policy_free(current);
    goto fail;
  }
  store_set_map_max(r->store, (size_t)16 << 30);
  store_set_volatile(r->store, true);
  store_set_clock(r->store, STORE_CLOCK_FRAME);
  if ((rc = side_open(r, SIDE_CAND, candidate, err, errlen)) != 0) {
    rp_policy_free(current);
    goto fail;
  }
  if ((rc = side_open(r, SIDE_CUR, current, err, errlen)) != 0)
    goto fail;
  *out = r;
  return 0;
fail:
  rp_replay_free(r);
  return rc;
}

static void release_held(struct rp_replay *r) {
  for (size_t i = 0; i < r->nheld; i++)
    rp_frame_free((rp_frame *)r->msgs[i].frame);
  r->nheld = 0;
}

void rp_replay_free(struct rp_replay *r) {
  if (r == NULL)
    return;
  release_held(r);
  free(r->msgs);
  for (int i = 0; i < NSIDES; i++) {
    struct replay_side *s = &r->side[i];
    rp_ladder_free(s->a.ladder);
    rp_slo_free(s->a.slo);
    rp_ledger_close(s->a.ledger);
    rp_gate_free(s->a.gate);
    json_decref(s->flags);
    json_decref(s->placement);
  }
  for (size_t i = 0; i < r->nracks; i++)
    for (int k = 0; k < NSIDES; k++)
      json_decref(r->racks[i].runs[k]);
  free(r->racks);
  json_decref(r->rack_index);
  json_decref(r->by_check);
  free(r->tally);
  store_close(r->store);
  free(r);
}

void rp_replay_counts(const struct rp_replay *r, uint64_t *frames, uint64_t *ticks) {
  *frames = r->frames;
  *ticks = r->ticks;
}

/* ---- racks ---- */

static bool wanted_rack(const struct rp_replay *r, const char *rack) {
  if (r->o.nracks == 0)
    return true;
  for (size_t i = 0; i < r->o.nracks; i++)
    if (strcmp(r->o.racks[i], rack) == 0)
      return true;
  return false;
}

static int note_rack(struct rp_replay *r, const char *rack) {
  if (json_object_get(r->rack_index, rack) != NULL || !wanted_rack(r, rack))
    return 0;
  if (r->nracks == r->cap_racks) {
    size_t cap = r->cap_racks ? r->cap_racks * 2 : 64;
    struct replay_rack *grown = realloc(r->racks, cap * sizeof(*grown));
    if (grown == NULL)
      return -ENOMEM;
    r->racks = grown;
    r->cap_racks = cap;
  }
  struct replay_rack *k = &r->racks[r->nracks];
  memset(k, 0, sizeof(*k));
  snprintf(k->id, sizeof(k->id), "%s", rack);
  for (int s = 0; s < NSIDES; s++)
    k->runs[s] = json_array();
  json_object_set_new(r->rack_index, rack, json_integer((json_int_t)r->nracks));
  r->nracks++;
  return 0;
}

/* ---- one tick ---- */

static void count_checks(struct rp_replay *r, const json_t *d, const char *key) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(d, "checks"), i, c) {
    if (json_is_true(json_object_get(c, "pass")))
      continue;
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *e = json_object_get(r->by_check, name);
    if (e == NULL) {
      e = json_pack("{s:I, s:I}", "allow_to_deny", (json_int_t)0, "deny_to_allow", (json_int_t)0);
      json_object_set_new(r->by_check, name, e);
    }
    json_object_set_new(e, key, json_integer(json_integer_value(json_object_get(e, key)) + 1));
  }
}

/* Tracks the deny runs of rack k under side s. */
static void track_run(struct replay_rack *k, int s, bool allow, int64_t t) {
  if (!allow && k->deny_since[s] == 0) {
    k->deny_since[s] = t;
    json_array_append_new(k->runs[s], json_pack("[I, I]", (json_int_t)t, (json_int_t)0));
  } else if (allow && k->deny_since[s] != 0) {
    k->deny_since[s] = 0;
    json_t *last = json_array_get(k->runs[s], json_array_size(k->runs[s]) - 1);
    json_array_set_new(last, 1, json_integer((json_int_t)t));
  }
}

static void tally_incidents(struct rp_replay *r, const struct replay_rack *k, const bool allow[],
                            int64_t t) {
  for (size_t i = 0; i < r->o.nincidents; i++) {
    const struct rp_replay_incident *in = &r->o.incidents[i];
    if (strcmp(in->rack, k->id) != 0 || t < in->start_ms || t > in->end_ms)
      continue;
    r->tally[i].ticks++;
    for (int s = 0; s < NSIDES; s++)
      r->tally[i].allowed[s] += allow[s];
  }
}

static void evaluate_rack(struct rp_replay *r, struct replay_rack *k, int64_t t, bool counted) {
  struct rp_gate_request q = {.rack = k->id, .kw = r->o.kw, .uncounted = true};
  json_t *d[NSIDES] = {NULL, NULL};
  bool allow[NSIDES] = {true, true};
  for (int s = 0; s < NSIDES; s++) {
    struct replay_side *side = &r->side[s];
    int status;
    char err[256];
    d[s] =
        rp_gate_evaluate(side->a.gate, r->store, side->a.ledger, &q, t, &status, err, sizeof(err));
    if (d[s] == NULL)
      continue;
    rp_ladder_observe(side->a.ladder, k->id, d[s], t);
    rp_slo_observe(side->a.slo, k->id, d[s], t);
    allow[s] = strcmp(json_string_value(json_object_get(d[s], "decision")), "allow") == 0;
  }
  if (counted && d[SIDE_CAND] != NULL && d[SIDE_CUR] != NULL) {
    for (int s = 0; s < NSIDES; s++) {
      r->side[s].allow += allow[s];
      r->side[s].deny += !allow[s];
      track_run(k, s, allow[s], t);
    }
    if (allow[SIDE_CAND] != allow[SIDE_CUR]) {
      if (k->first_change_ms == 0)
        k->first_change_ms = t;
      if (allow[SIDE_CUR]) {
        k->to_deny++;
        count_checks(r, d[SIDE_CAND], "allow_to_deny");
      } else {
        k->to_allow++;
        count_checks(r, d[SIDE_CUR], "deny_to_allow");
      }
    }
    tally_incidents(r, k, allow, t);
  }
  json_decref(d[SIDE_CAND]);
  json_decref(d[SIDE_CUR]);
}

static void apply_ladder(void *ctx, const struct rp_policy *p) {
  struct replay_side *s = ctx;
  rp_ladder_apply(s->a.ladder, p, s->a.ledger, NULL, s->a.cfg.flags.min_hold_ms,
                  s->r->next_tick_ms);
}

/* At each incident's first tick: where each policy would place the work. */
static void place_at_incidents(struct rp_replay *r, int64_t t) {
  for (size_t i = 0; i < r->o.nincidents; i++) {
    if (r->tally[i].placed || t < r->o.incidents[i].start_ms)
      continue;
    r->tally[i].placed = true;
    double kw = r->o.kw > 0 ? r->o.kw : 1;
    for (int s = 0; s < NSIDES; s++) {
      json_t *p = rp_placement(&r->side[s].a, kw, r->o.placement_count, NULL, NULL, t);
      if (p != NULL)
        json_array_set_new(r->side[s].placement, i, p);
    }
  }
}

static void run_tick(struct rp_replay *r, int64_t t) {
  bool counted = t >= r->o.from_ms && (r->o.to_ms == 0 || t <= r->o.to_ms);
  for (size_t i = 0; i < r->nracks; i++)
    evaluate_rack(r, &r->racks[i], t, counted);
  for (int s = 0; s < NSIDES; s++) {
    /* Flags raised outside [from, to] are not reported. */
    size_t before = json_array_size(r->side[s].flags);
    rp_gate_with_policy(r->side[s].a.gate, apply_ladder, &r->side[s]);
    if (!counted)
      while (json_array_size(r->side[s].flags) > before)
        json_array_remove(r->side[s].flags, before);
  }
  if (counted)
    place_at_incidents(r, t);
  r->ticks++;
}

/* ---- frames ---- */

static int flush_held(struct rp_replay *r, char *err, size_t errlen) {
  if (r->nheld == 0)
    return 0;
  int rc = store_apply(r->store, r->msgs, r->nheld, err, errlen);
  for (size_t i = 0; i < r->nheld && rc == 0; i++)
    if (r->msgs[i].frame != NULL && r->msgs[i].outcome == STORE_APPLIED)
      r->frames++;
  release_held(r);
  return rc;
}

/* Applies what is held and runs every tick up to (not past) t. */
static int advance_to(struct rp_replay *r, int64_t t, char *err, size_t errlen) {
  while (r->next_tick_ms != 0 && r->next_tick_ms <= t) {
    int rc = flush_held(r, err, errlen);
    if (rc != 0)
      return rc;
    run_tick(r, r->next_tick_ms);
    r->next_tick_ms += r->o.tick_ms;
  }
  return 0;
}

int rp_replay_frame(struct rp_replay *r, rp_frame *f, char *err, size_t errlen) {
  if (r->next_tick_ms == 0)
    r->next_tick_ms = (f->ts_ms / r->o.tick_ms + 1) * r->o.tick_ms;
  int rc = advance_to(r, f->ts_ms, err, errlen);
  if (rc == 0)
    rc = note_rack(r, f->rack_id);
  if (rc == 0 && r->nheld == r->cap_held) {
    size_t cap = r->cap_held ? r->cap_held * 2 : 256;
    struct store_msg *grown = realloc(r->msgs, cap * sizeof(*grown));
    if (grown == NULL)
      rc = -ENOMEM;
    else {
      r->msgs = grown;
      r->cap_held = cap;
    }
  }
  if (rc != 0) {
    rp_frame_free(f);
    return rc;
  }
  r->msgs[r->nheld++] =
      (struct store_msg){.frame = f, .topic = "replay", .partition = 0, .offset = r->offset++};
  return 0;
}

int rp_replay_finish(struct rp_replay *r, int64_t end_ms, char *err, size_t errlen) {
  int rc = advance_to(r, end_ms, err, errlen);
  return rc != 0 ? rc : flush_held(r, err, errlen);
}
