/* Discovery: the walk from a Redfish service root to the plan of a scrape
 * (the resources to read each interval and what each one is). It follows
 * links, never guesses paths: ServiceRoot -> Chassis -> each chassis'
 * EnvironmentMetrics, Sensors, ThermalSubsystem/ThermalMetrics,
 * PowerSubsystem/PowerSupplies/N/Metrics or the older Thermal and Power;
 * ThermalEquipment -> CDUs -> each CoolingUnit's coolant connectors,
 * pumps, reservoirs and LeakDetection/LeakDetectors; PowerEquipment ->
 * RackPDUs -> each PowerDistribution's Mains, Branches and Outlets;
 * EventService's ServerSentEventUri. A collection is one plan entry read
 * with $expand when ProtocolFeaturesSupported offers it, else one entry
 * per member. Reads of one walk go out in parallel; the walk runs once,
 * and again when the service root changes or a planned resource is gone
 * (redfish_collect.c). */
#include <stdlib.h>
#include <string.h>

#include "rackpulse/hash.h"
#include "rackpulse/log.h"
#include "redfish_internal.h"

static const char *link_of(const json_t *o, const char *key) {
  return json_string_value(json_object_get(json_object_get(o, key), "@odata.id"));
}

static void last_segment(const char *uri, char *out, size_t len) {
  const char *s = strrchr(uri, '/');
  snprintf(out, len, "%s", s ? s + 1 : uri);
}

void rf__plan_clear(struct rf_dev *d) {
  for (size_t i = 0; i < d->nplan; i++)
    json_decref(d->plan[i].last);
  d->nplan = 0;
}

uint64_t rf__root_hash(const json_t *root) {
  char *s = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT);
  uint64_t h = s ? rp_hash_str(s) : 0;
  free(s);
  return h;
}

static struct rf_plan *plan_add(struct rf_dev *d, const char *uri, enum rf_kind k,
                                const struct rf_fetch *from) {
  if (uri == NULL || strlen(uri) >= RF_URI_MAX)
    return NULL;
  for (size_t i = 0; i < d->nplan; i++)
    if (strcmp(d->plan[i].uri, uri) == 0 && d->plan[i].kind == k)
      return &d->plan[i];
  if (d->nplan == RF_PLAN_MAX) {
    rf__fail(d, "more than %d resources to read; the rest are left out", RF_PLAN_MAX);
    return NULL;
  }
  if (d->nplan == d->capplan) {
    size_t cap = d->capplan ? d->capplan * 2 : 16;
    struct rf_plan *p = realloc(d->plan, cap * sizeof(*p));
    if (p == NULL)
      return NULL;
    d->plan = p;
    d->capplan = cap;
  }
  struct rf_plan *p = &d->plan[d->nplan++];
  memset(p, 0, sizeof(*p));
  snprintf(p->uri, sizeof(p->uri), "%s", uri);
  p->kind = k;
  if (from != NULL) {
    p->shelf = from->shelf;
    p->many = from->many;
    snprintf(p->unit, sizeof(p->unit), "%s", from->unit);
  }
  return p;
}

static void on_fetch(struct rf_req *q);

static struct rf_fetch *fetch_add(struct rf_dev *d, const char *uri, enum rf_role role,
                                  enum rf_kind kind, const struct rf_fetch *from) {
  if (uri == NULL || strlen(uri) >= RF_URI_MAX)
    return NULL;
  if (d->nfetch == RF_FETCH_MAX) {
    rf__fail(d, "discovery: more than %d resources to walk", RF_FETCH_MAX);
    return NULL;
  }
  if (d->nfetch == d->capfetch) {
    size_t cap = d->capfetch ? d->capfetch * 2 : 16;
    struct rf_fetch *p = realloc(d->fetch, cap * sizeof(*p));
    if (p == NULL) {
      rf__fail(d, "discovery: out of memory");
      return NULL;
    }
    d->fetch = p;
    d->capfetch = cap;
  }
  struct rf_fetch *f = &d->fetch[d->nfetch];
  memset(f, 0, sizeof(*f));
  snprintf(f->uri, sizeof(f->uri), "%s", uri);
  f->role = role;
  f->kind = kind;
  if (from != NULL) {
    f->shelf = from->shelf;
    f->many = from->many;
    snprintf(f->unit, sizeof(f->unit), "%s", from->unit);
  }
  char path[RF_URI_MAX + 32];
  bool expand = role == RF_R_MEMBERS && d->can_expand;
  snprintf(path, sizeof(path), "%s%s", uri, expand ? "?$expand=.($levels=1)" : "");
  if (rf__request(d, path, NULL, false, NULL, on_fetch, (int)d->nfetch) == NULL) {
    rf__fail(d, "discovery: cannot start a request for %s", uri);
    return NULL;
  }
  d->nfetch++;
  d->pending++;
  return f;
}

/* A collection to read every interval: expanded in one entry, or its
 * members one by one (after reading it once here). */
