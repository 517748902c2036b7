/* The IPMI collector: server BMCs read through the ipmitool binary.
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
 * and are not counted; there is at most one per BMC. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "ipmi_parse.h"
#include "ipmi_session.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define IPMI_MAX_PATTERNS 128
#define IPMI_DCMI_GIVE_UP 3 /* consecutive DCMI timeouts before giving up on it */

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
};

typedef struct ipmi_cfg D;

static const struct rp_cfg_field bmc_fields[] = {
    RP_CFG_STR("name", D, name, NULL, 1, "BMC name, unique in the agent"),
    RP_CFG_STR("interface", D, interface, "lanplus", 0,
               "lanplus (IPMI v2.0 over the network) or open (this host's BMC)"),
    RP_CFG_STR("host", D, host, "", 0, "lanplus: address of the BMC"),
    RP_CFG_NUM("port", RP_CFG_INT, D, port, "623", 1, 65535, "lanplus: UDP port"),
    RP_CFG_STR("user", D, user, "", 0, "lanplus: user name"),
    RP_CFG_STR("password_file", D, password_file, "", 0,
               "lanplus: file holding the password (ipmitool -f); mode 0600 or 0640"),
    RP_CFG_STR("password_env", D, password_env, "", 0,
               "lanplus: or the agent's environment variable holding it (ipmitool -E)"),
    RP_CFG_NUM("cipher_suite", RP_CFG_INT, D, cipher_suite, "3", 0, 17,
               "RMCP+ cipher suite (-C), always passed"),
    RP_CFG_STR("privilege", D, privilege, "ADMINISTRATOR", 0,
               "ADMINISTRATOR, OPERATOR or USER (-L)"),
    RP_CFG_STR("session", D, session, "persistent", 0,
               "persistent (one `ipmitool shell` kept open) or oneshot (a child per command)"),
    RP_CFG_NUM("interval", RP_CFG_DURATION, D, interval_ms, "0", 0, 3600,
               "scrape interval (0 = agent.interval)"),
    RP_CFG_NUM("timeout", RP_CFG_DURATION, D, timeout_ms, "10s", 0.1, 600,
               "deadline of one ipmitool command; then its process group is killed"),
    RP_CFG_NUM("retries", RP_CFG_INT, D, retries, "2", 0, 10, "ipmitool -R: retries of a message"),
    RP_CFG_NUM("retry_interval", RP_CFG_DURATION, D, retry_interval_ms, "1s", 1, 60,
               "ipmitool -N: seconds before a message is retried"),
    RP_CFG_NUM("kill_grace", RP_CFG_DURATION, D, grace_ms, "2s", 0.1, 60,
               "SIGTERM to SIGKILL (and `exit` to SIGTERM)"),
    RP_CFG_NUM("sdr_cache", RP_CFG_BOOL, D, sdr_cache, "true", 0, 0,
               "oneshot: cache the SDR in STATE_DIR/ipmi/NAME.sdr (sdr dump, -S)"),
    RP_CFG_NUM("sdr_check", RP_CFG_DURATION, D, sdr_check_ms, "1m", 0, 86400,
               "compare the SDR repository info this often (0: every scrape)"),
    RP_CFG_NUM("psus", RP_CFG_INT, D, psus, "0", 0, 64,
               "PSUs expected in the power sum (0: the most seen so far)"),
    RP_CFG_NUM("default_sensors", RP_CFG_BOOL, D, default_sensors, "true", 0, 0,
               "also classify by the built-in sensor name patterns"),
    RP_CFG_NUM("keep_unclassified", RP_CFG_BOOL, D, keep_unclassified, "false", 0, 0,
               "report unmatched sensors as ipmi.sensor{sensor=NAME}"),
    RP_CFG_STR("ipmitool_path", D, ipmitool_path, "ipmitool", 0,
               "the ipmitool binary (searched in PATH without a '/')"),
};

/* One sensors[] entry as written in YAML. */
struct pattern_text {
  char glob[80], metric[64], label[32], unit[16], entity[16];
};

typedef struct pattern_text P;

