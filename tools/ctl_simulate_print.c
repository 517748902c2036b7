/* policy simulate's table (see ctl_simulate.c): the backtest report of
 * aggregator/replay.h for a person. */
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "ctl_simulate_int.h"

static const char *when(json_t *ms, char *buf, size_t len) {
  if (!json_is_integer(ms) || json_integer_value(ms) == 0)
    return "-";
  time_t t = (time_t)(json_integer_value(ms) / 1000);
  struct tm tm;
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
  return buf;
}

/* A signed duration: "6m55s before" / "20s after". */
static const char *lead(json_t *s, char *buf, size_t len) {
  if (!json_is_number(s))
    return "never";
  double v = json_number_value(s), a = fabs(v);
  long m = (long)(a / 60);
  snprintf(buf, len, "%ldm%02lds %s", m, (long)a % 60, v >= 0 ? "before" : "after");
  return buf;
}

static long long num(const json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}

static void print_policies(const json_t *r, FILE *out) {
  fprintf(out, "%-10s %-24s %10s %10s %6s\n", "policy", "version", "allow", "deny", "flags");
  const char *sides[] = {"candidate", "current"};
  for (int i = 0; i < 2; i++) {
    json_t *p = json_object_get(json_object_get(r, "policies"), sides[i]);
    fprintf(out, "%-10s %-24s %10lld %10lld %6lld\n", sides[i],
            json_string_value(json_object_get(p, "version")), num(p, "allow"), num(p, "deny"),
            num(p, "flags_set"));
    size_t k;
    json_t *o;
    json_array_foreach(json_object_get(p, "slo"), k, o) {
      fprintf(out, "  slo %s on %s: %.0f s above %g (budget %.0f s), burn rate %.2f, %s\n",
              json_string_value(json_object_get(o, "objective")),
              json_string_value(json_object_get(o, "rack")),
              json_number_value(json_object_get(o, "time_above_s")),
              json_number_value(json_object_get(o, "above")),
              json_number_value(json_object_get(o, "budget_s")),
              json_number_value(json_object_get(o, "burn_rate")),
              json_is_true(json_object_get(o, "met")) ? "met" : "MISSED");
    }
  }
}

static void print_decisions(const json_t *r, FILE *out) {
  json_t *d = json_object_get(r, "decisions");
  fprintf(out,
          "\ndecisions that change (candidate vs current): allow->deny %lld, deny->allow %lld\n",
          num(d, "allow_to_deny"), num(d, "deny_to_allow"));
  const char *key;
  json_t *v;
  char t[32];
  json_object_foreach(json_object_get(d, "by_check"), key, v)
      fprintf(out, "  check %-18s allow->deny %8lld  deny->allow %8lld\n", key,
              num(v, "allow_to_deny"), num(v, "deny_to_allow"));
  json_object_foreach(json_object_get(d, "by_rack"), key, v)
      fprintf(out, "  rack  %-18s allow->deny %8lld  deny->allow %8lld  first %s\n", key,
              num(v, "allow_to_deny"), num(v, "deny_to_allow"),
              when(json_object_get(v, "first_ms"), t, sizeof(t)));
}

static void print_flags(const json_t *r, FILE *out) {
  json_t *f = json_object_get(r, "flags"), *s = json_object_get(f, "summary");
  fprintf(out,
          "\nflags: earlier %lld, later %lld, same %lld, only candidate %lld, only current %lld\n",
          num(s, "earlier"), num(s, "later"), num(s, "same"), num(s, "only_candidate"),
          num(s, "only_current"));
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(f, "changes"), i, c) {
    char a[32], b[32];
    const char *change = json_string_value(json_object_get(c, "change"));
    if (strcmp(change, "same") == 0)
      continue;
    fprintf(out, "  %-12s %-17s candidate %-20s current %-20s %s",
            json_string_value(json_object_get(c, "rack")),
            json_string_value(json_object_get(c, "flag")),
            when(json_object_get(c, "candidate_ms"), a, sizeof(a)),
            when(json_object_get(c, "current_ms"), b, sizeof(b)), change);
    if (json_is_number(json_object_get(c, "delta_s")))
      fprintf(out, " (%.0f s)", fabs(json_number_value(json_object_get(c, "delta_s"))));
    fputc('\n', out);
  }
}

static void print_incidents(const json_t *r, FILE *out) {
  size_t i;
  json_t *in;
  if (json_array_size(json_object_get(r, "incidents")) > 0)
    fprintf(out, "\nincidents (lead time: the candidate's, then the current policy's):\n");
  json_array_foreach(json_object_get(r, "incidents"), i, in) {
    char t[32], a[48], b[48];
    json_t *c = json_object_get(in, "candidate"), *u = json_object_get(in, "current");
    fprintf(out, "  %-12s %s  %s\n    candidate: flag/deny %s   current: %s\n",
            json_string_value(json_object_get(in, "rack")),
            when(json_object_get(in, "start_ms"), t, sizeof(t)),
            json_string_value(json_object_get(in, "what")),
            lead(json_object_get(c, "lead_s"), a, sizeof(a)),
            lead(json_object_get(u, "lead_s"), b, sizeof(b)));
    if (json_is_true(json_object_get(in, "must_deny")))
      fprintf(out, "    must deny: %s (candidate allowed %lld of %lld ticks)\n",
              !json_is_true(json_object_get(in, "covered"))   ? "not in the replayed period"
              : json_is_true(json_object_get(in, "violated")) ? "VIOLATED"
                                                              : "ok",
              num(c, "allowed_during"), num(c, "ticks_during"));
  }
}

void rp_sim_print(const json_t *r, FILE *out) {
  char a[32], b[32];
  fprintf(out, "backtest %s .. %s: %lld frames, %lld ticks, %lld racks, request %g kW (%s)\n",
          when(json_object_get(r, "from_ms"), a, sizeof(a)),
          when(json_object_get(r, "to_ms"), b, sizeof(b)), num(r, "frames"), num(r, "ticks"),
          num(r, "racks"), json_number_value(json_object_get(r, "kw")),
          json_string_value(json_object_get(r, "offsets")));
  print_policies(r, out);
  print_decisions(r, out);
  print_flags(r, out);
  print_incidents(r, out);
  long long v = num(r, "must_deny_violations");
  if (v > 0)
    fprintf(out, "\n%lld must-deny incident(s) the candidate allowed: not safe to deploy\n", v);
}
