/* Redfish resources to readings (contracts and the table of metrics in
 * redfish_map.h): pure, no I/O; the readings' strings live in the
 * rf_out's items. */
#include "redfish_map.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[RF_K_COUNT] = {
    [RF_K_ENV] = "environment",
    [RF_K_SENSOR] = "sensor",
    [RF_K_THERMAL_METRICS] = "thermal_metrics",
    [RF_K_PSU_METRICS] = "psu_metrics",
    [RF_K_LEGACY_THERMAL] = "thermal",
    [RF_K_LEGACY_POWER] = "power",
    [RF_K_CDU] = "cdu",
    [RF_K_CONN_SECONDARY] = "secondary_connector",
    [RF_K_CONN_PRIMARY] = "primary_connector",
    [RF_K_PUMP] = "pump",
    [RF_K_RESERVOIR] = "reservoir",
    [RF_K_LEAK] = "leak_detector",
    [RF_K_MAINS] = "mains",
    [RF_K_BRANCH] = "branch",
    [RF_K_OUTLET] = "outlet",
    [RF_K_PDU] = "pdu",
};

const char *rf_kind_name(enum rf_kind k) { return k < RF_K_COUNT ? kind_names[k] : "?"; }

int rf_kind_parse(const char *name) {
  for (int k = 0; k < RF_K_COUNT; k++)
    if (strcmp(kind_names[k], name) == 0)
      return k;
  return -1;
}

/* ------------------------------------------------------------ output */

struct rf_item *rf_out_reading(struct rf_out *out, const char *name, const char *unit,
                               int decimals) {
  if (out->n == out->cap) {
    size_t cap = out->cap ? out->cap * 2 : 32;
    struct rf_item *p = realloc(out->items, cap * sizeof(*p));
    if (p == NULL) {
      out->lost++;
      return NULL;
    }
    out->items = p;
    out->cap = cap;
  }
  struct rf_item *it = &out->items[out->n++];
  memset(it, 0, sizeof(*it));
  it->r.name = name;
  it->r.unit = unit;
  it->r.decimals = decimals;
  return it;
}

void rf_out_label(struct rf_item *it, const char *key, const char *value) {
  if (it == NULL || it->r.nlabels >= RF_LABELS_MAX)
    return;
  size_t i = it->r.nlabels++;
  snprintf(it->val[i], sizeof(it->val[i]), "%s", value);
  it->lab[i].key = key;
}

void rf_out_finish(struct rf_out *out) {
  for (size_t i = 0; i < out->n; i++) {
    struct rf_item *it = &out->items[i];
    for (size_t j = 0; j < it->r.nlabels; j++)
      it->lab[j].value = it->val[j];
    it->r.labels = it->r.nlabels ? it->lab : NULL;
    it->r.detail = it->detail[0] ? it->detail : NULL;
  }
}

void rf_out_reset(struct rf_out *out) {
  out->n = 0;
  out->lost = 0;
}

void rf_out_free(struct rf_out *out) {
  free(out->items);
  memset(out, 0, sizeof(*out));
}

/* ------------------------------------------------------------ helpers */

const json_t *rf_pointer(const json_t *doc, const char *pointer) {
  if (pointer == NULL || pointer[0] != '/')
    return pointer != NULL && pointer[0] == '\0' ? doc : NULL;
  const json_t *cur = doc;
  const char *p = pointer + 1;
  char tok[128];
  for (;;) {
    size_t n = 0;
    while (*p != '\0' && *p != '/') {
      char c = *p++;
      if (c == '~' && (*p == '0' || *p == '1'))
        c = *p++ == '0' ? '~' : '/';
      if (n + 1 >= sizeof(tok))
        return NULL;
      tok[n++] = c;
    }
    tok[n] = '\0';
    if (json_is_object(cur)) {
      cur = json_object_get(cur, tok);
    } else if (json_is_array(cur)) {
      char *end;
      unsigned long i = strtoul(tok, &end, 10);
      if (n == 0 || *end != '\0' || !isdigit((unsigned char)tok[0]))
        return NULL;
      cur = json_array_get(cur, i);
    } else {
      return NULL;
    }
    if (cur == NULL)
      return NULL;
    if (*p == '\0')
      return cur;
    p++;
  }
}

static const char *str_of(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s != NULL ? s : "";
}

