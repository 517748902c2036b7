/* Flags: automatic thermal flags from the gate's checks, and the events
 * that announce every flag set or cleared on `rackpulse.events`
 * (rackpulse.v1.Event, keyed by rack id) for schedulers to act on.
 *
 * Automatic flags (upkeep thread, once a second, every rack that reported)
 * follow the policy's escalation ladder (ladder.h); without one, the fixed
 *   supply_temp, supply_slope, inlet_slope, delta_t, flow  ->  pause-admissions
 *   alarms (a leak, a pump fault)                          ->  evacuate
 *   power_headroom or thermal_headroom below zero          ->  scale-back
 * A check only trips after its policy persistence and clears after its
 * hysteresis (gate.c); a flag, once set, is held at least flags.min_hold
 * (or the ladder's min_hold). The same pass feeds the thermal SLOs (slo.h).
 * Checks without data do not raise flags: the gate already fails closed.
 * Reservations announce a preemption notice and the revocation that follows
 * on the same topic (rp_events_publish_reservation).
 * The same evaluation of every rack feeds the floor summaries (floor.c),
 * with or without flags.automatic. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "deploy.h"
#include "gate.h"
#include "ladder.h"
#include "ledger.h"
#include "policy.h"
#include "rackpulse.pb-c.h"
#include "rackpulse/log.h"

struct rp_events {
  rd_kafka_t *rk;
  rd_kafka_topic_t *topic;
  _Atomic uint64_t published, failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct rp_events *e = opaque;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    atomic_fetch_add(&e->failed, 1);
    rp_warn("events", "event not delivered: %s", rd_kafka_err2str(m->err));
  } else {
    atomic_fetch_add(&e->published, 1);
  }
}

int rp_events_new(const struct rp_aggregator_config *cfg, struct rp_events **out, char *err,
                  size_t errlen) {
  struct rp_events *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return -ENOMEM;
  char estr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rp_kafka_conf_common(cfg, conf, estr, sizeof(estr)) != 0 ||
      rd_kafka_conf_set(conf, "enable.idempotence", "true", estr, sizeof(estr)) ||
      rd_kafka_conf_set(conf, "linger.ms", "5", estr, sizeof(estr))) {
    snprintf(err, errlen, "events producer: %s", estr);
    rd_kafka_conf_destroy(conf);
    free(e);
    return -EINVAL;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, e);
  e->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, estr, sizeof(estr));
  if (e->rk == NULL) {
    snprintf(err, errlen, "events producer: %s", estr);
    rd_kafka_conf_destroy(conf);
    free(e);
    return -EINVAL;
  }
  e->topic = rd_kafka_topic_new(e->rk, cfg->kafka.events_topic, NULL);
  *out = e;
  return 0;
}

void rp_events_free(struct rp_events *e) {
  if (e == NULL)
    return;
  rd_kafka_flush(e->rk, 3000);
  rd_kafka_topic_destroy(e->topic);
  rd_kafka_destroy(e->rk);
  free(e);
}

void rp_events_poll(struct rp_events *e) {
  if (e != NULL)
    rd_kafka_poll(e->rk, 0);
}

void rp_events_publish(struct rp_events *e, const json_t *flag, bool set,
                       const char *policy_version) {
  if (e == NULL)
    return;
  Rackpulse__V1__Event ev = RACKPULSE__V1__EVENT__INIT;
  const char *rack = json_string_value(json_object_get(flag, "rack"));
  ev.schema_version = 1;
  ev.rack_id = (char *)(rack ? rack : "");
  ev.flag = (char *)json_string_value(json_object_get(flag, "flag"));
  ev.action = set ? RACKPULSE__V1__EVENT__ACTION__SET : RACKPULSE__V1__EVENT__ACTION__CLEARED;
  ev.source = (char *)json_string_value(json_object_get(flag, "source"));
  ev.owner = (char *)json_string_value(json_object_get(flag, "owner"));
  ev.reason = (char *)json_string_value(json_object_get(flag, "reason"));
  ev.check = (char *)json_string_value(json_object_get(flag, "check"));
  ev.observed = json_number_value(json_object_get(flag, "observed"));
  ev.limit = json_number_value(json_object_get(flag, "limit"));
  ev.ts_ms = rp_now_ms();
  ev.expires_ms = json_integer_value(json_object_get(flag, "expires_ms"));
  ev.policy_version = (char *)(policy_version ? policy_version : "");
  char **strs[] = {&ev.flag, &ev.source, &ev.owner, &ev.reason, &ev.check};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    if (*strs[i] == NULL)
      *strs[i] = (char *)"";
  size_t len = rackpulse__v1__event__get_packed_size(&ev);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL)
    return;
  rackpulse__v1__event__pack(&ev, buf);
  if (rd_kafka_produce(e->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_FREE, buf, len, rack,
                       strlen(ev.rack_id), NULL) != 0) {
    atomic_fetch_add(&e->failed, 1);
    rp_warn("events", "%s %s on %s not queued: %s", ev.flag, set ? "set" : "cleared", ev.rack_id,
            rd_kafka_err2str(rd_kafka_last_error()));
    free(buf);
  }
}

void rp_events_publish_reservation(struct rp_events *e, const json_t *res, const char *what,
                                   int64_t at_ms, const char *reason) {
  if (e == NULL)
    return;
  Rackpulse__V1__Event ev = RACKPULSE__V1__EVENT__INIT;
  const char *rack = json_string_value(json_object_get(res, "rack"));
  const char *owner = json_string_value(json_object_get(res, "owner"));
  const char *id = json_string_value(json_object_get(res, "id"));
  ev.schema_version = 1;
  ev.rack_id = (char *)(rack ? rack : "");
  ev.flag = (char *)what;
  ev.action = RACKPULSE__V1__EVENT__ACTION__SET;
  ev.source = (char *)"reservations";
  ev.owner = (char *)(owner ? owner : "");
  ev.reason = (char *)(reason ? reason : "");
  ev.check = (char *)"";
  ev.observed = json_number_value(json_object_get(res, "kw"));
  ev.ts_ms = rp_now_ms();
  ev.expires_ms = at_ms;
  ev.policy_version = (char *)"";
  ev.reservation_id = (char *)(id ? id : "");
  size_t len = rackpulse__v1__event__get_packed_size(&ev);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL)
    return;
  rackpulse__v1__event__pack(&ev, buf);
  if (rd_kafka_produce(e->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_FREE, buf, len, ev.rack_id,
                       strlen(ev.rack_id), NULL) != 0) {
    atomic_fetch_add(&e->failed, 1);
    rp_warn("events", "%s of reservation %s not queued: %s", what, ev.reservation_id,
            rd_kafka_err2str(rd_kafka_last_error()));
    free(buf);
  }
}

/* An automatic flag set or cleared, in the audit log (client "aggregator"),
 * with the check that raised it: the ladder's observer. */
