/* The SNMP collector's configuration (the block is shown at the top of
 * snmp_collect.c): the field table of a PDU, its secrets (community, or
 * the v3 passphrases turned into keys at load time; read from files of
 * mode 0640 at most or from the environment, never from the YAML), the
 * profile it names, and the plan of what a scrape asks for. A device is
 * made and freed here (snmp__create, snmp__dev_free). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snmp_internal.h"

#define SNMP_DEFAULT_PROFILES_DIR "/usr/share/rackpulse/profiles"

#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct snmp_cfg D;

static const struct rp_cfg_field device_fields[] = {
    RP_CFG_STR("name", D, name, NULL, 1, "device name, unique in the agent"),
    RP_CFG_STR("host", D, host, NULL, 1, "address or name of the PDU"),
    RP_CFG_NUM("port", RP_CFG_INT, D, port, "161", 1, 65535, "UDP port"),
    RP_CFG_STR("version", D, version, "2c", 0, "SNMP version: 1, 2c or 3"),
    RP_CFG_STR("community_file", D, community_file, "", 0,
               "v1/v2c: file holding the community (mode 0600 or 0640)"),
    RP_CFG_STR("community_env", D, community_env, "", 0,
               "v1/v2c: or the agent's environment variable holding it"),
    RP_CFG_STR("user", D, user, "", 0, "v3: USM user name"),
    RP_CFG_STR("security_level", D, security_level, "authPriv", 0,
               "v3: authPriv, authNoPriv or noAuthNoPriv"),
    RP_CFG_STR("auth_protocol", D, auth_protocol, "SHA", 0,
               "v3: MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512"),
    RP_CFG_STR("auth_pass_file", D, auth_pass_file, "", 0,
               "v3: file holding the authentication passphrase (0600 or 0640)"),
    RP_CFG_STR("auth_pass_env", D, auth_pass_env, "", 0,
               "v3: or the environment variable holding it"),
    RP_CFG_STR("priv_protocol", D, priv_protocol, "AES", 0, "v3: AES (AES-128, RFC 3826) or DES"),
    RP_CFG_STR("priv_pass_file", D, priv_pass_file, "", 0,
               "v3: file holding the privacy passphrase (0600 or 0640)"),
    RP_CFG_STR("priv_pass_env", D, priv_pass_env, "", 0,
               "v3: or the environment variable holding it"),
    RP_CFG_STR("context", D, context, "", 0, "v3: context name"),
    RP_CFG_STR("profile", D, profile, NULL, 1,
               "device profile: <agent.profiles_dir>/snmp/NAME.yaml"),
    RP_CFG_NUM("max_repetitions", RP_CFG_INT, D, max_repetitions, "0", 0, 1000,
               "GETBULK max-repetitions (0: the profile's, else 20)"),
    RP_CFG_NUM("bulk", RP_CFG_BOOL, D, bulk, "true", 0, 0,
               "walk tables with GETBULK (false: GETNEXT; v1 always GETNEXT)"),
    RP_CFG_NUM("max_varbinds", RP_CFG_INT, D, max_varbinds, "32", 1, 256,
               "varbinds in one GET, columns in one GETBULK"),
    RP_CFG_NUM("timeout", RP_CFG_DURATION, D, timeout_ms, "1s", 0.01, 60,
               "wait for an answer to one request"),
    RP_CFG_NUM("retries", RP_CFG_INT, D, retries, "1", 0, 10, "retries of an unanswered request"),
    RP_CFG_NUM("interval", RP_CFG_DURATION, D, interval_ms, "0", 0, 3600,
               "scrape interval (0 = agent.interval)"),
};

/* Reads a secret from a file that is at most 0640: the first line, without
 * its line ending. */
