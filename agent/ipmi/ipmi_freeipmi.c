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

#include <freeipmi/freeipmi.h>

#include "ipmi_internal.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define FI_DCMI_GIVE_UP 3 /* consecutive DCMI timeouts before giving up on it */
#define FI_SDR_TRIES 4    /* SDR reads when the reservation is cancelled */

/* One sensor of the SDR, parsed once when the SDR is read. */
struct fi_sensor {
  uint8_t rec[IPMI_SDR_MAX_RECORD_LENGTH];
  unsigned len;
  uint8_t type; /* full, compact or event-only record */
  bool threshold;
  char name[IPMI_NAME_MAX];
  char entity[IPMI_ENTITY_MAX];
  int num;
  char unit[IPMI_UNIT_MAX]; /* ipmitool's text ("degrees C"), "" when none */
};

enum fi_dcmi {
  DCMI_SKIPPED,
  DCMI_READ,
  DCMI_OFF,
  DCMI_UNSUPPORTED,
  DCMI_DENIED,
  DCMI_TIMEOUT,
  DCMI_FAILED
};

struct ipmi_fi {
  uv_work_t work;
  struct ipmi_bmc *b;
  bool detached; /* the BMC is gone: the job frees this when it ends */
  ipmi_ctx_t ctx;
  bool open;
  ipmi_sdr_ctx_t sdr;
  ipmi_sensor_read_ctx_t sread;
  struct fi_sensor *sensors;
  size_t nsensors;
  bool have_sig;
  uint16_t count;
  uint32_t add_ts, erase_ts;
  int64_t sdr_checked_ms;
  char hostport[300];
  char password[IPMI_2_0_MAX_PASSWORD_LENGTH + 2];
  char cache_path[512];
  /* This job: what to do, */
  bool check_sdr, read_dcmi;
  int64_t now_ms;
  /* and what came of it. */
  int rc; /* 0, or the scrape failed with error[] */
  char error[320];
  struct ipmi_reading *out;
  size_t nout;
  enum fi_dcmi dcmi;
  struct ipmi_dcmi_power power;
  char note[160];      /* DCMI or SDR message for the loop thread's log */
  bool sdr_reread;     /* the SDR was read (again) */
  bool session_opened; /* a session was opened */
  uint64_t timeouts, sessions;
  unsigned interval_ms; /* the BMC's scrape interval */
  int64_t last_ok_ms;   /* end of the last scrape that worked: the session's idle time */
  bool reopen;          /* idle for longer than its timeout: open a new one */
  unsigned seed;        /* rand_r: SDR retry pauses of BMCs apart */
};

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

static bool is_timeout(int errnum) {
  return errnum == IPMI_ERR_SESSION_TIMEOUT || errnum == IPMI_ERR_CONNECTION_TIMEOUT ||
         errnum == IPMI_ERR_MESSAGE_TIMEOUT || errnum == IPMI_ERR_PASSWORD_VERIFICATION_TIMEOUT;
}

