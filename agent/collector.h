/* Collectors and targets. A collector is one file and one const struct (the
 * protocol: modbus, snmp, ipmi); a target is one configured device with its
 * own timer, interval and back-off. A scrape is asynchronous: the collector
 * starts it from scrape() and reports its result on the loop thread with
 * rp_target_done(). The loop never waits on a device. */
#ifndef RACKPULSE_COLLECTOR_H
#define RACKPULSE_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "rackpulse/cfg.h"

struct rp_agent;
struct rp_target;

enum rp_reading_status {
  RP_READING_OK = 0,
  RP_READING_ABSENT = 1,       /* sensor reports "not present" */
  RP_READING_OUT_OF_RANGE = 2, /* implausible value */
  RP_READING_ERROR = 3,        /* the device refused this value */
};

struct rp_label {
  const char *key;
  const char *value;
};

/* One value read from a device, as a collector reports it. The strings are
 * borrowed: they must stay valid until rp_target_done() returns. */
struct rp_reading {
  const char *name; /* metric name, e.g. "cdu.supply_temp" */
  const char *unit; /* "Cel", "L/min", "W", ... */
  const struct rp_label *labels;
  size_t nlabels;
  int decimals; /* wire precision: value is sent as value × 10^decimals */
  double value; /* meaningful when status is RP_READING_OK */
  enum rp_reading_status status;
  const char *detail; /* why the status is not OK; may be NULL */
};

struct rp_scrape_result {
  int64_t ts_ms;     /* when the device was read (Unix ms) */
  bool ok;           /* false: the device as a whole failed (down) */
  const char *error; /* when !ok: what failed, naming the device */
  const struct rp_reading *readings;
  size_t nreadings;
};

struct rp_collector {
  const char *name; /* the config section and the DeviceStatus kind */
  /* Parses one device's config mapping at `node` into t->priv. `where` is its
   * dotted path for errors ("modbus[0]"). Returns 0 or a negative errno with
   * err set to "file:line: key: problem". */
  int (*create)(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                const char *where, char *err, size_t errlen);
  /* Starts a scrape. It must not block. Exactly one rp_target_done() call
   * follows, on the loop thread, unless scrape() returns an error. */
  int (*scrape)(struct rp_target *t);
  /* Releases t->priv. Called only when no scrape is in flight. */
  void (*destroy)(struct rp_target *t);
  /* Prints the keys of one device's config for --help. */
  void (*help)(FILE *out);
  /* True when two targets of this collector have the same configuration
   * (a reload keeps the running one). NULL: never equal, always replace. */
  bool (*same_config)(const struct rp_target *a, const struct rp_target *b);
  /* Frees the collector's shared state (see rp_collector_state()); called
   * by rp_agent_close() after every target was destroyed. NULL: the
   * collector keeps no shared state. */
  void (*free_state)(void *state);
};

struct rp_target {
  char name[64]; /* the device name from config */
  const struct rp_collector *collector;
  void *priv;          /* the collector's state, owned by it */
  int64_t interval_ms; /* 0: the agent's interval */
  struct rp_agent *agent;
  uv_timer_t timer;
  bool busy; /* a scrape is in flight */
  bool timer_initialised;
  /* Health, reported in every frame. */
  bool up;
  char last_error[256];
  uint32_t scrape_ms;
  uint64_t scrapes, failures, skipped;
  int64_t last_ok_ms;
  int64_t started_ms;
  uint64_t started_mono_ms;
  unsigned consecutive_failures;
  unsigned backoff_left;   /* ticks to skip while backing off */
  uint64_t series_dropped; /* readings refused by the series bound */
  bool retired;            /* removed by a reload; freed when idle */
};

/* Reports the end of a scrape (loop thread only). */
void rp_target_done(struct rp_target *t, const struct rp_scrape_result *r);

/* Per-collector state. A target's own state is t->priv; what the targets
 * of one collector share within one agent (IPMI: the limit on ipmitool
 * children working at once, and the BMCs to end together at shutdown) goes
 * in the agent's slot for that collector, never in a file-scope variable.
 * rp_collector_state() returns the slot: NULL until the collector stores
 * its state there, from scrape() or later (create() runs while a
 * configuration is loaded, before the target has an agent), and freed by
 * the collector's free_state() in rp_agent_close(). Loop thread only. */
#define RP_COLLECTORS_MAX 8
void **rp_collector_state(struct rp_agent *a, const struct rp_collector *c); /* NULL: c unlisted */
/* rp_agent_close(): each collector's free_state() on its non-NULL slot. */
void rp_collectors_free_state(struct rp_agent *a);

/* The collectors this build has, NULL-terminated (collectors.c). */
extern const struct rp_collector *const rp_collectors[];
extern const struct rp_collector rp_collector_modbus;  /* modbus/mb_collect.c */
extern const struct rp_collector rp_collector_ipmi;    /* ipmi/ipmi_collect.c */
extern const struct rp_collector rp_collector_snmp;    /* snmp/snmp_collect.c */
extern const struct rp_collector rp_collector_redfish; /* redfish/redfish_collect.c */

#endif
