/* The escalation ladder (see ladder.h): policy parsing, breach tracking per
 * rack and check, and the reconciliation of automatic flags in the ledger
 * with what the breaches want, announced on rackpulse.events. */
#include "ladder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "ledger.h"
#include "policy.h"
#include "rackpulse/log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *const rp_ladder_checks[RP_LADDER_NCHECKS] = {
    "supply_temp",  "supply_slope", "inlet_slope",    "delta_t",         "flow",
    "heat_balance", "alarms",       "power_headroom", "thermal_headroom"};

/* The fixed mapping the aggregator had before ladders, by check. */
static const char *const default_flag[RP_LADDER_NCHECKS] = {
    "pause-admissions", "pause-admissions", "pause-admissions",
    "pause-admissions", "pause-admissions", "pause-admissions",
    "evacuate",         "scale-back",       "scale-back"};

static const char *const flag_names[] = {"scale-back", "pause-admissions", "evacuate",
                                         "maintenance"};
static const char *const target_names[] = {"rack", "loop", "row"};

static int check_index(const char *name) {
  for (int i = 0; i < RP_LADDER_NCHECKS; i++)
    if (strcmp(rp_ladder_checks[i], name) == 0)
      return i;
  return -1;
}

void rp_ladder_policy_default(struct rp_ladder_policy *lp) {
  memset(lp, 0, sizeof(*lp));
  for (int i = 0; i < RP_LADDER_NCHECKS; i++) {
    struct rp_ladder_rule *r = &lp->rule[i];
    r->nsteps = 1;
    snprintf(r->step[0].flag, sizeof(r->step[0].flag), "%s", default_flag[i]);
    r->min_hold_ms = -1;
  }
}

/* ---- parsing ---- */

struct step_yaml {
  struct rp_ladder_step s;
  char target[16];
};

static const struct rp_cfg_field step_fields[] = {
    RP_CFG_STR("flag", struct step_yaml, s.flag, NULL, 1,
               "scale-back, pause-admissions, evacuate or maintenance"),
    RP_CFG_NUM("after", RP_CFG_DURATION, struct step_yaml, s.after_ms, NULL, 0, 86400 * 7,
               "raised once the breach has lasted this long (0s: at once)"),
    RP_CFG_STR("target", struct step_yaml, target, NULL, 0, "rack (default), loop or row"),
};

static const struct rp_cfg_field rule_fields[] = {
    RP_CFG_NUM("clear_after", RP_CFG_DURATION, struct rp_ladder_rule, clear_after_ms, NULL, 0,
               86400, "the breach must be over this long before its flags clear"),
    RP_CFG_NUM("min_hold", RP_CFG_DURATION, struct rp_ladder_rule, min_hold_ms, NULL, 0, 86400,
               "a flag stays at least this long once set (default flags.min_hold)"),
};

static int known(const char *s, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0)
      return (int)i;
  return -1;
}

static int parse_step(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                      struct rp_ladder_step *out, char *err, size_t errlen) {
  struct step_yaml y = {0};
  int rc = rp_cfg_apply(doc, node, where, step_fields, N(step_fields), NULL, &y, err, errlen);
  if (rc != 0)
    return rc;
  if (known(y.s.flag, flag_names, N(flag_names)) < 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "flag"), where, err, errlen,
                 "flag '%s' is not scale-back, pause-admissions, evacuate or maintenance",
                 y.s.flag);
    return -EINVAL;
  }
  int t = y.target[0] ? known(y.target, target_names, N(target_names)) : 0;
  if (t < 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "target"), where, err, errlen,
                 "target '%s' is not rack, loop or row", y.target);
    return -EINVAL;
  }
  y.s.target = (enum rp_flag_target)t;
  *out = y.s;
  return 0;
}

static int parse_rule(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                      struct rp_ladder_rule *r, char *err, size_t errlen) {
  static const char *const sections[] = {"steps", NULL};
  struct rp_ladder_rule y = {.min_hold_ms = -1};
  int rc = rp_cfg_apply(doc, node, where, rule_fields, N(rule_fields), sections, &y, err, errlen);
  if (rc != 0)
    return rc;
  rp_cfg_node steps = rp_cfg_get(doc, node, "steps");
  size_t n = rp_cfg_seq_len(doc, steps);
  if (steps == 0 || rp_cfg_kind(doc, steps) != RP_CFG_SEQUENCE || n == 0 ||
      n > RP_LADDER_MAX_STEPS) {
    rp_cfg_error(doc, steps ? steps : node, where, err, errlen,
                 "steps: expected a list of 1 to %d steps", RP_LADDER_MAX_STEPS);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    char at[96];
    snprintf(at, sizeof(at), "%s.steps[%zu]", where, i);
    rp_cfg_node item = rp_cfg_seq_item(doc, steps, i);
    if ((rc = parse_step(doc, item, at, &y.step[i], err, errlen)) != 0)
      return rc;
    if (i > 0 && y.step[i].after_ms < y.step[i - 1].after_ms) {
      rp_cfg_error(doc, item, at, err, errlen, "after must not be shorter than the step before");
      return -EINVAL;
    }
  }
  y.nsteps = n;
  *r = y;
  return 0;
}

