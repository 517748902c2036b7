/* The agent's life: start the scheduler and the frame timer on one libuv
 * loop, turn pending samples into one Frame per interval and hand it to the
 * publisher, keep the sequence number durable, and stop cleanly on SIGTERM
 * or SIGINT (stop scraping, publish what was collected, flush). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "frames.h"
#include "delivery.h"
#include "rackpulse/clock.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define MAX_PENDING_SAMPLES (1u << 20)

static void collect_health(struct rp_agent *a, struct rp_agent_health *h) {
  memset(h, 0, sizeof(*h));
  if (a->delivery != NULL)
    rp_delivery_health(a->delivery, h);
  h->frames_produced = a->frames_produced;
  h->frames_failed += a->frames_failed;
  h->scrapes_late = a->scrapes_late;
}

/* Evaluates the derived series and adds them to the pending samples (one
 * block at Unix time `now`), feeding their window statistics like any other
 * series (at `mono`, the monotonic clock). */
static void add_derived(struct rp_agent *a, int64_t now, int64_t mono) {
  struct rp_derived_value dv[RP_EDGE_MAX_DERIVED];
  uint32_t ids[RP_EDGE_MAX_DERIVED];
  int64_t scaled[RP_EDGE_MAX_DERIVED];
  size_t n = rp_edge_derive(a->edge, &a->series, mono, dv, RP_EDGE_MAX_DERIVED), nok = 0;
  for (size_t i = 0; i < n; i++) {
    struct rp_reading rd = {.name = dv[i].def->name,
                            .unit = dv[i].unit,
                            .decimals = 3,
                            .value = dv[i].value,
                            .status = dv[i].ok ? RP_READING_OK : RP_READING_ABSENT,
                            .detail = dv[i].detail};
    uint32_t id;
    if (rp_series_lookup(&a->series, "derived", &rd, &id) != 0)
      continue;
    if (!dv[i].ok || rp_value_scale(rd.value, rd.decimals, &scaled[nok]) != 0) {
      rp_builder_add_status(a->builder, id, RP_READING_ABSENT, dv[i].detail);
      continue;
    }
    rp_edge_observe(a->edge, &a->series.entries[id], mono, rd.value);
    ids[nok++] = id;
  }
  rp_builder_add_block(a->builder, now, ids, scaled, nok);
}

/* Whether this frame carries the dictionary: the first frame of this run,
 * a changed dictionary, a frame lost on its way to Kafka since the last
 * frame (it may have carried the dictionary), and every `dictionary_every`
 * frames for consumers that start without it. */
static bool dictionary_due(const struct rp_agent *a, uint64_t gaps) {
  return a->frames_produced == 0 || a->series.version != a->dict_sent_version ||
         gaps != a->gaps_seen ||
         a->frames_since_dict + 1 >= (uint64_t)a->cfg.agent.dictionary_every;
}

/* Builds the frame of this interval. Returns 0 with *buf and *len. */
static int build_frame(struct rp_agent *a, uint64_t seq, uint8_t **buf, size_t *len) {
  struct rp_agent_health health;
  collect_health(a, &health);
  int64_t now = rp_now_ms(), mono = (int64_t)rp_mono_ms(); /* windows: monotonic */
  add_derived(a, now, mono);
  Rackpulse__V1__WindowStats **stats;
  size_t nstats = rp_edge_window_stats(a->edge, now, mono, &stats);
  uint64_t gaps = a->delivery != NULL ? rp_delivery_gaps(a->delivery) : 0;
  bool dict = dictionary_due(a, gaps);
  struct rp_frame_meta meta = {
      .agent_id = a->cfg.agent.id,
      .rack_id = a->cfg.agent.rack,
      .incarnation = a->delivery != NULL ? rp_delivery_incarnation(a->delivery) : 0,
      .seq = seq,
      .ts_ms = now,
      .interval_ms = a->cfg.agent.interval_ms,
      .stats = stats,
      .nstats = nstats,
      .stats_every = (uint32_t)a->cfg.edge.stats_every,
      .with_dictionary = dict,
  };
  int rc = rp_builder_build(a->builder, &meta, &a->series, a->cfg.targets, a->cfg.ntargets, &health,
                            buf, len);
  if (rc == 0) {
    a->gaps_seen = gaps;
    if (meta.with_dictionary) {
      a->dict_sent_version = a->series.version;
      a->frames_since_dict = 0;
    } else {
      a->frames_since_dict++;
    }
  }
  return rc;
}