static const struct rp_cfg_field pattern_fields[] = {
    RP_CFG_STR("glob", P, glob, NULL, 1,
               "sensor name glob: * ? [..] and # (digits, captured as the label)"),
    RP_CFG_STR("metric", P, metric, "", 0, "metric name, e.g. gpu.temp; empty: ignore the sensor"),
    RP_CFG_STR("label", P, label, "", 0, "label key for the captured text, e.g. gpu"),
    RP_CFG_STR("unit", P, unit, "", 0, "only sensors in this unit (Cel, rpm, W, V, A, %)"),
    RP_CFG_STR("entity", P, entity, "", 0, "only sensors whose entity matches, e.g. 3.*"),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum step { STEP_INFO, STEP_DUMP, STEP_ELIST, STEP_DCMI, STEP_END };

static const char *const step_cmd[] = {"sdr info", "sdr dump", "sdr elist", "dcmi power reading",
                                       ""};

struct ipmi_shared;

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
  struct ipmi_dcmi_power dcmi;
  bool have_dcmi;
  char dcmi_note[96];
  char error[320];
};

/* What the BMCs of one agent share (its slot in rp_collector_state()):
 * every BMC that has scraped (their children are ended together at the
 * agent's close), and the child slots: how many scrapes run ipmitool now,
 * and the FIFO of those waiting for a slot. */
struct ipmi_shared {
  struct ipmi_bmc *bmcs;
  unsigned working;
  struct ipmi_bmc *head, *tail;
};

/* ------------------------------------------------------------- config */

static void bmc_free(struct ipmi_bmc *b) {
  if (b == NULL)
    return;
  free(b->ptext);
  free(b->patterns);
  free(b->elist);
  free(b);
}

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

static int parse_patterns(const struct rp_cfg_doc *doc, rp_cfg_node list, const char *where,
                          struct ipmi_bmc *b, char *err, size_t errlen) {
  if (list == 0)
    return 0;
  size_t n = rp_cfg_seq_len(doc, list);
  if (rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE || n > IPMI_MAX_PATTERNS) {
    rp_cfg_error(doc, list, where, err, errlen,
                 "sensors: expected a list of at most %d {glob, metric, label}", IPMI_MAX_PATTERNS);
    return -EINVAL;
  }
  b->ptext = calloc(n + 1, sizeof(*b->ptext));
  b->patterns = calloc(n + 1, sizeof(*b->patterns));
  if (b->ptext == NULL || b->patterns == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    char pwhere[96], why[160];
    rp_cfg_node item = rp_cfg_seq_item(doc, list, i);
    snprintf(pwhere, sizeof(pwhere), "%s.sensors[%zu]", where, i);
    struct pattern_text *p = &b->ptext[i];
    int rc =
        rp_cfg_apply(doc, item, pwhere, pattern_fields, N(pattern_fields), NULL, p, err, errlen);
    if (rc != 0)
      return rc;
    if (ipmi_pattern_check(p->glob, why, sizeof(why)) != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, item, "glob"), pwhere, err, errlen, "glob: %s", why);
      return -EINVAL;
    }
    if (p->entity[0] != '\0' && ipmi_pattern_check(p->entity, why, sizeof(why)) != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, item, "entity"), pwhere, err, errlen, "entity: %s", why);
      return -EINVAL;
    }
    if (p->unit[0] != '\0' && ipmi_unit_map(p->unit, strlen(p->unit)) == NULL &&
        strcmp(p->unit, "Cel") != 0 && strcmp(p->unit, "rpm") != 0 && strcmp(p->unit, "W") != 0 &&
        strcmp(p->unit, "V") != 0 && strcmp(p->unit, "A") != 0 && strcmp(p->unit, "%") != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, item, "unit"), pwhere, err, errlen,
                   "unit: '%s' is not one of Cel, rpm, W, V, A, %%", p->unit);
      return -EINVAL;
    }
    if (p->metric[0] == '\0' && p->label[0] != '\0') {
      rp_cfg_error(doc, item, pwhere, err, errlen, "label: needs a metric");
      return -EINVAL;
    }
    b->patterns[i] = (struct ipmi_pattern){
        .glob = p->glob,
        .unit = p->unit[0] ? p->unit : NULL,
        .entity = p->entity[0] ? p->entity : NULL,
        .metric = p->metric[0] ? p->metric : NULL,
        .label = p->label[0] ? p->label : NULL,
    };
  }
  b->npatterns = n;
  return 0;
}

/* The password file may be read by its owner and group, no more. */
static int check_password_file(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                               const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    rp_cfg_error(doc, node, where, err, errlen, "password_file: %s: %s", path, strerror(errno));
    return -EINVAL;
  }
  if (!S_ISREG(st.st_mode)) {
    rp_cfg_error(doc, node, where, err, errlen, "password_file: %s is not a regular file", path);
    return -EINVAL;
  }
  if ((st.st_mode & 0137) != 0) {
    rp_cfg_error(doc, node, where, err, errlen,
                 "password_file: %s has mode %04o: it must not be readable by others nor "
                 "writable by its group (at most 0640; chmod 0600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
    return -EINVAL;
  }
  if (access(path, R_OK) != 0) {
    rp_cfg_error(doc, node, where, err, errlen, "password_file: %s: %s", path, strerror(errno));
    return -EINVAL;
  }
  return 0;
}

