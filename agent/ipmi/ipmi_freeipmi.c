/* The in-process IPMI backend (ipmi[].backend: freeipmi): lanplus BMCs read
 * through FreeIPMI's library instead of ipmitool children.
 *
 * One RMCP+ session per BMC, kept open between scrapes. A scrape is one
 * job in libuv's thread pool (uv_queue_work), so a BMC never has more than
 * one request in flight (the scheduler never overlaps a target's scrapes)
 * and the loop never blocks. The job:
 *   1. opens the session if there is none (the password, read on the loop
 *      thread from password_file or password_env, lives only in this
 *      struct for the call and is wiped right after);
 *   2. when the SDR repository is due for a check (sdr_check), compares its
 *      record count and last addition/erase timestamps (Get SDR Repository
 *      Info) with those of the SDR in memory, and reads the SDR again with
 *      FreeIPMI's cache code when they differ (or when there is none yet);
 *      the cache file under STATE_DIR/ipmi/ is loaded and removed at once:
 *      the records live in memory;
 *   3. reads every full, compact and event-only sensor with
 *      ipmi_sensor_read(), FreeIPMI's own conversion of raw readings;
 *   4. reads DCMI power (Get Power Reading) until the BMC has shown it
 *      lacks it.
 * Every message is bounded by FreeIPMI's session timeout (ipmi[].timeout,
 * retransmitted every retry_interval), so a BMC that stops answering fails
 * the scrape within its deadline; the session is then closed (in the
 * worker) and opened again at the next scrape. The results become struct
 * ipmi_reading rows, exactly what the ipmitool parser produces, so the
 * classification, statuses and DCMI / PSU-sum power are the same code
 * (ipmi_readings.c). Nothing here logs from the worker: messages are kept
 * and logged on the loop thread. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipmi_fi.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define FI_DCMI_GIVE_UP 3 /* consecutive DCMI timeouts before giving up on it */
/* ------------------------------------------------------------ helpers */

/* A message's deadline: ipmitool's (retries + 1) sends retry_interval
 * apart, and never more than the command's timeout. */
static unsigned session_timeout_ms(const struct ipmi_cfg *c) {
  int64_t t = (c->retries + 1) * c->retry_interval_ms;
  return (unsigned)(t < c->timeout_ms ? t : c->timeout_ms);
}

/* The timeout of the BMC's FreeIPMI session (see session_open()). */
static unsigned fi_timeout_ms(const struct ipmi_fi *fi) {
  return session_timeout_ms(&fi->b->cfg) + fi->interval_ms;
}

static const char *ctx_error(const struct ipmi_fi *fi) { return ipmi_ctx_errormsg(fi->ctx); }

bool fi__is_timeout(int errnum) {
  return errnum == IPMI_ERR_SESSION_TIMEOUT || errnum == IPMI_ERR_CONNECTION_TIMEOUT ||
         errnum == IPMI_ERR_MESSAGE_TIMEOUT || errnum == IPMI_ERR_PASSWORD_VERIFICATION_TIMEOUT;
}

/* Ends the session (in the worker, or when nothing else uses it). */
void fi__session_close(struct ipmi_fi *fi) {
  if (fi->sread != NULL) {
    ipmi_sensor_read_ctx_destroy(fi->sread);
    fi->sread = NULL;
  }
  if (fi->reading != NULL) {
    fiid_obj_destroy(fi->reading);
    fi->reading = NULL;
  }
  if (fi->discrete != NULL) {
    fiid_obj_destroy(fi->discrete);
    fi->discrete = NULL;
  }
  if (fi->ctx != NULL) {
    if (fi->open)
      ipmi_ctx_close(fi->ctx);
    ipmi_ctx_destroy(fi->ctx);
    fi->ctx = NULL;
  }
  fi->open = false;
}

/* A failed command: the error in the ipmitool backend's words, and a
 * session that is not to be trusted any more. */
int fi__fail(struct ipmi_fi *fi, const char *what) {
  const struct ipmi_bmc *b = fi->b;
  int errnum = fi->ctx != NULL ? ipmi_ctx_errnum(fi->ctx) : IPMI_ERR_OUT_OF_MEMORY;
  if (fi__is_timeout(errnum)) {
    fi->timeouts++;
    snprintf(fi->error, sizeof(fi->error), "%s: %s: no answer from the BMC in %.1f s: %s: %s",
             b->cfg.name, b->address, (double)fi_timeout_ms(fi) / 1000.0, what, ctx_error(fi));
  } else {
    snprintf(fi->error, sizeof(fi->error), "%s: %s: %s: %s", b->cfg.name, b->address, what,
             fi->ctx != NULL ? ctx_error(fi) : "out of memory");
  }
  fi__session_close(fi);
  fi->rc = -EIO;
  return -EIO;
}

