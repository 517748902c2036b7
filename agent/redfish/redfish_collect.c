/* The Redfish collector: compute trays, power shelves, CDUs and rack PDUs
 * read over HTTPS with libcurl's multi interface on the agent's libuv loop
 * (redfish_http.c), JSON with jansson.
 *
 *   agent:
 *     profiles_dir: /usr/share/rackpulse/profiles   # holds redfish/NAME.yaml
 *   redfish:
 *     - name: cdu-a
 *       host: 10.0.7.20             # address or name of the BMC / service
 *       port: 443
 *       user: rackpulse
 *       password_file: /etc/rackpulse/cdu-a.password   # mode 0600 or 0640; or
 *       # password_env: CDU_A_PASSWORD                 # the agent's environment
 *       auth: session               # SessionService + X-Auth-Token; or basic
 *       ca_file: /etc/rackpulse/bmc-ca.pem   # the CA the certificate chains to
 *       # insecure: true            # lab BMCs only: no verification (logged)
 *       profile: contoso-cdu        # OEM readings: <profiles_dir>/redfish/contoso-cdu.yaml
 *       expand: true                # $expand where ProtocolFeaturesSupported says so
 *       sse: true                   # TelemetryService metric reports over SSE
 *       timeout: 3s                 # deadline of one scrape of this device
 *       interval: 0                 # 0 = agent.interval
 *
 * A scrape of one device, every device in parallel:
 *   1. auth: session: a session is made once (POST to SessionService's
 *      Sessions; the X-Auth-Token and Location are kept, never logged) and
 *      made again when a request answers 401 (once per scrape);
 *   2. the layout check: GET of the service root with If-None-Match (a
 *      304, or the same document, means the layout is as discovered);
 *   3. discovery (redfish_discover.c) when there is no plan yet, the root
 *      changed, or a planned resource answered 404 at the last scrape;
 *   4. every resource of the plan at once (libcurl keeps at most two
 *      connections to one service, kept alive between scrapes), each with
 *      its ETag in If-None-Match (a 304 maps the document kept); a
 *      resource that the TelemetryService stream updated within two
 *      intervals is not asked for (redfish_sse.c);
 *   5. the readings (redfish_map.c) to rp_target_done().
 * A deadline (`timeout`) bounds the whole scrape: at the deadline the
 * requests still out are abandoned and the device is down with the reason.
 * A resource that fails (HTTP error, malformed JSON) turns its readings
 * into statuses naming the URI; when every resource fails, the device is
 * down with the first failure. The loop never waits on a device. At
 * shutdown each session is deleted (DELETE of its Location). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/clock.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"
#include "redfish_internal.h"

static void poll_plan(struct rf_dev *d);
static void check_root(struct rf_dev *d);

static const char *unit_key(enum rf_kind k) {
  switch (k) {
  case RF_K_CDU:
  case RF_K_CONN_SECONDARY:
  case RF_K_CONN_PRIMARY:
  case RF_K_PUMP:
  case RF_K_RESERVOIR:
  case RF_K_LEAK: return "cdu";
  case RF_K_MAINS:
  case RF_K_BRANCH:
  case RF_K_OUTLET:
  case RF_K_PDU: return "pdu";
  default: return "chassis";
  }
}

static void map_plan(struct rf_dev *d) {
  for (size_t i = 0; i < d->nplan; i++) {
    struct rf_plan *p = &d->plan[i];
    if (p->last == NULL)
      continue;
    struct rf_map_ctx ctx = {
        .uri = p->uri,
        .shelf = p->shelf,
        .legacy_total = p->legacy_total,
        .legacy_psu = p->legacy_psu,
        .sensor_psu = p->sensor_psu,
        .many = p->many,
        .unit = p->unit,
        .unit_key = unit_key(p->kind),
        .oem = d->oem,
        .noem = d->noem,
        .force = p->error[0] ? RP_READING_ERROR : RP_READING_OK,
        .force_detail = p->error,
    };
    rf_map(p->kind, p->last, &ctx, &d->out);
  }
}

/* Ends the scrape: readings (or the failure) to rp_target_done(). */
static void finish(struct rf_dev *d) {
  uv_timer_stop(&d->deadline);
  d->ph = RF_IDLE;
  size_t failed = 0;
  const char *first = NULL;
  for (size_t i = 0; i < d->nplan; i++)
    if (d->plan[i].error[0] != '\0') {
      failed++;
      if (first == NULL)
        first = d->plan[i].error;
    }
  if (!d->failed && d->discovered && d->nplan == 0)
    rf__fail(d, "the service has none of the resources this collector reads");
  else if (!d->failed && d->nplan > 0 && failed == d->nplan)
    rf__fail(d, "%s", first);
  rf_out_reset(&d->out);
  if (!d->failed)
    map_plan(d);
  rf_out_finish(&d->out);
  if (d->out.n > d->capreadings) {
    struct rp_reading *r = realloc(d->readings, d->out.n * sizeof(*r));
    if (r == NULL) {
      rf__fail(d, "out of memory");
      d->out.n = 0;
    } else {
      d->readings = r;
      d->capreadings = d->out.n;
    }
  }
  for (size_t i = 0; i < d->out.n; i++)
    d->readings[i] = d->out.items[i].r;
  struct rp_scrape_result res = {
      .ts_ms = d->ts_ms,
      .ok = !d->failed,
      .error = d->failed ? d->error : NULL,
      .readings = d->failed ? NULL : d->readings,
      .nreadings = d->failed ? 0 : d->out.n,
  };
  rp_target_done(d->t, &res);
}

