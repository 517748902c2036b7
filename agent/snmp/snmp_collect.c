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
 * shut down when the last one is destroyed.
 *
 * This file starts a scrape (name resolution, the session) and ends a
 * device, and holds the const struct. The parts, declared in
 * snmp_internal.h: snmp_config.c (the config above, secrets, the plan of
 * a scrape), snmp_session.c (net-snmp, sessions on uv_poll/uv_timer, USM
 * owners), snmp_walk.c (requests and answers), snmp_readings.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/frame.h"
#include "rackpulse/log.h"
#include "snmp_internal.h"

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
    snmp__io_close(d->io);
    d->io = NULL;
  }
  while (!closed)
    uv_run(loop, UV_RUN_NOWAIT);
  snmp__dev_free(d);
}

static void begin_requests(struct snmp_dev *d) {
  if (d->io->sessp == NULL && snmp__open_session(d) != 0) {
    snmp__finish(d);
    return;
  }
  netsnmp_session *s = snmp_sess_session(d->io->sessp);
  d->ph = s->version == SNMP_VERSION_3 && s->securityEngineIDLen == 0 ? PH_PROBE : PH_SCALARS;
  snmp__step(d);
  if (d->io != NULL)
    snmp__rearm(d->io);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct snmp_dev *d = req->data;
  if (status != 0 || res == NULL) {
    snmp__fail(d, "cannot resolve %s: %s", d->cfg.host, uv_strerror(status));
    uv_freeaddrinfo(res);
    snmp__finish(d);
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
  if (d->io == NULL && snmp__io_new(d) != 0)
    return -ENOMEM;
  snmp__io_hold_loop(d->io, true);
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
    snmp__io_hold_loop(d->io, false);
    return rc;
  }
  return 0;
}

const struct rp_collector rp_collector_snmp = {
    .name = "snmp",
    .create = snmp__create,
    .scrape = snmp_scrape,
    .destroy = snmp_destroy,
    .help = snmp__config_help,
    .same_config = snmp__same_config,
};
