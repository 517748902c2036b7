/* The IPMI collector's readings: a completed scrape's `sdr elist` output
 * parsed and classified (ipmi_classify.c) into rp_readings, server.power
 * from DCMI or the PSU sum, the runner's counters, and the hand-over to
 * rp_target_done() with the storage behind them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipmi_internal.h"
#include "rackpulse/log.h"

static int unit_decimals(const char *unit) {
  if (strcmp(unit, "rpm") == 0)
    return 0;
  if (strcmp(unit, "V") == 0)
    return 3;
  if (strcmp(unit, "A") == 0)
    return 2;
  return 1; /* Cel, W, %, and the rest */
}

/* What a reading without a usable value says, for the frame. */
static void reading_status(const struct ipmi_reading *r, struct rp_reading *out, char *detail,
                           size_t n) {
  switch (r->status) {
  case IPMI_ST_OK:
  case IPMI_ST_NC:
  case IPMI_ST_CR:
  case IPMI_ST_NR:
    out->status = RP_READING_OK;
    out->value = r->value;
    return;
  case IPMI_ST_NA:
    out->status = RP_READING_ABSENT;
    snprintf(detail, n, "%s: no reading (%s)", r->name, r->raw_status[0] ? r->raw_status : "na");
    break;
  case IPMI_ST_DISABLED:
    out->status = RP_READING_ABSENT;
    snprintf(detail, n, "%s: sensor disabled", r->name);
    break;
  case IPMI_ST_UNKNOWN_UNIT:
    out->status = RP_READING_ERROR;
    snprintf(detail, n, "%s: unknown unit '%s'", r->name, r->unit);
    break;
  default:
    out->status = RP_READING_ERROR;
    snprintf(detail, n, "%s: %s", r->name, ipmi_status_name(r->status));
    break;
  }
  out->detail = detail;
}

/* Per-scrape storage of the readings handed to rp_target_done(). */
struct scrape_out {
  struct ipmi_reading *parsed;
  size_t nparsed;
  struct rp_reading *rd;
  struct rp_label *labels;
  char (*lvalue)[IPMI_NAME_MAX];
  char (*detail)[160];
  size_t n, cap;
};

static void scrape_out_free(struct scrape_out *o) {
  free(o->parsed);
  free(o->rd);
  free(o->labels);
  free(o->lvalue);
  free(o->detail);
}

static int scrape_out_alloc(struct scrape_out *o, size_t sensors) {
  memset(o, 0, sizeof(*o));
  o->cap = sensors + 9;
  o->parsed = calloc(sensors + 1, sizeof(*o->parsed));
  o->rd = calloc(o->cap, sizeof(*o->rd));
  o->labels = calloc(o->cap, sizeof(*o->labels));
  o->lvalue = calloc(o->cap, sizeof(*o->lvalue));
  o->detail = calloc(o->cap, sizeof(*o->detail));
  if (!o->parsed || !o->rd || !o->labels || !o->lvalue || !o->detail) {
    scrape_out_free(o);
    return -ENOMEM;
  }
  return 0;
}

/* A new reading slot (o->n < o->cap is guaranteed by the sizes). */
static struct rp_reading *add(struct scrape_out *o, const char *name, const char *unit,
                              const char *label, const char *value) {
  struct rp_reading *r = &o->rd[o->n];
  memset(r, 0, sizeof(*r));
  r->name = name;
  r->unit = unit;
  r->decimals = unit_decimals(unit);
  if (label != NULL) {
    snprintf(o->lvalue[o->n], sizeof(o->lvalue[0]), "%s", value);
    o->labels[o->n] = (struct rp_label){label, o->lvalue[o->n]};
    r->labels = &o->labels[o->n];
    r->nlabels = 1;
  }
  o->n++;
  return r;
}

static bool seen_before(const struct scrape_out *o, const struct rp_reading *r) {
  for (size_t i = 0; i + 1 < o->n; i++) {
    const struct rp_reading *p = &o->rd[i];
    if (strcmp(p->name, r->name) == 0 && p->nlabels == r->nlabels &&
        (r->nlabels == 0 || (strcmp(p->labels[0].key, r->labels[0].key) == 0 &&
                             strcmp(p->labels[0].value, r->labels[0].value) == 0)))
      return true;
  }
  return false;
}

/* True when a sensors[] row without a metric silences this sensor
 * (ipmi_classify() reports that as no match). */
static bool ignored_by_config(const struct ipmi_bmc *b, const struct ipmi_reading *r) {
  for (size_t i = 0; i < b->npatterns; i++) {
    const struct ipmi_pattern *p = &b->patterns[i];
    if (p->metric == NULL && ipmi_glob_match(p->glob, r->name, strlen(r->name), NULL, NULL) &&
        (p->unit == NULL || strcmp(p->unit, r->unit) == 0) &&
        (p->entity == NULL || ipmi_glob_match(p->entity, r->entity, strlen(r->entity), NULL, NULL)))
      return true;
  }
  return false;
}

bool ipmi__may_publish(const struct ipmi_bmc *b, const struct ipmi_reading *r) {
  if (b->cfg.keep_unclassified)
    return true;
  struct ipmi_reading probe = *r;
  struct ipmi_class cls;
  probe.status = IPMI_ST_NA;
  unsigned flags = b->cfg.default_sensors ? 0 : IPMI_CLASSIFY_NO_DEFAULTS;
  return ipmi_classify(&probe, b->patterns, b->npatterns, flags, &cls) == 1;
}

