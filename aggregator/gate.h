/* The deploy gate: "may N more kW land on this rack now?" Every check of
 * the rack's policy (policy.h) is evaluated and reported with its observed
 * value, limit, unit, pass/fail and reason; the rack is allowed only when
 * every check passes. Missing, stale or invalid telemetry fails closed
 * (per check: fail_closed). A check trips only after `persist` consecutive
 * out-of-band samples (or `persist_for`), and clears only `hysteresis` back
 * inside its band, so one noisy reading does not flap a gate.
 *
 * Thread-safe: HTTP threads evaluate concurrently; the policy is swapped on
 * reload under a lock, and per-rack check state has its own lock (states are
 * allocated one by one and never move, so racks may be added while others
 * are evaluated). */
#ifndef RACKPULSE_GATE_H
#define RACKPULSE_GATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ledger.h"
#include "policy.h"
#include "store.h"

struct rp_gate;

struct rp_gate_request {
  const char *rack;
  double kw;              /* power the work will add */
  const char *class_name; /* NULL: the rack's own limits */
  /* An authenticated caller may ask for any class; others only for one at
   * least as strict as the rack's own (rp_policy_set_as_strict), else 403. */
  bool trusted;
  const char *owner;   /* reservations of this owner do not count against it */
  int64_t duration_ms; /* how long the work runs (reservations overlapping it count) */
  /* Or an explicit window for the reservations that count (0, 0: now to
   * now + duration), as admission of a future reservation needs. */
  int64_t window_from_ms, window_to_ms;
  /* A view, not a request for work (the upkeep pass behind /v1/floor,
   * events.c): not counted in the decision and denial metrics. */
  bool uncounted;
  /* Every reservation as rp_ledger_res_list() answers, when the caller has
   * read them already (admission, under the reservation lock: one read for
   * all its candidates); NULL: the gate reads them. Borrowed. */
  const json_t *reservations;
};

/* Takes ownership of `policy`. Returns 0 or -ENOMEM. */
int rp_gate_new(struct rp_policy *policy, struct rp_gate **out);
void rp_gate_free(struct rp_gate *g);

/* Replaces the policy with the file at `path` if it validates; otherwise
 * returns a negative errno with err naming file:line and the old policy
 * stays. */
int rp_gate_reload(struct rp_gate *g, const char *path, char *err, size_t errlen);

/* Copies the version of the policy in force. */
void rp_gate_policy_version(struct rp_gate *g, char *out, size_t len);

/* Runs `fn` with the policy in force (read-locked for the call). */
void rp_gate_with_policy(struct rp_gate *g, void (*fn)(void *ctx, const struct rp_policy *p),
                         void *ctx);

/* Evaluates the gate. Returns the decision (new reference) or NULL with
 * *http_status (404 unknown rack, 400 unknown class, 403 a class looser
 * than the rack's own asked by an untrusted caller, 503 store) and err.
 * Trip state (persistence, hysteresis) is kept per rack and class. */
json_t *rp_gate_evaluate(struct rp_gate *g, struct store *s, struct rp_ledger *ledger,
                         const struct rp_gate_request *q, int64_t now_ms, int *http_status,
                         char *err, size_t errlen);

/* Prometheus lines: decisions by outcome, denials by check. */
void rp_gate_metrics(struct rp_gate *g, FILE *out);

#endif
