/*
 * ipmi_parse.h: pure parsers of ipmitool's text output and the classifier
 * that turns vendor sensor names into rackpulse metric names.
 *
 * Nothing here does I/O, allocates memory or keeps state: every function
 * works on a caller's buffer (which need not be NUL-terminated) and writes
 * into caller-provided structs, so the parsers can be fed any bytes (they are
 * fuzzed). Errors are 0 or a negative errno. Parsers of outside text take
 * `char *err, size_t errlen`; when err is not NULL it receives one line
 * describing the first problem ("line 7: ...: \"text\""), always
 * NUL-terminated, and is set to "" when there was none.
 */
#ifndef RP_AGENT_IPMI_PARSE_H
#define RP_AGENT_IPMI_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Buffer sizes, each including the terminating NUL. ipmitool prints at most
 * 16 characters of a sensor name; longer names are malformed lines. */
#define IPMI_NAME_MAX 32
#define IPMI_UNIT_MAX 32
#define IPMI_STATE_MAX 96
#define IPMI_ENTITY_MAX 8
#define IPMI_RAWST_MAX 8
/* Longest line accepted; longer lines are malformed (skipped, counted). */
#define IPMI_LINE_MAX 512

/* What a reading is. Anything but OK/NC/CR/NR carries no usable value. */
enum ipmi_status {
  IPMI_ST_OK = 0,      /* value in a known unit, no threshold crossed */
  IPMI_ST_NA,          /* no reading: "ns", "na", "No Reading", "Not Readable",
	                        "Event-Only" */
  IPMI_ST_DISABLED,    /* scanning disabled: "Disabled" */
  IPMI_ST_NC,          /* non-critical threshold crossed (lnc, unc, nc) */
  IPMI_ST_CR,          /* critical threshold crossed (lcr, ucr, cr) */
  IPMI_ST_NR,          /* non-recoverable threshold crossed (lnr, unr, nr) */
  IPMI_ST_DISCRETE,    /* discrete sensor: no value, see state */
  IPMI_ST_UNKNOWN_UNIT /* a number in a unit not mapped below; raw unit
	                        text kept in unit, raw status in raw_status */
};

/* Threshold columns of `ipmitool sensor`, in its order. */
enum ipmi_thresh { IPMI_LNR, IPMI_LCR, IPMI_LNC, IPMI_UNC, IPMI_UCR, IPMI_UNR, IPMI_THRESH_COUNT };

/*
 * One sensor line. Units are mapped: "degrees C" -> "Cel", "RPM" -> "rpm",
 * "Watts" -> "W", "Volts" -> "V", "Amps" -> "A", "percent" -> "%"; any other
 * unit makes the status IPMI_ST_UNKNOWN_UNIT with the raw text in unit.
 * value is NAN whenever there is no number (NA, DISABLED, DISCRETE), never 0.
 * All strings are NUL-terminated printable ASCII.
 */
struct ipmi_reading {
  char name[IPMI_NAME_MAX]; /* sensor name, trailing blanks removed */
  double value;             /* reading, or NAN */
  char unit[IPMI_UNIT_MAX]; /* mapped unit; the raw text when status
	                                 is IPMI_ST_UNKNOWN_UNIT; "" when none
	                                 was printed (no reading, discrete) */
  enum ipmi_status status;
  char state[IPMI_STATE_MAX];       /* discrete: asserted states as printed
	                                 ("Presence detected, Failure detected"),
	                                 or the hex state ("0x0100") of
	                                 `sensor`; cut to fit; else "" */
  char raw_status[IPMI_RAWST_MAX];  /* ipmitool's status word ("ok", "ucr",
	                                    "ns", "cr"...), "" if none */
  char entity[IPMI_ENTITY_MAX];     /* "7.1" (sdr elist and CSV), else "" */
  int sensor_num;                   /* 0x01 for "01h", -1 if not printed */
  double thresh[IPMI_THRESH_COUNT]; /* `sensor` thresholds, NAN if "na"
	                                     or not printed */
  unsigned line;                    /* 1-based line number in the input */
};

/* Counters of one parse. lines counts every line seen, ignored ones too. */
struct ipmi_parse_stats {
  unsigned lines;
  unsigned readings;  /* stored in out[] */
  unsigned ignored;   /* blank lines and shell prompts ("ipmitool> ...") */
  unsigned malformed; /* lines skipped because they could not be parsed */
  unsigned dropped;   /* good readings that did not fit in out[] */
  bool truncated;     /* input ended in the middle of a line */
};