static int read_secret_file(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                            const char *key, const char *path, u_char *out, size_t cap, size_t *len,
                            char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    rp_cfg_error(doc, node, where, err, errlen, "%s: %s: %s", key, path, strerror(errno));
    return -EINVAL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rp_cfg_error(doc, node, where, err, errlen, "%s: %s is not a regular file", key, path);
    close(fd);
    return -EINVAL;
  }
  if ((st.st_mode & 0137) != 0) {
    rp_cfg_error(doc, node, where, err, errlen,
                 "%s: %s has mode %04o: a secret must not be readable by others nor writable "
                 "by its group (at most 0640; chmod 0600 %s)",
                 key, path, (unsigned)(st.st_mode & 07777), path);
    close(fd);
    return -EACCES;
  }
  char buf[SNMP_SECRET_MAX + 2];
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n < 0) {
    rp_cfg_error(doc, node, where, err, errlen, "%s: %s: %s", key, path, strerror(errno));
    return -EINVAL;
  }
  size_t m = 0;
  while (m < (size_t)n && buf[m] != '\n' && buf[m] != '\r')
    m++;
  if (m == 0 || m > cap) {
    explicit_bzero(buf, sizeof(buf));
    rp_cfg_error(doc, node, where, err, errlen, "%s: %s: %s", key, path,
                 m == 0 ? "empty (the secret is its first line)" : "longer than 255 bytes");
    return -EINVAL;
  }
  memcpy(out, buf, m);
  *len = m;
  explicit_bzero(buf, sizeof(buf));
  return 0;
}

/* The secret named by KEY_file or KEY_env (exactly one). */
static int load_secret(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                       const char *what, const char *file_key, const char *file,
                       const char *env_key, const char *env, u_char *out, size_t cap, size_t *len,
                       char *err, size_t errlen) {
  bool f = file[0] != '\0', e = env[0] != '\0';
  if (f == e) {
    rp_cfg_error(doc, node, where, err, errlen,
                 "%s or %s: exactly one is required for the %s (secrets never go in this "
                 "file)",
                 file_key, env_key, what);
    return -EINVAL;
  }
  if (f)
    return read_secret_file(doc, rp_cfg_get(doc, node, file_key), where, file_key, file, out, cap,
                            len, err, errlen);
  const char *v = getenv(env);
  if (v == NULL || v[0] == '\0') {
    rp_cfg_error(doc, rp_cfg_get(doc, node, env_key), where, err, errlen,
                 "%s: the environment variable %s is not set", env_key, env);
    return -EINVAL;
  }
  size_t n = strlen(v);
  if (n > cap) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, env_key), where, err, errlen,
                 "%s: the value of %s is longer than %zu bytes", env_key, env, cap);
    return -EINVAL;
  }
  memcpy(out, v, n);
  *len = n;
  return 0;
}

struct proto_name {
  const char *name;
  const oid *oid;
};

const oid *snmp__auth_proto(const char *name) {
  const struct proto_name t[] = {
      {"MD5", usmHMACMD5AuthProtocol},           {"SHA", usmHMACSHA1AuthProtocol},
      {"SHA-224", usmHMAC128SHA224AuthProtocol}, {"SHA-256", usmHMAC192SHA256AuthProtocol},
      {"SHA-384", usmHMAC256SHA384AuthProtocol}, {"SHA-512", usmHMAC384SHA512AuthProtocol},
  };
  for (size_t i = 0; i < N(t); i++)
    if (strcasecmp(name, t[i].name) == 0)
      return t[i].oid;
  return NULL;
}

const oid *snmp__priv_proto(const char *name) {
  const struct proto_name t[] = {
      {"AES", usmAESPrivProtocol},
      {"AES-128", usmAESPrivProtocol},
      {"DES", usmDESPrivProtocol},
  };
  for (size_t i = 0; i < N(t); i++)
    if (strcasecmp(name, t[i].name) == 0)
      return t[i].oid;
  return NULL;
}

int snmp__sec_level(const char *s) {
  if (strcmp(s, "authPriv") == 0)
    return SNMP_SEC_LEVEL_AUTHPRIV;
  if (strcmp(s, "authNoPriv") == 0)
    return SNMP_SEC_LEVEL_AUTHNOPRIV;
  if (strcmp(s, "noAuthNoPriv") == 0)
    return SNMP_SEC_LEVEL_NOAUTH;
  return -1;
}

