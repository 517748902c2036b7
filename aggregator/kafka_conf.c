/* The settings every Kafka client of the aggregator shares (ingest
 * consumer, events producer, members topic clients): the brokers, the
 * pass-through kafka.properties (TLS and SASL, as the agent takes them) and
 * sasl.password read from kafka.sasl_password_file. Properties that
 * exactly-once ingest, co-partitioning or the consumer group depend on are
 * set by the aggregator alone: the config file may not name them. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <string.h>

#include "aggregator.h"
#include "cluster.h"
#include "rackpulse/kafka_props_check.h"
#include "rackpulse/log.h"
#include "rackpulse/secret.h"

static const char *const reserved[] = {
    RP_KAFKA_PRODUCER_RESERVED, /* bootstrap.servers: kafka.brokers */
    "group.id",                 /* kafka.group */
    "isolation.level",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
    "partition.assignment.strategy",
    "session.timeout.ms", /* cluster.session_timeout */
    NULL,
};

int rp_kafka_conf_load(const struct rp_cfg_doc *doc, rp_cfg_node kafka,
                       struct rp_aggregator_config *cfg, char *err, size_t errlen) {
  return rp_kafka_props_load(
      doc, rp_cfg_get(doc, kafka, "properties"), "kafka.properties", reserved,
      "kafka.sasl_password_file", rp_kafka_prop_check, cfg->kafka.props,
      sizeof(cfg->kafka.props) / sizeof(cfg->kafka.props[0]), &cfg->kafka.nprops, err, errlen);
}

static int set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
               size_t errlen) {
  char e[256];
  if (rd_kafka_conf_set(conf, key, value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "kafka setting %s: %s", key, e);
    return -EINVAL;
  }
  return 0;
}

int rp_kafka_conf_common(const struct rp_aggregator_config *cfg, rd_kafka_conf_t *conf, char *err,
                         size_t errlen) {
  if (set(conf, "bootstrap.servers", cfg->kafka.brokers, err, errlen) != 0)
    return -EINVAL;
  for (size_t i = 0; i < cfg->kafka.nprops; i++) {
    char e[512];
    if (set(conf, cfg->kafka.props[i].key, cfg->kafka.props[i].value, e, sizeof(e)) != 0) {
      snprintf(err, errlen, "kafka.properties.%s: %s", cfg->kafka.props[i].key, e);
      return -EINVAL;
    }
  }
  if (cfg->kafka.sasl_password_file[0] == '\0')
    return 0;
  char secret[256], why[256];
  if (rp_secret_read_file(cfg->kafka.sasl_password_file, secret, sizeof(secret), why,
                          sizeof(why)) != 0) {
    snprintf(err, errlen, "kafka.sasl_password_file: %s", why);
    return -EINVAL;
  }
  int rc = set(conf, "sasl.password", secret, err, errlen);
  memset(secret, 0, sizeof(secret));
  return rc;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  rp_log(level <= 3   ? RP_LOG_ERROR
         : level <= 5 ? RP_LOG_WARN
                      : RP_LOG_DEBUG,
         "kafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

rd_kafka_t *rp_kafka_client_new(const struct rp_aggregator_config *cfg, rd_kafka_type_t type,
                                const char *what, rp_kafka_dr_fn dr, void *opaque, char *err,
                                size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char e[512];
  const char *settings[][2] = {
      {type == RD_KAFKA_PRODUCER ? "enable.idempotence" : "enable.partition.eof", "true"},
      {type == RD_KAFKA_PRODUCER ? "linger.ms" : "fetch.wait.max.ms", "5"},
  };
  if (rp_kafka_conf_common(cfg, conf, e, sizeof(e)) != 0)
    goto fail;
  for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
    if (set(conf, settings[i][0], settings[i][1], e, sizeof(e)) != 0)
      goto fail;
  rd_kafka_conf_set_log_cb(conf, on_log);
  if (dr != NULL)
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
  rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof(e));
  if (rk != NULL)
    return rk;
fail:
  snprintf(err, errlen, "%s: %s", what, e);
  rd_kafka_conf_destroy(conf);
  return NULL;
}

/* The partition count of `topic`, waiting up to ~10 s for the cluster. */
int rp_kafka_partition_count(rd_kafka_t *rk, const char *topic, int32_t *out, char *err,
                             size_t errlen) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
  for (int attempt = 0; attempt < 5; attempt++) {
    const struct rd_kafka_metadata *md;
    e = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        *out = md->topics[0].partition_cnt;
      rd_kafka_metadata_destroy(md);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        break;
    }
  }
  rd_kafka_topic_destroy(rkt);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "topic %s: partition count not known: %s", topic, rd_kafka_err2str(e));
    return -EIO;
  }
  if (*out < 1 || *out > RP_CLUSTER_MAX_PARTITIONS) {
    snprintf(err, errlen, "topic %s: %d partitions (1..%d supported)", topic, (int)*out,
             RP_CLUSTER_MAX_PARTITIONS);
    return -ERANGE;
  }
  return 0;
}
