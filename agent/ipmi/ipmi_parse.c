/*
 * ipmi_parse.c: pure parsers of ipmitool's text output (sdr list/elist,
 * sensor, their -c CSV forms, dcmi power reading). The name classifier,
 * its built-in pattern table and the PSU input-power sum are in
 * ipmi_classify.c; both share the span helpers of ipmi_text.h.
 *
 * The formats come from ipmitool's source (lib/ipmi_sdr.c, ipmi_sensor.c,
 * ipmi_dcmi.c) and were checked against ipmi_sim; the fixtures in
 * tests/fixtures/ipmitool/ show each of them. Every routine works on
 * (pointer, length) spans of the caller's buffer and copies only into
 * fixed-size fields through bounded copies: the input may be any bytes.
 * Numbers are parsed here rather than with strtod so that the result does
 * not depend on the locale.
 */
#include "ipmi_parse.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ipmi_text.h"

/* ------------------------------------------------------------- helpers */

/* Case-insensitive comparison of a span with a NUL-terminated word. */
static bool span_eq(struct span s, const char *w) {
  size_t i;

  for (i = 0; i < s.n; i++) {
    if (w[i] == '\0' || lower((unsigned char)s.p[i]) != lower((unsigned char)w[i]))
      return false;
  }
  return w[i] == '\0';
}

static bool span_starts(struct span s, const char *w) {
  size_t i;

  for (i = 0; w[i] != '\0'; i++) {
    if (i >= s.n || lower((unsigned char)s.p[i]) != lower((unsigned char)w[i]))
      return false;
  }
  return true;
}

/* Case-insensitive search of word in a span. */
static bool span_has(struct span s, const char *w) {
  size_t wn = strlen(w), i;

  if (wn == 0 || wn > s.n)
    return wn == 0;
  for (i = 0; i + wn <= s.n; i++) {
    struct span t = {s.p + i, wn};
    if (span_eq(t, w))
      return true;
  }
  return false;
}

/*
 * Parse a whole span as a decimal number: [+-]digits[.digits] or
 * [+-].digits, at most 18 digits. The mantissa is an exact integer and the
 * scale an exact power of ten, so the one division is correctly rounded,
 * like strtod, without its locale.
 */
static bool parse_number(struct span s, double *v) {
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
  uint64_t m = 0;
  size_t i = 0;
  unsigned digits = 0, frac = 0;
  bool neg = false, dot = false;

  if (s.n == 0)
    return false;
  if (s.p[0] == '-' || s.p[0] == '+') {
    neg = s.p[0] == '-';
    i++;
  }
  for (; i < s.n; i++) {
    char c = s.p[i];
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (!is_digit((unsigned char)c) || ++digits > 18)
      return false;
    m = m * 10 + (uint64_t)(c - '0');
    if (dot)
      frac++;
  }
  if (digits == 0)
    return false;
  *v = (double)m / pow10[frac];
  if (neg)
    *v = -*v;
  return true;
}

/* A whole span of decimal digits, at most 10 of them. */
static bool parse_ulong(struct span s, unsigned long *v) {
  unsigned long x = 0;
  size_t i;

  if (s.n == 0 || s.n > 10)
    return false;
  for (i = 0; i < s.n; i++) {
    if (!is_digit((unsigned char)s.p[i]))
      return false;
    x = x * 10 + (unsigned long)(s.p[i] - '0');
  }
  *v = x;
  return true;
}

/* "01h", "C8h": a sensor number as sdr elist prints it. */
static bool parse_sensor_num(struct span s, int *num) {
  int x = 0;
  size_t i;

  if (s.n < 2 || s.n > 3 || lower((unsigned char)s.p[s.n - 1]) != 'h')
    return false;
  for (i = 0; i + 1 < s.n; i++) {
    int c = lower((unsigned char)s.p[i]), d;
    if (is_digit(c))
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;
    x = x * 16 + d;
  }
  *num = x;
  return true;
}

/* "7.1", "32.10": an entity id and instance. */
static bool is_entity(struct span s) {
  size_t i, before = 0, after = 0;
  bool dot = false;

  for (i = 0; i < s.n; i++) {
    if (s.p[i] == '.' && !dot)
      dot = true;
    else if (!is_digit((unsigned char)s.p[i]))
      return false;
    else if (dot)
      after++;
    else
      before++;
  }
  return dot && before > 0 && before <= 3 && after > 0 && after <= 3;
}