/* A v3 passphrase to its key Ku (RFC 3414 password-to-key). */
static int passphrase_key(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                          const char *what, const char *file_key, const char *file,
                          const char *env_key, const char *env, const oid *hash, u_char *ku,
                          size_t *kulen, char *err, size_t errlen) {
  u_char pass[SNMP_SECRET_MAX];
  size_t len = 0;
  int rc = load_secret(doc, node, where, what, file_key, file, env_key, env, pass, sizeof(pass),
                       &len, err, errlen);
  if (rc != 0)
    return rc;
  if (len < USM_LENGTH_P_MIN) {
    explicit_bzero(pass, sizeof(pass));
    rp_cfg_error(doc, rp_cfg_get(doc, node, file[0] ? file_key : env_key), where, err, errlen,
                 "%s: a v3 passphrase has at least %d characters", file[0] ? file_key : env_key,
                 USM_LENGTH_P_MIN);
    return -EINVAL;
  }
  *kulen = USM_AUTH_KU_LEN;
  rc = generate_Ku(hash, USM_AUTH_PROTO_SHA_LEN, pass, len, ku, kulen);
  explicit_bzero(pass, sizeof(pass));
  if (rc != SNMPERR_SUCCESS) {
    rp_cfg_error(doc, node, where, err, errlen, "%s: cannot derive the key: %s", what,
                 snmp_api_errstring(rc));
    return -EINVAL;
  }
  return 0;
}

static int load_credentials(struct snmp_dev *d, const struct rp_cfg_doc *doc, rp_cfg_node node,
                            const char *where, char *err, size_t errlen) {
  D *c = &d->cfg;
  if (strcmp(c->version, "1") == 0 || strcmp(c->version, "2c") == 0)
    return load_secret(doc, node, where, "community", "community_file", c->community_file,
                       "community_env", c->community_env, d->sec.community,
                       sizeof(d->sec.community), &d->sec.community_len, err, errlen);
  if (strcmp(c->version, "3") != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "version"), where, err, errlen,
                 "version: '%s' is not 1, 2c or 3", c->version);
    return -EINVAL;
  }
  if (c->user[0] == '\0') {
    rp_cfg_error(doc, node, where, err, errlen, "user: required for version 3");
    return -EINVAL;
  }
  int level = snmp__sec_level(c->security_level);
  if (level < 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "security_level"), where, err, errlen,
                 "security_level: '%s' is not authPriv, authNoPriv or noAuthNoPriv",
                 c->security_level);
    return -EINVAL;
  }
  const oid *ap = snmp__auth_proto(c->auth_protocol);
  if (ap == NULL) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "auth_protocol"), where, err, errlen,
                 "auth_protocol: '%s' is not MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512",
                 c->auth_protocol);
    return -EINVAL;
  }
  if (snmp__priv_proto(c->priv_protocol) == NULL) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "priv_protocol"), where, err, errlen,
                 "priv_protocol: '%s' is not AES or DES (the AES-192/256 key extensions "
                 "are not supported)",
                 c->priv_protocol);
    return -EINVAL;
  }
  int rc = 0;
  if (level != SNMP_SEC_LEVEL_NOAUTH)
    rc = passphrase_key(doc, node, where, "authentication passphrase", "auth_pass_file",
                        c->auth_pass_file, "auth_pass_env", c->auth_pass_env, ap, d->sec.auth_ku,
                        &d->sec.auth_ku_len, err, errlen);
  if (rc == 0 && level == SNMP_SEC_LEVEL_AUTHPRIV)
    rc = passphrase_key(doc, node, where, "privacy passphrase", "priv_pass_file", c->priv_pass_file,
                        "priv_pass_env", c->priv_pass_env, ap, d->sec.priv_ku, &d->sec.priv_ku_len,
                        err, errlen);
  return rc;
}

/* Scalars: sysUpTime.0 first, then the profile's scalar metrics. */
static int plan_scalars(struct snmp_dev *d) {
  size_t n = 1;
  for (size_t i = 0; i < d->prof.nmetrics; i++)
    n += d->prof.metrics[i].table < 0;
  d->scalar_oids = calloc(n, sizeof(*d->scalar_oids));
  d->scalar_metric = calloc(n, sizeof(*d->scalar_metric));
  d->scalar_vals = calloc(n, sizeof(*d->scalar_vals));
  d->scalar_why = calloc(n, sizeof(*d->scalar_why));
  d->pending = calloc(n, sizeof(*d->pending));
  d->prev = calloc(d->prof.nmetrics + 1, sizeof(*d->prev));
  d->table_cells = calloc(2 * (d->prof.ntables + 1), sizeof(*d->table_cells));
  d->walk = calloc(d->prof.ntables + 1, sizeof(*d->walk));
  if (!d->scalar_oids || !d->scalar_metric || !d->scalar_vals || !d->scalar_why || !d->pending ||
      !d->prev || !d->table_cells || !d->walk)
    return -ENOMEM;
  snmp_oid_parse("1.3.6.1.2.1.1.3.0", &d->scalar_oids[0]);
  d->scalar_metric[0] = -1;
  size_t k = 1;
  for (size_t i = 0; i < d->prof.nmetrics; i++) {
    if (d->prof.metrics[i].table >= 0)
      continue;
    d->scalar_oids[k] = d->prof.metrics[i].oid;
    d->scalar_metric[k] = (int)i;
    k++;
  }
  d->nscalars = n;
  return 0;
}

