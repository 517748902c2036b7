/* The agent's configuration file, one YAML document:
 *
 *   agent:   {id, rack, interval, state_dir, log_level, dictionary_every, max_series,
 *             profiles_dir}
 *   kafka:   {brokers, topic, compression, linger, message_timeout,
 *             queue_max_messages, properties: {librdkafka key: value}}
 *   modbus:  [ device, ... ]     one entry per CDU (see modbus/mb_collect.c)
 *   ipmi:    [ bmc, ... ]        one entry per BMC (see ipmi/ipmi_collect.c)
 *
 * The tables below are the whole truth about accepted keys: rp_cfg_apply()
 * enforces them and `rackpulse-agent --help` prints them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "rackpulse/kafka_props_check.h"
#include "rackpulse/log.h"
#include "rackpulse/secret.h"

typedef struct rp_agent_config C;

static const struct rp_cfg_field agent_fields[] = {
    RP_CFG_STR("id", C, agent.id, "", 0, "agent id, unique per host (default: host name)"),
    RP_CFG_STR("rack", C, agent.rack, NULL, 1, "rack id; the Kafka message key"),
    RP_CFG_NUM("interval", RP_CFG_DURATION, C, agent.interval_ms, "1s", 0.1, 3600,
               "frame interval, and default scrape interval"),
    RP_CFG_STR("state_dir", C, agent.state_dir, "/var/lib/rackpulse", 0,
               "where the sequence number (and spool) persist"),
    RP_CFG_STR("log_level", C, agent.log_level, "info", 0, "debug, info, warn or error"),
    RP_CFG_NUM("dictionary_every", RP_CFG_INT, C, agent.dictionary_every, "300", 1, 100000,
               "also send the series dictionary every N frames (it goes at once when it "
               "changes, at start and after a lost frame); a consumer without it skips "
               "samples for up to N frames"),
    RP_CFG_NUM("first_frame_wait", RP_CFG_DURATION, C, agent.first_frame_wait_ms, "3s", 0, 600,
               "the first frame waits up to this long (frame ticks skipped) for every "
               "device's first scrape, so that its dictionary names every series at once "
               "instead of going again a frame later; 0: send at the first tick"),
    RP_CFG_NUM("max_series", RP_CFG_INT, C, agent.max_series, "20000", 1, 1000000,
               "bound on distinct series; more are dropped and logged"),
    RP_CFG_STR("profiles_dir", C, agent.profiles_dir, "/usr/share/rackpulse/profiles", 0,
               "device profiles: a modbus device's 'profile: X' is modbus/X.yaml here"),
    RP_CFG_NUM("ipmi_max_children", RP_CFG_INT, C, agent.ipmi_max_children, "16", 1, 1024,
               "ipmitool children working at once, agent-wide (the rest wait their turn)"),
};

static const struct rp_cfg_field kafka_fields[] = {
    RP_CFG_STR("brokers", C, kafka.brokers, "127.0.0.1:9092", 0,
               "bootstrap servers, host:port[,host:port]"),
    RP_CFG_STR("topic", C, kafka.topic, "rackpulse.frames", 0, "topic for frames"),
    RP_CFG_STR("compression", C, kafka.compression, "lz4", 0, "none, gzip, snappy, lz4 or zstd"),
    RP_CFG_NUM("linger", RP_CFG_DURATION, C, kafka.linger_ms, "50ms", 0, 10,
               "batching delay before a send (librdkafka linger.ms)"),
    RP_CFG_NUM("message_timeout", RP_CFG_DURATION, C, kafka.message_timeout_ms, "0", 0, 86400,
               "librdkafka gives up on a frame after this long; 0 = never (the spool "
               "keeps frames across outages and restarts)"),
    RP_CFG_NUM("queue_max_messages", RP_CFG_INT, C, kafka.queue_max_messages, "100000", 1, 10000000,
               "frames buffered in memory by librdkafka"),
    RP_CFG_STR("sasl_password_file", C, kafka.sasl_password_file, "", 0,
               "file (0600/0640) holding sasl.password for SASL PLAIN/SCRAM; set "
               "sasl.mechanisms, sasl.username and security.protocol in properties"),
};

static const struct rp_cfg_field spool_fields[] = {
    RP_CFG_NUM("max_frames", RP_CFG_INT, C, spool.max_frames, "1000000", 1, 1000000000,
               "frames the on-disk spool holds at most (oldest unsent dropped beyond)"),
    RP_CFG_NUM("max_mb", RP_CFG_INT, C, spool.max_mb, "1024", 1, 1048576,
               "bytes the spool holds at most, MiB"),
    RP_CFG_NUM("max_in_flight", RP_CFG_INT, C, spool.max_in_flight, "1000", 1, 1000000,
               "frames handed to Kafka and not yet acknowledged, at most"),
};

static const char *const kafka_sections[] = {"properties", NULL};
/* kafka.properties the agent sets itself (kafka_props.h): frames must
 * reach the partition of their rack, once and in order. */
