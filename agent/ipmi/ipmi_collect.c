/* The IPMI collector: server BMCs read through the ipmitool binary (or, with
 * backend: freeipmi, in process through FreeIPMI's library: ipmi_freeipmi.c,
 * which shares the slots, the readings and the config below).
 *
 *   agent: {ipmi_max_children: 16}   # ipmitool children working at once
 *   ipmi:
 *     - name: gpu01
 *       interface: lanplus            # or open (the local BMC)
 *       host: 10.0.5.11
 *       port: 623
 *       user: rackpulse
 *       password_file: /etc/rackpulse/bmc.pass   # mode 0600 or 0640; or
 *       # password_env: BMC_PASSWORD             # the agent's environment
 *       cipher_suite: 3               # always passed (-C): no 10 s probe
 *       privilege: OPERATOR           # ADMINISTRATOR, OPERATOR or USER
 *       session: persistent           # one `ipmitool shell`; or oneshot
 *       interval: 0                   # 0 = agent.interval
 *       timeout: 10s                  # deadline of one ipmitool command
 *       retries: 2                    # ipmitool -R
 *       retry_interval: 1s            # ipmitool -N
 *       sdr_cache: true               # oneshot: `sdr dump` once, then -S
 *       sdr_check: 1m                 # compare `sdr info` this often
 *       psus: 0                       # PSUs expected (0: most seen so far)
 *       ipmitool_path: ipmitool
 *       backend: ipmitool             # or freeipmi (lanplus only, no children)
 *       workarounds: ""               # freeipmi: e.g. opensesspriv (ipmi_sim)
 *       sensors:                      # tried before the built-in patterns
 *         - {glob: "GPU# Temp", metric: gpu.temp, label: gpu}
 *         - {glob: "Fan Redundancy"}  # no metric: ignore this sensor
 *
 * A scrape is a short sequence of ipmitool commands run one after the other
 * through the BMC's runner (ipmi_session.c): `sdr info` when the SDR
 * repository is due for a check, `sdr dump` when the one-shot cache is
 * missing, `sdr elist`, and `dcmi power reading` until the BMC has shown
 * that it lacks DCMI. A persistent shell needs no SDR cache file: ipmitool
 * keeps the SDR records it read in memory for the life of the shell, so
 * later `sdr elist` commands only read sensor values (see BENCHMARKS.md).
 * When the repository changes (record count or its addition/erase time),
 * when a read fails, or when no sensor has a reading any more, the cache
 * file is removed and the shell is ended, so a restarted BMC is never read
 * through a stale SDR.
 *
 * Server power is the DCMI reading where the BMC has it, else the sum of
 * the PSU input-power sensors: server.power{source="dcmi"|"psu_sum"}.
 *
 * Concurrency: a BMC has at most one command in flight (the scheduler never
 * overlaps its scrapes, and a scrape runs its commands in sequence); across
 * the agent at most agent.ipmi_max_children scrapes run ipmitool at once,
 * the others wait in a FIFO queue. Idle persistent shells sleep in read()
 * and are not counted; there is at most one per BMC.
 *
 * This file runs the scrape (the commands in sequence, the child slots)
 * and holds the const struct; the configuration is ipmi_config.c, the
 * readings ipmi_readings.c, their shared declarations ipmi_internal.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipmi_internal.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define IPMI_DCMI_GIVE_UP 3 /* consecutive DCMI timeouts before giving up on it */

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const step_cmd[] = {"sdr info", "sdr dump", "sdr elist", "dcmi power reading",
                                       ""};

/* What the BMCs of one agent share (its slot in rp_collector_state()):
 * every BMC that has scraped (their children are ended together at the
 * agent's close), and the child slots: how many scrapes run ipmitool now,
 * and the FIFO of those waiting for a slot. */
struct ipmi_shared {
  struct ipmi_bmc *bmcs;
  unsigned working;
  struct ipmi_bmc *head, *tail;
};

