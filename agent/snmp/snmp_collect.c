/* The SNMP collector: rack PDUs read with net-snmp's asynchronous
 * single-session API, every session's socket watched by the agent's libuv
 * loop.
 *
 *   agent:
 *     profiles_dir: /usr/share/rackpulse/profiles   # holds snmp/NAME.yaml
 *   snmp:
 *     - name: pdu-a
 *       host: 10.0.6.10           # an address, or a name (resolved with uv_getaddrinfo)
 *       port: 161
 *       version: 2c               # 1, 2c or 3
 *       community_file: /etc/rackpulse/pdu.community   # mode 0600 or 0640; or
 *       # community_env: PDU_COMMUNITY                 # the agent's environment
 *       profile: raritan-px       # <agent.profiles_dir>/snmp/raritan-px.yaml
 *       timeout: 1s               # per request, then `retries` more tries
 *       retries: 1
 *       max_repetitions: 20       # GETBULK (default: the profile's, else 20)
 *       bulk: true                # false: walk with GETNEXT (old or broken agents)
 *       max_varbinds: 32          # varbinds in one GET / columns in one GETBULK
 *       interval: 0               # 0 = agent.interval
 *
 *     - name: pdu-b               # SNMPv3, USM
 *       host: 10.0.6.11
 *       version: 3
 *       user: rackpulse
 *       security_level: authPriv  # authPriv, authNoPriv or noAuthNoPriv
 *       auth_protocol: SHA        # MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
 *       auth_pass_file: /etc/rackpulse/pdu.auth       # or auth_pass_env
 *       priv_protocol: AES        # AES (AES-128, RFC 3826) or DES
 *       priv_pass_file: /etc/rackpulse/pdu.priv       # or priv_pass_env
 *       context: ""
 *       profile: apc-rpdu2
 *
 * Secrets (community, passphrases) are read when the configuration is
 * loaded, from a file that is neither group-writable nor readable by others
 * (at most 0640) or from an environment variable; never from the YAML, never
 * logged, never in frames. v3 passphrases become keys (Ku) at load time.
 *
 * A scrape is a sequence of requests with one in flight per device (PDUs
 * are small embedded agents), devices in parallel:
 *   1. v3 only, when the engine ID is not known yet: an engine-ID discovery
 *      probe sent asynchronously (net-snmp's own probe would block the loop
 *      in snmp_sess_synch_response, so the session has SNMP_FLAGS_DONT_PROBE);
 *   2. one GET with sysUpTime.0 and every scalar of the profile (split only
 *      above max_varbinds, or when the agent answers tooBig);
 *   3. each table of the profile walked as a column group: one GETBULK with a
 *      varbind per column still walking, until every column has left its
 *      subtree or hit endOfMibView. With `bulk: false`, with v1, or after an
 *      agent answered a GETBULK with genErr or noSuchName, GETNEXT instead
 *      (for the rest of the agent's life). v1 ends a column with noSuchName.
 * A request that gets no answer within timeout × (retries + 1) ends the
 * scrape: the device is down with that reason. Everything else is a status
 * on the readings concerned, naming the device and the OID: exceptions
 * (noSuchObject, noSuchInstance, endOfMibView), wrong types, the profile's
 * "not supported" values, error-status answers, rows that the walk did not
 * return although their decimal digits (or the previous scrape) had them.
 *
 * Energy counters are monotonic series (the rule is in snmp_value.h);
 * sysUpTime going back marks a device restart.
 *
 * Lifetimes: a device's session, its uv_poll_t and its uv_timer_t live in
 * one heap block (struct snmp_io), opened at the first scrape and freed in
 * the handles' close callbacks. The handles hold the loop only while a
 * scrape is in flight (uv_ref), so the agent's shutdown is not held up by
 * idle sessions. net-snmp is initialised by the first device created and
 * shut down when the last one is destroyed. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>

#include "agent.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"
#include "snmp_profile.h"
#include "snmp_value.h"

#define SNMP_DEFAULT_PROFILES_DIR "/usr/share/rackpulse/profiles"
#define SNMP_IDX_MAX 16      /* row index components kept; longer rows are skipped */
#define SNMP_MAX_CELLS 20000 /* values one scrape may walk */
#define SNMP_SECRET_MAX 256
#define SNMP_DETAIL_MAX 240

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct snmp_cfg {
  char name[64];
  char host[256];
  int64_t port;
  char version[8];
  char community_file[256], community_env[128];
  char user[64];
  char security_level[16];
  char auth_protocol[16], auth_pass_file[256], auth_pass_env[128];
  char priv_protocol[16], priv_pass_file[256], priv_pass_env[128];
  char context[64];
  char profile[SNMP_PROFILE_NAME_MAX];
  int64_t max_repetitions, max_varbinds;
  bool bulk;
  int64_t timeout_ms, retries, interval_ms;
};

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

/* Keys and community, derived at load time. Zeroed before they are freed. */
struct snmp_secret {
  u_char community[SNMP_SECRET_MAX];
  size_t community_len;
  u_char auth_ku[USM_AUTH_KU_LEN];
  size_t auth_ku_len;
  u_char priv_ku[USM_PRIV_KU_LEN];
  size_t priv_ku_len;
};

/* One value a walk returned. */
struct snmp_cell {
  uint8_t col;
  uint8_t idxlen;
  uint32_t idx[SNMP_IDX_MAX];
  struct snmp_value v;
};

enum col_end { END_NONE, END_LEFT, END_EOMV, END_V1_END, END_LOOP, END_ERROR, END_TOO_MANY };

struct walk_col {
  struct snmp_oid last;
  bool done;
  enum col_end end;
  char why[96]; /* END_ERROR: the error-status text */
  struct snmp_oid end_oid;
  uint32_t rows;
};

/* A counter series' state, per metric and row. */
struct ctr_state {
  int metric;
  uint8_t idxlen;
  uint32_t idx[SNMP_IDX_MAX];
  struct snmp_counter c;
  bool seen;
};

/* Rows a table metric reported at its previous scrape. */
struct row_key {
  uint8_t len;
  uint32_t idx[SNMP_IDX_MAX];
};
struct prev_rows {
  struct row_key *rows;
  size_t n, cap;
};

/* Storage behind one reading handed to rp_target_done(). */
struct snmp_out {
  struct rp_label labels[SNMP_MAX_LABELS];
  char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
  char detail[SNMP_DETAIL_MAX];
};

struct snmp_dev;

/* A session and the handles that watch it; freed when both are closed. */
struct snmp_io {
  uv_poll_t poll;
  uv_timer_t timer;
  void *sessp;
  struct snmp_dev *dev; /* NULL once the device let go */
  netsnmp_large_fd_set fds;
  int open_handles;
  bool polling;
  bool *closed; /* set true by the last close callback when someone waits */
};

enum phase { PH_IDLE, PH_RESOLVE, PH_PROBE, PH_SCALARS, PH_TABLES };

