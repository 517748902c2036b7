/* The aggregator's configuration file, one YAML document:
 *
 *   kafka:  {brokers, topic, group, batch_max, batch_wait, events_topic,
 *           sasl_password_file, properties: {librdkafka key: value}}
 *   store:  {path, map_size_mb, map_size_max_mb}
 *   http:   {listen, port, threads, max_connections}
 *   http:   {..., token_file, tokens_file, tls_cert, tls_key, tls_client_ca}
 *   policy: {file} or the built-in policy's {version, max_staleness,
 *           supply_temp_max, supply_temp_series}
 *   reservations: {unused_grace, idle_window, idle_threshold, preempt_notice,
 *                  pack_margin_kw}
 *   audit:  {max_age, max_entries, map_size_mb}
 *   flags:  {automatic, min_hold}
 *   metrics: {series, series_max, devices}
 *   cluster: {member_id, advertise, members_topic, ...} (cluster_config.c)
 *   log_level: info
 *
 * The tables below are the whole truth about accepted keys. */
#include <errno.h>
#include <string.h>

#include "aggregator.h"
#include "cluster.h"
#include "rackpulse/cfg.h"
#include "rackpulse/log.h"

typedef struct rp_aggregator_config C;

static const struct rp_cfg_field top_fields[] = {
    RP_CFG_STR("log_level", C, log_level, "info", 0, "debug, info, warn or error"),
};

static const struct rp_cfg_field kafka_fields[] = {
    RP_CFG_STR("brokers", C, kafka.brokers, "127.0.0.1:9092", 0, "bootstrap servers"),
    RP_CFG_STR("topic", C, kafka.topic, "rackpulse.frames", 0, "topic of agent frames"),
    RP_CFG_STR("group", C, kafka.group, "rackpulse-aggregator", 0, "consumer group id"),
    RP_CFG_NUM("batch_max", RP_CFG_INT, C, kafka.batch_max, "2000", 1, 1000000,
               "frames per LMDB write transaction at most"),
    RP_CFG_NUM("batch_wait", RP_CFG_DURATION, C, kafka.batch_wait_ms, "100ms", 0.001, 10,
               "longest wait to fill a batch"),
    RP_CFG_STR("events_topic", C, kafka.events_topic, "rackpulse.events", 0,
               "topic for flag events (rackpulse.v1.Event)"),
    RP_CFG_STR("ledger_topic", C, kafka.ledger_topic, "rackpulse.ledger", 0,
               "in a cluster: compacted topic of reservations and flags, with as many "
               "partitions as kafka.topic (a new owner of a rack rebuilds its ledger from it)"),
    RP_CFG_STR("audit_topic", C, kafka.audit_topic, "", 0,
               "append-only topic every audit record also goes to, keyed by rack (e.g. "
               "rackpulse.audit, with long retention); empty: the local audit log only"),
    RP_CFG_STR("sasl_password_file", C, kafka.sasl_password_file, "", 0,
               "file (0600/0640) holding sasl.password for SASL PLAIN/SCRAM, for every Kafka "
               "client of the aggregator; set sasl.mechanisms, sasl.username and "
               "security.protocol in kafka.properties"),
};

static const char *const kafka_sections[] = {"properties", NULL};

static const struct rp_cfg_field store_fields[] = {
    RP_CFG_STR("path", C, store.path, "/var/lib/rackpulse/aggregator", 0,
               "LMDB environment directory"),
    RP_CFG_NUM("map_size_mb", RP_CFG_INT, C, store.map_size_mb, "4096", 1, 1048576,
               "LMDB map size at start, MiB; it doubles when full, up to map_size_max_mb"),
    RP_CFG_NUM("map_size_max_mb", RP_CFG_INT, C, store.map_size_max_mb, "65536", 1, 1048576,
               "largest LMDB map (the database's maximum size), MiB; at least map_size_mb"),
    RP_CFG_STR("sync", C, store.sync, "meta", 0,
               "full: every batch waits for a full disk sync; meta: for its data pages only "
               "(a system crash may undo the last batch, read again from Kafka); periodic: no "
               "wait, a sync every sync_interval (a system crash may undo that much, or damage "
               "the store, which is then rebuilt from Kafka)"),
    RP_CFG_NUM("sync_interval", RP_CFG_DURATION, C, store.sync_interval_ms, "1s", 0.01, 60,
               "with sync: periodic, how often the store is synced to disk"),
};

