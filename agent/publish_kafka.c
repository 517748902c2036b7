/* Kafka publishing (see publish.h). Producer settings:
 *   enable.idempotence=true, acks=all   no duplicates or reordering on retry
 *   compression.type=kafka.compression  lz4 by default
 *   linger.ms=kafka.linger              batching
 * plus the pass-through kafka.properties (TLS, SASL). rd_kafka_poll() runs
 * from a 50 ms uv timer so delivery reports arrive on the loop thread. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "publish.h"
#include "rackpulse/log.h"
#include "rackpulse/secret.h"

struct rp_publisher {
  rd_kafka_t *rk;
  rd_kafka_topic_t *topic;
  uv_timer_t poll_timer;
  struct rp_pub_stats stats;
  rp_pub_delivered_cb cb;
  void *cb_ctx;
  char agent_id[64];
};

/* Per message: what the delivery report needs. */
struct msg_meta {
  uint64_t seq;
  uint64_t produced_ms; /* monotonic */
};

static uint64_t mono_ms(void) { return uv_hrtime() / 1000000; }

/* Errors after which sending the same frame again cannot succeed. */
static bool is_permanent(rd_kafka_resp_err_t e) {
  switch (e) {
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_MSG:
  case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    return true;
  default:
    return false;
  }
}

/* Delivery report: counts outcomes and the produce-to-ack latency, then
 * tells the owner (delivery.c), which acknowledges the frame in the spool. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct rp_publisher *p = opaque;
  struct msg_meta *meta = m->_private;
  p->stats.in_flight--;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    p->stats.failed++;
    rp_warn("kafka", "frame %llu not delivered to %s [%d]: %s",
            (unsigned long long)meta->seq, rd_kafka_topic_name(m->rkt), (int)m->partition,
            rd_kafka_err2str(m->err));
  } else {
    p->stats.delivered++;
    p->stats.last_latency_ms = (uint32_t)(mono_ms() - meta->produced_ms);
  }
  if (p->cb != NULL)
    p->cb(p->cb_ctx, meta->seq, m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -EIO,
          is_permanent(m->err), rd_kafka_err2str(m->err));
  free(meta);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  rp_log(level <= 3 ? RP_LOG_ERROR : level <= 5 ? RP_LOG_WARN : RP_LOG_DEBUG, "kafka",
         "%s: %s", fac, buf);
}

static void on_poll_timer(uv_timer_t *t) {
  struct rp_publisher *p = t->data;
  rd_kafka_poll(p->rk, 0);
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

int rp_pub_new(uv_loop_t *loop, const struct rp_agent_config *cfg, rp_pub_delivered_cb cb,
               void *ctx, struct rp_publisher **out, char *err, size_t errlen) {
  char num[32];
  struct rp_publisher *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  p->cb = cb;
  p->cb_ctx = ctx;
  snprintf(p->agent_id, sizeof(p->agent_id), "%s", cfg->agent.id);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = -EINVAL;
  if (set(conf, "bootstrap.servers", cfg->kafka.brokers, err, errlen) ||
      set(conf, "client.id", cfg->agent.id, err, errlen) ||
      set(conf, "enable.idempotence", "true", err, errlen) ||
      set(conf, "acks", "all", err, errlen) ||
      set(conf, "compression.type", cfg->kafka.compression, err, errlen))
    goto fail_conf;
  snprintf(num, sizeof(num), "%lld", (long long)cfg->kafka.linger_ms);
  if (set(conf, "linger.ms", num, err, errlen))
    goto fail_conf;
  snprintf(num, sizeof(num), "%lld", (long long)cfg->kafka.message_timeout_ms);
  if (set(conf, "message.timeout.ms", num, err, errlen))
    goto fail_conf;
  snprintf(num, sizeof(num), "%lld", (long long)cfg->kafka.queue_max_messages);
  if (set(conf, "queue.buffering.max.messages", num, err, errlen))
    goto fail_conf;
  for (size_t i = 0; i < cfg->kafka.nprops; i++)
    if (set(conf, cfg->kafka.props[i].key, cfg->kafka.props[i].value, err, errlen))
      goto fail_conf;
  if (cfg->kafka.sasl_password_file[0] != '\0') {
    char secret[256];
    if (rp_secret_read_file(cfg->kafka.sasl_password_file, secret, sizeof(secret), err,
                            errlen) != 0)
      goto fail_conf;
    int bad = set(conf, "sasl.password", secret, err, errlen);
    memset(secret, 0, sizeof(secret));
    if (bad)
      goto fail_conf;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_log_cb(conf, on_log);
  rd_kafka_conf_set_opaque(conf, p);

  char e[512];
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
  if (p->rk == NULL) {
    snprintf(err, errlen, "kafka producer: %s", e);
    goto fail_conf;
  }
  conf = NULL; /* owned by rk now */
  p->topic = rd_kafka_topic_new(p->rk, cfg->kafka.topic, NULL);
  if (p->topic == NULL) {
    snprintf(err, errlen, "kafka topic %s: %s", cfg->kafka.topic,
             rd_kafka_err2str(rd_kafka_last_error()));
    goto fail_rk;
  }
  uv_timer_init(loop, &p->poll_timer);
  p->poll_timer.data = p;
  uv_timer_start(&p->poll_timer, on_poll_timer, 50, 50);
  uv_unref((uv_handle_t *)&p->poll_timer); /* the poll alone keeps nothing alive */
  *out = p;
  return 0;

