/* The SNMP collector's readings: what a scrape walked turned into
 * rp_readings (scaling and decimal digits, energy counters as monotonic
 * series, labels from the row index), a status naming the device and the
 * OID for every value that is missing or unusable, rows the previous
 * scrape had, and the hand-over to rp_target_done(). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/log.h"
#include "snmp_internal.h"

static struct ctr_state *counter_for(struct snmp_dev *d, int metric, const uint32_t *idx,
                                     size_t len) {
  for (size_t i = 0; i < d->nctrs; i++) {
    struct ctr_state *c = &d->ctrs[i];
    if (c->metric == metric && c->idxlen == len &&
        (len == 0 || memcmp(c->idx, idx, len * sizeof(idx[0])) == 0)) /* scalars: idx NULL */
      return c;
  }
  if (d->nctrs == d->capctrs) {
    size_t cap = d->capctrs ? d->capctrs * 2 : 16;
    struct ctr_state *grown = realloc(d->ctrs, cap * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    d->ctrs = grown;
    d->capctrs = cap;
  }
  struct ctr_state *c = &d->ctrs[d->nctrs++];
  memset(c, 0, sizeof(*c));
  c->metric = metric;
  c->idxlen = (uint8_t)len;
  if (len > 0)
    memcpy(c->idx, idx, len * sizeof(idx[0]));
  return c;
}

static struct rp_reading *new_reading(struct snmp_dev *d, const struct snmp_metric *m,
                                      struct snmp_out **out) {
  struct rp_reading *r = &d->readings[d->nout];
  *out = &d->outs[d->nout];
  d->nout++;
  memset(r, 0, sizeof(*r));
  memset(*out, 0, sizeof(**out));
  r->name = m->name;
  r->unit = m->unit;
  r->decimals = m->scaling.decimals;
  r->labels = (*out)->labels;
  return r;
}

static void set_labels(struct rp_reading *r, struct snmp_out *o, const char *keys[],
                       char values[][SNMP_LABEL_VALUE_MAX], size_t n) {
  for (size_t i = 0; i < n; i++) {
    memcpy(o->values[i], values[i], SNMP_LABEL_VALUE_MAX);
    o->labels[i].key = keys[i];
    o->labels[i].value = o->values[i];
  }
  r->nlabels = n;
}

/* Turns one value (and its digits) into a reading, counters included. */
static void value_reading(struct snmp_dev *d, int mi, struct rp_reading *r, struct snmp_out *o,
                          const struct snmp_value *v, const struct snmp_value *digits,
                          const struct snmp_oid *at, const uint32_t *idx, size_t idxlen,
                          bool restarted) {
  const struct snmp_metric *m = &d->prof.metrics[mi];
  char why[128], where[200];
  double value;
  int decimals;
  enum snmp_conv c =
      snmp_value_convert(v, &m->scaling, digits, &value, &decimals, why, sizeof(why));
  if (c == SNMP_CONV_OK && m->counter) {
    uint64_t raw;
    struct ctr_state *cs =
        snmp_value_raw_unsigned(v, &raw) ? counter_for(d, mi, idx, idxlen) : NULL;
    if (cs == NULL) {
      c = SNMP_CONV_BAD_TYPE;
      snprintf(why, sizeof(why), "%s counter value is negative or unusable",
               snmp_vtype_name(v->type));
    } else {
      int bits = v->type == SNMP_V_COUNTER32 ? 32 : v->type == SNMP_V_COUNTER64 ? 64 : 0;
      double unit = m->scaling.scale / pow(10, decimals - m->scaling.decimals);
      enum snmp_counter_event ev;
      value = snmp_counter_update(&cs->c, raw, bits, restarted, unit, &ev);
      if (ev == SNMP_CTR_WRAP || ev == SNMP_CTR_RESET)
        rp_info("snmp", "%s: %s: counter %s: continuing from %.3f %s", d->cfg.name,
                snmp_oid_format(at, where, sizeof(where)),
                ev == SNMP_CTR_WRAP ? "wrapped" : "reset (device restart or counter reset)", value,
                m->unit);
    }
  }
  if (c == SNMP_CONV_OK) {
    r->value = value;
    r->decimals = decimals;
    r->status = RP_READING_OK;
    return;
  }
  r->status = c == SNMP_CONV_ABSENT ? RP_READING_ABSENT : RP_READING_ERROR;
  snprintf(o->detail, sizeof(o->detail), "%s: %s: %s", d->cfg.name,
           snmp_oid_format(at, where, sizeof(where)), why);
  r->detail = o->detail;
}

static const char *end_text(const struct walk_col *col, char *buf, size_t len) {
  switch (col->end) {
  case END_LEFT: snprintf(buf, len, "ended after %u rows", col->rows); break;
  case END_EOMV: snprintf(buf, len, "endOfMibView after %u rows", col->rows); break;
  case END_V1_END: snprintf(buf, len, "noSuchName (v1 end) after %u rows", col->rows); break;
  case END_LOOP: snprintf(buf, len, "OID not increasing after %u rows", col->rows); break;
  case END_TOO_MANY: snprintf(buf, len, "over %d values", SNMP_MAX_CELLS); break;
  case END_ERROR: snprintf(buf, len, "%s", col->why); break;
  default: snprintf(buf, len, "not walked");
  }
  return buf;
}