static bool transport_failed(struct rf_dev *d, struct rf_req *q) {
  if (q->result == CURLE_OK)
    return false;
  rf__fail(d, "%s: %s", rf__req_path(q),
           q->curl_err[0] ? q->curl_err : rf__curl.easy_strerror(q->result));
  return true;
}

/* ------------------------------------------------------------ session */

static void on_login(struct rf_req *q) {
  struct rf_dev *d = q->d;
  d->pending--;
  if (transport_failed(d, q)) {
    finish(d);
    return;
  }
  if ((q->status != 201 && q->status != 200) || q->token[0] == '\0') {
    rf__fail(d, "login to SessionService refused: HTTP %ld%s", q->status,
             q->status == 401 ? " (wrong user or password?)" : "");
    finish(d);
    return;
  }
  snprintf(d->token, sizeof(d->token), "%s", q->token);
  const char *loc = q->location;
  const char *path = strstr(loc, "://") ? strchr(strstr(loc, "://") + 3, '/') : loc;
  snprintf(d->session_uri, sizeof(d->session_uri), "%s", path ? path : "");
  rp_debug("redfish", "%s: session %s made", d->cfg.name, d->session_uri);
  if (q->slot == 1) /* a login again after a 401: read the plan again */
    poll_plan(d);
  else
    check_root(d);
}

/* Appends s to out as the body of a JSON string; false when it does not
 * fit. Written here rather than with jansson so that the password is
 * copied only into buffers we clear. */
static bool json_escape(char *out, size_t cap, size_t *len, const char *s) {
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    char tmp[8];
    int n;
    if (c == '"' || c == '\\')
      n = snprintf(tmp, sizeof(tmp), "\\%c", c);
    else if (c < 0x20)
      n = snprintf(tmp, sizeof(tmp), "\\u%04x", c);
    else
      n = snprintf(tmp, sizeof(tmp), "%c", c);
    if (*len + (size_t)n + 1 > cap)
      return false;
    memcpy(out + *len, tmp, (size_t)n);
    *len += (size_t)n;
    explicit_bzero(tmp, sizeof(tmp));
  }
  out[*len] = '\0';
  return true;
}

