/* Kafka publishing (see publish.h). Producer settings:
 *   enable.idempotence=true, acks=all   no duplicates or reordering on retry
 *   compression.type=kafka.compression  lz4 by default
 *   linger.ms=kafka.linger              batching
 * plus the pass-through kafka.properties (TLS, SASL).
 *
 * Delivery reports are served on the loop thread, and only when there are
 * some: librdkafka writes a byte to a pipe when its main queue goes from
 * empty to non-empty (rd_kafka_queue_io_event_enable), the loop watches the
 * pipe, and rd_kafka_poll() serves the queue. An idle agent is not woken
 * 20 times a second to poll an empty queue. A 1 s timer polls as well, so
 * even a lost wakeup would delay a report by a second at most. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "publish.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"
#include "rackpulse/secret.h"

struct rp_publisher {
  rd_kafka_t *rk;
  rd_kafka_topic_t *topic;
  rd_kafka_queue_t *main_queue; /* our reference: delivery reports, errors */
  int wake_fds[2];              /* librdkafka writes [1]; the loop reads [0] */
  uv_poll_t wake;
  uv_timer_t backstop; /* polls once a second whatever the pipe says */
  int open_handles;    /* p is freed when both handles have closed */
  struct rp_pub_stats stats;
  rp_pub_delivered_cb cb;
  rp_pub_error_cb error_cb;
  void *cb_ctx;
  char agent_id[64];
};

/* Per message: what the delivery report needs. */
struct msg_meta {
  uint64_t seq;
  uint64_t produced_ms; /* monotonic */
};

/* Errors by which Kafka refuses the frame itself: sending the same frame
 * again cannot succeed. Every other error (unknown topic, authorization,
 * timeouts, transport, fatal producer errors) is the cluster's or the
 * client's: the frame is kept and sent again later. */
static bool is_permanent(rd_kafka_resp_err_t e) {
  switch (e) {
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_MSG:
  case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
  case RD_KAFKA_RESP_ERR__INVALID_ARG:
  case RD_KAFKA_RESP_ERR__BAD_MSG: return true;
  default: return false;
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
    rp_debug("kafka", "frame %llu not delivered to %s [%d]: %s", (unsigned long long)meta->seq,
             rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
  } else {
    p->stats.delivered++;
    p->stats.last_latency_ms = (uint32_t)(rp_mono_ms() - meta->produced_ms);
  }
  char reason[256];
  snprintf(reason, sizeof(reason), "%s (%s)", rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
  if (p->cb != NULL)
    p->cb(p->cb_ctx, meta->seq, m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -EIO,
          is_permanent(m->err), reason);
  free(meta);
}

/* Client-level errors: the owner shows them and, for a fatal one, replaces
 * the producer. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  struct rp_publisher *p = opaque;
  bool fatal = err == RD_KAFKA_RESP_ERR__FATAL;
  char why[512];
  if (fatal) {
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
    char full[600];
    snprintf(full, sizeof(full), "%s: %s", rd_kafka_err2name(orig), why);
    if (p->error_cb != NULL)
      p->error_cb(p->cb_ctx, full, true);
    return;
  }
  snprintf(why, sizeof(why), "%s", reason);
  if (p->error_cb != NULL)
    p->error_cb(p->cb_ctx, why, false);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  rp_log(level <= 3   ? RP_LOG_ERROR
         : level <= 5 ? RP_LOG_WARN
                      : RP_LOG_DEBUG,
         "kafka", "%s: %s", fac, buf);
}

/* The main queue has events: drain the pipe, then serve them all. */
static void on_wake(uv_poll_t *w, int status, int events) {
  (void)status;
  (void)events;
  struct rp_publisher *p = w->data;
  char sink[64];
  while (read(p->wake_fds[0], sink, sizeof(sink)) > 0)
    ;
  rd_kafka_poll(p->rk, 0);
}

static void on_backstop(uv_timer_t *t) {
  struct rp_publisher *p = t->data;
  rd_kafka_poll(p->rk, 0);
}

/* Arms the wakeup: a non-blocking pipe whose read end the loop watches. */
static int watch_main_queue(uv_loop_t *loop, struct rp_publisher *p, char *err, size_t errlen) {
  if (pipe2(p->wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    int rc = -errno;
    snprintf(err, errlen, "kafka wakeup pipe: %s", strerror(errno));
    return rc;
  }
  int rc = uv_poll_init(loop, &p->wake, p->wake_fds[0]);
  if (rc != 0) {
    snprintf(err, errlen, "kafka wakeup pipe: %s", uv_strerror(rc));
    close(p->wake_fds[0]);
    close(p->wake_fds[1]);
    return rc;
  }
  p->wake.data = p;
  uv_poll_start(&p->wake, UV_READABLE, on_wake);
  uv_unref((uv_handle_t *)&p->wake); /* the watch alone keeps nothing alive */
  uv_timer_init(loop, &p->backstop);
  p->backstop.data = p;
  uv_timer_start(&p->backstop, on_backstop, 1000, 1000);
  uv_unref((uv_handle_t *)&p->backstop);
  p->open_handles = 2;
  p->main_queue = rd_kafka_queue_get_main(p->rk);
  rd_kafka_queue_io_event_enable(p->main_queue, p->wake_fds[1], "1", 1);
  return 0;
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
               rp_pub_error_cb error_cb, void *ctx, struct rp_publisher **out, char *err,
               size_t errlen) {
  char num[32];
  struct rp_publisher *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  p->cb = cb;
  p->error_cb = error_cb;
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
    if (rp_secret_read_file(cfg->kafka.sasl_password_file, secret, sizeof(secret), err, errlen) !=
        0)
      goto fail_conf;
    int bad = set(conf, "sasl.password", secret, err, errlen);
    memset(secret, 0, sizeof(secret));
    if (bad)
      goto fail_conf;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_log_cb(conf, on_log);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, p);

  char e[512];
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
  if (p->rk == NULL) {
    /* A setting librdkafka refuses (a property, the TLS or SASL setup, an
     * unreadable certificate file) is the configuration's fault; a thread
     * it could not start, or that did not initialize, is the system's for
     * the moment. */
    snprintf(err, errlen, "kafka producer: %s", e);
    if (rd_kafka_last_error() == RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE)
      rc = -EAGAIN;
    if (rc == -EAGAIN && strstr(e, "background thread(s) to initialize") != NULL) {
      /* librdkafka gave up waiting for its own threads and returned with
       * them still running on a copy of conf that shares its strings:
       * destroying conf would free them under those threads (ASan saw it
       * under faketime, gate_clock). conf is left to them, and this
       * process makes no other client. */
      conf = NULL;
      rc = -EDEADLK;
    }
    goto fail_conf;
  }
  conf = NULL; /* owned by rk now */
  p->topic = rd_kafka_topic_new(p->rk, cfg->kafka.topic, NULL);
  if (p->topic == NULL) {
    snprintf(err, errlen, "kafka topic %s: %s", cfg->kafka.topic,
             rd_kafka_err2str(rd_kafka_last_error()));
    goto fail_rk;
  }
  rc = watch_main_queue(loop, p, err, errlen);
  if (rc != 0) {
    rc = -EAGAIN; /* out of descriptors or memory for now */
    goto fail_topic;
  }
  *out = p;
  return 0;

fail_topic:
  rd_kafka_topic_destroy(p->topic);
fail_rk:
  rd_kafka_destroy(p->rk);
fail_conf:
  if (conf != NULL)
    rd_kafka_conf_destroy(conf);
  free(p);
  return rc;
}

enum rp_pub_result rp_pub_send(struct rp_publisher *p, const char *key, uint64_t seq, uint8_t *buf,
                               size_t len, char *err, size_t errlen) {
  struct msg_meta *meta = malloc(sizeof(*meta));
  if (meta == NULL) {
    snprintf(err, errlen, "out of memory");
    return RP_PUB_RETRY;
  }
  *meta = (struct msg_meta){seq, rp_mono_ms()};
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
  if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    snprintf(err, errlen, "%s", "");
    return RP_PUB_RETRY;
  }
  if (e == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(p->rk, why, sizeof(why));
    snprintf(err, errlen, "fatal producer error: %s: %s", rd_kafka_err2name(orig), why);
    return RP_PUB_RETRY;
  }
  snprintf(err, errlen, "%s (%s)", rd_kafka_err2str(e), rd_kafka_err2name(e));
  return is_permanent(e) ? RP_PUB_DROP : RP_PUB_RETRY;
}

void rp_pub_get_stats(const struct rp_publisher *p, struct rp_pub_stats *out) { *out = p->stats; }

bool rp_pub_fatal(struct rp_publisher *p, char *reason, size_t reasonlen) {
  char why[512];
  rd_kafka_resp_err_t orig = rd_kafka_fatal_error(p->rk, why, sizeof(why));
  if (orig == RD_KAFKA_RESP_ERR_NO_ERROR)
    return false;
  if (reason != NULL)
    snprintf(reason, reasonlen, "%s: %s", rd_kafka_err2name(orig), why);
  return true;
}

void rp_pub_purge(struct rp_publisher *p) {
  rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                            RD_KAFKA_PURGE_F_NON_BLOCKING);
}