struct snmp_dev {
  struct snmp_cfg cfg;
  struct snmp_profile prof;
  struct snmp_secret sec;
  char address[300]; /* "host:port", for messages */
  char ip[64];       /* numeric address once resolved */
  int family;
  uv_loop_t *loop;
  struct rp_target *t;
  struct snmp_io *io;
  uv_getaddrinfo_t resolve;
  /* A scrape. */
  enum phase ph;
  int64_t ts_ms;
  int reqid;      /* the request in flight, 0 none */
  bool responded; /* a response (or a timeout) waits to be acted on */
  bool failed;    /* the device failed: `error` says why */
  char error[320];
  bool use_getnext; /* sticky: GETBULK refused, or bulk: false, or v1 */
  int max_rep;      /* GETBULK max-repetitions, halved on tooBig */
  int vb_limit;     /* varbinds per request, halved on tooBig */
  /* Scalars: [0] is sysUpTime.0, then the profile's scalar metrics. */
  struct snmp_oid *scalar_oids;
  int *scalar_metric; /* metric index, -1 for sysUpTime */
  struct snmp_value *scalar_vals;
  char (*scalar_why)[96];
  size_t nscalars, scalar_next;
  size_t *pending; /* scalars in the GET in flight */
  size_t npending;
  /* Tables. */
  size_t table;
  struct walk_col (*walk)[SNMP_MAX_COLUMNS]; /* per table: how each column's walk ended */
  struct walk_col *cols;                     /* the current table's row of walk */
  int active[SNMP_MAX_COLUMNS];
  size_t nactive;
  size_t table_first_cell;
  struct snmp_cell *cells;
  size_t ncells, capcells;
  size_t *table_cells; /* per table: [first, end) into cells */
  /* Across scrapes. */
  bool have_uptime;
  uint32_t uptime;
  struct ctr_state *ctrs;
  size_t nctrs, capctrs;
  struct prev_rows *prev; /* per metric */
  bool said_getnext;
  /* Readings of the scrape being reported. */
  struct rp_reading *readings;
  struct snmp_out *outs;
  size_t nout, capout;
};

/* Devices alive, for init_snmp()/snmp_shutdown(). File-scope on purpose:
 * net-snmp's library state (its configuration, MIB tree, USM user list and
 * log handlers) is the process's, not a device's or an agent's, so it is
 * initialised once for every device of every agent in the process and
 * shut down with the last one. */
static unsigned snmp_users;

static int on_snmp_log(int major, int minor, void *server, void *client) {
  (void)major, (void)minor, (void)client;
  const struct snmp_log_message *m = server;
  if (m == NULL || m->msg == NULL)
    return 0;
  char line[512];
  snprintf(line, sizeof(line), "%s", m->msg);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  if (n > 0)
    rp_log(m->priority <= LOG_ERR ? RP_LOG_WARN : RP_LOG_DEBUG, "snmp", "net-snmp: %s", line);
  return 0;
}

static void snmp_lib_ref(void) {
  if (snmp_users++ > 0)
    return;
  /* Numeric OIDs only: no MIB files are read, no config or persistent
   * files either (a stray ~/.snmp/snmp.conf must not change behaviour). */
  setenv("MIBS", "", 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_NO_TOKEN_WARNINGS, 1);
  netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
  snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, on_snmp_log, NULL);
  init_snmp("rackpulse");
}

static void snmp_lib_unref(void) {
  if (snmp_users == 0 || --snmp_users > 0)
    return;
  snmp_shutdown("rackpulse");
  snmp_unregister_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, on_snmp_log, NULL, 1);
  snmp_disable_log();
}

/* --- configuration ------------------------------------------------------ */

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

static const oid *auth_proto(const char *name) {
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

static const oid *priv_proto(const char *name) {
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

static int sec_level(const char *s) {
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
  int level = sec_level(c->security_level);
  if (level < 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "security_level"), where, err, errlen,
                 "security_level: '%s' is not authPriv, authNoPriv or noAuthNoPriv",
                 c->security_level);
    return -EINVAL;
  }
  const oid *ap = auth_proto(c->auth_protocol);
  if (ap == NULL) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "auth_protocol"), where, err, errlen,
                 "auth_protocol: '%s' is not MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512",
                 c->auth_protocol);
    return -EINVAL;
  }
  if (priv_proto(c->priv_protocol) == NULL) {
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

static void dev_free(struct snmp_dev *d);

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

static int snmp_create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                       const char *where, char *err, size_t errlen) {
  struct snmp_dev *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -ENOMEM;
  snmp_lib_ref();
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
  snprintf(t->name, sizeof(t->name), "%s", d->cfg.name);
  t->interval_ms = d->cfg.interval_ms;
  d->use_getnext = !d->cfg.bulk || strcmp(d->cfg.version, "1") == 0;
  d->said_getnext = true;
  d->vb_limit = (int)d->cfg.max_varbinds;
  d->t = t;
  t->priv = d;
  return 0;
fail:
  dev_free(d);
  return rc;
}

/* --- sessions and handles ----------------------------------------------- */

static void on_io_closed(uv_handle_t *h) {
  struct snmp_io *io = h->data;
  if (--io->open_handles > 0)
    return;
  netsnmp_large_fd_set_cleanup(&io->fds);
  if (io->closed != NULL)
    *io->closed = true;
  free(io);
}

/* Closes the session now and the handles asynchronously; io is freed by
 * the last close callback. */
static void io_close(struct snmp_io *io) {
  io->dev = NULL;
  if (io->polling)
    uv_poll_stop(&io->poll);
  uv_timer_stop(&io->timer);
  io->open_handles = 1;
  uv_close((uv_handle_t *)&io->timer, on_io_closed);
  if (io->sessp != NULL) {
    io->open_handles++;
    uv_close((uv_handle_t *)&io->poll, on_io_closed); /* before the fd is closed */
    snmp_sess_close(io->sessp);
    io->sessp = NULL;
  }
}

static void io_hold_loop(struct snmp_io *io, bool hold) {
  if (io == NULL)
    return;
  if (hold) {
    uv_ref((uv_handle_t *)&io->timer);
    if (io->sessp)
      uv_ref((uv_handle_t *)&io->poll);
  } else {
    uv_unref((uv_handle_t *)&io->timer);
    if (io->sessp)
      uv_unref((uv_handle_t *)&io->poll);
  }
}

static void usm_owner_drop(struct snmp_dev *d);

static void dev_free(struct snmp_dev *d) {
  if (d == NULL)
    return;
  usm_owner_drop(d);
  if (d->io != NULL) {
    io_close(d->io);
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
  snmp_lib_unref();
}

static void snmp_destroy(struct rp_target *t) {
  struct snmp_dev *d = t->priv;
  if (d == NULL)
    return;
  uv_loop_t *loop = d->loop;
  bool in_loop = t->retired; /* retired targets are destroyed from a close callback */
  t->priv = NULL;
  /* net-snmp may be shut down below: close the session first. Outside the
   * loop (agent shutdown) nobody would run the close callbacks: run them
   * now, so no handle outlives its memory. */
  bool closed = true;
  if (d->io != NULL) {
    if (loop != NULL && !in_loop) {
      closed = false;
      d->io->closed = &closed;
    }
    io_close(d->io);
    d->io = NULL;
  }
  while (!closed)
    uv_run(loop, UV_RUN_NOWAIT);
  dev_free(d);
}

static void on_readable(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *h);
static void step(struct snmp_dev *d);
static void finish(struct snmp_dev *d);

static void fail(struct snmp_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct snmp_dev *d, const char *fmt, ...) {
  if (d->failed)
    return;
  d->failed = true;
  int n = snprintf(d->error, sizeof(d->error), "%s: %s: ", d->cfg.name, d->address);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof(d->error))
    vsnprintf(d->error + n, sizeof(d->error) - (size_t)n, fmt, ap);
  va_end(ap);
}

/* The session's error, as text (net-snmp allocates it). */
static void session_error(void *sessp, netsnmp_session *s, char *buf, size_t len) {
  char *text = NULL;
  int clib = 0, snmperr = 0;
  if (sessp != NULL)
    snmp_sess_error(sessp, &clib, &snmperr, &text);
  else if (s != NULL)
    snmp_error(s, &clib, &snmperr, &text);
  snprintf(buf, len, "%s", text ? text : "unknown error");
  free(text);
}