/* A bare name is looked up in PATH, as execvp will. */
static bool find_executable(const char *name) {
  if (strchr(name, '/') != NULL)
    return access(name, X_OK) == 0;
  const char *path = getenv("PATH");
  if (path == NULL)
    path = "/usr/bin:/bin";
  while (*path != '\0') {
    size_t n = strcspn(path, ":");
    char full[512];
    snprintf(full, sizeof(full), "%.*s/%s", (int)n, n ? path : ".", name);
    if (access(full, X_OK) == 0)
      return true;
    path += n;
    if (*path == ':')
      path++;
  }
  return false;
}

static int check_bmc(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                     struct ipmi_cfg *c, char *err, size_t errlen) {
  bool lan = strcmp(c->interface, "lanplus") == 0;
  if (!lan && strcmp(c->interface, "open") != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "interface"), where, err, errlen,
                 "interface: '%s' is not lanplus or open", c->interface);
    return -EINVAL;
  }
  if (strcmp(c->session, "persistent") != 0 && strcmp(c->session, "oneshot") != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "session"), where, err, errlen,
                 "session: '%s' is not persistent or oneshot", c->session);
    return -EINVAL;
  }
  for (char *p = c->privilege; *p != '\0'; p++)
    *p = (char)toupper((unsigned char)*p);
  if (strcmp(c->privilege, "ADMINISTRATOR") != 0 && strcmp(c->privilege, "OPERATOR") != 0 &&
      strcmp(c->privilege, "USER") != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "privilege"), where, err, errlen,
                 "privilege: '%s' is not ADMINISTRATOR, OPERATOR or USER", c->privilege);
    return -EINVAL;
  }
  if (c->retry_interval_ms % 1000 != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "retry_interval"), where, err, errlen,
                 "retry_interval: ipmitool -N takes whole seconds");
    return -EINVAL;
  }
  if (!find_executable(c->ipmitool_path)) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "ipmitool_path"), where, err, errlen,
                 "ipmitool_path: '%s' is not an executable%s", c->ipmitool_path,
                 strchr(c->ipmitool_path, '/') ? "" : " in PATH (apt-get install ipmitool)");
    return -EINVAL;
  }
  if (!lan)
    return 0;
  if (c->host[0] == '\0' || c->user[0] == '\0') {
    rp_cfg_error(doc, node, where, err, errlen, "%s: required for interface lanplus",
                 c->host[0] == '\0' ? "host" : "user");
    return -EINVAL;
  }
  bool file = c->password_file[0] != '\0', env = c->password_env[0] != '\0';
  if (file == env) {
    rp_cfg_error(doc, node, where, err, errlen,
                 "password_file or password_env: exactly one is required for lanplus "
                 "(passwords never go on ipmitool's command line)");
    return -EINVAL;
  }
  if (file)
    return check_password_file(doc, rp_cfg_get(doc, node, "password_file"), where, c->password_file,
                               err, errlen);
  const char *v = getenv(c->password_env);
  if (v == NULL || v[0] == '\0') {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "password_env"), where, err, errlen,
                 "password_env: the environment variable %s is not set", c->password_env);
    return -EINVAL;
  }
  return 0;
}

/* ipmitool's options, without a command. */
static void build_argv(struct ipmi_bmc *b) {
  const struct ipmi_cfg *c = &b->cfg;
  size_t n = 0;
  const char **a = b->argv;
  a[n++] = c->ipmitool_path;
  a[n++] = "-I";
  a[n++] = c->interface;
  if (strcmp(c->interface, "lanplus") == 0) {
    snprintf(b->port_s, sizeof(b->port_s), "%lld", (long long)c->port);
    snprintf(b->retries_s, sizeof(b->retries_s), "%lld", (long long)c->retries);
    snprintf(b->interval_s, sizeof(b->interval_s), "%lld",
             (long long)(c->retry_interval_ms / 1000));
    a[n++] = "-H";
    a[n++] = c->host;
    a[n++] = "-p";
    a[n++] = b->port_s;
    a[n++] = "-U";
    a[n++] = c->user;
    a[n++] = "-L";
    a[n++] = c->privilege;
    a[n++] = "-N";
    a[n++] = b->interval_s;
    a[n++] = "-R";
    a[n++] = b->retries_s;
    if (c->password_file[0] != '\0') {
      a[n++] = "-f";
      a[n++] = c->password_file;
    } else {
      a[n++] = "-E";
    }
  }
  snprintf(b->cipher_s, sizeof(b->cipher_s), "%lld", (long long)c->cipher_suite);
  a[n++] = "-C";
  a[n++] = b->cipher_s;
  a[n] = NULL;
}

