/* The HTTP API's changes (see http_api.c's list of endpoints), routed
 * here once http_api.c has authorized the caller for the route's role and
 * parsed the body: reservations (create, extend, release), flags (set,
 * clear), device retirement, and the deploy workflow's overrides and
 * canaries (http_deploy.c). Every change that succeeds is audited with the
 * caller and its deploy fields; one whose audit entry cannot be kept
 * answers 503 (logged, counted). */
#include <errno.h>
#include <string.h>

#include "gate.h"
#include "http_deploy.h"
#include "ledger.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"
#include "reservations.h"

static bool valid_name(const char *s) { return s != NULL && rp_http_valid_id(s, strlen(s)); }

/* A change in the audit log: the action, the rack, the record as it now
 * is (or was), the client and its deploy. 0 or a negative errno. */
static int audit_change(struct rp_aggregator *a, const struct rp_caller *caller, const char *action,
                        const char *rack, const json_t *record, int64_t now) {
  json_t *e = json_pack("{s:s, s:s, s:O}", "action", action, "rack", rack ? rack : "*", "record",
                        record ? record : json_null());
  int rc = e ? rp_audit_record(a, caller, e, now) : -ENOMEM;
  json_decref(e);
  return rc;
}

static const char *const flag_names[] = {"scale-back", "pause-admissions", "evacuate",
                                         "maintenance"};

static enum MHD_Result post_flag(struct rp_aggregator *a, struct MHD_Connection *conn,
                                 const json_t *body, const struct rp_caller *caller) {
  const char *rack = json_string_value(json_object_get(body, "rack"));
  const char *flag = json_string_value(json_object_get(body, "flag"));
  const char *owner = json_string_value(json_object_get(body, "owner"));
  const char *reason = json_string_value(json_object_get(body, "reason"));
  json_t *expires = json_object_get(body, "expires_ms");
  bool known = false;
  for (size_t i = 0; i < 4 && flag; i++)
    known |= strcmp(flag, flag_names[i]) == 0;
  if (!valid_name(rack) || !known || !valid_name(owner))
    return rp_http_reply_error(
        conn, 400,
        "rack, owner: valid ids; flag: scale-back, pause-admissions, evacuate "
        "or maintenance");
  int64_t now = rp_now_ms();
  if (!json_is_integer(expires) || json_integer_value(expires) <= now)
    return rp_http_reply_error(conn, 400, "expires_ms: a Unix time in ms in the future");
  if (reason != NULL && strlen(reason) > 256)
    return rp_http_reply_error(conn, 400, "reason: at most 256 characters");
  json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:I, s:O, s:s}", "rack", rack, "flag", flag, "owner",
                        owner, "reason", reason ? reason : "", "set_ms", (json_int_t)now,
                        "expires_ms", expires, "source", "api");
  /* The flag itself names who set it and for which deploy. */
  json_object_set_new(f, "client", json_string(caller->client ? caller->client->name : "?"));
  if (caller->deploy != NULL)
    json_object_set(f, "deploy", caller->deploy);
  int rc = rp_ledger_flag_put(a->ledger, rack, flag, f);
  if (rc != 0) {
    json_decref(f);
    return rp_http_reply_error(conn, 503, rp_ledger_write_error(rc));
  }
  char version[64];
  rp_gate_policy_version(a->gate, version, sizeof(version));
  rp_events_publish(a->events, f, true, version);
  if (audit_change(a, caller, "flag_set", rack, f, now) != 0) {
    json_decref(f);
    return rp_http_reply_error(conn, 503,
                               "the flag is set but its audit entry was not kept (logged)");
  }
  return rp_http_reply_json(conn, 201, f);
}

/* Retires a device of a rack: it stops being an expected member of the
 * rack's gate inputs (store_retire_device()) until it reports again. The
 * retirement goes to the audit log like a gate decision. */
/* Whether the store holds a device record or a latest value of `device`
 * in `rack` (what store_retire_device() would remove). */
struct known {
  const char *device;
  size_t dlen;
  bool found;
};
static void known_device(void *ctx, const char *device, const struct store_device *d) {
  (void)d;
  struct known *k = ctx;
  k->found |= strcmp(device, k->device) == 0;
}
static void known_latest(void *ctx, const char *key, const struct store_latest *l) {
  (void)l;
  struct known *k = ctx;
  size_t kl = strlen(key);
  k->found |=
      kl > k->dlen && key[kl - k->dlen - 1] == '@' && strcmp(key + kl - k->dlen, k->device) == 0;
}
static bool device_known(struct rp_aggregator *a, const char *rack, const char *device) {
  struct known k = {device, strlen(device), false};
  struct store_read *r;
  if (store_read_begin(a->store, &r) != 0)
    return true; /* store_retire_device() says */
  store_read_each_device(r, rack, known_device, &k);
  if (!k.found)
    store_read_each_latest(r, rack, known_latest, &k);
  store_read_end(r);
  return k.found;
}

