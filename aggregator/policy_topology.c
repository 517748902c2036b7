/* The electrical and cooling topology of a gate policy (see policy.h): the
 * rack entries' feed, phase and branch keys (validated here), and the
 * top-level sections
 *
 *   rows:   {r1: {limit_kw: 800, derating: 0.8}}     # row / busway rating
 *   pools:  {p1: {limit_kw: 2000}}                    # pool (upstream) rating
 *   loops:  {l1: {cdu_capacity_kw: 300}}              # a CDU shared by racks
 *   tariff: {currency: EUR, flat: 0.10,               # per kWh
 *            periods: [{from: "07:00", price: 0.18}, {from: "23:00", price: 0.09}]}
 *
 * Time-of-use periods are in UTC, each from its start until the next one's
 * (the last wraps to the first); `flat` is the price when none is given. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

int rp_policy_load_rack_electrical(const struct rp_cfg_doc *doc, rp_cfg_node node,
                                   const char *where, struct rp_rack_meta *r, char *err,
                                   size_t errlen) {
  struct rp_rack_electrical *e = &r->elec;
  bool two = e->feed[0][0] != '\0' && e->feed[1][0] != '\0';
  if (e->feed[0][0] == '\0' && e->feed[1][0] != '\0') {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "feed_b"), where, err, errlen,
                 "feed_b without feed_a: name feed A first");
    return -EINVAL;
  }
  if (two && strcmp(e->feed[0], e->feed[1]) == 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "feed_b"), where, err, errlen,
                 "feed_a and feed_b are the same PDU '%s'", e->feed[0]);
    return -EINVAL;
  }
  if (e->redundancy[0] == '\0' || strcmp(e->redundancy, "n+n") == 0) {
    e->redundant = two;
  } else if (strcmp(e->redundancy, "none") == 0) {
    e->redundant = false;
  } else {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "redundancy"), where, err, errlen,
                 "redundancy '%s' is not n+n or none", e->redundancy);
    return -EINVAL;
  }
  if (strcmp(e->redundancy, "n+n") == 0 && !two) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "redundancy"), where, err, errlen,
                 "redundancy n+n needs feed_a and feed_b");
    return -EINVAL;
  }
  bool rated = !isnan(e->feed_kw) || !isnan(e->phase_amps) || !isnan(e->branch_amps);
  if (rated && e->feed[0][0] == '\0') {
    rp_cfg_error(doc, node, where, err, errlen,
                 "feed_kw, phase_amps and branch_amps need feed_a (the PDU that reads them)");
    return -EINVAL;
  }
  return 0;
}

typedef struct rp_group_limit G;
static const struct rp_cfg_field group_fields[] = {
    RP_CFG_NUM("limit_kw", RP_CFG_DOUBLE, G, limit_kw, NULL, 0, 1e7,
               "rating of the row/busway or pool, kW"),
    RP_CFG_NUM("derating", RP_CFG_DOUBLE, G, derating, "0.8", 0.01, 1,
               "usable fraction of limit_kw (continuous load)"),
    RP_CFG_NUM("cdu_capacity_kw", RP_CFG_DOUBLE, G, cdu_capacity_kw, NULL, 0, 1e7,
               "loops: rated heat removal of the CDU the loop's racks share, kW"),
};

static int load_groups(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *section,
                       struct rp_group_limit **out, size_t *nout, char *err, size_t errlen) {
  if (map == 0)
    return 0;
  size_t n = rp_cfg_map_len(doc, map);
  if (rp_cfg_kind(doc, map) != RP_CFG_MAPPING || n > 100000) {
    rp_cfg_error(doc, map, section, err, errlen, "expected a mapping of names to limits");
    return -EINVAL;
  }
  struct rp_group_limit *g = calloc(n + 1, sizeof(*g));
  if (g == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node node;
    const char *name = rp_cfg_map_key(doc, map, i, &node);
    char where[96];
    if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof(g[i].name)) {
      rp_cfg_error(doc, map, section, err, errlen, "names are 1..63 characters of plain text");
      free(g);
      return -EINVAL;
    }
    snprintf(where, sizeof(where), "%s.%s", section, name);
    snprintf(g[i].name, sizeof(g[i].name), "%s", name);
    g[i].limit_kw = g[i].cdu_capacity_kw = NAN;
    int rc =
        rp_cfg_apply(doc, node, where, group_fields, N(group_fields), NULL, &g[i], err, errlen);
    if (rc != 0) {
      free(g);
      return rc;
    }
  }
  *out = g;
  *nout = n;
  return 0;
}

struct tariff_yaml {
  char currency[8];
  double flat;
};
typedef struct tariff_yaml T;
static const struct rp_cfg_field tariff_fields[] = {
    RP_CFG_STR("currency", T, currency, "EUR", 0, "currency of the prices (ISO 4217)"),
    RP_CFG_NUM("flat", RP_CFG_DOUBLE, T, flat, NULL, 0, 1e6,
               "price per kWh when no period applies"),
};
struct period_yaml {
  char from[8];
  double price;
};
typedef struct period_yaml P;
static const struct rp_cfg_field period_fields[] = {
    RP_CFG_STR("from", P, from, NULL, 1, "start of the period, HH:MM UTC"),
    RP_CFG_NUM("price", RP_CFG_DOUBLE, P, price, NULL, 0, 1e6, "price per kWh in the period"),
};

static int load_tariff(const struct rp_cfg_doc *doc, rp_cfg_node node, struct rp_tariff *t,
                       char *err, size_t errlen) {
  static const char *const sub[] = {"periods", NULL};
  T ty = {.flat = NAN};
  t->flat = NAN;
  if (node == 0)
    return 0;
  int rc =
      rp_cfg_apply(doc, node, "tariff", tariff_fields, N(tariff_fields), sub, &ty, err, errlen);
  if (rc != 0)
    return rc;
  snprintf(t->currency, sizeof(t->currency), "%s", ty.currency);
  t->flat = ty.flat;
  rp_cfg_node list = rp_cfg_get(doc, node, "periods");
  size_t n = rp_cfg_seq_len(doc, list);
  if (list != 0 && (rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE || n > N(t->period))) {
    rp_cfg_error(doc, list, "tariff.periods", err, errlen, "expected a list of at most %zu periods",
                 N(t->period));
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node item = rp_cfg_seq_item(doc, list, i);
    char where[32];
    snprintf(where, sizeof(where), "tariff.periods[%zu]", i);
    P py = {.price = NAN};
    if ((rc = rp_cfg_apply(doc, item, where, period_fields, N(period_fields), NULL, &py, err,
                           errlen)) != 0)
      return rc;
    int hh, mm;
    char tail;
    if (sscanf(py.from, "%d:%d%c", &hh, &mm, &tail) != 2 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59) {
      rp_cfg_error(doc, rp_cfg_get(doc, item, "from"), where, err, errlen, "from '%s' is not HH:MM",
                   py.from);
      return -EINVAL;
    }
    if (isnan(py.price)) {
      rp_cfg_error(doc, item, where, err, errlen, "price is required");
      return -EINVAL;
    }
    int from = hh * 60 + mm;
    if (i > 0 && from <= t->period[i - 1].from_min) {
      rp_cfg_error(doc, item, where, err, errlen, "periods must be in increasing order of from");
      return -EINVAL;
    }
    t->period[i] = (struct rp_tariff_period){.from_min = from, .price = py.price};
  }
  t->nperiods = n;
  if (n == 0 && isnan(t->flat)) {
    rp_cfg_error(doc, node, "tariff", err, errlen, "give flat or periods");
    return -EINVAL;
  }
  return 0;
}

int rp_policy_load_topology(const struct rp_cfg_doc *doc, rp_cfg_node root, struct rp_policy *p,
                            char *err, size_t errlen) {
  int rc =
      load_groups(doc, rp_cfg_get(doc, root, "rows"), "rows", &p->rows, &p->nrows, err, errlen);
  if (rc == 0)
    rc = load_groups(doc, rp_cfg_get(doc, root, "pools"), "pools", &p->pools, &p->npools, err,
                     errlen);
  if (rc == 0)
    rc = load_groups(doc, rp_cfg_get(doc, root, "loops"), "loops", &p->loops, &p->nloops, err,
                     errlen);
  if (rc == 0)
    rc = load_tariff(doc, rp_cfg_get(doc, root, "tariff"), &p->tariff, err, errlen);
  return rc;
}

const struct rp_group_limit *rp_policy_group(const struct rp_group_limit *list, size_t n,
                                             const char *name) {
  if (name == NULL || name[0] == '\0')
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i].name, name) == 0)
      return &list[i];
  return NULL;
}

double rp_tariff_price(const struct rp_tariff *t, int64_t t_ms) {
  if (t->nperiods == 0)
    return t->flat;
  int minute = (int)((t_ms / 60000) % 1440);
  if (minute < 0)
    minute += 1440;
  /* The last period that started at or before `minute`; before the first
   * one of the day, the last one of the day before. */
  double price = t->period[t->nperiods - 1].price;
  for (size_t i = 0; i < t->nperiods; i++)
    if (t->period[i].from_min <= minute)
      price = t->period[i].price;
  return price;
}
