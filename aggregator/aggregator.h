/* rackpulse-aggregator internals shared across its files: configuration,
 * the ingest counters that /metrics reads, and each file's entry points. */
#ifndef RACKPULSE_AGGREGATOR_H
#define RACKPULSE_AGGREGATOR_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rackpulse/kafka_props.h"
#include "store.h"

/* The policy section of aggregator.yaml: a policy file, or the built-in
 * policy's few settings (see policy.h). */
struct rp_policy_config {
  char file[512]; /* a policy file; empty: the built-in policy */
  char version[64];
  int64_t max_staleness_ms;    /* telemetry older than this fails closed */
  double supply_temp_max;      /* °C, latest supply temperature */
  char supply_temp_series[64]; /* the series that carries it */
};

struct rp_aggregator_config {
  char config_path[512];
  struct {
    char brokers[512];
    char topic[128];
    char group[128];
    int64_t batch_max;
    int64_t batch_wait_ms;
    char events_topic[128];
    char audit_topic[128];        /* empty: audit records stay local (audit_topic.c) */
    char ledger_topic[128];       /* a cluster's reservations and flags (changelog.c) */
    char sasl_password_file[256]; /* sasl.password, read at start (kafka_conf.c) */
    size_t nprops;                /* kafka.properties, passed through */
    struct rp_kafka_prop props[32];
  } kafka;
  struct {
    char path[256];
    int64_t map_size_mb;
    int64_t map_size_max_mb;
    char sync[16];            /* full, meta or periodic (store.h, Durability) */
    int64_t sync_interval_ms; /* periodic: the disk sync's period */
  } store;
  struct {
    char listen[64];
    int64_t port;
    int64_t threads;
    int64_t max_connections;
    double rate_limit;       /* requests/s per client address; 0: none */
    double rate_burst;       /* requests a client may make at once */
    char tokens_file[512];   /* named clients and roles (auth.h) */
    char tls_cert[512];      /* HTTPS: certificate (PEM); empty: plain HTTP */
    char tls_key[512];       /* HTTPS: its private key (PEM, 0640 or tighter) */
    char tls_client_ca[512]; /* HTTPS: CA of client certificates; empty: none asked */
  } http;
  char log_level[16];
  struct rp_policy_config policy;
  struct {
    int64_t unused_grace_ms;   /* unused reservations expire after this */
    int64_t idle_window_ms;    /* ... when their use stayed low this long */
    double idle_threshold;     /* low: measured draw under this share of the kW */
    int64_t preempt_notice_ms; /* a preempted reservation is revoked this long after notice */
    double pack_margin_kw;     /* best fit prefers racks left with at least this (packing.h) */
  } reservations;
  struct {
    int64_t max_age_ms;
    int64_t max_entries;
    int64_t map_size_mb; /* the audit log's own LMDB map */
  } audit;
  char token_file[512]; /* bearer token for mutating endpoints */
  struct {
    bool automatic;      /* raise flags from tripped gate checks */
    int64_t min_hold_ms; /* an automatic flag stays at least this long */
  } flags;
  struct {
    bool series;        /* export rackpulse_value/rackpulse_window of every series */
    int64_t series_max; /* at most this many such lines per scrape */
    bool devices;       /* export rackpulse_device_up/_scrape_ms of every device */
  } metrics;
  struct rp_cluster_config {
    char member_id[65];  /* empty: a single member, no cluster (cluster.h) */
    char advertise[256]; /* the URL other members and clients reach this one at */
    char members_topic[128];
    int64_t heartbeat_ms;      /* this member's record is republished this often */
    int64_t member_timeout_ms; /* a member not heard of this long is gone */
    int64_t session_timeout_ms;
    int64_t forward_timeout_ms; /* a forwarded request or fan-out waits this long */
    int64_t max_hops;           /* a request forwarded this often is refused (508) */
    char tls_ca[512];           /* CA (PEM) of the other members' HTTPS; empty: system's */
    /* a ledger change not acknowledged by then is not made (503) */
    int64_t ledger_ack_timeout_ms;
  } cluster;
};

/* config.c. Returns 0, or a negative errno with err naming file:line, key. */
int rp_aggregator_config_load(const char *path, struct rp_aggregator_config *cfg, char *err,
                              size_t errlen);
void rp_aggregator_config_help(FILE *out);

/* Upper bounds (seconds) of the end-to-end lag histogram's buckets: fine
 * between 0.25 and 5 s, where the scrape-to-gate target (p99 <= 2 s) is
 * judged; every bound of the earlier, coarser set is kept, so queries on a
 * given le go on working. */