static enum MHD_Result post_retire(struct rp_aggregator *a, struct MHD_Connection *conn,
                                   const char *rack, const char *device, const json_t *body,
                                   const struct rp_caller *caller) {
  const char *owner = json_string_value(json_object_get(body, "owner"));
  const char *reason = json_string_value(json_object_get(body, "reason"));
  if (!valid_name(owner))
    return rp_http_reply_error(conn, 400, "owner: 1..64 characters of A-Z a-z 0-9 . _ -");
  if (reason != NULL && strlen(reason) > 256)
    return rp_http_reply_error(conn, 400, "reason: at most 256 characters");
  size_t removed = 0;
  char err[256];
  int64_t now = rp_now_ms();
  if (!device_known(a, rack, device))
    return rp_http_reply_error(conn, 404,
                               "no such device in that rack (never reported, or retired)");
  /* The site's record first (on the ledger topic in a cluster): a
   * retirement the topic did not take is not made. */
  json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:I}", "rack", rack, "device", device, "owner", owner,
                        "reason", reason ? reason : "", "retired_ms", (json_int_t)now);
  int rc = t ? rp_ledger_retired_put(a->ledger, t) : -ENOMEM;
  json_decref(t);
  if (rc != 0)
    return rp_http_reply_error(conn, 503, rp_ledger_write_error(rc));
  rc = store_retire_device(a->store, rack, device, owner, now, &removed, err, sizeof(err));
  if (rc != 0) {
    rp_warn("http", "retire %s of rack %s: %s", device, rack, err);
    return rp_http_reply_error(conn, 503, err);
  }
  if (removed == 0)
    return rp_http_reply_error(conn, 404,
                               "no such device in that rack (never reported, or retired)");
  char id[RP_ID_MAX + 32];
  snprintf(id, sizeof(id), "retire-%lld-%s", (long long)now, device);
  json_t *e =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "rack", rack, "action", "device_retire",
                "device", device, "owner", owner, "reason", reason ? reason : "", "decision_id", id,
                "evaluated_at_ms", (json_int_t)now, "records_removed", (json_int_t)removed);
  if (rp_audit_record(a, caller, e, now) != 0) {
    json_decref(e);
    return rp_http_reply_error(conn, 503,
                               "the device is retired but its audit entry was not kept (logged)");
  }
  rp_info("http", "device %s of rack %s retired by %s (%zu records)", device, rack, owner, removed);
  return rp_http_reply_json(conn, 200, e);
}

/* A reservation change's answer, audited when it succeeded. */
static enum MHD_Result reservation_done(struct rp_aggregator *a, struct MHD_Connection *conn,
                                        const struct rp_caller *caller, const char *action, int st,
                                        json_t *r, int64_t now) {
  if (st >= 200 && st < 300 &&
      audit_change(a, caller, action, json_string_value(json_object_get(r, "rack")), r, now) != 0) {
    json_decref(r);
    return rp_http_reply_error(conn, 503,
                               "the change was made but its audit entry was not kept (logged)");
  }
  return rp_http_reply_json(conn, (unsigned)st, r);
}

