/*
 * snmp_value.h: the pure parts of the SNMP collector, with no I/O and no
 * net-snmp: object identifiers as text and numbers, a varbind's value as the
 * collector keeps it, its conversion to a reading (type checks, "not
 * supported" sentinels, fixed scale and Raritan-style decimal digits), and
 * the monotonic energy counter (Counter32 wrap, device restarts, resets).
 */
#ifndef RP_AGENT_SNMP_VALUE_H
#define RP_AGENT_SNMP_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNMP_OID_MAX 40 /* sub-identifiers in an OID we read (profiles are far shorter) */

struct snmp_oid {
  uint32_t sub[SNMP_OID_MAX];
  uint8_t len;
};

/* Parses "1.3.6.1.2.1.1.3.0" (a leading '.' is accepted). Returns 0, or
 * -EINVAL for anything else (empty, a name, a component above 2^32-1, more
 * than SNMP_OID_MAX components). */
int snmp_oid_parse(const char *text, struct snmp_oid *out);

/* Writes "1.3.6.1..." into buf (always NUL-terminated); returns buf. */
char *snmp_oid_format(const struct snmp_oid *o, char *buf, size_t len);

/* Formats the sub-identifiers sub[0..n) as "a.b.c". */
char *snmp_subids_format(const uint32_t *sub, size_t n, char *buf, size_t len);

/* <0, 0, >0 as OIDs compare lexicographically (the SNMP order). */
int snmp_oid_cmp(const struct snmp_oid *a, const struct snmp_oid *b);

/* True when `o` is strictly inside the subtree rooted at `root`. */
bool snmp_oid_under(const struct snmp_oid *root, const struct snmp_oid *o);

/* What a varbind held, as the collector keeps it. */
enum snmp_vtype {
  SNMP_V_MISSING = 0,    /* nothing was read (a row the walk did not return) */
  SNMP_V_INTEGER,        /* INTEGER / Integer32: signed */
  SNMP_V_GAUGE,          /* Gauge32 / Unsigned32 */
  SNMP_V_COUNTER32,      /* wraps at 2^32 */
  SNMP_V_COUNTER64,      /* wraps at 2^64 */
  SNMP_V_TIMETICKS,      /* hundredths of a second */
  SNMP_V_STRING,         /* OCTET STRING (never taken as a number) */
  SNMP_V_OTHER,          /* OBJECT IDENTIFIER, IpAddress, NULL, Opaque, ... */
  SNMP_V_NOSUCHOBJECT,   /* v2c exception: the agent does not implement the object */
  SNMP_V_NOSUCHINSTANCE, /* v2c exception: no such row/instance */
  SNMP_V_ENDOFMIBVIEW,   /* v2c exception: past the end of the agent's view */
  SNMP_V_ERROR,          /* the request for it failed (error-status); see detail */
};

struct snmp_value {
  enum snmp_vtype type;
  int64_t i;  /* INTEGER */
  uint64_t u; /* Gauge32, Counter32, Counter64, TimeTicks */
};

/* "Counter32", "OCTET STRING", "noSuchInstance", ... for messages. */
const char *snmp_vtype_name(enum snmp_vtype t);

/* How a raw value becomes a reading: value = raw × scale / 10^digits. */
struct snmp_scaling {
  double scale;     /* fixed factor, e.g. 0.1 for tenths of an ampere */
  int decimals;     /* wire decimals for the scale alone */
  bool has_invalid; /* `invalid` is the device's "not supported" value */
  int64_t invalid;  /* e.g. -1 (APC, Sentry4) */
};

enum snmp_conv {
  SNMP_CONV_OK = 0,
  SNMP_CONV_ABSENT,   /* an exception, a missing row, or the invalid sentinel */
  SNMP_CONV_BAD_TYPE, /* not a number (OCTET STRING, OID, ...) */
  SNMP_CONV_ERROR,    /* the request failed, or the digits are unusable */
};

/*
 * Converts v with scaling s; `digits` is the decimal-digits value read
 * alongside it (Raritan), or NULL. On SNMP_CONV_OK sets *out and *decimals
 * (the wire decimals: s->decimals + digits, at most 9). Otherwise writes
 * why into why (e.g. "OCTET STRING where a number was expected",
 * "noSuchInstance", "-1: not supported by the device") and leaves *out 0.
 */
enum snmp_conv snmp_value_convert(const struct snmp_value *v, const struct snmp_scaling *s,
                                  const struct snmp_value *digits, double *out, int *decimals,
                                  char *why, size_t whylen);

/* The raw value of a numeric varbind as an unsigned counter value: true
 * and *raw for a non-negative number, false otherwise. */
bool snmp_value_raw_unsigned(const struct snmp_value *v, uint64_t *raw);

/*
 * A monotonic series built from a device's energy counter.
 *
 * The rule: the first value read is reported as it is (the device's own
 * total). After that the series only grows by what the device counted:
 *   - the raw value went up: the difference;
 *   - a wrapping type (Counter32, Counter64) went down while the device did
 *     not restart: it wrapped; the modular difference (raw + 2^bits - last);
 *   - otherwise it went down (the device restarted, as sysUpTime going back
 *     shows, or someone reset a resettable counter such as APC's): a reset.
 *     The series continues from its last value plus the new raw value (what
 *     the device counted since the reset, from zero).
 *   - the device restarted but the raw value did not go down (the counter
 *     survived the restart): the difference, as usual.
 * A rackpulse restart starts again from the device's own total.
 */
struct snmp_counter {
  bool primed;
  uint64_t last_raw;
  double total; /* in the metric's unit */
  uint64_t wraps, resets;
};

enum snmp_counter_event {
  SNMP_CTR_FIRST,
  SNMP_CTR_STEP,
  SNMP_CTR_WRAP,
  SNMP_CTR_RESET,
};

/* Feeds one raw reading; `wrap_bits` is 32 or 64 for a wrapping type, 0 for
 * one that never wraps (it only resets); `restarted` says sysUpTime went
 * back since the last scrape; `unit` converts one raw step to the metric's
 * unit (scale / 10^digits). Returns the series value. */
double snmp_counter_update(struct snmp_counter *c, uint64_t raw, int wrap_bits, bool restarted,
                           double unit, enum snmp_counter_event *ev);

/* True when sysUpTime `now` (TimeTicks) says the agent restarted since
 * `prev`: it went back, unless `prev` was within a day of the 2^32
 * wrap (497 days of uptime) and `now` is small, which is a wrap. */
bool snmp_uptime_restarted(uint32_t prev, uint32_t now);

#endif /* RP_AGENT_SNMP_VALUE_H */
