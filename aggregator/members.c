/* Combining the members of a gate input (see members.h): unit
 * normalisation, freshness by two clocks, and max/min/sum where one bad
 * member fails the whole input. */
#include "members.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *rp_unit_normalize(const char *unit, double v, double *out) {
  if (strcmp(unit, "W") == 0) {
    *out = v / 1000.0;
    return "kW";
  }
  if (strcmp(unit, "MW") == 0) {
    *out = v * 1000.0;
    return "kW";
  }
  *out = v;
  return unit;
}

int64_t rp_member_age_ms(int64_t now_ms, int64_t ts_ms, int64_t received_ms) {
  int64_t age = now_ms - ts_ms;
  if (received_ms > 0 && now_ms - received_ms > age)
    age = now_ms - received_ms;
  return age;
}

void rp_member_device(const char *key, char *out, size_t len) {
  const char *end = strrchr(key, '|');
  size_t klen = end ? (size_t)(end - key) : strlen(key);
  const char *at = NULL;
  for (size_t i = 0; i < klen; i++)
    if (key[i] == '@')
      at = key + i;
  if (at == NULL) {
    snprintf(out, len, "?");
    return;
  }
  snprintf(out, len, "%.*s", (int)(klen - (size_t)(at + 1 - key)), at + 1);
}

/* "series on device D" for a reason: the device, and the labels when any. */
static void member_name(const struct rp_members *m, const char *key, char *out, size_t len) {
  char device[96];
  rp_member_device(key, device, sizeof(device));
  const char *labels = strchr(key, '{');
  const char *close = labels ? strchr(labels, '}') : NULL;
  if (labels != NULL && close != NULL)
    snprintf(out, len, "%s%.*s of device %s", m->series, (int)(close - labels + 1), labels, device);
  else
    snprintf(out, len, "%s of device %s", m->series, device);
}

void rp_members_fail(struct rp_members *m, const char *key, const char *what) {
  if (m->failed)
    return;
  m->failed = true;
  char name[160];
  member_name(m, key, name, sizeof(name));
  snprintf(m->why, sizeof(m->why), "%s: %s", name, what);
}

void rp_members_add(struct rp_members *m, const char *key, int status, const char *detail, double v,
                    const char *unit, int64_t ts_ms, int64_t received_ms) {
  char what[160];
  if (status != 0 || !isfinite(v)) {
    static const char *const names[] = {"ok", "absent", "out of range", "in error", "stale"};
    snprintf(what, sizeof(what), "%s%s%s",
             status > 0 && status < 5 ? names[status] : "reading not valid",
             detail && detail[0] ? ": " : "", detail ? detail : "");
    rp_members_fail(m, key, what);
    return;
  }
  int64_t age = rp_member_age_ms(m->now_ms, ts_ms, received_ms);
  if (age > m->max_age_ms) {
    snprintf(what, sizeof(what), "stale (last heard %.1f s ago, limit %.0f s)",
             (double)age / 1000.0, (double)m->max_age_ms / 1000.0);
    rp_members_fail(m, key, what);
    return;
  }
  double x;
  const char *canon = rp_unit_normalize(unit, v, &x);
  if (m->n > 0 && strcmp(canon, m->unit) != 0) {
    snprintf(what, sizeof(what), "unit '%s' cannot be combined with '%s' of the other members",
             unit, m->unit);
    rp_members_fail(m, key, what);
    return;
  }
  if (m->n == 0) {
    snprintf(m->unit, sizeof(m->unit), "%s", canon);
    m->v = x;
  } else if (m->across == RP_ACROSS_SUM) {
    m->v += x;
  } else if (m->across == RP_ACROSS_MAX ? x > m->v : x < m->v) {
    m->v = x;
  }
  m->n++;
  if (ts_ms > m->ts_ms)
    m->ts_ms = ts_ms;
}

bool rp_members_ok(struct rp_members *m) {
  if (m->failed)
    return false;
  if (m->n == 0) {
    snprintf(m->why, sizeof(m->why), "no %s reported", m->series);
    return false;
  }
  return true;
}