/* True when the resource says it is not there (Status.State). */
static bool state_absent(const json_t *o, const char **state) {
  *state = json_string_value(json_object_get(json_object_get(o, "Status"), "State"));
  if (*state == NULL)
    return false;
  return strcmp(*state, "Absent") == 0 || strcmp(*state, "Disabled") == 0 ||
         strcmp(*state, "StandbyOffline") == 0 || strcmp(*state, "UnavailableOffline") == 0;
}

/* A label from an identity: with `digits`, only its first run of digits
 * when there is one ("GPU3Temp" -> "3"). */
static void label_id(const char *id, bool digits, char *out, size_t len) {
  const char *d = id;
  while (digits && *d != '\0' && !isdigit((unsigned char)*d))
    d++;
  if (!digits || *d == '\0') {
    snprintf(out, len, "%s", id);
    return;
  }
  size_t n = 0;
  while (isdigit((unsigned char)d[n]) && n + 1 < len) {
    out[n] = d[n];
    n++;
  }
  out[n] = '\0';
}

/* The member's identity for a label: Id, MemberId, or the URI's last
 * segment (label_id() for `digits`). */
static void member_id(const json_t *o, bool digits, char *out, size_t len) {
  const char *id = str_of(o, "Id");
  if (id[0] == '\0')
    id = str_of(o, "MemberId");
  if (id[0] == '\0') {
    const char *u = str_of(o, "@odata.id");
    const char *slash = strrchr(u, '/');
    id = slash ? slash + 1 : u;
  }
  label_id(id, digits, out, len);
}

static const char *uri_of(const json_t *o, const struct rf_map_ctx *ctx) {
  const char *u = str_of(o, "@odata.id");
  return u[0] != '\0' ? u : (ctx->uri != NULL ? ctx->uri : "?");
}

/* A value where the schema has a SensorExcerpt ({"Reading": n}) or, in
 * older resources, a bare number. */
static const json_t *excerpt(const json_t *o, const char *prop) {
  const json_t *v = json_object_get(o, prop);
  if (json_is_object(v))
    return json_object_get(v, "Reading");
  return v;
}

/* Emits one reading of resource o from value v (may be NULL). */
static struct rf_item *emit(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o,
                            const char *name, const char *unit, int decimals, const json_t *v,
                            const char *prop, double scale) {
  struct rf_item *it = rf_out_reading(out, name, unit, decimals);
  if (it == NULL)
    return NULL;
  if (ctx->many && ctx->unit != NULL && ctx->unit_key != NULL)
    rf_out_label(it, ctx->unit_key, ctx->unit);
  const char *state;
  const char *uri = uri_of(o, ctx);
  if (ctx->force != RP_READING_OK) {
    it->r.status = ctx->force;
    snprintf(it->detail, sizeof(it->detail), "%s", ctx->force_detail ? ctx->force_detail : "");
  } else if (state_absent(o, &state)) {
    it->r.status = RP_READING_ABSENT;
    snprintf(it->detail, sizeof(it->detail), "%s: Status.State %s", uri, state);
  } else if (v == NULL || json_is_null(v)) {
    it->r.status = RP_READING_ABSENT;
    snprintf(it->detail, sizeof(it->detail), "%s: %s: no reading", uri, prop);
  } else if (!json_is_number(v)) {
    it->r.status = RP_READING_ERROR;
    snprintf(it->detail, sizeof(it->detail), "%s: %s: not a number", uri, prop);
  } else {
    it->r.value = json_number_value(v) * scale;
    it->r.status = RP_READING_OK;
  }
  return it;
}

static void emit_labelled(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o,
                          const char *name, const char *unit, int decimals, const json_t *v,
                          const char *prop, const char *key, const char *id) {
  struct rf_item *it = emit(out, ctx, o, name, unit, decimals, v, prop, 1.0);
  if (key != NULL)
    rf_out_label(it, key, id);
}

/* ------------------------------------------------------------ per kind */

/* A temperature or power by its physical context (Sensor, Thermal, and
 * ThermalMetrics' TemperatureReadingsCelsius). */