static int open_session(struct snmp_dev *d) {
  netsnmp_session s;
  snmp_sess_init(&s);
  char peer[128];
  if (d->family == AF_INET6)
    snprintf(peer, sizeof(peer), "udp6:[%s]:%lld", d->ip, (long long)d->cfg.port);
  else
    snprintf(peer, sizeof(peer), "udp:%s:%lld", d->ip, (long long)d->cfg.port);
  s.peername = peer;
  s.timeout = (long)d->cfg.timeout_ms * 1000L;
  s.retries = (int)d->cfg.retries;
  if (strcmp(d->cfg.version, "1") == 0 || strcmp(d->cfg.version, "2c") == 0) {
    s.version = d->cfg.version[0] == '1' ? SNMP_VERSION_1 : SNMP_VERSION_2c;
    s.community = d->sec.community;
    s.community_len = d->sec.community_len;
  } else {
    s.version = SNMP_VERSION_3;
    s.securityModel = SNMP_SEC_MODEL_USM;
    s.securityName = d->cfg.user;
    s.securityNameLen = strlen(d->cfg.user);
    s.securityLevel = sec_level(d->cfg.security_level);
    s.contextName = d->cfg.context;
    s.contextNameLen = strlen(d->cfg.context);
    s.securityAuthProto = (oid *)auth_proto(d->cfg.auth_protocol);
    s.securityAuthProtoLen = USM_AUTH_PROTO_SHA_LEN;
    s.securityPrivProto = (oid *)priv_proto(d->cfg.priv_protocol);
    s.securityPrivProtoLen = USM_PRIV_PROTO_AES_LEN;
    memcpy(s.securityAuthKey, d->sec.auth_ku, d->sec.auth_ku_len);
    s.securityAuthKeyLen = d->sec.auth_ku_len;
    memcpy(s.securityPrivKey, d->sec.priv_ku, d->sec.priv_ku_len);
    s.securityPrivKeyLen = d->sec.priv_ku_len;
    /* Discovery is ours, asynchronous: see the top of this file. */
    s.flags |= SNMP_FLAGS_DONT_PROBE;
  }
  void *sessp = snmp_sess_open(&s);
  explicit_bzero(s.securityAuthKey, sizeof(s.securityAuthKey));
  explicit_bzero(s.securityPrivKey, sizeof(s.securityPrivKey));
  if (sessp == NULL) {
    char why[200];
    session_error(NULL, &s, why, sizeof(why));
    fail(d, "cannot open an SNMP session: %s", why);
    return -EIO;
  }
  netsnmp_transport *tr = snmp_sess_transport(sessp);
  if (tr == NULL || tr->sock < 0) {
    snmp_sess_close(sessp);
    fail(d, "cannot open an SNMP session: no socket");
    return -EIO;
  }
  struct snmp_io *io = d->io;
  int rc = uv_poll_init(d->loop, &io->poll, tr->sock);
  if (rc != 0) {
    snmp_sess_close(sessp);
    fail(d, "cannot watch the session's socket: %s", uv_strerror(rc));
    return rc;
  }
  io->poll.data = io;
  io->sessp = sessp;
  uv_poll_start(&io->poll, UV_READABLE, on_readable);
  io->polling = true;
  return 0;
}

/* Re-arms the timer for the session's next retransmission or timeout.
 * When net-snmp holds no request although one of ours is in flight (it
 * dropped it without calling back), a deadline of timeout x tries ends it. */
static void rearm(struct snmp_io *io) {
  if (io->sessp == NULL)
    return;
  int numfds = 0, block = 1;
  struct timeval tv = {0, 0};
  snmp_sess_select_info2(io->sessp, &numfds, &io->fds, &tv, &block);
  struct snmp_dev *d = io->dev;
  if (block && d != NULL && d->reqid != 0) {
    uv_timer_start(&io->timer, on_timer, (uint64_t)(d->cfg.timeout_ms * (d->cfg.retries + 1)), 0);
    return;
  }
  if (block) {
    uv_timer_stop(&io->timer);
    return;
  }
  uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec + 999) / 1000;
  uv_timer_start(&io->timer, on_timer, ms, 0);
}

/* After net-snmp ran our callback: act on the response, re-arm the timer. */
static void after_io(struct snmp_io *io) {
  struct snmp_dev *d = io->dev;
  if (d != NULL && d->responded) {
    d->responded = false;
    step(d);
  }
  if (io->dev != NULL) /* finish() may have let go of io (never today) */
    rearm(io);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)status, (void)events;
  struct snmp_io *io = h->data;
  if (io->sessp == NULL)
    return;
  netsnmp_transport *tr = snmp_sess_transport(io->sessp);
  if (tr == NULL || tr->sock < 0)
    return;
  /* The set only ever holds this session's socket. */
  netsnmp_large_fd_setfd(tr->sock, &io->fds);
  snmp_sess_read2(io->sessp, &io->fds);
  after_io(io);
}

static void on_timer(uv_timer_t *h) {
  struct snmp_io *io = h->data;
  if (io->sessp != NULL)
    snmp_sess_timeout(io->sessp);
  struct snmp_dev *d = io->dev;
  if (d != NULL && d->reqid != 0 && !d->responded && io->sessp != NULL) {
    int numfds = 0, block = 1;
    struct timeval tv = {0, 0};
    snmp_sess_select_info2(io->sessp, &numfds, &io->fds, &tv, &block);
    if (block) { /* net-snmp no longer holds our request */
      d->reqid = 0;
      d->responded = true;
      fail(d, "no usable answer within %.3g s x %lld tries", d->cfg.timeout_ms / 1000.0,
           (long long)d->cfg.retries + 1);
    }
  }
  after_io(io);
}

/* --- requests ------------------------------------------------------------ */

static void oid_to_net(const struct snmp_oid *o, oid *out) {
  for (size_t i = 0; i < o->len; i++)
    out[i] = o->sub[i];
}

static bool oid_from_net(const oid *name, size_t len, struct snmp_oid *o) {
  if (len > SNMP_OID_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (name[i] > UINT32_MAX)
      return false;
    o->sub[i] = (uint32_t)name[i];
  }
  o->len = (uint8_t)len;
  return true;
}

static void value_from_var(const netsnmp_variable_list *vb, struct snmp_value *v) {
  memset(v, 0, sizeof(*v));
  switch (vb->type) {
  case ASN_INTEGER:
    v->type = SNMP_V_INTEGER;
    v->i = *vb->val.integer;
    break;
  case ASN_GAUGE: /* also Unsigned32 */
    v->type = SNMP_V_GAUGE;
    v->u = (uint32_t)*vb->val.integer;
    break;
  case ASN_COUNTER:
    v->type = SNMP_V_COUNTER32;
    v->u = (uint32_t)*vb->val.integer;
    break;
  case ASN_TIMETICKS:
    v->type = SNMP_V_TIMETICKS;
    v->u = (uint32_t)*vb->val.integer;
    break;
  case ASN_COUNTER64:
    v->type = SNMP_V_COUNTER64;
    v->u = ((uint64_t)vb->val.counter64->high << 32) | (uint32_t)vb->val.counter64->low;
    break;
  case ASN_OCTET_STR: v->type = SNMP_V_STRING; break;
  case SNMP_NOSUCHOBJECT: v->type = SNMP_V_NOSUCHOBJECT; break;
  case SNMP_NOSUCHINSTANCE: v->type = SNMP_V_NOSUCHINSTANCE; break;
  case SNMP_ENDOFMIBVIEW: v->type = SNMP_V_ENDOFMIBVIEW; break;
  default: v->type = SNMP_V_OTHER;
  }
}

