/* Power reservations (see reservations.h). Admission asks the gate for the
 * rack's power headroom with every existing reservation counted, so the
 * same arithmetic decides gates and reservations. Every change holds the
 * ledger's reservation lock from the reads that decide it to its write
 * (rp_ledger_res_lock): concurrent admissions see each other, so together
 * they never exceed the headroom, and a release, extend or expiry never
 * writes back a reservation another request changed meanwhile. */
#define _XOPEN_SOURCE 700 /* strptime */
#include "reservations.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "aggregator.h"
#include "gate.h"
#include "energy.h"
#include "members.h"
#include "reservations_internal.h"
#include "rackpulse/log.h"
#include "store.h"

static const char *const class_names[] = {"bronze", "silver", "gold"};
#define MAX_RESERVATION_MS (31LL * 24 * 3600 * 1000)
#define MAX_WAIT_MS (24LL * 3600 * 1000)

static int class_rank(const char *name) {
  for (int i = 0; i < 3; i++)
    if (name != NULL && strcmp(name, class_names[i]) == 0)
      return i;
  return -1;
}

bool rp_res_is_active(const json_t *r) {
  const char *state = json_string_value(json_object_get(r, "state"));
  return state != NULL && strcmp(state, "active") == 0;
}

int64_t rp_res_jint(const json_t *o, const char *key) {
  return (int64_t)json_integer_value(json_object_get(o, key));
}

static bool overlaps(const json_t *r, int64_t from, int64_t to) {
  return rp_res_jint(r, "start_ms") < to && rp_res_jint(r, "end_ms") > from;
}

static bool str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

double rp_reservations_reserved_kw(struct rp_ledger *l, const char *rack, const char *except_owner,
                                   int64_t from_ms, int64_t to_ms) {
  json_t *all = rp_ledger_res_list(l);
  double kw = 0;
  size_t i;
  json_t *r;
  json_array_foreach(all, i, r) {
    if (!rp_res_is_active(r) || !str_eq(json_string_value(json_object_get(r, "rack")), rack) ||
        !overlaps(r, from_ms, to_ms) ||
        str_eq(json_string_value(json_object_get(r, "owner")), except_owner))
      continue;
    kw += json_number_value(json_object_get(r, "kw"));
  }
  json_decref(all);
  return kw;
}

static json_t *error(int *status, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *error(int *status, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  *status = code;
  json_t *e = json_pack("{s:s}", "error", msg);
  /* Never NULL for a valid message: callers take NULL for "no error". */
  return e ? e : json_pack("{s:s}", "error", "invalid request");
}

int rp_reservation_parse_time(const json_t *v, int64_t *ms) {
  if (json_is_integer(v)) {
    *ms = (int64_t)json_integer_value(v);
    return *ms > 0 ? 0 : -EINVAL;
  }
  const char *s = json_string_value(v);
  struct tm tm = {0};
  const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
  if (end == NULL || (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0))
    return -EINVAL;
  *ms = (int64_t)timegm(&tm) * 1000;
  /* Text before 1970 is refused like a non-positive integer: "end" minus a
   * negative "start" overflowed int64 (found by fuzzing). */
  return *ms > 0 ? 0 : -EINVAL;
}

static bool valid_id(const char *s) {
  if (s == NULL || s[0] == '\0' || strlen(s) > RP_ID_MAX)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '.' || *s == '_' || *s == '-'))
      return false;
  return true;
}