static void by_context(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o,
                       const char *type, const char *pctx, const char *units, const json_t *v,
                       const char *prop, const char *id) {
  if (strcmp(type, "Temperature") == 0) {
    if (strcmp(pctx, "Intake") == 0)
      emit_labelled(out, ctx, o, "server.inlet_temp", "Cel", 1, v, prop, NULL, NULL);
    else if (strcmp(pctx, "Exhaust") == 0)
      emit_labelled(out, ctx, o, "server.exhaust_temp", "Cel", 1, v, prop, NULL, NULL);
    else if (strcmp(pctx, "GPU") == 0)
      emit_labelled(out, ctx, o, "gpu.temp", "Cel", 1, v, prop, "gpu", id);
    else if (strcmp(pctx, "CPU") == 0)
      emit_labelled(out, ctx, o, "cpu.temp", "Cel", 1, v, prop, "cpu", id);
    else if (strcmp(pctx, "PowerSupply") == 0)
      emit_labelled(out, ctx, o, "psu.temp", "Cel", 1, v, prop, "psu", id);
  } else if (strcmp(type, "Power") == 0) {
    if (strcmp(pctx, "GPU") == 0)
      emit_labelled(out, ctx, o, "gpu.power", "W", 0, v, prop, "gpu", id);
    else if (strcmp(pctx, "PowerSupply") == 0 && ctx->sensor_psu)
      emit_labelled(out, ctx, o, "psu.input_power", "W", 0, v, prop, "psu", id);
  } else if (strcmp(type, "Rotational") == 0 && strcmp(pctx, "Fan") == 0) {
    bool pct = strcmp(units, "%") == 0 || strcmp(units, "Percent") == 0;
    emit_labelled(out, ctx, o, pct ? "fan.duty" : "fan.speed", pct ? "%" : "rpm", 0, v, prop, "fan",
                  id);
  }
}

static void map_sensor(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o) {
  char id[48];
  member_id(o, true, id, sizeof(id));
  by_context(out, ctx, o, str_of(o, "ReadingType"), str_of(o, "PhysicalContext"),
             str_of(o, "ReadingUnits"), json_object_get(o, "Reading"), "Reading", id);
}

static void map_thermal_metrics(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o) {
  const json_t *sum = json_object_get(o, "TemperatureSummaryCelsius");
  if (json_is_object(sum)) {
    emit(out, ctx, o, "server.inlet_temp", "Cel", 1, excerpt(sum, "Intake"),
         "TemperatureSummaryCelsius/Intake", 1.0);
    emit(out, ctx, o, "server.exhaust_temp", "Cel", 1, excerpt(sum, "Exhaust"),
         "TemperatureSummaryCelsius/Exhaust", 1.0);
  }
  size_t i;
  const json_t *t;
  json_array_foreach(json_object_get(o, "TemperatureReadingsCelsius"), i, t) {
    const char *pctx = str_of(t, "PhysicalContext");
    if (strcmp(pctx, "Intake") == 0 || strcmp(pctx, "Exhaust") == 0)
      continue; /* the summary has them */
    char id[48];
    const char *src = str_of(t, "DataSourceUri");
    const char *slash = strrchr(src, '/');
    label_id(slash != NULL ? slash + 1 : str_of(t, "DeviceName"), true, id, sizeof(id));
    by_context(out, ctx, o, "Temperature", pctx, "Cel", json_object_get(t, "Reading"),
               "TemperatureReadingsCelsius", id);
  }
}

static void map_legacy_thermal(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o) {
  size_t i;
  const json_t *t;
  json_array_foreach(json_object_get(o, "Temperatures"), i, t) {
    char id[48];
    label_id(str_of(t, "Name"), true, id, sizeof(id));
    by_context(out, ctx, t, "Temperature", str_of(t, "PhysicalContext"), "Cel",
               json_object_get(t, "ReadingCelsius"), "ReadingCelsius", id);
  }
  json_array_foreach(json_object_get(o, "Fans"), i, t) {
    char id[48];
    member_id(t, false, id, sizeof(id));
    by_context(out, ctx, t, "Rotational", "Fan", str_of(t, "ReadingUnits"),
               json_object_get(t, "Reading"), "Reading", id);
  }
}

static void map_legacy_power(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o) {
  size_t i;
  const json_t *t;
  if (ctx->legacy_total) {
    const json_t *pc = json_array_get(json_object_get(o, "PowerControl"), 0);
    emit(out, ctx, pc ? pc : o, ctx->shelf ? "shelf.power" : "server.power", "W", 0,
         json_object_get(pc, "PowerConsumedWatts"), "PowerControl/0/PowerConsumedWatts", 1.0);
  }
  json_array_foreach(json_object_get(o, "PowerSupplies"), i, t) {
    if (!ctx->legacy_psu)
      break;
    char id[48];
    member_id(t, false, id, sizeof(id));
    emit_labelled(out, ctx, t, "psu.input_power", "W", 0, json_object_get(t, "PowerInputWatts"),
                  "PowerInputWatts", "psu", id);
  }
}