/*
 * Parse the output of `ipmitool sdr list`, `sdr elist`, `sensor`, and their
 * `-c` (CSV) forms, detected line by line, into out[0..cap). Blank lines and
 * shell prompt lines are ignored, so the output of one command in `shell`
 * mode can be passed as it is. A line that cannot be parsed is skipped and
 * counted; err describes the first one. A final line without '\n' is
 * treated as cut short (a killed process): it is skipped and flagged in
 * stats->truncated, never half-parsed.
 *
 * buf:  len bytes, need not be NUL-terminated; NUL bytes make a line
 *       malformed. buf may be NULL when len is 0.
 * out:  cap readings owned by the caller; *n receives how many were filled.
 * stats, err: optional (may be NULL).
 *
 * Returns 0 when every line was used, ignored or skipped as malformed;
 * -ENOBUFS when more readings than cap were found (out holds the first cap,
 * the rest are counted in stats->dropped); -EINVAL for bad arguments (then
 * nothing is written but err).
 */
int ipmi_parse_sensors(const char *buf, size_t len, struct ipmi_reading *out, size_t cap, size_t *n,
                       struct ipmi_parse_stats *stats, char *err, size_t errlen);

/*
 * Parse one line (without its '\n'; a trailing '\r' is allowed) in any of
 * the formats above into *r, with r->line = lineno.
 * Returns 1 when *r holds a reading, 0 when the line is blank or a shell
 * prompt (r untouched), -EBADMSG when it is malformed (err says why; *r is
 * unspecified), -EINVAL for bad arguments.
 */
int ipmi_parse_line(const char *line, size_t len, unsigned lineno, struct ipmi_reading *r,
                    char *err, size_t errlen);

/* Map an ipmitool unit text to rackpulse's unit; NULL when unknown. */
const char *ipmi_unit_map(const char *raw, size_t len);

/* Name of a status for logs: "ok", "na", "disabled", "nc", "cr", "nr",
 * "discrete", "unknown-unit"; "?" for values outside the enum. */
const char *ipmi_status_name(enum ipmi_status st);

/* ------------------------------------------------------------------ DCMI */

#define IPMI_DCMI_HAVE_INSTANT 0x01u
#define IPMI_DCMI_HAVE_MIN 0x02u
#define IPMI_DCMI_HAVE_MAX 0x04u
#define IPMI_DCMI_HAVE_AVG 0x08u
#define IPMI_DCMI_HAVE_TIME 0x10u
#define IPMI_DCMI_HAVE_PERIOD 0x20u
#define IPMI_DCMI_HAVE_STATE 0x40u

/* `ipmitool dcmi power reading`. Watts are NAN when their line is absent. */
struct ipmi_dcmi_power {
  double instant_w;
  double min_w;
  double max_w;
  double avg_w;
  char timestamp[40];     /* "IPMI timestamp" text as printed, or "" */
  unsigned long period_s; /* "Sampling period", seconds */
  int active;             /* 1 activated, 0 deactivated, -1 absent;
	                                when 0 the watts are not a measurement */
  unsigned have;          /* IPMI_DCMI_HAVE_* of the lines found */
};

/*
 * Parse `ipmitool dcmi power reading` output into *out. ipmitool prints
 * the failure on stderr and only blank lines on stdout, so pass stderr too
 * (concatenated, in either order).
 *
 * Returns:
 *   0         the instantaneous reading was found (other fields per have);
 *   -ENOTSUP  the BMC does not support it: "Invalid command", "DCMI request
 *             failed because: ..." (other than the codes below), "... not
 *             supported", "A valid DCMI command was not returned";
 *             remember it per BMC and sum PSU input power instead;
 *   -EACCES   "Insufficient privilege level (d4)": a configuration error;
 *   -EAGAIN   a transient answer ("Node busy (c0)", "Timeout (c3)",
 *             "Unable to get DCMI information" = no answer);
 *   -EIO      no session ("Unable to establish IPMI v2 / RMCP+ session");
 *   -EBADMSG  none of the above and no instantaneous reading (malformed or
 *             truncated output; err says which line);
 *   -EINVAL   bad arguments.
 * Malformed lines are skipped; the first is described in err.
 */
int ipmi_parse_dcmi_power(const char *buf, size_t len, struct ipmi_dcmi_power *out, char *err,
                          size_t errlen);

/* ------------------------------------------------------------ classifier */