static void new_id(char out[17]) {
  uint8_t b[8];
  if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
    uint64_t t = (uint64_t)rp_now_ms();
    memcpy(b, &t, 8);
  }
  for (int i = 0; i < 8; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Power headroom of `rack` over [from, end) with every reservation counted
 * (except those of `except_owner`): the least of the gate's power_headroom
 * and of its topology checks (feeds, phases, branches, row, pool, loop:
 * electrical.h), in kW of the request. `now` is the time the draw is
 * measured at. Returns false with why when it cannot be known. */
bool rp_res_headroom_kw(struct rp_aggregator *a, const char *rack, int64_t from, int64_t end,
                        int64_t now, double *headroom, char *why, size_t whylen) {
  return rp_res_headroom_in(a, NULL, rack, from, end, now, headroom, why, whylen);
}

bool rp_res_headroom_in(struct rp_aggregator *a, const json_t *all, const char *rack, int64_t from,
                        int64_t end, int64_t now, double *headroom, char *why, size_t whylen) {
  struct rp_gate_request q = {
      .rack = rack, .kw = 0, .window_from_ms = from, .window_to_ms = end, .reservations = all};
  int status;
  json_t *d = rp_gate_evaluate(a->gate, a->store, a->ledger, &q, now, &status, why, whylen);
  if (d == NULL)
    return false;
  bool found = false, unknown = false;
  *headroom = INFINITY;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(d, "checks"), i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    bool power = str_eq(name, "power_headroom");
    if (!power && json_object_get(c, "request_headroom_kw") == NULL)
      continue;
    json_t *obs = json_object_get(c, "observed");
    if (json_is_number(obs)) {
      if (power)
        found = true;
      if (json_number_value(obs) < *headroom)
        *headroom = json_number_value(obs);
    } else if (!unknown) {
      const char *reason = json_string_value(json_object_get(c, "reason"));
      snprintf(why, whylen, "%s unknown: %s", power ? "power headroom" : name,
               reason ? reason : "no data");
      unknown = true;
    }
  }
  if (!found && !unknown)
    snprintf(why, whylen,
             "the policy has no power check for rack %s (enable power and set "
             "breaker_kw)",
             rack);
  json_decref(d);
  return found && !unknown;
}

/* An audit entry and an event for a reservation preempted or given notice
 * (or admitted or refused from the wait queue). The entry names the client
 * and deploy that caused it: the preempting request's ("preempted_by"), else
 * the reservation's own. Called with the reservation lock held: both only
 * queue (the audit is written in batches, the event by librdkafka), neither
 * waits. */
void rp_res_announce(struct rp_aggregator *a, const json_t *r, const char *what, int64_t at_ms,
                     const char *reason, int64_t now) {
  const char *id = json_string_value(json_object_get(r, "id"));
  char did[96], action[48];
  snprintf(did, sizeof(did), "%s-%s-%lld", what, id ? id : "", (long long)now);
  snprintf(action, sizeof(action), "reservation_%s",
           strcmp(what, "preempt-notice") == 0 ? "notice" : what);
  json_t *entry = json_pack(
      "{s:O, s:s, s:O, s:O, s:O, s:s, s:I, s:s, s:I}", "rack", json_object_get(r, "rack"), "action",
      action, "reservation", json_object_get(r, "id"), "owner", json_object_get(r, "owner"), "kw",
      json_object_get(r, "kw"), "reason", reason, "revoke_at_ms", (json_int_t)at_ms, "decision_id",
      did, "evaluated_at_ms", (json_int_t)now);
  const json_t *by = json_object_get(r, "preempted_by");
  const json_t *cause = json_is_object(by) ? by : r;
  if (entry != NULL && json_is_string(json_object_get(cause, "client")))
    json_object_set(entry, "client", json_object_get(cause, "client"));
  if (entry != NULL && json_is_object(json_object_get(cause, "deploy")))
    json_object_set(entry, "deploy", json_object_get(cause, "deploy"));
  if (entry == NULL || rp_ledger_audit_append(a->ledger, entry) != 0)
    rp_warn("reservations", "%s of reservation %s not written to the audit log", what, id);
  json_decref(entry);
  rp_events_publish_reservation(a->events, r, what, at_ms, reason);
  rp_info("reservations", "reservation %s: %s (%s)", id, what, reason);
}

static bool preemptible_by(const json_t *r, int lower, const char *rack, int64_t from, int64_t to) {
  return rp_res_is_active(r) && json_is_true(json_object_get(r, "preemptible")) &&
         class_rank(json_string_value(json_object_get(r, "class"))) == lower &&
         str_eq(json_string_value(json_object_get(r, "rack")), rack) && overlaps(r, from, to);
}

void rp_res_revoke(struct rp_aggregator *a, json_t *r, const char *reason, int64_t now) {
  json_object_set_new(r, "state", json_string("preempted"));
  json_object_set_new(r, "reason", json_string(reason));
  json_object_set_new(r, "preempted_ms", json_integer(now));
  rp_energy_close(r, now);
  if (rp_ledger_res_put(a->ledger, r) == 0) {
    rp_res_announce(a, r, "preempted", now, reason, now);
  } else { /* not written: it still holds its kW */
    json_object_set_new(r, "state", json_string("active"));
    json_object_del(r, "preempted_ms");
  }
}

