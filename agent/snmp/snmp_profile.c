/* SNMP device profiles from YAML (the format is in snmp_profile.h): the
 * file's field tables, the checks that make a bad profile an error naming
 * its file, line and key, and the row-index pattern match. */
#include "snmp_profile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/frame.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One metric as written in YAML, before conversion. */
struct metric_text {
  char name[SNMP_NAME_MAX], unit[SNMP_UNIT_MAX];
  char column[SNMP_KEY_MAX], digits[SNMP_KEY_MAX];
  char oid[160];
  double scale;
  int64_t invalid;
  bool counter;
};

typedef struct metric_text M;

static const struct rp_cfg_field table_metric_fields[] = {
    RP_CFG_STR("name", M, name, NULL, 1, "metric name, e.g. pdu.outlet.power"),
    RP_CFG_STR("unit", M, unit, "", 0, "unit: W, A, V, kWh, ..."),
    RP_CFG_STR("column", M, column, NULL, 1, "the key of the value column in `columns`"),
    RP_CFG_STR("digits", M, digits, "", 0,
               "key of a column holding each row's decimal digits (value / 10^digits)"),
    RP_CFG_NUM("scale", RP_CFG_DOUBLE, M, scale, "1", 0, 0, "value = raw x scale"),
    RP_CFG_NUM("invalid", RP_CFG_INT, M, invalid, NULL, 0, 0,
               "raw value meaning 'not supported' (a status, never a number), e.g. -1"),
    RP_CFG_NUM("counter", RP_CFG_BOOL, M, counter, "false", 0, 0,
               "an energy counter: reported as a monotonic series (wrap and reset handled)"),
};
static const char *const table_metric_sections[] = {"index", NULL};

static const struct rp_cfg_field scalar_fields[] = {
    RP_CFG_STR("name", M, name, NULL, 1, "metric name, e.g. pdu.power"),
    RP_CFG_STR("unit", M, unit, "", 0, "unit: W, A, V, kWh, ..."),
    RP_CFG_STR("oid", M, oid, NULL, 1,
               "numeric instance OID, e.g. 1.3.6.1.4.1.318.1.1.26.4.3.1.5.1"),
    RP_CFG_NUM("scale", RP_CFG_DOUBLE, M, scale, "1", 0, 0, "value = raw x scale"),
    RP_CFG_NUM("invalid", RP_CFG_INT, M, invalid, NULL, 0, 0,
               "raw value meaning 'not supported', e.g. -1"),
    RP_CFG_NUM("counter", RP_CFG_BOOL, M, counter, "false", 0, 0,
               "an energy counter: reported as a monotonic series"),
};
static const char *const scalar_sections[] = {"labels", NULL};

struct table_text {
  char name[SNMP_KEY_MAX];
};
static const struct rp_cfg_field table_fields[] = {
    {"name", RP_CFG_STRING, offsetof(struct table_text, name), SNMP_KEY_MAX, NULL, 1, 0, 0,
     "table name, for messages"},
};
static const char *const table_sections[] = {"columns", "metrics", NULL};

struct profile_text {
  char description[1024];
  int64_t max_repetitions;
};
typedef struct profile_text P;
static const struct rp_cfg_field profile_fields[] = {
    RP_CFG_STR("description", P, description, "", 0,
               "what the profile maps and which MIB its facts come from"),
    RP_CFG_NUM("max_repetitions", RP_CFG_INT, P, max_repetitions, NULL, 1, 1000,
               "device default: GETBULK max-repetitions"),
};
static const char *const profile_sections[] = {"scalars", "tables", NULL};

static bool valid_key(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= SNMP_KEY_MAX)
    return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
    return false;
  return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

static void fill_common(struct snmp_metric *m, const M *t, bool has_invalid) {
  snprintf(m->name, sizeof(m->name), "%s", t->name);
  snprintf(m->unit, sizeof(m->unit), "%s", t->unit);
  m->scaling.scale = t->scale;
  m->scaling.decimals = rp_scale_decimals(t->scale);
  m->scaling.has_invalid = has_invalid;
  m->scaling.invalid = t->invalid;
  m->counter = t->counter;
}

static int check_scale(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                       const M *t, char *err, size_t errlen) {
  if (t->scale == 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "scale"), where, err, errlen, "scale: must not be 0");
    return -EINVAL;
  }
  if (t->name[0] == '\0') {
    rp_cfg_error(doc, node, where, err, errlen, "name: must not be empty");
    return -EINVAL;
  }
  return 0;
}