int snmp__create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                 const char *where, char *err, size_t errlen) {
  struct snmp_dev *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -ENOMEM;
  snmp__lib_ref();
  int rc =
      rp_cfg_apply(doc, node, where, device_fields, N(device_fields), NULL, &d->cfg, err, errlen);
  if (rc == 0)
    rc = load_credentials(d, doc, node, where, err, errlen);
  if (rc != 0)
    goto fail;
  const char *dir = rp_agent_profiles_dir();
  if (dir == NULL || dir[0] == '\0')
    dir = SNMP_DEFAULT_PROFILES_DIR;
  char why[768];
  if ((rc = snmp_profile_load(dir, d->cfg.profile, &d->prof, why, sizeof(why))) != 0) {
    char pwhere[96];
    snprintf(pwhere, sizeof(pwhere), "%s.profile", where);
    rp_cfg_error(doc, rp_cfg_get(doc, node, "profile"), pwhere, err, errlen, "%s", why);
    goto fail;
  }
  if (d->cfg.max_repetitions == 0)
    d->cfg.max_repetitions = d->prof.has_max_repetitions ? d->prof.max_repetitions : 20;
  if ((rc = plan_scalars(d)) != 0) {
    snprintf(err, errlen, "%s: out of memory", where);
    goto fail;
  }
  snprintf(d->address, sizeof(d->address), "%s:%lld", d->cfg.host, (long long)d->cfg.port);
  d->use_getnext = !d->cfg.bulk || strcmp(d->cfg.version, "1") == 0;
  d->said_getnext = true;
  d->vb_limit = (int)d->cfg.max_varbinds;
  snprintf(t->name, sizeof(t->name), "%s", d->cfg.name);
  t->interval_ms = d->cfg.interval_ms;
  d->t = t;
  t->priv = d;
  return 0;
fail:
  snmp__dev_free(d);
  return rc;
}

void snmp__dev_free(struct snmp_dev *d) {
  if (d == NULL)
    return;
  snmp__usm_owner_drop(d);
  if (d->io != NULL) {
    snmp__io_close(d->io);
    d->io = NULL;
  }
  if (d->prev != NULL)
    for (size_t i = 0; i < d->prof.nmetrics + 1; i++)
      free(d->prev[i].rows);
  free(d->prev);
  snmp_profile_free(&d->prof);
  free(d->scalar_oids);
  free(d->scalar_metric);
  free(d->scalar_vals);
  free(d->scalar_why);
  free(d->pending);
  free(d->cells);
  free(d->table_cells);
  free(d->walk);
  free(d->ctrs);
  free(d->readings);
  free(d->outs);
  explicit_bzero(&d->sec, sizeof(d->sec));
  free(d);
  snmp__lib_unref();
}

/* A reload keeps a device whose settings, secrets and profile are unchanged. */
bool snmp__same_config(const struct rp_target *a, const struct rp_target *b) {
  const struct snmp_dev *x = a->priv, *y = b->priv;
  const struct snmp_profile *p = &x->prof, *q = &y->prof;
  return memcmp(&x->cfg, &y->cfg, sizeof(x->cfg)) == 0 &&
         memcmp(&x->sec, &y->sec, sizeof(x->sec)) == 0 && p->nmetrics == q->nmetrics &&
         p->ntables == q->ntables &&
         memcmp(p->metrics, q->metrics, p->nmetrics * sizeof(*p->metrics)) == 0 &&
         (p->ntables == 0 || memcmp(p->tables, q->tables, p->ntables * sizeof(*p->tables)) == 0);
}

void snmp__config_help(FILE *out) {
  rp_cfg_print_help(out, "snmp[]", device_fields, N(device_fields));
  snmp_profile_help(out);
}
