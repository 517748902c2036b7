/* The IPMI collector's configuration (the block is shown at the top of
 * ipmi_collect.c): the field tables of a BMC and of its sensors[] patterns,
 * the checks that name file:line (interface, session, privilege, the
 * ipmitool binary, password file modes; passwords never reach argv), and
 * the ipmitool options built once per BMC. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipmi_internal.h"

#define IPMI_MAX_PATTERNS 128

#define N(a) (sizeof(a) / sizeof((a)[0]))

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
    RP_CFG_STR("backend", D, backend, "ipmitool", 0,
               "ipmitool (children; lanplus and open) or freeipmi (in process, lanplus only)"),
    RP_CFG_STR("workarounds", D, workarounds, "", 0,
               "freeipmi: FreeIPMI's workarounds, e.g. opensesspriv (ipmi_sim needs it)"),
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

void ipmi__bmc_free(struct ipmi_bmc *b) {
  if (b == NULL)
    return;
  ipmi__fi_release(b, NULL);
  free(b->ptext);
  free(b->patterns);
  free(b->elist);
  free(b);
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
  if (strcmp(c->backend, "freeipmi") != 0 && c->retry_interval_ms % 1000 != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "retry_interval"), where, err, errlen,
                 "retry_interval: ipmitool -N takes whole seconds");
    return -EINVAL;
  }
  bool fi = strcmp(c->backend, "freeipmi") == 0;
  if (!fi && strcmp(c->backend, "ipmitool") != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "backend"), where, err, errlen,
                 "backend: '%s' is not ipmitool or freeipmi", c->backend);
    return -EINVAL;
  }
  if (fi && !lan) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "backend"), where, err, errlen,
                 "backend: freeipmi reads lanplus BMCs only; use ipmitool for interface open");
    return -EINVAL;
  }
  if (!fi && c->workarounds[0] != '\0') {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "workarounds"), where, err, errlen,
                 "workarounds: only for backend freeipmi");
    return -EINVAL;
  }
  if (!fi && !find_executable(c->ipmitool_path)) {
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

int ipmi__create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
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
  char why[200];
  if (rc == 0 && ipmi__fi_workarounds(b->cfg.workarounds, &b->fi_workarounds, why, sizeof(why))) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "workarounds"), where, err, errlen, "workarounds: %s",
                 why);
    rc = -EINVAL;
  }
  if (rc != 0) {
    if (rc == -ENOMEM)
      snprintf(err, errlen, "%s: out of memory", where);
    ipmi__bmc_free(b);
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

/* A reload keeps a BMC (and its open session) when nothing in its entry
 * changed. Both configs were filled from zeroed memory, so bytes compare. */
bool ipmi__same_config(const struct rp_target *ta, const struct rp_target *tb) {
  const struct ipmi_bmc *a = ta->priv, *b = tb->priv;
  return memcmp(&a->cfg, &b->cfg, sizeof(a->cfg)) == 0 && a->npatterns == b->npatterns &&
         (a->npatterns == 0 || memcmp(a->ptext, b->ptext, a->npatterns * sizeof(*a->ptext)) == 0);
}

void ipmi__config_help(FILE *out) {
  rp_cfg_print_help(out, "ipmi[]", bmc_fields, N(bmc_fields));
  fprintf(out, "  %-28s %-9s %s\n", "ipmi[].sensors", "list",
          "sensor name patterns, tried before the built-in ones:");
  rp_cfg_print_help(out, "ipmi[].sensors[]", pattern_fields, N(pattern_fields));
}