static int parse_index(const struct rp_cfg_doc *doc, rp_cfg_node seq, const char *where,
                       struct snmp_metric *m, char *err, size_t errlen) {
  if (rp_cfg_kind(doc, seq) != RP_CFG_SEQUENCE || rp_cfg_seq_len(doc, seq) == 0 ||
      rp_cfg_seq_len(doc, seq) > SNMP_MAX_INDEX) {
    rp_cfg_error(doc, seq, where, err, errlen,
                 "index: expected a list of 1..%d items (a number to match, a label name, "
                 "or _ for any)",
                 SNMP_MAX_INDEX);
    return -EINVAL;
  }
  size_t nlabels = 0;
  for (size_t i = 0; i < rp_cfg_seq_len(doc, seq); i++) {
    rp_cfg_node item = rp_cfg_seq_item(doc, seq, i);
    const char *s = rp_cfg_scalar(doc, item);
    struct snmp_index_item *x = &m->index[i];
    if (s == NULL || s[0] == '\0') {
      rp_cfg_error(doc, item, where, err, errlen, "index[%zu]: expected a number, a name or _", i);
      return -EINVAL;
    }
    if (strcmp(s, "_") == 0) {
      x->kind = SNMP_IDX_ANY;
    } else if (s[0] >= '0' && s[0] <= '9') {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(s, &end, 10);
      if (*end != '\0' || errno != 0 || v > UINT32_MAX) {
        rp_cfg_error(doc, item, where, err, errlen,
                     "index[%zu]: '%s' is not a sub-identifier (0..4294967295)", i, s);
        return -EINVAL;
      }
      x->kind = SNMP_IDX_EQ;
      x->value = (uint32_t)v;
    } else if (valid_key(s)) {
      if (nlabels == SNMP_MAX_LABELS) {
        rp_cfg_error(doc, item, where, err, errlen, "index: at most %d labels", SNMP_MAX_LABELS);
        return -EINVAL;
      }
      for (size_t j = 0; j < i; j++) {
        if (m->index[j].kind == SNMP_IDX_LABEL && strcmp(m->index[j].label, s) == 0) {
          rp_cfg_error(doc, item, where, err, errlen, "index[%zu]: label '%s' named twice", i, s);
          return -EINVAL;
        }
      }
      x->kind = SNMP_IDX_LABEL;
      snprintf(x->label, sizeof(x->label), "%s", s);
      nlabels++;
    } else {
      rp_cfg_error(doc, item, where, err, errlen,
                   "index[%zu]: '%s' is not a number, a label name (letters, digits, _) or _", i,
                   s);
      return -EINVAL;
    }
  }
  m->nindex = rp_cfg_seq_len(doc, seq);
  return 0;
}

static int find_column(const struct snmp_table *t, const char *key) {
  for (size_t i = 0; i < t->ncols; i++)
    if (strcmp(t->keys[i], key) == 0)
      return (int)i;
  return -1;
}

static int parse_columns(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                         struct snmp_table *t, char *err, size_t errlen) {
  size_t n = rp_cfg_map_len(doc, map);
  if (rp_cfg_kind(doc, map) != RP_CFG_MAPPING || n == 0 || n > SNMP_MAX_COLUMNS) {
    rp_cfg_error(doc, map, where, err, errlen,
                 "columns: expected a mapping of 1..%d 'key: column OID'", SNMP_MAX_COLUMNS);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node v;
    const char *key = rp_cfg_map_key(doc, map, i, &v);
    const char *text = rp_cfg_scalar(doc, v);
    if (key == NULL || !valid_key(key)) {
      rp_cfg_error(doc, v, where, err, errlen,
                   "columns: key '%s' is not a name (letters, digits, _; under %d)", key ? key : "",
                   SNMP_KEY_MAX);
      return -EINVAL;
    }
    if (text == NULL || snmp_oid_parse(text, &t->cols[i]) != 0) {
      rp_cfg_error(doc, v, where, err, errlen,
                   "columns.%s: '%s' is not a numeric OID such as 1.3.6.1.4.1.318.1.1.26.9.4.3.1.7",
                   key, text ? text : "");
      return -EINVAL;
    }
    if (t->cols[i].len > SNMP_OID_MAX - 4) {
      rp_cfg_error(doc, v, where, err, errlen, "columns.%s: OID too long", key);
      return -EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
      if (snmp_oid_under(&t->cols[j], &t->cols[i]) || snmp_oid_under(&t->cols[i], &t->cols[j]) ||
          snmp_oid_cmp(&t->cols[j], &t->cols[i]) == 0) {
        rp_cfg_error(doc, v, where, err, errlen,
                     "columns.%s: overlaps column %s (a column is walked as its own subtree)", key,
                     t->keys[j]);
        return -EINVAL;
      }
    }
    snprintf(t->keys[i], sizeof(t->keys[i]), "%s", key);
    t->ncols = i + 1;
  }
  return 0;
}

