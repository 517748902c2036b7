/* Cross-file declarations of the Redfish collector, internal to
 * agent/redfish/ (names rf__*):
 *   redfish_config.c   a device from its YAML (the field table, the
 *                      password, TLS settings, the profile); --help; reloads
 *   redfish_curl.c     libcurl, loaded when a Redfish device is configured
 *   redfish_http.c     libcurl's multi interface on the libuv loop (one per
 *                      agent, the collector's shared state), requests
 *   redfish_discover.c the walk from the service root to the plan of a scrape
 *   redfish_collect.c  a scrape: session, the layout check, the plan's
 *                      requests in parallel, the deadline, the readings; the
 *                      const struct rp_collector_redfish
 *   redfish_sse.c      TelemetryService metric reports over SSE
 *   redfish_map.c      pure: resources to readings (redfish_map.h)
 * Loop thread only, like every collector. */
#ifndef RP_AGENT_REDFISH_INTERNAL_H
#define RP_AGENT_REDFISH_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent.h"
#include "redfish_map.h"

#define RF_URI_MAX 256
#define RF_SECRET_MAX 256
#define RF_PLAN_MAX 256  /* resources one device's scrape reads */
#define RF_FETCH_MAX 512 /* resources one discovery may read */
#define RF_BODY_MAX (4u << 20)
#define RF_RECONCILE_EVERY 10 /* scrapes: pushed resources are read anyway */

struct rf_cfg {
  char name[64];
  char host[256];
  int64_t port;
  char user[128];
  char password_file[256], password_env[128];
  char auth[16]; /* session or basic */
  char ca_file[256];
  bool insecure;
  char profile[64];
  bool expand, sse;
  int64_t timeout_ms, interval_ms;
};

/* libcurl's calls (redfish_curl.c): the agent is not linked to libcurl;
 * rf__curl_load() loads it when a configuration has a Redfish device, and
 * every rf__curl.f(...) is libcurl's curl_f(...). */
struct rf_curl {
  CURLcode (*global_init)(long flags);
  void (*global_cleanup)(void);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *easy);
  CURLcode (*easy_setopt)(CURL *easy, CURLoption option, ...);
  CURLcode (*easy_getinfo)(CURL *easy, CURLINFO info, ...);
  const char *(*easy_strerror)(CURLcode code);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_cleanup)(CURLM *multi);
  CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
  CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
  CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
  CURLMcode (*multi_assign)(CURLM *multi, curl_socket_t fd, void *data);
  CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t fd, int events, int *running);
  CURLMsg *(*multi_info_read)(CURLM *multi, int *left);
  struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
  void (*slist_free_all)(struct curl_slist *list);
};
extern struct rf_curl rf__curl;
/* Loads libcurl once: 0, or -1 with err saying why. */
int rf__curl_load(char *err, size_t errlen);

/* The agent's libcurl multi handle, driven by libuv: the collector's
 * shared state (rp_collector_state). */
struct rf_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct rf_sock *socks; /* watched sockets, a list */
  int handles;           /* libuv handles not yet closed */
};

struct rf_req;
typedef void (*rf_req_cb)(struct rf_req *q);

/* One HTTP request in flight. The body and headers the answer brought are
 * kept until the callback returns; then the request is freed. */
struct rf_req {
  CURL *easy;
  struct rf_http *h;
  struct rf_dev *d;
  rf_req_cb cb;
  int slot; /* the caller's: plan index, fetch index, ... */
  struct curl_slist *headers;
  char *body;
  size_t len, cap;
  bool too_big;
  long status;     /* HTTP status, 0 when no answer */
  CURLcode result; /* CURLE_OK when an answer came */
  char curl_err[CURL_ERROR_SIZE];
  char etag[96];   /* from the answer */
  char token[128]; /* X-Auth-Token of a login answer (secret) */
  char location[RF_URI_MAX];
  char *post;          /* a request body (the login's: secret, zeroed) */
  struct rf_req *next; /* the device's requests in flight */
  /* SSE: called for each complete "data:" event while the stream runs. */
  void (*on_event)(struct rf_req *q, const char *data, size_t len);
  size_t sse_used;
};

/* One resource a scrape reads. */
struct rf_plan {
  char uri[RF_URI_MAX];
  enum rf_kind kind;
  bool expand; /* a collection read with $expand */
  bool shelf, legacy_total, legacy_psu, sensor_psu, many;
  char unit[48]; /* the CDU's, PDU's or chassis' Id (label when `many`) */
  char etag[96];
  json_t *last;      /* the last document read (304 reuses it) */
  int64_t pushed_ms; /* last SSE update of `last`, monotonic */
  char error[200];   /* this scrape's failure, empty when read */
};

