/* Cross-file declarations of the IPMI collector, internal to agent/ipmi/:
 * a BMC's configuration and state (struct ipmi_bmc, t->priv of its target),
 * and the functions one of its files offers the others, with the
 * libuv-style double underscore for internal names:
 *   ipmi_config.c    ipmi__create, ipmi__bmc_free, ipmi__same_config,
 *                    ipmi__config_help (the collector's create, help and
 *                    same_config)
 *   ipmi_readings.c  ipmi__report
 *   ipmi_collect.c   the scrape (commands in sequence, child slots), the
 *                    const struct rp_collector_ipmi, ipmi__scrape_end
 *   ipmi_freeipmi.c  ipmi__fi_*: backend freeipmi (its own ipmi_fi.h)
 * Loop thread only, like every collector. */
#ifndef RP_AGENT_IPMI_INTERNAL_H
#define RP_AGENT_IPMI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent.h"
#include "ipmi_parse.h"
#include "ipmi_session.h"

struct ipmi_cfg {
  char name[64];
  char interface[16];
  char host[256];
  int64_t port;
  char user[64];
  char password_file[256];
  char password_env[128];
  int64_t cipher_suite;
  char privilege[16];
  char session[16];
  int64_t interval_ms, timeout_ms, retries, retry_interval_ms, grace_ms;
  bool sdr_cache;
  int64_t sdr_check_ms;
  int64_t psus;
  bool default_sensors, keep_unclassified;
  char ipmitool_path[256];
  char backend[16];      /* ipmitool or freeipmi */
  char workarounds[128]; /* freeipmi: FreeIPMI's workaround names */
};

/* One sensors[] entry as written in YAML. */
struct pattern_text {
  char glob[80], metric[64], label[32], unit[16], entity[16];
};

/* The commands of a scrape, in the order they run. */
enum step { STEP_INFO, STEP_DUMP, STEP_ELIST, STEP_DCMI, STEP_END };

struct ipmi_shared; /* ipmi_collect.c: what the BMCs of one agent share */

struct ipmi_bmc {
  struct ipmi_cfg cfg;
  struct rp_target *t;
  struct ipmi_shared *shared;  /* the agent's IPMI state; NULL until the first scrape */
  struct ipmi_bmc *next;       /* all BMCs of the agent that have scraped */
  struct ipmi_bmc *queue_next; /* waiting for a child slot */
  bool queued, holds_slot;
  char address[300]; /* "host:port" or "local BMC", for messages */
  struct pattern_text *ptext;
  struct ipmi_pattern *patterns;
  size_t npatterns;
  const char *argv[32];
  char port_s[8], cipher_s[8], retries_s[8], interval_s[8];
  struct ipmi_runner *runner;
  struct ipmi_fi *fi;      /* backend freeipmi: its session and SDR (ipmi_freeipmi.c) */
  unsigned fi_workarounds; /* IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_* */
  /* What the BMC has shown so far. */
  bool dcmi_unsupported;
  unsigned dcmi_timeouts;
  unsigned psus_seen;
  char sdr_sig[160];
  int64_t sdr_checked_ms; /* 0: never */
  char cache_path[512];   /* "" when no cache is used */
  bool cache_ready;
  bool cache_warned;
  /* This scrape. */
  bool steps[STEP_END];
  enum step step;
  int64_t ts_ms;
  char *elist;
  size_t elist_len;
  const struct ipmi_reading *parsed; /* backend freeipmi: the readings, not elist */
  size_t nparsed;
  struct ipmi_dcmi_power dcmi;
  bool have_dcmi;
  char dcmi_note[96];
  char error[320];
};

/* ipmi_config.c. The collector's create(): reads one ipmi[] entry at
 * `node` into a new BMC, t->priv (free with ipmi__bmc_free()), and sets
 * the target's name and interval. Returns 0, or a negative errno with err
 * set to "file:line: key: problem" (-ENOMEM: possibly without it). */
int ipmi__create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                 const char *where, char *err, size_t errlen);
/* Frees a BMC's memory (not its runner: see ipmi_destroy()). Accepts NULL. */
void ipmi__bmc_free(struct ipmi_bmc *b);
/* The collector's same_config(): true when two BMCs were configured alike
 * (a reload keeps the running one). */
bool ipmi__same_config(const struct rp_target *ta, const struct rp_target *tb);
/* Prints the ipmi[] keys for --help. */
void ipmi__config_help(FILE *out);

/* ipmi_readings.c. Ends the scrape in b: when ok, the readings of
 * b->elist (then freed) with server.power from b->dcmi or the PSU sum;
 * always the runner's counters; then rp_target_done(). When !ok the result
 * is down with b->error. */
void ipmi__report(struct ipmi_bmc *b, bool ok);
/* Whether a reading of sensor r (its name, entity and unit) can reach a
 * frame through b's classification: kept unclassified, or classified
 * when it has no value, the widest match (the unit is then not compared),
 * so every reading that classifies with a value does too. Read-only on b:
 * safe from the in-process backend's worker. */
bool ipmi__may_publish(const struct ipmi_bmc *b, const struct ipmi_reading *r);

/* ipmi_collect.c. The end of a scrape of either backend: the readings to
 * the agent (ipmi__report), the child slot to the next BMC. */
void ipmi__scrape_end(struct ipmi_bmc *b, bool ok);

/* ipmi_freeipmi.c, the in-process backend (loop thread, except the job it
 * queues). ipmi__fi_begin() starts a scrape in libuv's thread pool, which
 * ends with ipmi__scrape_end(); 0, or a negative errno / libuv error with
 * b->error set (no scrape then). */
int ipmi__fi_begin(struct ipmi_bmc *b, int64_t now_ms);
/* Session timeouts and sessions opened so far. */
void ipmi__fi_stats(const struct ipmi_bmc *b, uint64_t *timeouts, uint64_t *sessions);
/* Lets go of b->fi (no scrape in flight). With running_loop, an open
 * session is ended in the thread pool; else here, at once. */
void ipmi__fi_release(struct ipmi_bmc *b, uv_loop_t *running_loop);
/* "opensesspriv,intel20" into workaround flags; -EINVAL with why. */
int ipmi__fi_workarounds(const char *text, unsigned *flags, char *why, size_t n);

#endif