/* Takes b out of the agent's lists, giving back a slot it holds. */
static void registry_remove(struct ipmi_bmc *b) {
  struct ipmi_shared *sh = b->shared;
  if (sh == NULL)
    return;
  for (struct ipmi_bmc **p = &sh->bmcs; *p != NULL; p = &(*p)->next)
    if (*p == b) {
      *p = b->next;
      break;
    }
  for (struct ipmi_bmc **p = &sh->head; *p != NULL; p = &(*p)->queue_next)
    if (*p == b) {
      *p = b->queue_next;
      break;
    }
  sh->tail = sh->head;
  while (sh->tail != NULL && sh->tail->queue_next != NULL)
    sh->tail = sh->tail->queue_next;
  if (b->holds_slot && sh->working > 0)
    sh->working--;
  b->shared = NULL;
}

/* ------------------------------------------------------------ scrape */

static void run_step(struct ipmi_bmc *b);
static void begin(struct ipmi_bmc *b);

/* Hands the slot to the next BMC in the queue, or gives it back. */
static void release_slot(struct ipmi_bmc *b) {
  if (!b->holds_slot)
    return;
  b->holds_slot = false;
  struct ipmi_shared *sh = b->shared;
  struct ipmi_bmc *next = sh->head;
  if (next == NULL) {
    sh->working--;
    return;
  }
  sh->head = next->queue_next;
  if (sh->head == NULL)
    sh->tail = NULL;
  next->queue_next = NULL;
  next->queued = false;
  next->holds_slot = true;
  begin(next);
}

static void drop_cache(struct ipmi_bmc *b, const char *why) {
  if (b->cache_path[0] != '\0' && b->cache_ready) {
    rp_info("ipmi", "%s: dropping the SDR cache %s: %s", b->cfg.name, b->cache_path, why);
    unlink(b->cache_path);
  }
  b->cache_ready = false;
  b->sdr_sig[0] = '\0';
  b->sdr_checked_ms = 0;
}

/* The end of a scrape: its readings to the agent, its slot to the next BMC. */
static void finish_scrape(struct ipmi_bmc *b, bool ok) {
  ipmi__report(b, ok);
  release_slot(b);
}

void ipmi__scrape_end(struct ipmi_bmc *b, bool ok) { finish_scrape(b, ok); }

/* First line of the output that says something, for messages. */
static void first_line(const char *out, size_t len, char *dst, size_t n) {
  const char *p = out, *end = out + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    const char *s = p;
    while (s < e && isspace((unsigned char)*s))
      s++;
    if (s < e && strncmp(s, "Loading IANA", 12) != 0) {
      size_t k = (size_t)(e - s);
      while (k > 0 && isspace((unsigned char)s[k - 1]))
        k--;
      snprintf(dst, n, "%.*s", (int)k, s);
      for (char *q = dst; *q; q++)
        if (!isprint((unsigned char)*q))
          *q = '?';
      return;
    }
    p = e + 1;
  }
  snprintf(dst, n, "no output");
}

