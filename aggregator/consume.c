/* Ingest: a librdkafka consumer-group member that applies frames to LMDB in
 * batches. Exactly once, by construction:
 *   - messages are decoded as they arrive and held (with their Kafka message:
 *     a frame's dictionary is left out at first, rp_frame_decode_lazy(), and
 *     decoded from the message at apply only when the store lacks it)
 *     until the batch is full or old enough; the batch is then applied in
 *     one LMDB write transaction holding the state changes and the next
 *     offset of every partition it read (store_apply());
 *   - on assignment the consumer starts each partition at the offset stored
 *     in LMDB (or at the beginning of the log when the store has none), never
 *     at an offset committed to Kafka;
 *   - on revocation the held batch is applied before the partitions go.
 * Offsets are not committed to Kafka: LMDB is the only record of progress.
 * A message that does not decode is counted, logged with topic, partition
 * and offset, and skipped (its offset is stored so it is not re-read).
 * When the LMDB map is full, store_apply() grows it and applies the batch
 * again; at store.map_size_max_mb ingest stops with an error naming it. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "cluster.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"

/* A message held in the open batch. */
struct held {
  rd_kafka_message_t *m; /* keeps the topic name alive for msgs[i].topic */
  rp_frame *f;           /* NULL when it did not decode */
};

struct consumer {
  struct rp_aggregator *a;
  rd_kafka_t *rk;
  struct held *held;
  struct store_msg *msgs; /* parallel to held */
  size_t n, cap;
  uint64_t batch_started_us;
  bool failed; /* a batch could not be applied: stop */
  char err[512];
};

static void release_batch(struct consumer *c) {
  for (size_t i = 0; i < c->n; i++) {
    rp_frame_free(c->held[i].f);
    rd_kafka_message_destroy(c->held[i].m);
  }
  c->n = 0;
}

static void count_lag(struct rp_ingest_stats *st, int64_t lag_ms) {
  static const double bounds[RP_LAG_NBUCKETS] = RP_LAG_BUCKETS;
  if (lag_ms < 0)
    lag_ms = 0;
  size_t b = 0;
  while (b < RP_LAG_NBUCKETS && (double)lag_ms > bounds[b] * 1000.0)
    b++;
  atomic_fetch_add(&st->lag_bucket[b], 1);
  atomic_fetch_add(&st->lag_count, 1);
  atomic_fetch_add(&st->lag_sum_ms, (uint64_t)lag_ms);
}

/* Says what applying a frame noticed about its agent's identity. Unknown
 * dictionaries are counted, not logged: they are expected for a few frames
 * after a consumer starts mid-stream. */
static void log_events(const struct store_msg *m) {
  const rp_frame *f = m->frame;
  if (m->events & STORE_EV_NEW_INCARNATION)
    rp_info("ingest",
            "agent %s (rack %s): new incarnation %016" PRIx64 " from seq %" PRIu64
            " (%s [%d] offset %" PRId64 "): its state was reset; accepted",
            f->agent_id, f->rack_id, f->incarnation, f->seq, m->topic, (int)m->partition,
            m->offset);
  if (m->events & STORE_EV_BAD_DICTIONARY)
    rp_warn("ingest",
            "agent %s (rack %s): frame %" PRIu64 " (%s [%d] offset %" PRId64
            "): its dictionary does not match its dictionary_hash %016" PRIx64 "; refused",
            f->agent_id, f->rack_id, f->seq, m->topic, (int)m->partition, m->offset,
            f->dictionary_hash);
}

/* Applies the held batch in one transaction, then counts what it did. */
static int flush_batch(struct consumer *c) {
  if (c->n == 0)
    return 0;
  struct rp_ingest_stats *st = &c->a->stats;
  struct store_map_info before, after;
  store_map_info(c->a->store, &before);
  int rc = store_apply(c->a->store, c->msgs, c->n, c->err, sizeof(c->err));
  store_map_info(c->a->store, &after);
  if (after.grows != before.grows)
    rp_info("ingest", "LMDB map grown to %zu MiB (store.map_size_max_mb: %zu)",
            after.map_bytes >> 20, after.max_bytes >> 20);
  if (rc != 0) {
    rp_error("ingest",
             "batch of %zu message(s) from %s [%d] offset %" PRId64 " on: not applied: %s", c->n,
             c->msgs[0].topic, (int)c->msgs[0].partition, c->msgs[0].offset, c->err);
    if (store_err_damaged(rc) && store_mark_damaged(c->a->cfg.store.path) == 0)
      rp_error("ingest", "the store is damaged: the next start rebuilds it from Kafka");
    release_batch(c);
    return rc;
  }
  int64_t now = rp_now_ms(), newest = 0;
  for (size_t i = 0; i < c->n; i++) {
    const struct store_msg *m = &c->msgs[i];
    if (m->frame == NULL) {
      if (c->held[i].f != NULL) /* decoded without its dictionary only */
        rp_warn("ingest",
                "%s [%d] offset %" PRId64 ": %zu-byte message skipped: its dictionary "
                "does not decode",
                m->topic, (int)m->partition, m->offset, c->held[i].m->len);
      atomic_fetch_add(&st->frames_invalid, 1);
    } else if (m->outcome == STORE_DUPLICATE) {
      atomic_fetch_add(&st->frames_duplicate, 1);
    } else {
      log_events(m);
      uint64_t samples = 0;
      for (size_t j = 0; j < m->frame->n_samples; j++)
        samples += m->frame->samples[j]->n_series;
      atomic_fetch_add(&st->frames_applied, 1);
      atomic_fetch_add(&st->samples_applied, samples);
      count_lag(st, now - m->frame->ts_ms);
      if (m->frame->ts_ms > newest)
        newest = m->frame->ts_ms;
    }
  }
  if (newest > atomic_load(&st->last_frame_ms))
    atomic_store(&st->last_frame_ms, newest);
  atomic_fetch_add(&st->batches, 1);
  atomic_store(&st->last_batch_size, c->n);
  atomic_store(&st->last_apply_us, rp_mono_us() - c->batch_started_us);
  release_batch(c);
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
}