/* "0x1", "0x0100": a hexadecimal state as `sensor` prints it. */
static bool is_hex(struct span s) {
  size_t i;

  if (s.n < 3 || s.p[0] != '0' || lower((unsigned char)s.p[1]) != 'x')
    return false;
  for (i = 2; i < s.n; i++) {
    int c = lower((unsigned char)s.p[i]);
    if (!is_digit(c) && !(c >= 'a' && c <= 'f'))
      return false;
  }
  return true;
}

/* --------------------------------------------------------- units, status */

static const struct {
  const char *raw;
  const char *unit;
} unit_table[] = {
    {"degrees C", "Cel"}, {"RPM", "rpm"}, {"Watts", "W"},
    {"Volts", "V"},       {"Amps", "A"},  {"percent", "%"},
};

static const char *unit_map_span(struct span s) {
  size_t i;

  for (i = 0; i < sizeof(unit_table) / sizeof(unit_table[0]); i++)
    if (span_eq(s, unit_table[i].raw))
      return unit_table[i].unit;
  return NULL;
}

const char *ipmi_unit_map(const char *raw, size_t len) {
  struct span s = {raw, len};

  if (raw == NULL)
    return NULL;
  return unit_map_span(trim(s));
}

const char *ipmi_status_name(enum ipmi_status st) {
  switch (st) {
  case IPMI_ST_OK: return "ok";
  case IPMI_ST_NA: return "na";
  case IPMI_ST_DISABLED: return "disabled";
  case IPMI_ST_NC: return "nc";
  case IPMI_ST_CR: return "cr";
  case IPMI_ST_NR: return "nr";
  case IPMI_ST_DISCRETE: return "discrete";
  case IPMI_ST_UNKNOWN_UNIT: return "unknown-unit";
  }
  return "?";
}