static uint8_t privilege_level(const char *p) {
  if (strcmp(p, "USER") == 0)
    return IPMI_PRIVILEGE_LEVEL_USER;
  if (strcmp(p, "OPERATOR") == 0)
    return IPMI_PRIVILEGE_LEVEL_OPERATOR;
  return IPMI_PRIVILEGE_LEVEL_ADMIN;
}

/* ------------------------------------------------------------ session */

static int session_open(struct ipmi_fi *fi) {
  const struct ipmi_cfg *c = &fi->b->cfg;
  if (fi->open)
    return 0;
  if ((fi->ctx = ipmi_ctx_create()) == NULL)
    return fi__fail(fi, "opening the session");
  /* FreeIPMI counts a session's timeout from the last packet received, and
   * gives up at once on a session idle for longer: the session's timeout
   * covers the scrape interval too, so that an idle session survives until
   * the next scrape while a BMC that stops answering is given up on one
   * message deadline after it. */
  unsigned timeout = fi_timeout_ms(fi);
  unsigned retrans = (unsigned)c->retry_interval_ms;
  if (retrans >= timeout)
    retrans = timeout / 2 > 0 ? timeout / 2 : 1;
  int rc = ipmi_ctx_open_outofband_2_0(fi->ctx, fi->hostport, c->user, fi->password, NULL, 0,
                                       privilege_level(c->privilege), (uint8_t)c->cipher_suite,
                                       timeout, retrans, fi->b->fi_workarounds, IPMI_FLAGS_DEFAULT);
  explicit_bzero(fi->password, sizeof(fi->password));
  if (rc < 0) {
    const struct ipmi_bmc *b = fi->b;
    int errnum = ipmi_ctx_errnum(fi->ctx);
    if (fi__is_timeout(errnum)) {
      fi->timeouts++;
      snprintf(fi->error, sizeof(fi->error), "%s: %s: no answer from the BMC in %.1f s: %s",
               b->cfg.name, b->address, (double)fi_timeout_ms(fi) / 1000.0, ctx_error(fi));
    } else if (errnum == IPMI_ERR_USERNAME_INVALID || errnum == IPMI_ERR_PASSWORD_INVALID ||
               errnum == IPMI_ERR_PRIVILEGE_LEVEL_CANNOT_BE_OBTAINED ||
               errnum == IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT ||
               errnum == IPMI_ERR_CIPHER_SUITE_ID_UNAVAILABLE ||
               errnum == IPMI_ERR_AUTHENTICATION_TYPE_UNAVAILABLE ||
               errnum == IPMI_ERR_K_G_INVALID) {
      snprintf(fi->error, sizeof(fi->error),
               "%s: %s: session refused by the BMC (wrong user name or password, or privilege %s "
               "/ cipher suite %lld not allowed; ipmi_sim and some BMCs need workarounds: "
               "opensesspriv): %s",
               b->cfg.name, b->address, c->privilege, (long long)c->cipher_suite, ctx_error(fi));
    } else {
      snprintf(fi->error, sizeof(fi->error), "%s: %s: opening the session: %s", b->cfg.name,
               b->address, ctx_error(fi));
    }
    ipmi_ctx_destroy(fi->ctx);
    fi->ctx = NULL;
    fi->rc = -EIO;
    return -EIO;
  }
  fi->open = true;
  fi->sessions++;
  fi->session_opened = true;
  if ((fi->reading = fiid_obj_create(tmpl_cmd_get_sensor_reading_threshold_rs)) == NULL ||
      (fi->discrete = fiid_obj_create(tmpl_cmd_get_sensor_reading_rs)) == NULL)
    return fi__fail(fi, "sensor reading context");
  return 0;
}

/* ------------------------------------------------------------ DCMI */