/* Preempts preemptible lower-class reservations on `rack` overlapping the
 * window, lowest class first, until `needed` kW are free (all-or-nothing:
 * nothing happens when not enough would be). Returns the kW freed now. With
 * reservations.preempt_notice, victims without notice get one (kept as
 * "preempt_at_ms", announced) and nothing is freed until every victim's
 * notice has run out: *retry_at_ms is then when to ask again (0 when the
 * kW were freed or cannot be). */
static double preempt(struct rp_aggregator *a, const char *rack, int rank, int64_t from, int64_t to,
                      double needed, const struct rp_reservation_req *q, int64_t now,
                      json_t *preempted, int64_t *retry_at_ms) {
  *retry_at_ms = 0;
  json_t *all = rp_ledger_res_list(a->ledger);
  double freeable = 0;
  size_t i;
  json_t *r;
  for (int lower = 0; lower < rank; lower++)
    json_array_foreach(all, i, r) if (preemptible_by(r, lower, rack, from, to)) freeable +=
        json_number_value(json_object_get(r, "kw"));
  if (freeable < needed) {
    json_decref(all);
    return 0;
  }
  /* The victims, lowest class first; and when the last notice runs out. */
  json_t *victims = json_array();
  double sum = 0;
  int64_t last_notice = 0;
  for (int lower = 0; lower < rank && sum < needed; lower++) {
    json_array_foreach(all, i, r) {
      if (sum >= needed)
        break;
      if (!preemptible_by(r, lower, rack, from, to))
        continue;
      sum += json_number_value(json_object_get(r, "kw"));
      json_array_append(victims, r);
      int64_t at = rp_res_jint(r, "preempt_at_ms");
      if (at == 0 && a->cfg.reservations.preempt_notice_ms > 0)
        at = now + a->cfg.reservations.preempt_notice_ms;
      if (at > last_notice)
        last_notice = at;
    }
  }
  char reason[192];
  snprintf(reason, sizeof(reason), "preempted for %s (class %s, %.2f kW)", q->owner, q->cls, q->kw);
  double freed = 0;
  json_array_foreach(victims, i, r) {
    /* Who preempts it, for its audit entries and its record. */
    json_t *by = json_pack("{s:s, s:s}", "owner", q->owner, "class", q->cls);
    if (by != NULL && q->client != NULL)
      json_object_set_new(by, "client", json_string(q->client));
    if (by != NULL && q->deploy != NULL)
      json_object_set_new(by, "deploy", json_deep_copy(q->deploy));
    if (by != NULL)
      json_object_set_new(r, "preempted_by", by);
    if (last_notice > now) {
      if (rp_res_jint(r, "preempt_at_ms") == 0) {
        json_object_set_new(r, "preempt_at_ms", json_integer(last_notice));
        json_object_set_new(r, "reason", json_string(reason));
        if (rp_ledger_res_put(a->ledger, r) == 0)
          rp_res_announce(a, r, "preempt-notice", last_notice, reason, now);
      }
      json_array_append(preempted, json_object_get(r, "id"));
      continue;
    }
    rp_res_revoke(a, r, reason, now);
    if (!rp_res_is_active(r)) {
      freed += json_number_value(json_object_get(r, "kw"));
      json_array_append(preempted, json_object_get(r, "id"));
    }
  }
  if (last_notice > now)
    *retry_at_ms = last_notice;
  json_decref(victims);
  json_decref(all);
  return freed;
}

static int validate_strings(const json_t *arr) {
  if (arr == NULL)
    return 0;
  if (!json_is_array(arr) || json_array_size(arr) > 256)
    return -EINVAL;
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (!valid_id(json_string_value(v))) return -EINVAL;
  return 0;
}

