/* What forward.c and fanout.c share: a request as it goes to another
 * member, an answer as it comes back, and how both are sent. */
#ifndef RACKPULSE_FORWARD_INTERNAL_H
#define RACKPULSE_FORWARD_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "aggregator.h"
#include "cluster.h"

/* A request as it goes upstream. */
struct outbound {
  const char *method, *path; /* path with its query string */
  const char *body;
  size_t len;
  const char *auth; /* the caller's Authorization header, or NULL */
  int hops;         /* the hop count to send */
  const char *ca;   /* CA file for https:// members, or NULL */
};

/* An upstream answer; body is the caller's to free. */
struct answer {
  long status;
  char *body;
  size_t len;
  char answered_by[65];
  char err[CURL_ERROR_SIZE];
  bool failed; /* no HTTP answer at all: err says why */
};

/* The same request to every member of to[0..n) at once, waiting at most
 * timeout_ms; answers[i] (zeroed by the caller) for to[i]. */
void rp_forward_request_all(const struct rp_member_addr *to, size_t n, const struct outbound *req,
                            long timeout_ms, struct answer *answers);

/* Answers j (stolen) with status, stamped with this member's id. */
enum MHD_Result rp_forward_respond_json(struct MHD_Connection *conn, unsigned status, json_t *j);

/* fanout.c: a site-wide GET sent to every live member and merged. */
enum MHD_Result rp_fanout(struct rp_aggregator *a, struct MHD_Connection *conn, const char *url,
                          const struct outbound *req);

#endif