int rp_ladder_parse(const struct rp_cfg_doc *doc, rp_cfg_node node, struct rp_ladder_policy *lp,
                    char *err, size_t errlen) {
  if (node == 0)
    return 0;
  if (rp_cfg_kind(doc, node) != RP_CFG_MAPPING) {
    rp_cfg_error(doc, node, "ladder", err, errlen, "expected a mapping of check names");
    return -EINVAL;
  }
  for (size_t i = 0; i < rp_cfg_map_len(doc, node); i++) {
    rp_cfg_node value;
    const char *name = rp_cfg_map_key(doc, node, i, &value);
    int id = name ? check_index(name) : -1;
    if (id < 0) {
      rp_cfg_error(doc, value ? value : node, "ladder", err, errlen,
                   "'%s' is not a check with a ladder (supply_temp, supply_slope, inlet_slope, "
                   "delta_t, flow, heat_balance, alarms, power_headroom, thermal_headroom)",
                   name ? name : "");
      return -EINVAL;
    }
    char where[64];
    snprintf(where, sizeof(where), "ladder.%s", name);
    int rc = parse_rule(doc, value, where, &lp->rule[id], err, errlen);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- breach state ---- */

struct breach {
  char rack[RP_ID_MAX + 1];
  int check;
  int64_t since_ms;       /* 0: no breach */
  int64_t clear_since_ms; /* 0: breaching now */
  json_t *last;           /* the failing check's answer, newest */
};

struct rp_ladder {
  struct breach *b;
  size_t n, cap;
  json_t *index;    /* "rack\tcheck" -> position in b */
  json_t *observed; /* racks observed this pass -> true */
  rp_ladder_observer fn, audit;
  void *ctx, *audit_ctx;
};

int rp_ladder_new(struct rp_ladder **out) {
  struct rp_ladder *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return -ENOMEM;
  l->index = json_object();
  l->observed = json_object();
  if (l->index == NULL || l->observed == NULL) {
    rp_ladder_free(l);
    return -ENOMEM;
  }
  *out = l;
  return 0;
}

void rp_ladder_free(struct rp_ladder *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->n; i++)
    json_decref(l->b[i].last);
  free(l->b);
  json_decref(l->index);
  json_decref(l->observed);
  free(l);
}

void rp_ladder_set_observer(struct rp_ladder *l, rp_ladder_observer fn, void *ctx) {
  l->fn = fn;
  l->ctx = ctx;
}

static struct breach *breach_of(struct rp_ladder *l, const char *rack, int check, bool create) {
  char key[RP_ID_MAX + 8];
  snprintf(key, sizeof(key), "%s\t%d", rack, check);
  json_t *at = json_object_get(l->index, key);
  if (at != NULL)
    return &l->b[json_integer_value(at)];
  if (!create)
    return NULL;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    struct breach *grown = realloc(l->b, cap * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    l->b = grown;
    l->cap = cap;
  }
  struct breach *b = &l->b[l->n];
  memset(b, 0, sizeof(*b));
  snprintf(b->rack, sizeof(b->rack), "%s", rack);
  b->check = check;
  json_object_set_new(l->index, key, json_integer((json_int_t)l->n));
  l->n++;
  return b;
}

/* Whether check answer c is a breach the ladder acts on. */
static bool breaching(const char *name, const json_t *c) {
  if (json_is_true(json_object_get(c, "pass")) || !json_is_number(json_object_get(c, "observed")))
    return false;
  if (strcmp(name, "power_headroom") != 0 && strcmp(name, "thermal_headroom") != 0)
    return true;
  /* Headroom checks breach only when the rack is over already: the heat of
   * reservations not yet drawn is work to come, not heat to shed. */
  double over = json_number_value(json_object_get(c, "observed"));
  json_t *planned = json_object_get(c, "reserved_heat_kw");
  if (strcmp(name, "thermal_headroom") == 0 && json_is_number(planned))
    over += json_number_value(planned);
  return over < 0;
}

void rp_ladder_observe(struct rp_ladder *l, const char *rack, const json_t *decision,
                       int64_t now_ms) {
  json_object_set_new(l->observed, rack, json_true());
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(decision, "checks"), i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    int id = name ? check_index(name) : -1;
    if (id < 0)
      continue;
    bool bad = breaching(name, c);
    struct breach *b = breach_of(l, rack, id, bad);
    if (b == NULL)
      continue;
    if (bad) {
      if (b->since_ms == 0)
        b->since_ms = now_ms;
      b->clear_since_ms = 0;
      json_decref(b->last);
      b->last = json_deep_copy(c);
    } else if (b->since_ms != 0 && b->clear_since_ms == 0) {
      b->clear_since_ms = now_ms;
    }
  }
}