static bool cell_same_row(const struct snmp_cell *c, const uint32_t *idx, size_t len) {
  return c->idxlen == len && memcmp(c->idx, idx, len * sizeof(idx[0])) == 0;
}

/* The cell of column `col` with this row index, starting the search at `hint`. */
static const struct snmp_cell *find_cell(const struct snmp_dev *d, size_t first, size_t end,
                                         int col, const uint32_t *idx, size_t len, size_t hint) {
  size_t n = end - first;
  for (size_t k = 0; k < n; k++) {
    size_t i = first + (hint - first + k) % n;
    const struct snmp_cell *c = &d->cells[i];
    if (c->col == col && cell_same_row(c, idx, len))
      return c;
  }
  return NULL;
}

static bool row_in(const struct prev_rows *p, const uint32_t *idx, size_t len) {
  for (size_t i = 0; i < p->n; i++)
    if (p->rows[i].len == len && memcmp(p->rows[i].idx, idx, len * sizeof(idx[0])) == 0)
      return true;
  return false;
}

static void row_add(struct prev_rows *p, const uint32_t *idx, size_t len) {
  if (row_in(p, idx, len))
    return;
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    struct row_key *grown = realloc(p->rows, cap * sizeof(*grown));
    if (grown == NULL)
      return;
    p->rows = grown;
    p->cap = cap;
  }
  p->rows[p->n].len = (uint8_t)len;
  memcpy(p->rows[p->n].idx, idx, len * sizeof(idx[0]));
  p->n++;
}

