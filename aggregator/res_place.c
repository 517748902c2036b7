/* Where a reservation lands and the wait queue (reservations_internal.h).
 *
 * Placement evaluates every candidate rack with the gate (the tightest of
 * its power and topology headrooms) and packs best fit (packing.h). A
 * request that does not fit and asked to wait ("wait": "30m") is kept as
 * a "waiting" reservation that holds no power; the upkeep pass (every 5 s)
 * admits the oldest waiting ones that fit, with an "admitted" event and
 * audit entry, and refuses those whose wait has ended ("refused"). An
 * admitted reservation keeps its duration from the time it is admitted. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "gate.h"
#include "rackpulse/log.h"
#include "reservations_internal.h"

static bool str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

struct collect {
  const char *rack, *pool;
  struct rp_res_candidates *c;
};

static void collect(void *ctx, const struct rp_policy *p) {
  struct collect *k = ctx;
  struct rp_res_candidates *c = k->c;
  for (size_t i = 0; i < p->nracks && c->n < RP_RES_MAX_CANDIDATES; i++) {
    const struct rp_rack_meta *m = &p->racks[i];
    if (k->rack ? strcmp(m->id, k->rack) != 0 : strcmp(m->pool, k->pool) != 0)
      continue;
    snprintf(c->racks[c->n], sizeof(c->racks[0]), "%s", m->id);
    snprintf(c->row[c->n], sizeof(c->row[0]), "%s", m->row);
    snprintf(c->loop[c->n], sizeof(c->loop[0]), "%s", m->loop);
    c->n++;
  }
}

void rp_res_candidates(struct rp_aggregator *a, const char *rack, const char *pool,
                       struct rp_res_candidates *c) {
  memset(c, 0, sizeof(*c));
  c->pool = pool;
  struct collect k = {.rack = rack, .pool = pool, .c = c};
  rp_gate_with_policy(a->gate, collect, &k);
  if (rack != NULL && c->n == 0) /* a rack not in the policy: the gate decides */
    snprintf(c->racks[c->n++], sizeof(c->racks[0]), "%s", rack);
}

/* The owner's active reserved kW in each candidate's row or loop. */
static void group_kw(struct rp_aggregator *a, const struct rp_res_candidates *c, const char *owner,
                     const char *spread, struct rp_pack_candidate *out) {
  bool by_row = strcmp(spread, "row") == 0;
  json_t *all = rp_ledger_res_list(a->ledger);
  size_t i;
  json_t *r;
  json_array_foreach(all, i, r) {
    if (!str_eq(json_string_value(json_object_get(r, "state")), "active") ||
        !str_eq(json_string_value(json_object_get(r, "owner")), owner))
      continue;
    const char *rack = json_string_value(json_object_get(r, "rack"));
    const char *group = NULL;
    for (size_t k = 0; k < c->n && group == NULL; k++)
      if (str_eq(c->racks[k], rack))
        group = by_row ? c->row[k] : c->loop[k];
    if (group == NULL || group[0] == '\0')
      continue;
    for (size_t k = 0; k < c->n; k++)
      if (strcmp(by_row ? c->row[k] : c->loop[k], group) == 0)
        out[k].group_kw += json_number_value(json_object_get(r, "kw"));
  }
  json_decref(all);
}

void rp_res_place(struct rp_aggregator *a, const struct rp_res_candidates *c, const char *owner,
                  const char *spread, double kw, int64_t start, int64_t end, int64_t now,
                  struct rp_res_placement *out) {
  struct rp_pack_candidate *pc = calloc(c->n + 1, sizeof(*pc));
  *out = (struct rp_res_placement){.chosen = c->n, .most = c->n, .most_headroom_kw = NAN};
  if (pc == NULL) {
    snprintf(out->why, sizeof(out->why), "out of memory");
    return;
  }
  json_t *all = rp_ledger_res_list(a->ledger); /* one read for every candidate (lock held) */
  for (size_t i = 0; i < c->n; i++) {
    char w[256] = "";
    pc[i].headroom_kw = NAN;
    if (!rp_res_headroom_in(a, all, c->racks[i], start, end, now, &pc[i].headroom_kw, w,
                            sizeof(w))) {
      pc[i].headroom_kw = NAN;
      snprintf(out->why, sizeof(out->why), "%s: %s", c->racks[i], w);
      continue;
    }
    if (out->most == c->n || pc[i].headroom_kw > out->most_headroom_kw) {
      out->most = i;
      out->most_headroom_kw = pc[i].headroom_kw;
    }
  }
  json_decref(all);
  if (spread != NULL)
    group_kw(a, c, owner, spread, pc);
  out->chosen = rp_pack_choose(pc, c->n, kw, a->cfg.reservations.pack_margin_kw, spread != NULL,
                               RP_PACK_BEST_FIT);
  if (out->chosen == c->n && out->most < c->n)
    snprintf(out->why, sizeof(out->why),
             "does not fit: %.2f kW free at most (on %s), %.2f kW asked",
             out->most_headroom_kw > 0 ? out->most_headroom_kw : 0, c->racks[out->most], kw);
  free(pc);
}