static void plan_collection(struct rf_dev *d, const char *uri, enum rf_kind k,
                            const struct rf_fetch *from) {
  if (uri == NULL)
    return;
  if (d->can_expand) {
    struct rf_plan *p = plan_add(d, uri, k, from);
    if (p != NULL)
      p->expand = true;
    return;
  }
  fetch_add(d, uri, RF_R_MEMBERS, k, from);
}

/* Each member of a collection document, as a fetch of `role`. */
static void fetch_members(struct rf_dev *d, const json_t *doc, enum rf_role role,
                          const struct rf_fetch *from) {
  const json_t *members = json_object_get(doc, "Members");
  size_t i, n = json_array_size(members);
  const json_t *m;
  json_array_foreach(members, i, m) {
    const char *u = json_string_value(json_object_get(m, "@odata.id"));
    if (u == NULL)
      continue;
    struct rf_fetch f = *from;
    f.many = n > 1;
    last_segment(u, f.unit, sizeof(f.unit));
    fetch_add(d, u, role, RF_K_COUNT, &f);
  }
}

static void on_chassis(struct rf_dev *d, const json_t *o, struct rf_fetch *f) {
  const char *type = json_string_value(json_object_get(o, "ChassisType"));
  f->shelf = type != NULL && (strcmp(type, "Shelf") == 0 || strcmp(type, "PowerStrip") == 0);
  const char *env = link_of(o, "EnvironmentMetrics"), *sensors = link_of(o, "Sensors");
  const char *tsub = link_of(o, "ThermalSubsystem"), *psub = link_of(o, "PowerSubsystem");
  const char *thermal = link_of(o, "Thermal"), *power = link_of(o, "Power");
  if (env != NULL)
    plan_add(d, env, RF_K_ENV, f);
  if (sensors != NULL)
    plan_collection(d, sensors, RF_K_SENSOR, f);
  else if (tsub != NULL)
    fetch_add(d, tsub, RF_R_THERMAL_SUB, RF_K_COUNT, f);
  else if (thermal != NULL)
    plan_add(d, thermal, RF_K_LEGACY_THERMAL, f);
  if (psub != NULL)
    fetch_add(d, psub, RF_R_POWER_SUB, RF_K_COUNT, f);
  /* The older Power resource: for the total when there are no
   * EnvironmentMetrics, for the supplies when nothing newer has them. */
  bool psu_elsewhere = psub != NULL || sensors != NULL;
  if (power != NULL && (env == NULL || !psu_elsewhere)) {
    struct rf_plan *p = plan_add(d, power, RF_K_LEGACY_POWER, f);
    if (p != NULL) {
      p->legacy_total = env == NULL;
      p->legacy_psu = !psu_elsewhere;
    }
  }
  if (sensors != NULL) {
    for (size_t i = 0; i < d->nplan; i++)
      if (d->plan[i].kind == RF_K_SENSOR && strcmp(d->plan[i].uri, sensors) == 0)
        d->plan[i].sensor_psu = psub == NULL;
  }
}

static void on_cdu(struct rf_dev *d, const json_t *o, struct rf_fetch *f) {
  for (size_t i = 0; i < d->noem; i++)
    if (d->oem[i].kind == RF_K_CDU) {
      plan_add(d, json_string_value(json_object_get(o, "@odata.id")), RF_K_CDU, f);
      break;
    }
  plan_collection(d, link_of(o, "SecondaryCoolantConnectors"), RF_K_CONN_SECONDARY, f);
  plan_collection(d, link_of(o, "PrimaryCoolantConnectors"), RF_K_CONN_PRIMARY, f);
  plan_collection(d, link_of(o, "Pumps"), RF_K_PUMP, f);
  plan_collection(d, link_of(o, "Reservoirs"), RF_K_RESERVOIR, f);
  const char *ld = link_of(o, "LeakDetection");
  if (ld != NULL)
    fetch_add(d, ld, RF_R_LEAKDET, RF_K_COUNT, f);
}

static void on_pdu(struct rf_dev *d, const json_t *o, struct rf_fetch *f) {
  for (size_t i = 0; i < d->noem; i++)
    if (d->oem[i].kind == RF_K_PDU) {
      plan_add(d, json_string_value(json_object_get(o, "@odata.id")), RF_K_PDU, f);
      break;
    }
  plan_collection(d, link_of(o, "Mains"), RF_K_MAINS, f);
  plan_collection(d, link_of(o, "Branches"), RF_K_BRANCH, f);
  plan_collection(d, link_of(o, "Outlets"), RF_K_OUTLET, f);
}

static void on_psu_coll(struct rf_dev *d, const json_t *o, struct rf_fetch *f) {
  size_t i;
  const json_t *m;
  json_array_foreach(json_object_get(o, "Members"), i, m) {
    const char *metrics = link_of(m, "Metrics");
    if (metrics != NULL)
      plan_add(d, metrics, RF_K_PSU_METRICS, f);
    else
      fetch_add(d, json_string_value(json_object_get(m, "@odata.id")), RF_R_PSU, RF_K_COUNT, f);
  }
}

