/* The backtest's report (see replay.h): what the candidate policy would
 * have done differently from the one it is compared with. */
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "replay_internal.h"
#include "slo.h"

static const char *const side_names[NSIDES] = {"candidate", "current"};

/* Lead time of `runs` ([[start, end]], end 0 = open) before an incident
 * starting at `start`: the run in force at the start (its onset, lead ≥ 0),
 * else the first run starting up to `until` (lead < 0: late). *found false
 * when there is neither. Seconds. */
static double lead_of(const json_t *runs, int64_t start, int64_t until, bool *found,
                      int64_t *onset) {
  size_t i;
  json_t *run;
  *found = false;
  json_array_foreach(runs, i, run) {
    int64_t a = json_integer_value(json_array_get(run, 0));
    int64_t b = json_integer_value(json_array_get(run, 1));
    if (a <= start && (b == 0 || b > start)) {
      *found = true;
      *onset = a;
      return (double)(start - a) / 1000.0;
    }
  }
  json_array_foreach(runs, i, run) {
    int64_t a = json_integer_value(json_array_get(run, 0));
    if (a > start && a <= until) {
      *found = true;
      *onset = a;
      return (double)(start - a) / 1000.0;
    }
  }
  return 0;
}

/* A side's flags on `rack` as runs [[set, cleared]]. */
static json_t *flag_runs(const struct replay_side *s, const char *rack) {
  json_t *runs = json_array();
  size_t i;
  json_t *f;
  json_array_foreach(s->flags, i, f) {
    if (strcmp(json_string_value(json_object_get(f, "rack")), rack) == 0)
      json_array_append_new(runs, json_pack("[O, O]", json_object_get(f, "set_ms"),
                                            json_object_get(f, "cleared_ms")));
  }
  return runs;
}

static json_t *rack_runs(const struct rp_replay *r, const char *rack, int s) {
  json_t *at = json_object_get(r->rack_index, rack);
  return at ? r->racks[json_integer_value(at)].runs[s] : NULL;
}

static json_t *incident_side(const struct rp_replay *r, size_t i, int s) {
  const struct rp_replay_incident *in = &r->o.incidents[i];
  int64_t until = in->end_ms > in->start_ms ? in->end_ms : in->start_ms;
  if (r->o.to_ms != 0)
    until = r->o.to_ms;
  bool deny_found = false, flag_found = false;
  int64_t deny_at = 0, flag_at = 0;
  json_t *runs = rack_runs(r, in->rack, s);
  double deny_lead = runs ? lead_of(runs, in->start_ms, until, &deny_found, &deny_at) : 0;
  json_t *fr = flag_runs(&r->side[s], in->rack);
  double flag_lead = lead_of(fr, in->start_ms, until, &flag_found, &flag_at);
  json_decref(fr);
  json_t *o = json_pack("{s:I, s:I}", "ticks_during", (json_int_t)r->tally[i].ticks,
                        "allowed_during", (json_int_t)r->tally[i].allowed[s]);
  json_object_set_new(o, "denied_from_ms", deny_found ? json_integer(deny_at) : json_null());
  json_object_set_new(o, "deny_lead_s", deny_found ? json_real(deny_lead) : json_null());
  json_object_set_new(o, "flagged_from_ms", flag_found ? json_integer(flag_at) : json_null());
  json_object_set_new(o, "flag_lead_s", flag_found ? json_real(flag_lead) : json_null());
  double lead = !deny_found             ? flag_lead
                : !flag_found           ? deny_lead
                : deny_lead > flag_lead ? deny_lead
                                        : flag_lead;
  json_object_set_new(o, "lead_s", deny_found || flag_found ? json_real(lead) : json_null());
  json_object_set(o, "placement", json_array_get(r->side[s].placement, i));
  return o;
}

static json_t *incidents(const struct rp_replay *r, json_int_t *violations) {
  json_t *list = json_array();
  for (size_t i = 0; i < r->o.nincidents; i++) {
    const struct rp_replay_incident *in = &r->o.incidents[i];
    json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:b}", "rack", in->rack, "start_ms",
                          (json_int_t)in->start_ms, "end_ms", (json_int_t)in->end_ms, "what",
                          in->what, "must_deny", (int)in->must_deny);
    for (int s = 0; s < NSIDES; s++)
      json_object_set_new(o, side_names[s], incident_side(r, i, s));
    bool covered = r->tally[i].ticks > 0;
    bool violated = in->must_deny && covered && r->tally[i].allowed[SIDE_CAND] > 0;
    json_object_set_new(o, "covered", json_boolean(covered));
    json_object_set_new(o, "violated", json_boolean(violated));
    *violations += violated;
    json_array_append_new(list, o);
  }
  return list;
}