static int add_metric(struct snmp_profile *p, const struct rp_cfg_doc *doc, rp_cfg_node node,
                      const char *where, struct snmp_metric **out, char *err, size_t errlen) {
  if (p->nmetrics == SNMP_MAX_METRICS) {
    rp_cfg_error(doc, node, where, err, errlen, "more than %d metrics in one profile",
                 SNMP_MAX_METRICS);
    return -E2BIG;
  }
  struct snmp_metric *grown = realloc(p->metrics, (p->nmetrics + 1) * sizeof(*grown));
  if (grown == NULL) {
    snprintf(err, errlen, "%s: out of memory", rp_cfg_path(doc));
    return -ENOMEM;
  }
  p->metrics = grown;
  *out = &p->metrics[p->nmetrics];
  memset(*out, 0, sizeof(**out));
  return 0;
}

static int parse_table(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                       struct snmp_profile *p, char *err, size_t errlen) {
  struct table_text tt;
  memset(&tt, 0, sizeof(tt));
  int rc = rp_cfg_apply(doc, node, where, table_fields, N(table_fields), table_sections, &tt, err,
                        errlen);
  if (rc != 0)
    return rc;
  struct snmp_table *t = &p->tables[p->ntables];
  memset(t, 0, sizeof(*t));
  snprintf(t->name, sizeof(t->name), "%s", tt.name);
  char cwhere[160];
  snprintf(cwhere, sizeof(cwhere), "%s", where);
  if ((rc = parse_columns(doc, rp_cfg_get(doc, node, "columns"), cwhere, t, err, errlen)) != 0)
    return rc;
  rp_cfg_node ms = rp_cfg_get(doc, node, "metrics");
  if (rp_cfg_kind(doc, ms) != RP_CFG_SEQUENCE || rp_cfg_seq_len(doc, ms) == 0) {
    rp_cfg_error(doc, ms ? ms : node, where, err, errlen, "metrics: expected a list of metrics");
    return -EINVAL;
  }
  for (size_t i = 0; i < rp_cfg_seq_len(doc, ms); i++) {
    char mwhere[192];
    snprintf(mwhere, sizeof(mwhere), "%s.metrics[%zu]", where, i);
    rp_cfg_node mn = rp_cfg_seq_item(doc, ms, i);
    M mt;
    memset(&mt, 0, sizeof(mt));
    if ((rc = rp_cfg_apply(doc, mn, mwhere, table_metric_fields, N(table_metric_fields),
                           table_metric_sections, &mt, err, errlen)) != 0)
      return rc;
    if ((rc = check_scale(doc, mn, mwhere, &mt, err, errlen)) != 0)
      return rc;
    struct snmp_metric *m;
    if ((rc = add_metric(p, doc, mn, mwhere, &m, err, errlen)) != 0)
      return rc;
    fill_common(m, &mt, rp_cfg_get(doc, mn, "invalid") != 0);
    m->table = (int)p->ntables;
    m->column = find_column(t, mt.column);
    if (m->column < 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, mn, "column"), mwhere, err, errlen,
                   "column: '%s' is not a key of this table's columns", mt.column);
      return -EINVAL;
    }
    m->digits = -1;
    if (mt.digits[0] != '\0') {
      m->digits = find_column(t, mt.digits);
      if (m->digits < 0 || m->digits == m->column) {
        rp_cfg_error(doc, rp_cfg_get(doc, mn, "digits"), mwhere, err, errlen,
                     "digits: '%s' is not another key of this table's columns", mt.digits);
        return -EINVAL;
      }
    }
    rp_cfg_node idx = rp_cfg_get(doc, mn, "index");
    if (idx == 0) {
      rp_cfg_error(doc, mn, mwhere, err, errlen,
                   "index: required (one item per index component: a number, a label or _)");
      return -EINVAL;
    }
    if ((rc = parse_index(doc, idx, mwhere, m, err, errlen)) != 0)
      return rc;
    p->nmetrics++;
  }
  p->ntables++;
  return 0;
}