/* Why a command failed, in words an operator can act on. */
static void describe_failure(struct ipmi_bmc *b, const struct ipmi_result *res) {
  const char *cmd = step_cmd[b->step];
  char line[200];
  first_line(res->out, res->len, line, sizeof(line));
  double secs = (double)res->elapsed_ms / 1000.0;
  const char *what = res->new_shell ? "opening the session" : cmd;
  if (res->rc == -ETIMEDOUT) {
    snprintf(b->error, sizeof(b->error), "%s: %s: %s: no answer within %.0f s; ipmitool killed",
             b->cfg.name, b->address, what, (double)b->cfg.timeout_ms / 1000.0);
  } else if (res->rc == -E2BIG) {
    snprintf(b->error, sizeof(b->error), "%s: %s: %s: too much output; ipmitool killed",
             b->cfg.name, b->address, what);
  } else if (res->rc != -ECHILD && res->rc != 0) {
    snprintf(b->error, sizeof(b->error), "%s: cannot run %s: %s", b->cfg.name, b->cfg.ipmitool_path,
             strerror(-res->rc));
  } else if (strstr(res->out, "Unable to establish") != NULL ||
             strstr(res->out, "Error: Unable to") != NULL) {
    /* ipmitool says the same for a silent BMC and a refused login; the
     * time it took tells them apart: a refusal comes back at once, a
     * silent BMC only after every retry. */
    if ((int64_t)res->elapsed_ms < b->cfg.retry_interval_ms)
      snprintf(b->error, sizeof(b->error),
               "%s: %s: session refused by the BMC within %.2f s (wrong user name or password, "
               "or privilege %s / cipher suite %lld not allowed): %s",
               b->cfg.name, b->address, secs, b->cfg.privilege, (long long)b->cfg.cipher_suite,
               line);
    else
      snprintf(b->error, sizeof(b->error), "%s: %s: no answer from the BMC in %.1f s: %s",
               b->cfg.name, b->address, secs, line);
  } else if (res->rc == -ECHILD && res->term_signal != 0) {
    snprintf(b->error, sizeof(b->error), "%s: %s: %s: ipmitool killed by signal %d: %s",
             b->cfg.name, b->address, what, res->term_signal, line);
  } else if (res->rc == -ECHILD) {
    snprintf(b->error, sizeof(b->error), "%s: %s: %s: ipmitool exited with status %lld: %s",
             b->cfg.name, b->address, what, (long long)res->exit_status, line);
  } else {
    snprintf(b->error, sizeof(b->error), "%s: %s: %s: %s", b->cfg.name, b->address, what, line);
  }
}

/* A failed scrape: the SDR cache and the shell are not to be trusted. */
static void fail_scrape(struct ipmi_bmc *b) {
  drop_cache(b, "a read failed");
  if (b->runner != NULL && ipmi_runner_has_shell(b->runner))
    ipmi_runner_end(b->runner, NULL, NULL);
  finish_scrape(b, false);
}

/* "Record Count", "Most recent Addition" and "Most recent Erase". */
static void sdr_signature(const char *out, size_t len, char *sig, size_t n) {
  static const char *const keys[] = {"Record Count", "Most recent Addition", "Most recent Erase"};
  sig[0] = '\0';
  size_t used = 0;
  for (size_t k = 0; k < N(keys); k++) {
    const char *p = out, *end = out + len;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      const char *e = nl ? nl : end;
      size_t kl = strlen(keys[k]);
      if ((size_t)(e - p) > kl && memcmp(p, keys[k], kl) == 0) {
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon != NULL && used < n) {
          int w = snprintf(sig + used, n - used, "%.*s|", (int)(e - colon - 1), colon + 1);
          if (w > 0)
            used += (size_t)w < n - used ? (size_t)w : n - used - 1;
        }
        break;
      }
      p = e + 1;
    }
  }
}

static void next_step(struct ipmi_bmc *b) {
  do
    b->step++;
  while (b->step < STEP_END && !b->steps[b->step]);
  if (b->step == STEP_END)
    finish_scrape(b, true);
  else
    run_step(b);
}

static void on_info(struct ipmi_bmc *b, const struct ipmi_result *res) {
  char sig[sizeof(b->sdr_sig)];
  sdr_signature(res->out, res->len, sig, sizeof(sig));
  b->sdr_checked_ms = rp_now_ms();
  if (sig[0] == '\0') {
    next_step(b); /* nothing to compare */
    return;
  }
  bool changed = b->sdr_sig[0] != '\0' && strcmp(sig, b->sdr_sig) != 0;
  if (!changed) {
    snprintf(b->sdr_sig, sizeof(b->sdr_sig), "%s", sig);
    next_step(b);
    return;
  }
  rp_info("ipmi", "%s: the SDR repository changed (%s -> %s): reading it again", b->cfg.name,
          b->sdr_sig, sig);
  drop_cache(b, "the SDR repository changed");
  snprintf(b->sdr_sig, sizeof(b->sdr_sig), "%s", sig);
  b->sdr_checked_ms = rp_now_ms();
  if (b->cache_path[0] != '\0')
    b->steps[STEP_DUMP] = true;
  b->step++;
  while (!b->steps[b->step])
    b->step++;
  /* The shell holds the old SDR in memory: a new one reads it afresh
   * (the runner starts it once the old one is gone). */
  if (ipmi_runner_has_shell(b->runner))
    ipmi_runner_end(b->runner, NULL, NULL);
  run_step(b);
}