static void audit_auto_flag(void *ctx, const json_t *f, bool set, int64_t now) {
  json_t *e =
      json_pack("{s:s, s:O, s:O, s:O}", "action", set ? "flag_set" : "flag_clear", "rack",
                json_object_get(f, "rack"), "flag", json_object_get(f, "flag"), "record", f);
  if (e != NULL)
    rp_audit_record(ctx, NULL, e, now);
  json_decref(e);
}

/* The ladder's end of a pass, under the policy in force. */
struct ladder_pass {
  struct rp_aggregator *a;
  struct rp_ladder *ladder;
  int64_t now;
};

static void apply_ladder(void *ctx, const struct rp_policy *p) {
  struct ladder_pass *lp = ctx;
  rp_ladder_apply_audited(lp->ladder, p, lp->a->ledger, lp->a->events, lp->a->cfg.flags.min_hold_ms,
                          lp->now, audit_auto_flag, lp->a);
}

static void configure_slo(void *ctx, const struct rp_policy *p) { rp_slo_configure(ctx, &p->slo); }

struct rack_ids {
  char (*ids)[RP_ID_MAX + 1];
  int64_t *last;
  size_t n, cap;
};

static void collect_rack(void *ctx, const char *rack, const struct store_rack *rk) {
  struct rack_ids *r = ctx;
  if (r->n < r->cap) {
    r->last[r->n] = rk->last_frame_ms;
    snprintf(r->ids[r->n++], RP_ID_MAX + 1, "%s", rack);
  }
}

/* Every rack once: its decision at 0 kW feeds the floor summaries (floor.c)
 * and, with flags.automatic, its automatic flags. A view of the floor, not
 * a decision anyone asked for: not counted in the gate's metrics (nor
 * audited: only http_api.c audits). */
void rp_flags_reconcile(struct rp_aggregator *a, int64_t now) {
  struct rack_ids r = {.cap = 100000};
  r.ids = calloc(r.cap, RP_ID_MAX + 1);
  r.last = calloc(r.cap, sizeof(*r.last));
  json_t *floor = json_object();
  /* Without the upkeep's ladder (unit tests), one for this pass: the fixed
   * mapping's steps are immediate, so it needs no history. */
  struct ladder_pass lp = {.a = a, .ladder = a->ladder, .now = now};
  if (a->cfg.flags.automatic && lp.ladder == NULL && rp_ladder_new(&lp.ladder) != 0)
    lp.ladder = NULL;
  if (r.ids == NULL || r.last == NULL || floor == NULL)
    goto cleanup;
  if (a->slo != NULL)
    rp_gate_with_policy(a->gate, configure_slo, a->slo);
  struct store_read *rd;
  if (store_read_begin(a->store, &rd) == 0) {
    store_read_each_rack(rd, collect_rack, &r);
    store_read_end(rd);
  }
  for (size_t i = 0; i < r.n && !a->stop; i++) {
    if (!rp_cluster_answers(a->cluster, r.ids[i]))
      continue; /* another member's rack: its store here is not fed */
    struct rp_gate_request q = {.rack = r.ids[i], .kw = 0, .uncounted = true};
    int status;
    char err[256];
    json_t *d = rp_gate_evaluate(a->gate, a->store, a->ledger, &q, now, &status, err, sizeof(err));
    if (d == NULL)
      continue;
    if (a->cfg.flags.automatic && lp.ladder != NULL)
      rp_ladder_observe(lp.ladder, r.ids[i], d, now);
    rp_slo_observe(a->slo, r.ids[i], d, now);
    json_t *s = rp_floor_summarize(a, r.ids[i], d, r.last[i]);
    if (s != NULL)
      json_object_set_new(floor, r.ids[i], s);
    json_decref(d);
  }
  if (a->cfg.flags.automatic && lp.ladder != NULL && !a->stop)
    rp_gate_with_policy(a->gate, apply_ladder, &lp);
  if (!a->stop) {
    rp_floor_publish(a, floor, now);
    floor = NULL;
  }
cleanup:
  if (lp.ladder != a->ladder)
    rp_ladder_free(lp.ladder);
  json_decref(floor);
  free(r.ids);
  free(r.last);
}
