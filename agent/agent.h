/* rackpulse-agent internals shared across the agent sources: the configuration, the
 * agent object (one libuv loop) and the cross-file functions. Collector
 * interfaces are in collector.h. */
#ifndef RACKPULSE_AGENT_H
#define RACKPULSE_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "collector.h"
#include "edge.h"
#include "rackpulse/cfg.h"
#include "rackpulse/kafka_props.h"
#include "series.h"

struct rp_agent_config {
  struct {
    char id[64];
    char rack[64];
    int64_t interval_ms;
    char state_dir[256];
    char log_level[16];
    int64_t dictionary_every;
    int64_t first_frame_wait_ms; /* how long the first frame waits for every first scrape */
    int64_t max_series;
    char profiles_dir[256];
    int64_t ipmi_max_children; /* ipmitool children working at once */
  } agent;
  struct {
    char brokers[512];
    char topic[128];
    char compression[16];
    int64_t linger_ms;
    int64_t message_timeout_ms;
    int64_t queue_max_messages;
    char sasl_password_file[256];
    /* Extra librdkafka properties, passed through (security.protocol,
     * ssl.*, sasl.*). Secrets among them come from files: see cfg docs. */
    size_t nprops;
    struct rp_kafka_prop props[32];
  } kafka;
  struct {
    int64_t max_frames;
    int64_t max_mb;
    int64_t max_in_flight;
  } spool;
  struct rp_edge_config edge; /* stats and derived sections */
  /* The devices, one target each. Owned; freed by rp_agent_config_free(). */
  struct rp_target **targets;
  size_t ntargets;
};

/* Loads and validates the agent configuration from `path`. Returns 0 and
 * fills *cfg (free with rp_agent_config_free()), or a negative errno with err
 * naming file:line and key. */
int rp_agent_config_load(const char *path, struct rp_agent_config *cfg, char *err, size_t errlen);
void rp_agent_config_free(struct rp_agent_config *cfg);
/* agent.profiles_dir of the configuration being loaded, for the collectors'
 * create() (which runs inside rp_agent_config_load()) to find device
 * profiles; NULL outside rp_agent_config_load(). Loop thread only. */
const char *rp_agent_profiles_dir(void);
/* Prints every configuration key with its type, default and meaning. */
void rp_agent_config_help(FILE *out);

struct rp_delivery; /* delivery.c */

struct rp_agent {
  uv_loop_t *loop;
  struct rp_agent_config cfg;
  struct rp_series_table series; /* the dictionary */
  struct rp_frame_builder *builder;
  struct rp_edge *edge;
  struct rp_delivery *delivery; /* NULL with --once */
  uv_timer_t frame_timer;
  uv_signal_t sig_term, sig_int;
  bool frame_timer_started, signals_started;
  char config_path[512];
  uv_signal_t sig_hup;
  bool once; /* --once: scrape everything once, print, exit */
  size_t once_pending;
  bool stopping;
  int exit_code;
  uint32_t dict_sent_version;
  uint64_t frames_since_dict;
  uint64_t gaps_seen; /* rp_delivery_gaps() when the last frame was built */
  uint64_t frames_produced, frames_failed;
  uint64_t scrapes_late;
  uint64_t started_mono_ms; /* rp_agent_start(): the first frame's wait counts from it */
  /* Each collector's shared state, by its index in rp_collectors[]
   * (rp_collector_state(), collectors.c). */
  void *collector_state[RP_COLLECTORS_MAX];
};

/* agent.c. rp_agent_start() takes a->cfg (loaded) and a->once as set by the
 * caller, and starts everything on `loop`; the caller then runs the loop.
 * Returns 0 or a negative errno with err set. rp_agent_stop() stops
 * scraping, publishes the last frame and stops the loop (idempotent).
 * rp_agent_close() flushes Kafka, closes every handle, frees everything. */
int rp_agent_start(struct rp_agent *a, uv_loop_t *loop, char *err, size_t errlen);
void rp_agent_stop(struct rp_agent *a);
void rp_agent_close(struct rp_agent *a);

/* scheduler.c: starts every target's timer; stops them. A single target is
 * started (its first scrape at once) or retired: its timer stops and the
 * target is destroyed and freed once no scrape of it is in flight. */
int rp_scheduler_start(struct rp_agent *a);
void rp_scheduler_stop(struct rp_agent *a);
void rp_scheduler_start_target(struct rp_agent *a, struct rp_target *t);
void rp_scheduler_retire(struct rp_target *t);

/* reload.c: re-reads the configuration (SIGHUP). Devices whose
 * configuration is unchanged keep running untouched; new ones start; removed
 * or changed ones are retired (a changed one restarts with its new settings,
 * keeping its series and their windows). A configuration that does not
 * validate is refused with file:line and the running one stays. Settings
 * other than devices, stats and derived need a restart; they are reported. */
void rp_agent_reload(struct rp_agent *a);

/* agent.c: called by the scheduler when --once has every device's result. */
void rp_agent_once_complete(struct rp_agent *a);

#endif