enum MHD_Result rp_http_change(struct rp_aggregator *a, struct MHD_Connection *conn,
                               const char *method, const char *url, json_t *body,
                               const struct rp_caller *caller) {
  int st = 0;
  int64_t now = rp_now_ms();
  bool handled;
  enum MHD_Result dr = rp_http_deploy_change(a, conn, method, url, body, caller, &handled);
  if (handled)
    return dr;
  static const char res_prefix[] = "/v1/reservations/";
  static const char flag_prefix[] = "/v1/flags/";
  if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/reservations") == 0) {
    /* The record names who asked: the authenticated client and its deploy,
     * never what the body claims. */
    json_object_set_new(body, "client",
                        json_string(caller->client ? caller->client->name : "anonymous"));
    if (caller->deploy != NULL)
      json_object_set(body, "deploy", caller->deploy);
    else
      json_object_del(body, "deploy");
    json_t *r = rp_reservation_create(a, body, now, &st);
    return reservation_done(a, conn, caller, "reservation_create", st, r, now);
  }
  if (strncmp(url, res_prefix, sizeof(res_prefix) - 1) == 0) {
    char id[RP_ID_MAX + 1];
    const char *rest = url + sizeof(res_prefix) - 1;
    size_t len = strcspn(rest, "/");
    if (!rp_http_valid_id(rest, len))
      return rp_http_reply_error(conn, 400, "reservation id: 1..64 characters");
    memcpy(id, rest, len);
    id[len] = '\0';
    if (strcmp(method, "DELETE") == 0 && rest[len] == '\0') {
      json_t *r = rp_reservation_release(a, id, now, &st);
      return reservation_done(a, conn, caller, "reservation_release", st, r, now);
    }
    if (strcmp(method, "POST") == 0 && strcmp(rest + len, "/extend") == 0) {
      json_t *r = rp_reservation_extend(a, id, body, now, &st);
      return reservation_done(a, conn, caller, "reservation_extend", st, r, now);
    }
  }
  static const char rack_prefix[] = "/v1/racks/";
  if (strcmp(method, "POST") == 0 && strncmp(url, rack_prefix, sizeof(rack_prefix) - 1) == 0) {
    /* /v1/racks/{rack}/devices/{device}/retire */
    const char *rack = url + sizeof(rack_prefix) - 1;
    size_t rlen = strcspn(rack, "/");
    static const char mid[] = "/devices/", tail[] = "/retire";
    const char *dev = rack + rlen + sizeof(mid) - 1;
    size_t dlen = strncmp(rack + rlen, mid, sizeof(mid) - 1) == 0 ? strcspn(dev, "/") : 0;
    if (dlen == 0 || strcmp(dev + dlen, tail) != 0)
      return rp_http_reply_error(conn, 404, "no such endpoint");
    if (!rp_http_valid_id(rack, rlen) || !rp_http_valid_id(dev, dlen))
      return rp_http_reply_error(conn, 400, "rack, device: 1..64 characters of A-Z a-z 0-9 . _ -");
    char rack_id[RP_ID_MAX + 1], dev_id[RP_ID_MAX + 1];
    memcpy(rack_id, rack, rlen);
    rack_id[rlen] = '\0';
    memcpy(dev_id, dev, dlen);
    dev_id[dlen] = '\0';
    return post_retire(a, conn, rack_id, dev_id, body, caller);
  }
  if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/flags") == 0)
    return post_flag(a, conn, body, caller);
  if (strcmp(method, "DELETE") == 0 && strncmp(url, flag_prefix, sizeof(flag_prefix) - 1) == 0) {
    const char *rest = url + sizeof(flag_prefix) - 1;
    const char *slash = strchr(rest, '/');
    char rack[RP_ID_MAX + 1];
    if (slash == NULL || !rp_http_valid_id(rest, (size_t)(slash - rest)))
      return rp_http_reply_error(conn, 400, "expected /v1/flags/{rack}/{flag}");
    memcpy(rack, rest, (size_t)(slash - rest));
    rack[slash - rest] = '\0';
    /* The flag as it was, for the event. */
    json_t *was = NULL, *all = rp_ledger_flag_list(a->ledger, rack), *f;
    size_t i;
    json_array_foreach(all, i, f) {
      if (was == NULL && strcmp(json_string_value(json_object_get(f, "flag")), slash + 1) == 0)
        was = json_incref(f);
    }
    json_decref(all);
    int rc = rp_ledger_flag_del(a->ledger, rack, slash + 1);
    int audited = 0;
    if (rc == 0 && was != NULL) {
      char version[64];
      rp_gate_policy_version(a->gate, version, sizeof(version));
      rp_events_publish(a->events, was, false, version);
      audited = audit_change(a, caller, "flag_clear", rack, was, now);
    }
    json_decref(was);
    if (rc == -ENOENT)
      return rp_http_reply_error(conn, 404, "no such flag on that rack");
    if (rc != 0)
      return rp_http_reply_error(conn, 503, rp_ledger_write_error(rc));
    if (audited != 0)
      return rp_http_reply_error(conn, 503,
                                 "the flag is cleared but its audit entry was not kept (logged)");
    return rp_http_reply_json(
        conn, 200,
        json_pack("{s:s, s:s, s:s}", "rack", rack, "flag", slash + 1, "state", "cleared"));
  }
  return rp_http_reply_error(conn, 404, "no such endpoint");
}
