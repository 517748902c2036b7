/* SIGHUP: re-read the configuration and apply the device list without a
 * restart (see rp_agent_reload() in agent.h). Series, their windows and the
 * series dictionary live in the agent, keyed by device and name, so a device
 * that stays (or comes back with new settings) keeps its history. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "rackpulse/log.h"

/* Says which sections changed that only a restart applies. */
static void report_restart_needed(const struct rp_agent_config *now,
                                  const struct rp_agent_config *next, const char *path) {
  struct rp_agent_config a = *now, b = *next;
  /* log_level is applied on reload: leave it out of the comparison. */
  memset(a.agent.log_level, 0, sizeof(a.agent.log_level));
  memset(b.agent.log_level, 0, sizeof(b.agent.log_level));
  const char *changed[4];
  size_t n = 0;
  if (memcmp(&a.agent, &b.agent, sizeof(a.agent)) != 0)
    changed[n++] = "agent";
  if (memcmp(&a.kafka, &b.kafka, sizeof(a.kafka)) != 0)
    changed[n++] = "kafka";
  if (memcmp(&a.spool, &b.spool, sizeof(a.spool)) != 0)
    changed[n++] = "spool";
  if (memcmp(&a.edge, &b.edge, sizeof(a.edge)) != 0)
    changed[n++] = "stats/derived";
  for (size_t i = 0; i < n; i++)
    rp_warn("agent", "reload: %s: the %s section changed; restart the agent to apply it", path,
            changed[i]);
}

static struct rp_target *find_target(struct rp_target **list, size_t n, const char *name,
                                     const struct rp_collector *collector, size_t *index) {
  for (size_t i = 0; i < n; i++) {
    if (list[i] != NULL && list[i]->collector == collector && strcmp(list[i]->name, name) == 0) {
      *index = i;
      return list[i];
    }
  }
  return NULL;
}

void rp_agent_reload(struct rp_agent *a) {
  struct rp_agent_config next;
  char err[1024];
  if (rp_agent_config_load(a->config_path, &next, err, sizeof(err)) != 0) {
    rp_error("agent", "reload refused: %s; the running configuration stays", err);
    return;
  }
  report_restart_needed(&a->cfg, &next, a->config_path);
  enum rp_log_level lvl;
  if (rp_log_level_parse(next.agent.log_level, &lvl) == 0)
    rp_log_set_level(lvl);

  struct rp_target **old = a->cfg.targets;
  size_t nold = a->cfg.ntargets, kept = 0, started = 0, retired = 0;
  for (size_t i = 0; i < next.ntargets; i++) {
    struct rp_target *nt = next.targets[i];
    size_t j;
    struct rp_target *ot = find_target(old, nold, nt->name, nt->collector, &j);
    if (ot != NULL && ot->collector->same_config != NULL && ot->collector->same_config(ot, nt)) {
      nt->collector->destroy(nt);
      free(nt);
      next.targets[i] = ot;
      old[j] = NULL;
      kept++;
      continue;
    }
    rp_scheduler_start_target(a, nt);
    started++;
  }
  for (size_t j = 0; j < nold; j++) {
    if (old[j] != NULL) {
      rp_scheduler_retire(old[j]);
      retired++;
    }
  }
  free(old);
  a->cfg.targets = next.targets;
  a->cfg.ntargets = next.ntargets;
  next.targets = NULL;
  next.ntargets = 0;
  rp_agent_config_free(&next);
  rp_info("agent", "reloaded %s: %zu device(s): %zu unchanged, %zu (re)started, %zu retired",
          a->config_path, a->cfg.ntargets, kept, started, retired);
}