json_t *rp_reservation_check(const json_t *body, int64_t now, struct rp_reservation_req *q,
                             int *status) {
  if (!json_is_object(body))
    return error(status, 400, "body: expected a JSON object");
  const char *rack = json_string_value(json_object_get(body, "rack"));
  const char *pool = json_string_value(json_object_get(body, "pool"));
  const char *owner = json_string_value(json_object_get(body, "owner"));
  const char *cls = json_string_value(json_object_get(body, "class"));
  json_t *kwv = json_object_get(body, "kw");
  int64_t start = now, end;
  if ((rack == NULL) == (pool == NULL))
    return error(status, 400, "give exactly one of rack or pool");
  if ((rack && !valid_id(rack)) || (pool && !valid_id(pool)))
    return error(status, 400, "rack/pool: 1..64 characters of A-Z a-z 0-9 . _ -");
  if (!valid_id(owner))
    return error(status, 400, "owner: required, 1..64 characters of A-Z a-z 0-9 . _ -");
  double kw = json_number_value(kwv);
  if (!json_is_number(kwv) || !isfinite(kw) || kw <= 0 || kw > 100000)
    return error(status, 400, "kw: expected a number of kilowatts above 0, at most 100000");
  if (cls == NULL)
    cls = "silver";
  int rank = class_rank(cls);
  if (rank < 0)
    return error(status, 400, "class: '%s' is not gold, silver or bronze",
                 valid_id(cls) ? cls : "?"); /* echo only plain ids, never cut UTF-8 */
  if (json_object_get(body, "start") &&
      rp_reservation_parse_time(json_object_get(body, "start"), &start) != 0)
    return error(status, 400, "start: expected Unix ms or RFC 3339 UTC time");
  if (rp_reservation_parse_time(json_object_get(body, "end"), &end) != 0)
    return error(status, 400, "end: required, Unix ms or RFC 3339 UTC time");
  if (end <= start)
    return error(status, 400, "end is not after start");
  if (end <= now)
    return error(status, 400, "end is in the past");
  if (end - start > MAX_RESERVATION_MS)
    return error(status, 400, "a reservation lasts at most 31 days");
  json_t *preemptible = json_object_get(body, "preemptible");
  if (preemptible != NULL && !json_is_boolean(preemptible))
    return error(status, 400, "preemptible: expected true or false");
  int64_t wait_ms = 0;
  json_t *wait = json_object_get(body, "wait");
  if (wait != NULL &&
      (json_is_integer(wait)
           ? (wait_ms = json_integer_value(wait) * 1000) < 0
           : rp_parse_duration_ms(json_string_value(wait) ? json_string_value(wait) : "?",
                                  &wait_ms) != 0))
    return error(status, 400, "wait: a duration such as 30m, or seconds");
  if (wait_ms > MAX_WAIT_MS)
    return error(status, 400, "wait: at most 24h");
  const char *spread = json_string_value(json_object_get(body, "spread"));
  if (json_object_get(body, "spread") != NULL &&
      (spread == NULL || (strcmp(spread, "row") != 0 && strcmp(spread, "loop") != 0)))
    return error(status, 400, "spread: row or loop");
  if (validate_strings(json_object_get(body, "hosts")) != 0 ||
      validate_strings(json_object_get(body, "outlets")) != 0)
    return error(status, 400, "hosts/outlets: lists of at most 256 names");
  *q = (struct rp_reservation_req){.rack = rack,
                                   .pool = pool,
                                   .owner = owner,
                                   .cls = cls,
                                   .rank = rank,
                                   .kw = kw,
                                   .start = start,
                                   .end = end,
                                   .preemptible = json_is_true(preemptible),
                                   .wait_ms = wait_ms,
                                   .spread = spread,
                                   .client = json_string_value(json_object_get(body, "client")),
                                   .deploy = json_is_object(json_object_get(body, "deploy"))
                                                 ? json_object_get(body, "deploy")
                                                 : NULL};
  return NULL;
}

static json_t *admit(struct rp_aggregator *a, const json_t *body,
                     const struct rp_reservation_req *q, const struct rp_res_candidates *c,
                     int64_t now, int *status);

json_t *rp_reservation_create(struct rp_aggregator *a, const json_t *body, int64_t now,
                              int *status) {
  struct rp_reservation_req q;
  json_t *invalid = rp_reservation_check(body, now, &q, status);
  if (invalid != NULL)
    return invalid;
  /* The candidate racks: the one named, or the pool's. */
  struct rp_res_candidates *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return error(status, 503, "out of memory");
  rp_res_candidates(a, q.rack, q.pool, c);
  json_t *answer;
  if (c->n == 0) {
    answer = error(status, 404, "pool '%s' has no racks in the policy", q.pool);
  } else {
    rp_ledger_res_lock(a->ledger);
    answer = admit(a, body, &q, c, now, status);
    rp_ledger_res_unlock(a->ledger);
  }
  free(c);
  return answer;
}

/* The record of a request (JSON, as stored), on `rack` ("" while it
 * waits), active. */