static const struct rp_cfg_field http_fields[] = {
    RP_CFG_STR("listen", C, http.listen, "127.0.0.1", 0, "IPv4 address to listen on"),
    RP_CFG_NUM("port", RP_CFG_INT, C, http.port, "8470", 1, 65535, "HTTP port"),
    RP_CFG_NUM("threads", RP_CFG_INT, C, http.threads, "4", 1, 64, "HTTP worker threads"),
    RP_CFG_NUM("max_connections", RP_CFG_INT, C, http.max_connections, "512", 1, 65536,
               "concurrent connections at most"),
    RP_CFG_NUM("rate_limit", RP_CFG_DOUBLE, C, http.rate_limit, "2000", 0, 1000000,
               "requests per second per client address (0: no limit); more get 429"),
    RP_CFG_NUM("rate_burst", RP_CFG_DOUBLE, C, http.rate_burst, "4000", 1, 10000000,
               "requests a client may make at once before the rate applies"),
    RP_CFG_STR("token_file", C, token_file, "", 0,
               "file holding the bearer token for mutating endpoints (0600/0640); "
               "empty: they are refused"),
    RP_CFG_STR("tokens_file", C, http.tokens_file, "", 0,
               "named clients, one a line: NAME ROLE[,ROLE] TOKEN or NAME ROLES cert:CN; roles "
               "read, reserve, flag, override, admin (0600/0640)"),
    RP_CFG_STR("tls_cert", C, http.tls_cert, "", 0,
               "serve HTTPS with this certificate (PEM; with tls_key); empty: plain HTTP, "
               "allowed only on a loopback address"),
    RP_CFG_STR("tls_key", C, http.tls_key, "", 0, "the certificate's private key (PEM, 0600/0640)"),
    RP_CFG_STR("tls_client_ca", C, http.tls_client_ca, "", 0,
               "ask clients for a certificate signed by this CA (PEM): one whose common name a "
               "tokens_file line names as cert:CN authenticates as that client"),
};

static const struct rp_cfg_field reservation_fields[] = {
    RP_CFG_NUM("unused_grace", RP_CFG_DURATION, C, reservations.unused_grace_ms, "15m", 0, 86400,
               "a reservation started this long ago may expire unused (see idle_window)"),
    RP_CFG_NUM("idle_window", RP_CFG_DURATION, C, reservations.idle_window_ms, "10m", 1, 86400,
               "an unused reservation expires only after every reading of its hosts/outlets "
               "over this window was under idle_threshold of its kW"),
    RP_CFG_NUM("idle_threshold", RP_CFG_DOUBLE, C, reservations.idle_threshold, "0.05", 0, 1,
               "share of its kW under which a reservation's measured draw counts as unused"),
    RP_CFG_NUM("preempt_notice", RP_CFG_DURATION, C, reservations.preempt_notice_ms, "0", 0, 86400,
               "notice a preempted reservation gets before it is revoked (0: at once); the "
               "preempting request is refused until then, with the time to retry"),
    RP_CFG_NUM("pack_margin_kw", RP_CFG_DOUBLE, C, reservations.pack_margin_kw, "0", 0, 100000,
               "pool reservations go best fit to a rack left with at least this many kW free "
               "(else to the best fit that holds them at all)"),
};

static const struct rp_cfg_field flags_fields[] = {
    RP_CFG_NUM("automatic", RP_CFG_BOOL, C, flags.automatic, "true", 0, 0,
               "raise thermal flags from tripped gate checks, with events"),
    RP_CFG_NUM("min_hold", RP_CFG_DURATION, C, flags.min_hold_ms, "60s", 0, 86400,
               "an automatic flag stays set at least this long"),
};

static const struct rp_cfg_field metrics_fields[] = {
    RP_CFG_NUM("series", RP_CFG_BOOL, C, metrics.series, "false", 0, 0,
               "also export every series of every rack on /metrics (rackpulse_value, "
               "rackpulse_window): large on a big site"),
    RP_CFG_NUM("series_max", RP_CFG_INT, C, metrics.series_max, "100000", 0, 100000000,
               "per-series lines per scrape at most; the rest are cut and counted "
               "(rackpulse_metrics_series_capped_total)"),
    RP_CFG_NUM("devices", RP_CFG_BOOL, C, metrics.devices, "false", 0, 0,
               "also export rackpulse_device_up and rackpulse_device_scrape_ms of every device "
               "(by default only rackpulse_rack_devices_down per rack)"),
};

static const struct rp_cfg_field audit_fields[] = {
    RP_CFG_NUM("max_age", RP_CFG_DURATION, C, audit.max_age_ms, "720h", 60, 31536000,
               "gate decisions older than this are pruned"),
    RP_CFG_NUM("max_entries", RP_CFG_INT, C, audit.max_entries, "1000000", 100, 1000000000,
               "gate decisions kept at most; past it the oldest are deleted first"),
    RP_CFG_NUM("map_size_mb", RP_CFG_INT, C, audit.map_size_mb, "1024", 16, 1048576,
               "the audit log's own LMDB map, MiB: when full the oldest decisions make room; "
               "flags and reservations are kept apart and never share it"),
};