static void login(struct rf_dev *d, int again) {
  d->ph = RF_LOGIN;
  explicit_bzero(d->token, sizeof(d->token));
  char body[64 + 6 * (sizeof(d->cfg.user) + sizeof(d->password))];
  size_t len = 0;
  bool ok = true;
  /* The fixed parts are written as they are, the values escaped. */
  const char *parts[] = {"{\"UserName\":\"", d->cfg.user, "\",\"Password\":\"", d->password, "\"}"};
  for (size_t i = 0; ok && i < sizeof(parts) / sizeof(parts[0]); i++) {
    if (i % 2 == 1) {
      ok = json_escape(body, sizeof(body), &len, parts[i]);
    } else {
      size_t n = strlen(parts[i]);
      ok = len + n + 1 <= sizeof(body);
      if (ok) {
        memcpy(body + len, parts[i], n + 1);
        len += n;
      }
    }
  }
  struct rf_req *q =
      ok ? rf__request(d, "/redfish/v1/SessionService/Sessions", body, false, NULL, on_login, again)
         : NULL;
  explicit_bzero(body, sizeof(body));
  if (q == NULL) {
    rf__fail(d, "cannot start the login request");
    finish(d);
    return;
  }
  d->pending++;
}

static bool session_auth(const struct rf_dev *d) { return strcmp(d->cfg.auth, "session") == 0; }

/* ------------------------------------------------------------ root */

static void on_root(struct rf_req *q) {
  struct rf_dev *d = q->d;
  d->pending--;
  if (transport_failed(d, q)) {
    finish(d);
    return;
  }
  if (q->status == 401 && session_auth(d) && !d->relogged) {
    d->relogged = true;
    login(d, 0);
    return;
  }
  if (q->status == 304 && d->discovered && !d->rediscover) {
    poll_plan(d);
    return;
  }
  if (q->status != 200) {
    rf__fail(d, "/redfish/v1/: HTTP %ld", q->status);
    finish(d);
    return;
  }
  char why[160];
  json_t *root = rf__parse(q, why, sizeof(why));
  if (root == NULL) {
    rf__fail(d, "/redfish/v1/: %s", why);
    finish(d);
    return;
  }
  snprintf(d->root_etag, sizeof(d->root_etag), "%s", q->etag);
  if (d->discovered && !d->rediscover && rf__root_hash(root) == d->root_hash) {
    json_decref(root);
    poll_plan(d);
    return;
  }
  if (d->discovered)
    rp_info("redfish", "%s: %s: the service's layout changed: walking it again", d->cfg.name,
            d->base);
  d->discovered = false;
  d->rediscover = false;
  rf__discover(d, root);
  json_decref(root);
}

static void check_root(struct rf_dev *d) {
  d->ph = RF_ROOT;
  const char *etag = d->discovered && !d->rediscover ? d->root_etag : NULL;
  if (rf__request(d, "/redfish/v1/", NULL, false, etag, on_root, 0) == NULL) {
    rf__fail(d, "cannot start a request");
    finish(d);
    return;
  }
  d->pending++;
}

void rf__discovered(struct rf_dev *d) {
  if (d->got_401 && session_auth(d) && !d->relogged) {
    d->got_401 = false;
    d->relogged = true;
    d->discovered = false;
    d->rediscover = true;
    login(d, 0);
    return;
  }
  if (d->failed) {
    rf__plan_clear(d);
    finish(d);
    return;
  }
  d->discovered = true;
  rp_info("redfish", "%s: %s: %zu resources to read%s%s", d->cfg.name, d->base, d->nplan,
          d->can_expand ? " ($expand)" : "", d->sse_uri[0] ? ", SSE offered" : "");
  poll_plan(d);
}

/* ------------------------------------------------------------ the plan */