static json_t *new_record(const json_t *body, const struct rp_reservation_req *q, const char *rack,
                          int64_t now) {
  char id[17];
  new_id(id);
  json_t *r = json_pack("{s:s, s:s, s:f, s:I, s:I, s:s, s:b, s:s, s:s, s:I}", "id", id, "rack",
                        rack, "kw", q->kw, "start_ms", (json_int_t)q->start, "end_ms",
                        (json_int_t)q->end, "class", q->cls, "preemptible", q->preemptible, "owner",
                        q->owner, "state", "active", "created_ms", (json_int_t)now);
  if (r == NULL)
    return NULL;
  if (q->pool != NULL)
    json_object_set_new(r, "pool", json_string(q->pool));
  if (q->spread != NULL)
    json_object_set_new(r, "spread", json_string(q->spread));
  if (q->client != NULL)
    json_object_set_new(r, "client", json_string(q->client));
  if (q->deploy != NULL)
    json_object_set_new(r, "deploy", json_deep_copy(q->deploy));
  json_t *hosts = json_object_get(body, "hosts"), *outlets = json_object_get(body, "outlets");
  json_object_set_new(r, "hosts", hosts ? json_incref(hosts) : json_array());
  json_object_set_new(r, "outlets", outlets ? json_incref(outlets) : json_array());
  return r;
}

/* Admission proper: the headroom of the candidates, best fit (packing.h),
 * else preemption, else the wait queue; the write. Called with the
 * reservation lock held. */
static json_t *admit(struct rp_aggregator *a, const json_t *body,
                     const struct rp_reservation_req *q, const struct rp_res_candidates *c,
                     int64_t now, int *status) {
  struct rp_res_placement pl;
  rp_res_place(a, c, q->owner, q->spread, q->kw, q->start, q->end, now, &pl);
  if (pl.most == c->n && q->wait_ms == 0)
    return error(status, 409, "cannot admit: %s", pl.why);
  json_t *preempted = json_array();
  const char *best = pl.chosen < c->n ? c->racks[pl.chosen] : NULL;
  if (best == NULL && pl.most < c->n) {
    /* Nothing fits: preemption where the most is free already. */
    const char *most = c->racks[pl.most];
    double free_kw = pl.most_headroom_kw;
    int64_t retry_at = 0;
    double freed =
        preempt(a, most, q->rank, q->start, q->end, q->kw - free_kw, q, now, preempted, &retry_at);
    if (retry_at > 0) {
      /* Notice given: refused until it runs out (README "Reservations"). */
      json_t *e = error(status, 409,
                        "does not fit yet: %.2f kW free on %s, %.2f kW asked; preemptible "
                        "reservations have notice until %lld ms (in %lld s): retry then",
                        free_kw > 0 ? free_kw : 0, most, q->kw, (long long)retry_at,
                        (long long)((retry_at - now + 999) / 1000));
      json_object_set_new(e, "available_kw", json_real(free_kw > 0 ? free_kw : 0));
      json_object_set_new(e, "retry_at_ms", json_integer(retry_at));
      json_object_set_new(e, "noticed", preempted);
      return e;
    }
    if (freed + free_kw >= q->kw)
      best = most;
    else
      snprintf(pl.why, sizeof(pl.why),
               "does not fit: %.2f kW free on %s, %.2f kW asked (class %s takes nothing from "
               "equal or higher classes)",
               free_kw > 0 ? free_kw : 0, most, q->kw, q->cls);
  }
  json_t *r = new_record(body, q, best ? best : q->rack ? q->rack : "", now);
  if (r == NULL) {
    json_decref(preempted);
    return error(status, 503, "out of memory");
  }
  if (best == NULL) {
    json_decref(preempted);
    if (q->wait_ms > 0)
      return rp_res_enqueue(a, r, q->wait_ms, pl.why, now, status);
    json_decref(r);
    json_t *e = error(status, 409, "%s", pl.why);
    json_object_set_new(e, "available_kw",
                        json_real(pl.most_headroom_kw > 0 ? pl.most_headroom_kw : 0));
    return e;
  }
  int rc = rp_ledger_res_put(a->ledger, r);
  if (rc != 0) {
    json_decref(r);
    json_decref(preempted);
    return error(status, 503, "%s", rp_ledger_write_error(rc));
  }
  if (json_array_size(preempted) > 0)
    json_object_set(r, "preempted", preempted);
  json_decref(preempted);
  *status = 201;
  return r;
}

static json_t *extend(struct rp_aggregator *a, const char *id, const json_t *body, int64_t now,
                      int *status);