/* Ends the session (in the worker, or when nothing else uses it). */
static void session_close(struct ipmi_fi *fi) {
  if (fi->sread != NULL) {
    ipmi_sensor_read_ctx_destroy(fi->sread);
    fi->sread = NULL;
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
static int fail(struct ipmi_fi *fi, const char *what) {
  const struct ipmi_bmc *b = fi->b;
  int errnum = fi->ctx != NULL ? ipmi_ctx_errnum(fi->ctx) : IPMI_ERR_OUT_OF_MEMORY;
  if (is_timeout(errnum)) {
    fi->timeouts++;
    snprintf(fi->error, sizeof(fi->error), "%s: %s: no answer from the BMC in %.1f s: %s: %s",
             b->cfg.name, b->address, (double)fi_timeout_ms(fi) / 1000.0, what, ctx_error(fi));
  } else {
    snprintf(fi->error, sizeof(fi->error), "%s: %s: %s: %s", b->cfg.name, b->address, what,
             fi->ctx != NULL ? ctx_error(fi) : "out of memory");
  }
  session_close(fi);
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
    return fail(fi, "opening the session");
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
    if (is_timeout(errnum)) {
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
  if ((fi->sread = ipmi_sensor_read_ctx_create(fi->ctx)) == NULL)
    return fail(fi, "sensor reading context");
  return 0;
}

/* ------------------------------------------------------------ SDR */

/* Parses the record the SDR cache iterator points at into *s; false when
 * it is not a sensor record. */
static bool parse_record(struct ipmi_fi *fi, struct fi_sensor *s) {
  int len = ipmi_sdr_cache_record_read(fi->sdr, s->rec, sizeof(s->rec));
  uint16_t id;
  uint8_t type, num, eid, einst, etype, code;
  if (len <= 0)
    return false;
  s->len = (unsigned)len;
  if (ipmi_sdr_parse_record_id_and_type(fi->sdr, s->rec, s->len, &id, &type) < 0 ||
      (type != IPMI_SDR_FORMAT_FULL_SENSOR_RECORD &&
       type != IPMI_SDR_FORMAT_COMPACT_SENSOR_RECORD && type != IPMI_SDR_FORMAT_EVENT_ONLY_RECORD))
    return false;
  s->type = type;
  if (ipmi_sdr_parse_id_string(fi->sdr, s->rec, s->len, s->name, sizeof(s->name) - 1) < 0 ||
      ipmi_sdr_parse_sensor_number(fi->sdr, s->rec, s->len, &num) < 0 ||
      ipmi_sdr_parse_entity_id_instance_type(fi->sdr, s->rec, s->len, &eid, &einst, &etype) < 0 ||
      ipmi_sdr_parse_event_reading_type_code(fi->sdr, s->rec, s->len, &code) < 0)
    return false;
  for (size_t k = strlen(s->name); k > 0 && s->name[k - 1] == ' '; k--)
    s->name[k - 1] = '\0';
  s->num = num;
  snprintf(s->entity, sizeof(s->entity), "%u.%u", eid, einst);
  s->threshold = code == IPMI_EVENT_READING_TYPE_CODE_THRESHOLD;
  s->unit[0] = '\0';
  uint8_t pct, mod, rate, base, modunit;
  if (type != IPMI_SDR_FORMAT_EVENT_ONLY_RECORD && s->threshold &&
      ipmi_sdr_parse_sensor_units(fi->sdr, s->rec, s->len, &pct, &mod, &rate, &base, &modunit) ==
          0) {
    if (pct)
      snprintf(s->unit, sizeof(s->unit), "percent");
    else if (IPMI_SENSOR_UNIT_VALID(base))
      snprintf(s->unit, sizeof(s->unit), "%s", ipmi_sensor_units[base]);
  }
  return true;
}

/* Reads the SDR through FreeIPMI's cache file, keeps its sensor records in
 * memory and removes the file. */
static int sdr_read(struct ipmi_fi *fi) {
  if (fi->sdr == NULL && (fi->sdr = ipmi_sdr_ctx_create()) == NULL)
    return fail(fi, "SDR context");
  unlink(fi->cache_path);
  /* Another client reading the SDR at the same time cancels this one's
   * reservation (completion code c5): read it again, a few times, after a
   * growing pause (this is the pool's thread, not the loop's). */
  int tries = 0, created;
  while ((created = ipmi_sdr_cache_create(fi->sdr, fi->ctx, fi->cache_path,
                                          IPMI_SDR_CACHE_CREATE_FLAGS_OVERWRITE, NULL, NULL)) < 0 &&
         ++tries < FI_SDR_TRIES && ipmi_ctx_errnum(fi->ctx) == IPMI_ERR_BAD_COMPLETION_CODE) {
    unlink(fi->cache_path);
    usleep((useconds_t)(tries * 100000 + rand_r(&fi->seed) % 100000));
  }
  if (created < 0) {
    snprintf(fi->note, sizeof(fi->note), "%s", ipmi_sdr_ctx_errormsg(fi->sdr));
    unlink(fi->cache_path);
    return fail(fi, "reading the SDR");
  }
  int rc = ipmi_sdr_cache_open(fi->sdr, NULL, fi->cache_path);
  unlink(fi->cache_path);
  uint16_t count = 0;
  if (rc < 0 || ipmi_sdr_cache_record_count(fi->sdr, &count) < 0) {
    snprintf(fi->error, sizeof(fi->error), "%s: SDR cache %s: %s", fi->b->cfg.name, fi->cache_path,
             ipmi_sdr_ctx_errormsg(fi->sdr));
    ipmi_sdr_cache_close(fi->sdr);
    fi->rc = -EIO;
    return -EIO;
  }
  struct fi_sensor *s = calloc(count + 1u, sizeof(*s));
  size_t n = 0;
  if (s == NULL) {
    ipmi_sdr_cache_close(fi->sdr);
    snprintf(fi->error, sizeof(fi->error), "%s: out of memory", fi->b->cfg.name);
    fi->rc = -ENOMEM;
    return -ENOMEM;
  }
  if (ipmi_sdr_cache_first(fi->sdr) == 0) {
    do
      n += parse_record(fi, &s[n]);
    while (n < count && ipmi_sdr_cache_next(fi->sdr) == 1);
  }
  ipmi_sdr_cache_close(fi->sdr);
  free(fi->sensors);
  fi->sensors = s;
  fi->nsensors = n;
  fi->sdr_reread = true;
  return 0;
}

/* Compares the repository's signature with the SDR in memory; reads the
 * SDR again when it differs or was never read. */
static int sdr_check(struct ipmi_fi *fi) {
  fiid_obj_t obj = fiid_obj_create(tmpl_cmd_get_sdr_repository_info_rs);
  uint64_t count = 0, add = 0, erase = 0;
  if (obj == NULL)
    return fail(fi, "Get SDR Repository Info");
  if (ipmi_cmd_get_sdr_repository_info(fi->ctx, obj) < 0) {
    fiid_obj_destroy(obj);
    return fail(fi, "Get SDR Repository Info");
  }
  fiid_obj_get(obj, "record_count", &count);
  fiid_obj_get(obj, "most_recent_addition_timestamp", &add);
  fiid_obj_get(obj, "most_recent_erase_timestamp", &erase);
  fiid_obj_destroy(obj);
  fi->sdr_checked_ms = fi->now_ms;
  bool same = fi->have_sig && fi->count == count && fi->add_ts == add && fi->erase_ts == erase;
  if (same && fi->sensors != NULL)
    return 0;
  if (fi->have_sig && !same)
    snprintf(fi->note, sizeof(fi->note),
             "the SDR repository changed (%u records, added %u, erased %u -> %u, %u, %u): "
             "reading it again",
             fi->count, fi->add_ts, fi->erase_ts, (unsigned)count, (unsigned)add, (unsigned)erase);
  fi->have_sig = false;
  if (sdr_read(fi) != 0)
    return -EIO;
  fi->count = (uint16_t)count;
  fi->add_ts = (uint32_t)add;
  fi->erase_ts = (uint32_t)erase;
  fi->have_sig = true;
  return 0;
}

/* ------------------------------------------------------------ sensors */

/* ipmitool's status word for a threshold sensor's comparison bits. */
static enum ipmi_status threshold_status(uint16_t bits, char *word, size_t n) {
  static const char *const names[] = {"lnc", "lcr", "lnr", "unc", "ucr", "unr"};
  static const enum ipmi_status st[] = {IPMI_ST_NC, IPMI_ST_CR, IPMI_ST_NR,
                                        IPMI_ST_NC, IPMI_ST_CR, IPMI_ST_NR};
  static const int order[] = {2, 5, 1, 4, 0, 3}; /* the worst first */
  for (size_t i = 0; i < 6; i++)
    if (bits & (1u << order[i])) {
      snprintf(word, n, "%s", names[order[i]]);
      return st[order[i]];
    }
  snprintf(word, n, "ok");
  return IPMI_ST_OK;
}

/* One sensor into *r; -EIO when the session failed (the scrape fails). */
static int read_sensor(struct ipmi_fi *fi, const struct fi_sensor *s, struct ipmi_reading *r) {
  memset(r, 0, sizeof(*r));
  snprintf(r->name, sizeof(r->name), "%s", s->name);
  snprintf(r->entity, sizeof(r->entity), "%s", s->entity);
  r->sensor_num = s->num;
  r->value = NAN;
  for (int i = 0; i < IPMI_THRESH_COUNT; i++)
    r->thresh[i] = NAN;
  if (s->type == IPMI_SDR_FORMAT_EVENT_ONLY_RECORD) {
    r->status = IPMI_ST_NA;
    snprintf(r->raw_status, sizeof(r->raw_status), "ns");
    return 0;
  }
  double *val = NULL;
  uint16_t bits = 0;
  int rc = ipmi_sensor_read(fi->sread, s->rec, s->len, 0, NULL, &val, &bits);
  int errnum = ipmi_sensor_read_ctx_errnum(fi->sread);
  if (rc < 0 && errnum == IPMI_SENSOR_READ_ERR_IPMI_ERROR &&
      (is_timeout(ipmi_ctx_errnum(fi->ctx)) || ipmi_ctx_errnum(fi->ctx) == IPMI_ERR_IPMI_ERROR ||
       ipmi_ctx_errnum(fi->ctx) == IPMI_ERR_SYSTEM_ERROR)) {
    char what[64];
    snprintf(what, sizeof(what), "reading sensor '%s'", s->name);
    return fail(fi, what);
  }
  if (rc == 1 && val != NULL && s->threshold) {
    const char *unit = ipmi_unit_map(s->unit, strlen(s->unit));
    r->value = *val;
    if (unit == NULL) {
      r->status = IPMI_ST_UNKNOWN_UNIT;
      snprintf(r->unit, sizeof(r->unit), "%s", s->unit[0] ? s->unit : "unspecified");
      threshold_status(bits, r->raw_status, sizeof(r->raw_status));
    } else {
      snprintf(r->unit, sizeof(r->unit), "%s", unit);
      r->status = threshold_status(bits, r->raw_status, sizeof(r->raw_status));
    }
  } else if (rc >= 0 && !s->threshold) {
    r->status = IPMI_ST_DISCRETE;
    snprintf(r->state, sizeof(r->state), "0x%04x", bits);
    snprintf(r->raw_status, sizeof(r->raw_status), "ok");
  } else if (errnum == IPMI_SENSOR_READ_ERR_SENSOR_SCANNING_DISABLED) {
    r->status = IPMI_ST_DISABLED;
    snprintf(r->raw_status, sizeof(r->raw_status), "ns");
  } else {
    r->status = IPMI_ST_NA;
    snprintf(r->raw_status, sizeof(r->raw_status), "ns");
  }
  free(val);
  return 0;
}

static int read_sensors(struct ipmi_fi *fi) {
  struct ipmi_bmc *b = fi->b;
  size_t na = 0;
  fi->out = calloc(fi->nsensors + 1, sizeof(*fi->out));
  if (fi->out == NULL) {
    snprintf(fi->error, sizeof(fi->error), "%s: out of memory", b->cfg.name);
    return fi->rc = -ENOMEM;
  }
  for (size_t i = 0; i < fi->nsensors; i++) {
    if (read_sensor(fi, &fi->sensors[i], &fi->out[fi->nout]) != 0)
      return -EIO;
    na += fi->out[fi->nout].status == IPMI_ST_NA;
    fi->out[fi->nout].line = (unsigned)(fi->nout + 1);
    fi->nout++;
  }
  if (fi->nout == 0) {
    snprintf(fi->error, sizeof(fi->error), "%s: %s: the SDR lists no sensor", b->cfg.name,
             b->address);
    fi->have_sig = false; /* read it again next time */
    return fi->rc = -ENODATA;
  }
  if (na == fi->nout) {
    snprintf(fi->error, sizeof(fi->error),
             "%s: %s: none of %zu sensors has a reading (BMC not answering?)", b->cfg.name,
             b->address, fi->nout);
    fi->have_sig = false;
    session_close(fi);
    return fi->rc = -ENODATA;
  }
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
    if (is_timeout(errnum)) {
      fi->dcmi = DCMI_TIMEOUT;
      fi->timeouts++;
      session_close(fi); /* the sensors are read; the session reopens next time */
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
    session_close(fi);
    return;
  }
  if (fi->reopen)
    session_close(fi);
  if (session_open(fi) != 0)
    return;
  if ((fi->check_sdr || fi->sensors == NULL || !fi->have_sig) && sdr_check(fi) != 0)
    return;
  if (read_sensors(fi) != 0)
    return;
  if (fi->read_dcmi)
    read_dcmi(fi);
}

static void fi_free(struct ipmi_fi *fi) {
  session_close(fi);
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
  if (fi->sdr_reread)
    rp_info("ipmi", "%s: read the SDR: %zu sensors%s%s", b->cfg.name, fi->nsensors,
            fi->note[0] && fi->dcmi == DCMI_SKIPPED ? "; " : "",
            fi->dcmi == DCMI_SKIPPED ? fi->note : "");
  if (fi->rc == 0)
    apply_dcmi(b, fi);
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
