/* rackpulsectl watch: starts a canary soak (POST /v1/canaries) and follows
 * it (GET /v1/canaries/{id}) to its verdict: a line that updates in place
 * on a terminal, a plain line per interval otherwise. Exit 0 when the soak
 * held, 1 the moment a limit broke (the limit, the observed value and
 * when), 2 on error. And rackpulsectl override: allow denied deploys on a
 * rack for a bounded time (create, list, revoke). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_common.h"
#include "rackpulse/cfg.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A limit flag ("8%", "2", "0.5") as a number; false when malformed. */
static bool limit_arg(const char *s, json_t *limits, const char *key) {
  if (s == NULL)
    return true;
  char *end;
  double v = strtod(s, &end);
  if (*end == '%')
    end++;
  if (*end != '\0' || !isfinite(v) || v < 0)
    return false;
  json_object_set_new(limits, key, json_real(v));
  return true;
}

static const char *fmt_num(char *buf, size_t len, json_t *v, const char *f) {
  if (json_is_number(v))
    snprintf(buf, len, f, json_number_value(v));
  else
    snprintf(buf, len, "-");
  return buf;
}

static void print_progress(const json_t *c, bool tty) {
  json_t *o = json_object_get(c, "observed"), *b = json_object_get(c, "baseline");
  char t[32], tr[32], p[32], pr[32], s[32];
  printf("%s%s %s  %5.0fs/%.0fs  supply %s (%s)  power %s kW (%s%%)  slope %s/min%s",
         tty ? "\r" : "", json_string_value(json_object_get(c, "id")),
         json_string_value(json_object_get(c, "rack")),
         json_number_value(json_object_get(c, "elapsed_s")),
         json_number_value(json_object_get(c, "duration_s")),
         fmt_num(t, sizeof(t), json_object_get(o, "supply_temp"), "%.2f"),
         fmt_num(tr, sizeof(tr), json_object_get(o, "temp_rise"), "%+.2f"),
         fmt_num(p, sizeof(p), json_object_get(o, "power_kw"), "%.1f"),
         fmt_num(pr, sizeof(pr), json_object_get(o, "power_rise_pct"), "%+.1f"),
         fmt_num(s, sizeof(s), json_object_get(o, "slope_per_min"), "%.3f"), tty ? "   " : "\n");
  (void)b;
  fflush(stdout);
}

/* The verdict; returns the exit status. */
static int print_verdict(const json_t *c, bool tty) {
  json_t *v = json_object_get(c, "verdict");
  const char *verdict = json_string_value(json_object_get(v, "verdict"));
  time_t at = (time_t)(json_integer_value(json_object_get(v, "at_ms")) / 1000);
  char when[32];
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&at));
  if (tty)
    printf("\n");
  if (verdict != NULL && strcmp(verdict, "held") == 0) {
    printf("HELD: canary %s on rack %s at %s: %s\n", json_string_value(json_object_get(c, "id")),
           json_string_value(json_object_get(c, "rack")), when,
           json_string_value(json_object_get(v, "reason")));
    return 0;
  }
  char obs[32], lim[32];
  printf("BROKEN: canary %s on rack %s: %s: observed %s, limit %s, at %s: %s\n",
         json_string_value(json_object_get(c, "id")), json_string_value(json_object_get(c, "rack")),
         json_string_value(json_object_get(v, "limit")),
         fmt_num(obs, sizeof(obs), json_object_get(v, "observed"), "%.3f"),
         fmt_num(lim, sizeof(lim), json_object_get(v, "limit_value"), "%.3f"), when,
         json_string_value(json_object_get(v, "reason")));
  return 1;
}

static json_t *start_body(const struct args *a) {
  int64_t ms;
  if (a->rack == NULL || a->kw == NULL || a->for_ == NULL || rp_parse_duration_ms(a->for_, &ms)) {
    fprintf(stderr, "rackpulsectl: watch needs --rack R --kw N --for D (e.g. 20m)\n");
    return NULL;
  }
  json_t *limits = json_object();
  if (!limit_arg(a->max_power_rise, limits, "max_power_rise_pct") ||
      !limit_arg(a->max_temp_rise, limits, "max_temp_rise") ||
      !limit_arg(a->max_slope, limits, "max_slope")) {
    fprintf(stderr, "rackpulsectl: watch: --max-power-rise 8%%, --max-temp-rise 2, --max-slope "
                    "0.5: non-negative numbers\n");
    json_decref(limits);
    return NULL;
  }
  json_t *body =
      json_pack("{s:s, s:f, s:s, s:s, s:o}", "rack", a->rack, "kw", strtod(a->kw, NULL), "duration",
                a->for_, "baseline", a->baseline ? a->baseline : "30m", "limits", limits);
  if (a->max_stale)
    json_object_set_new(body, "max_stale", json_string(a->max_stale));
  if (a->power_series)
    json_object_set_new(body, "power_series", json_string(a->power_series));
  if (a->temp_series)
    json_object_set_new(body, "temp_series", json_string(a->temp_series));
  return body;
}