static int on_pdu(int op, netsnmp_session *s, int reqid, netsnmp_pdu *pdu, void *magic);

static int send_pdu(struct snmp_dev *d, netsnmp_pdu *pdu) {
  int reqid = snmp_sess_async_send(d->io->sessp, pdu, on_pdu, d);
  if (reqid == 0) {
    char why[200];
    session_error(d->io->sessp, NULL, why, sizeof(why));
    if (why[0] == '\0' || strcmp(why, "unknown error") == 0)
      snprintf(why, sizeof(why), "%s",
               snmp_api_errstring(snmp_sess_session(d->io->sessp)->s_snmp_errno));
    snmp_free_pdu(pdu);
    fail(d, "cannot send a request: %s", why);
    return -EIO;
  }
  d->reqid = reqid;
  return 0;
}

static int send_probe(struct snmp_dev *d) {
  netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
  if (pdu == NULL)
    return -ENOMEM;
  /* RFC 3414 discovery: an unauthenticated request with an empty user; the
   * agent answers with a Report carrying its engine ID, boots and time. */
  pdu->version = SNMP_VERSION_3;
  pdu->securityModel = SNMP_SEC_MODEL_USM;
  pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
  pdu->securityName = strdup("");
  pdu->securityNameLen = 0;
  return send_pdu(d, pdu);
}

/* The next GET of scalars: up to vb_limit of those not read yet. */
static int send_scalars(struct snmp_dev *d) {
  netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
  if (pdu == NULL)
    return -ENOMEM;
  if (d->npending == 0) {
    while (d->scalar_next < d->nscalars && d->npending < (size_t)d->vb_limit)
      d->pending[d->npending++] = d->scalar_next++;
  }
  for (size_t i = 0; i < d->npending; i++) {
    oid name[SNMP_OID_MAX];
    const struct snmp_oid *o = &d->scalar_oids[d->pending[i]];
    oid_to_net(o, name);
    snmp_add_null_var(pdu, name, o->len);
  }
  return send_pdu(d, pdu);
}

static void table_begin(struct snmp_dev *d) {
  const struct snmp_table *tb = &d->prof.tables[d->table];
  d->cols = d->walk[d->table];
  memset(d->cols, 0, SNMP_MAX_COLUMNS * sizeof(*d->cols));
  for (size_t c = 0; c < tb->ncols; c++)
    d->cols[c].last = tb->cols[c];
  d->table_first_cell = d->ncells;
  d->max_rep = (int)d->cfg.max_repetitions;
}

static int send_walk(struct snmp_dev *d) {
  const struct snmp_table *tb = &d->prof.tables[d->table];
  netsnmp_pdu *pdu = snmp_pdu_create(d->use_getnext ? SNMP_MSG_GETNEXT : SNMP_MSG_GETBULK);
  if (pdu == NULL)
    return -ENOMEM;
  if (!d->use_getnext) {
    pdu->non_repeaters = 0;
    pdu->max_repetitions = d->max_rep;
  }
  d->nactive = 0;
  for (size_t c = 0; c < tb->ncols && d->nactive < (size_t)d->vb_limit; c++) {
    if (d->cols[c].done)
      continue;
    oid name[SNMP_OID_MAX];
    oid_to_net(&d->cols[c].last, name);
    snmp_add_null_var(pdu, name, d->cols[c].last.len);
    d->active[d->nactive++] = (int)c;
  }
  return send_pdu(d, pdu);
}

/* Decides what to send next, or finishes the scrape. */
static void step(struct snmp_dev *d) {
  if (d->failed) {
    finish(d);
    return;
  }
  int rc = 0;
  if (d->ph == PH_PROBE) {
    rc = send_probe(d);
  } else if (d->ph == PH_SCALARS) {
    if (d->npending > 0 || d->scalar_next < d->nscalars) {
      rc = send_scalars(d);
    } else {
      d->ph = PH_TABLES;
      d->table = 0;
      if (d->prof.ntables > 0)
        table_begin(d);
    }
  }
  if (rc == 0 && d->ph == PH_TABLES) {
    while (d->table < d->prof.ntables) {
      const struct snmp_table *tb = &d->prof.tables[d->table];
      bool walking = false;
      for (size_t c = 0; c < tb->ncols; c++)
        walking |= !d->cols[c].done;
      if (walking)
        break;
      d->table_cells[2 * d->table] = d->table_first_cell;
      d->table_cells[2 * d->table + 1] = d->ncells;
      if (++d->table < d->prof.ntables)
        table_begin(d);
    }
    if (d->table >= d->prof.ntables) {
      finish(d);
      return;
    }
    rc = send_walk(d);
  }
  if (rc != 0) {
    if (!d->failed)
      fail(d, "cannot build a request: %s", strerror(-rc));
    finish(d);
  }
}

/* --- responses ------------------------------------------------------------ */

static const char *errstat_text(long e) { return snmp_errstring((int)e); }

/* Makes the session discover its agent's engine ID again. */
static void forget_engine(netsnmp_session *s) {
  free(s->securityEngineID);
  s->securityEngineID = NULL;
  s->securityEngineIDLen = 0;
}

/* USM keys live in net-snmp's process-wide user list, keyed by engine ID
 * and user name (RFC 3414): two devices answering with one engine ID and
 * the same user share one entry. This registry of who created which entry
 * turns a clash of credentials into an error instead of one device quietly
 * using the other's keys, and lets a reload with a new passphrase replace
 * the entry of a device that is gone. File-scope on purpose: it mirrors
 * that process-wide list, which every device of every agent in the
 * process shares, so it cannot be one collector's or one agent's. */
struct usm_owner {
  u_char engine[SNMP_MAX_ENG_SIZE];
  size_t engine_len;
  struct snmp_dev *dev;
  struct usm_owner *next;
};
static struct usm_owner *usm_owners;

static bool same_v3_credentials(const struct snmp_dev *a, const struct snmp_dev *b) {
  return strcmp(a->cfg.user, b->cfg.user) == 0 &&
         strcmp(a->cfg.security_level, b->cfg.security_level) == 0 &&
         strcasecmp(a->cfg.auth_protocol, b->cfg.auth_protocol) == 0 &&
         strcasecmp(a->cfg.priv_protocol, b->cfg.priv_protocol) == 0 &&
         a->sec.auth_ku_len == b->sec.auth_ku_len && a->sec.priv_ku_len == b->sec.priv_ku_len &&
         memcmp(a->sec.auth_ku, b->sec.auth_ku, a->sec.auth_ku_len) == 0 &&
         memcmp(a->sec.priv_ku, b->sec.priv_ku, a->sec.priv_ku_len) == 0;
}

static void usm_owner_drop(struct snmp_dev *d) {
  for (struct usm_owner **p = &usm_owners; *p != NULL;) {
    if ((*p)->dev == d) {
      struct usm_owner *o = *p;
      *p = o->next;
      free(o);
    } else {
      p = &(*p)->next;
    }
  }
}

/* Makes net-snmp's user entry for the session's engine ID hold this
 * device's keys. Returns 0, or -EEXIST when a live device holds the entry
 * with other credentials (its name in *other). */
