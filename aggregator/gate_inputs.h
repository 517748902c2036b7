/* gate_inputs.h: how the gate reads a check's input from the rack's state
 * (gate_inputs.c), shared by gate.c only. An input is every member of the
 * rack's series, the latest value or a window statistic, each fresh by the
 * frame's and the aggregator's clocks and valid, normalised and combined
 * (members.h); devices an operator retired are left out until they report
 * again. */
#ifndef RACKPULSE_GATE_INPUTS_H
#define RACKPULSE_GATE_INPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "store.h"

/* A check's input: the combination of its members (see members.h). */
struct gate_value {
  bool have;
  bool had_members; /* some device has reported the series */
  double v;
  int64_t ts_ms; /* newest member time */
  char unit[24];
  char why[224];
};

/* Devices of the rack an operator retired (store_retired). */
struct gate_retired_list {
  struct retired {
    char device[RP_ID_MAX + 1];
    int64_t retired_ms;
    bool by_sample; /* a retirement from the site's ledger (gate_add_site_retired) */
  } * d;
  size_t n, cap;
};

/* Names of the statistics, indexed by enum rp_stat. */
extern const char *const gate_stat_label[];

/* A store_read_each_retired() callback: adds `device` to the
 * gate_retired_list at ctx (on out of memory it stays a member: fails
 * closed). The caller frees list->d. */
void gate_on_retired(void *ctx, const char *device, const struct store_retired *t);
/* Adds a retirement the site's ledger holds (retired at retired_ms on the
 * clock of the member that retired it): this member may have applied the
 * device's older frames after that (a rack taken over replays them), so
 * it compares the samples' own time. After gate_on_retired's: the store's
 * own retirement of a device, when there is one, decides. */
void gate_add_site_retired(struct gate_retired_list *rl, const char *device, int64_t retired_ms);
/* Whether a member (series key) is of a retired device and has nothing
 * newer than its retirement; `data_ms` is its newest data on the
 * aggregator's clock, `sample_ms` the same sample's own time. */
bool gate_is_retired(const struct gate_retired_list *rl, const char *key, int64_t data_ms,
                     int64_t sample_ms);
/* Whether series key `key` is of the series `name` (of length len). */
bool gate_name_matches(const char *key, const char *name, size_t len);
/* Reads a check's value into *out: every member of the rack's series
 * (latest, or the statistic over the window), each fresh and valid,
 * normalised and combined. On no value, out->why says why, naming the
 * device. */
void gate_read_value(struct store_read *r, const char *rack,
                     const struct gate_retired_list *retired, const struct rp_check_limits *l,
                     int64_t now_ms, int64_t max_age_ms, struct gate_value *out);

#endif
