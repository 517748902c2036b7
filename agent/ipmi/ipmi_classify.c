/*
 * ipmi_classify.c: the sensor name classifier (vendor names such as
 * "GPU3 Temp" or "PS1 Input Power" to rackpulse metrics and labels), its
 * built-in pattern table, the glob matcher behind it, and the PSU
 * input-power sum built on it. Pure like the line parsers of ipmi_parse.c
 * (contracts in ipmi_parse.h): caller's buffers, no I/O, no allocation.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ipmi_parse.h"
#include "ipmi_text.h"

/* --------------------------------------------------------- classifier */

/*
 * The built-in table; the first matching row wins, so specific rows come
 * before general ones (PSU temperatures before "*Inlet*", output power
 * before "PSU# *Power*").
 */
const struct ipmi_pattern ipmi_default_patterns[] = {
    /* GPUs: Supermicro/Lenovo "GPU3 Temp", DGX-style "GPU0_TEMP" */
    {"GPU# Temp", "Cel", NULL, "gpu.temp", "gpu"},
    {"GPU #*Temp", "Cel", NULL, "gpu.temp", "gpu"},
    {"GPU#_Temp", "Cel", NULL, "gpu.temp", "gpu"},
    {"GPU# Power", "W", NULL, "gpu.power", "gpu"},
    {"GPU#_P*W*R", "W", NULL, "gpu.power", "gpu"},
    /* PSU temperatures, before the air rows: "PS1 Inlet Temp",
	 * HPE "15-P/S 1 Inlet" */
    {"PS# *Temp*", "Cel", NULL, "psu.temp", "psu"},
    {"PSU# *Temp*", "Cel", NULL, "psu.temp", "psu"},
    {"*P/S #*", "Cel", NULL, "psu.temp", "psu"},
    /* Air */
    {"*Inlet*", "Cel", NULL, "server.inlet_temp", NULL},
    {"*Ambient*", "Cel", NULL, "server.inlet_temp", NULL},
    {"*Exhaust*", "Cel", NULL, "server.exhaust_temp", NULL},
    {"*Outlet*", "Cel", NULL, "server.exhaust_temp", NULL},
    /* CPUs: "CPU1 Temp", HPE "02-CPU 1", Dell "Temp" on entity 3.N */
    {"CPU# Temp", "Cel", NULL, "cpu.temp", "cpu"},
    {"CPU#_Temp", "Cel", NULL, "cpu.temp", "cpu"},
    {"*-CPU #", "Cel", NULL, "cpu.temp", "cpu"},
    {"Temp", "Cel", "3.*", "cpu.temp", "cpu"},
    /* Fans: "FAN1", Dell "Fan1A", HPE "Fan 1" (percent) */
    {"FAN*", "rpm", NULL, "fan.speed", "fan"},
    {"FAN*", "%", NULL, "fan.duty", "fan"},
    /* PSU power */
    {"PS# Input Power", "W", NULL, "psu.input_power", "psu"},
    {"PS# *Out*Power*", "W", NULL, "psu.output_power", "psu"},
    {"PSU# *Out*Power*", "W", NULL, "psu.output_power", "psu"},
    {"PSU# *Power*", "W", NULL, "psu.input_power", "psu"},
    {"Power Supply #", "W", NULL, "psu.input_power", "psu"},
    /* Whole server: Dell "Pwr Consumption", HPE "Power Meter" */
    {"Pwr Consumption", "W", NULL, "server.input_power", NULL},
    {"Power Meter", "W", NULL, "server.input_power", NULL},
};

const size_t ipmi_default_patterns_len =
    sizeof(ipmi_default_patterns) / sizeof(ipmi_default_patterns[0]);

#define GLOB_MAX 64
#define GLOB_NAME_MAX 255

struct gm {
  const char *g0;          /* the glob */
  size_t gn;               /* its length */
  const char *s0;          /* the name */
  size_t sn;               /* its length */
  size_t capw;             /* glob offset of the capturing wildcard,
	                               or (size_t)-1 */
  size_t cap_off, cap_len; /* result */
  /* Memo of (glob offset, name offset) pairs known not to match, bit
	 * gi * (sn + 1) + si: it keeps matching polynomial whatever the
	 * number of '*'. Only the bytes in use are cleared. */
  uint8_t failed[(GLOB_MAX + 1) * (GLOB_NAME_MAX + 1) / 8 + 1];
};

/* Match a set "[...]" at g (g points at '['); *end gets the index after
 * ']'. Returns -1 for a malformed set. */
static int set_match(const char *g, size_t gn, size_t gi, int ch, size_t *end) {
  size_t i = gi + 1;
  bool neg = false, hit = false, first = true;
  int c = lower(ch);

  if (i < gn && (g[i] == '!' || g[i] == '^')) {
    neg = true;
    i++;
  }
  for (; i < gn; i++) {
    int lo = (unsigned char)g[i], hi;
    if (lo == ']' && !first) {
      *end = i + 1;
      return hit != neg;
    }
    first = false;
    hi = lo;
    if (i + 2 < gn && g[i + 1] == '-' && g[i + 2] != ']') {
      hi = (unsigned char)g[i + 2];
      i += 2;
    }
    if ((c >= lower(lo) && c <= lower(hi)) || (ch >= lo && ch <= hi))
      hit = true;
  }
  return -1;
}