static void on_elist(struct ipmi_bmc *b, const struct ipmi_result *res) {
  /* Count the readings, and those without a value; parsing for good is
   * done once the scrape is complete. */
  size_t na = 0, total = 0;
  const char *p = res->out, *end = res->out + res->len;
  unsigned lineno = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
      break;
    struct ipmi_reading r;
    if (ipmi_parse_line(p, (size_t)(nl - p), ++lineno, &r, NULL, 0) == 1) {
      total++;
      na += r.status == IPMI_ST_NA;
    }
    p = nl + 1;
  }
  if (total == 0) {
    char line[200];
    first_line(res->out, res->len, line, sizeof(line));
    snprintf(b->error, sizeof(b->error), "%s: %s: sdr elist: no sensor in the answer: %s",
             b->cfg.name, b->address, line);
    fail_scrape(b);
    return;
  }
  if (na == total) {
    snprintf(b->error, sizeof(b->error),
             "%s: %s: sdr elist: none of %zu sensors has a reading (BMC not answering?)",
             b->cfg.name, b->address, total);
    fail_scrape(b);
    return;
  }
  b->elist = malloc(res->len + 1);
  if (b->elist == NULL) {
    snprintf(b->error, sizeof(b->error), "%s: out of memory", b->cfg.name);
    fail_scrape(b);
    return;
  }
  memcpy(b->elist, res->out, res->len);
  b->elist[res->len] = '\0';
  b->elist_len = res->len;
  next_step(b);
}

static void on_dcmi(struct ipmi_bmc *b, const struct ipmi_result *res) {
  char err[160];
  if (res->rc == -ETIMEDOUT) {
    /* The sensors are read; the shell is gone and restarts next time. */
    if (++b->dcmi_timeouts >= IPMI_DCMI_GIVE_UP) {
      b->dcmi_unsupported = true;
      rp_warn("ipmi", "%s: dcmi power reading timed out %u times: using the PSU sum from now on",
              b->cfg.name, b->dcmi_timeouts);
    }
    snprintf(b->dcmi_note, sizeof(b->dcmi_note), "dcmi power reading timed out");
    next_step(b);
    return;
  }
  b->dcmi_timeouts = 0;
  int rc = ipmi_parse_dcmi_power(res->out, res->len, &b->dcmi, err, sizeof(err));
  if (rc == 0 && b->dcmi.active != 0) {
    b->have_dcmi = true;
    next_step(b);
    return;
  }
  if (rc == 0) {
    snprintf(b->dcmi_note, sizeof(b->dcmi_note), "DCMI power measurement deactivated");
  } else if (rc == -ENOTSUP || rc == -EACCES) {
    b->dcmi_unsupported = true;
    char line[160];
    first_line(res->out, res->len, line, sizeof(line));
    if (rc == -EACCES)
      rp_warn("ipmi", "%s: dcmi power reading refused at privilege %s (%s): using the PSU sum",
              b->cfg.name, b->cfg.privilege, line);
    else
      rp_info("ipmi", "%s: no DCMI power reading (%s): using the PSU sum", b->cfg.name, line);
  } else {
    snprintf(b->dcmi_note, sizeof(b->dcmi_note), "dcmi power reading failed: %s", err);
  }
  next_step(b);
}

static void on_step_done(void *arg, const struct ipmi_result *res) {
  struct ipmi_bmc *b = arg;
  if (b->step == STEP_DCMI) {
    on_dcmi(b, res);
    return;
  }
  if (res->rc != 0) {
    describe_failure(b, res);
    fail_scrape(b);
    return;
  }
  switch (b->step) {
  case STEP_INFO: on_info(b, res); return;
  case STEP_DUMP: {
    char tmp[530];
    snprintf(tmp, sizeof(tmp), "%s.tmp", b->cache_path);
    if (rename(tmp, b->cache_path) != 0) {
      rp_warn("ipmi", "%s: SDR cache %s: %s; reading without it", b->cfg.name, tmp,
              strerror(errno));
      unlink(tmp);
    } else {
      b->cache_ready = true;
    }
    next_step(b);
    return;
  }
  case STEP_ELIST: on_elist(b, res); return;
  default: next_step(b); return;
  }
}

