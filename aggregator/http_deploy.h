/* The deploy workflow's part of the HTTP API (http_deploy.c), called from
 * http_api.c's routing: who the caller is and whether it holds the role a
 * change needs, the deploy fields of a request, and the endpoints
 *
 *   GET    /v1/audit/export[?after=SEQ][&limit=N]  the audit log as JSON lines
 *                                 (a header line with the chain's head and
 *                                 tip, then the entries in chain order)
 *   GET    /v1/audit?deploy_id=X  one deploy's entries in chain order
 *   GET    /v1/overrides[?rack=R] overrides in force
 *   POST   /v1/overrides          {rack, for|expires_ms, reason[, deploy_id]} [override]
 *   DELETE /v1/overrides/{id}                                            [override]
 *   POST   /v1/canaries           {rack, kw, duration, baseline, limits}  [reserve]
 *   GET    /v1/canaries/{id}      progress and verdict
 *   GET    /v1/annotations?rack=R[&from=ms][&to=ms]  deploys and decisions as
 *                                 Grafana annotations (JSON API data source) */
#ifndef RACKPULSE_HTTP_DEPLOY_H
#define RACKPULSE_HTTP_DEPLOY_H

#include <microhttpd.h>
#include <stdbool.h>

#include "aggregator.h"
#include "auth.h"
#include "deploy.h"

/* http_api.c's reply helpers (they take ownership of j). */
enum MHD_Result rp_http_reply_json(struct MHD_Connection *conn, unsigned status, json_t *j);
enum MHD_Result rp_http_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg);

/* Authenticates the request (bearer token, or TLS client certificate) into
 * caller->client and checks it holds `role`. Returns true, or false with
 * *status (401 no or bad credentials, 403 without the role or with no
 * client configured) and *why (naming the role). */
bool rp_http_authorize(struct rp_aggregator *a, struct MHD_Connection *conn, enum rp_role role,
                       struct rp_caller *caller, unsigned *status, const char **why);
/* Only authenticates, when credentials were sent: true with caller->client
 * NULL when none were. */
bool rp_http_identify(struct rp_aggregator *a, struct MHD_Connection *conn,
                      struct rp_caller *caller, unsigned *status, const char **why);
/* A decision's caller: identified when it sent credentials, with the
 * deploy fields of the query string (400 when they are malformed). */
bool rp_http_reader(struct rp_aggregator *a, struct MHD_Connection *conn, struct rp_caller *caller,
                    unsigned *status, const char **why);
/* The role a change (method, url) needs. */
enum rp_role rp_http_route_role(const char *method, const char *url);
/* The deploy fields of a GET's query string into caller. */
bool rp_http_deploy_args(struct MHD_Connection *conn, struct rp_caller *caller, const char **why);

/* The endpoints above; *handled false when url is not one of them. */
enum MHD_Result rp_http_deploy_get(struct rp_aggregator *a, struct MHD_Connection *conn,
                                   const char *url, bool *handled);
enum MHD_Result rp_http_deploy_change(struct rp_aggregator *a, struct MHD_Connection *conn,
                                      const char *method, const char *url, json_t *body,
                                      const struct rp_caller *caller, bool *handled);

/* http_change.c: a change (POST/DELETE) by an authorized caller, body
 * parsed (NULL for DELETE) and its deploy fields taken out. */
enum MHD_Result rp_http_change(struct rp_aggregator *a, struct MHD_Connection *conn,
                               const char *method, const char *url, json_t *body,
                               const struct rp_caller *caller);

#endif
