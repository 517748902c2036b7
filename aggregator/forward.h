/* Request routing between the members of a site (forward.c, fanout.c):
 * requests about a rack this member does not own go to the owner, site-wide
 * queries fan out to every live member and are merged. */
#ifndef RACKPULSE_FORWARD_H
#define RACKPULSE_FORWARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "aggregator.h"

/* libcurl's global state: once at start, before any thread uses it, and
 * once at exit. Returns 0 or -EIO. */
int rp_forward_global_init(void);
void rp_forward_global_cleanup(void);

/* Called by the HTTP API with a complete request (body included) before it
 * serves it. Returns false when the request is this member's to answer
 * (always without a cluster); true when it was answered here by routing
 * (forwarded, fanned out, or refused), with *result to return to MHD. */
bool rp_forward_route(struct rp_aggregator *a, struct MHD_Connection *conn, const char *method,
                      const char *url, const char *body, size_t len, enum MHD_Result *result);

#endif