/* ipmitool's status words; false when the word is not one of them. */
static bool status_word(struct span s, enum ipmi_status *st) {
  static const struct {
    const char *w;
    enum ipmi_status st;
  } words[] = {
      {"ok", IPMI_ST_OK},  {"ns", IPMI_ST_NA},  {"na", IPMI_ST_NA},  {"nc", IPMI_ST_NC},
      {"lnc", IPMI_ST_NC}, {"unc", IPMI_ST_NC}, {"cr", IPMI_ST_CR},  {"lcr", IPMI_ST_CR},
      {"ucr", IPMI_ST_CR}, {"nr", IPMI_ST_NR},  {"lnr", IPMI_ST_NR}, {"unr", IPMI_ST_NR},
  };
  size_t i;

  for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
    if (span_eq(s, words[i].w)) {
      *st = words[i].st;
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------- line parsing */

#define MAX_FIELDS 16

/* Split at sep into at most MAX_FIELDS trimmed fields; the last one takes
 * the rest. Returns the number of fields. */
static size_t split(struct span line, char sep, struct span *f) {
  size_t nf = 0, start = 0, i;

  for (i = 0; i <= line.n; i++) {
    if (i < line.n && (line.p[i] != sep || nf == MAX_FIELDS - 1))
      continue;
    f[nf].p = line.p + start;
    f[nf].n = i - start;
    f[nf] = trim(f[nf]);
    nf++;
    start = i + 1;
    if (nf == MAX_FIELDS)
      break;
  }
  return nf;
}

static void reading_init(struct ipmi_reading *r, unsigned lineno) {
  size_t i;

  memset(r, 0, sizeof(*r));
  r->value = NAN;
  r->sensor_num = -1;
  for (i = 0; i < IPMI_THRESH_COUNT; i++)
    r->thresh[i] = NAN;
  r->line = lineno;
}

/* Parser context for one line: where to report, and the whole line. */
struct lctx {
  struct span line;
  unsigned lineno;
  char *err;
  size_t errlen;
};

static int bad(const struct lctx *c, const char *why) {
  set_err(c->err, c->errlen, c->lineno, why, c->line.p, c->line.n);
  return -EBADMSG;
}

static int set_name(const struct lctx *c, struct ipmi_reading *r, struct span name) {
  if (name.n >= IPMI_NAME_MAX)
    return bad(c, "sensor name too long");
  copy_span(r->name, sizeof(r->name), name);
  return 0;
}

/*
 * A value with its unit and status word. The status word decides NA;
 * then an unmapped unit makes UNKNOWN_UNIT; else the threshold status.
 */
static int set_analog(const struct lctx *c, struct ipmi_reading *r, struct span value,
                      struct span unit, struct span stword) {
  enum ipmi_status st;
  const char *mapped;
  double v;

  if (!status_word(stword, &st))
    return bad(c, "unknown sensor status");
  copy_span(r->raw_status, sizeof(r->raw_status), stword);
  if (st == IPMI_ST_NA) {
    r->status = IPMI_ST_NA;
    return 1;
  }
  if (!parse_number(value, &v))
    return bad(c, "reading is not a number");
  r->value = v;
  mapped = unit_map_span(unit);
  if (mapped == NULL) {
    if (unit.n >= IPMI_UNIT_MAX)
      return bad(c, "unit too long");
    copy_span(r->unit, sizeof(r->unit), unit);
    r->status = IPMI_ST_UNKNOWN_UNIT;
    return 1;
  }
  snprintf(r->unit, sizeof(r->unit), "%s", mapped);
  r->status = st;
  return 1;
}

/* "No Reading", "Disabled" and their kin; true when text is one of them. */
static bool no_value_text(struct span s, struct ipmi_reading *r) {
  if (span_eq(s, "disabled")) {
    r->status = IPMI_ST_DISABLED;
    return true;
  }
  if (span_eq(s, "no reading") || span_eq(s, "not readable") || span_eq(s, "na") ||
      span_eq(s, "event-only")) {
    r->status = IPMI_ST_NA;
    return true;
  }
  return false;
}

/* "24 degrees C" or "12 Watts, Presence detected": split into number, unit
 * (up to a comma) and the states after it. false when not of that shape. */
static bool split_value_unit(struct span s, struct span *num, struct span *unit,
                             struct span *states) {
  size_t i, sp;
  double v;

  for (sp = 0; sp < s.n && s.p[sp] != ' '; sp++)
    ;
  if (sp == s.n)
    return false;
  num->p = s.p;
  num->n = sp;
  if (!parse_number(*num, &v))
    return false;
  unit->p = s.p + sp + 1;
  unit->n = s.n - sp - 1;
  states->p = s.p + s.n;
  states->n = 0;
  for (i = 0; i < unit->n; i++) {
    if (unit->p[i] == ',') {
      states->p = unit->p + i + 1;
      states->n = unit->n - i - 1;
      *states = trim(*states);
      unit->n = i;
      break;
    }
  }
  *unit = trim(*unit);
  return unit->n > 0;
}

/* The reading column of sdr list / elist, with the row's status word. */
static int sdr_reading(const struct lctx *c, struct ipmi_reading *r, struct span rd,
                       struct span stword) {
  struct span num, unit, states;
  enum ipmi_status st;
  size_t sp;

  if (!status_word(stword, &st))
    return bad(c, "unknown sensor status");
  if (no_value_text(rd, r)) {
    copy_span(r->raw_status, sizeof(r->raw_status), stword);
    if (span_eq(rd, "event-only"))
      copy_span(r->state, sizeof(r->state), rd);
    return 1;
  }
  if (split_value_unit(rd, &num, &unit, &states)) {
    int rc = set_analog(c, r, num, unit, stword);
    if (rc == 1 && states.n > 0)
      copy_span(r->state, sizeof(r->state), states);
    return rc;
  }
  /* "6x5 degrees C": a known unit after something that is no number. */
  for (sp = 0; sp < rd.n && rd.p[sp] != ' '; sp++)
    ;
  if (sp < rd.n) {
    struct span u = {rd.p + sp + 1, rd.n - sp - 1};
    if (unit_map_span(trim(u)) != NULL)
      return bad(c, "reading is not a number");
  }
  /* Discrete: a state list (maybe empty), "0x01", or a locator text. */
  copy_span(r->raw_status, sizeof(r->raw_status), stword);
  copy_span(r->state, sizeof(r->state), rd);
  r->status = st == IPMI_ST_NA ? IPMI_ST_NA : IPMI_ST_DISCRETE;
  return 1;
}

/* `sdr list`: name | reading | status */
static int parse_sdr_list(const struct lctx *c, struct ipmi_reading *r, const struct span *f) {
  int rc = set_name(c, r, f[0]);

  return rc < 0 ? rc : sdr_reading(c, r, f[1], f[2]);
}

/* `sdr elist`: name | 01h | status | 7.1 | reading */
static int parse_sdr_elist(const struct lctx *c, struct ipmi_reading *r, const struct span *f) {
  int rc = set_name(c, r, f[0]);

  if (rc < 0)
    return rc;
  if (!parse_sensor_num(f[1], &r->sensor_num))
    return bad(c, "bad sensor number");
  if (!is_entity(f[3]))
    return bad(c, "bad entity id");
  copy_span(r->entity, sizeof(r->entity), f[3]);
  return sdr_reading(c, r, f[4], f[2]);
}

/* `sensor` and `-c sensor`: name, value, unit, status, 6 thresholds. */
static int parse_sensor(const struct lctx *c, struct ipmi_reading *r, const struct span *f) {
  int rc = set_name(c, r, f[0]);
  size_t i;

  if (rc < 0)
    return rc;
  for (i = 0; i < IPMI_THRESH_COUNT; i++) {
    double v;
    if (parse_number(f[4 + i], &v))
      r->thresh[i] = v;
  }
  if (span_eq(f[1], "na")) {
    const char *mapped = unit_map_span(f[2]);
    r->status = IPMI_ST_NA;
    copy_span(r->raw_status, sizeof(r->raw_status), f[3]);
    if (mapped != NULL) /* "FAN3 | na | RPM | na": still a fan */
      snprintf(r->unit, sizeof(r->unit), "%s", mapped);
    return 1;
  }
  if (span_eq(f[2], "discrete") || is_hex(f[1])) {
    if (!is_hex(f[1]))
      return bad(c, "discrete reading is not hexadecimal");
    r->status = IPMI_ST_DISCRETE;
    copy_span(r->state, sizeof(r->state), is_hex(f[3]) ? f[3] : f[1]);
    if (!is_hex(f[3]))
      copy_span(r->raw_status, sizeof(r->raw_status), f[3]);
    return 1;
  }
  return set_analog(c, r, f[1], f[2], f[3]);
}

/* The rest of a CSV line from field i on, commas included. */
static struct span csv_rest(struct span line, const struct span *f, size_t i) {
  struct span s = {f[i].p, (size_t)(line.p + line.n - f[i].p)};

  return trim(s);
}

/*
 * -c output. `sdr [e]list`: threshold sensors give name,value,unit,status
 * (name,,,ns without a reading); others name,01h,ok,7.1,states or
 * name,value,unit,ok,7.1,states. `sensor`: ten fields as in the table.
 */
static int parse_csv(const struct lctx *c, struct ipmi_reading *r, const struct span *f,
                     size_t nf) {
  enum ipmi_status st;
  int rc;

  if (nf >= 5 && parse_sensor_num(f[1], &r->sensor_num)) {
    if (!status_word(f[2], &st) || !is_entity(f[3]))
      return bad(c, "bad discrete CSV record");
    if ((rc = set_name(c, r, f[0])) < 0)
      return rc;
    copy_span(r->entity, sizeof(r->entity), f[3]);
    copy_span(r->raw_status, sizeof(r->raw_status), f[2]);
    if (st == IPMI_ST_NA) {
      r->status = IPMI_ST_NA;
      return 1;
    }
    r->status = IPMI_ST_DISCRETE;
    copy_span(r->state, sizeof(r->state), csv_rest(c->line, f, 4));
    return 1;
  }
  if (nf == 10)
    return parse_sensor(c, r, f);
  if ((rc = set_name(c, r, f[0])) < 0)
    return rc;
  if (nf == 4)
    return set_analog(c, r, f[1], f[2], f[3]);
  if (nf >= 6 && is_entity(f[4]) && status_word(f[3], &st)) {
    copy_span(r->entity, sizeof(r->entity), f[4]);
    rc = set_analog(c, r, f[1], f[2], f[3]);
    if (rc == 1)
      copy_span(r->state, sizeof(r->state), csv_rest(c->line, f, 5));
    return rc;
  }
  return bad(c, "unexpected number of CSV fields");
}

int ipmi_parse_line(const char *line, size_t len, unsigned lineno, struct ipmi_reading *r,
                    char *err, size_t errlen) {
  struct lctx c = {{line, len}, lineno, err, errlen};
  struct span f[MAX_FIELDS], t;
  size_t i, pipes = 0, nf;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if ((line == NULL && len > 0) || r == NULL)
    return -EINVAL;
  if (len > 0 && line[len - 1] == '\r')
    c.line.n = --len;
  if (len > IPMI_LINE_MAX)
    return bad(&c, "line too long");
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)line[i];
    if (ch < 0x20 || ch >= 0x7f)
      return bad(&c, "unprintable byte");
    pipes += ch == '|';
  }
  t = trim(c.line);
  if (t.n == 0 || span_starts(t, "ipmitool>"))
    return 0;

  reading_init(r, lineno);
  if (pipes > 0) {
    nf = split(c.line, '|', f);
    if (nf == 10)
      return parse_sensor(&c, r, f);
    if (nf != 3 && nf != 5)
      return bad(&c, "unexpected number of '|' fields");
    if (f[0].n == 0)
      return 0; /* a record without a name: nothing to use */
    return nf == 3 ? parse_sdr_list(&c, r, f) : parse_sdr_elist(&c, r, f);
  }
  nf = split(c.line, ',', f);
  if (nf < 4)
    return bad(&c, "not a sensor line");
  if (f[0].n == 0)
    return 0;
  return parse_csv(&c, r, f, nf);
}

