/* The pieces of `policy simulate` (ctl_simulate.c): reading Kafka into the
 * backtest engine (ctl_simulate_read.c) and printing its report
 * (ctl_simulate_print.c). */
#ifndef RACKPULSE_CTL_SIMULATE_INT_H
#define RACKPULSE_CTL_SIMULATE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "replay.h"

struct rp_sim_run {
  const char *brokers, *topic;
  int64_t from_ms, to_ms;
  bool json;
};

/* Reads the run's frames from Kafka into a backtest of cand against cur
 * (both taken) with options ro, and prints the report. Returns the exit
 * status (0, 1 must-deny violated, 2 error). */
int rp_sim_replay(const struct rp_sim_run *run, struct rp_policy *cand, struct rp_policy *cur,
                  const struct rp_replay_options *ro);

/* The report as a table. */
void rp_sim_print(const json_t *report, FILE *out);

#endif