static void on_members(struct rf_dev *d, const json_t *o, struct rf_fetch *f) {
  size_t i;
  const json_t *m;
  json_array_foreach(json_object_get(o, "Members"), i, m)
      plan_add(d, json_string_value(json_object_get(m, "@odata.id")), f->kind, f);
}

static void handle(struct rf_dev *d, const json_t *o, struct rf_fetch *f) {
  switch (f->role) {
  case RF_R_CHASSIS_COLL:
  case RF_R_CDU_COLL:
  case RF_R_PDU_COLL:
    fetch_members(d, o,
                  f->role == RF_R_CHASSIS_COLL ? RF_R_CHASSIS
                  : f->role == RF_R_CDU_COLL   ? RF_R_CDU
                                               : RF_R_PDU,
                  f);
    break;
  case RF_R_CHASSIS: on_chassis(d, o, f); break;
  case RF_R_THERMAL_SUB:
    if (link_of(o, "ThermalMetrics") != NULL)
      plan_add(d, link_of(o, "ThermalMetrics"), RF_K_THERMAL_METRICS, f);
    break;
  case RF_R_POWER_SUB:
    if (link_of(o, "PowerSupplies") != NULL)
      fetch_add(d, link_of(o, "PowerSupplies"), RF_R_PSU_COLL, RF_K_COUNT, f);
    break;
  case RF_R_PSU_COLL: on_psu_coll(d, o, f); break;
  case RF_R_PSU:
    if (link_of(o, "Metrics") != NULL)
      plan_add(d, link_of(o, "Metrics"), RF_K_PSU_METRICS, f);
    break;
  case RF_R_TE:
    if (link_of(o, "CDUs") != NULL)
      fetch_add(d, link_of(o, "CDUs"), RF_R_CDU_COLL, RF_K_COUNT, f);
    break;
  case RF_R_CDU: on_cdu(d, o, f); break;
  case RF_R_LEAKDET: plan_collection(d, link_of(o, "LeakDetectors"), RF_K_LEAK, f); break;
  case RF_R_PE:
    if (link_of(o, "RackPDUs") != NULL)
      fetch_add(d, link_of(o, "RackPDUs"), RF_R_PDU_COLL, RF_K_COUNT, f);
    break;
  case RF_R_PDU: on_pdu(d, o, f); break;
  case RF_R_MEMBERS: on_members(d, o, f); break;
  case RF_R_EVENTS: {
    const char *sse = json_string_value(json_object_get(o, "ServerSentEventUri"));
    snprintf(d->sse_uri, sizeof(d->sse_uri), "%s", sse && strlen(sse) < RF_URI_MAX ? sse : "");
    break;
  }
  }
}

static void on_fetch(struct rf_req *q) {
  struct rf_dev *d = q->d;
  d->pending--;
  struct rf_fetch f = d->fetch[q->slot]; /* copied: handle() may grow the array */
  if (q->result != CURLE_OK) {
    rf__fail(d, "discovery: %s: %s", f.uri, q->curl_err[0] ? q->curl_err : "no answer");
  } else if (q->status == 401) {
    d->got_401 = true;
  } else if (q->status != 200) {
    rf__fail(d, "discovery: %s: HTTP %ld", f.uri, q->status);
  } else {
    char why[160];
    json_t *o = rf__parse(q, why, sizeof(why));
    if (o == NULL) {
      rf__fail(d, "discovery: %s: %s", f.uri, why);
    } else {
      if (!d->failed)
        handle(d, o, &f);
      json_decref(o);
    }
  }
  if (d->pending == 0)
    rf__discovered(d);
}

void rf__discover(struct rf_dev *d, const json_t *root) {
  rf__plan_clear(d);
  d->nfetch = 0;
  d->ph = RF_DISCOVER;
  d->sse_uri[0] = '\0';
  const json_t *ex =
      json_object_get(json_object_get(root, "ProtocolFeaturesSupported"), "ExpandQuery");
  d->can_expand = d->cfg.expand && (json_is_true(json_object_get(ex, "NoLinks")) ||
                                    json_is_true(json_object_get(ex, "ExpandAll")));
  d->can_select = json_is_true(
      json_object_get(json_object_get(root, "ProtocolFeaturesSupported"), "SelectQuery"));
  d->root_hash = rf__root_hash(root);
  struct rf_fetch none = {0};
  fetch_add(d, link_of(root, "Chassis"), RF_R_CHASSIS_COLL, RF_K_COUNT, &none);
  fetch_add(d, link_of(root, "ThermalEquipment"), RF_R_TE, RF_K_COUNT, &none);
  fetch_add(d, link_of(root, "PowerEquipment"), RF_R_PE, RF_K_COUNT, &none);
  if (d->cfg.sse)
    fetch_add(d, link_of(root, "EventService"), RF_R_EVENTS, RF_K_COUNT, &none);
  if (d->pending == 0)
    rf__discovered(d);
}