/* Sizes the reading buffers for the worst case of this scrape. */
static int size_outputs(struct snmp_dev *d) {
  size_t need = d->nscalars + 1;
  for (size_t i = 0; i < d->prof.nmetrics; i++) {
    const struct snmp_metric *m = &d->prof.metrics[i];
    if (m->table < 0)
      continue;
    size_t first = d->table_cells[2 * m->table], end = d->table_cells[2 * m->table + 1];
    need += (end - first) + d->prev[i].n + 1;
  }
  if (need <= d->capout)
    return 0;
  struct rp_reading *r = realloc(d->readings, need * sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  d->readings = r;
  struct snmp_out *o = realloc(d->outs, need * sizeof(*o));
  if (o == NULL)
    return -ENOMEM;
  d->outs = o;
  d->capout = need;
  return 0;
}

static void table_metric_readings(struct snmp_dev *d, int mi, bool restarted) {
  const struct snmp_metric *m = &d->prof.metrics[mi];
  const struct snmp_table *tb = &d->prof.tables[m->table];
  size_t first = d->table_cells[2 * m->table], end = d->table_cells[2 * m->table + 1];
  struct prev_rows now = {0};
  const char *keys[SNMP_MAX_LABELS];
  char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
  size_t nl;
  char ended[200], at[200];
  for (size_t i = first; i < end; i++) {
    const struct snmp_cell *c = &d->cells[i];
    if (c->col != m->column || !snmp_metric_match(m, c->idx, c->idxlen, keys, values, &nl))
      continue;
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    set_labels(r, o, keys, values, nl);
    struct snmp_oid oidv = tb->cols[m->column];
    for (size_t k = 0; k < c->idxlen && oidv.len < SNMP_OID_MAX; k++)
      oidv.sub[oidv.len++] = c->idx[k];
    const struct snmp_value *digits = NULL;
    struct snmp_value missing = {0};
    if (m->digits >= 0) {
      const struct snmp_cell *dc = find_cell(d, first, end, m->digits, c->idx, c->idxlen, i);
      digits = dc ? &dc->v : &missing;
    }
    value_reading(d, mi, r, o, &c->v, digits, &oidv, c->idx, c->idxlen, restarted);
    if (digits == &missing) {
      /* say which column ended, not just "missing" */
      snprintf(o->detail, sizeof(o->detail), "%s: %s: no decimal digits; column %s: %s",
               d->cfg.name, snmp_oid_format(&oidv, at, sizeof(at)), tb->keys[m->digits],
               end_text(&d->walk[m->table][m->digits], ended, sizeof(ended)));
      r->detail = o->detail;
    }
    row_add(&now, c->idx, c->idxlen);
  }
  /* Rows the digits column has but the value column does not: the walk of
   * the value column ended early. */
  if (m->digits >= 0) {
    for (size_t i = first; i < end; i++) {
      const struct snmp_cell *c = &d->cells[i];
      if (c->col != m->digits || !snmp_metric_match(m, c->idx, c->idxlen, keys, values, &nl) ||
          row_in(&now, c->idx, c->idxlen))
        continue;
      struct snmp_out *o;
      struct rp_reading *r = new_reading(d, m, &o);
      set_labels(r, o, keys, values, nl);
      struct snmp_oid oidv = tb->cols[m->column];
      for (size_t k = 0; k < c->idxlen && oidv.len < SNMP_OID_MAX; k++)
        oidv.sub[oidv.len++] = c->idx[k];
      r->status = RP_READING_ABSENT;
      snprintf(o->detail, sizeof(o->detail), "%s: %s: no value (digits present); column %s: %s",
               d->cfg.name, snmp_oid_format(&oidv, at, sizeof(at)), tb->keys[m->column],
               end_text(&d->walk[m->table][m->column], ended, sizeof(ended)));
      r->detail = o->detail;
      row_add(&now, c->idx, c->idxlen);
    }
  }
  /* Rows the previous scrape had and this one did not. */
  struct prev_rows *prev = &d->prev[mi];
  for (size_t i = 0; i < prev->n; i++) {
    const struct row_key *k = &prev->rows[i];
    if (row_in(&now, k->idx, k->len) || !snmp_metric_match(m, k->idx, k->len, keys, values, &nl))
      continue;
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    set_labels(r, o, keys, values, nl);
    struct snmp_oid oidv = tb->cols[m->column];
    for (size_t j = 0; j < k->len && oidv.len < SNMP_OID_MAX; j++)
      oidv.sub[oidv.len++] = k->idx[j];
    r->status = RP_READING_ABSENT;
    snprintf(o->detail, sizeof(o->detail), "%s: %s: row gone since the last scrape; column %s: %s",
             d->cfg.name, snmp_oid_format(&oidv, at, sizeof(at)), tb->keys[m->column],
             end_text(&d->walk[m->table][m->column], ended, sizeof(ended)));
    r->detail = o->detail;
    row_add(&now, k->idx, k->len); /* keep asking after it */
  }
  /* A column that failed with no rows at all: one status without labels. */
  const struct walk_col *col = &d->walk[m->table][m->column];
  if (now.n == 0 && (col->end == END_ERROR || col->end == END_LOOP)) {
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    r->status = RP_READING_ERROR;
    snprintf(o->detail, sizeof(o->detail), "%s: %s (%s column %s): %s", d->cfg.name,
             snmp_oid_format(&tb->cols[m->column], at, sizeof(at)), tb->name, tb->keys[m->column],
             end_text(col, ended, sizeof(ended)));
    r->detail = o->detail;
  }
  free(prev->rows);
  *prev = now;
}

void snmp__finish(struct snmp_dev *d) {
  struct rp_target *t = d->t;
  d->ph = PH_IDLE;
  d->nout = 0;
  struct rp_scrape_result res = {.ts_ms = d->ts_ms, .ok = !d->failed};
  snmp__io_hold_loop(d->io, false);
  if (d->failed) {
    res.error = d->error;
    /* A v3 agent that never answered the probe: probe again next time. */
    rp_target_done(t, &res);
    return;
  }
  if (size_outputs(d) != 0) {
    snprintf(d->error, sizeof(d->error), "%s: out of memory", d->cfg.name);
    res.ok = false;
    res.error = d->error;
    rp_target_done(t, &res);
    return;
  }
  bool restarted = false;
  const struct snmp_value *up = &d->scalar_vals[0];
  if (up->type == SNMP_V_TIMETICKS) {
    uint32_t now = (uint32_t)up->u;
    restarted = d->have_uptime && snmp_uptime_restarted(d->uptime, now);
    if (restarted)
      rp_info("snmp", "%s: %s: the agent restarted (sysUpTime %u after %u)", d->cfg.name,
              d->address, now, d->uptime);
    d->have_uptime = true;
    d->uptime = now;
  }
  for (size_t s = 1; s < d->nscalars; s++) {
    int mi = d->scalar_metric[s];
    const struct snmp_metric *m = &d->prof.metrics[mi];
    struct snmp_out *o;
    struct rp_reading *r = new_reading(d, m, &o);
    const char *keys[SNMP_MAX_LABELS];
    char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
    for (size_t i = 0; i < m->nlabels; i++) {
      keys[i] = m->labels[i].key;
      memcpy(values[i], m->labels[i].value, SNMP_LABEL_VALUE_MAX);
    }
    set_labels(r, o, keys, values, m->nlabels);
    value_reading(d, mi, r, o, &d->scalar_vals[s], NULL, &d->scalar_oids[s], NULL, 0, restarted);
    if (d->scalar_why[s][0] != '\0' && r->status != RP_READING_OK) {
      char at[200];
      snprintf(o->detail, sizeof(o->detail), "%s: %s: %s", d->cfg.name,
               snmp_oid_format(&d->scalar_oids[s], at, sizeof(at)), d->scalar_why[s]);
      r->detail = o->detail;
    }
  }
  for (size_t i = 0; i < d->prof.nmetrics; i++)
    if (d->prof.metrics[i].table >= 0)
      table_metric_readings(d, (int)i, restarted);
  res.readings = d->readings;
  res.nreadings = d->nout;
  rp_target_done(t, &res);
}