/* Sensor readings, classified. */
static void add_sensors(struct ipmi_bmc *b, struct scrape_out *o) {
  unsigned flags = b->cfg.default_sensors ? 0 : IPMI_CLASSIFY_NO_DEFAULTS;
  for (size_t i = 0; i < o->nparsed; i++) {
    const struct ipmi_reading *p = &o->parsed[i];
    struct ipmi_class cls;
    const char *metric, *label = NULL, *value = NULL, *unit = p->unit;
    if (ipmi_classify(p, b->patterns, b->npatterns, flags, &cls) == 1) {
      metric = cls.metric;
      label = cls.label;
      value = cls.label_value;
      /* A sensor without a reading keeps its series' unit. */
      if (p->status != IPMI_ST_OK && p->status != IPMI_ST_NC && p->status != IPMI_ST_CR &&
          p->status != IPMI_ST_NR)
        unit = cls.pattern->unit ? cls.pattern->unit : "";
    } else if (b->cfg.keep_unclassified && p->status != IPMI_ST_DISCRETE &&
               !ignored_by_config(b, p)) {
      metric = "ipmi.sensor";
      label = "sensor";
      value = p->name;
    } else {
      continue;
    }
    struct rp_reading *r = add(o, metric, unit, label, value);
    reading_status(p, r, o->detail[o->n - 1], sizeof(o->detail[0]));
    if (seen_before(o, r)) {
      rp_debug("ipmi", "%s: sensor '%s' maps to a series already read; skipped", b->cfg.name,
               p->name);
      o->n--;
    }
  }
}

/* server.power from DCMI or from the PSU sum. */
static void add_power(struct ipmi_bmc *b, struct scrape_out *o) {
  if (b->have_dcmi) {
    struct rp_reading *r = add(o, "server.power", "W", "source", "dcmi");
    r->decimals = 0;
    r->value = b->dcmi.instant_w;
    return;
  }
  unsigned flags = b->cfg.default_sensors ? 0 : IPMI_CLASSIFY_NO_DEFAULTS;
  unsigned expected = (unsigned)b->cfg.psus > b->psus_seen ? (unsigned)b->cfg.psus : b->psus_seen;
  struct ipmi_power_sum sum;
  if (ipmi_sum_psu_input(o->parsed, o->nparsed, b->patterns, b->npatterns, flags, expected, &sum) !=
      0)
    return;
  if (sum.used + sum.missing > b->psus_seen)
    b->psus_seen = sum.used + sum.missing;
  if (b->psus_seen == 0)
    return; /* no PSU sensors at all: nothing to say */
  struct rp_reading *r = add(o, "server.power", "W", "source", "psu_sum");
  char *d = o->detail[o->n - 1];
  r->detail = d;
  switch (sum.status) {
  case IPMI_SUM_COMPLETE: r->value = sum.watts; break;
  case IPMI_SUM_PARTIAL:
    r->status = RP_READING_ERROR;
    snprintf(d, sizeof(o->detail[0]), "partial PSU sum: %u of %u PSUs read, at least %.0f W%s%s",
             sum.used, sum.used + sum.missing, sum.watts, b->dcmi_note[0] ? "; " : "",
             b->dcmi_note);
    break;
  default:
    r->status = RP_READING_ABSENT;
    snprintf(d, sizeof(o->detail[0]), "no PSU input power reading%s%s", b->dcmi_note[0] ? "; " : "",
             b->dcmi_note);
    break;
  }
}

static void add_counters(struct ipmi_bmc *b, struct scrape_out *o) {
  struct ipmi_runner_stats s = {0};
  uint64_t sessions = 0;
  if (b->runner != NULL)
    ipmi_runner_get_stats(b->runner, &s);
  if (b->fi != NULL)
    ipmi__fi_stats(b, &s.timeouts, &sessions);
  struct rp_reading *r = add(o, "ipmi.timeouts", "", NULL, NULL);
  r->decimals = 0;
  r->value = (double)s.timeouts;
  r = add(o, "ipmi.children", "", NULL, NULL);
  r->decimals = 0;
  r->value = (double)s.spawned;
  if (b->fi == NULL)
    return;
  r = add(o, "ipmi.sessions", "", NULL, NULL); /* freeipmi: RMCP+ sessions opened */
  r->decimals = 0;
  r->value = (double)sessions;
}

void ipmi__report(struct ipmi_bmc *b, bool ok) {
  struct scrape_out o;
  memset(&o, 0, sizeof(o));
  struct rp_scrape_result res = {.ts_ms = b->ts_ms, .ok = ok, .error = ok ? NULL : b->error};
  size_t lines = 0;
  for (size_t i = 0; ok && i < b->elist_len; i++)
    lines += b->elist[i] == '\n';
  if (ok && b->parsed != NULL)
    lines = b->nparsed;
  if (scrape_out_alloc(&o, lines) == 0) {
    if (ok && b->parsed != NULL) {
      memcpy(o.parsed, b->parsed, b->nparsed * sizeof(*o.parsed));
      o.nparsed = b->nparsed;
    } else if (ok) {
      struct ipmi_parse_stats st;
      ipmi_parse_sensors(b->elist, b->elist_len, o.parsed, lines + 1, &o.nparsed, &st, NULL, 0);
    }
    if (ok) {
      add_sensors(b, &o);
      add_power(b, &o);
    }
    add_counters(b, &o);
    res.readings = o.rd;
    res.nreadings = o.n;
  }
  free(b->elist);
  b->elist = NULL;
  b->elist_len = 0;
  rp_target_done(b->t, &res);
  scrape_out_free(&o);
}
