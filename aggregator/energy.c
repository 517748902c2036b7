/* Energy and cost of reservations (see energy.h). The state lives in the
 * reservation's record ("energy"), written back by the caller with the
 * record, so it survives restarts like the reservation does. */
#include "energy.h"

#include <math.h>
#include <string.h>

#define NBINS 41 /* 5 % bins of utilisation, the last one 200 % and over */

static double num(const json_t *o, const char *key) {
  return json_number_value(json_object_get(o, key));
}

static int64_t jint(const json_t *o, const char *key) {
  return (int64_t)json_integer_value(json_object_get(o, key));
}

static json_t *energy_of(json_t *r) {
  json_t *e = json_object_get(r, "energy");
  if (json_is_object(e))
    return e;
  e = json_pack("{s:I, s:f, s:f, s:f, s:I, s:I, s:f, s:o}", "last_ms", (json_int_t)0,
                "measured_kwh", 0.0, "estimated_kwh", 0.0, "cost", 0.0, "integrated_ms",
                (json_int_t)0, "measured_ms", (json_int_t)0, "peak_utilization", 0.0, "hist",
                json_array());
  json_object_set_new(r, "energy", e);
  return e;
}

static void add(json_t *o, const char *key, double v) {
  json_object_set_new(o, key, json_real(num(o, key) + v));
}

void rp_energy_step(json_t *r, double measured_kw, double price, const char *currency,
                    int64_t now) {
  json_t *e = energy_of(r);
  if (e == NULL)
    return;
  int64_t last = jint(e, "last_ms"), start = jint(r, "start_ms");
  if (last < start) /* the first step integrates from the start */
    last = start;
  int64_t dt = now - last;
  if (dt <= 0)
    return;
  json_object_set_new(e, "last_ms", json_integer(now));
  if (dt > RP_ENERGY_MAX_STEP_MS)
    return; /* a gap (the aggregator was down): nothing known to integrate */
  double kw = num(r, "kw");
  bool measured = isfinite(measured_kw);
  double kwh = (measured ? measured_kw : kw) * (double)dt / 3.6e6;
  add(e, measured ? "measured_kwh" : "estimated_kwh", kwh);
  json_object_set_new(e, "integrated_ms", json_integer(jint(e, "integrated_ms") + dt));
  if (isfinite(price)) {
    add(e, "cost", kwh * price);
    if (currency != NULL && currency[0] != '\0')
      json_object_set_new(e, "currency", json_string(currency));
  }
  if (!measured || !(kw > 0))
    return;
  double util = measured_kw / kw;
  if (util > num(e, "peak_utilization"))
    json_object_set_new(e, "peak_utilization", json_real(util));
  json_object_set_new(e, "measured_ms", json_integer(jint(e, "measured_ms") + dt));
  json_t *hist = json_object_get(e, "hist");
  while (json_array_size(hist) < NBINS)
    json_array_append_new(hist, json_integer(0));
  int bin = util < 0 ? 0 : (int)(util / 0.05);
  if (bin >= NBINS)
    bin = NBINS - 1;
  json_array_set_new(hist, (size_t)bin,
                     json_integer(json_integer_value(json_array_get(hist, (size_t)bin)) + dt));
}

/* The time-weighted 95th percentile of utilisation: the upper edge of the
 * bin where 95 % of the measured time is reached (capped at the peak). */
static double p95(const json_t *e) {
  const json_t *hist = json_object_get(e, "hist");
  int64_t total = jint(e, "measured_ms"), seen = 0;
  if (total <= 0)
    return NAN;
  for (size_t i = 0; i < json_array_size(hist); i++) {
    seen += json_integer_value(json_array_get(hist, i));
    if ((double)seen >= 0.95 * (double)total) {
      double edge = (double)(i + 1) * 0.05, peak = num(e, "peak_utilization");
      return edge < peak ? edge : peak;
    }
  }
  return num(e, "peak_utilization");
}

static json_t *or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

