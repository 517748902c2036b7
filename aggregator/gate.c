/* The deploy gate: "may N more kW land on this rack now?". Every check is
 * evaluated and reported (name, observed value, limit, unit, pass/fail, and
 * why when it fails); the rack is allowed only when every check passes.
 * Missing telemetry fails closed: a check whose input is absent, stale or
 * not a valid reading denies.
 *
 * Checks (policy keys in aggregator.yaml):
 *   telemetry_fresh  age of the rack's newest frame <= policy.max_staleness
 *   supply_temp      latest supply temperature <= policy.supply_temp_max,
 *                    and itself no older than policy.max_staleness */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "aggregator.h"

/* A random 128-bit decision id in hex (getrandom; a counter as fallback). */
static void decision_id(char out[33]) {
  static _Atomic uint64_t fallback;
  uint8_t b[16];
  if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
    uint64_t n = atomic_fetch_add(&fallback, 1) + (uint64_t)rp_now_ms();
    memcpy(b, &n, 8);
    memset(b + 8, 0, 8);
  }
  for (int i = 0; i < 16; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static json_t *check(const char *name, double observed, bool have, double limit,
                     const char *unit, bool pass, const char *why) {
  json_t *c = json_pack("{s:s, s:o, s:f, s:s, s:b}", "name", name, "observed",
                        have && isfinite(observed) ? json_real(observed) : json_null(), "limit",
                        limit, "unit", unit, "pass", (int)pass);
  if (why != NULL)
    json_object_set_new(c, "reason", json_string(why));
  return c;
}

json_t *rp_gate_evaluate(struct store *s, const struct rp_policy *p, const char *rack, double kw,
                         int64_t now_ms, bool *found) {
  struct store_read *r;
  *found = false;
  if (store_read_begin(s, &r) != 0)
    return NULL;
  struct store_rack rk;
  bool have_rack = store_read_rack(r, rack, &rk) == 0;
  struct store_latest supply;
  bool have_supply = store_read_latest_by_name(r, rack, p->supply_temp_series, &supply) == 0;
  store_read_end(r);
  if (!have_rack)
    return NULL;
  *found = true;

  double limit_s = (double)p->max_staleness_ms / 1000.0;
  json_t *checks = json_array();
  bool allow = true;

  /* telemetry_fresh */
  double age_s = (double)(now_ms - rk.last_frame_ms) / 1000.0;
  bool fresh = age_s <= limit_s;
  allow &= fresh;
  json_array_append_new(checks, check("telemetry_fresh", age_s, true, limit_s, "s", fresh,
                                      fresh ? NULL : "no frame from the rack within the limit"));

  /* supply_temp */
  const char *why = NULL;
  bool pass = false;
  if (!have_supply) {
    why = "no supply temperature reported (fails closed)";
  } else if (supply.status != 0) {
    why = supply.detail[0] ? supply.detail : "the sensor's last reading is not valid";
  } else if ((double)(now_ms - supply.ts_ms) / 1000.0 > limit_s) {
    why = "supply temperature is stale (fails closed)";
  } else if (!(supply.value <= p->supply_temp_max)) {
    why = "supply temperature above the policy limit";
  } else {
    pass = true;
  }
  allow &= pass;
  json_array_append_new(checks, check("supply_temp", supply.value,
                                      have_supply && supply.status == 0, p->supply_temp_max,
                                      "Cel", pass, why));

  char id[33];
  decision_id(id);
  return json_pack("{s:s, s:s, s:f, s:o, s:s, s:s, s:I}", "rack", rack, "decision",
                   allow ? "allow" : "deny", "kw", kw, "checks", checks, "policy_version",
                   p->version, "decision_id", id, "evaluated_at_ms", (json_int_t)now_ms);
}
