/* reservations_internal.h: what reservations.c and res_place.c (placement
 * on a pool's racks and the wait queue) share. Not for other callers: the
 * API is reservations.h. */
#ifndef RACKPULSE_RESERVATIONS_INTERNAL_H
#define RACKPULSE_RESERVATIONS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ledger.h"
#include "packing.h"
#include "reservations.h"

struct rp_aggregator;

#define RP_RES_MAX_CANDIDATES 256

/* The racks a request may land on: the one it names, or its pool's, with
 * each one's row and loop (for spreading). */
struct rp_res_candidates {
  const char *pool;
  char racks[RP_RES_MAX_CANDIDATES][RP_ID_MAX + 1];
  char row[RP_RES_MAX_CANDIDATES][32], loop[RP_RES_MAX_CANDIDATES][32];
  size_t n;
};

/* Fills *c for `rack` (one candidate) or `pool` (its racks in the policy). */
void rp_res_candidates(struct rp_aggregator *a, const char *rack, const char *pool,
                       struct rp_res_candidates *c);

/* Power headroom of `rack` over [from, end), measured at `now` (the least
 * of the gate's power and topology checks, in kW). false with why when it
 * cannot be known. */
bool rp_res_headroom_kw(struct rp_aggregator *a, const char *rack, int64_t from, int64_t end,
                        int64_t now, double *headroom, char *why, size_t whylen);
/* The same with every reservation already read (borrowed; NULL: read). */
bool rp_res_headroom_in(struct rp_aggregator *a, const json_t *all, const char *rack, int64_t from,
                        int64_t end, int64_t now, double *headroom, char *why, size_t whylen);

/* A placement: the chosen candidate (best fit, packing.h) or none, and the
 * one with the most headroom (where preemption would free power). */
struct rp_res_placement {
  size_t chosen; /* == c->n: none holds the request */
  size_t most;   /* == c->n: no headroom known at all (why says why) */
  double most_headroom_kw;
  char why[256];
};
/* Evaluates every candidate for `kw` over [start, end) at `now`; spreads
 * by `spread` ("row", "loop" or NULL) against `owner`'s reservations.
 * Call with the reservation lock held. */
void rp_res_place(struct rp_aggregator *a, const struct rp_res_candidates *c, const char *owner,
                  const char *spread, double kw, int64_t start, int64_t end, int64_t now,
                  struct rp_res_placement *out);

/* Puts a request that does not fit yet in the wait queue (state
 * "waiting", "wait_until_ms"): the 202 answer. Lock held. */
json_t *rp_res_enqueue(struct rp_aggregator *a, json_t *record, int64_t wait_ms, const char *why,
                       int64_t now, int *status);

/* Admits waiting requests that fit now (oldest first; "admitted" event),
 * refuses those whose wait has ended ("refused" event). Returns how many
 * changed. Lock held. */
int rp_res_serve_queue(struct rp_aggregator *a, int64_t now);

/* An audit entry and an event about reservation r (what: preempted,
 * preempt-notice, admitted, refused). Lock held; neither waits. */
void rp_res_announce(struct rp_aggregator *a, const json_t *r, const char *what, int64_t at_ms,
                     const char *reason, int64_t now);

/* A reservation's state is "active". */
bool rp_res_is_active(const json_t *r);
/* An integer field of o (0 when absent). */
int64_t rp_res_jint(const json_t *o, const char *key);
/* Preempts r now (state "preempted", energy closed, written, announced);
 * left active when the write fails. Lock held. */
void rp_res_revoke(struct rp_aggregator *a, json_t *r, const char *reason, int64_t now);
/* What r's hosts and outlets draw now (kW), NaN when it names none or
 * none reports freshly. */
double rp_res_measured_kw(struct rp_aggregator *a, const json_t *r, int64_t now);

#endif
