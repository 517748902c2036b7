/* policy simulate's Kafka side (see ctl_simulate.c): partitions assigned by
 * hand from offsets looked up by time, one queue per partition, merged in
 * frame-time order into the backtest engine. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_simulate_int.h"
#include "rackpulse/clock.h"

#define SLACK_MS 60000
#define POLL_MS 500
#define IDLE_MS 30000 /* a partition that gives nothing this long before its end: error */
#define MAX_PARTITIONS 1024

/* One partition: its queue, its end, and the next frame it holds. */
struct part {
  int32_t id;
  rd_kafka_queue_t *q;
  int64_t end;  /* high watermark at the start */
  int64_t next; /* offset of the next message to read */
  rp_frame *head;
  bool done;
};

struct reader {
  rd_kafka_t *rk;
  struct part p[MAX_PARTITIONS];
  int n;
  const char *topic;
  int64_t stop_ms;
  uint64_t skipped; /* messages that did not decode */
  char lookup[160]; /* how the start offsets were found */
};

static rd_kafka_t *new_consumer(const char *brokers, char *err, size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char e[512], group[64];
  /* Never used to join a group (partitions are assigned by hand), never
   * committed: required by librdkafka, unique so it names this run. */
  snprintf(group, sizeof(group), "rackpulsectl-simulate-%d", (int)getpid());
  const char *settings[][2] = {
      {"bootstrap.servers", brokers},   {"group.id", group},
      {"enable.auto.commit", "false"},  {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"}, {"log_level", "3"}};
  for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
    if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], e, sizeof(e)) != RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "kafka setting %s: %s", settings[i][0], e);
      rd_kafka_conf_destroy(conf);
      return NULL;
    }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
  if (rk == NULL) {
    snprintf(err, errlen, "kafka consumer: %s", e);
    rd_kafka_conf_destroy(conf);
  }
  return rk;
}

/* Partitions of the topic, their end offsets and where each starts. */
static int assign(struct reader *rd, int64_t from_ms, char *err, size_t errlen) {
  const struct rd_kafka_metadata *md;
  rd_kafka_topic_t *t = rd_kafka_topic_new(rd->rk, rd->topic, NULL);
  rd_kafka_resp_err_t e = rd_kafka_metadata(rd->rk, 0, t, &md, 10000);
  rd_kafka_topic_destroy(t);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
    snprintf(err, errlen, "topic %s: %s", rd->topic, rd_kafka_err2str(e ? e : md->topics[0].err));
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
      rd_kafka_metadata_destroy(md);
    return -EIO;
  }
  rd_kafka_topic_partition_list_t *list =
      rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
  for (int i = 0; i < md->topics[0].partition_cnt && rd->n < MAX_PARTITIONS; i++) {
    struct part *p = &rd->p[rd->n++];
    p->id = md->topics[0].partitions[i].id;
    int64_t lo = 0, hi = 0;
    e = rd_kafka_query_watermark_offsets(rd->rk, rd->topic, p->id, &lo, &hi, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      snprintf(err, errlen, "%s [%d]: end offsets: %s", rd->topic, (int)p->id, rd_kafka_err2str(e));
      rd_kafka_topic_partition_list_destroy(list);
      rd_kafka_metadata_destroy(md);
      return -EIO;
    }
    p->end = hi;
    p->next = -1; /* not known until the first message */
    p->done = hi <= lo;
    rd_kafka_topic_partition_list_add(list, rd->topic, p->id)->offset = from_ms - SLACK_MS;
  }
  rd_kafka_metadata_destroy(md);
  e = rd_kafka_offsets_for_times(rd->rk, list, 10000);
  int by_time = 0;
  for (int i = 0; i < list->cnt; i++) {
    rd_kafka_topic_partition_t *tp = &list->elems[i];
    /* Real Kafka answers -1 when no message is that recent; librdkafka's
     * mock cluster answers -1 for any time: start at the beginning and
     * skip what is older. */
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0)
      by_time++;
    else
      tp->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  snprintf(rd->lookup, sizeof(rd->lookup), "%d of %d partition(s) by time, %d from the beginning",
           by_time, list->cnt, list->cnt - by_time);
  e = rd_kafka_assign(rd->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
    return -EIO;
  }
  for (int i = 0; i < rd->n; i++) {
    rd->p[i].q = rd_kafka_queue_get_partition(rd->rk, rd->topic, rd->p[i].id);
    rd_kafka_queue_forward(rd->p[i].q, NULL); /* read it alone, not via the consumer queue */
  }
  return 0;
}

/* Fills p->head with the partition's next frame, or marks it done (its
 * end offset read, its end reported, or a frame past the stop time). */
