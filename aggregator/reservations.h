/* Power reservations: kW held on a rack (or the best rack of a pool) for a
 * time window, by an owner, with a priority class (gold > silver > bronze)
 * and optionally the hosts or outlets that will draw it. Reserved power
 * counts against gate headroom for everyone but its owner. Admission
 * rejects a reservation that does not fit; a higher class may preempt
 * preemptible lower-class reservations, never the reverse; with
 * reservations.preempt_notice the victims get a notice (event and audit)
 * and are revoked only when it runs out, while the preempting request is
 * refused with the time to retry. Utilization =
 * measured draw of the reservation's hosts/outlets ÷ reserved kW; a
 * reservation past its end, or unused past its grace period, expires.
 *
 * A reservation (JSON, as stored and answered):
 *   {"id", "rack", "pool", "kw", "start_ms", "end_ms", "class", "preemptible",
 *    "owner", "hosts": [..], "outlets": [..], "state": active|released|
 *    expired|preempted, "created_ms", "reason"} */
#ifndef RACKPULSE_RESERVATIONS_H
#define RACKPULSE_RESERVATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ledger.h"

struct rp_aggregator;

/* kW of active reservations on `rack` overlapping [from, to), leaving out
 * those of `except_owner` and the one with `except_id` (either may be
 * NULL). */
double rp_reservations_reserved_kw(struct rp_ledger *l, const char *rack, const char *except_owner,
                                   int64_t from_ms, int64_t to_ms);

struct store_read;

/* What the reservations of `rack` commit over [from, to) (every watt once,
 * see README "Power model"): each active reservation overlapping the window
 * (but those of `except_owner`) counts max(its kW, its measured draw); its
 * measured draw is the sum of its hosts' server.power and its outlets'
 * pdu.outlet.power readings fresh within max_age_ms, taken only while it
 * runs (start <= now < end). A reservation that names no host or outlet, or
 * whose readings are all missing or stale, is estimated to draw nothing of
 * the rack's measured draw: it counts in full on top of that draw (as
 * before), never hiding other load. attributed_kw is what the counted
 * reservations are measured to draw now, which the caller takes out of the
 * rack's draw so that it is not counted twice. */
struct rp_commitment {
  double reserved_kw;   /* Σ reserved kW */
  double committed_kw;  /* Σ max(reserved kW, measured draw) */
  double attributed_kw; /* Σ measured draw */
  json_t *detail;       /* [{id, owner, kw, measured_kw|null, committed_kw}], new reference */
};
void rp_reservations_commitment(struct rp_ledger *l, struct store_read *r, const char *rack,
                                const char *except_owner, int64_t from_ms, int64_t to_ms,
                                int64_t now_ms, int64_t max_age_ms, struct rp_commitment *out);

/* The same over the reservations `all` already read (rp_ledger_res_list),
 * for callers that count several racks in one evaluation. */
void rp_reservations_commitment_in(const json_t *all, struct store_read *r, const char *rack,
                                   const char *except_owner, int64_t from_ms, int64_t to_ms,
                                   int64_t now_ms, int64_t max_age_ms, struct rp_commitment *out);

/* A create request's body, validated by rp_reservation_check(): the
 * strings point into the body, which must outlive it. */
struct rp_reservation_req {
  const char *rack, *pool; /* exactly one is set */
  const char *owner, *cls; /* cls: "silver" when the body has none */
  int rank;                /* of cls: 0 bronze, 1 silver, 2 gold */
  double kw;               /* (0, 100000] */
  int64_t start, end;      /* Unix ms; start < end, now < end, at most 31 days */
  bool preemptible;
  int64_t wait_ms;    /* "wait": may wait this long in the queue when it does not fit */
  const char *spread; /* "spread": "row", "loop" or NULL */
  /* Who asks: "client" and "deploy", set by the API from the authenticated
   * caller (never taken from what a client sends); NULL when absent. */
  const char *client;
  const json_t *deploy;
};

/* Checks a create request's body at time now_ms without touching any
 * state (the pure part of rp_reservation_create()). Returns NULL and fills
 * *req when it is valid, else the 400 answer ({"error": ...}, new
 * reference) with *status set. */
json_t *rp_reservation_check(const json_t *body, int64_t now_ms, struct rp_reservation_req *req,
                             int *status);

/* A time as Unix milliseconds (a positive integer) or RFC 3339 UTC text
 * ("2026-11-22T18:00:00Z"). Returns 0 and *ms, or -EINVAL. */
int rp_reservation_parse_time(const json_t *v, int64_t *ms);

/* The API. Each returns the JSON answer and sets *status (201/200, or a
 * 4xx with {"error": ...}). */
json_t *rp_reservation_create(struct rp_aggregator *a, const json_t *body, int64_t now_ms,
                              int *status);
json_t *rp_reservation_extend(struct rp_aggregator *a, const char *id, const json_t *body,
                              int64_t now_ms, int *status);
json_t *rp_reservation_release(struct rp_aggregator *a, const char *id, int64_t now_ms,
                               int *status);
json_t *rp_reservation_list(struct rp_aggregator *a, const char *rack, const char *owner,
                            int64_t now_ms);

/* A reservation as the API answers it, the audit log keeps it and the
 * ledger topic carries it: without the owning member's own bookkeeping
 * ("published_ms", when the upkeep last sent its energy to the ledger
 * topic, by that member's clock), which stays in its local ledger only. A
 * new owner rebuilt from the topic has none and publishes at its first
 * pass. rp_reservation_public returns a new reference (r itself when it
 * holds none of it); rp_reservation_hide_private removes it from r. */
json_t *rp_reservation_public(const json_t *r);
void rp_reservation_hide_private(json_t *r);

/* Expires reservations past their end, or unused: started more than
 * reservations.unused_grace ago and every reading of their hosts/outlets
 * for reservations.idle_window under idle_threshold of their kW (the first
 * low reading is kept as "idle_since_ms"; a higher, missing or stale one
 * clears it). Revokes reservations whose preemption notice has run out
 * ("preempt_at_ms"), with an event and an audit entry. Returns how many
 * ended. */
int rp_reservations_expire(struct rp_aggregator *a, int64_t now_ms);

/* Prometheus lines: per owner reserved and used kW (hoarding figures). */
void rp_reservations_metrics(struct rp_aggregator *a, FILE *out, int64_t now_ms);

#endif