/* A cluster's members use the cooperative protocol (cluster.h): a
 * rebalance moves only the partitions that change owner. */
static bool cooperative(rd_kafka_t *rk) {
  return strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  struct consumer *c = opaque;
  bool coop = cooperative(rk);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    assign_from_store(c, parts);
    if (coop)
      rd_kafka_incremental_assign(rk, parts);
    else
      rd_kafka_assign(rk, parts);
    rp_cluster_assigned(c->a->cluster, parts, coop);
    return;
  }
  /* Not answered here from this moment: the store is no longer fed. */
  rp_cluster_revoked(c->a->cluster, coop ? parts : NULL);
  /* Revoked (or an error): the state of what we read so far is committed
   * before the partitions go to another member. */
  if (flush_batch(c) != 0)
    c->failed = true;
  rp_info("ingest", "%d partition(s) revoked", parts ? parts->cnt : 0);
  if (coop)
    rd_kafka_incremental_unassign(rk, parts);
  else
    rd_kafka_assign(rk, NULL);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  rp_log(level <= 3   ? RP_LOG_ERROR
         : level <= 5 ? RP_LOG_WARN
                      : RP_LOG_DEBUG,
         "kafka", "%s: %s", fac, buf);
}

static int create_consumer(struct consumer *c, char *err, size_t errlen) {
  const struct rp_aggregator_config *cfg = &c->a->cfg;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char e[512], session[32], heartbeat[32];
  /* A member that dies without leaving (kill -9, power loss) hands its
   * partitions over after this long; Kafka's default is 45 s. Heartbeats
   * go at a third of it (at most every second), as Kafka advises, so a
   * member on a loaded host is not taken for dead. */
  long long session_ms = cfg->cluster.member_id[0] ? cfg->cluster.session_timeout_ms : 10000;
  snprintf(session, sizeof(session), "%lld", session_ms);
  snprintf(heartbeat, sizeof(heartbeat), "%lld", session_ms / 3 < 1000 ? session_ms / 3 : 1000);
  /* Fetch latency, before kafka.properties so that they may change it: a
   * fetch that finds no new data waits up to fetch.wait.max.ms (500 ms by
   * default). A real broker answers it as soon as data arrives, but some
   * brokers (the librdkafka mock cluster behind the dev broker) hold it for
   * the whole wait, which then adds up to that much to every frame's lag.
   * 100 ms keeps that within batch_wait's order at one idle request per
   * 100 ms per broker. */
  if (rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", e, sizeof(e)) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "kafka setting fetch.wait.max.ms: %s", e);
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
  }
  if (rp_kafka_conf_common(cfg, conf, err, errlen) != 0) {
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
  }
  const char *settings[][2] = {
      {"group.id", cfg->kafka.group},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "false"},
      {"session.timeout.ms", session},
      {"partition.assignment.strategy",
       cfg->cluster.member_id[0] ? "cooperative-sticky" : "range,roundrobin"},
      {"heartbeat.interval.ms", heartbeat},
  };
  for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
    if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], e, sizeof(e)) != RD_KAFKA_CONF_OK) {
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

/* A frame on another partition than its rack's: its producer does not
 * use librdkafka's default partitioner (the agent refuses to be configured
 * otherwise), so the member that answers for the rack does not see it.
 * Applied all the same (nothing accepted is dropped), counted, and logged
 * with its place (the 1st, 2nd, 4th, 8th... time). */
static void check_partition(struct consumer *c, const rd_kafka_message_t *m, const rp_frame *f) {
  int32_t home = rp_cluster_home(c->a->cluster, f->rack_id);
  if (home < 0 || home == m->partition)
    return;
  uint64_t n = atomic_fetch_add(&c->a->stats.frames_misplaced, 1) + 1;
  if ((n & (n - 1)) == 0)
    rp_warn("ingest",
            "%s [%d] offset %" PRId64 ": frame of rack %s (agent %s) belongs to partition %d by "
            "librdkafka's default partitioner: its producer partitions otherwise, and the member "
            "answering for %s does not see it (%" PRIu64 " such frame(s) so far)",
            rd_kafka_topic_name(m->rkt), (int)m->partition, m->offset, f->rack_id, f->agent_id,
            (int)home, f->rack_id, n);
}

/* Decodes a message and holds it in the batch (taking ownership of m).
 * Returns 0 or -ENOMEM. */
static int hold_message(struct consumer *c, rd_kafka_message_t *m) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 256;
    struct held *held = realloc(c->held, cap * sizeof(*held));
    if (held == NULL)
      return -ENOMEM;
    c->held = held;
    struct store_msg *msgs = realloc(c->msgs, cap * sizeof(*msgs));
    if (msgs == NULL)
      return -ENOMEM;
    c->msgs = msgs;
    c->cap = cap;
  }
  if (c->n == 0)
    c->batch_started_us = rp_mono_us();
  const char *topic = rd_kafka_topic_name(m->rkt);
  rp_frame *f = NULL;
  char why[256];
  bool dict_left_out;
  if (rp_frame_decode_lazy(m->payload, m->len, &f, &dict_left_out, why, sizeof(why)) != 0) {
    rp_warn("ingest", "%s [%d] offset %" PRId64 ": %zu-byte message skipped: %s", topic,
            (int)m->partition, m->offset, m->len, why);
    f = NULL;
  } else {
    check_partition(c, m, f);
  }
  if (f != NULL && f->health != NULL) {
    rp_floor_agent_health(c->a->floor, f->agent_id, f->rack_id, f->ts_ms, f->health->spool_depth,
                          f->health->frames_dropped, f->health->delivery_latency_ms);
  }
  c->held[c->n] = (struct held){m, f};
  c->msgs[c->n] = (struct store_msg){.frame = f,
                                     .topic = topic,
                                     .partition = m->partition,
                                     .offset = m->offset,
                                     .raw = f != NULL && dict_left_out ? m->payload : NULL,
                                     .raw_len = m->len};
  c->n++;
  return 0;
}