int ipmi_parse_sensors(const char *buf, size_t len, struct ipmi_reading *out, size_t cap, size_t *n,
                       struct ipmi_parse_stats *stats, char *err, size_t errlen) {
  struct ipmi_parse_stats st;
  struct ipmi_reading spare;
  char e[160];
  size_t pos = 0, count = 0;
  unsigned lineno = 0;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if ((buf == NULL && len > 0) || n == NULL || (out == NULL && cap > 0))
    return -EINVAL;
  memset(&st, 0, sizeof(st));

  while (pos < len) {
    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    struct ipmi_reading *r = count < cap ? &out[count] : &spare;
    int rc;

    lineno++;
    st.lines++;
    if (nl == NULL) {
      st.truncated = true;
      if (err != NULL && errlen > 0 && err[0] == '\0')
        set_err(err, errlen, lineno, "output ends inside a line (truncated)", line, len - pos);
      break;
    }
    pos += (size_t)(nl - line) + 1;
    rc = ipmi_parse_line(line, (size_t)(nl - line), lineno, r, e, sizeof(e));
    if (rc == 1) {
      if (count < cap) {
        count++;
        st.readings++;
      } else {
        st.dropped++;
      }
    } else if (rc == 0) {
      st.ignored++;
    } else {
      st.malformed++;
      if (err != NULL && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "%s", e);
    }
  }
  *n = count;
  if (stats != NULL)
    *stats = st;
  return st.dropped > 0 ? -ENOBUFS : 0;
}

