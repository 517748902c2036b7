/* TelemetryService metric reports over Server-Sent Events: where a service
 * names an EventService ServerSentEventUri, the collector keeps one stream
 * open per device (a long-lived GET; libcurl delivers its bytes as they
 * come, on the loop). Each MetricReport's MetricValues name a resource and
 * a JSON pointer in it (MetricProperty "URI#/Pointer") and a value; the
 * value (null: the reading is absent) is written into the document the
 * plan keeps for that resource (or for the expanded collection holding
 * it), so the scrape maps pushed values exactly as polled ones, and does
 * not ask for a resource the stream updated within two intervals, except
 * every RF_RECONCILE_EVERY scrapes (what a report does not carry, such as
 * a Status that changed, is read then). When the stream stops (the service
 * closed it, an error, no event for two intervals), polling takes over at
 * the next scrape and the stream is opened again. */
#include <stdlib.h>
#include <string.h>

#include "rackpulse/clock.h"
#include "rackpulse/log.h"
#include "redfish_internal.h"

static int64_t window_ms(const struct rf_dev *d) {
  int64_t iv = d->t->interval_ms > 0 ? d->t->interval_ms : d->t->agent->cfg.agent.interval_ms;
  return 2 * iv;
}

bool rf__sse_fresh(const struct rf_dev *d) {
  return d->sse != NULL && d->sse_last_ms > 0 &&
         (int64_t)rp_mono_ms() - d->sse_last_ms <= window_ms(d);
}

/* The member of an expanded collection document with @odata.id uri. */
static json_t *member_of(json_t *doc, const char *uri, size_t len) {
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(doc, "Members"), i, m) {
    const char *id = json_string_value(json_object_get(m, "@odata.id"));
    if (id != NULL && strlen(id) == len && strncmp(id, uri, len) == 0)
      return m;
  }
  return NULL;
}

/* Writes value (NULL: null, an absent reading) at pointer in doc: the
 * pointer's parent must exist and hold the property already (a report
 * never adds properties). */
static bool set_at(json_t *doc, const char *pointer, const double *value) {
  const char *slash = strrchr(pointer, '/');
  if (slash == NULL)
    return false;
  char parent[RF_URI_MAX];
  size_t n = (size_t)(slash - pointer);
  if (n >= sizeof(parent))
    return false;
  memcpy(parent, pointer, n);
  parent[n] = '\0';
  json_t *obj = (json_t *)rf_pointer(doc, parent);
  const char *key = slash + 1;
  if (!json_is_object(obj) || json_object_get(obj, key) == NULL)
    return false;
  return json_object_set_new(obj, key, value ? json_real(*value) : json_null()) == 0;
}

static void apply_value(struct rf_dev *d, const json_t *mv, int64_t now) {
  const char *prop = json_string_value(json_object_get(mv, "MetricProperty"));
  const json_t *jv = json_object_get(mv, "MetricValue");
  const char *val = json_string_value(jv);
  const char *hash = prop ? strchr(prop, '#') : NULL;
  if (hash == NULL || (val == NULL && !json_is_null(jv)))
    return;
  size_t ulen = (size_t)(hash - prop);
  double v = 0;
  if (val != NULL) {
    char *end;
    v = strtod(val, &end);
    if (end == val || *end != '\0')
      return;
  }
  for (size_t i = 0; i < d->nplan; i++) {
    struct rf_plan *p = &d->plan[i];
    if (p->last == NULL)
      continue;
    json_t *target = NULL;
    if (strlen(p->uri) == ulen && strncmp(p->uri, prop, ulen) == 0)
      target = p->last;
    else if (p->expand && strncmp(p->uri, prop, strlen(p->uri)) == 0)
      target = member_of(p->last, prop, ulen);
    if (target != NULL && set_at(target, hash + 1, val ? &v : NULL)) {
      p->pushed_ms = now;
      return;
    }
  }
}

static void on_event(struct rf_req *q, const char *data, size_t len) {
  struct rf_dev *d = q->d;
  json_error_t je;
  json_t *rep = json_loadb(data, len, 0, &je);
  if (rep == NULL)
    return;
  int64_t now = (int64_t)rp_mono_ms();
  size_t i;
  const json_t *mv;
  json_array_foreach(json_object_get(rep, "MetricValues"), i, mv) apply_value(d, mv, now);
  json_decref(rep);
  d->sse_last_ms = now;
  d->sse_events++;
  if (d->sse_said_down) {
    d->sse_said_down = false;
    rp_info("redfish", "%s: %s: metric reports arrive over SSE again", d->cfg.name, d->base);
  }
}

static void on_stream_end(struct rf_req *q) {
  struct rf_dev *d = q->d;
  d->sse = NULL;
  d->sse_last_ms = 0;
  if (!d->sse_said_down) {
    d->sse_said_down = true;
    char why[CURL_ERROR_SIZE + 32];
    if (q->result != CURLE_OK)
      snprintf(why, sizeof(why), "%s", q->curl_err[0] ? q->curl_err : "transport error");
    else if (q->status != 200)
      snprintf(why, sizeof(why), "HTTP %ld", q->status);
    else
      snprintf(why, sizeof(why), "closed by the service");
    rp_warn("redfish", "%s: %s%s: the SSE stream stopped (%s); polling", d->cfg.name, d->base,
            d->sse_uri, why);
  }
}

void rf__sse_ensure(struct rf_dev *d) {
  if (!d->cfg.sse || d->sse != NULL || d->sse_uri[0] == '\0' || !d->discovered ||
      (d->token[0] == '\0' && strcmp(d->cfg.auth, "session") == 0))
    return;
  char path[RF_URI_MAX + 64];
  snprintf(path, sizeof(path), "%s?$filter=EventFormatType%%20eq%%20MetricReport", d->sse_uri);
  d->stream_next = true;
  struct rf_req *q = rf__request(d, path, NULL, false, NULL, on_stream_end, -1);
  d->stream_next = false;
  if (q == NULL)
    return;
  q->on_event = on_event;
  d->sse = q;
  d->sse_last_ms = 0;
}
