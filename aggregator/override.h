/* Overrides: a client with the override role allows deploys the gate
 * denies on one rack, for a bounded time (at most 24 h), with a reason;
 * optionally only for one deploy (the deploy_id it was created with).
 * Every gate decision it turns from deny to allow carries it ("override":
 * who, why, until when, and the checks that denied). It expires by
 * itself; creation, revocation and expiry are audited. Kept in memory: a
 * restart ends every override (the safe side: gates deny again). In a
 * cluster each creation and revocation is first written to the ledger
 * topic (kind "override", keyed by its id; a revocation a tombstone), and
 * one the topic does not acknowledge is not made (503): the member that
 * is assigned the rack's partition rebuilds the overrides in force from it
 * (changelog.c), so they follow the rack and survive the owner; expiry is
 * by time, on every member. Thread-safe. */
#ifndef RACKPULSE_OVERRIDE_H
#define RACKPULSE_OVERRIDE_H

#include <jansson.h>
#include <stdint.h>

#include "deploy.h"

#define RP_OVERRIDE_MAX_MS (24LL * 3600 * 1000)

struct rp_aggregator;
struct rp_overrides;

int rp_overrides_new(struct rp_overrides **out);
void rp_overrides_free(struct rp_overrides *o);

/* POST /v1/overrides: body {rack, reason, for ("30m") or expires_ms}. The
 * record (new reference), or NULL with *status and *why. */
json_t *rp_override_create(struct rp_aggregator *a, const json_t *body,
                           const struct rp_caller *caller, int64_t now, unsigned *status,
                           const char **why);
/* DELETE /v1/overrides/{id}: ends it now. */
json_t *rp_override_revoke(struct rp_aggregator *a, const char *id, const struct rp_caller *caller,
                           int64_t now, unsigned *status, const char **why);
/* From the ledger topic (changelog.c): replaces override `id` with rec, or
 * removes it when rec is NULL; one past its end is not kept. */
void rp_override_restore(struct rp_overrides *o, const char *id, const json_t *rec, int64_t now);
/* Forgets the overrides of the racks match() says (a partition rebuilt). */
void rp_overrides_drop_if(struct rp_overrides *o, bool (*match)(void *ctx, const char *rack),
                          void *ctx);
/* The rack of override `id` when this member holds it. */
bool rp_override_rack(struct rp_overrides *o, const char *id, char rack[65]);
/* The overrides in force (of `rack`, NULL: all). New reference. */
json_t *rp_overrides_list(struct rp_overrides *o, const char *rack, int64_t now);
/* Turns a gate decision "deny" into "allow" when an override of its rack
 * (for `deploy_id`, or for any deploy) is in force, recording it in the
 * decision. Returns true when it did. */
bool rp_override_apply(struct rp_overrides *o, json_t *decision, const char *deploy_id,
                       int64_t now);
/* Ends overrides past their time, each with an audit entry
 * "override_expired". Returns how many. */
int rp_overrides_expire(struct rp_aggregator *a, int64_t now);

#endif