static int usm_claim(struct snmp_dev *d, netsnmp_session *s, const char **other) {
  const struct snmp_dev *holder = NULL;
  for (struct usm_owner *o = usm_owners; o != NULL; o = o->next) {
    if (o->dev != d && o->engine_len == s->securityEngineIDLen &&
        memcmp(o->engine, s->securityEngineID, o->engine_len) == 0 &&
        strcmp(o->dev->cfg.user, d->cfg.user) == 0) {
      holder = o->dev;
      break;
    }
  }
  if (holder != NULL && !same_v3_credentials(holder, d)) {
    *other = holder->cfg.name;
    return -EEXIST;
  }
  /* Whatever entry exists (left by a device that is gone, or made by
   * net-snmp while it read the discovery Report) is replaced by one made
   * from this device's keys. */
  struct usmUser *old = usm_get_user(s->securityEngineID, s->securityEngineIDLen, d->cfg.user);
  if (old != NULL) {
    usm_remove_user(old);
    usm_free_user(old);
  }
  s->flags &= ~(unsigned long)SNMP_FLAGS_USER_CREATED;
  usm_owner_drop(d);
  struct usm_owner *o = calloc(1, sizeof(*o));
  if (o == NULL || s->securityEngineIDLen > sizeof(o->engine)) {
    free(o);
    return -ENOMEM;
  }
  memcpy(o->engine, s->securityEngineID, s->securityEngineIDLen);
  o->engine_len = s->securityEngineIDLen;
  o->dev = d;
  o->next = usm_owners;
  usm_owners = o;
  return 0;
}

static void got_probe(struct snmp_dev *d, netsnmp_session *s) {
  if (s->securityEngineIDLen == 0) {
    fail(d, "SNMPv3 engine ID discovery: the answer carried no engine ID");
    return;
  }
  if (s->engineBoots != 0 || s->engineTime != 0)
    set_enginetime(s->securityEngineID, (u_int)s->securityEngineIDLen, s->engineBoots,
                   s->engineTime, TRUE);
  const char *other = NULL;
  if (usm_claim(d, s, &other) != 0) {
    char hex[2 * SNMP_MAX_ENG_SIZE + 1] = "";
    for (size_t i = 0; i < s->securityEngineIDLen && i < SNMP_MAX_ENG_SIZE; i++)
      snprintf(hex + 2 * i, 3, "%02x", s->securityEngineID[i]);
    forget_engine(s); /* try again at the next scrape */
    fail(d,
         "SNMPv3 engine %s user %s: device %s uses them with other credentials (USM keys "
         "are per engine ID and user)",
         hex, d->cfg.user, other ? other : "?");
    return;
  }
  int rc = create_user_from_session(s);
  if (rc != SNMPERR_SUCCESS) {
    fail(d, "SNMPv3 user %s: %s", d->cfg.user, snmp_api_errstring(rc));
    return;
  }
  d->ph = PH_SCALARS;
}

static void got_scalars(struct snmp_dev *d, netsnmp_pdu *pdu) {
  if (pdu->errstat == SNMP_ERR_NOSUCHNAME && pdu->errindex >= 1 &&
      (size_t)pdu->errindex <= d->npending) {
    /* v1: one bad name fails the whole GET; drop it and ask again. */
    size_t k = (size_t)pdu->errindex - 1;
    size_t s = d->pending[k];
    d->scalar_vals[s].type = SNMP_V_NOSUCHOBJECT;
    snprintf(d->scalar_why[s], sizeof(d->scalar_why[s]), "noSuchName");
    memmove(&d->pending[k], &d->pending[k + 1], (d->npending - k - 1) * sizeof(d->pending[0]));
    d->npending--;
    return;
  }
  if (pdu->errstat == SNMP_ERR_TOOBIG && d->npending > 1) {
    size_t half = d->npending / 2;
    d->scalar_next -= d->npending - half; /* the rest goes in later requests */
    d->npending = half;
    d->vb_limit = (int)half;
    return;
  }
  if (pdu->errstat != SNMP_ERR_NOERROR) {
    for (size_t i = 0; i < d->npending; i++) {
      size_t s = d->pending[i];
      d->scalar_vals[s].type = SNMP_V_ERROR;
      snprintf(d->scalar_why[s], sizeof(d->scalar_why[s]), "GET answered %s",
               errstat_text(pdu->errstat));
    }
    d->npending = 0;
    return;
  }
  size_t i = 0;
  for (netsnmp_variable_list *vb = pdu->variables; vb != NULL && i < d->npending;
       vb = vb->next_variable, i++)
    value_from_var(vb, &d->scalar_vals[d->pending[i]]);
  d->npending = 0;
}

static void end_col(struct walk_col *col, enum col_end end, const struct snmp_oid *at) {
  col->done = true;
  col->end = end;
  if (at != NULL)
    col->end_oid = *at;
}

static void got_walk(struct snmp_dev *d, netsnmp_pdu *pdu) {
  const struct snmp_table *tb = &d->prof.tables[d->table];
  if (pdu->errstat != SNMP_ERR_NOERROR) {
    if (!d->use_getnext &&
        (pdu->errstat == SNMP_ERR_GENERR || pdu->errstat == SNMP_ERR_NOSUCHNAME)) {
      d->use_getnext = true;
      rp_warn("snmp", "%s: %s: GETBULK answered %s: walking with GETNEXT from now on", d->cfg.name,
              d->address, errstat_text(pdu->errstat));
      d->ncells = d->table_first_cell;
      table_begin(d);
      return;
    }
    if (d->use_getnext && pdu->errstat == SNMP_ERR_NOSUCHNAME && pdu->errindex >= 1 &&
        (size_t)pdu->errindex <= d->nactive) {
      /* v1 says "end of the MIB" this way, for one column of the request. */
      end_col(&d->cols[d->active[pdu->errindex - 1]], END_V1_END, NULL);
      return;
    }
    if (pdu->errstat == SNMP_ERR_TOOBIG && !d->use_getnext && d->max_rep > 1) {
      d->max_rep /= 2;
      return;
    }
    for (size_t k = 0; k < d->nactive; k++) {
      struct walk_col *col = &d->cols[d->active[k]];
      end_col(col, END_ERROR, NULL);
      snprintf(col->why, sizeof(col->why), "%s answered %s", d->use_getnext ? "GETNEXT" : "GETBULK",
               errstat_text(pdu->errstat));
    }
    return;
  }
  bool progress = false;
  size_t i = 0;
  for (netsnmp_variable_list *vb = pdu->variables; vb != NULL; vb = vb->next_variable, i++) {
    int c = d->active[i % d->nactive];
    struct walk_col *col = &d->cols[c];
    if (col->done)
      continue;
    progress = true;
    struct snmp_oid name;
    if (vb->type == SNMP_ENDOFMIBVIEW) {
      end_col(col, END_EOMV, NULL);
      continue;
    }
    if (!oid_from_net(vb->name, vb->name_length, &name)) {
      end_col(col, END_ERROR, NULL);
      snprintf(col->why, sizeof(col->why), "an OID longer than %d sub-identifiers", SNMP_OID_MAX);
      continue;
    }
    if (!snmp_oid_under(&tb->cols[c], &name)) {
      end_col(col, END_LEFT, &name);
      continue;
    }
    if (snmp_oid_cmp(&name, &col->last) <= 0) {
      end_col(col, END_LOOP, &name);
      continue;
    }
    col->last = name;
    col->rows++;
    size_t idxlen = name.len - tb->cols[c].len;
    if (idxlen > SNMP_IDX_MAX)
      continue; /* an index we cannot match: not a row of any profile pattern */
    if (d->ncells == SNMP_MAX_CELLS) {
      end_col(col, END_TOO_MANY, &name);
      continue;
    }
    if (d->ncells == d->capcells) {
      size_t cap = d->capcells ? d->capcells * 2 : 256;
      struct snmp_cell *grown = realloc(d->cells, cap * sizeof(*grown));
      if (grown == NULL) {
        end_col(col, END_TOO_MANY, &name);
        continue;
      }
      d->cells = grown;
      d->capcells = cap;
    }
    struct snmp_cell *cell = &d->cells[d->ncells++];
    cell->col = (uint8_t)c;
    cell->idxlen = (uint8_t)idxlen;
    memcpy(cell->idx, name.sub + tb->cols[c].len, idxlen * sizeof(cell->idx[0]));
    value_from_var(vb, &cell->v);
  }
  if (!progress) {
    for (size_t k = 0; k < d->nactive; k++) {
      struct walk_col *col = &d->cols[d->active[k]];
      if (!col->done) {
        end_col(col, END_ERROR, NULL);
        snprintf(col->why, sizeof(col->why), "an empty answer");
      }
    }
  }
}