static void on_resource(struct rf_req *q) {
  struct rf_dev *d = q->d;
  d->pending--;
  struct rf_plan *p = &d->plan[q->slot];
  if (q->result != CURLE_OK) {
    snprintf(p->error, sizeof(p->error), "%s: %s", p->uri,
             q->curl_err[0] ? q->curl_err : rf__curl.easy_strerror(q->result));
  } else if (q->status == 304 && p->last != NULL) {
    /* unchanged: the document kept */
  } else if (q->status == 200) {
    char why[160];
    json_t *doc = rf__parse(q, why, sizeof(why));
    if (doc == NULL) {
      snprintf(p->error, sizeof(p->error), "%s: %s", p->uri, why);
    } else {
      json_decref(p->last);
      p->last = doc;
      snprintf(p->etag, sizeof(p->etag), "%s", q->etag);
    }
  } else {
    if (q->status == 401)
      d->got_401 = true;
    if (q->status == 404 || q->status == 410) {
      d->rediscover = true;
      p->etag[0] = '\0';
    }
    snprintf(p->error, sizeof(p->error), "%s: HTTP %ld%s", p->uri, q->status,
             q->status == 404 ? " (gone: the layout is walked again)" : "");
  }
  if (d->pending > 0)
    return;
  if (d->got_401 && session_auth(d) && !d->relogged) {
    d->got_401 = false;
    d->relogged = true;
    login(d, 1);
    return;
  }
  finish(d);
}

static void poll_plan(struct rf_dev *d) {
  d->ph = RF_POLL;
  d->scrapes++;
  bool pushed = rf__sse_fresh(d);
  int64_t now = (int64_t)rp_mono_ms();
  int64_t window =
      2 * (d->t->interval_ms > 0 ? d->t->interval_ms : d->t->agent->cfg.agent.interval_ms);
  for (size_t i = 0; i < d->nplan; i++) {
    struct rf_plan *p = &d->plan[i];
    p->error[0] = '\0';
    if (pushed && p->last != NULL && p->pushed_ms > 0 && now - p->pushed_ms <= window &&
        d->scrapes % RF_RECONCILE_EVERY != 0)
      continue;
    char path[RF_URI_MAX + 64];
    snprintf(path, sizeof(path), "%s%s", p->uri,
             p->expand                                ? "?$expand=.($levels=1)"
             : (p->kind == RF_K_ENV && d->can_select) ? "?$select=PowerWatts,TemperatureCelsius"
                                                      : "");
    if (rf__request(d, path, NULL, false, p->last ? p->etag : NULL, on_resource, (int)i) == NULL) {
      snprintf(p->error, sizeof(p->error), "%s: cannot start a request", p->uri);
      continue;
    }
    d->pending++;
  }
  if (d->pending == 0)
    finish(d);
}

/* ------------------------------------------------------------ scrape */

static void on_deadline(uv_timer_t *tm) {
  struct rf_dev *d = tm->data;
  if (d->ph == RF_IDLE)
    return;
  /* The first request still out names the failure. */
  const char *what = "?";
  int n = 0;
  for (struct rf_req *q = d->inflight; q != NULL; q = q->next)
    if (q != d->sse) {
      what = rf__req_path(q);
      n++;
    }
  char first[RF_URI_MAX + 64];
  snprintf(first, sizeof(first), "%s", what);
  rf__fail(d, "deadline of %lld ms passed with %d request%s unanswered (%s)",
           (long long)d->cfg.timeout_ms, n, n == 1 ? "" : "s", first);
  struct rf_req *sse = d->sse;
  if (sse != NULL) { /* the stream is not part of the scrape: keep it */
    for (struct rf_req **pp = &d->inflight; *pp != NULL; pp = &(*pp)->next)
      if (*pp == sse) {
        *pp = sse->next;
        break;
      }
  }
  rf__cancel_all(d);
  if (sse != NULL) {
    sse->next = NULL;
    d->inflight = sse;
    d->sse = sse;
  }
  d->pending = 0;
  if (d->ph == RF_DISCOVER)
    d->discovered = false;
  finish(d);
}

