/* The scrape schedule: every target has its own repeating uv timer at its
 * interval. A tick while the previous scrape is still in flight is skipped
 * and counted (polls of one device never overlap); a device that keeps
 * failing is polled less often (interval × 2^k, capped at 60 s) and its
 * failures are logged with growing gaps, not every cycle. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "frames.h"
#include "rackpulse/clock.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define BACKOFF_AFTER 3 /* consecutive failures before backing off */
#define BACKOFF_MAX_MS 60000

/* Ticks to skip after `failures` consecutive failures. */
static unsigned backoff_ticks(const struct rp_target *t) {
  if (t->consecutive_failures < BACKOFF_AFTER)
    return 0;
  unsigned shift = t->consecutive_failures - BACKOFF_AFTER + 1;
  if (shift > 16)
    shift = 16;
  uint64_t ticks = (uint64_t)1 << shift;
  uint64_t cap = (uint64_t)(BACKOFF_MAX_MS / (t->interval_ms > 0 ? t->interval_ms : 1));
  if (cap < 1)
    cap = 1;
  return (unsigned)((ticks < cap ? ticks : cap) - 1);
}

static void start_scrape(struct rp_target *t) {
  t->busy = true;
  t->started_ms = rp_now_ms();
  t->started_mono_ms = rp_mono_ms();
  int rc = t->collector->scrape(t);
  if (rc != 0) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: cannot start a scrape: %s", t->name, strerror(-rc));
    struct rp_scrape_result r = {.ts_ms = t->started_ms, .ok = false, .error = msg};
    rp_target_done(t, &r);
  }
}

static void on_target_tick(uv_timer_t *timer) {
  struct rp_target *t = timer->data;
  if (t->busy) {
    t->skipped++;
    t->agent->scrapes_late++;
    return;
  }
  if (t->backoff_left > 0) {
    t->backoff_left--;
    return;
  }
  start_scrape(t);
}

/* Turns readings into dictionary ids and scaled values for the builder. */
static void record_readings(struct rp_agent *a, struct rp_target *t,
                            const struct rp_scrape_result *r) {
  uint32_t ids[512];
  int64_t scaled[512];
  size_t n = 0;
  for (size_t i = 0; i < r->nreadings; i++) {
    const struct rp_reading *rd = &r->readings[i];
    uint32_t id;
    int rc = rp_series_lookup(&a->series, t->name, rd, &id);
    if (rc != 0) {
      t->series_dropped++;
      if (t->series_dropped == 1)
        rp_warn("agent", "%s: series %s dropped: %s (agent.max_series %lld)", t->name, rd->name,
                rc == -ENOSPC ? "series table full" : strerror(-rc),
                (long long)a->cfg.agent.max_series);
      continue;
    }
    int64_t v;
    if (rd->status != RP_READING_OK) {
      rp_builder_add_status(a->builder, id, rd->status, rd->detail);
      continue;
    }
    if (rp_value_scale(rd->value, rd->decimals, &v) != 0) {
      rp_builder_add_status(a->builder, id, RP_READING_OUT_OF_RANGE, "value not representable");
      continue;
    }
    rp_edge_observe(a->edge, &a->series.entries[id], (int64_t)rp_mono_ms(), rd->value);
    ids[n] = id;
    scaled[n] = v;
    if (++n == sizeof(ids) / sizeof(ids[0])) {
      rp_builder_add_block(a->builder, r->ts_ms, ids, scaled, n);
      n = 0;
    }
  }
  rp_builder_add_block(a->builder, r->ts_ms, ids, scaled, n);
}

/* Logs failures at 1, 2, 4, 8, ... consecutive ones, and the recovery. */
static void log_outcome(struct rp_target *t, const struct rp_scrape_result *r, bool was_up) {
  if (r->ok) {
    if (!was_up && t->scrapes > 1)
      rp_info("agent", "%s: up again after %u failed scrape(s)", t->name, t->consecutive_failures);
    return;
  }
  unsigned n = t->consecutive_failures;
  if ((n & (n - 1)) == 0)
    rp_warn("agent", "%s: down: %s (%u consecutive failure(s)%s)", t->name, t->last_error, n,
            n >= BACKOFF_AFTER ? ", polling less often" : "");
}

/* Releases a target removed by a reload, once libuv lets go of its timer. */
static void on_retired_timer_closed(uv_handle_t *h) {
  struct rp_target *t = h->data;
  t->collector->destroy(t);
  free(t);
}

void rp_scheduler_retire(struct rp_target *t) {
  t->retired = true;
  uv_timer_stop(&t->timer);
  if (!t->busy) /* else rp_target_done() finishes the job */
    uv_close((uv_handle_t *)&t->timer, on_retired_timer_closed);
}

void rp_target_done(struct rp_target *t, const struct rp_scrape_result *r) {
  struct rp_agent *a = t->agent;
  bool was_up = t->up;
  t->busy = false;
  if (t->retired) { /* removed by a reload while this scrape ran */
    uv_close((uv_handle_t *)&t->timer, on_retired_timer_closed);
    return;
  }
  t->scrapes++;
  t->scrape_ms = (uint32_t)(rp_mono_ms() - t->started_mono_ms);
  if (r->ok) {
    log_outcome(t, r, was_up);
    t->up = true;
    t->last_error[0] = '\0';
    t->last_ok_ms = r->ts_ms;
    t->consecutive_failures = 0;
  } else {
    t->up = false;
    t->failures++;
    t->consecutive_failures++;
    snprintf(t->last_error, sizeof(t->last_error), "%s", r->error ? r->error : "failed");
    log_outcome(t, r, was_up);
    t->backoff_left = backoff_ticks(t);
  }
  record_readings(a, t, r);
  if (a->once && a->once_pending > 0 && --a->once_pending == 0)
    rp_agent_once_complete(a);
}

void rp_scheduler_start_target(struct rp_agent *a, struct rp_target *t) {
  t->agent = a;
  uv_timer_init(a->loop, &t->timer);
  t->timer.data = t;
  t->timer_initialised = true;
  /* Every device's first scrape at once, so that devices of one interval
   * stay due in the same turn of the loop (a repeating timer re-arms from
   * the loop's time, the same for all of them): the loop wakes once for
   * them, and their jobs reach libuv's thread pool together, where each
   * worker takes the next without sleeping and their completions are
   * served in few wake-ups. Spread over ~360 ms before, 40 BMCs cost the
   * loop 16 wake-ups a second and the workers twice the preemptions
   * (BENCHMARKS.md, issue 25's fourth pass). One request in flight per
   * device still holds: each device is its own job, never two at once,
   * and the pool (or agent.ipmi_max_children) bounds how many run. A
   * device added by a reload starts at once too. */
  uv_timer_start(&t->timer, on_target_tick, 0, a->once ? 0 : (uint64_t)t->interval_ms);
}

int rp_scheduler_start(struct rp_agent *a) {
  for (size_t i = 0; i < a->cfg.ntargets; i++)
    rp_scheduler_start_target(a, a->cfg.targets[i]);
  if (a->once)
    a->once_pending = a->cfg.ntargets;
  return 0;
}

void rp_scheduler_stop(struct rp_agent *a) {
  for (size_t i = 0; i < a->cfg.ntargets; i++)
    if (a->cfg.targets[i]->timer_initialised)
      uv_timer_stop(&a->cfg.targets[i]->timer);
}