static bool gm_run(struct gm *m, size_t gi, size_t si) {
  size_t bit = gi * (m->sn + 1) + si;

  if (m->failed[bit / 8] & (1u << (bit % 8)))
    return false;
  while (gi < m->gn) {
    char g = m->g0[gi];

    if (g == '*') {
      size_t k;
      for (k = si; k <= m->sn; k++) {
        if (gm_run(m, gi + 1, k)) {
          if (gi == m->capw) {
            m->cap_off = si;
            m->cap_len = k - si;
          }
          return true;
        }
      }
      goto fail;
    }
    if (g == '#') {
      size_t k = si;
      while (k < m->sn && is_digit((unsigned char)m->s0[k]))
        k++;
      for (; k > si; k--) { /* longest first */
        if (gm_run(m, gi + 1, k)) {
          if (gi == m->capw) {
            m->cap_off = si;
            m->cap_len = k - si;
          }
          return true;
        }
      }
      goto fail;
    }
    if (si >= m->sn)
      goto fail;
    if (g == '?') {
      if (gi == m->capw) {
        m->cap_off = si;
        m->cap_len = 1;
      }
      gi++;
      si++;
      continue;
    }
    if (g == '[') {
      size_t end;
      int r = set_match(m->g0, m->gn, gi, (unsigned char)m->s0[si], &end);
      if (r != 1)
        goto fail;
      gi = end;
      si++;
      continue;
    }
    if (g == '\\') {
      if (++gi >= m->gn)
        goto fail;
      g = m->g0[gi];
    }
    if (lower((unsigned char)g) != lower((unsigned char)m->s0[si]))
      goto fail;
    gi++;
    si++;
  }
  if (si == m->sn)
    return true;
fail:
  m->failed[bit / 8] |= (uint8_t)(1u << (bit % 8));
  return false;
}

/* Offset in the glob of the capturing wildcard (rule 1), or (size_t)-1. */
static size_t capture_wildcard(const char *g, size_t gn) {
  size_t i, first_any = (size_t)-1;
  bool in_set = false;

  for (i = 0; i < gn; i++) {
    if (in_set) {
      in_set = g[i] != ']';
      continue;
    }
    if (g[i] == '\\') {
      i++;
    } else if (g[i] == '[') {
      in_set = true;
      if (i + 1 < gn && (g[i + 1] == '!' || g[i + 1] == '^'))
        i++;
      i++; /* a ']' right after '[' is a member */
    } else if (g[i] == '#') {
      return i;
    } else if ((g[i] == '*' || g[i] == '?') && first_any == (size_t)-1) {
      first_any = i;
    }
  }
  return first_any;
}

bool ipmi_glob_match(const char *glob, const char *name, size_t len, size_t *cap_off,
                     size_t *cap_len) {
  struct gm m;
  size_t gn;

  if (cap_off != NULL)
    *cap_off = 0;
  if (cap_len != NULL)
    *cap_len = 0;
  if (glob == NULL || (name == NULL && len > 0))
    return false;
  gn = strnlen(glob, GLOB_MAX + 1);
  if (gn > GLOB_MAX || len > GLOB_NAME_MAX)
    return false;
  m.g0 = glob;
  m.gn = gn;
  m.s0 = name;
  m.sn = len;
  m.capw = capture_wildcard(glob, gn);
  m.cap_off = 0;
  m.cap_len = 0;
  memset(m.failed, 0, ((gn + 1) * (len + 1) + 7) / 8);
  if (!gm_run(&m, 0, 0))
    return false;
  if (cap_off != NULL)
    *cap_off = m.cap_off;
  if (cap_len != NULL)
    *cap_len = m.cap_len;
  return true;
}

int ipmi_pattern_check(const char *glob, char *err, size_t errlen) {
  size_t gn, i;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (glob == NULL || glob[0] == '\0') {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "empty pattern");
    return -EINVAL;
  }
  gn = strnlen(glob, GLOB_MAX + 1);
  if (gn > GLOB_MAX) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "pattern longer than %d characters", GLOB_MAX);
    return -EINVAL;
  }
  for (i = 0; i < gn; i++) {
    if (glob[i] == '\\' && i + 1 == gn) {
      set_err(err, errlen, 0, "pattern ends with '\\'", glob, gn);
      return -EINVAL;
    }
    if (glob[i] == '\\') {
      i++;
    } else if (glob[i] == '[') {
      size_t end;
      if (set_match(glob, gn, i, 'a', &end) < 0) {
        set_err(err, errlen, 0, "unterminated '['", glob, gn);
        return -EINVAL;
      }
      i = end - 1;
    }
  }
  return 0;
}