static void on_handle_closed(uv_handle_t *h) {
  struct rp_publisher *p = h->data;
  if (--p->open_handles > 0)
    return;
  close(p->wake_fds[0]);
  close(p->wake_fds[1]);
  free(p);
}

/* Releases everything of `p` but the client itself, which the caller
 * destroys; the handles live inside p, so p is freed (and the pipe closed)
 * once libuv has let go of both. */
static void release_all_but_client(struct rp_publisher *p) {
  rd_kafka_queue_io_event_enable(p->main_queue, -1, NULL, 0);
  rd_kafka_queue_destroy(p->main_queue);
  rd_kafka_topic_destroy(p->topic);
  uv_poll_stop(&p->wake);
  uv_timer_stop(&p->backstop);
  uv_close((uv_handle_t *)&p->wake, on_handle_closed);
  uv_close((uv_handle_t *)&p->backstop, on_handle_closed);
}

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
  rd_kafka_t *rk = p->rk;
  release_all_but_client(p);
  rd_kafka_destroy(rk);
  return left;
}

/* A client being destroyed in the thread pool. */
struct discard_work {
  uv_work_t work;
  rd_kafka_t *rk;
};

static void destroy_client(uv_work_t *w) { rd_kafka_destroy(((struct discard_work *)w->data)->rk); }

static void after_destroy_client(uv_work_t *w, int status) {
  (void)status;
  free(w->data);
}

int rp_pub_discard(uv_loop_t *loop, struct rp_publisher *p) {
  if (p == NULL)
    return 0;
  rd_kafka_t *rk = p->rk;
  release_all_but_client(p);
  struct discard_work *dw = malloc(sizeof(*dw));
  if (dw != NULL) {
    dw->rk = rk;
    dw->work.data = dw;
    if (uv_queue_work(loop, &dw->work, destroy_client, after_destroy_client) == 0)
      return 0;
    free(dw);
  }
  rd_kafka_destroy(rk);
  return -1;
}