static void map_connector(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o,
                          bool secondary) {
  emit(out, ctx, o, secondary ? "cdu.supply_temp" : "cdu.facility_supply_temp", "Cel", 1,
       excerpt(o, "SupplyTemperatureCelsius"), "SupplyTemperatureCelsius", 1.0);
  emit(out, ctx, o, secondary ? "cdu.return_temp" : "cdu.facility_return_temp", "Cel", 1,
       excerpt(o, "ReturnTemperatureCelsius"), "ReturnTemperatureCelsius", 1.0);
  emit(out, ctx, o, secondary ? "cdu.flow" : "cdu.facility_flow", "L/min", 1,
       excerpt(o, "FlowLitersPerMinute"), "FlowLitersPerMinute", 1.0);
  if (!secondary)
    return;
  static const struct {
    const char *prop, *name, *unit;
    int dec;
  } opt[] = {
      {"SupplyPressurekPa", "cdu.supply_pressure", "kPa", 1},
      {"ReturnPressurekPa", "cdu.return_pressure", "kPa", 1},
      {"DeltaPressurekPa", "cdu.dp", "kPa", 1},
      {"HeatRemovedkW", "cdu.heat_removed", "kW", 2},
  };
  /* Optional properties: a service that does not have them is not
   * missing a reading (a null Reading still is). */
  for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
    if (json_object_get(o, opt[i].prop) != NULL)
      emit(out, ctx, o, opt[i].name, opt[i].unit, opt[i].dec, excerpt(o, opt[i].prop), opt[i].prop,
           1.0);
}

static void map_leak(struct rf_out *out, const struct rf_map_ctx *ctx, const json_t *o) {
  char id[48];
  member_id(o, false, id, sizeof(id));
  struct rf_item *it = rf_out_reading(out, "cdu.alarms", "", 0);
  if (it == NULL)
    return;
  if (ctx->many && ctx->unit != NULL)
    rf_out_label(it, ctx->unit_key, ctx->unit);
  rf_out_label(it, "alarm", "leak");
  rf_out_label(it, "detector", id);
  const char *state, *ds = json_string_value(json_object_get(o, "DetectorState"));
  if (ctx->force != RP_READING_OK) {
    it->r.status = ctx->force;
    snprintf(it->detail, sizeof(it->detail), "%s", ctx->force_detail ? ctx->force_detail : "");
  } else if (state_absent(o, &state)) {
    it->r.status = RP_READING_ABSENT;
    snprintf(it->detail, sizeof(it->detail), "%s: Status.State %s", uri_of(o, ctx), state);
  } else if (ds == NULL) {
    it->r.status = RP_READING_ABSENT;
    snprintf(it->detail, sizeof(it->detail), "%s: DetectorState: none", uri_of(o, ctx));
  } else if (strcmp(ds, "OK") == 0) {
    it->r.value = 0;
  } else if (strcmp(ds, "Warning") == 0 || strcmp(ds, "Critical") == 0) {
    it->r.value = 1;
  } else {
    it->r.status = RP_READING_ERROR;
    snprintf(it->detail, sizeof(it->detail), "%s: DetectorState '%.40s' unknown", uri_of(o, ctx),
             ds);
  }
}

static void map_oem(struct rf_out *out, const struct rf_map_ctx *ctx, enum rf_kind k,
                    const json_t *o) {
  for (size_t i = 0; i < ctx->noem; i++) {
    const struct rf_oem *e = &ctx->oem[i];
    if (e->kind != k)
      continue;
    emit(out, ctx, o, e->metric, e->unit, e->decimals, rf_pointer(o, e->pointer), e->pointer,
         e->scale);
  }
}