/* --------------------------------------------------------------- DCMI */

/* "   266 Watts" -> 266 */
static bool dcmi_watts(struct span s, double *w) {
  struct span num, unit, states;

  s = trim(s);
  if (!split_value_unit(s, &num, &unit, &states) || states.n > 0 || !span_eq(unit, "Watts"))
    return false;
  return parse_number(num, w);
}

/* "00000001 Seconds." -> 1 */
static bool dcmi_period(struct span s, unsigned long *sec) {
  size_t sp;

  s = trim(s);
  for (sp = 0; sp < s.n && s.p[sp] != ' '; sp++)
    ;
  if (sp == s.n)
    return false;
  {
    struct span num = {s.p, sp};
    struct span rest = {s.p + sp + 1, s.n - sp - 1};
    rest = trim(rest);
    if (!span_eq(rest, "Seconds.") && !span_eq(rest, "Seconds"))
      return false;
    return parse_ulong(num, sec);
  }
}

/* Result codes of failure lines, most specific first. */
static int dcmi_failure(struct span s) {
  if (span_has(s, "Insufficient privilege"))
    return -EACCES;
  if (span_has(s, "Node busy") || span_has(s, "Timeout") ||
      span_has(s, "Unable to get DCMI information"))
    return -EAGAIN;
  if (span_has(s, "Unable to establish"))
    return -EIO;
  if (span_has(s, "Invalid command") || span_has(s, "not supported") ||
      span_has(s, "DCMI request failed") || span_has(s, "A valid DCMI command was not returned"))
    return -ENOTSUP;
  return 0;
}

/* One labelled line; returns 1 if used, 0 if not a labelled line, -1 if a
 * labelled line with a bad value. */
