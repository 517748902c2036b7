/* rackpulsectl's shared pieces (ctl_http.c): the parsed command line, the
 * HTTP call to the aggregator (libcurl, HTTPS verified against --cacert),
 * the bearer token, the deploy fields of a request (flags, else the CI's
 * environment), and the commands kept in files of their own. */
#ifndef RACKPULSE_CTL_COMMON_H
#define RACKPULSE_CTL_COMMON_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define EXIT_ALLOW 0
#define EXIT_DENY 1
#define EXIT_ERROR 2

struct args {
  const char *base, *rack, *kw, *pool, *cls, *owner, *duration, *count;
  const char *start, *end, *id, *flag, *reason, *for_, *hosts, *outlets;
  const char *since, *until, *limit, *token_file, *device, *row, *loop, *wait, *spread;
  /* deploy correlation (ctl_deploy_*) */
  const char *deploy_id, *commit, *pipeline_url, *requester;
  /* TLS: the CA to verify the aggregator with; a client certificate */
  const char *cacert, *cert, *key;
  /* audit verify: an export file or the ledger's audit directory */
  const char *file, *ledger;
  /* watch */
  const char *baseline, *max_power_rise, *max_temp_rise, *max_slope, *max_stale, *interval;
  const char *power_series, *temp_series;
  bool json, preemptible;
};

/* Sets the TLS options of every call (ctl_tls_options) from a. */
void ctl_tls_init(const struct args *a);
void ctl_tls_options(CURL *curl);

/* One request. Returns the parsed JSON answer (or NULL, with a message on
 * stderr) and the HTTP status in *status. `body` (may be NULL) is sent as
 * JSON; `token` (may be NULL) as a bearer token. */
json_t *ctl_call(const char *method, const char *base, const char *path, const json_t *body,
                 const char *token, long *status);
/* GET base+path as text (not JSON): the answer (malloc'd) or NULL with a
 * message on stderr; header `want` (may be NULL) copied to hdr. */
char *ctl_get_text(const char *base, const char *path, size_t *len, long *status, const char *want,
                   char *hdr, size_t hdrlen);
void ctl_print_json(const json_t *j);
/* Prints the API's error and returns EXIT_ERROR, or 0 when status is 2xx. */
int ctl_check_status(const char *what, long status, const json_t *j);
/* Appends "&key=value" (URL-escaped) when value is set. */
void ctl_add_query(char *path, size_t len, const char *key, const char *value);
/* The bearer token for changes; false (said on stderr) if absent. */
bool ctl_read_token(const struct args *a, char *token, size_t len);
/* GET PATH and print it (JSON, or `human` when given and not --json). */
int ctl_show(const struct args *a, const char *what, const char *path,
             void (*human)(const json_t *));

/* The deploy fields: --deploy-id, --commit, --pipeline-url, --requester,
 * else $RACKPULSE_DEPLOY_ID..., else the CI's own variables (GitHub
 * Actions, GitLab CI, Jenkins). Added to a query string or a body. */
void ctl_deploy_query(const struct args *a, char *path, size_t len);
void ctl_deploy_body(const struct args *a, json_t *body);

/* A change: method, path and body (may be NULL) with the token (or client
 * certificate) and the deploy fields (the body's, or the query's without
 * one). The answer as ctl_call gives it; NULL (said on stderr) without a
 * token or on a transport error. */
json_t *ctl_change(const struct args *a, const char *method, const char *path, const json_t *body,
                   long *status);

/* ctl_audit.c: audit verify [--file F | --ledger DIR], audit export,
 * audit --deploy-id X. */
int ctl_audit(const struct args *a, const char *sub);
/* ctl_watch.c: watch (a canary soak), override (allow a denied deploy). */
int ctl_watch(const struct args *a);
int ctl_override(const struct args *a, const char *sub);

#endif