static void map_one(enum rf_kind k, const json_t *o, const struct rf_map_ctx *ctx,
                    struct rf_out *out) {
  char id[48];
  switch (k) {
  case RF_K_ENV:
    emit(out, ctx, o, ctx->shelf ? "shelf.power" : "server.power", "W", 0, excerpt(o, "PowerWatts"),
         "PowerWatts", 1.0);
    break;
  case RF_K_SENSOR: map_sensor(out, ctx, o); break;
  case RF_K_THERMAL_METRICS: map_thermal_metrics(out, ctx, o); break;
  case RF_K_PSU_METRICS: {
    /* .../PowerSupplies/{id}/Metrics: the supply's Id is the URI's
     * second-to-last segment. */
    const char *u = uri_of(o, ctx);
    const char *end = strrchr(u, '/');
    const char *start = end;
    while (start != NULL && start > u && start[-1] != '/')
      start--;
    snprintf(id, sizeof(id), "%.*s", end && start ? (int)(end - start) : 0, start ? start : "");
    emit_labelled(out, ctx, o, "psu.input_power", "W", 0, excerpt(o, "InputPowerWatts"),
                  "InputPowerWatts", "psu", id);
    break;
  }
  case RF_K_LEGACY_THERMAL: map_legacy_thermal(out, ctx, o); break;
  case RF_K_LEGACY_POWER: map_legacy_power(out, ctx, o); break;
  case RF_K_CONN_SECONDARY:
  case RF_K_CONN_PRIMARY: map_connector(out, ctx, o, k == RF_K_CONN_SECONDARY); break;
  case RF_K_PUMP:
    member_id(o, false, id, sizeof(id));
    emit_labelled(out, ctx, o, "cdu.pump_speed", "%", 1, excerpt(o, "PumpSpeedPercent"),
                  "PumpSpeedPercent", "pump", id);
    break;
  case RF_K_RESERVOIR:
    emit(out, ctx, o, "cdu.level", "%", 1, excerpt(o, "FluidLevelPercent"), "FluidLevelPercent",
         1.0);
    break;
  case RF_K_LEAK: map_leak(out, ctx, o); break;
  case RF_K_MAINS:
    member_id(o, false, id, sizeof(id));
    emit_labelled(out, ctx, o, "pdu.power", "W", 0, excerpt(o, "PowerWatts"), "PowerWatts", "inlet",
                  id);
    emit_labelled(out, ctx, o, "pdu.phase.current", "A", 2, excerpt(o, "CurrentAmps"),
                  "CurrentAmps", "inlet", id);
    emit_labelled(out, ctx, o, "pdu.phase.voltage", "V", 1, excerpt(o, "Voltage"), "Voltage",
                  "inlet", id);
    if (json_object_get(o, "EnergykWh") != NULL)
      emit_labelled(out, ctx, o, "pdu.energy", "kWh", 1, excerpt(o, "EnergykWh"), "EnergykWh",
                    "inlet", id);
    break;
  case RF_K_BRANCH:
    member_id(o, false, id, sizeof(id));
    emit_labelled(out, ctx, o, "pdu.breaker.current", "A", 2, excerpt(o, "CurrentAmps"),
                  "CurrentAmps", "breaker", id);
    if (json_object_get(o, "RatedCurrentAmps") != NULL)
      emit_labelled(out, ctx, o, "pdu.breaker.rating", "A", 1,
                    json_object_get(o, "RatedCurrentAmps"), "RatedCurrentAmps", "breaker", id);
    break;
  case RF_K_OUTLET:
    member_id(o, false, id, sizeof(id));
    emit_labelled(out, ctx, o, "pdu.outlet.power", "W", 0, excerpt(o, "PowerWatts"), "PowerWatts",
                  "outlet", id);
    emit_labelled(out, ctx, o, "pdu.outlet.current", "A", 2, excerpt(o, "CurrentAmps"),
                  "CurrentAmps", "outlet", id);
    break;
  case RF_K_CDU:
  case RF_K_PDU:
  case RF_K_COUNT: break;
  }
  map_oem(out, ctx, k, o);
}

size_t rf_map(enum rf_kind k, const json_t *doc, const struct rf_map_ctx *ctx, struct rf_out *out) {
  size_t before = out->n;
  if (!json_is_object(doc) || k >= RF_K_COUNT)
    return 0;
  const json_t *members = json_object_get(doc, "Members");
  if (json_is_array(members)) {
    size_t i;
    const json_t *m;
    json_array_foreach(members, i, m) {
      /* A member that is only a link was not expanded: nothing to map. */
      if (json_is_object(m) && json_object_size(m) > 1)
        map_one(k, m, ctx, out);
    }
  } else {
    map_one(k, doc, ctx, out);
  }
  return out->n - before;
}