static void read_dcmi(struct ipmi_fi *fi) {
  fiid_obj_t obj = fiid_obj_create(tmpl_cmd_dcmi_get_power_reading_rs);
  if (obj == NULL) {
    fi->dcmi = DCMI_FAILED;
    snprintf(fi->note, sizeof(fi->note), "dcmi power reading failed: out of memory");
    return;
  }
  if (ipmi_cmd_dcmi_get_power_reading(fi->ctx, IPMI_DCMI_POWER_READING_MODE_SYSTEM_POWER_STATISTICS,
                                      0, obj) < 0) {
    int errnum = ipmi_ctx_errnum(fi->ctx);
    snprintf(fi->note, sizeof(fi->note), "%s", ctx_error(fi));
    if (fi__is_timeout(errnum)) {
      fi->dcmi = DCMI_TIMEOUT;
      fi->timeouts++;
      fi__session_close(fi); /* the sensors are read; the session reopens next time */
    } else if (errnum == IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT) {
      fi->dcmi = DCMI_DENIED;
    } else if (errnum == IPMI_ERR_COMMAND_INVALID_OR_UNSUPPORTED ||
               errnum == IPMI_ERR_BAD_COMPLETION_CODE) {
      fi->dcmi = DCMI_UNSUPPORTED;
    } else {
      fi->dcmi = DCMI_FAILED;
    }
    fiid_obj_destroy(obj);
    return;
  }
  uint64_t cur = 0, min = 0, max = 0, avg = 0, period = 0, active = 0;
  fiid_obj_get(obj, "current_power", &cur);
  fiid_obj_get(obj, "minimum_power_over_sampling_duration", &min);
  fiid_obj_get(obj, "maximum_power_over_sampling_duration", &max);
  fiid_obj_get(obj, "average_power_over_sampling_duration", &avg);
  fiid_obj_get(obj, "statistics_reporting_time_period", &period);
  fiid_obj_get(obj, "power_reading_state.power_measurement", &active);
  fiid_obj_destroy(obj);
  fi->power = (struct ipmi_dcmi_power){
      .instant_w = (double)cur,
      .min_w = (double)min,
      .max_w = (double)max,
      .avg_w = (double)avg,
      .period_s = (unsigned long)(period / 1000),
      .active = active ? 1 : 0,
      .have = IPMI_DCMI_HAVE_INSTANT | IPMI_DCMI_HAVE_MIN | IPMI_DCMI_HAVE_MAX |
              IPMI_DCMI_HAVE_AVG | IPMI_DCMI_HAVE_PERIOD | IPMI_DCMI_HAVE_STATE,
  };
  fi->dcmi = active ? DCMI_READ : DCMI_OFF;
}

/* ------------------------------------------------------------ the job */

static void on_work(uv_work_t *w) {
  struct ipmi_fi *fi = w->data;
  if (fi->detached) { /* a retired BMC: only its session to end */
    fi__session_close(fi);
    return;
  }
  if (fi->reopen)
    fi__session_close(fi);
  if (session_open(fi) != 0)
    return;
  if ((fi->check_sdr || fi->sensors == NULL || !fi->have_sig) && fi__sdr_check(fi) != 0)
    return;
  if (fi__read_sensors(fi) != 0)
    return;
  if (fi->read_dcmi)
    read_dcmi(fi);
}

static void fi_free(struct ipmi_fi *fi) {
  fi__session_close(fi);
  if (fi->sdr != NULL)
    ipmi_sdr_ctx_destroy(fi->sdr);
  explicit_bzero(fi->password, sizeof(fi->password));
  free(fi->sensors);
  free(fi->out);
  free(fi);
}

/* The job's DCMI outcome into the BMC's remembered state. */
static void apply_dcmi(struct ipmi_bmc *b, struct ipmi_fi *fi) {
  switch (fi->dcmi) {
  case DCMI_SKIPPED: return;
  case DCMI_READ:
    b->dcmi_timeouts = 0;
    b->dcmi = fi->power;
    b->have_dcmi = true;
    return;
  case DCMI_OFF:
    b->dcmi_timeouts = 0;
    snprintf(b->dcmi_note, sizeof(b->dcmi_note), "DCMI power measurement deactivated");
    return;
  case DCMI_UNSUPPORTED:
    b->dcmi_unsupported = true;
    rp_info("ipmi", "%s: no DCMI power reading (%s): using the PSU sum", b->cfg.name, fi->note);
    return;
  case DCMI_DENIED:
    b->dcmi_unsupported = true;
    rp_warn("ipmi", "%s: dcmi power reading refused at privilege %s (%s): using the PSU sum",
            b->cfg.name, b->cfg.privilege, fi->note);
    return;
  case DCMI_TIMEOUT:
    if (++b->dcmi_timeouts >= FI_DCMI_GIVE_UP) {
      b->dcmi_unsupported = true;
      rp_warn("ipmi", "%s: dcmi power reading timed out %u times: using the PSU sum from now on",
              b->cfg.name, b->dcmi_timeouts);
    }
    snprintf(b->dcmi_note, sizeof(b->dcmi_note), "dcmi power reading timed out");
    return;
  case DCMI_FAILED:
    snprintf(b->dcmi_note, sizeof(b->dcmi_note), "dcmi power reading failed: %.60s", fi->note);
    return;
  }
}