/* The first device (of cfg.targets) whose first scrape has not finished,
 * or NULL when every one has (with or without readings). */
static const struct rp_target *first_unscraped(const struct rp_agent *a) {
  for (size_t i = 0; i < a->cfg.ntargets; i++)
    if (a->cfg.targets[i]->scrapes == 0)
      return a->cfg.targets[i];
  return NULL;
}

/* Whether this frame tick is skipped: the first frame waits for every
 * device's first scrape, up to agent.first_frame_wait. Otherwise its
 * dictionary would lack the series of a device that answers a little later
 * (a rack's BMCs: a session and the SDR to read first), and the whole
 * dictionary would go again in the next frame (~30 kB for 40 BMCs). The
 * readings meanwhile wait in the builder for that frame. */
static bool first_frame_waits(struct rp_agent *a) {
  if (a->frames_produced > 0 || a->stopping)
    return false;
  const struct rp_target *t = first_unscraped(a);
  if (t == NULL)
    return false;
  if (rp_mono_ms() - a->started_mono_ms < (uint64_t)a->cfg.agent.first_frame_wait_ms)
    return true;
  rp_info("agent",
          "first frame sent before every device's first scrape finished (agent.first_frame_wait "
          "%lld ms): %s not yet; its series go with a later frame's dictionary",
          (long long)a->cfg.agent.first_frame_wait_ms, t->name);
  return false;
}

/* Builds this interval's frame and hands it to store and forward. */
static void publish_frame(struct rp_agent *a) {
  uint8_t *buf;
  size_t len;
  uint64_t seq = rp_delivery_take_seq(a->delivery);
  if (build_frame(a, seq, &buf, &len) != 0) {
    a->frames_failed++;
    rp_error("agent", "cannot build frame %" PRIu64 ": out of memory", seq);
    return;
  }
  a->frames_produced++;
  rp_delivery_submit(a->delivery, seq, buf, len);
}

static void on_frame_tick(uv_timer_t *timer) {
  struct rp_agent *a = timer->data;
  if (!first_frame_waits(a))
    publish_frame(a);
}

void rp_agent_once_complete(struct rp_agent *a) {
  uint8_t *buf;
  size_t len;
  rp_frame *f = NULL;
  char err[256];
  if (build_frame(a, 0, &buf, &len) != 0) {
    rp_error("agent", "cannot build the frame: out of memory");
    a->exit_code = 1;
  } else if (rp_frame_decode(buf, len, &f, err, sizeof(err)) != 0) {
    rp_error("agent", "built an invalid frame: %s", err);
    a->exit_code = 1;
  } else {
    json_t *j = rp_frame_to_json(f, NULL);
    json_object_set_new(j, "encoded_bytes", json_integer((json_int_t)len));
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
    fputc('\n', stdout);
    json_decref(j);
  }
  rp_frame_free(f);
  free(buf);
  rp_agent_stop(a);
}

static void on_sighup(uv_signal_t *s, int signum) {
  (void)signum;
  struct rp_agent *a = s->data;
  rp_info("agent", "SIGHUP: reloading %s", a->config_path);
  rp_agent_reload(a);
}

/* SIGTERM and SIGINT stay handled until the agent has closed: a second
 * signal while it flushes (Ctrl-C, then a service manager's SIGTERM) must
 * not kill it with its spool open and its ipmitool shells orphaned. */
static void on_signal(uv_signal_t *s, int signum) {
  struct rp_agent *a = s->data;
  const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
  if (a->stopping) {
    rp_info("agent",
            "%s: already stopping; the flush and the devices' children end in bounded "
            "time",
            name);
    return;
  }
  rp_info("agent", "%s: stopping: publishing the last frame and flushing", name);
  rp_agent_stop(a);
}

