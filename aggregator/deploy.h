/* Deploy correlation and the audit record of every decision and change.
 *
 * A caller of the API is a named client (auth.h; NULL when it sent no
 * credentials) and, optionally, the deploy it acts for:
 *
 *   deploy_id     the pipeline's id for this deploy (1..128 printable)
 *   commit        the commit being deployed (1..64 of [0-9A-Za-z._-])
 *   pipeline_url  the pipeline run (http:// or https://, at most 512)
 *   requester     the person or bot who asked (1..128 printable)
 *
 * given as query arguments of a GET or as fields of a POST body.
 * rp_audit_record stamps an audit entry with them, the client, the policy
 * version and an id and time, and queues it (ledger.h); an entry that
 * cannot be queued fails the request that caused it (counted in
 * rackpulse_audit_dropped_total and logged). */
#ifndef RACKPULSE_DEPLOY_H
#define RACKPULSE_DEPLOY_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"

struct rp_aggregator;

struct rp_caller {
  const struct rp_client *client; /* NULL: anonymous; else often &who */
  struct rp_client who;           /* the identified client (no secret) */
  const char *via;                /* "token", "cert", or NULL */
  json_t *deploy;                 /* NULL, or the correlation fields (owned) */
};

/* Sets c->deploy from the four fields (any NULL). Returns 0, or -EINVAL
 * with *why naming the field. */
int rp_deploy_from_fields(struct rp_caller *c, const char *deploy_id, const char *commit,
                          const char *pipeline_url, const char *requester, const char **why);
/* The same from a request body, removing the fields from it (so that the
 * body's own validation never sees them). */
int rp_deploy_from_body(struct rp_caller *c, json_t *body, const char **why);
void rp_caller_clear(struct rp_caller *c);

/* The deploy id of c, or NULL. */
const char *rp_caller_deploy_id(const struct rp_caller *c);

/* Completes `entry` (a JSON object holding at least "rack" or
 * "action") with "client", "deploy", "policy_version", "decision_id" and
 * "evaluated_at_ms" where absent (client "aggregator" when c is NULL: the
 * aggregator's own actions), and queues it for the audit log.
 * Returns 0, or a negative errno when it was not kept (logged, counted). */
int rp_audit_record(struct rp_aggregator *a, const struct rp_caller *c, json_t *entry,
                    int64_t now_ms);

/* Prometheus lines of the deploy markers (the newest event of each kind
 * per rack, with its deploy id) for dashboard annotations. */
void rp_deploy_metrics(FILE *out, int64_t now_ms);

/* A random 128-bit id in hex, "prefix-" first when prefix is given. */
void rp_deploy_new_id(const char *prefix, char *out, size_t len);

#endif
