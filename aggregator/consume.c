/* Ingest: a librdkafka consumer-group member that applies frames to LMDB in
 * batches. Exactly once, by construction:
 *   - each batch is one LMDB write transaction holding the state changes and
 *     the next offset of every partition it read;
 *   - on assignment the consumer starts each partition at the offset stored
 *     in LMDB (or at the beginning of the log when the store has none), never
 *     at an offset committed to Kafka;
 *   - on revocation the open batch is committed before the partitions go.
 * Offsets are still committed to Kafka afterwards, for lag monitoring only.
 * A message that does not decode is counted, logged with topic, partition
 * and offset, and skipped (its offset is stored so it is not re-read). */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aggregator.h"
#include "rackpulse/log.h"

struct consumer {
  struct rp_aggregator *a;
  rd_kafka_t *rk;
  struct store_batch *batch;
  size_t batch_frames;
  uint64_t batch_started_us;
  char err[512];
};

static uint64_t mono_us(void) { return uv_hrtime() / 1000; }

static int flush_batch(struct consumer *c) {
  if (c->batch == NULL)
    return 0;
  int rc = store_batch_commit(c->batch, c->err, sizeof(c->err));
  c->batch = NULL;
  if (rc != 0) {
    rp_error("ingest", "batch of %zu frame(s) not committed: %s", c->batch_frames, c->err);
    return rc;
  }
  atomic_fetch_add(&c->a->stats.batches, 1);
  atomic_store(&c->a->stats.last_batch_size, c->batch_frames);
  atomic_store(&c->a->stats.last_apply_us, mono_us() - c->batch_started_us);
  c->batch_frames = 0;
  return 0;
}

/* Starts every assigned partition at the offset the store holds. */
static void assign_from_store(struct consumer *c, rd_kafka_topic_partition_list_t *parts) {
  for (int i = 0; i < parts->cnt; i++) {
    rd_kafka_topic_partition_t *p = &parts->elems[i];
    int64_t next;
    if (store_get_offset(c->a->store, p->topic, p->partition, &next) == 0)
      p->offset = next;
    else
      p->offset = RD_KAFKA_OFFSET_BEGINNING;
    rp_info("ingest", "assigned %s [%d] from offset %s%" PRId64, p->topic, (int)p->partition,
            p->offset == RD_KAFKA_OFFSET_BEGINNING ? "beginning " : "",
            p->offset == RD_KAFKA_OFFSET_BEGINNING ? 0 : p->offset);
  }
  rd_kafka_assign(c->rk, parts);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  struct consumer *c = opaque;
  (void)rk;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    assign_from_store(c, parts);
    return;
  }
  /* Revoked (or an error): the state of what we read so far is committed
   * before the partitions go to another member. */
  flush_batch(c);
  rp_info("ingest", "%d partition(s) revoked", parts ? parts->cnt : 0);
  rd_kafka_assign(c->rk, NULL);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  rp_log(level <= 3 ? RP_LOG_ERROR : level <= 5 ? RP_LOG_WARN : RP_LOG_DEBUG, "kafka",
         "%s: %s", fac, buf);
}

static int create_consumer(struct consumer *c, char *err, size_t errlen) {
  const struct rp_aggregator_config *cfg = &c->a->cfg;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char e[512];
  const char *settings[][2] = {
      {"bootstrap.servers", cfg->kafka.brokers},
      {"group.id", cfg->kafka.group},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "false"},
  };
  for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
    if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], e, sizeof(e)) !=
        RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "kafka setting %s: %s", settings[i][0], e);
      rd_kafka_conf_destroy(conf);
      return -EINVAL;
    }
  }
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_log_cb(conf, on_log);
  rd_kafka_conf_set_opaque(conf, c);
  c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
  if (c->rk == NULL) {
    snprintf(err, errlen, "kafka consumer: %s", e);
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
  }
  rd_kafka_poll_set_consumer(c->rk);
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, cfg->kafka.topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t rerr = rd_kafka_subscribe(c->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "subscribe %s: %s", cfg->kafka.topic, rd_kafka_err2str(rerr));
    rd_kafka_destroy(c->rk);
    return -EINVAL;
  }
  return 0;
}

/* Applies one message inside the open batch (opening one if needed). */
static int apply_message(struct consumer *c, const rd_kafka_message_t *m) {
  const char *topic = rd_kafka_topic_name(m->rkt);
  if (c->batch == NULL) {
    int rc = store_batch_begin(c->a->store, &c->batch, c->err, sizeof(c->err));
    if (rc != 0)
      return rc;
    c->batch_started_us = mono_us();
  }
  rp_frame *f = NULL;
  char why[256];
  int rc = rp_frame_decode(m->payload, m->len, &f, why, sizeof(why));
  if (rc != 0) {
    atomic_fetch_add(&c->a->stats.frames_invalid, 1);
    rp_warn("ingest", "%s [%d] offset %" PRId64 ": skipped: %s", topic, (int)m->partition,
            m->offset, why);
    rc = store_batch_skip(c->batch, topic, m->partition, m->offset, c->err, sizeof(c->err));
  } else {
    enum store_outcome outcome;
    rc = store_batch_apply(c->batch, f, topic, m->partition, m->offset, &outcome, c->err,
                           sizeof(c->err));
    if (rc == 0 && outcome == STORE_APPLIED) {
      atomic_fetch_add(&c->a->stats.frames_applied, 1);
      if (f->ts_ms > atomic_load(&c->a->stats.last_frame_ms))
        atomic_store(&c->a->stats.last_frame_ms, f->ts_ms);
    } else if (rc == 0) {
      atomic_fetch_add(&c->a->stats.frames_duplicate, 1);
    }
    rp_frame_free(f);
  }
  if (rc != 0) {
    rp_error("ingest", "%s [%d] offset %" PRId64 ": %s", topic, (int)m->partition, m->offset,
             c->err);
    return rc;
  }
  c->batch_frames++;
  return 0;
}

int rp_consume_run(struct rp_aggregator *a, char *err, size_t errlen) {
  struct consumer c = {.a = a};
  int rc = create_consumer(&c, err, errlen);
  if (rc != 0)
    return rc;
  rp_info("ingest", "consuming %s as group %s from %s", a->cfg.kafka.topic, a->cfg.kafka.group,
          a->cfg.kafka.brokers);
  uint64_t wait_us = (uint64_t)a->cfg.kafka.batch_wait_ms * 1000;
  while (!a->stop) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c.rk, c.batch ? 10 : 100);
    if (m != NULL) {
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = apply_message(&c, m);
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rp_warn("ingest", "consumer: %s", rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      if (rc != 0) {
        /* The store refused a write: stop rather than skip state. The
         * batch is aborted and will be re-read from the stored offsets. */
        store_batch_abort(c.batch);
        c.batch = NULL;
        snprintf(err, errlen, "%s", c.err);
        break;
      }
    }
    if (c.batch != NULL && ((size_t)c.batch_frames >= (size_t)a->cfg.kafka.batch_max ||
                            mono_us() - c.batch_started_us >= wait_us)) {
      if ((rc = flush_batch(&c)) != 0) {
        snprintf(err, errlen, "%s", c.err);
        break;
      }
    }
  }
  if (rc == 0)
    rc = flush_batch(&c);
  rd_kafka_consumer_close(c.rk);
  rd_kafka_destroy(c.rk);
  return rc;
}