static int parse_labels(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                        struct snmp_metric *m, char *err, size_t errlen) {
  if (map == 0)
    return 0;
  size_t n = rp_cfg_map_len(doc, map);
  if (rp_cfg_kind(doc, map) != RP_CFG_MAPPING || n > SNMP_MAX_LABELS) {
    rp_cfg_error(doc, map, where, err, errlen,
                 "labels: expected a mapping of at most %d "
                 "'key: value'",
                 SNMP_MAX_LABELS);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node v;
    const char *key = rp_cfg_map_key(doc, map, i, &v);
    const char *val = rp_cfg_scalar(doc, v);
    if (key == NULL || !valid_key(key) || val == NULL || val[0] == '\0' ||
        strlen(val) >= SNMP_LABEL_VALUE_MAX) {
      rp_cfg_error(doc, v, where, err, errlen,
                   "labels: expected 'name: value' with a value of 1..%d characters",
                   SNMP_LABEL_VALUE_MAX - 1);
      return -EINVAL;
    }
    snprintf(m->labels[i].key, sizeof(m->labels[i].key), "%s", key);
    snprintf(m->labels[i].value, sizeof(m->labels[i].value), "%s", val);
  }
  m->nlabels = n;
  return 0;
}

static int parse_scalars(const struct rp_cfg_doc *doc, rp_cfg_node seq, struct snmp_profile *p,
                         char *err, size_t errlen) {
  if (seq == 0)
    return 0;
  if (rp_cfg_kind(doc, seq) != RP_CFG_SEQUENCE) {
    rp_cfg_error(doc, seq, "scalars", err, errlen, "expected a list of scalars");
    return -EINVAL;
  }
  for (size_t i = 0; i < rp_cfg_seq_len(doc, seq); i++) {
    char where[64];
    snprintf(where, sizeof(where), "scalars[%zu]", i);
    rp_cfg_node node = rp_cfg_seq_item(doc, seq, i);
    M mt;
    memset(&mt, 0, sizeof(mt));
    int rc = rp_cfg_apply(doc, node, where, scalar_fields, N(scalar_fields), scalar_sections, &mt,
                          err, errlen);
    if (rc == 0)
      rc = check_scale(doc, node, where, &mt, err, errlen);
    if (rc != 0)
      return rc;
    struct snmp_metric *m;
    if ((rc = add_metric(p, doc, node, where, &m, err, errlen)) != 0)
      return rc;
    fill_common(m, &mt, rp_cfg_get(doc, node, "invalid") != 0);
    m->table = -1;
    m->column = -1;
    m->digits = -1;
    if (snmp_oid_parse(mt.oid, &m->oid) != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, node, "oid"), where, err, errlen,
                   "oid: '%s' is not a numeric OID such as 1.3.6.1.2.1.1.3.0", mt.oid);
      return -EINVAL;
    }
    if ((rc = parse_labels(doc, rp_cfg_get(doc, node, "labels"), where, m, err, errlen)) != 0)
      return rc;
    p->nmetrics++;
  }
  return 0;
}

void snmp_profile_free(struct snmp_profile *p) {
  if (p == NULL)
    return;
  free(p->tables);
  free(p->metrics);
  memset(p, 0, sizeof(*p));
}