json_t *rp_reservation_extend(struct rp_aggregator *a, const char *id, const json_t *body,
                              int64_t now, int *status) {
  rp_ledger_res_lock(a->ledger);
  json_t *answer = extend(a, id, body, now, status);
  rp_ledger_res_unlock(a->ledger);
  return answer;
}

static json_t *extend(struct rp_aggregator *a, const char *id, const json_t *body, int64_t now,
                      int *status) {
  json_t *r = rp_ledger_res_get(a->ledger, id);
  if (r == NULL)
    return error(status, 404, "no reservation %s", id);
  int64_t end;
  if (!rp_res_is_active(r)) {
    json_decref(r);
    return error(status, 409, "reservation %s is not active", id);
  }
  if (!json_is_object(body) || rp_reservation_parse_time(json_object_get(body, "end"), &end) != 0) {
    json_decref(r);
    return error(status, 400, "end: required, Unix ms or RFC 3339 UTC time");
  }
  int64_t old_end = rp_res_jint(r, "end_ms");
  if (end <= old_end || end <= now || end - rp_res_jint(r, "start_ms") > MAX_RESERVATION_MS) {
    json_decref(r);
    return error(status, 400, "end must be later than the current end and within 31 days");
  }
  /* The extension [old_end, end) must fit like a new reservation would,
   * with this reservation itself not yet holding that window. */
  double h;
  char why[256] = "";
  const char *rack = json_string_value(json_object_get(r, "rack"));
  if (!rp_res_headroom_kw(a, rack, old_end, end, now, &h, why, sizeof(why)) ||
      h < json_number_value(json_object_get(r, "kw"))) {
    json_t *e = why[0] ? error(status, 409, "cannot extend: %s", why)
                       : error(status, 409, "cannot extend: %.2f kW free after the current end", h);
    json_decref(r);
    return e;
  }
  json_object_set_new(r, "end_ms", json_integer(end));
  int rc = rp_ledger_res_put(a->ledger, r);
  if (rc != 0) {
    json_decref(r);
    return error(status, 503, "%s", rp_ledger_write_error(rc));
  }
  rp_reservation_hide_private(r);
  *status = 200;
  return r;
}

json_t *rp_reservation_release(struct rp_aggregator *a, const char *id, int64_t now, int *status) {
  rp_ledger_res_lock(a->ledger);
  json_t *r = rp_ledger_res_get(a->ledger, id);
  if (r == NULL) {
    rp_ledger_res_unlock(a->ledger);
    return error(status, 404, "no reservation %s", id);
  }
  if (rp_res_is_active(r) || str_eq(json_string_value(json_object_get(r, "state")), "waiting")) {
    json_object_set_new(r, "state", json_string("released"));
    json_object_set_new(r, "released_ms", json_integer(now));
    rp_energy_close(r, now);
    int rc = rp_ledger_res_put(a->ledger, r);
    if (rc != 0) {
      rp_ledger_res_unlock(a->ledger);
      json_decref(r);
      return error(status, 503, "%s", rp_ledger_write_error(rc));
    }
  }
  rp_ledger_res_unlock(a->ledger);
  rp_reservation_hide_private(r);
  *status = 200;
  return r;
}

struct draw {
  const json_t *hosts, *outlets;
  int64_t now, max_age;
  double kw;
  size_t n;
};

static bool in_list(const json_t *arr, const char *s, size_t len) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    const char *x = json_string_value(v);
    if (x && strlen(x) == len && strncmp(x, s, len) == 0)
      return true;
  }
  return false;
}

/* Sums server.power@HOST (the BMC's DCMI or PSU-sum reading) and
 * pdu.outlet.power{outlet=O}@... of the lists, fresh and valid readings
 * only (a missing one makes the sum smaller, never the rack's committed
 * power: what a reservation is not measured to draw stays in the rack's
 * unaccounted draw). */
static void on_draw(void *ctx, const char *key, const struct store_latest *l) {
  struct draw *d = ctx;
  if (l->status != 0 || !isfinite(l->value) ||
      rp_member_age_ms(d->now, l->ts_ms, l->received_ms) > d->max_age)
    return;
  double kw;
  if (strcmp(rp_unit_normalize(l->unit, l->value, &kw), "kW") != 0)
    return;
  const char *at = strrchr(key, '@');
  if (strncmp(key, "server.power", 12) == 0 && (key[12] == '@' || key[12] == '{') && at &&
      in_list(d->hosts, at + 1, strlen(at + 1))) {
    d->kw += kw;
    d->n++;
  } else if (strncmp(key, "pdu.outlet.power{", 17) == 0) {
    const char *o = strstr(key, "outlet=");
    const char *end = o ? strpbrk(o, ",}") : NULL;
    if (o && end && in_list(d->outlets, o + 7, (size_t)(end - o - 7))) {
      d->kw += kw;
      d->n++;
    }
  }
}

