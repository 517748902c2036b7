/* Redfish resources to readings: the pure part of the Redfish collector
 * (no I/O, unit-tested and fuzzed). A resource (a JSON document as jansson
 * parsed it) of a known kind is mapped to the metric names and units the
 * IPMI, SNMP and Modbus collectors use, so gates do not care which protocol
 * a value came from:
 *
 *   kind              DMTF schema             metrics
 *   RF_K_ENV          EnvironmentMetrics      server.power W (shelf.power W
 *                                             on a power shelf)
 *   RF_K_SENSOR       Sensor (or a Sensor     gpu.temp{gpu}, cpu.temp{cpu},
 *                     collection, expanded)   server.inlet_temp,
 *                                             server.exhaust_temp, psu.temp{psu},
 *                                             gpu.power{gpu}, psu.input_power{psu}
 *                                             (unless PowerSubsystem has it),
 *                                             fan.speed{fan}
 *   RF_K_THERMAL_METRICS ThermalMetrics       server.inlet_temp, server.exhaust_temp,
 *                                             gpu.temp{gpu}
 *   RF_K_PSU_METRICS  PowerSupplyMetrics      psu.input_power{psu}
 *   RF_K_LEGACY_THERMAL Thermal (deprecated)  temperatures as Sensor, fan.speed
 *   RF_K_LEGACY_POWER Power (deprecated)      psu.input_power{psu}; server.power
 *                                             when the chassis has no
 *                                             EnvironmentMetrics
 *   RF_K_CDU          CoolingUnit             the profile's OEM readings only
 *   RF_K_CONN_SECONDARY CoolantConnector      cdu.supply_temp, cdu.return_temp Cel,
 *                     (rack loop)             cdu.flow L/min, cdu.supply_pressure,
 *                                             cdu.return_pressure, cdu.dp kPa,
 *                                             cdu.heat_removed kW
 *   RF_K_CONN_PRIMARY CoolantConnector        cdu.facility_supply_temp,
 *                     (facility loop)         cdu.facility_return_temp, cdu.facility_flow
 *   RF_K_PUMP         Pump                    cdu.pump_speed{pump} %
 *   RF_K_RESERVOIR    Reservoir               cdu.level %
 *   RF_K_LEAK         LeakDetector            cdu.alarms{alarm=leak,detector} 0/1
 *   RF_K_MAINS        Circuit (Mains)         pdu.power{inlet} W, pdu.phase.current{inlet}
 *                                             A, pdu.phase.voltage{inlet} V, pdu.energy{inlet}
 *                                             kWh
 *   RF_K_BRANCH       Circuit (Branch)        pdu.breaker.current{breaker} A,
 *                                             pdu.breaker.rating{breaker} A
 *   RF_K_OUTLET       Outlet                  pdu.outlet.power{outlet} W,
 *                                             pdu.outlet.current{outlet} A
 *   RF_K_PDU          PowerDistribution       the profile's OEM readings only
 *
 * A document holding "Members" (an expanded collection) is mapped member by
 * member. Statuses, never zeroes: a Reading that is null or missing while
 * the resource says it should be there is RP_READING_ABSENT, and so is a
 * resource whose Status.State is Absent, Disabled, StandbyOffline or
 * UnavailableOffline; a reading that is not a number is RP_READING_ERROR
 * naming the URI and property. Health Warning/Critical on a resource with
 * a reading keeps the value (the thresholds are the gate's to judge); a
 * leak detector's DetectorState Warning or Critical is a leak (1). */
#ifndef RP_AGENT_REDFISH_MAP_H
#define RP_AGENT_REDFISH_MAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "collector.h"

enum rf_kind {
  RF_K_ENV,
  RF_K_SENSOR,
  RF_K_THERMAL_METRICS,
  RF_K_PSU_METRICS,
  RF_K_LEGACY_THERMAL,
  RF_K_LEGACY_POWER,
  RF_K_CDU,
  RF_K_CONN_SECONDARY,
  RF_K_CONN_PRIMARY,
  RF_K_PUMP,
  RF_K_RESERVOIR,
  RF_K_LEAK,
  RF_K_MAINS,
  RF_K_BRANCH,
  RF_K_OUTLET,
  RF_K_PDU,
  RF_K_COUNT
};

/* The kind's name as profiles and messages write it ("cdu", "sensor", ...);
 * rf_kind_parse() returns -1 for an unknown name. */
const char *rf_kind_name(enum rf_kind k);
int rf_kind_parse(const char *name);

#define RF_LABELS_MAX 2

/* One reading with the storage behind its strings. */
struct rf_item {
  struct rp_reading r;
  struct rp_label lab[RF_LABELS_MAX];
  char val[RF_LABELS_MAX][48];
  char detail[200];
};

/* The readings of one scrape. rf_out_reading() hands back an item to fill
 * (NULL when out of memory: the reading is counted in `lost`); the
 * rp_reading pointers are only fixed by rf_out_finish(), after which
 * out->items[i].r is what rp_target_done() takes. */
struct rf_out {
  struct rf_item *items;
  size_t n, cap;
  size_t lost;
};
struct rf_item *rf_out_reading(struct rf_out *out, const char *name, const char *unit,
                               int decimals);
void rf_out_label(struct rf_item *it, const char *key, const char *value);
void rf_out_finish(struct rf_out *out);
void rf_out_reset(struct rf_out *out);
void rf_out_free(struct rf_out *out);

/* A profile's OEM reading: a JSON pointer into one kind's resource. */
struct rf_oem {
  enum rf_kind kind;
  char pointer[128]; /* RFC 6901, e.g. /Oem/Contoso/FacilityValvePercent */
  char metric[64], unit[16];
  double scale;
  int decimals;
};

struct rf_map_ctx {
  const char *uri;      /* the resource's URI, for details */
  bool shelf;           /* the chassis is a power shelf (ChassisType Shelf) */
  bool legacy_total;    /* RF_K_LEGACY_POWER: report server.power too */
  bool legacy_psu;      /* RF_K_LEGACY_POWER: report the supplies' input power */
  bool sensor_psu;      /* RF_K_SENSOR: PowerSupply power sensors are psu.input_power
                       * (false when PowerSubsystem has them) */
  bool many;            /* several of this unit in the service: label it */
  const char *unit;     /* its Id when `many` */
  const char *unit_key; /* "cdu", "pdu" or "chassis" */
  /* The profile's OEM readings (may be NULL). */
  const struct rf_oem *oem;
  size_t noem;
  /* When not RP_READING_OK, every reading takes this status and detail
   * (the resource could not be read this time: the previous document is
   * mapped for the names only). */
  enum rp_reading_status force;
  const char *force_detail;
};

/* Appends the readings of `doc`, a resource of kind k, to out. Returns the
 * number of readings added (0 is not an error: a resource may carry
 * nothing we map). */
size_t rf_map(enum rf_kind k, const json_t *doc, const struct rf_map_ctx *ctx, struct rf_out *out);

/* The value at an RFC 6901 pointer in doc, or NULL. */
const json_t *rf_pointer(const json_t *doc, const char *pointer);

#endif