#define RP_LAG_BUCKETS                                                                             \
  {                                                                                                \
    0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1, 1.25, 1.5, 1.75, 2, \
        2.5, 3, 3.5, 4, 5, 7.5, 10, 30, 60                                                         \
  }
#define RP_LAG_NBUCKETS 27

/* Ingest counters, written by the ingest thread, read by HTTP threads. */
struct rp_ingest_stats {
  atomic_uint_fast64_t frames_applied, frames_duplicate, frames_invalid;
  atomic_uint_fast64_t batches, last_batch_size, last_apply_us;
  atomic_uint_fast64_t samples_applied; /* samples in applied frames */
  atomic_uint_fast64_t http_limited;    /* requests answered 429 (rate limit) */
  atomic_int_fast64_t last_frame_ms;    /* frame time of the newest applied frame */
  /* Lag of applied frames, commit time minus frame time: a histogram
   * (counts per bucket, not cumulative; the last bucket is +Inf). */
  atomic_uint_fast64_t lag_bucket[RP_LAG_NBUCKETS + 1];
  atomic_uint_fast64_t lag_count, lag_sum_ms;
  atomic_uint_fast64_t series_capped; /* per-series lines cut by metrics.series_max */
  /* Frames on another partition than their rack's (a producer with another
   * partitioner: the rack's owner does not see them). */
  atomic_uint_fast64_t frames_misplaced;
};

struct rp_gate;
struct rp_ledger;
struct rp_events;
struct rp_floor;
struct rp_cluster;
struct rp_audit_topic;
struct rp_ladder;
struct rp_slo;
struct rp_auth;
struct rp_overrides;
struct rp_canaries;

struct rp_aggregator {
  struct rp_aggregator_config cfg;
  struct store *store;
  struct rp_gate *gate;           /* policy and check state (gate.h) */
  struct rp_ledger *ledger;       /* audit, reservations, flags (ledger.h) */
  struct rp_events *events;       /* producer of rackpulse.events (events.c) */
  struct rp_floor *floor;         /* per-rack summaries and agent health (floor.c) */
  struct rp_ladder *ladder;       /* breaches behind automatic flags (ladder.h) */
  struct rp_slo *slo;             /* thermal SLOs (slo.h) */
  char token[256];                /* empty: mutating endpoints are refused */
  struct rp_auth *auth;           /* named clients and roles (auth.h) */
  struct rp_overrides *overrides; /* deploy overrides (override.h) */
  struct rp_canaries *canaries;   /* canary soaks (canary.h) */
  volatile bool reload;           /* SIGHUP: reload the policy */
  struct rp_ingest_stats stats;
  struct rp_http *http;
  volatile bool stop;
  /* NULL: a single member (cluster.h) */
  struct rp_cluster *cluster;
  /* NULL: no kafka.audit_topic (audit_topic.c) */
  struct rp_audit_topic *audit_topic;
};

/* audit_topic.c: the producer of kafka.audit_topic, attached to a->ledger
 * (nothing without the setting), its /metrics lines, and its flush. */
int rp_audit_topic_start(struct rp_aggregator *a, char *err, size_t errlen);
void rp_audit_topic_stop(struct rp_aggregator *a);
void rp_audit_topic_metrics(struct rp_aggregator *a, FILE *out);
/* cluster.c: a cluster member's /metrics lines (nothing when c is NULL),
 * and whether this member answers for `rack` (always without a cluster). */
void rp_cluster_metrics(struct rp_cluster *c, FILE *out);
bool rp_cluster_answers(struct rp_cluster *c, const char *rack);
/* The frames partition `rack` belongs to (-1 without a cluster). */
int32_t rp_cluster_home(struct rp_cluster *c, const char *rack);

/* kafka_conf.c: the settings every Kafka client of the aggregator shares:
 * bootstrap.servers, kafka.properties (TLS, SASL) and sasl.password from
 * kafka.sasl_password_file. Returns 0 or -EINVAL with err naming the key. */
struct rd_kafka_conf_s;
int rp_kafka_conf_common(const struct rp_aggregator_config *cfg, struct rd_kafka_conf_s *conf,
                         char *err, size_t errlen);
/* kafka.properties of the config file (config.c). */
int rp_kafka_conf_load(const struct rp_cfg_doc *doc, rp_cfg_node kafka,
                       struct rp_aggregator_config *cfg, char *err, size_t errlen);