int rp_agent_start(struct rp_agent *a, uv_loop_t *loop, char *err, size_t errlen) {
  int rc;
  a->loop = loop;
  a->started_mono_ms = rp_mono_ms();
  rc = rp_series_table_init(&a->series, (size_t)a->cfg.agent.max_series);
  if (rc != 0) {
    snprintf(err, errlen, "series table: %s", strerror(-rc));
    return rc;
  }
  a->builder = rp_builder_new(MAX_PENDING_SAMPLES);
  if (a->builder == NULL) {
    snprintf(err, errlen, "frame builder: out of memory");
    return -ENOMEM;
  }
  rc = rp_edge_new(&a->edge, &a->cfg.edge, (size_t)a->cfg.agent.max_series,
                   a->cfg.agent.interval_ms);
  if (rc != 0) {
    snprintf(err, errlen, "edge statistics: %s", strerror(-rc));
    return rc;
  }
  if (!a->once) {
    if ((rc = rp_delivery_new(loop, &a->cfg, &a->delivery, err, errlen)) != 0)
      return rc;
    uv_timer_init(loop, &a->frame_timer);
    a->frame_timer.data = a;
    /* Frames fall on multiples of the interval of wall-clock time. */
    uint64_t iv = (uint64_t)a->cfg.agent.interval_ms;
    uint64_t first = iv - (uint64_t)rp_now_ms() % iv;
    uv_timer_start(&a->frame_timer, on_frame_tick, first, iv);
    a->frame_timer_started = true;
  }
  uv_signal_init(loop, &a->sig_term);
  uv_signal_init(loop, &a->sig_int);
  uv_signal_init(loop, &a->sig_hup);
  a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
  uv_signal_start(&a->sig_term, on_signal, SIGTERM);
  uv_signal_start(&a->sig_int, on_signal, SIGINT);
  if (!a->once)
    uv_signal_start(&a->sig_hup, on_sighup, SIGHUP);
  a->signals_started = true;
  rp_info("agent", "agent %s for rack %s: %zu device(s), frames every %lld ms to %s/%s",
          a->cfg.agent.id, a->cfg.agent.rack, a->cfg.ntargets, (long long)a->cfg.agent.interval_ms,
          a->cfg.kafka.brokers, a->cfg.kafka.topic);
  return rp_scheduler_start(a);
}

void rp_agent_stop(struct rp_agent *a) {
  if (a->stopping)
    return;
  a->stopping = true;
  rp_scheduler_stop(a);
  if (a->frame_timer_started) {
    uv_timer_stop(&a->frame_timer);
    if (rp_builder_pending(a->builder) > 0)
      publish_frame(a);
  }
  /* No reload while stopping; SIGTERM and SIGINT stay handled (on_signal)
   * until rp_agent_close() closes them, unreferenced so that they do not
   * keep the loop of the closing steps alive. */
  if (a->signals_started) {
    uv_signal_stop(&a->sig_hup);
    uv_unref((uv_handle_t *)&a->sig_term);
    uv_unref((uv_handle_t *)&a->sig_int);
  }
  uv_stop(a->loop);
}

static void on_closed(uv_handle_t *h) { (void)h; }

/* Waits for scrapes in flight: their completions touch the targets. */
static void drain_scrapes(struct rp_agent *a) {
  for (int rounds = 0; rounds < 1000; rounds++) {
    bool busy = false;
    for (size_t i = 0; i < a->cfg.ntargets; i++)
      busy |= a->cfg.targets[i]->busy;
    if (!busy)
      return;
    uv_run(a->loop, UV_RUN_ONCE);
  }
}

void rp_agent_close(struct rp_agent *a) {
  drain_scrapes(a);
  /* Frames Kafka has not acknowledged by then stay in the spool. */
  rp_delivery_close(a->delivery, 3000);
  a->delivery = NULL;
  for (size_t i = 0; i < a->cfg.ntargets; i++)
    if (a->cfg.targets[i]->timer_initialised)
      uv_close((uv_handle_t *)&a->cfg.targets[i]->timer, on_closed);
  if (a->frame_timer_started)
    uv_close((uv_handle_t *)&a->frame_timer, on_closed);
  if (a->signals_started) {
    uv_close((uv_handle_t *)&a->sig_term, on_closed);
    uv_close((uv_handle_t *)&a->sig_int, on_closed);
    uv_close((uv_handle_t *)&a->sig_hup, on_closed);
  }
  uv_run(a->loop, UV_RUN_DEFAULT);
  rp_builder_free(a->builder);
  rp_edge_free(a->edge);
  rp_series_table_free(&a->series);
  rp_agent_config_free(&a->cfg);
  rp_collectors_free_state(a);
}