static void run_step(struct ipmi_bmc *b) {
  const char *words[8];
  char tmp[530];
  size_t n = 0;
  switch (b->step) {
  case STEP_INFO:
    words[n++] = "sdr";
    words[n++] = "info";
    break;
  case STEP_DUMP:
    snprintf(tmp, sizeof(tmp), "%s.tmp", b->cache_path);
    unlink(tmp);
    words[n++] = "sdr";
    words[n++] = "dump";
    words[n++] = tmp;
    break;
  case STEP_ELIST:
    if (b->cache_ready) {
      words[n++] = "-S";
      words[n++] = b->cache_path;
    }
    words[n++] = "sdr";
    words[n++] = "elist";
    break;
  case STEP_DCMI:
    words[n++] = "dcmi";
    words[n++] = "power";
    words[n++] = "reading";
    break;
  default: finish_scrape(b, true); return;
  }
  words[n] = NULL;
  int rc = ipmi_runner_run(b->runner, words, on_step_done, b);
  if (rc != 0) {
    snprintf(b->error, sizeof(b->error), "%s: %s: %s", b->cfg.name, step_cmd[b->step],
             strerror(-rc));
    fail_scrape(b);
  }
}

/* The SDR cache file, in one-shot mode: STATE_DIR/ipmi/NAME.sdr. */
static void prepare_cache(struct ipmi_bmc *b) {
  if (!b->cfg.sdr_cache || strcmp(b->cfg.session, "oneshot") != 0 || b->cache_path[0] != '\0' ||
      b->cache_warned)
    return;
  const char *state = b->t->agent->cfg.agent.state_dir;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/ipmi", state);
  if ((mkdir(state, 0750) != 0 && errno != EEXIST) || (mkdir(dir, 0750) != 0 && errno != EEXIST)) {
    rp_warn("ipmi", "%s: %s: %s: reading the SDR without a cache", b->cfg.name, dir,
            strerror(errno));
    b->cache_warned = true;
    return;
  }
  snprintf(b->cache_path, sizeof(b->cache_path), "%s/%s.sdr", dir, b->cfg.name);
  /* A cache left by an earlier run may describe another BMC: start anew. */
  unlink(b->cache_path);
  b->cache_ready = false;
}

static void begin(struct ipmi_bmc *b) {
  int64_t now = rp_now_ms();
  b->ts_ms = now;
  if (strcmp(b->cfg.backend, "freeipmi") == 0) {
    b->have_dcmi = false;
    b->dcmi_note[0] = '\0';
    b->error[0] = '\0';
    if (ipmi__fi_begin(b, now) != 0)
      finish_scrape(b, false);
    return;
  }
  prepare_cache(b);
  memset(b->steps, 0, sizeof(b->steps));
  b->steps[STEP_INFO] = b->sdr_checked_ms == 0 || b->cfg.sdr_check_ms == 0 ||
                        now - b->sdr_checked_ms >= b->cfg.sdr_check_ms;
  b->steps[STEP_DUMP] = b->cache_path[0] != '\0' && !b->cache_ready;
  b->steps[STEP_ELIST] = true;
  b->steps[STEP_DCMI] = !b->dcmi_unsupported;
  b->have_dcmi = false;
  b->dcmi_note[0] = '\0';
  b->error[0] = '\0';
  b->step = 0;
  while (!b->steps[b->step])
    b->step++;
  run_step(b);
}

/* Joins the agent's IPMI state (made by the first BMC to scrape). */
static int join_shared(struct ipmi_bmc *b, struct rp_agent *a) {
  void **slot = rp_collector_state(a, &rp_collector_ipmi);
  if (*slot == NULL && (*slot = calloc(1, sizeof(struct ipmi_shared))) == NULL)
    return -ENOMEM;
  b->shared = *slot;
  b->next = b->shared->bmcs;
  b->shared->bmcs = b;
  return 0;
}