int snmp_profile_parse(const struct rp_cfg_doc *doc, const char *name, struct snmp_profile *out,
                       char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
  rp_cfg_node root = rp_cfg_root(doc);
  P pt;
  memset(&pt, 0, sizeof(pt));
  int rc = rp_cfg_apply(doc, root, "profile", profile_fields, N(profile_fields), profile_sections,
                        &pt, err, errlen);
  if (rc != 0)
    goto fail;
  out->has_max_repetitions = rp_cfg_get(doc, root, "max_repetitions") != 0;
  out->max_repetitions = pt.max_repetitions;
  if ((rc = parse_scalars(doc, rp_cfg_get(doc, root, "scalars"), out, err, errlen)) != 0)
    goto fail;
  rp_cfg_node tables = rp_cfg_get(doc, root, "tables");
  if (tables != 0) {
    size_t n = rp_cfg_seq_len(doc, tables);
    if (rp_cfg_kind(doc, tables) != RP_CFG_SEQUENCE || n > SNMP_MAX_TABLES) {
      rp_cfg_error(doc, tables, "tables", err, errlen, "expected a list of at most %d tables",
                   SNMP_MAX_TABLES);
      rc = -EINVAL;
      goto fail;
    }
    out->tables = calloc(n + 1, sizeof(*out->tables));
    if (out->tables == NULL) {
      rc = -ENOMEM;
      snprintf(err, errlen, "%s: out of memory", rp_cfg_path(doc));
      goto fail;
    }
    for (size_t i = 0; i < n; i++) {
      char where[64];
      snprintf(where, sizeof(where), "tables[%zu]", i);
      if ((rc = parse_table(doc, rp_cfg_seq_item(doc, tables, i), where, out, err, errlen)) != 0)
        goto fail;
    }
  }
  if (out->nmetrics == 0) {
    rp_cfg_error(doc, root, "profile", err, errlen, "no metrics: expected scalars or tables");
    rc = -EINVAL;
    goto fail;
  }
  for (size_t i = 0; i < out->nmetrics; i++) {
    for (size_t j = 0; j < i; j++) {
      const struct snmp_metric *a = &out->metrics[i], *b = &out->metrics[j];
      bool same = a->table == b->table && a->column == b->column && a->table >= 0 &&
                  a->nindex == b->nindex &&
                  memcmp(a->index, b->index, a->nindex * sizeof(a->index[0])) == 0;
      if (same) {
        rp_cfg_error(doc, root, "profile", err, errlen,
                     "metrics %s and %s read the same rows of the same column", a->name, b->name);
        rc = -EINVAL;
        goto fail;
      }
    }
  }
  return 0;
fail:
  snmp_profile_free(out);
  return rc;
}

static bool valid_profile_name(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len >= SNMP_PROFILE_NAME_MAX || name[0] == '.')
    return false;
  return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

int snmp_profile_load(const char *profiles_dir, const char *name, struct snmp_profile *out,
                      char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (!valid_profile_name(name)) {
    snprintf(err, errlen,
             "profile '%s': a name is letters, digits, '.', '_' and '-' (not first '.'), "
             "under %d characters",
             name, SNMP_PROFILE_NAME_MAX);
    return -EINVAL;
  }
  char path[512];
  snprintf(path, sizeof(path), "%s/snmp/%s.yaml", profiles_dir, name);
  struct rp_cfg_doc *doc = NULL;
  int rc = rp_cfg_load(path, &doc, err, errlen);
  if (rc != 0)
    return rc;
  rc = snmp_profile_parse(doc, name, out, err, errlen);
  rp_cfg_free(doc);
  return rc;
}

bool snmp_metric_match(const struct snmp_metric *m, const uint32_t *index, size_t n,
                       const char *keys[SNMP_MAX_LABELS],
                       char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX], size_t *nlabels) {
  if (n != m->nindex)
    return false;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const struct snmp_index_item *x = &m->index[i];
    if (x->kind == SNMP_IDX_EQ && index[i] != x->value)
      return false;
  }
  for (size_t i = 0; i < n; i++) {
    const struct snmp_index_item *x = &m->index[i];
    if (x->kind != SNMP_IDX_LABEL)
      continue;
    keys[k] = x->label;
    snprintf(values[k], SNMP_LABEL_VALUE_MAX, "%u", index[i]);
    k++;
  }
  *nlabels = k;
  return true;
}

void snmp_profile_help(FILE *out) {
  fprintf(out, "  snmp profile file <agent.profiles_dir>/snmp/NAME.yaml:\n");
  rp_cfg_print_help(out, "profile", profile_fields, N(profile_fields));
  fprintf(out, "  %-28s %-9s %s\n", "profile.scalars", "list",
          "instance OIDs read with one GET, entries:");
  rp_cfg_print_help(out, "profile.scalars[]", scalar_fields, N(scalar_fields));
  fprintf(out, "  %-28s %-9s %s\n", "profile.scalars[].labels", "mapping",
          "fixed labels, e.g. {inlet: \"1\"}");
  fprintf(out, "  %-28s %-9s %s\n", "profile.tables", "list",
          "column groups walked with GETBULK: name, columns (key: OID), metrics:");
  rp_cfg_print_help(out, "profile.tables[].metrics[]", table_metric_fields, N(table_metric_fields));
  fprintf(out, "  %-28s %-9s %s\n", "profile.tables[].metrics[].index", "list",
          "per row-index component: a number to match, a label name, or _");
}
