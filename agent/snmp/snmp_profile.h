/*
 * snmp_profile.h: PDU device profiles for the SNMP collector, as data. A
 * profile file (<agent.profiles_dir>/snmp/NAME.yaml) maps a vendor MIB to
 * rackpulse metrics:
 *
 *   description: Raritan PX2/PX3, PDU2-MIB ...
 *   max_repetitions: 20          # optional device default for GETBULK
 *   scalars:                     # read with one GET (many varbinds)
 *     - {name: pdu.power, oid: 1.3.6.1.4.1.318.1.1.26.4.3.1.5.1, unit: W,
 *        scale: 10, labels: {inlet: "1"}, invalid: -1}
 *   tables:                      # each one a column group walked with GETBULK
 *     - name: inlet
 *       columns:                 # column key: the column's OID
 *         value: 1.3.6.1.4.1.13742.6.5.2.3.1.4
 *         digits: 1.3.6.1.4.1.13742.6.3.3.4.1.7
 *       metrics:
 *         - {name: pdu.power, column: value, index: [1, inlet, 5], unit: W,
 *            digits: digits}
 *
 * A table metric reads every row of its column whose index (the OID after
 * the column) matches `index`, one item per index component: a number the
 * component must equal, a label name that takes the component's value, or
 * `_` for any value. `digits` names a column of the same table holding the
 * row's decimal digits (value = raw × scale / 10^digits). `invalid` is the
 * device's "not supported" value (a status, never a number). `counter:
 * true` makes the value a monotonic counter (see snmp_value.h).
 *
 * No I/O besides reading the file; no net-snmp.
 */
#ifndef RP_AGENT_SNMP_PROFILE_H
#define RP_AGENT_SNMP_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rackpulse/cfg.h"
#include "snmp_value.h"

#define SNMP_NAME_MAX 64 /* metric name, with its NUL */
#define SNMP_UNIT_MAX 16
#define SNMP_KEY_MAX 32         /* column keys, label keys, table names */
#define SNMP_LABEL_VALUE_MAX 24 /* a label's value */
#define SNMP_MAX_COLUMNS 8      /* columns in one table (one GETBULK varbind each) */
#define SNMP_MAX_INDEX 8        /* index components a pattern names */
#define SNMP_MAX_LABELS 3
#define SNMP_MAX_TABLES 16
#define SNMP_MAX_METRICS 128
#define SNMP_PROFILE_NAME_MAX 64

enum snmp_index_kind { SNMP_IDX_ANY, SNMP_IDX_EQ, SNMP_IDX_LABEL };

struct snmp_index_item {
  enum snmp_index_kind kind;
  uint32_t value;           /* SNMP_IDX_EQ */
  char label[SNMP_KEY_MAX]; /* SNMP_IDX_LABEL */
};

struct snmp_metric {
  char name[SNMP_NAME_MAX];
  char unit[SNMP_UNIT_MAX];
  int table;           /* index into profile tables, or -1 for a scalar */
  int column;          /* the value column of the table */
  int digits;          /* the decimal-digits column, or -1 */
  struct snmp_oid oid; /* scalars: the instance OID */
  struct snmp_index_item index[SNMP_MAX_INDEX];
  size_t nindex;
  struct {
    char key[SNMP_KEY_MAX];
    char value[SNMP_LABEL_VALUE_MAX];
  } labels[SNMP_MAX_LABELS]; /* scalars: fixed labels */
  size_t nlabels;
  struct snmp_scaling scaling;
  bool counter;
};

struct snmp_table {
  char name[SNMP_KEY_MAX];
  char keys[SNMP_MAX_COLUMNS][SNMP_KEY_MAX];
  struct snmp_oid cols[SNMP_MAX_COLUMNS];
  size_t ncols;
};

struct snmp_profile {
  char name[SNMP_PROFILE_NAME_MAX];
  struct snmp_table *tables;
  size_t ntables;
  struct snmp_metric *metrics;
  size_t nmetrics;
  bool has_max_repetitions;
  int64_t max_repetitions;
};

/*
 * Loads `<profiles_dir>/snmp/<name>.yaml` into *out (zeroed or freed
 * before). `name` is letters, digits, '.', '_' and '-', not first '.'.
 * Returns 0, or a negative errno with err naming the profile file and, for a
 * problem inside it, the line and key ("raritan-px.yaml:14:
 * tables[0].metrics[2].index: ..."). On failure *out is left empty.
 */
int snmp_profile_load(const char *profiles_dir, const char *name, struct snmp_profile *out,
                      char *err, size_t errlen);

/* Parses a profile from an already loaded document (for tests and the
 * loader). Same contract as snmp_profile_load(). */
int snmp_profile_parse(const struct rp_cfg_doc *doc, const char *name, struct snmp_profile *out,
                       char *err, size_t errlen);

/* Frees the arrays of *p and zeroes it. Accepts NULL; safe twice. */
void snmp_profile_free(struct snmp_profile *p);

/*
 * Matches a row index (the sub-identifiers after the column OID) against a
 * table metric's pattern. The index must have exactly m->nindex components.
 * On a match fills keys[i]/values[i] for each label in pattern order and
 * *nlabels, and returns true.
 */
bool snmp_metric_match(const struct snmp_metric *m, const uint32_t *index, size_t n,
                       const char *keys[SNMP_MAX_LABELS],
                       char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX], size_t *nlabels);

/* Prints the keys of a profile file for --help. */
void snmp_profile_help(FILE *out);

#endif /* RP_AGENT_SNMP_PROFILE_H */