static int on_pdu(int op, netsnmp_session *s, int reqid, netsnmp_pdu *pdu, void *magic) {
  struct snmp_dev *d = magic;
  (void)reqid; /* a Report answering a v3 request may carry another request id */
  if (d == NULL || d->reqid == 0)
    return 1;
  if (d->ph == PH_PROBE &&
      (op == NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || op == NETSNMP_CALLBACK_OP_SEC_ERROR)) {
    /* net-snmp reports the discovery Report as a security error; what
     * counts is whether the session learnt the engine ID from it. */
    d->reqid = 0;
    d->responded = true;
    got_probe(d, s);
    return 1;
  }
  switch (op) {
  case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE: break;
  case NETSNMP_CALLBACK_OP_TIMED_OUT:
    d->reqid = 0;
    d->responded = true;
    fail(d, "no answer within %.3g s x %lld tries%s", d->cfg.timeout_ms / 1000.0,
         (long long)d->cfg.retries + 1,
         strcmp(d->cfg.version, "3") == 0 ? "" : " (down, unreachable, or a wrong community)");
    return 1;
  case NETSNMP_CALLBACK_OP_SEC_ERROR: {
    d->reqid = 0;
    d->responded = true;
    int e = pdu != NULL && pdu->command == SNMP_MSG_REPORT ? snmpv3_get_report_type(pdu)
                                                           : s->s_snmp_errno;
    fail(d, "SNMPv3 %s: %s", d->cfg.user, snmp_api_errstring(e));
    if (e == SNMPERR_UNKNOWN_ENG_ID) /* a new device behind the address: discover again */
      forget_engine(s);
    return 1;
  }
  case NETSNMP_CALLBACK_OP_SEND_FAILED:
  case NETSNMP_CALLBACK_OP_DISCONNECT: {
    d->reqid = 0;
    d->responded = true;
    char why[200];
    session_error(d->io ? d->io->sessp : NULL, NULL, why, sizeof(why));
    fail(d, "request failed: %s", why);
    return 1;
  }
  default: return 1; /* CONNECT, RESEND: the request is still in flight */
  }
  d->reqid = 0;
  d->responded = true;
  if (pdu == NULL) {
    fail(d, "an answer without a PDU");
    return 1;
  }
  if (pdu->command == SNMP_MSG_REPORT) {
    if (d->ph == PH_PROBE) {
      got_probe(d, s);
      return 1;
    }
    int type = snmpv3_get_report_type(pdu);
    fail(d, "SNMPv3 report: %s", snmp_api_errstring(type));
    if (type == SNMPERR_UNKNOWN_ENG_ID) /* a new device behind the address: discover again */
      forget_engine(s);
    return 1;
  }
  switch (d->ph) {
  case PH_PROBE:
    /* A v3 agent answering a discovery probe with a response: it knows us. */
    got_probe(d, s);
    break;
  case PH_SCALARS: got_scalars(d, pdu); break;
  case PH_TABLES: got_walk(d, pdu); break;
  default: break;
  }
  return 1;
}

/* --- readings ------------------------------------------------------------- */

static struct ctr_state *counter_for(struct snmp_dev *d, int metric, const uint32_t *idx,
                                     size_t len) {
  for (size_t i = 0; i < d->nctrs; i++) {
    struct ctr_state *c = &d->ctrs[i];
    if (c->metric == metric && c->idxlen == len &&
        (len == 0 || memcmp(c->idx, idx, len * sizeof(idx[0])) == 0)) /* scalars: idx NULL */
      return c;
  }
  if (d->nctrs == d->capctrs) {
    size_t cap = d->capctrs ? d->capctrs * 2 : 16;
    struct ctr_state *grown = realloc(d->ctrs, cap * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    d->ctrs = grown;
    d->capctrs = cap;
  }
  struct ctr_state *c = &d->ctrs[d->nctrs++];
  memset(c, 0, sizeof(*c));
  c->metric = metric;
  c->idxlen = (uint8_t)len;
  if (len > 0)
    memcpy(c->idx, idx, len * sizeof(idx[0]));
  return c;
}

static struct rp_reading *new_reading(struct snmp_dev *d, const struct snmp_metric *m,
                                      struct snmp_out **out) {
  struct rp_reading *r = &d->readings[d->nout];
  *out = &d->outs[d->nout];
  d->nout++;
  memset(r, 0, sizeof(*r));
  memset(*out, 0, sizeof(**out));
  r->name = m->name;
  r->unit = m->unit;
  r->decimals = m->scaling.decimals;
  r->labels = (*out)->labels;
  return r;
}

static void set_labels(struct rp_reading *r, struct snmp_out *o, const char *keys[],
                       char values[][SNMP_LABEL_VALUE_MAX], size_t n) {
  for (size_t i = 0; i < n; i++) {
    memcpy(o->values[i], values[i], SNMP_LABEL_VALUE_MAX);
    o->labels[i].key = keys[i];
    o->labels[i].value = o->values[i];
  }
  r->nlabels = n;
}

/* Turns one value (and its digits) into a reading, counters included. */
static void value_reading(struct snmp_dev *d, int mi, struct rp_reading *r, struct snmp_out *o,
                          const struct snmp_value *v, const struct snmp_value *digits,
                          const struct snmp_oid *at, const uint32_t *idx, size_t idxlen,
                          bool restarted) {
  const struct snmp_metric *m = &d->prof.metrics[mi];
  char why[128], where[200];
  double value;
  int decimals;
  enum snmp_conv c =
      snmp_value_convert(v, &m->scaling, digits, &value, &decimals, why, sizeof(why));
  if (c == SNMP_CONV_OK && m->counter) {
    uint64_t raw;
    struct ctr_state *cs =
        snmp_value_raw_unsigned(v, &raw) ? counter_for(d, mi, idx, idxlen) : NULL;
    if (cs == NULL) {
      c = SNMP_CONV_BAD_TYPE;
      snprintf(why, sizeof(why), "%s counter value is negative or unusable",
               snmp_vtype_name(v->type));
    } else {
      int bits = v->type == SNMP_V_COUNTER32 ? 32 : v->type == SNMP_V_COUNTER64 ? 64 : 0;
      double unit = m->scaling.scale / pow(10, decimals - m->scaling.decimals);
      enum snmp_counter_event ev;
      value = snmp_counter_update(&cs->c, raw, bits, restarted, unit, &ev);
      if (ev == SNMP_CTR_WRAP || ev == SNMP_CTR_RESET)
        rp_info("snmp", "%s: %s: counter %s: continuing from %.3f %s", d->cfg.name,
                snmp_oid_format(at, where, sizeof(where)),
                ev == SNMP_CTR_WRAP ? "wrapped" : "reset (device restart or counter reset)", value,
                m->unit);
    }
  }
  if (c == SNMP_CONV_OK) {
    r->value = value;
    r->decimals = decimals;
    r->status = RP_READING_OK;
    return;
  }
  r->status = c == SNMP_CONV_ABSENT ? RP_READING_ABSENT : RP_READING_ERROR;
  snprintf(o->detail, sizeof(o->detail), "%s: %s: %s", d->cfg.name,
           snmp_oid_format(at, where, sizeof(where)), why);
  r->detail = o->detail;
}

static const char *end_text(const struct walk_col *col, char *buf, size_t len) {
  switch (col->end) {
  case END_LEFT: snprintf(buf, len, "ended after %u rows", col->rows); break;
  case END_EOMV: snprintf(buf, len, "endOfMibView after %u rows", col->rows); break;
  case END_V1_END: snprintf(buf, len, "noSuchName (v1 end) after %u rows", col->rows); break;
  case END_LOOP: snprintf(buf, len, "OID not increasing after %u rows", col->rows); break;
  case END_TOO_MANY: snprintf(buf, len, "over %d values", SNMP_MAX_CELLS); break;
  case END_ERROR: snprintf(buf, len, "%s", col->why); break;
  default: snprintf(buf, len, "not walked");
  }
  return buf;
}

static bool cell_same_row(const struct snmp_cell *c, const uint32_t *idx, size_t len) {
  return c->idxlen == len && memcmp(c->idx, idx, len * sizeof(idx[0])) == 0;
}

/* The cell of column `col` with this row index, starting the search at `hint`. */
static const struct snmp_cell *find_cell(const struct snmp_dev *d, size_t first, size_t end,
                                         int col, const uint32_t *idx, size_t len, size_t hint) {
  size_t n = end - first;
  for (size_t k = 0; k < n; k++) {
    size_t i = first + (hint - first + k) % n;
    const struct snmp_cell *c = &d->cells[i];
    if (c->col == col && cell_same_row(c, idx, len))
      return c;
  }
  return NULL;
}

static bool row_in(const struct prev_rows *p, const uint32_t *idx, size_t len) {
  for (size_t i = 0; i < p->n; i++)
    if (p->rows[i].len == len && memcmp(p->rows[i].idx, idx, len * sizeof(idx[0])) == 0)
      return true;
  return false;
}

static void row_add(struct prev_rows *p, const uint32_t *idx, size_t len) {
  if (row_in(p, idx, len))
    return;
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    struct row_key *grown = realloc(p->rows, cap * sizeof(*grown));
    if (grown == NULL)
      return;
    p->rows = grown;
    p->cap = cap;
  }
  p->rows[p->n].len = (uint8_t)len;
  memcpy(p->rows[p->n].idx, idx, len * sizeof(idx[0]));
  p->n++;
}