/* Rules 2 and 3 of the capture: trim, cut, drop leading zeros. */
static void normalise_label(struct span s, char *dst, size_t size) {
  size_t i;
  bool digits = true;

  while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '_' || s.p[0] == '-')) {
    s.p++;
    s.n--;
  }
  for (i = 0; i < s.n; i++) {
    if (s.p[i] == ' ')
      break;
    if (!is_digit((unsigned char)s.p[i]))
      digits = false;
  }
  s.n = i;
  if (digits)
    while (s.n > 1 && s.p[0] == '0') {
      s.p++;
      s.n--;
    }
  copy_span(dst, size, s);
}

/* Rule 1, last case: the instance of "E.I". */
static struct span entity_instance(const char *entity) {
  const char *dot = strchr(entity, '.');
  struct span s = {entity + strlen(entity), 0};

  if (dot != NULL) {
    s.p = dot + 1;
    s.n = strlen(dot + 1);
  }
  return s;
}

static bool has_wildcard(const char *g) { return g[strcspn(g, "*?#[")] != '\0'; }

/* 1 match (out filled), 0 no match, 2 an "ignore" row matched. */
static int match_row(const struct ipmi_pattern *p, const struct ipmi_reading *r,
                     struct ipmi_class *out) {
  size_t off, clen, nlen = strnlen(r->name, sizeof(r->name));
  bool valueless =
      r->status == IPMI_ST_NA || r->status == IPMI_ST_DISABLED || r->status == IPMI_ST_UNKNOWN_UNIT;
  struct span cap;

  if (p->glob == NULL)
    return 0;
  if (p->unit != NULL && !valueless && strcmp(p->unit, r->unit) != 0)
    return 0;
  if (p->entity != NULL &&
      !ipmi_glob_match(p->entity, r->entity, strnlen(r->entity, sizeof(r->entity)), NULL, NULL))
    return 0;
  if (!ipmi_glob_match(p->glob, r->name, nlen, &off, &clen))
    return 0;
  if (p->metric == NULL)
    return 2;
  out->label_value[0] = '\0';
  if (p->label != NULL) {
    if (has_wildcard(p->glob)) {
      cap.p = r->name + off;
      cap.n = clen;
    } else {
      cap = entity_instance(r->entity);
    }
    normalise_label(cap, out->label_value, sizeof(out->label_value));
    if (out->label_value[0] == '\0')
      return 0;
  }
  out->metric = p->metric;
  out->label = p->label;
  out->pattern = p;
  return 1;
}

int ipmi_classify(const struct ipmi_reading *r, const struct ipmi_pattern *user, size_t nuser,
                  unsigned flags, struct ipmi_class *out) {
  size_t i;

  if (r == NULL || out == NULL || (user == NULL && nuser > 0))
    return -EINVAL;
  memset(out, 0, sizeof(*out));
  for (i = 0; i < nuser; i++) {
    int m = match_row(&user[i], r, out);
    if (m != 0) {
      if (m == 2)
        memset(out, 0, sizeof(*out));
      return m == 1;
    }
  }
  if (flags & IPMI_CLASSIFY_NO_DEFAULTS)
    return 0;
  for (i = 0; i < ipmi_default_patterns_len; i++) {
    int m = match_row(&ipmi_default_patterns[i], r, out);
    if (m != 0) {
      if (m == 2)
        memset(out, 0, sizeof(*out));
      return m == 1;
    }
  }
  return 0;
}

/* ---------------------------------------------------------- PSU power */

#define PSU_SEEN_MAX 64

int ipmi_sum_psu_input(const struct ipmi_reading *r, size_t n, const struct ipmi_pattern *user,
                       size_t nuser, unsigned flags, unsigned expected,
                       struct ipmi_power_sum *out) {
  char seen[PSU_SEEN_MAX][IPMI_NAME_MAX];
  unsigned nseen = 0, psus = 0;
  double sum = 0;
  size_t i;

  if ((r == NULL && n > 0) || out == NULL || (user == NULL && nuser > 0))
    return -EINVAL;
  memset(out, 0, sizeof(*out));
  for (i = 0; i < n; i++) {
    struct ipmi_class c;
    unsigned k;

    if (ipmi_classify(&r[i], user, nuser, flags, &c) != 1 ||
        strcmp(c.metric, "psu.input_power") != 0)
      continue;
    for (k = 0; k < nseen; k++)
      if (strcmp(seen[k], c.label_value) == 0)
        break;
    if (k < nseen)
      continue; /* the same PSU twice: first wins */
    if (nseen < PSU_SEEN_MAX)
      memcpy(seen[nseen++], c.label_value, IPMI_NAME_MAX);
    psus++;
    switch (r[i].status) {
    case IPMI_ST_OK:
    case IPMI_ST_NC:
    case IPMI_ST_CR:
    case IPMI_ST_NR:
      sum += r[i].value;
      out->used++;
      break;
    default: out->missing++; break;
    }
  }
  if (expected > psus)
    out->missing += expected - psus;
  if (out->used == 0) {
    out->watts = NAN;
    out->status = IPMI_SUM_NONE;
  } else {
    out->watts = sum;
    out->status = out->missing > 0 ? IPMI_SUM_PARTIAL : IPMI_SUM_COMPLETE;
  }
  return 0;
}