/* Measured draw of the reservation's hosts and outlets in an open read;
 * NaN when it names none or none reports. */
static double measured_in(struct store_read *rd, const json_t *r, int64_t now, int64_t max_age) {
  struct draw d = {json_object_get(r, "hosts"), json_object_get(r, "outlets"), now, max_age, 0, 0};
  if (json_array_size(d.hosts) + json_array_size(d.outlets) == 0)
    return NAN;
  store_read_each_latest(rd, json_string_value(json_object_get(r, "rack")), on_draw, &d);
  return d.n > 0 ? d.kw : NAN;
}

double rp_res_measured_kw(struct rp_aggregator *a, const json_t *r, int64_t now) {
  struct store_read *rd;
  if (store_read_begin(a->store, &rd) != 0)
    return NAN;
  double kw = measured_in(rd, r, now, 30000);
  store_read_end(rd);
  return kw;
}

void rp_reservations_commitment(struct rp_ledger *l, struct store_read *rd, const char *rack,
                                const char *except_owner, int64_t from_ms, int64_t to_ms,
                                int64_t now_ms, int64_t max_age_ms, struct rp_commitment *out) {
  json_t *all = rp_ledger_res_list(l);
  rp_reservations_commitment_in(all, rd, rack, except_owner, from_ms, to_ms, now_ms, max_age_ms,
                                out);
  json_decref(all);
}

void rp_reservations_commitment_in(const json_t *all, struct store_read *rd, const char *rack,
                                   const char *except_owner, int64_t from_ms, int64_t to_ms,
                                   int64_t now_ms, int64_t max_age_ms, struct rp_commitment *out) {
  *out = (struct rp_commitment){.detail = json_array()};
  size_t i;
  json_t *r;
  json_array_foreach(all, i, r) {
    if (!rp_res_is_active(r) || !str_eq(json_string_value(json_object_get(r, "rack")), rack) ||
        !overlaps(r, from_ms, to_ms) ||
        str_eq(json_string_value(json_object_get(r, "owner")), except_owner))
      continue;
    double kw = json_number_value(json_object_get(r, "kw"));
    bool running = rp_res_jint(r, "start_ms") <= now_ms && rp_res_jint(r, "end_ms") > now_ms;
    double measured = running ? measured_in(rd, r, now_ms, max_age_ms) : NAN;
    double committed = isfinite(measured) && measured > kw ? measured : kw;
    out->reserved_kw += kw;
    out->committed_kw += committed;
    if (isfinite(measured))
      out->attributed_kw += measured;
    json_t *d = json_pack("{s:O, s:O, s:f, s:f}", "id", json_object_get(r, "id"), "owner",
                          json_object_get(r, "owner"), "kw", kw, "committed_kw", committed);
    if (d != NULL) {
      json_object_set_new(d, "measured_kw", isfinite(measured) ? json_real(measured) : json_null());
      json_array_append_new(out->detail, d);
    }
  }
}

json_t *rp_reservation_list(struct rp_aggregator *a, const char *rack, const char *owner,
                            int64_t now) {
  json_t *all = rp_ledger_res_list(a->ledger), *out = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(all, i, r) {
    if ((rack && !str_eq(json_string_value(json_object_get(r, "rack")), rack)) ||
        (owner && !str_eq(json_string_value(json_object_get(r, "owner")), owner)))
      continue;
    if (rp_res_is_active(r)) {
      double used = rp_res_measured_kw(a, r, now);
      double kw = json_number_value(json_object_get(r, "kw"));
      json_object_set_new(r, "used_kw", isfinite(used) ? json_real(used) : json_null());
      json_object_set_new(r, "utilization", isfinite(used) ? json_real(used / kw) : json_null());
      json_object_set_new(r, "summary", rp_energy_summary(r, now));
    }
    rp_reservation_hide_private(r);
    json_array_append(out, r);
  }
  json_decref(all);
  return json_pack("{s:o}", "reservations", out);
}