/* ---- reconciliation ---- */

struct want {
  json_t *list;  /* flag JSONs in the order they are to be set */
  json_t *index; /* "rack\tflag" -> true */
};

static void want_flag(struct want *w, const char *rack, const struct breach *b,
                      const struct rp_ladder_rule *r, size_t step, int64_t now) {
  const struct rp_ladder_step *s = &r->step[step];
  char key[RP_ID_MAX + 40];
  snprintf(key, sizeof(key), "%s\t%s", rack, s->flag);
  if (json_object_get(w->index, key) != NULL)
    return;
  json_object_set_new(w->index, key, json_true());
  const char *reason = json_string_value(json_object_get(b->last, "reason"));
  char why[320];
  if (strcmp(rack, b->rack) == 0)
    snprintf(why, sizeof(why), "%s", reason ? reason : "");
  else
    snprintf(why, sizeof(why), "%s of rack %s: %s", target_names[s->target], b->rack,
             reason ? reason : "");
  json_t *f = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:s, s:I, s:I, s:s}", "rack", rack,
      "flag", s->flag, "owner", "rackpulse", "source", "auto", "check", rp_ladder_checks[b->check],
      "reason", why, "observed", json_number_value(json_object_get(b->last, "observed")), "limit",
      json_number_value(json_object_get(b->last, "limit")), "set_ms", (json_int_t)now, "expires_ms",
      (json_int_t)INT64_MAX, "source_rack", b->rack, "step", (json_int_t)(step + 1),
      "breach_since_ms", (json_int_t)b->since_ms, "target", target_names[s->target]);
  if (f != NULL && r->min_hold_ms >= 0)
    json_object_set_new(f, "min_hold_ms", json_integer((json_int_t)r->min_hold_ms));
  if (f != NULL)
    json_array_append_new(w->list, f);
}

/* The racks a step of rack `rack` aims at, as a JSON array of ids. */
static json_t *targets(const struct rp_policy *p, const char *rack, enum rp_flag_target t) {
  json_t *out = json_array();
  const struct rp_rack_meta *meta = NULL;
  rp_policy_for(p, rack, NULL, &meta);
  const char *group = meta == NULL          ? NULL
                      : t == RP_TARGET_LOOP ? meta->loop
                      : t == RP_TARGET_ROW  ? meta->row
                                            : NULL;
  if (group == NULL || group[0] == '\0') {
    json_array_append_new(out, json_string(rack));
    return out;
  }
  for (size_t i = 0; i < p->nracks; i++) {
    const char *g = t == RP_TARGET_LOOP ? p->racks[i].loop : p->racks[i].row;
    if (strcmp(g, group) == 0)
      json_array_append_new(out, json_string(p->racks[i].id));
  }
  return out;
}

/* The flags every breach wants now, ending breaches past their clear_after. */
static void collect_wants(struct rp_ladder *l, const struct rp_policy *p, struct want *w,
                          int64_t now) {
  for (size_t i = 0; i < l->n; i++) {
    struct breach *b = &l->b[i];
    if (b->since_ms == 0)
      continue;
    const struct rp_ladder_rule *r = &p->ladder.rule[b->check];
    if (b->clear_since_ms != 0 && now - b->clear_since_ms >= r->clear_after_ms) {
      b->since_ms = b->clear_since_ms = 0;
      continue;
    }
    /* While the breach is over but not for clear_after, it holds its steps
     * without climbing further. */
    int64_t lasted = (b->clear_since_ms ? b->clear_since_ms : now) - b->since_ms;
    for (size_t s = 0; s < r->nsteps; s++) {
      if (r->step[s].after_ms > lasted)
        break;
      json_t *racks = targets(p, b->rack, r->step[s].target);
      size_t k;
      json_t *id;
      json_array_foreach(racks, k, id) want_flag(w, json_string_value(id), b, r, s, now);
      json_decref(racks);
    }
  }
}