json_t *rp_res_enqueue(struct rp_aggregator *a, json_t *r, int64_t wait_ms, const char *why,
                       int64_t now, int *status) {
  json_object_set_new(r, "state", json_string("waiting"));
  json_object_set_new(r, "wait_until_ms", json_integer(now + wait_ms));
  json_object_set_new(r, "reason", json_string(why));
  int rc = rp_ledger_res_put(a->ledger, r);
  if (rc != 0) {
    json_decref(r);
    *status = 503;
    return json_pack("{s:s}", "error", rp_ledger_write_error(rc));
  }
  rp_info("reservations", "reservation %s waits up to %lld s: %s",
          json_string_value(json_object_get(r, "id")), (long long)(wait_ms / 1000), why);
  *status = 202;
  return r;
}

static int by_created(const void *x, const void *y) {
  int64_t a = rp_res_jint(*(json_t *const *)x, "created_ms"),
          b = rp_res_jint(*(json_t *const *)y, "created_ms");
  return a < b ? -1 : a > b;
}

/* Tries to admit waiting reservation r now. */
static bool try_admit(struct rp_aggregator *a, json_t *r, int64_t now,
                      struct rp_res_candidates *c) {
  const char *pool = json_string_value(json_object_get(r, "pool"));
  const char *rack = json_string_value(json_object_get(r, "rack"));
  rp_res_candidates(a, pool ? NULL : rack, pool, c);
  int64_t start = rp_res_jint(r, "start_ms"), end = rp_res_jint(r, "end_ms");
  if (start < now) { /* it keeps its duration from its admission */
    end += now - start;
    start = now;
  }
  struct rp_res_placement pl;
  rp_res_place(a, c, json_string_value(json_object_get(r, "owner")),
               json_string_value(json_object_get(r, "spread")),
               json_number_value(json_object_get(r, "kw")), start, end, now, &pl);
  if (pl.chosen == c->n) {
    json_object_set_new(r, "reason", json_string(pl.why));
    return false;
  }
  json_object_set_new(r, "rack", json_string(c->racks[pl.chosen]));
  json_object_set_new(r, "start_ms", json_integer(start));
  json_object_set_new(r, "end_ms", json_integer(end));
  json_object_set_new(r, "state", json_string("active"));
  json_object_set_new(r, "admitted_ms", json_integer(now));
  json_object_set_new(r, "waited_ms", json_integer(now - rp_res_jint(r, "created_ms")));
  json_object_del(r, "reason");
  if (rp_ledger_res_put(a->ledger, r) != 0) {
    json_object_set_new(r, "state", json_string("waiting"));
    return false;
  }
  return true;
}

int rp_res_serve_queue(struct rp_aggregator *a, int64_t now) {
  json_t *all = rp_ledger_res_list(a->ledger);
  size_t n = 0, i;
  json_t *r;
  json_t **waiting = calloc(json_array_size(all) + 1, sizeof(*waiting));
  struct rp_res_candidates *c = calloc(1, sizeof(*c));
  int changed = 0;
  if (waiting == NULL || c == NULL)
    goto cleanup;
  json_array_foreach(all, i, r) if (str_eq(json_string_value(json_object_get(r, "state")),
                                           "waiting")) waiting[n++] = r;
  qsort(waiting, n, sizeof(*waiting), by_created);
  for (i = 0; i < n; i++) {
    r = waiting[i];
    char reason[320];
    if (now >= rp_res_jint(r, "wait_until_ms")) {
      const char *last = json_string_value(json_object_get(r, "reason"));
      snprintf(reason, sizeof(reason), "refused after waiting %lld s: %s",
               (long long)((now - rp_res_jint(r, "created_ms")) / 1000),
               last ? last : "did not fit");
      json_object_set_new(r, "state", json_string("refused"));
      json_object_set_new(r, "reason", json_string(reason));
      json_object_set_new(r, "refused_ms", json_integer(now));
      if (rp_ledger_res_put(a->ledger, r) == 0) {
        rp_res_announce(a, r, "refused", now, reason, now);
        changed++;
      }
    } else if (try_admit(a, r, now, c)) {
      snprintf(reason, sizeof(reason), "admitted on %s after waiting %lld s",
               json_string_value(json_object_get(r, "rack")),
               (long long)(rp_res_jint(r, "waited_ms") / 1000));
      rp_res_announce(a, r, "admitted", now, reason, now);
      changed++;
    }
  }
cleanup:
  free(c);
  free(waiting);
  json_decref(all);
  return changed;
}