fail_rk:
  rd_kafka_destroy(p->rk);
fail_conf:
  if (conf != NULL)
    rd_kafka_conf_destroy(conf);
  free(p);
  return rc;
}

enum rp_pub_result rp_pub_send(struct rp_publisher *p, const char *key, uint64_t seq,
                               uint8_t *buf, size_t len, char *err, size_t errlen) {
  struct msg_meta *meta = malloc(sizeof(*meta));
  if (meta == NULL) {
    snprintf(err, errlen, "out of memory");
    return RP_PUB_RETRY;
  }
  *meta = (struct msg_meta){seq, mono_ms()};
  /* The sequence number and agent also travel as headers, so a consumer can
   * count and de-duplicate without decoding the frame. */
  char seq_text[24];
  snprintf(seq_text, sizeof(seq_text), "%llu", (unsigned long long)seq);
  rd_kafka_resp_err_t e = rd_kafka_producev(
      p->rk, RD_KAFKA_V_RKT(p->topic), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_VALUE(buf, len),
      RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_HEADER("rackpulse-seq", seq_text, -1),
      RD_KAFKA_V_HEADER("rackpulse-agent", p->agent_id, -1), RD_KAFKA_V_OPAQUE(meta),
      RD_KAFKA_V_END);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    p->stats.in_flight++;
    return RP_PUB_OK;
  }
  free(meta);
  snprintf(err, errlen, "%s", rd_kafka_err2str(e));
  if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
    return RP_PUB_RETRY;
  return RP_PUB_DROP;
}

void rp_pub_get_stats(const struct rp_publisher *p, struct rp_pub_stats *out) {
  *out = p->stats;
}

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

int rp_pub_close(struct rp_publisher *p, int timeout_ms) {
  if (p == NULL)
    return 0;
  rd_kafka_flush(p->rk, timeout_ms);
  int left = rd_kafka_outq_len(p->rk);
  if (left > 0) {
    /* Frames Kafka never took stay in the spool. Purge them from
     * librdkafka so their delivery reports (and our per-message state)
     * come back now instead of never. */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(p->rk, 0);
  }
  rd_kafka_topic_destroy(p->topic);
  rd_kafka_destroy(p->rk);
  /* The timer handle lives inside p: free p once libuv has let go of it. */
  uv_timer_stop(&p->poll_timer);
  uv_close((uv_handle_t *)&p->poll_timer, on_timer_closed);
  return left;
}