/* Sizes the reading buffers for the worst case of this scrape. */
static int size_outputs(struct snmp_dev *d) {
  size_t need = d->nscalars + 1;
  for (size_t i = 0; i < d->prof.nmetrics; i++) {
    const struct snmp_metric *m = &d->prof.metrics[i];
    if (m->table < 0)
      continue;
    size_t first = d->table_cells[2 * m->table], end = d->table_cells[2 * m->table + 1];
    need += (end - first) + d->prev[i].n + 1;
  }
  if (need <= d->capout)
    return 0;
  struct rp_reading *r = realloc(d->readings, need * sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  d->readings = r;
  struct snmp_out *o = realloc(d->outs, need * sizeof(*o));
  if (o == NULL)
    return -ENOMEM;
  d->outs = o;
  d->capout = need;
  return 0;
}

static void table_metric_readings(struct snmp_dev *d, int mi, bool restarted) {
  const struct snmp_metric *m = &d->prof.metrics[mi];
  const struct snmp_table *tb = &d->prof.tables[m->table];
  size_t first = d->table_cells[2 * m->table], end = d->table_cells[2 * m->table + 1];
  struct prev_rows now = {0};
  const char *keys[SNMP_MAX_LABELS];
  char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
  size_t nl;
  char ended[200], at[200];
  for (size_t i = first; i < end; i++) {
    const struct snmp_cell *c = &d->cells[i];
    if (c->col != m->column || !snmp_metric_match(m, c->idx, c->idxlen, keys, values, &nl))
      continue;
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    set_labels(r, o, keys, values, nl);
    struct snmp_oid oidv = tb->cols[m->column];
    for (size_t k = 0; k < c->idxlen && oidv.len < SNMP_OID_MAX; k++)
      oidv.sub[oidv.len++] = c->idx[k];
    const struct snmp_value *digits = NULL;
    struct snmp_value missing = {0};
    if (m->digits >= 0) {
      const struct snmp_cell *dc = find_cell(d, first, end, m->digits, c->idx, c->idxlen, i);
      digits = dc ? &dc->v : &missing;
    }
    value_reading(d, mi, r, o, &c->v, digits, &oidv, c->idx, c->idxlen, restarted);
    if (digits == &missing) {
      /* say which column ended, not just "missing" */
      snprintf(o->detail, sizeof(o->detail), "%s: %s: no decimal digits; column %s: %s",
               d->cfg.name, snmp_oid_format(&oidv, at, sizeof(at)), tb->keys[m->digits],
               end_text(&d->walk[m->table][m->digits], ended, sizeof(ended)));
      r->detail = o->detail;
    }
    row_add(&now, c->idx, c->idxlen);
  }
  /* Rows the digits column has but the value column does not: the walk of
   * the value column ended early. */
  if (m->digits >= 0) {
    for (size_t i = first; i < end; i++) {
      const struct snmp_cell *c = &d->cells[i];
      if (c->col != m->digits || !snmp_metric_match(m, c->idx, c->idxlen, keys, values, &nl) ||
          row_in(&now, c->idx, c->idxlen))
        continue;
      struct snmp_out *o;
      struct rp_reading *r = new_reading(d, m, &o);
      set_labels(r, o, keys, values, nl);
      struct snmp_oid oidv = tb->cols[m->column];
      for (size_t k = 0; k < c->idxlen && oidv.len < SNMP_OID_MAX; k++)
        oidv.sub[oidv.len++] = c->idx[k];
      r->status = RP_READING_ABSENT;
      snprintf(o->detail, sizeof(o->detail), "%s: %s: no value (digits present); column %s: %s",
               d->cfg.name, snmp_oid_format(&oidv, at, sizeof(at)), tb->keys[m->column],
               end_text(&d->walk[m->table][m->column], ended, sizeof(ended)));
      r->detail = o->detail;
      row_add(&now, c->idx, c->idxlen);
    }
  }
  /* Rows the previous scrape had and this one did not. */
  struct prev_rows *prev = &d->prev[mi];
  for (size_t i = 0; i < prev->n; i++) {
    const struct row_key *k = &prev->rows[i];
    if (row_in(&now, k->idx, k->len) || !snmp_metric_match(m, k->idx, k->len, keys, values, &nl))
      continue;
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    set_labels(r, o, keys, values, nl);
    struct snmp_oid oidv = tb->cols[m->column];
    for (size_t j = 0; j < k->len && oidv.len < SNMP_OID_MAX; j++)
      oidv.sub[oidv.len++] = k->idx[j];
    r->status = RP_READING_ABSENT;
    snprintf(o->detail, sizeof(o->detail), "%s: %s: row gone since the last scrape; column %s: %s",
             d->cfg.name, snmp_oid_format(&oidv, at, sizeof(at)), tb->keys[m->column],
             end_text(&d->walk[m->table][m->column], ended, sizeof(ended)));
    r->detail = o->detail;
    row_add(&now, k->idx, k->len); /* keep asking after it */
  }
  /* A column that failed with no rows at all: one status without labels. */
  const struct walk_col *col = &d->walk[m->table][m->column];
  if (now.n == 0 && (col->end == END_ERROR || col->end == END_LOOP)) {
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    r->status = RP_READING_ERROR;
    snprintf(o->detail, sizeof(o->detail), "%s: %s (%s column %s): %s", d->cfg.name,
             snmp_oid_format(&tb->cols[m->column], at, sizeof(at)), tb->name, tb->keys[m->column],
             end_text(col, ended, sizeof(ended)));
    r->detail = o->detail;
  }
  free(prev->rows);
  *prev = now;
}

static void finish(struct snmp_dev *d) {
  struct rp_target *t = d->t;
  d->ph = PH_IDLE;
  d->nout = 0;
  struct rp_scrape_result res = {.ts_ms = d->ts_ms, .ok = !d->failed};
  io_hold_loop(d->io, false);
  if (d->failed) {
    res.error = d->error;
    /* A v3 agent that never answered the probe: probe again next time. */
    rp_target_done(t, &res);
    return;
  }
  if (size_outputs(d) != 0) {
    snprintf(d->error, sizeof(d->error), "%s: out of memory", d->cfg.name);
    res.ok = false;
    res.error = d->error;
    rp_target_done(t, &res);
    return;
  }
  bool restarted = false;
  const struct snmp_value *up = &d->scalar_vals[0];
  if (up->type == SNMP_V_TIMETICKS) {
    uint32_t now = (uint32_t)up->u;
    restarted = d->have_uptime && snmp_uptime_restarted(d->uptime, now);
    if (restarted)
      rp_info("snmp", "%s: %s: the agent restarted (sysUpTime %u after %u)", d->cfg.name,
              d->address, now, d->uptime);
    d->have_uptime = true;
    d->uptime = now;
  }
  for (size_t s = 1; s < d->nscalars; s++) {
    int mi = d->scalar_metric[s];
    const struct snmp_metric *m = &d->prof.metrics[mi];
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    const char *keys[SNMP_MAX_LABELS];
    char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
    for (size_t i = 0; i < m->nlabels; i++) {
      keys[i] = m->labels[i].key;
      memcpy(values[i], m->labels[i].value, SNMP_LABEL_VALUE_MAX);
    }
    set_labels(r, o, keys, values, m->nlabels);
    value_reading(d, mi, r, o, &d->scalar_vals[s], NULL, &d->scalar_oids[s], NULL, 0, restarted);
    if (d->scalar_why[s][0] != '\0' && r->status != RP_READING_OK) {
      char at[200];
      snprintf(o->detail, sizeof(o->detail), "%s: %s: %s", d->cfg.name,
               snmp_oid_format(&d->scalar_oids[s], at, sizeof(at)), d->scalar_why[s]);
      r->detail = o->detail;
    }
  }
  for (size_t i = 0; i < d->prof.nmetrics; i++)
    if (d->prof.metrics[i].table >= 0)
      table_metric_readings(d, (int)i, restarted);
  res.readings = d->readings;
  res.nreadings = d->nout;
  rp_target_done(t, &res);
}

/* --- scrape --------------------------------------------------------------- */

static void begin_requests(struct snmp_dev *d) {
  if (d->io->sessp == NULL && open_session(d) != 0) {
    finish(d);
    return;
  }
  netsnmp_session *s = snmp_sess_session(d->io->sessp);
  d->ph = s->version == SNMP_VERSION_3 && s->securityEngineIDLen == 0 ? PH_PROBE : PH_SCALARS;
  step(d);
  if (d->io != NULL)
    rearm(d->io);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct snmp_dev *d = req->data;
  if (status != 0 || res == NULL) {
    fail(d, "cannot resolve %s: %s", d->cfg.host, uv_strerror(status));
    uv_freeaddrinfo(res);
    finish(d);
    return;
  }
  d->family = res->ai_family;
  if (res->ai_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, d->ip, sizeof(d->ip));
  else
    uv_ip4_name((const struct sockaddr_in *)res->ai_addr, d->ip, sizeof(d->ip));
  uv_freeaddrinfo(res);
  begin_requests(d);
}

static int snmp_scrape(struct rp_target *t) {
  struct snmp_dev *d = t->priv;
  d->loop = t->agent->loop;
  d->t = t;
  d->ts_ms = rp_now_ms();
  d->failed = false;
  d->error[0] = '\0';
  d->responded = false;
  d->scalar_next = 0;
  d->npending = 0;
  d->vb_limit = (int)d->cfg.max_varbinds;
  d->ncells = 0;
  d->table = 0;
  memset(d->table_cells, 0, 2 * (d->prof.ntables + 1) * sizeof(*d->table_cells));
  memset(d->walk, 0, (d->prof.ntables + 1) * sizeof(*d->walk));
  for (size_t i = 0; i < d->nscalars; i++) {
    memset(&d->scalar_vals[i], 0, sizeof(d->scalar_vals[i]));
    d->scalar_why[i][0] = '\0';
  }
  if (d->io == NULL) {
    struct snmp_io *io = calloc(1, sizeof(*io));
    if (io == NULL)
      return -ENOMEM;
    netsnmp_large_fd_set_init(&io->fds, FD_SETSIZE);
    uv_timer_init(d->loop, &io->timer);
    io->timer.data = io;
    io->dev = d;
    d->io = io;
  }
  io_hold_loop(d->io, true);
  if (d->ip[0] != '\0') {
    begin_requests(d);
    return 0;
  }
  struct in6_addr a6;
  struct in_addr a4;
  if (inet_pton(AF_INET, d->cfg.host, &a4) == 1 || inet_pton(AF_INET6, d->cfg.host, &a6) == 1) {
    d->family = strchr(d->cfg.host, ':') ? AF_INET6 : AF_INET;
    snprintf(d->ip, sizeof(d->ip), "%s", d->cfg.host);
    begin_requests(d);
    return 0;
  }
  d->ph = PH_RESOLVE;
  d->resolve.data = d;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
  int rc = uv_getaddrinfo(d->loop, &d->resolve, on_resolved, d->cfg.host, NULL, &hints);
  if (rc != 0) {
    io_hold_loop(d->io, false);
    return rc;
  }
  return 0;
}

static void snmp_help(FILE *out) {
  rp_cfg_print_help(out, "snmp[]", device_fields, N(device_fields));
  snmp_profile_help(out);
}

/* A reload keeps a device whose settings, secrets and profile are unchanged. */
static bool snmp_same_config(const struct rp_target *a, const struct rp_target *b) {
  const struct snmp_dev *x = a->priv, *y = b->priv;
  const struct snmp_profile *p = &x->prof, *q = &y->prof;
  return memcmp(&x->cfg, &y->cfg, sizeof(x->cfg)) == 0 &&
         memcmp(&x->sec, &y->sec, sizeof(x->sec)) == 0 && p->nmetrics == q->nmetrics &&
         p->ntables == q->ntables &&
         memcmp(p->metrics, q->metrics, p->nmetrics * sizeof(*p->metrics)) == 0 &&
         (p->ntables == 0 || memcmp(p->tables, q->tables, p->ntables * sizeof(*p->tables)) == 0);
}

const struct rp_collector rp_collector_snmp = {
    .name = "snmp",
    .create = snmp_create,
    .scrape = snmp_scrape,
    .destroy = snmp_destroy,
    .help = snmp_help,
    .same_config = snmp_same_config,
};