static int rf_scrape(struct rp_target *t) {
  struct rf_dev *d = t->priv;
  d->t = t;
  if (d->h == NULL && (d->h = rf__http(t->agent)) == NULL)
    return -ENOMEM;
  if (!d->deadline_init) {
    if (uv_timer_init(t->agent->loop, &d->deadline) != 0)
      return -ENOMEM;
    d->deadline.data = d;
    d->deadline_init = true;
  }
  d->ts_ms = rp_now_ms();
  d->failed = false;
  d->error[0] = '\0';
  d->relogged = false;
  d->got_401 = false;
  d->pending = 0;
  uv_timer_start(&d->deadline, on_deadline, (uint64_t)d->cfg.timeout_ms, 0);
  rf__sse_ensure(d);
  if (session_auth(d) && d->token[0] == '\0')
    login(d, 0);
  else
    check_root(d);
  return 0;
}

static void on_deadline_closed(uv_handle_t *h) {
  struct rf_dev *d = h->data;
  if (d->closed != NULL)
    *d->closed = true;
  rf__dev_free(d);
}

static void on_logout(struct rf_req *q) {
  struct rf_dev *d = q->d;
  d->pending--;
  if (q->result == CURLE_OK && q->status / 100 == 2)
    rp_debug("redfish", "%s: session %s deleted", d->cfg.name, d->session_uri);
}

/* At the agent's shutdown (the loop no longer runs) the session is
 * deleted, so that restarts do not use up a BMC's few session slots: one
 * DELETE, the loop run for it for at most a second (devices that are up
 * only: a dead one would cost the second for nothing). A target retired by a
 * reload is destroyed from inside the loop and cannot wait: its session
 * expires on the service. */
static void on_bound(uv_timer_t *tm) { (void)tm; }
static void on_bound_closed(uv_handle_t *h) { *(bool *)h->data = true; }

static void logout(struct rf_dev *d) {
  if (d->h == NULL || d->token[0] == '\0' || d->session_uri[0] != '/')
    return;
  d->pending = 0;
  if (rf__request(d, d->session_uri, NULL, true, NULL, on_logout, 0) == NULL)
    return;
  d->pending = 1;
  /* A referenced timer keeps the loop alive (the collector's handles do
   * not hold it) and bounds the wait. */
  uv_timer_t bound;
  bool closed = false;
  if (uv_timer_init(d->h->loop, &bound) != 0)
    return;
  bound.data = &closed;
  uv_timer_start(&bound, on_bound, 1000, 0);
  while (d->pending > 0 && uv_is_active((uv_handle_t *)&bound))
    uv_run(d->h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&bound, on_bound_closed);
  while (!closed)
    uv_run(d->h->loop, UV_RUN_NOWAIT);
}

static void rf_destroy(struct rp_target *t) {
  struct rf_dev *d = t->priv;
  if (d == NULL)
    return;
  t->priv = NULL;
  if (d->h != NULL)
    rf__cancel_all(d);
  /* A device that is down would likely not answer either: no wait. */
  if (!t->retired && t->up && strcmp(d->cfg.auth, "session") == 0) {
    logout(d);
    if (d->h != NULL)
      rf__cancel_all(d);
  }
  if (!d->deadline_init) {
    rf__dev_free(d);
    return;
  }
  uv_loop_t *loop = d->deadline.loop;
  bool closed = false;
  /* Outside the loop (agent shutdown) nobody would run the callback:
   * run it now. Retired targets are destroyed from a close callback. */
  if (!t->retired)
    d->closed = &closed;
  uv_close((uv_handle_t *)&d->deadline, on_deadline_closed);
  while (!t->retired && !closed)
    uv_run(loop, UV_RUN_NOWAIT);
}

const struct rp_collector rp_collector_redfish = {
    .name = "redfish",
    .create = rf__create,
    .scrape = rf_scrape,
    .destroy = rf_destroy,
    .help = rf__config_help,
    .same_config = rf__same_config,
    .free_state = rf__http_free,
};