static int ipmi_scrape(struct rp_target *t) {
  struct ipmi_bmc *b = t->priv;
  if (b->shared == NULL) {
    int err = join_shared(b, t->agent);
    if (err != 0)
      return err;
  }
  struct ipmi_shared *sh = b->shared;
  if (b->runner == NULL && strcmp(b->cfg.backend, "ipmitool") == 0) {
    struct ipmi_runner_config rc = {
        .name = b->cfg.name,
        .argv = b->argv,
        .password_env = b->cfg.password_env[0] ? b->cfg.password_env : NULL,
        .persistent = strcmp(b->cfg.session, "persistent") == 0,
        .timeout_ms = (uint64_t)b->cfg.timeout_ms,
        .grace_ms = (uint64_t)b->cfg.grace_ms,
    };
    int err = ipmi_runner_new(t->agent->loop, &rc, &b->runner);
    if (err != 0)
      return err;
  }
  b->ts_ms = rp_now_ms(); /* set again when a queued scrape begins */
  int64_t max = t->agent->cfg.agent.ipmi_max_children;
  if (max <= 0)
    max = 16;
  if (sh->working < (unsigned)max) {
    sh->working++;
    b->holds_slot = true;
    begin(b);
    return 0;
  }
  b->queued = true;
  b->queue_next = NULL;
  if (sh->tail != NULL)
    sh->tail->queue_next = b;
  else
    sh->head = b;
  sh->tail = b;
  return 0;
}

/* Ends every BMC's ipmitool children (shells get `exit`) and runs the loop
 * until they are reaped. For the agent's final close only: the loop has
 * stopped by then, and the shells are best ended together rather than one
 * device after the other. */
static void shutdown_all(struct ipmi_shared *sh, uv_loop_t *loop) {
  sh->head = sh->tail = NULL;
  for (struct ipmi_bmc *b = sh->bmcs; b != NULL; b = b->next) {
    b->queued = false;
    b->queue_next = NULL;
    b->holds_slot = false;
    ipmi_runner_free(b->runner);
    b->runner = NULL;
  }
  sh->working = 0;
  while (ipmi_children_alive() > 0)
    uv_run(loop, UV_RUN_ONCE);
}

/* Three cases. A device retired by a reload (t->retired): the loop is
 * running, so its shell is ended and reaped by the loop on its own. The
 * agent's final close (a device with a runner, not retired): the loop has
 * stopped, so every BMC's children are ended here and the loop is run until
 * they are gone (uv_run is never entered from within a callback). A device
 * that never scraped (config errors, a reload's unchanged copy): nothing
 * runs. */
static void ipmi_destroy(struct rp_target *t) {
  struct ipmi_bmc *b = t->priv;
  if (b == NULL)
    return;
  ipmi__fi_release(b, t->retired && t->agent != NULL ? t->agent->loop : NULL);
  if (b->runner != NULL && t->retired) {
    ipmi_runner_free(b->runner);
    b->runner = NULL;
  } else if (b->runner != NULL && t->agent != NULL) {
    shutdown_all(b->shared, t->agent->loop); /* a runner: b has scraped, so joined */
  }
  registry_remove(b);
  ipmi__bmc_free(b);
  t->priv = NULL;
}

/* The agent closes: every BMC was destroyed (and left the list); any left
 * over lets go of the state rather than point into freed memory. */
static void ipmi_free_state(void *state) {
  struct ipmi_shared *sh = state;
  for (struct ipmi_bmc *b = sh->bmcs; b != NULL; b = b->next)
    b->shared = NULL;
  free(sh);
}

const struct rp_collector rp_collector_ipmi = {
    .name = "ipmi",
    .create = ipmi__create,
    .scrape = ipmi_scrape,
    .destroy = ipmi_destroy,
    .help = ipmi__config_help,
    .same_config = ipmi__same_config,
    .free_state = ipmi_free_state,
};
