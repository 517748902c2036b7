/* The SNMP collector's sessions on the libuv loop: net-snmp's library
 * state (initialised by the first device, shut down with the last), one
 * single-session handle per device with its socket watched by a uv_poll_t
 * and its retransmissions and timeouts driven by a uv_timer_t (struct
 * snmp_io, freed by the handles' close callbacks), and the registry of
 * which device owns which entry of net-snmp's process-wide USM user list. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rackpulse/log.h"
#include "snmp_internal.h"

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

void snmp__lib_ref(void) {
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

void snmp__lib_unref(void) {
  if (snmp_users == 0 || --snmp_users > 0)
    return;
  snmp_shutdown("rackpulse");
  snmp_unregister_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, on_snmp_log, NULL, 1);
  snmp_disable_log();
}

static void on_io_closed(uv_handle_t *h) {
  struct snmp_io *io = h->data;
  if (--io->open_handles > 0)
    return;
  netsnmp_large_fd_set_cleanup(&io->fds);
  if (io->closed != NULL)
    *io->closed = true;
  free(io);
}

/* Gives d its snmp_io: the timer, and the poll handle once a session is
 * open. Returns 0 or -ENOMEM. */
int snmp__io_new(struct snmp_dev *d) {
  struct snmp_io *io = calloc(1, sizeof(*io));
  if (io == NULL)
    return -ENOMEM;
  netsnmp_large_fd_set_init(&io->fds, FD_SETSIZE);
  uv_timer_init(d->loop, &io->timer);
  io->timer.data = io;
  io->dev = d;
  d->io = io;
  return 0;
}

/* Closes the session now and the handles asynchronously; io is freed by
 * the last close callback. */
void snmp__io_close(struct snmp_io *io) {
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

void snmp__io_hold_loop(struct snmp_io *io, bool hold) {
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

void snmp__fail(struct snmp_dev *d, const char *fmt, ...) {
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
void snmp__session_error(void *sessp, netsnmp_session *s, char *buf, size_t len) {
  char *text = NULL;
  int clib = 0, snmperr = 0;
  if (sessp != NULL)
    snmp_sess_error(sessp, &clib, &snmperr, &text);
  else if (s != NULL)
    snmp_error(s, &clib, &snmperr, &text);
  snprintf(buf, len, "%s", text ? text : "unknown error");
  free(text);
}

static void on_readable(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *h);

int snmp__open_session(struct snmp_dev *d) {
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
    s.securityLevel = snmp__sec_level(d->cfg.security_level);
    s.contextName = d->cfg.context;
    s.contextNameLen = strlen(d->cfg.context);
    s.securityAuthProto = (oid *)snmp__auth_proto(d->cfg.auth_protocol);
    s.securityAuthProtoLen = USM_AUTH_PROTO_SHA_LEN;
    s.securityPrivProto = (oid *)snmp__priv_proto(d->cfg.priv_protocol);
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
    snmp__session_error(NULL, &s, why, sizeof(why));
    snmp__fail(d, "cannot open an SNMP session: %s", why);
    return -EIO;
  }
  netsnmp_transport *tr = snmp_sess_transport(sessp);
  if (tr == NULL || tr->sock < 0) {
    snmp_sess_close(sessp);
    snmp__fail(d, "cannot open an SNMP session: no socket");
    return -EIO;
  }
  struct snmp_io *io = d->io;
  int rc = uv_poll_init(d->loop, &io->poll, tr->sock);
  if (rc != 0) {
    snmp_sess_close(sessp);
    snmp__fail(d, "cannot watch the session's socket: %s", uv_strerror(rc));
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
void snmp__rearm(struct snmp_io *io) {
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
    snmp__step(d);
  }
  if (io->dev != NULL) /* snmp__finish() may have let go of io (never today) */
    snmp__rearm(io);
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
      snmp__fail(d, "no usable answer within %.3g s x %lld tries", d->cfg.timeout_ms / 1000.0,
                 (long long)d->cfg.retries + 1);
    }
  }
  after_io(io);
}

/* Makes the session discover its agent's engine ID again. */
void snmp__forget_engine(netsnmp_session *s) {
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

void snmp__usm_owner_drop(struct snmp_dev *d) {
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
int snmp__usm_claim(struct snmp_dev *d, netsnmp_session *s, const char **other) {
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
  snmp__usm_owner_drop(d);
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