static const struct rp_cfg_field policy_fields[] = {
    RP_CFG_STR("file", C, policy.file, "", 0,
               "policy file (versioned limits per class and rack, rack metadata); "
               "reloaded on SIGHUP. Empty: the built-in policy below"),
    RP_CFG_STR("version", C, policy.version, "builtin-1", 0, "policy version, named in answers"),
    RP_CFG_NUM("max_staleness", RP_CFG_DURATION, C, policy.max_staleness_ms, "10s", 0.1, 86400,
               "telemetry older than this denies (fails closed)"),
    RP_CFG_NUM("supply_temp_max", RP_CFG_DOUBLE, C, policy.supply_temp_max, "45", -50, 150,
               "deny above this CDU supply temperature, Cel"),
    RP_CFG_STR("supply_temp_series", C, policy.supply_temp_series, "cdu.supply_temp", 0,
               "series holding the supply temperature"),
};

static const char *const top_sections[] = {"kafka", "store", "http",    "policy",  "reservations",
                                           "audit", "flags", "metrics", "cluster", NULL};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int rp_aggregator_config_load(const char *path, C *cfg, char *err, size_t errlen) {
  struct rp_cfg_doc *doc;
  memset(cfg, 0, sizeof(*cfg));
  snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", path);
  int rc = rp_cfg_load(path, &doc, err, errlen);
  if (rc != 0)
    return rc;
  rp_cfg_node root = rp_cfg_root(doc);
  rc = rp_cfg_apply(doc, root, "config", top_fields, N(top_fields), top_sections, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "kafka"), "kafka", kafka_fields, N(kafka_fields),
                      kafka_sections, cfg, err, errlen);
  if (rc == 0)
    rc = rp_kafka_conf_load(doc, rp_cfg_get(doc, root, "kafka"), cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "store"), "store", store_fields, N(store_fields),
                      NULL, cfg, err, errlen);
  if (rc == 0 && cfg->store.map_size_max_mb < cfg->store.map_size_mb) {
    rp_cfg_node store = rp_cfg_get(doc, root, "store");
    rp_cfg_node max = rp_cfg_get(doc, store, "map_size_max_mb");
    if (max)
      rp_cfg_error(doc, max, "store.map_size_max_mb", err, errlen,
                   "%lld MiB is smaller than store.map_size_mb (%lld MiB)",
                   (long long)cfg->store.map_size_max_mb, (long long)cfg->store.map_size_mb);
    else
      rp_cfg_error(doc, rp_cfg_get(doc, store, "map_size_mb"), "store.map_size_mb", err, errlen,
                   "%lld MiB is larger than store.map_size_max_mb (default %lld MiB): raise "
                   "that too",
                   (long long)cfg->store.map_size_mb, (long long)cfg->store.map_size_max_mb);
    rc = -EINVAL;
  }
  if (rc == 0 && strcmp(cfg->store.sync, "full") != 0 && strcmp(cfg->store.sync, "meta") != 0 &&
      strcmp(cfg->store.sync, "periodic") != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, rp_cfg_get(doc, root, "store"), "sync"), "store.sync", err,
                 errlen, "'%s' is not full, meta or periodic", cfg->store.sync);
    rc = -EINVAL;
  }
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "http"), "http", http_fields, N(http_fields), NULL,
                      cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "policy"), "policy", policy_fields,
                      N(policy_fields), NULL, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "reservations"), "reservations",
                      reservation_fields, N(reservation_fields), NULL, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "audit"), "audit", audit_fields, N(audit_fields),
                      NULL, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "flags"), "flags", flags_fields, N(flags_fields),
                      NULL, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "metrics"), "metrics", metrics_fields,
                      N(metrics_fields), NULL, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cluster_config_apply(doc, rp_cfg_get(doc, root, "cluster"), cfg, err, errlen);
  enum rp_log_level lvl;
  if (rc == 0 && rp_log_level_parse(cfg->log_level, &lvl) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, root, "log_level"), "log_level", err, errlen,
                 "'%s' is not debug, info, warn or error", cfg->log_level);
    rc = -EINVAL;
  }
  rp_cfg_free(doc);
  return rc;
}

void rp_aggregator_config_help(FILE *out) {
  rp_cfg_print_help(out, "config", top_fields, N(top_fields));
  rp_cfg_print_help(out, "kafka", kafka_fields, N(kafka_fields));
  rp_cfg_print_help(out, "store", store_fields, N(store_fields));
  rp_cfg_print_help(out, "http", http_fields, N(http_fields));
  rp_cfg_print_help(out, "policy", policy_fields, N(policy_fields));
  rp_cfg_print_help(out, "reservations", reservation_fields, N(reservation_fields));
  rp_cfg_print_help(out, "audit", audit_fields, N(audit_fields));
  rp_cfg_print_help(out, "flags", flags_fields, N(flags_fields));
  rp_cfg_print_help(out, "metrics", metrics_fields, N(metrics_fields));
  rp_cluster_config_help(out);
}