int ctl_watch(const struct args *a) {
  int64_t interval = 5000;
  if (a->interval && (rp_parse_duration_ms(a->interval, &interval) != 0 || interval < 100)) {
    fprintf(stderr, "rackpulsectl: watch: --interval: e.g. 5s (at least 100ms)\n");
    return EXIT_ERROR;
  }
  json_t *body = start_body(a);
  if (body == NULL)
    return EXIT_ERROR;
  long status = 0;
  json_t *c = ctl_change(a, "POST", "/v1/canaries", body, &status);
  json_decref(body);
  if (c == NULL || ctl_check_status("watch", status, c) != 0) {
    json_decref(c);
    return EXIT_ERROR;
  }
  char path[256];
  snprintf(path, sizeof(path), "/v1/canaries/%s", json_string_value(json_object_get(c, "id")));
  bool tty = isatty(STDOUT_FILENO);
  json_t *base = json_object_get(c, "baseline");
  printf("canary %s on rack %s: %s soak against a %llds baseline window (supply %.2f, power "
         "%s kW)\n",
         json_string_value(json_object_get(c, "id")), a->rack, a->for_,
         (long long)json_integer_value(json_object_get(base, "window_s")),
         json_number_value(json_object_get(base, "supply_temp")),
         json_is_number(json_object_get(base, "power_kw")) ? "measured" : "not watched");
  int64_t next_line = 0;
  int errors = 0;
  for (;;) {
    const char *state = json_string_value(json_object_get(c, "state"));
    if (state != NULL && strcmp(state, "running") != 0) {
      int rc = print_verdict(c, tty);
      json_decref(c);
      return rc;
    }
    if (now_ms() >= next_line) {
      print_progress(c, tty);
      next_line = now_ms() + interval;
    }
    sleep_ms(250); /* the verdict within a quarter second of the aggregator's */
    json_t *n = ctl_call("GET", a->base, path, NULL, NULL, &status);
    if (n == NULL || status != 200) {
      json_decref(n);
      if (++errors >= 20) { /* ~5 s without an answer */
        fprintf(stderr, "rackpulsectl: watch: the aggregator stopped answering about %s\n", path);
        json_decref(c);
        return EXIT_ERROR;
      }
      continue;
    }
    errors = 0;
    json_decref(c);
    c = n;
  }
}

static void print_overrides(const json_t *j) {
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(j, "overrides"), i, o) {
    printf(
        "%s  rack %-10s until %lld  by %s  %s%s  %s\n", json_string_value(json_object_get(o, "id")),
        json_string_value(json_object_get(o, "rack")),
        (long long)json_integer_value(json_object_get(o, "expires_ms")),
        json_string_value(json_object_get(o, "client")),
        json_object_get(o, "deploy_id") ? "deploy " : "",
        json_object_get(o, "deploy_id") ? json_string_value(json_object_get(o, "deploy_id")) : "",
        json_string_value(json_object_get(o, "reason")));
  }
}

/* A change, printing the answer. */
static int send_change(const struct args *a, const char *method, const char *path,
                       const json_t *body) {
  long status = 0;
  json_t *j = ctl_change(a, method, path, body, &status);
  if (j == NULL)
    return EXIT_ERROR;
  int rc = ctl_check_status("override", status, j);
  if (rc == 0)
    ctl_print_json(j);
  json_decref(j);
  return rc;
}

int ctl_override(const struct args *a, const char *sub) {
  if (sub != NULL && strcmp(sub, "list") == 0) {
    char path[256] = "/v1/overrides";
    ctl_add_query(path, sizeof(path), "rack", a->rack);
    return ctl_show(a, "override list", path, print_overrides);
  }
  if (sub != NULL && strcmp(sub, "revoke") == 0) {
    if (a->id == NULL) {
      fprintf(stderr, "rackpulsectl: override revoke needs --id ID\n");
      return EXIT_ERROR;
    }
    char path[256];
    char *esc = curl_easy_escape(NULL, a->id, 0);
    snprintf(path, sizeof(path), "/v1/overrides/%s", esc);
    curl_free(esc);
    return send_change(a, "DELETE", path, NULL);
  }
  if (sub != NULL) {
    fprintf(stderr, "rackpulsectl: override: unknown subcommand '%s' (list, revoke)\n", sub);
    return EXIT_ERROR;
  }
  if (a->rack == NULL || a->for_ == NULL || a->reason == NULL) {
    fprintf(stderr, "rackpulsectl: override needs --rack R --for D (at most 24h) --reason TEXT\n");
    return EXIT_ERROR;
  }
  json_t *body = json_pack("{s:s, s:s, s:s}", "rack", a->rack, "for", a->for_, "reason", a->reason);
  int rc = send_change(a, "POST", "/v1/overrides", body);
  json_decref(body);
  return rc;
}