static void on_work_done(uv_work_t *w, int status) {
  struct ipmi_fi *fi = w->data;
  if (fi->detached) {
    fi_free(fi);
    return;
  }
  struct ipmi_bmc *b = fi->b;
  if (status != 0 && fi->rc == 0) {
    snprintf(fi->error, sizeof(fi->error), "%s: scrape cancelled", b->cfg.name);
    fi->rc = -ECANCELED;
  }
  if (fi->session_opened)
    rp_debug("ipmi", "%s: %s: RMCP+ session opened (%llu so far)", b->cfg.name, b->address,
             (unsigned long long)fi->sessions);
  if (fi->sdr_reread) {
    rp_info("ipmi", "%s: read the SDR: %zu sensors%s%s", b->cfg.name, fi->nsensors,
            fi->note[0] && fi->dcmi == DCMI_SKIPPED ? "; " : "",
            fi->dcmi == DCMI_SKIPPED ? fi->note : "");
    if (fi->nwanted > 0 && fi->nwanted < fi->nsensors)
      rp_info("ipmi",
              "%s: %zu of its %zu sensors are read at each scrape; no series maps the "
              "others (sensors[], keep_unclassified)",
              b->cfg.name, fi->nwanted, fi->nsensors);
  }
  if (fi->rc == 0)
    apply_dcmi(b, fi);
  else
    fi->sdr_checked_ms = 0; /* a restarted BMC is never read through a stale SDR */
  if (fi->open)
    fi->last_ok_ms = rp_now_ms();
  snprintf(b->error, sizeof(b->error), "%s", fi->error);
  b->parsed = fi->out;
  b->nparsed = fi->nout;
  ipmi__scrape_end(b, fi->rc == 0);
  b->parsed = NULL;
  b->nparsed = 0;
  free(fi->out);
  fi->out = NULL;
  fi->nout = 0;
}

/* The password, read on the loop thread just before a session is opened. */
static int load_password(struct ipmi_bmc *b, struct ipmi_fi *fi) {
  const struct ipmi_cfg *c = &b->cfg;
  if (c->password_env[0] != '\0') {
    const char *v = getenv(c->password_env);
    if (v == NULL || strlen(v) > IPMI_2_0_MAX_PASSWORD_LENGTH) {
      snprintf(b->error, sizeof(b->error), "%s: password_env %s: %s", c->name, c->password_env,
               v == NULL ? "not set" : "longer than 20 characters");
      return -EINVAL;
    }
    snprintf(fi->password, sizeof(fi->password), "%s", v);
    return 0;
  }
  FILE *f = fopen(c->password_file, "re");
  if (f == NULL) {
    snprintf(b->error, sizeof(b->error), "%s: password_file %s: %s", c->name, c->password_file,
             strerror(errno));
    return -errno;
  }
  size_t n = fread(fi->password, 1, sizeof(fi->password) - 1, f);
  fclose(f);
  fi->password[n] = '\0';
  char *nl = strpbrk(fi->password, "\r\n");
  if (nl != NULL)
    *nl = '\0';
  if (strlen(fi->password) > IPMI_2_0_MAX_PASSWORD_LENGTH) {
    explicit_bzero(fi->password, sizeof(fi->password));
    snprintf(b->error, sizeof(b->error), "%s: password_file %s: longer than 20 characters", c->name,
             c->password_file);
    return -EINVAL;
  }
  return 0;
}