static int ipmi_create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                       const char *where, char *err, size_t errlen) {
  static const char *const sections[] = {"sensors", NULL};
  struct ipmi_bmc *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  int rc =
      rp_cfg_apply(doc, node, where, bmc_fields, N(bmc_fields), sections, &b->cfg, err, errlen);
  if (rc == 0)
    rc = check_bmc(doc, node, where, &b->cfg, err, errlen);
  if (rc == 0)
    rc = parse_patterns(doc, rp_cfg_get(doc, node, "sensors"), where, b, err, errlen);
  if (rc != 0) {
    if (rc == -ENOMEM)
      snprintf(err, errlen, "%s: out of memory", where);
    bmc_free(b);
    return rc;
  }
  build_argv(b);
  if (strcmp(b->cfg.interface, "lanplus") == 0)
    snprintf(b->address, sizeof(b->address), "%s:%lld", b->cfg.host, (long long)b->cfg.port);
  else
    snprintf(b->address, sizeof(b->address), "local BMC");
  snprintf(t->name, sizeof(t->name), "%s", b->cfg.name);
  t->interval_ms = b->cfg.interval_ms;
  t->priv = b;
  b->t = t;
  return 0;
}

/* ----------------------------------------------------------- readings */

static int unit_decimals(const char *unit) {
  if (strcmp(unit, "rpm") == 0)
    return 0;
  if (strcmp(unit, "V") == 0)
    return 3;
  if (strcmp(unit, "A") == 0)
    return 2;
  return 1; /* Cel, W, %, and the rest */
}

/* What a reading without a usable value says, for the frame. */
static void reading_status(const struct ipmi_reading *r, struct rp_reading *out, char *detail,
                           size_t n) {
  switch (r->status) {
  case IPMI_ST_OK:
  case IPMI_ST_NC:
  case IPMI_ST_CR:
  case IPMI_ST_NR:
    out->status = RP_READING_OK;
    out->value = r->value;
    return;
  case IPMI_ST_NA:
    out->status = RP_READING_ABSENT;
    snprintf(detail, n, "%s: no reading (%s)", r->name, r->raw_status[0] ? r->raw_status : "na");
    break;
  case IPMI_ST_DISABLED:
    out->status = RP_READING_ABSENT;
    snprintf(detail, n, "%s: sensor disabled", r->name);
    break;
  case IPMI_ST_UNKNOWN_UNIT:
    out->status = RP_READING_ERROR;
    snprintf(detail, n, "%s: unknown unit '%s'", r->name, r->unit);
    break;
  default:
    out->status = RP_READING_ERROR;
    snprintf(detail, n, "%s: %s", r->name, ipmi_status_name(r->status));
    break;
  }
  out->detail = detail;
}

/* Per-scrape storage of the readings handed to rp_target_done(). */
struct scrape_out {
  struct ipmi_reading *parsed;
  size_t nparsed;
  struct rp_reading *rd;
  struct rp_label *labels;
  char (*lvalue)[IPMI_NAME_MAX];
  char (*detail)[160];
  size_t n, cap;
};

static void scrape_out_free(struct scrape_out *o) {
  free(o->parsed);
  free(o->rd);
  free(o->labels);
  free(o->lvalue);
  free(o->detail);
}

static int scrape_out_alloc(struct scrape_out *o, size_t sensors) {
  memset(o, 0, sizeof(*o));
  o->cap = sensors + 8;
  o->parsed = calloc(sensors + 1, sizeof(*o->parsed));
  o->rd = calloc(o->cap, sizeof(*o->rd));
  o->labels = calloc(o->cap, sizeof(*o->labels));
  o->lvalue = calloc(o->cap, sizeof(*o->lvalue));
  o->detail = calloc(o->cap, sizeof(*o->detail));
  if (!o->parsed || !o->rd || !o->labels || !o->lvalue || !o->detail) {
    scrape_out_free(o);
    return -ENOMEM;
  }
  return 0;
}