/* Set times of flag `flag` on `rack` under side s, in order. */
static json_t *set_times(const struct replay_side *s, const char *rack, const char *flag) {
  json_t *t = json_array();
  size_t i;
  json_t *f;
  json_array_foreach(s->flags, i, f) {
    if (strcmp(json_string_value(json_object_get(f, "rack")), rack) == 0 &&
        strcmp(json_string_value(json_object_get(f, "flag")), flag) == 0)
      json_array_append(t, json_object_get(f, "set_ms"));
  }
  return t;
}

/* Flags of both policies paired per rack and flag, k-th with k-th. */
static json_t *flag_changes(const struct rp_replay *r, json_t *summary) {
  json_t *out = json_array(), *done = json_object();
  static const char *const kinds[] = {"earlier", "later", "same", "only_candidate", "only_current"};
  json_int_t count[5] = {0};
  for (int s = 0; s < NSIDES; s++) {
    size_t i;
    json_t *f;
    json_array_foreach(r->side[s].flags, i, f) {
      const char *rack = json_string_value(json_object_get(f, "rack"));
      const char *flag = json_string_value(json_object_get(f, "flag"));
      char key[RP_ID_MAX + 40];
      snprintf(key, sizeof(key), "%s\t%s", rack, flag);
      if (json_object_get(done, key) != NULL)
        continue;
      json_object_set_new(done, key, json_true());
      json_t *c = set_times(&r->side[SIDE_CAND], rack, flag);
      json_t *u = set_times(&r->side[SIDE_CUR], rack, flag);
      size_t n = json_array_size(c) > json_array_size(u) ? json_array_size(c) : json_array_size(u);
      for (size_t k = 0; k < n; k++) {
        json_t *cm = json_array_get(c, k), *um = json_array_get(u, k);
        int kind = cm == NULL ? 4 : um == NULL ? 3 : 2;
        json_t *e = json_pack("{s:s, s:s}", "rack", rack, "flag", flag);
        json_object_set_new(e, "candidate_ms", cm ? json_copy(cm) : json_null());
        json_object_set_new(e, "current_ms", um ? json_copy(um) : json_null());
        if (cm && um) {
          json_int_t d = json_integer_value(cm) - json_integer_value(um);
          kind = d < 0 ? 0 : d > 0 ? 1 : 2;
          json_object_set_new(e, "delta_s", json_real((double)d / 1000.0));
        }
        json_object_set_new(e, "change", json_string(kinds[kind]));
        count[kind]++;
        json_array_append_new(out, e);
      }
      json_decref(c);
      json_decref(u);
    }
  }
  for (int k = 0; k < 5; k++)
    json_object_set_new(summary, kinds[k], json_integer(count[k]));
  json_decref(done);
  return out;
}

static json_t *side_summary(const struct rp_replay *r, int s) {
  const struct replay_side *side = &r->side[s];
  char version[64];
  rp_gate_policy_version(side->a.gate, version, sizeof(version));
  json_t *slo = rp_slo_json(side->a.slo, r->next_tick_ms - r->o.tick_ms);
  json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:O}", "version", version, "allow",
                        (json_int_t)side->allow, "deny", (json_int_t)side->deny, "flags_set",
                        (json_int_t)json_array_size(side->flags), "slo",
                        json_object_get(slo, "objectives"));
  json_decref(slo);
  return o;
}

json_t *rp_replay_report(struct rp_replay *r) {
  json_t *by_rack = json_object();
  json_int_t to_deny = 0, to_allow = 0, violations = 0;
  for (size_t i = 0; i < r->nracks; i++) {
    const struct replay_rack *k = &r->racks[i];
    to_deny += (json_int_t)k->to_deny;
    to_allow += (json_int_t)k->to_allow;
    if (k->to_deny || k->to_allow)
      json_object_set_new(by_rack, k->id,
                          json_pack("{s:I, s:I, s:I}", "allow_to_deny", (json_int_t)k->to_deny,
                                    "deny_to_allow", (json_int_t)k->to_allow, "first_ms",
                                    (json_int_t)k->first_change_ms));
  }
  json_t *flag_summary = json_object();
  json_t *flags = flag_changes(r, flag_summary);
  json_t *inc = incidents(r, &violations);
  return json_pack(
      "{s:I, s:I, s:I, s:I, s:I, s:f, s:{s:o, s:o}, s:{s:I, s:I, s:O, s:o}, s:{s:o, s:o}, "
      "s:o, s:I}",
      "from_ms", (json_int_t)r->o.from_ms, "to_ms", (json_int_t)r->o.to_ms, "frames",
      (json_int_t)r->frames, "ticks", (json_int_t)r->ticks, "racks", (json_int_t)r->nracks, "kw",
      r->o.kw, "policies", "candidate", side_summary(r, SIDE_CAND), "current",
      side_summary(r, SIDE_CUR), "decisions", "allow_to_deny", to_deny, "deny_to_allow", to_allow,
      "by_check", r->by_check, "by_rack", by_rack, "flags", "summary", flag_summary, "changes",
      flags, "incidents", inc, "must_deny_violations", violations);
}