static int dcmi_field(struct span t, struct ipmi_dcmi_power *out) {
  static const struct {
    const char *label;
    unsigned bit;
  } watts[] = {
      {"Instantaneous power reading:", IPMI_DCMI_HAVE_INSTANT},
      {"Minimum during sampling period:", IPMI_DCMI_HAVE_MIN},
      {"Maximum during sampling period:", IPMI_DCMI_HAVE_MAX},
      {"Average power reading over sample period:", IPMI_DCMI_HAVE_AVG},
  };
  double *dst[] = {&out->instant_w, &out->min_w, &out->max_w, &out->avg_w};
  size_t i;

  for (i = 0; i < sizeof(watts) / sizeof(watts[0]); i++) {
    size_t ln = strlen(watts[i].label);
    if (!span_starts(t, watts[i].label))
      continue;
    t.p += ln;
    t.n -= ln;
    if (!dcmi_watts(t, dst[i]))
      return -1;
    out->have |= watts[i].bit;
    return 1;
  }
  if (span_starts(t, "IPMI timestamp:")) {
    struct span v = {t.p + 15, t.n - 15};
    copy_span(out->timestamp, sizeof(out->timestamp), trim(v));
    out->have |= IPMI_DCMI_HAVE_TIME;
    return 1;
  }
  if (span_starts(t, "Sampling period:")) {
    struct span v = {t.p + 16, t.n - 16};
    if (!dcmi_period(v, &out->period_s))
      return -1;
    out->have |= IPMI_DCMI_HAVE_PERIOD;
    return 1;
  }
  if (span_starts(t, "Power reading state is:")) {
    struct span v = {t.p + 23, t.n - 23};
    v = trim(v);
    if (span_eq(v, "activated"))
      out->active = 1;
    else if (span_eq(v, "deactivated"))
      out->active = 0;
    else
      return -1;
    out->have |= IPMI_DCMI_HAVE_STATE;
    return 1;
  }
  return 0;
}

int ipmi_parse_dcmi_power(const char *buf, size_t len, struct ipmi_dcmi_power *out, char *err,
                          size_t errlen) {
  size_t pos = 0;
  unsigned lineno = 0;
  int failure = 0;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if ((buf == NULL && len > 0) || out == NULL)
    return -EINVAL;
  out->instant_w = out->min_w = out->max_w = out->avg_w = NAN;
  out->timestamp[0] = '\0';
  out->period_s = 0;
  out->active = -1;
  out->have = 0;

  while (pos < len) {
    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    struct span t = {line, nl ? (size_t)(nl - line) : len - pos};
    size_t i;
    int f, rc;

    lineno++;
    if (nl == NULL) {
      if (err != NULL && errlen > 0 && err[0] == '\0')
        set_err(err, errlen, lineno, "output ends inside a line (truncated)", t.p, t.n);
      break;
    }
    pos += t.n + 1;
    if (t.n > 0 && t.p[t.n - 1] == '\r')
      t.n--;
    for (i = 0; i < t.n; i++) {
      unsigned char ch = (unsigned char)t.p[i];
      if (ch < 0x20 || ch >= 0x7f)
        break;
    }
    if (i < t.n || t.n > IPMI_LINE_MAX) {
      if (err != NULL && errlen > 0 && err[0] == '\0')
        set_err(err, errlen, lineno, "unprintable byte or line too long", t.p, t.n);
      continue;
    }
    t = trim(t);
    if (t.n == 0 || span_starts(t, "ipmitool>"))
      continue;
    rc = dcmi_field(t, out);
    if (rc == 1)
      continue;
    f = dcmi_failure(t);
    if (f != 0) {
      /* keep the most telling one: EACCES, EAGAIN, EIO, ENOTSUP */
      if (failure == 0 || failure == -ENOTSUP)
        failure = f;
      continue;
    }
    if (err != NULL && errlen > 0 && err[0] == '\0')
      set_err(err, errlen, lineno, rc < 0 ? "bad DCMI value" : "unexpected line", t.p, t.n);
  }
  if (out->have & IPMI_DCMI_HAVE_INSTANT)
    return 0;
  if (failure != 0)
    return failure;
  if (err != NULL && errlen > 0 && err[0] == '\0')
    snprintf(err, errlen,
             "no \"Instantaneous power reading\" line "
             "in %u line(s)",
             lineno);
  return -EBADMSG;
}