/* consume.c: runs the Kafka consumer until a->stop; returns 0 or -errno. */
int rp_consume_run(struct rp_aggregator *a, char *err, size_t errlen);

/* placement.c: racks ranked for `kw` more kilowatts (best first, at most
 * count), and the racks the gate excludes with why. New reference, or NULL
 * on allocation failure. */
json_t *rp_placement(struct rp_aggregator *a, double kw, size_t count, const char *pool,
                     const char *class_name, int64_t now_ms);

/* upkeep.c: policy, gate, ledger and token set up, and the upkeep thread
 * (policy reload on a->reload, expiries, audit retention). */
struct rp_policy;
int rp_upkeep_load_policy(const struct rp_aggregator_config *cfg, struct rp_policy **out, char *err,
                          size_t errlen);
int rp_upkeep_start(struct rp_aggregator *a, char *err, size_t errlen);
void rp_upkeep_stop(struct rp_aggregator *a);

/* events.c: the events producer (rp_events_publish accepts NULL), and the
 * automatic flags of every rack (upkeep thread). */
int rp_events_new(const struct rp_aggregator_config *cfg, struct rp_events **out, char *err,
                  size_t errlen);
void rp_events_free(struct rp_events *e);
void rp_events_poll(struct rp_events *e);
void rp_events_publish(struct rp_events *e, const json_t *flag, bool set,
                       const char *policy_version);
/* A reservation event: `what` is "preempt-notice" (revoked at at_ms) or
 * "preempted"; keyed by rack, with the reservation's id, owner and kW. */
void rp_events_publish_reservation(struct rp_events *e, const json_t *res, const char *what,
                                   int64_t at_ms, const char *reason);
void rp_flags_reconcile(struct rp_aggregator *a, int64_t now_ms);

/* floor.c: the per-rack summaries of the last evaluation pass, and agent
 * health. rp_floor_summarize builds one rack's summary from its gate
 * decision at 0 kW (new reference); rp_floor_publish replaces the published
 * set with `racks` (rack -> summary, stolen) and adds policy racks that
 * never reported. rp_floor_json answers GET /v1/floor (new reference, NULL
 * without a floor): every rack without its checks, or only rack `only`
 * with them (an empty list when it is unknown). All accept a->floor == NULL; without a->gate or
 * a->store (unit tests) the policy's and the store's parts are left out. */
int rp_floor_new(struct rp_floor **out);
void rp_floor_free(struct rp_floor *f);
json_t *rp_floor_summarize(struct rp_aggregator *a, const char *rack, const json_t *decision,
                           int64_t last_frame_ms);
void rp_floor_publish(struct rp_aggregator *a, json_t *racks, int64_t now_ms);
json_t *rp_floor_json(struct rp_aggregator *a, const char *only, int64_t now_ms);
void rp_floor_metrics(struct rp_aggregator *a, FILE *out, int64_t now_ms);
void rp_floor_agent_health(struct rp_floor *f, const char *agent, const char *rack, int64_t ts_ms,
                           uint64_t spool_depth, uint64_t frames_dropped,
                           uint32_t delivery_latency_ms);

/* http_api.c */
struct rp_http;
int rp_http_start(struct rp_aggregator *a, struct rp_http **out, char *err, size_t errlen);
void rp_http_stop(struct rp_http *h);
/* The pure pieces of request handling, for tests. Rack, pool, class, owner
 * and reservation ids: 1..64 of [A-Za-z0-9._-] (s[0..len), no NUL needed). */
bool rp_http_valid_id(const char *s, size_t len);
/* A kW figure of a query string: finite, 0..100000. Returns 0 or -EINVAL. */
int rp_http_parse_kw(const char *s, double *kw);
/* A request body as a JSON object (duplicate keys refused). Returns it (new
 * reference), or NULL with *status 400 and *why set. */
json_t *rp_http_parse_body(const char *body, size_t len, unsigned *status, const char **why);

/* web.c: the page's embedded files by URL path ("/", "/floor.js",
 * "/floor.css"); false when there is none. rp_web_csp is the
 * Content-Security-Policy to serve them with. */
bool rp_web_asset(const char *path, const unsigned char **data, size_t *len, const char **type);
extern const char rp_web_csp[];

/* metrics.c: the Prometheus text exposition of rack state and ingest. The
 * caller frees the returned string. */
char *rp_metrics_render(struct rp_aggregator *a, size_t *len);

#endif
