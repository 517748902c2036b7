/* Flags: automatic thermal flags from the gate's checks, and the events
 * that announce every flag set or cleared on `rackpulse.events`
 * (rackpulse.v1.Event, keyed by rack id) for schedulers to act on.
 *
 * Automatic flags (upkeep thread, once a second, every rack that reported):
 *   supply_temp, supply_slope, inlet_slope, delta_t, flow  ->  pause-admissions
 *   alarms (a leak, a pump fault)                          ->  evacuate
 *   power_headroom or thermal_headroom below zero          ->  scale-back
 * A check only trips after its policy persistence and clears after its
 * hysteresis (gate.c); a flag, once set, is held at least flags.min_hold.
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
#include "ledger.h"
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

/* The automatic flag a failing check raises, or NULL. */
static const char *flag_for(const char *check) {
  static const struct {
    const char *check, *flag;
  } map[] = {{"supply_temp", "pause-admissions"},
             {"supply_slope", "pause-admissions"},
             {"inlet_slope", "pause-admissions"},
             {"delta_t", "pause-admissions"},
             {"flow", "pause-admissions"},
             {"heat_balance", "pause-admissions"},
             {"alarms", "evacuate"},
             {"power_headroom", "scale-back"},
             {"thermal_headroom", "scale-back"}};
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(map[i].check, check) == 0)
      return map[i].flag;
  return NULL;
}

static bool is_auto(const json_t *f) {
  const char *src = json_string_value(json_object_get(f, "source"));
  return src != NULL && strcmp(src, "auto") == 0;
}

/* An automatic flag set or cleared, in the audit log (client "aggregator"),
 * with the check that raised it. */
static void audit_auto_flag(struct rp_aggregator *a, const json_t *f, const char *action,
                            int64_t now) {
  json_t *e =
      json_pack("{s:s, s:O, s:O, s:O}", "action", action, "rack", json_object_get(f, "rack"),
                "flag", json_object_get(f, "flag"), "record", f);
  if (e != NULL)
    rp_audit_record(a, NULL, e, now);
  json_decref(e);
}

/* Raises and clears the rack's automatic flags from its decision `d`. */
static void reconcile_rack(struct rp_aggregator *a, const char *rack, const json_t *d,
                           int64_t now) {
  const char *version = json_string_value(json_object_get(d, "policy_version"));
  json_t *wanted = json_object(); /* flag -> the check that wants it */
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(d, "checks"), i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *flag = name ? flag_for(name) : NULL;
    if (flag == NULL || json_is_true(json_object_get(c, "pass")) ||
        !json_is_number(json_object_get(c, "observed")))
      continue;
    /* Headroom checks raise scale-back only when the rack is over already:
     * the heat of reservations not yet drawn is work to come, not heat to
     * shed (gate.c thermal_check). */
    double over = json_number_value(json_object_get(c, "observed"));
    json_t *planned = json_object_get(c, "reserved_heat_kw");
    if (strcmp(name, "thermal_headroom") == 0 && json_is_number(planned))
      over += json_number_value(planned);
    if (strcmp(flag, "scale-back") == 0 && over >= 0)
      continue;
    if (json_object_get(wanted, flag) == NULL)
      json_object_set(wanted, flag, c);
  }
  json_t *have = rp_ledger_flag_list(a->ledger, rack);
  const char *flag;
  json_t *check;
  json_object_foreach(wanted, flag, check) {
    bool present = false;
    json_array_foreach(have, i, c) present |=
        strcmp(json_string_value(json_object_get(c, "flag")), flag) == 0;
    if (present)
      continue;
    const char *reason = json_string_value(json_object_get(check, "reason"));
    json_t *f =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:I, s:I}", "rack", rack, "flag", flag,
                  "owner", "rackpulse", "source", "auto", "check",
                  json_string_value(json_object_get(check, "name")), "reason", reason ? reason : "",
                  "observed", json_number_value(json_object_get(check, "observed")), "limit",
                  json_number_value(json_object_get(check, "limit")), "set_ms", (json_int_t)now,
                  "expires_ms", (json_int_t)INT64_MAX);
    /* Never over a flag an operator set since `have` was read. */
    if (rp_ledger_flag_put_new(a->ledger, rack, flag, f) == 0) {
      rp_warn("flags", "%s set on rack %s: %s %s", flag, rack,
              json_string_value(json_object_get(f, "check")), reason ? reason : "");
      rp_events_publish(a->events, f, true, version);
      audit_auto_flag(a, f, "flag_set", now);
    }
    json_decref(f);
  }
  json_array_foreach(have, i, c) {
    const char *name = json_string_value(json_object_get(c, "flag"));
    if (!is_auto(c) || name == NULL || json_object_get(wanted, name) != NULL ||
        now - json_integer_value(json_object_get(c, "set_ms")) < a->cfg.flags.min_hold_ms)
      continue;
    /* Only the automatic flag as read, not one set again meanwhile. */
    if (rp_ledger_flag_del_if(a->ledger, rack, name, c) == 0) {
      rp_info("flags", "%s cleared on rack %s", name, rack);
      rp_events_publish(a->events, c, false, version);
      audit_auto_flag(a, c, "flag_clear", now);
    }
  }
  json_decref(have);
  json_decref(wanted);
}

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
  if (r.ids == NULL || r.last == NULL || floor == NULL)
    goto cleanup;
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
    if (a->cfg.flags.automatic)
      reconcile_rack(a, r.ids[i], d, now);
    json_t *s = rp_floor_summarize(a, r.ids[i], d, r.last[i]);
    if (s != NULL)
      json_object_set_new(floor, r.ids[i], s);
    json_decref(d);
  }
  if (!a->stop) {
    rp_floor_publish(a, floor, now);
    floor = NULL;
  }
cleanup:
  json_decref(floor);
  free(r.ids);
  free(r.last);
}