static int fill(struct reader *rd, struct part *p, char *err, size_t errlen) {
  uint64_t waited = 0;
  while (!p->done && p->head == NULL) {
    if (p->next >= p->end) {
      p->done = true;
      break;
    }
    rd_kafka_message_t *m = rd_kafka_consume_queue(p->q, POLL_MS);
    if (m == NULL) {
      if ((waited += POLL_MS) >= IDLE_MS) {
        snprintf(err, errlen, "%s [%d]: nothing read for %d s before its end offset %" PRId64,
                 rd->topic, (int)p->id, IDLE_MS / 1000, p->end);
        return -ETIMEDOUT;
      }
      continue;
    }
    waited = 0;
    rd_kafka_resp_err_t e = m->err;
    if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      p->done = true;
    } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      snprintf(err, errlen, "%s [%d]: %s", rd->topic, (int)p->id, rd_kafka_message_errstr(m));
    } else {
      p->next = m->offset + 1;
      rp_frame *f = NULL;
      char why[256];
      if (rp_frame_decode(m->payload, m->len, &f, why, sizeof(why)) != 0) {
        if (rd->skipped++ < 5)
          fprintf(stderr,
                  "rackpulsectl: policy simulate: %s [%d] offset %" PRId64 ": skipped: %s\n",
                  rd->topic, (int)p->id, m->offset, why);
      } else if (f->ts_ms > rd->stop_ms) {
        rp_frame_free(f);
        p->done = true;
      } else {
        p->head = f;
      }
    }
    rd_kafka_message_destroy(m);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      return -EIO;
  }
  return 0;
}

/* The partition whose next frame is oldest, or NULL when all are done. */
static struct part *oldest(struct reader *rd) {
  struct part *best = NULL;
  for (int i = 0; i < rd->n; i++) {
    struct part *p = &rd->p[i];
    if (p->head != NULL && (best == NULL || p->head->ts_ms < best->head->ts_ms))
      best = p;
  }
  return best;
}

static int feed(struct reader *rd, struct rp_replay *r, int64_t from_ms, char *err, size_t errlen) {
  for (int i = 0; i < rd->n; i++)
    if (fill(rd, &rd->p[i], err, errlen) != 0)
      return -EIO;
  struct part *p;
  while ((p = oldest(rd)) != NULL) {
    rp_frame *f = p->head;
    p->head = NULL;
    if (f->ts_ms < from_ms - SLACK_MS)
      rp_frame_free(f); /* older than the warm-up: not replayed */
    else if (rp_replay_frame(r, f, err, errlen) != 0)
      return -EIO;
    if (fill(rd, p, err, errlen) != 0)
      return -EIO;
  }
  return 0;
}

static void close_reader(struct reader *rd) {
  for (int i = 0; i < rd->n; i++) {
    rp_frame_free(rd->p[i].head);
    if (rd->p[i].q != NULL)
      rd_kafka_queue_destroy(rd->p[i].q);
  }
  if (rd->rk != NULL) {
    rd_kafka_assign(rd->rk, NULL);
    rd_kafka_destroy(rd->rk);
  }
}

int rp_sim_replay(const struct rp_sim_run *run, struct rp_policy *cand, struct rp_policy *cur,
                  const struct rp_replay_options *ro) {
  static struct reader rd; /* large (partition table): not on the stack */
  memset(&rd, 0, sizeof(rd));
  rd.topic = run->topic;
  rd.stop_ms = run->to_ms + SLACK_MS;
  char err[1024] = "";
  struct rp_replay *r = NULL;
  int status = 2;
  if (rp_replay_new(cand, cur, ro, &r, err, sizeof(err)) != 0)
    goto done;
  if ((rd.rk = new_consumer(run->brokers, err, sizeof(err))) == NULL ||
      assign(&rd, run->from_ms, err, sizeof(err)) != 0 ||
      feed(&rd, r, run->from_ms, err, sizeof(err)) != 0 ||
      rp_replay_finish(r, run->to_ms, err, sizeof(err)) != 0)
    goto done;
  json_t *report = rp_replay_report(r);
  if (report == NULL) {
    snprintf(err, sizeof(err), "out of memory");
    goto done;
  }
  json_object_set_new(report, "offsets", json_string(rd.lookup));
  json_object_set_new(report, "undecodable", json_integer((json_int_t)rd.skipped));
  if (run->json) {
    json_dumpf(report, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    putchar('\n');
  } else {
    rp_sim_print(report, stdout);
  }
  status = json_integer_value(json_object_get(report, "must_deny_violations")) > 0 ? 1 : 0;
  json_decref(report);
done:
  if (status == 2)
    fprintf(stderr, "rackpulsectl: policy simulate: %s\n", err);
  close_reader(&rd);
  rp_replay_free(r);
  return status;
}