/* Discovery: a resource to read and what it is. */
enum rf_role {
  RF_R_CHASSIS_COLL,
  RF_R_CHASSIS,
  RF_R_THERMAL_SUB,
  RF_R_POWER_SUB,
  RF_R_PSU_COLL,
  RF_R_PSU,
  RF_R_TE,
  RF_R_CDU_COLL,
  RF_R_CDU,
  RF_R_LEAKDET,
  RF_R_PE,
  RF_R_PDU_COLL,
  RF_R_PDU,
  RF_R_MEMBERS, /* a collection whose members become plan entries of `kind` */
  RF_R_EVENTS,
};

struct rf_fetch {
  char uri[RF_URI_MAX];
  enum rf_role role;
  enum rf_kind kind; /* RF_R_MEMBERS */
  bool shelf, many;
  char unit[48];
};

enum rf_phase { RF_IDLE, RF_LOGIN, RF_ROOT, RF_DISCOVER, RF_POLL };

struct rf_dev {
  struct rf_cfg cfg;
  char password[RF_SECRET_MAX]; /* zeroed before it is freed */
  char base[300];               /* https://host:port */
  struct rf_oem *oem;           /* the profile's OEM readings */
  size_t noem;
  struct rp_target *t;
  struct rf_http *h;
  /* Session. */
  char token[128]; /* X-Auth-Token, empty when none (secret) */
  char session_uri[RF_URI_MAX];
  /* Service. */
  bool discovered;
  uint64_t root_hash; /* of the service root's links, at discovery */
  char root_etag[96];
  bool can_expand, can_select;
  char sse_uri[RF_URI_MAX];
  /* Plan. */
  struct rf_plan *plan;
  size_t nplan, capplan;
  /* Discovery in progress. */
  struct rf_fetch *fetch;
  size_t nfetch, capfetch, fetch_done;
  /* A scrape. */
  enum rf_phase ph;
  int64_t ts_ms;
  uv_timer_t deadline;
  bool deadline_init;
  bool *closed;            /* set by the deadline's close callback when someone waits */
  struct rf_req *inflight; /* list */
  int pending;
  bool failed;
  char error[320];
  bool relogged; /* this scrape already logged in again after a 401 */
  bool got_401;
  bool rediscover; /* the layout changed: walk again at the next scrape */
  struct rf_out out;
  struct rp_reading *readings; /* handed to rp_target_done() */
  size_t capreadings;
  bool stream_next; /* the next request is the SSE stream (no timeout) */
  /* SSE. */
  struct rf_req *sse;
  int64_t sse_last_ms; /* monotonic, last event */
  bool sse_said_down;
  uint64_t sse_events;
  uint64_t scrapes; /* reads of the plan */
};

/* redfish_config.c */
int rf__create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
               const char *where, char *err, size_t errlen);
void rf__dev_free(struct rf_dev *d);
bool rf__same_config(const struct rp_target *a, const struct rp_target *b);
void rf__config_help(FILE *out);

/* redfish_http.c. The agent's multi handle, made on first use and stored
 * in the collector's slot; NULL when out of memory. */
struct rf_http *rf__http(struct rp_agent *a);
void rf__http_free(void *state);
/* Starts a request to d->base + path (method GET unless `post` is
 * non-NULL: POST of that JSON; `del`: DELETE). The device's settings (TLS,
 * basic auth or its token, the deadline) apply. The callback runs on the
 * loop once the answer is in, or the request failed; the request is freed
 * after it. NULL when it could not start. */
struct rf_req *rf__request(struct rf_dev *d, const char *path, const char *post, bool del,
                           const char *etag, rf_req_cb cb, int slot);
/* Ends every request of d in flight without calling their callbacks. */
void rf__cancel_all(struct rf_dev *d);
/* Parses a request's body; NULL with why set when it is not a JSON object. */
json_t *rf__parse(struct rf_req *q, char *why, size_t len);
/* "device: https://host:port/path: " prefix failures and marks the scrape
 * failed (the first failure of a scrape wins). */
void rf__fail(struct rf_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The URI part of a request, for messages. */
const char *rf__req_path(const struct rf_req *q);

/* redfish_discover.c. Walks from the service root document `root` to
 * d->plan; calls rf__discovered(d) when done (on failure d->failed). */
void rf__discover(struct rf_dev *d, const json_t *root);
void rf__plan_clear(struct rf_dev *d);
uint64_t rf__root_hash(const json_t *root);

/* redfish_collect.c */
void rf__discovered(struct rf_dev *d);

/* redfish_sse.c. Opens the TelemetryService stream when the service has
 * one and it is not open; its events update the plan's documents. */
void rf__sse_ensure(struct rf_dev *d);
/* True when the stream delivered an event within two intervals. */
bool rf__sse_fresh(const struct rf_dev *d);

#endif