/* A new reading slot (o->n < o->cap is guaranteed by the sizes). */
static struct rp_reading *add(struct scrape_out *o, const char *name, const char *unit,
                              const char *label, const char *value) {
  struct rp_reading *r = &o->rd[o->n];
  memset(r, 0, sizeof(*r));
  r->name = name;
  r->unit = unit;
  r->decimals = unit_decimals(unit);
  if (label != NULL) {
    snprintf(o->lvalue[o->n], sizeof(o->lvalue[0]), "%s", value);
    o->labels[o->n] = (struct rp_label){label, o->lvalue[o->n]};
    r->labels = &o->labels[o->n];
    r->nlabels = 1;
  }
  o->n++;
  return r;
}

static bool seen_before(const struct scrape_out *o, const struct rp_reading *r) {
  for (size_t i = 0; i + 1 < o->n; i++) {
    const struct rp_reading *p = &o->rd[i];
    if (strcmp(p->name, r->name) == 0 && p->nlabels == r->nlabels &&
        (r->nlabels == 0 || (strcmp(p->labels[0].key, r->labels[0].key) == 0 &&
                             strcmp(p->labels[0].value, r->labels[0].value) == 0)))
      return true;
  }
  return false;
}

/* True when a sensors[] row without a metric silences this sensor
 * (ipmi_classify() reports that as no match). */
static bool ignored_by_config(const struct ipmi_bmc *b, const struct ipmi_reading *r) {
  for (size_t i = 0; i < b->npatterns; i++) {
    const struct ipmi_pattern *p = &b->patterns[i];
    if (p->metric == NULL && ipmi_glob_match(p->glob, r->name, strlen(r->name), NULL, NULL) &&
        (p->unit == NULL || strcmp(p->unit, r->unit) == 0) &&
        (p->entity == NULL || ipmi_glob_match(p->entity, r->entity, strlen(r->entity), NULL, NULL)))
      return true;
  }
  return false;
}

/* Sensor readings, classified. */
static void add_sensors(struct ipmi_bmc *b, struct scrape_out *o) {
  unsigned flags = b->cfg.default_sensors ? 0 : IPMI_CLASSIFY_NO_DEFAULTS;
  for (size_t i = 0; i < o->nparsed; i++) {
    const struct ipmi_reading *p = &o->parsed[i];
    struct ipmi_class cls;
    const char *metric, *label = NULL, *value = NULL, *unit = p->unit;
    if (ipmi_classify(p, b->patterns, b->npatterns, flags, &cls) == 1) {
      metric = cls.metric;
      label = cls.label;
      value = cls.label_value;
      /* A sensor without a reading keeps its series' unit. */
      if (p->status != IPMI_ST_OK && p->status != IPMI_ST_NC && p->status != IPMI_ST_CR &&
          p->status != IPMI_ST_NR)
        unit = cls.pattern->unit ? cls.pattern->unit : "";
    } else if (b->cfg.keep_unclassified && p->status != IPMI_ST_DISCRETE &&
               !ignored_by_config(b, p)) {
      metric = "ipmi.sensor";
      label = "sensor";
      value = p->name;
    } else {
      continue;
    }
    struct rp_reading *r = add(o, metric, unit, label, value);
    reading_status(p, r, o->detail[o->n - 1], sizeof(o->detail[0]));
    if (seen_before(o, r)) {
      rp_debug("ipmi", "%s: sensor '%s' maps to a series already read; skipped", b->cfg.name,
               p->name);
      o->n--;
    }
  }
}

/* server.power from DCMI or from the PSU sum. */
static void add_power(struct ipmi_bmc *b, struct scrape_out *o) {
  if (b->have_dcmi) {
    struct rp_reading *r = add(o, "server.power", "W", "source", "dcmi");
    r->decimals = 0;
    r->value = b->dcmi.instant_w;
    return;
  }
  unsigned flags = b->cfg.default_sensors ? 0 : IPMI_CLASSIFY_NO_DEFAULTS;
  unsigned expected = (unsigned)b->cfg.psus > b->psus_seen ? (unsigned)b->cfg.psus : b->psus_seen;
  struct ipmi_power_sum sum;
  if (ipmi_sum_psu_input(o->parsed, o->nparsed, b->patterns, b->npatterns, flags, expected, &sum) !=
      0)
    return;
  if (sum.used + sum.missing > b->psus_seen)
    b->psus_seen = sum.used + sum.missing;
  if (b->psus_seen == 0)
    return; /* no PSU sensors at all: nothing to say */
  struct rp_reading *r = add(o, "server.power", "W", "source", "psu_sum");
  char *d = o->detail[o->n - 1];
  r->detail = d;
  switch (sum.status) {
  case IPMI_SUM_COMPLETE: r->value = sum.watts; break;
  case IPMI_SUM_PARTIAL:
    r->status = RP_READING_ERROR;
    snprintf(d, sizeof(o->detail[0]), "partial PSU sum: %u of %u PSUs read, at least %.0f W%s%s",
             sum.used, sum.used + sum.missing, sum.watts, b->dcmi_note[0] ? "; " : "",
             b->dcmi_note);
    break;
  default:
    r->status = RP_READING_ABSENT;
    snprintf(d, sizeof(o->detail[0]), "no PSU input power reading%s%s", b->dcmi_note[0] ? "; " : "",
             b->dcmi_note);
    break;
  }
}