static int fi_new(struct ipmi_bmc *b) {
  struct ipmi_fi *fi = calloc(1, sizeof(*fi));
  if (fi == NULL)
    return -ENOMEM;
  fi->b = b;
  fi->work.data = fi;
  fi->seed = (unsigned)(uintptr_t)fi ^ (unsigned)rp_now_ms();
  snprintf(fi->hostport, sizeof(fi->hostport), "%s:%lld", b->cfg.host, (long long)b->cfg.port);
  const char *state = b->t->agent->cfg.agent.state_dir;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/ipmi", state);
  if ((mkdir(state, 0750) != 0 && errno != EEXIST) || (mkdir(dir, 0750) != 0 && errno != EEXIST)) {
    int err = errno;
    snprintf(b->error, sizeof(b->error), "%s: %s: %s (the SDR is read through a file there)",
             b->cfg.name, dir, strerror(err));
    free(fi);
    return -err;
  }
  snprintf(fi->cache_path, sizeof(fi->cache_path), "%s/%s.freeipmi-sdr", dir, b->cfg.name);
  b->fi = fi;
  return 0;
}

int ipmi__fi_begin(struct ipmi_bmc *b, int64_t now_ms) {
  if (b->fi == NULL) {
    int rc = fi_new(b);
    if (rc != 0)
      return rc;
  }
  struct ipmi_fi *fi = b->fi;
  fi->interval_ms =
      (unsigned)(b->t->interval_ms > 0 ? b->t->interval_ms : b->t->agent->cfg.agent.interval_ms);
  /* Backed off, or scraped late: FreeIPMI would call the session dead. */
  fi->reopen = fi->open && now_ms - fi->last_ok_ms >= (int64_t)fi_timeout_ms(fi) - 250;
  if ((!fi->open || fi->reopen) && load_password(b, fi) != 0)
    return -EINVAL;
  fi->now_ms = now_ms;
  fi->check_sdr = fi->sdr_checked_ms == 0 || b->cfg.sdr_check_ms == 0 ||
                  now_ms - fi->sdr_checked_ms >= b->cfg.sdr_check_ms;
  fi->read_dcmi = !b->dcmi_unsupported;
  fi->rc = 0;
  fi->error[0] = fi->note[0] = '\0';
  fi->dcmi = DCMI_SKIPPED;
  fi->sdr_reread = fi->session_opened = false;
  int rc = uv_queue_work(b->t->agent->loop, &fi->work, on_work, on_work_done);
  if (rc != 0) {
    explicit_bzero(fi->password, sizeof(fi->password));
    snprintf(b->error, sizeof(b->error), "%s: %s", b->cfg.name, uv_strerror(rc));
  }
  return rc;
}

void ipmi__fi_stats(const struct ipmi_bmc *b, uint64_t *timeouts, uint64_t *sessions) {
  *timeouts = b->fi != NULL ? b->fi->timeouts : 0;
  *sessions = b->fi != NULL ? b->fi->sessions : 0;
}

void ipmi__fi_release(struct ipmi_bmc *b, uv_loop_t *running_loop) {
  struct ipmi_fi *fi = b->fi;
  if (fi == NULL)
    return;
  b->fi = NULL;
  fi->b = NULL;
  /* With the loop running (a reload retired the BMC) the session is ended
   * in the pool: a BMC that went silent must not stall the loop. */
  if (running_loop != NULL && fi->open) {
    fi->detached = true;
    if (uv_queue_work(running_loop, &fi->work, on_work, on_work_done) == 0)
      return;
  }
  fi_free(fi);
}

int ipmi__fi_workarounds(const char *text, unsigned *flags, char *why, size_t n) {
  static const struct {
    const char *name;
    unsigned flag;
  } table[] = {
      {"authcap", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_AUTHENTICATION_CAPABILITIES},
      {"intel20", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_INTEL_2_0_SESSION},
      {"supermicro20", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_SUPERMICRO_2_0_SESSION},
      {"sun20", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_SUN_2_0_SESSION},
      {"opensesspriv", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE},
      {"integritycheckvalue", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_NON_EMPTY_INTEGRITY_CHECK_VALUE},
      {"nochecksumcheck", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_NO_CHECKSUM_CHECK},
  };
  *flags = 0;
  const char *p = text;
  while (*p != '\0') {
    size_t len = strcspn(p, ", ");
    bool found = false;
    for (size_t i = 0; len > 0 && i < sizeof(table) / sizeof(table[0]); i++)
      if (strlen(table[i].name) == len && strncmp(p, table[i].name, len) == 0) {
        *flags |= table[i].flag;
        found = true;
      }
    if (len > 0 && !found) {
      snprintf(why, n,
               "'%.*s' is not one of authcap, intel20, supermicro20, sun20, opensesspriv, "
               "integritycheckvalue, nochecksumcheck",
               (int)len, p);
      return -EINVAL;
    }
    p += len;
    p += strspn(p, ", ");
  }
  return 0;
}