/*
 * One row of a classification table: sensors whose name matches glob (and
 * whose mapped unit equals unit, unless unit is NULL, and whose entity
 * matches entity, unless entity is NULL) become metric, labelled
 * label=<captured text> when label is not NULL. A row with metric NULL
 * matches and means "ignore this sensor" (a config can silence a default).
 *
 * Globs are matched case-insensitively (ASCII) against the whole name:
 *   *      any run of characters, possibly empty (shortest first)
 *   ?      any one character
 *   #      one or more digits (a rackpulse extension)
 *   [..]   one character of a set: [abc], [0-9], [!0-9] or [^0-9]
 *   \c     the character c itself
 *
 * The capture rule for the label value:
 *   1. The capture is the text matched by the first '#' of the glob; if the
 *      glob has no '#', by its first '?' or '*'; if it has no wildcard at
 *      all, the instance part of the entity ("3.2" -> "2"), if any.
 *   2. Leading ' ', '_' and '-' are dropped, and the value ends at the next
 *      ' ' ("FAN*" on "Fan 1 Front Tach" gives "1", on "Fan1A" "1A", on
 *      "FANA" "A", on "FAN_1_F" "1_F"). Names that differ only after that
 *      space ("Fan 1 Front Tach", "Fan 1 Rear Tach") need rows of their
 *      own with different metrics.
 *   3. A value made only of digits loses its leading zeros ("GPU03" gives
 *      "3", "GPU0" gives "0").
 *   4. An empty value means the row does not match; the next row is tried.
 */
struct ipmi_pattern {
  const char *glob;   /* on the sensor name; required */
  const char *unit;   /* mapped unit ("Cel", "rpm", "W"...) or NULL */
  const char *entity; /* glob on "E.I" (e.g. "3.*"), or NULL */
  const char *metric; /* e.g. "gpu.temp", or NULL to ignore */
  const char *label;  /* label key, e.g. "gpu", or NULL */
};

/* The built-in table (see ipmi_classify.c), tried after the caller's. */
extern const struct ipmi_pattern ipmi_default_patterns[];
extern const size_t ipmi_default_patterns_len;

/* The result of a classification. metric and label point into the pattern
 * table that matched (static, or the caller's: keep it alive). */
struct ipmi_class {
  const char *metric;
  const char *label;                  /* NULL when the row has none */
  char label_value[IPMI_NAME_MAX];    /* "" when label is NULL */
  const struct ipmi_pattern *pattern; /* the row that matched */
};

/* Flags of ipmi_classify(). */
#define IPMI_CLASSIFY_NO_DEFAULTS 0x1u /* use the caller's table only */

/*
 * Classify r by the caller's table user[0..nuser) first, then (unless
 * IPMI_CLASSIFY_NO_DEFAULTS) by ipmi_default_patterns; the first matching
 * row wins. Returns 1 and fills *out when a row with a metric matched; 0
 * when nothing matched or an "ignore" row did (out->metric is then NULL);
 * -EINVAL for bad arguments. Only name, unit, entity and status of r are
 * used. A row's unit must equal r->unit when r has a value in a mapped
 * unit (OK, NC, CR, NR) and never matches a DISCRETE reading (no unit);
 * readings without a usable value (NA, DISABLED, UNKNOWN_UNIT) match rows
 * whatever their unit, so that a PSU without a reading is still a PSU.
 */
int ipmi_classify(const struct ipmi_reading *r, const struct ipmi_pattern *user, size_t nuser,
                  unsigned flags, struct ipmi_class *out);

/*
 * Match a glob (syntax above) against name[0..len). When cap is not NULL,
 * the raw text of the capturing wildcard (rule 1, before rules 2-3) is
 * stored there as offset and length into name (length 0 when none).
 * Returns true on a match.
 */
bool ipmi_glob_match(const char *glob, const char *name, size_t len, size_t *cap_off,
                     size_t *cap_len);

/* Check a glob from a config file: 0, or -EINVAL with err saying what is
 * wrong (empty, longer than 64 characters, unterminated '[', trailing '\'). */
int ipmi_pattern_check(const char *glob, char *err, size_t errlen);

/* ------------------------------------------------------------- PSU power */

enum ipmi_sum_status {
  IPMI_SUM_NONE = 0, /* no usable PSU reading: watts is NAN */
  IPMI_SUM_COMPLETE, /* every PSU contributed */
  IPMI_SUM_PARTIAL   /* some PSU had no usable reading: watts is a
	                        lower bound, never a full total */
};

struct ipmi_power_sum {
  double watts;
  unsigned used;    /* PSU readings summed */
  unsigned missing; /* PSUs without a usable reading, incl. absent ones */
  enum ipmi_sum_status status;
};

/*
 * Sum the readings that classify (user table first, flags as above) as
 * "psu.input_power". A PSU reading is usable when its status is OK, NC, CR
 * or NR; NA, DISABLED and UNKNOWN_UNIT count as missing, never as 0 W.
 * expected, when not 0, is the number of PSUs the BMC should report (from
 * config or an earlier scrape): PSUs absent from r count as missing too.
 * Returns 0 and fills *out; -EINVAL for bad arguments.
 */
int ipmi_sum_psu_input(const struct ipmi_reading *r, size_t n, const struct ipmi_pattern *user,
                       size_t nuser, unsigned flags, unsigned expected, struct ipmi_power_sum *out);

#endif /* RP_AGENT_IPMI_PARSE_H */
