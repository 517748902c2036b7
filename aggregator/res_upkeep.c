/* The reservations' upkeep (see reservations.h): each pass of the upkeep
 * thread (every 5 s) serves the wait queue, ends preemption notices that
 * ran out, integrates every running reservation's energy and expires those
 * that ended or sit unused; and their /metrics lines. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aggregator.h"
#include "energy.h"
#include "gate.h"
#include "rackpulse/log.h"
#include "reservations.h"
#include "reservations_internal.h"

/* The upkeep pass integrates every running reservation's energy each 5 s.
 * Those records are written locally in one transaction; one a minute per
 * reservation (and every change of state) also goes to the ledger topic,
 * whose writer waits for the broker: a change a reservation at a time,
 * every pass, would hold the ledger for seconds on a site with thousands.
 * A failover may lose up to this much of a running reservation's energy. */
#define ENERGY_PUBLISH_MS (60LL * 1000)
/* When r last went to the ledger topic: this member's bookkeeping, never
 * shown (rp_reservation_public). */
#define PUBLISHED_FIELD "published_ms"

json_t *rp_reservation_public(const json_t *r) {
  if (json_object_get(r, PUBLISHED_FIELD) == NULL)
    return json_incref((json_t *)r);
  json_t *copy = json_copy((json_t *)r);
  json_object_del(copy, PUBLISHED_FIELD);
  return copy;
}

void rp_reservation_hide_private(json_t *r) { json_object_del(r, PUBLISHED_FIELD); }

static void copy_tariff(void *ctx, const struct rp_policy *p) {
  *(struct rp_tariff *)ctx = p->tariff;
}

/* Sustained low use: every reading seen for the idle window under the
 * threshold. A reading at or above it, or none (missing, stale, no
 * hosts/outlets named), starts over: one low reading never expires a
 * reservation, nor does a silent meter. Returns the reason to expire r,
 * or NULL (r's idle_since_ms updated). */
static const char *unused(struct rp_aggregator *a, json_t *r, double used, int64_t now, char *text,
                          size_t len) {
  const double threshold = a->cfg.reservations.idle_threshold;
  double kw = json_number_value(json_object_get(r, "kw"));
  int64_t since = rp_res_jint(r, "idle_since_ms");
  bool low = isfinite(used) && used < threshold * kw;
  if (low && since == 0) {
    json_object_set_new(r, "idle_since_ms", json_integer(now));
  } else if (!low && since != 0) {
    json_object_del(r, "idle_since_ms");
  } else if (low && now - since >= a->cfg.reservations.idle_window_ms &&
             now - rp_res_jint(r, "start_ms") > a->cfg.reservations.unused_grace_ms) {
    snprintf(text, len,
             "unused: draw under %.0f%% of the reservation for %lld s (past the grace period)",
             threshold * 100, (long long)((now - since) / 1000));
    return text;
  }
  return NULL;
}

int rp_reservations_expire(struct rp_aggregator *a, int64_t now) {
  struct rp_tariff tariff;
  rp_gate_with_policy(a->gate, copy_tariff, &tariff);
  rp_ledger_res_lock(a->ledger);
  int n = rp_res_serve_queue(a, now);
  json_t *all = rp_ledger_res_list(a->ledger), *energy_only = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(all, i, r) {
    if (!rp_res_is_active(r))
      continue;
    int64_t notice = rp_res_jint(r, "preempt_at_ms");
    if (notice > 0 && notice <= now) {
      char why[256]; /* revoke() replaces "reason" */
      const char *noted = json_string_value(json_object_get(r, "reason"));
      snprintf(why, sizeof(why), "%s", noted ? noted : "preempted");
      rp_res_revoke(a, r, why, now);
      n += !rp_res_is_active(r);
      continue;
    }
    if (rp_res_jint(r, "start_ms") > now)
      continue;
    /* Energy up to now (or the end), then whether it ends. */
    int64_t end = rp_res_jint(r, "end_ms"), at = now < end ? now : end;
    double used = rp_res_measured_kw(a, r, now);
    rp_energy_step(r, used, rp_tariff_price(&tariff, at), tariff.currency, at);
    char text[160];
    const char *reason = end <= now ? "ended" : unused(a, r, used, now, text, sizeof(text));
    if (reason != NULL) {
      json_object_set_new(r, "state", json_string("expired"));
      json_object_set_new(r, "reason", json_string(reason));
      json_object_set_new(r, "expired_ms", json_integer(now));
      rp_energy_close(r, at);
    }
    if (reason != NULL || now - rp_res_jint(r, PUBLISHED_FIELD) >= ENERGY_PUBLISH_MS) {
      json_object_set_new(r, PUBLISHED_FIELD, json_integer(now));
      if (rp_ledger_res_put(a->ledger, r) == 0 && reason != NULL)
        n++;
    } else {
      json_array_append(energy_only, r);
    }
  }
  if (rp_ledger_res_put_local(a->ledger, energy_only) != 0)
    rp_warn("reservations", "the energy of %zu running reservation(s) was not written",
            json_array_size(energy_only));
  rp_ledger_res_unlock(a->ledger);
  json_decref(energy_only);
  json_decref(all);
  return n;
}

void rp_reservations_metrics(struct rp_aggregator *a, FILE *out, int64_t now) {
  json_t *owners = json_object();
  json_t *all = rp_ledger_res_list(a->ledger);
  size_t i;
  json_t *r;
  json_array_foreach(all, i, r) {
    if (!rp_res_is_active(r) || rp_res_jint(r, "start_ms") > now)
      continue;
    const char *owner = json_string_value(json_object_get(r, "owner"));
    json_t *o = json_object_get(owners, owner);
    if (o == NULL) {
      o = json_pack("{s:f, s:f}", "reserved", 0.0, "used", 0.0);
      json_object_set_new(owners, owner, o);
    }
    double used = rp_res_measured_kw(a, r, now);
    json_object_set_new(o, "reserved",
                        json_real(json_number_value(json_object_get(o, "reserved")) +
                                  json_number_value(json_object_get(r, "kw"))));
    if (isfinite(used))
      json_object_set_new(o, "used",
                          json_real(json_number_value(json_object_get(o, "used")) + used));
  }
  fputs("# HELP rackpulse_reservation_kw Active reserved power per owner (kind=reserved) and "
        "what its hosts/outlets draw (kind=used).\n# TYPE rackpulse_reservation_kw gauge\n",
        out);
  const char *owner;
  json_t *o;
  json_object_foreach(owners, owner, o) {
    fprintf(out, "rackpulse_reservation_kw{owner=\"%s\",kind=\"reserved\"} %.3f\n", owner,
            json_number_value(json_object_get(o, "reserved")));
    fprintf(out, "rackpulse_reservation_kw{owner=\"%s\",kind=\"used\"} %.3f\n", owner,
            json_number_value(json_object_get(o, "used")));
  }
  rp_energy_metrics(all, out, now);
  json_decref(all);
  json_decref(owners);
}
