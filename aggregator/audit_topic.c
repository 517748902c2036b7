/* Audit records to Kafka: with kafka.audit_topic set, every record the
 * audit log takes (gate decisions, device retirements, reservation
 * events) is also produced to that append-only topic, keyed by rack, as
 * the JSON the audit API answers, with the member that wrote it in the
 * "member" header when the aggregator is part of a cluster. A site archives
 * the topic with any consumer; the local audit log stays the query index.
 * Production never blocks the caller: a record librdkafka cannot take or
 * deliver is counted (rackpulse_audit_topic_failed_total) and logged at
 * most once a second. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "cluster.h"
#include "ledger.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"

struct rp_audit_topic {
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  char topic[128];
  _Atomic uint64_t produced, failed, last_warn_ms;
};

static void warn_limited(struct rp_audit_topic *t, const char *what) {
  uint64_t now = rp_mono_ms(), last = atomic_load(&t->last_warn_ms);
  if (now - last >= 1000 && atomic_compare_exchange_strong(&t->last_warn_ms, &last, now))
    rp_warn("audit", "record not written to %s: %s (at most one such line a second)", t->topic,
            what);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct rp_audit_topic *t = opaque;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    atomic_fetch_add(&t->failed, 1);
    warn_limited(t, rd_kafka_err2str(m->err));
  } else {
    atomic_fetch_add(&t->produced, 1);
  }
}

static void sink(void *ctx, const json_t *d) {
  struct rp_audit_topic *t = ctx;
  const char *rack = json_string_value(json_object_get(d, "rack"));
  char *text = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(10));
  if (rack == NULL || text == NULL) {
    free(text);
    return;
  }
  const char *member = rp_cluster_self_id();
  rd_kafka_resp_err_t e = rd_kafka_producev(
      t->rk, RD_KAFKA_V_RKT(t->rkt), RD_KAFKA_V_KEY(rack, strlen(rack)),
      RD_KAFKA_V_VALUE(text, strlen(text)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
      RD_KAFKA_V_HEADER("member", member ? member : "", member ? (ssize_t)strlen(member) : 0),
      RD_KAFKA_V_END);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    free(text);
    atomic_fetch_add(&t->failed, 1);
    warn_limited(t, rd_kafka_err2str(e));
  }
  rd_kafka_poll(t->rk, 0);
}

int rp_audit_topic_start(struct rp_aggregator *a, char *err, size_t errlen) {
  if (a->cfg.kafka.audit_topic[0] == '\0')
    return 0;
  struct rp_audit_topic *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return -ENOMEM;
  snprintf(t->topic, sizeof(t->topic), "%s", a->cfg.kafka.audit_topic);
  t->rk = rp_kafka_client_new(&a->cfg, RD_KAFKA_PRODUCER, "audit producer", on_delivery, t, err,
                              errlen);
  if (t->rk == NULL) {
    free(t);
    return -EINVAL;
  }
  t->rkt = rd_kafka_topic_new(t->rk, t->topic, NULL);
  a->audit_topic = t;
  rp_ledger_set_audit_sink(a->ledger, sink, t);
  rp_info("audit", "audit records also go to %s", t->topic);
  return 0;
}

void rp_audit_topic_stop(struct rp_aggregator *a) {
  struct rp_audit_topic *t = a->audit_topic;
  if (t == NULL)
    return;
  if (rd_kafka_flush(t->rk, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    rp_warn("audit", "%d record(s) not delivered to %s at exit", rd_kafka_outq_len(t->rk),
            t->topic);
  rd_kafka_topic_destroy(t->rkt);
  rd_kafka_destroy(t->rk);
  free(t);
  a->audit_topic = NULL;
}

void rp_audit_topic_metrics(struct rp_aggregator *a, FILE *out) {
  struct rp_audit_topic *t = a->audit_topic;
  if (t == NULL)
    return;
  fprintf(out,
          "# HELP rackpulse_audit_topic_produced_total Audit records delivered to "
          "kafka.audit_topic.\n# TYPE rackpulse_audit_topic_produced_total counter\n"
          "rackpulse_audit_topic_produced_total %llu\n"
          "# HELP rackpulse_audit_topic_failed_total Audit records kafka.audit_topic did not "
          "take.\n# TYPE rackpulse_audit_topic_failed_total counter\n"
          "rackpulse_audit_topic_failed_total %llu\n",
          (unsigned long long)atomic_load(&t->produced),
          (unsigned long long)atomic_load(&t->failed));
}