int rp_consume_run(struct rp_aggregator *a, char *err, size_t errlen) {
  struct consumer c = {.a = a};
  store_set_map_max(a->store, (size_t)a->cfg.store.map_size_max_mb << 20);
  int rc = create_consumer(&c, err, errlen);
  if (rc != 0)
    return rc;
  rp_info("ingest", "consuming %s as group %s from %s", a->cfg.kafka.topic, a->cfg.kafka.group,
          a->cfg.kafka.brokers);
  uint64_t wait_us = (uint64_t)a->cfg.kafka.batch_wait_ms * 1000;
  bool periodic = strcmp(a->cfg.store.sync, "periodic") == 0;
  uint64_t last_sync_ms = rp_mono_ms();
  while (!a->stop && !c.failed) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c.rk, c.n ? 10 : 100);
    if (m != NULL) {
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if ((rc = hold_message(&c, m)) != 0) {
          rd_kafka_message_destroy(m);
          snprintf(err, errlen, "out of memory holding a batch");
          break;
        }
      } else {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          rp_warn("ingest", "consumer: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
      }
    }
    if (c.n > 0 &&
        (c.n >= (size_t)a->cfg.kafka.batch_max || rp_mono_us() - c.batch_started_us >= wait_us)) {
      /* The store refused the batch (map at its maximum, disk error): stop
       * rather than skip state. Nothing of it was applied; a restart reads
       * it again from the stored offsets. */
      if ((rc = flush_batch(&c)) != 0)
        break;
    }
    if (periodic && rp_mono_ms() - last_sync_ms >= (uint64_t)a->cfg.store.sync_interval_ms) {
      if ((rc = store_sync(a->store, err, errlen)) != 0)
        break;
      last_sync_ms = rp_mono_ms();
    }
  }
  if (rc == 0 && !c.failed)
    rc = flush_batch(&c);
  if (rc == 0 && !c.failed)
    rc = store_sync(a->store, err, errlen);
  if (rc != 0 || c.failed) {
    if (rc == 0)
      rc = -EIO;
    if (c.err[0] != '\0')
      snprintf(err, errlen, "%s", c.err);
  }
  release_batch(&c);
  rd_kafka_consumer_close(c.rk);
  rd_kafka_destroy(c.rk);
  free(c.held);
  free(c.msgs);
  return rc;
}
