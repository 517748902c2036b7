/* The SNMP collector's pure parts: OIDs, value conversion and scaling, and
 * the monotonic energy counter. Contracts in snmp_value.h. */
#include "snmp_value.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int snmp_oid_parse(const char *text, struct snmp_oid *out) {
  memset(out, 0, sizeof(*out));
  if (text == NULL)
    return -EINVAL;
  const char *p = text;
  if (*p == '.')
    p++;
  if (*p == '\0')
    return -EINVAL;
  while (*p != '\0') {
    if (*p < '0' || *p > '9' || out->len == SNMP_OID_MAX)
      return -EINVAL;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
      v = v * 10 + (uint64_t)(*p - '0');
      if (v > UINT32_MAX)
        return -EINVAL;
      p++;
    }
    out->sub[out->len++] = (uint32_t)v;
    if (*p == '.') {
      p++;
      if (*p == '\0')
        return -EINVAL;
    } else if (*p != '\0') {
      return -EINVAL;
    }
  }
  return out->len >= 2 ? 0 : -EINVAL;
}

char *snmp_subids_format(const uint32_t *sub, size_t n, char *buf, size_t len) {
  size_t off = 0;
  if (len == 0)
    return buf;
  buf[0] = '\0';
  for (size_t i = 0; i < n && off < len; i++) {
    int w = snprintf(buf + off, len - off, "%s%u", i ? "." : "", sub[i]);
    if (w < 0)
      break;
    off += (size_t)w;
  }
  return buf;
}

char *snmp_oid_format(const struct snmp_oid *o, char *buf, size_t len) {
  return snmp_subids_format(o->sub, o->len, buf, len);
}

int snmp_oid_cmp(const struct snmp_oid *a, const struct snmp_oid *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  for (size_t i = 0; i < n; i++)
    if (a->sub[i] != b->sub[i])
      return a->sub[i] < b->sub[i] ? -1 : 1;
  return (int)a->len - (int)b->len;
}

bool snmp_oid_under(const struct snmp_oid *root, const struct snmp_oid *o) {
  if (o->len <= root->len)
    return false;
  return memcmp(root->sub, o->sub, root->len * sizeof(root->sub[0])) == 0;
}

const char *snmp_vtype_name(enum snmp_vtype t) {
  switch (t) {
  case SNMP_V_MISSING: return "missing";
  case SNMP_V_INTEGER: return "INTEGER";
  case SNMP_V_GAUGE: return "Gauge32";
  case SNMP_V_COUNTER32: return "Counter32";
  case SNMP_V_COUNTER64: return "Counter64";
  case SNMP_V_TIMETICKS: return "TimeTicks";
  case SNMP_V_STRING: return "OCTET STRING";
  case SNMP_V_OTHER: return "a non-numeric type";
  case SNMP_V_NOSUCHOBJECT: return "noSuchObject";
  case SNMP_V_NOSUCHINSTANCE: return "noSuchInstance";
  case SNMP_V_ENDOFMIBVIEW: return "endOfMibView";
  case SNMP_V_ERROR: return "error";
  }
  return "?";
}

static bool numeric(const struct snmp_value *v, double *out) {
  switch (v->type) {
  case SNMP_V_INTEGER: *out = (double)v->i; return true;
  case SNMP_V_GAUGE:
  case SNMP_V_COUNTER32:
  case SNMP_V_COUNTER64:
  case SNMP_V_TIMETICKS: *out = (double)v->u; return true;
  default: return false;
  }
}

bool snmp_value_raw_unsigned(const struct snmp_value *v, uint64_t *raw) {
  if (v->type == SNMP_V_INTEGER) {
    if (v->i < 0)
      return false;
    *raw = (uint64_t)v->i;
    return true;
  }
  double d;
  if (!numeric(v, &d))
    return false;
  *raw = v->u;
  return true;
}

/* The status of a value that is no number, with its reason. */
static enum snmp_conv not_a_number(const struct snmp_value *v, const char *what, char *why,
                                   size_t whylen) {
  switch (v->type) {
  case SNMP_V_MISSING: snprintf(why, whylen, "%smissing", what); return SNMP_CONV_ABSENT;
  case SNMP_V_NOSUCHOBJECT:
  case SNMP_V_NOSUCHINSTANCE:
  case SNMP_V_ENDOFMIBVIEW:
    snprintf(why, whylen, "%s%s", what, snmp_vtype_name(v->type));
    return SNMP_CONV_ABSENT;
  case SNMP_V_ERROR: snprintf(why, whylen, "%srequest failed", what); return SNMP_CONV_ERROR;
  default:
    snprintf(why, whylen, "%s%s where a number was expected", what, snmp_vtype_name(v->type));
    return SNMP_CONV_BAD_TYPE;
  }
}

enum snmp_conv snmp_value_convert(const struct snmp_value *v, const struct snmp_scaling *s,
                                  const struct snmp_value *digits, double *out, int *decimals,
                                  char *why, size_t whylen) {
  double raw;
  *out = 0;
  *decimals = s->decimals;
  if (why && whylen)
    why[0] = '\0';
  if (!numeric(v, &raw))
    return not_a_number(v, "", why, whylen);
  if (s->has_invalid && v->type == SNMP_V_INTEGER && v->i == s->invalid) {
    snprintf(why, whylen, "%lld: not supported by the device", (long long)s->invalid);
    return SNMP_CONV_ABSENT;
  }
  int d = 0;
  if (digits != NULL) {
    double dd;
    if (!numeric(digits, &dd)) {
      enum snmp_conv c = not_a_number(digits, "decimal digits: ", why, whylen);
      return c == SNMP_CONV_ABSENT ? SNMP_CONV_ERROR : c;
    }
    if (dd < 0 || dd > 9) {
      snprintf(why, whylen, "decimal digits %.0f outside 0..9", dd);
      return SNMP_CONV_ERROR;
    }
    d = (int)dd;
  }
  *out = raw * s->scale / pow(10, d);
  *decimals = s->decimals + d > 9 ? 9 : s->decimals + d;
  return SNMP_CONV_OK;
}

double snmp_counter_update(struct snmp_counter *c, uint64_t raw, int wrap_bits, bool restarted,
                           double unit, enum snmp_counter_event *ev) {
  enum snmp_counter_event e;
  if (!c->primed) {
    c->primed = true;
    c->total = (double)raw * unit;
    e = SNMP_CTR_FIRST;
  } else if (raw >= c->last_raw) {
    c->total += (double)(raw - c->last_raw) * unit;
    e = SNMP_CTR_STEP;
  } else if (wrap_bits > 0 && !restarted) {
    uint64_t delta = wrap_bits >= 64 ? raw - c->last_raw /* modular in uint64_t */
                                     : raw + ((uint64_t)1 << wrap_bits) - c->last_raw;
    c->total += (double)delta * unit;
    c->wraps++;
    e = SNMP_CTR_WRAP;
  } else {
    c->total += (double)raw * unit;
    c->resets++;
    e = SNMP_CTR_RESET;
  }
  c->last_raw = raw;
  if (ev != NULL)
    *ev = e;
  return c->total;
}

bool snmp_uptime_restarted(uint32_t prev, uint32_t now) {
  if (now >= prev)
    return false;
  const uint32_t day = 100u * 86400u;
  if (prev > UINT32_MAX - day && now < day)
    return false; /* TimeTicks wrapped after 497 days */
  return true;
}