static void add_counters(struct ipmi_bmc *b, struct scrape_out *o) {
  struct ipmi_runner_stats s = {0};
  if (b->runner != NULL)
    ipmi_runner_get_stats(b->runner, &s);
  struct rp_reading *r = add(o, "ipmi.timeouts", "", NULL, NULL);
  r->decimals = 0;
  r->value = (double)s.timeouts;
  r = add(o, "ipmi.children", "", NULL, NULL);
  r->decimals = 0;
  r->value = (double)s.spawned;
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

static void finish_scrape(struct ipmi_bmc *b, bool ok) {
  struct scrape_out o;
  memset(&o, 0, sizeof(o));
  struct rp_scrape_result res = {.ts_ms = b->ts_ms, .ok = ok, .error = ok ? NULL : b->error};
  size_t lines = 0;
  for (size_t i = 0; ok && i < b->elist_len; i++)
    lines += b->elist[i] == '\n';
  if (scrape_out_alloc(&o, lines) == 0) {
    if (ok) {
      struct ipmi_parse_stats st;
      ipmi_parse_sensors(b->elist, b->elist_len, o.parsed, lines + 1, &o.nparsed, &st, NULL, 0);
      add_sensors(b, &o);
      add_power(b, &o);
    }
    add_counters(b, &o);
    res.readings = o.rd;
    res.nreadings = o.n;
  }
  free(b->elist);
  b->elist = NULL;
  b->elist_len = 0;
  rp_target_done(b->t, &res);
  scrape_out_free(&o);
  release_slot(b);
}

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
  if (b->runner == NULL) {
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
  if (b->runner != NULL && t->retired) {
    ipmi_runner_free(b->runner);
    b->runner = NULL;
  } else if (b->runner != NULL && t->agent != NULL) {
    shutdown_all(b->shared, t->agent->loop); /* a runner: b has scraped, so joined */
  }
  registry_remove(b);
  bmc_free(b);
  t->priv = NULL;
}

/* A reload keeps a BMC (and its open session) when nothing in its entry
 * changed. Both configs were filled from zeroed memory, so bytes compare. */
static bool ipmi_same_config(const struct rp_target *ta, const struct rp_target *tb) {
  const struct ipmi_bmc *a = ta->priv, *b = tb->priv;
  return memcmp(&a->cfg, &b->cfg, sizeof(a->cfg)) == 0 && a->npatterns == b->npatterns &&
         (a->npatterns == 0 || memcmp(a->ptext, b->ptext, a->npatterns * sizeof(*a->ptext)) == 0);
}

/* The agent closes: every BMC was destroyed (and left the list); any left
 * over lets go of the state rather than point into freed memory. */
static void ipmi_free_state(void *state) {
  struct ipmi_shared *sh = state;
  for (struct ipmi_bmc *b = sh->bmcs; b != NULL; b = b->next)
    b->shared = NULL;
  free(sh);
}

static void ipmi_help(FILE *out) {
  rp_cfg_print_help(out, "ipmi[]", bmc_fields, N(bmc_fields));
  fprintf(out, "  %-28s %-9s %s\n", "ipmi[].sensors", "list",
          "sensor name patterns, tried before the built-in ones:");
  rp_cfg_print_help(out, "ipmi[].sensors[]", pattern_fields, N(pattern_fields));
}

const struct rp_collector rp_collector_ipmi = {
    .name = "ipmi",
    .create = ipmi_create,
    .scrape = ipmi_scrape,
    .destroy = ipmi_destroy,
    .help = ipmi_help,
    .same_config = ipmi_same_config,
    .free_state = ipmi_free_state,
};