static const char *const kafka_reserved[] = {RP_KAFKA_PRODUCER_RESERVED, NULL};
/* Top-level sections besides one per collector (see top_sections()). */
static const char *const fixed_sections[] = {"agent", "kafka", "spool", "stats", "derived"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const valid_compression[] = {"none", "gzip", "snappy", "lz4", "zstd"};

/* Set while the devices are loaded: see rp_agent_profiles_dir(). */
static const char *loading_profiles_dir;

const char *rp_agent_profiles_dir(void) { return loading_profiles_dir; }

static int add_target(C *cfg, struct rp_target *t) {
  struct rp_target **grown = realloc(cfg->targets, (cfg->ntargets + 1) * sizeof(*grown));
  if (grown == NULL)
    return -ENOMEM;
  cfg->targets = grown;
  cfg->targets[cfg->ntargets++] = t;
  return 0;
}

/* Loads every device of `collector` listed under its section name. */
static int load_devices(const struct rp_cfg_doc *doc, const struct rp_collector *collector, C *cfg,
                        char *err, size_t errlen) {
  rp_cfg_node list = rp_cfg_get(doc, rp_cfg_root(doc), collector->name);
  if (list == 0)
    return 0;
  if (rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE) {
    rp_cfg_error(doc, list, collector->name, err, errlen, "expected a list of devices");
    return -EINVAL;
  }
  for (size_t i = 0; i < rp_cfg_seq_len(doc, list); i++) {
    char where[64];
    snprintf(where, sizeof(where), "%s[%zu]", collector->name, i);
    struct rp_target *t = calloc(1, sizeof(*t));
    if (t == NULL)
      return -ENOMEM;
    t->collector = collector;
    int rc = collector->create(t, doc, rp_cfg_seq_item(doc, list, i), where, err, errlen);
    if (rc != 0) {
      free(t);
      return rc;
    }
    for (size_t j = 0; j < cfg->ntargets; j++) {
      if (strcmp(cfg->targets[j]->name, t->name) == 0) {
        rp_cfg_error(doc, rp_cfg_seq_item(doc, list, i), where, err, errlen,
                     "device name '%s' is used twice", t->name);
        collector->destroy(t);
        free(t);
        return -EINVAL;
      }
    }
    if (add_target(cfg, t) != 0) {
      collector->destroy(t);
      free(t);
      return -ENOMEM;
    }
  }
  return 0;
}

/* The accepted top-level keys: the fixed sections, then each collector's
 * name (its list of devices). Fills out (NULL-terminated). */
static void top_sections(const char *out[static 32]) {
  size_t n = 0;
  for (size_t i = 0; i < N(fixed_sections); i++)
    out[n++] = fixed_sections[i];
  for (size_t i = 0; rp_collectors[i] != NULL && n < 31; i++)
    out[n++] = rp_collectors[i]->name;
  out[n] = NULL;
}

int rp_agent_config_load(const char *path, C *cfg, char *err, size_t errlen) {
  struct rp_cfg_doc *doc = NULL;
  memset(cfg, 0, sizeof(*cfg));
  int rc = rp_cfg_load(path, &doc, err, errlen);
  if (rc != 0)
    return rc;
  rp_cfg_node root = rp_cfg_root(doc);
  rp_cfg_node kafka = rp_cfg_get(doc, root, "kafka");
  const char *sections[32];
  top_sections(sections);
  rc = rp_cfg_apply(doc, root, "config", NULL, 0, sections, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "agent"), "agent", agent_fields, N(agent_fields),
                      NULL, cfg, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, kafka, "kafka", kafka_fields, N(kafka_fields), kafka_sections, cfg, err,
                      errlen);
  if (rc == 0)
    rc =
        rp_kafka_props_load(doc, rp_cfg_get(doc, kafka, "properties"), "kafka.properties",
                            kafka_reserved, "kafka.sasl_password_file", rp_kafka_prop_check,
                            cfg->kafka.props, N(cfg->kafka.props), &cfg->kafka.nprops, err, errlen);
  if (rc == 0)
    rc = rp_cfg_apply(doc, rp_cfg_get(doc, root, "spool"), "spool", spool_fields, N(spool_fields),
                      NULL, cfg, err, errlen);
  if (rc == 0)
    rc = rp_edge_config_load(doc, root, &cfg->edge, err, errlen);
  if (rc != 0)
    goto out;
  bool known = false;
  for (size_t i = 0; i < N(valid_compression); i++)
    known |= strcmp(cfg->kafka.compression, valid_compression[i]) == 0;
  if (!known) {
    rp_cfg_error(doc, rp_cfg_get(doc, kafka, "compression"), "kafka.compression", err, errlen,
                 "'%s' is not one of none, gzip, snappy, lz4, zstd", cfg->kafka.compression);
    rc = -EINVAL;
    goto out;
  }
  enum rp_log_level lvl;
  if (rp_log_level_parse(cfg->agent.log_level, &lvl) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, rp_cfg_get(doc, root, "agent"), "log_level"),
                 "agent.log_level", err, errlen, "'%s' is not debug, info, warn or error",
                 cfg->agent.log_level);
    rc = -EINVAL;
    goto out;
  }
  if (cfg->kafka.sasl_password_file[0] != '\0') {
    /* Read now, so that a bad file is a configuration error; the secret
     * itself is never logged or printed. */
    char secret[256], why[512];
    if (rp_secret_read_file(cfg->kafka.sasl_password_file, secret, sizeof(secret), why,
                            sizeof(why)) != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, kafka, "sasl_password_file"), "kafka.sasl_password_file",
                   err, errlen, "%s", why);
      rc = -EINVAL;
      goto out;
    }
    memset(secret, 0, sizeof(secret));
  }
  if (cfg->agent.id[0] == '\0' && gethostname(cfg->agent.id, sizeof(cfg->agent.id) - 1) != 0)
    snprintf(cfg->agent.id, sizeof(cfg->agent.id), "rackpulse-agent");
  loading_profiles_dir = cfg->agent.profiles_dir;
  for (size_t i = 0; rp_collectors[i] != NULL && rc == 0; i++)
    rc = load_devices(doc, rp_collectors[i], cfg, err, errlen);
  loading_profiles_dir = NULL;
  for (size_t i = 0; i < cfg->ntargets; i++)
    if (cfg->targets[i]->interval_ms == 0)
      cfg->targets[i]->interval_ms = cfg->agent.interval_ms;
out:
  if (rc != 0)
    rp_agent_config_free(cfg);
  rp_cfg_free(doc);
  return rc;
}

void rp_agent_config_free(C *cfg) {
  for (size_t i = 0; i < cfg->ntargets; i++) {
    cfg->targets[i]->collector->destroy(cfg->targets[i]);
    free(cfg->targets[i]);
  }
  free(cfg->targets);
  cfg->targets = NULL;
  cfg->ntargets = 0;
}

void rp_agent_config_help(FILE *out) {
  rp_cfg_print_help(out, "agent", agent_fields, N(agent_fields));
  rp_cfg_print_help(out, "kafka", kafka_fields, N(kafka_fields));
  fprintf(out, "  %-28s %-9s %s\n", "kafka.properties", "mapping",
          "librdkafka settings passed through (TLS, SASL); no secrets");
  rp_cfg_print_help(out, "spool", spool_fields, N(spool_fields));
  rp_edge_config_help(out);
}