static bool has_flag(const json_t *have, const char *rack, const char *flag) {
  size_t i;
  json_t *f;
  json_array_foreach(have, i, f) {
    const char *r = json_string_value(json_object_get(f, "rack"));
    const char *n = json_string_value(json_object_get(f, "flag"));
    if (r && n && strcmp(r, rack) == 0 && strcmp(n, flag) == 0)
      return true;
  }
  return false;
}

static bool is_auto(const json_t *f) {
  const char *src = json_string_value(json_object_get(f, "source"));
  return src != NULL && strcmp(src, "auto") == 0;
}

static void set_wanted(struct rp_ladder *l, const struct want *w, const json_t *have,
                       struct rp_ledger *ledger, struct rp_events *ev, const char *version,
                       int64_t now) {
  size_t i;
  json_t *f;
  json_array_foreach(w->list, i, f) {
    const char *rack = json_string_value(json_object_get(f, "rack"));
    const char *flag = json_string_value(json_object_get(f, "flag"));
    if (has_flag(have, rack, flag))
      continue;
    /* Never over a flag an operator set since `have` was read. */
    if (rp_ledger_flag_put_new(ledger, rack, flag, f) != 0)
      continue;
    rp_warn("flags", "%s set on rack %s (step %lld of %s): %s", flag, rack,
            (long long)json_integer_value(json_object_get(f, "step")),
            json_string_value(json_object_get(f, "check")),
            json_string_value(json_object_get(f, "reason")));
    rp_events_publish(ev, f, true, version);
    if (l->audit)
      l->audit(l->audit_ctx, f, true, now);
    if (l->fn)
      l->fn(l->ctx, f, true, now);
  }
}

static void clear_unwanted(struct rp_ladder *l, const struct want *w, const json_t *have,
                           struct rp_ledger *ledger, struct rp_events *ev, const char *version,
                           int64_t default_hold, int64_t now) {
  size_t i;
  json_t *f;
  json_array_foreach(have, i, f) {
    const char *rack = json_string_value(json_object_get(f, "rack"));
    const char *flag = json_string_value(json_object_get(f, "flag"));
    const char *src = json_string_value(json_object_get(f, "source_rack"));
    if (!is_auto(f) || rack == NULL || flag == NULL)
      continue;
    /* Only what this pass saw: a rack not evaluated keeps its flags. */
    if (json_object_get(l->observed, rack) == NULL &&
        (src == NULL || json_object_get(l->observed, src) == NULL))
      continue;
    char key[RP_ID_MAX + 40];
    snprintf(key, sizeof(key), "%s\t%s", rack, flag);
    json_t *hold_j = json_object_get(f, "min_hold_ms");
    int64_t hold = json_is_integer(hold_j) ? json_integer_value(hold_j) : default_hold;
    if (json_object_get(w->index, key) != NULL ||
        now - json_integer_value(json_object_get(f, "set_ms")) < hold)
      continue;
    /* Only the automatic flag as read, not one set again meanwhile. */
    if (rp_ledger_flag_del_if(ledger, rack, flag, f) != 0)
      continue;
    rp_info("flags", "%s cleared on rack %s", flag, rack);
    rp_events_publish(ev, f, false, version);
    if (l->audit)
      l->audit(l->audit_ctx, f, false, now);
    if (l->fn)
      l->fn(l->ctx, f, false, now);
  }
}

void rp_ladder_apply_audited(struct rp_ladder *l, const struct rp_policy *p,
                             struct rp_ledger *ledger, struct rp_events *ev,
                             int64_t default_min_hold_ms, int64_t now_ms, rp_ladder_observer audit,
                             void *audit_ctx) {
  l->audit = audit;
  l->audit_ctx = audit_ctx;
  rp_ladder_apply(l, p, ledger, ev, default_min_hold_ms, now_ms);
  l->audit = NULL;
  l->audit_ctx = NULL;
}

void rp_ladder_apply(struct rp_ladder *l, const struct rp_policy *p, struct rp_ledger *ledger,
                     struct rp_events *ev, int64_t default_min_hold_ms, int64_t now_ms) {
  struct want w = {.list = json_array(), .index = json_object()};
  json_t *have = rp_ledger_flag_list(ledger, NULL);
  if (w.list != NULL && w.index != NULL && have != NULL) {
    collect_wants(l, p, &w, now_ms);
    set_wanted(l, &w, have, ledger, ev, p->version, now_ms);
    clear_unwanted(l, &w, have, ledger, ev, p->version, default_min_hold_ms, now_ms);
  }
  json_decref(have);
  json_decref(w.list);
  json_decref(w.index);
  json_object_clear(l->observed);
}