json_t *rp_energy_summary(const json_t *r, int64_t now) {
  const json_t *e = json_object_get(r, "energy");
  double measured = num(e, "measured_kwh"), estimated = num(e, "estimated_kwh");
  int64_t start = jint(r, "start_ms"), end = jint(r, "end_ms");
  int64_t until = now < end ? now : end;
  double hours = until > start ? (double)(until - start) / 3.6e6 : 0;
  double cost = json_object_get(e, "currency") ? num(e, "cost") : NAN;
  bool ever = jint(e, "measured_ms") > 0;
  const char *currency = json_string_value(json_object_get(e, "currency"));
  return json_pack("{s:f, s:f, s:f, s:o, s:s?, s:f, s:o, s:o, s:o}", "kwh", measured + estimated,
                   "measured_kwh", measured, "estimated_kwh", estimated, "cost", or_null(cost),
                   "currency", currency, "hours", hours, "cost_per_hour",
                   or_null(hours > 0 ? cost / hours : NAN), "peak_utilization",
                   or_null(ever ? num(e, "peak_utilization") : NAN), "p95_utilization",
                   or_null(ever ? p95(e) : NAN));
}

void rp_energy_close(json_t *r, int64_t now) {
  json_t *s = rp_energy_summary(r, now);
  if (s != NULL)
    json_object_set_new(r, "summary", s);
}

void rp_energy_metrics(const json_t *all, FILE *out, int64_t now) {
  json_t *owners = json_object();
  size_t i;
  json_t *r;
  fputs("# HELP rackpulse_reservation_cost Cost so far of each running reservation (tariff of "
        "the policy).\n# TYPE rackpulse_reservation_cost gauge\n",
        out);
  json_array_foreach(all, i, r) {
    const json_t *e = json_object_get(r, "energy");
    const char *owner = json_string_value(json_object_get(r, "owner"));
    if (!json_is_object(e) || owner == NULL)
      continue;
    json_t *o = json_object_get(owners, owner);
    if (o == NULL) {
      o = json_pack("{s:f, s:f, s:f, s:f}", "measured", 0.0, "estimated", 0.0, "cost", 0.0, "hours",
                    0.0);
      json_object_set_new(owners, owner, o);
    }
    add(o, "measured", num(e, "measured_kwh"));
    add(o, "estimated", num(e, "estimated_kwh"));
    add(o, "cost", num(e, "cost"));
    add(o, "hours", (double)jint(e, "integrated_ms") / 3.6e6);
    const char *state = json_string_value(json_object_get(r, "state"));
    if (state != NULL && strcmp(state, "active") == 0 && jint(r, "start_ms") <= now)
      fprintf(out, "rackpulse_reservation_cost{owner=\"%s\",reservation=\"%s\"} %.4f\n", owner,
              json_string_value(json_object_get(r, "id")), num(e, "cost"));
  }
  fputs("# HELP rackpulse_energy_kwh_total Energy of reservations per owner, measured or "
        "estimated (at the reserved kW while not measured).\n"
        "# TYPE rackpulse_energy_kwh_total counter\n",
        out);
  const char *owner;
  json_t *o;
  json_object_foreach(owners, owner, o) {
    fprintf(out, "rackpulse_energy_kwh_total{owner=\"%s\",source=\"measured\"} %.4f\n", owner,
            num(o, "measured"));
    fprintf(out, "rackpulse_energy_kwh_total{owner=\"%s\",source=\"estimated\"} %.4f\n", owner,
            num(o, "estimated"));
  }
  fputs("# HELP rackpulse_energy_cost_total Cost of reservations' energy per owner (policy "
        "tariff).\n# TYPE rackpulse_energy_cost_total counter\n",
        out);
  json_object_foreach(owners, owner, o)
      fprintf(out, "rackpulse_energy_cost_total{owner=\"%s\"} %.4f\n", owner, num(o, "cost"));
  fputs("# HELP rackpulse_reservation_hours_total Hours of running reservations integrated, "
        "per owner (cost per training hour = cost / hours).\n"
        "# TYPE rackpulse_reservation_hours_total counter\n",
        out);
  json_object_foreach(owners, owner, o) fprintf(
      out, "rackpulse_reservation_hours_total{owner=\"%s\"} %.6f\n", owner, num(o, "hours"));
  json_decref(owners);
}
