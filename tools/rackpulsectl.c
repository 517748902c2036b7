/* rackpulsectl: the operator's and the pipeline's command line to the
 * aggregator's HTTP API (libcurl).
 *
 *   rackpulsectl [--url URL] gate --rack R --kw N [--duration 30m] [--class C] [--owner O]
 *   rackpulsectl [--url URL] rack --rack R
 *   rackpulsectl [--url URL] placement --kw N [--count K] [--pool P] [--class C]
 *   rackpulsectl [--url URL] reserve (--rack R | --pool P) --kw N --owner O --end TIME
 *                [--start TIME] [--class gold|silver|bronze] [--preemptible]
 *                [--hosts h1,h2] [--outlets 1,2] [--wait 30m] [--spread row|loop]
 *   rackpulsectl [--url URL] extend --id ID --end TIME
 *   rackpulsectl [--url URL] release --id ID
 *   rackpulsectl [--url URL] reservations [--rack R] [--owner O]
 *   rackpulsectl [--url URL] flags [--rack R]
 *   rackpulsectl [--url URL] flags set --rack R --flag F --owner O --for 2h [--reason TEXT]
 *   rackpulsectl [--url URL] flags clear --rack R --flag F
 *   rackpulsectl [--url URL] audit [--rack R] [--since MS] [--until MS] [--limit N]
 *   rackpulsectl [--url URL] device retire --rack R --device D [--owner O] [--reason TEXT]
 *   rackpulsectl [--url URL] status [--row R] [--loop L]   one line per rack, worst first
 *   rackpulsectl [--url URL] top [--row R] [--loop L] [--count N]   status every 2 s
 *   rackpulsectl tail [--rack R] [--json] [--from WHEN]   (Kafka; ctl_tail.c)
 *   rackpulsectl policy simulate --policy F --from T1 --to T2 ...   (Kafka; ctl_simulate.c)
 *
 * Human output by default, the API's JSON with --json. Changes (reserve,
 * extend, release, flags set/clear, device retire) send the bearer token read
 * from --token-file or $RACKPULSE_TOKEN_FILE; `gate` sends it too when given
 * (it may then ask under a class looser than the rack's own). `gate` exits 0
 * on allow, 1 on deny
 * and 2 on any error (unreachable aggregator, unknown rack, bad arguments),
 * so a CI job can gate on it; the other commands exit 0 or 2. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_common.h"
#include "ctl_floor.h"
#include "ctl_res.h"
#include "ctl_simulate.h"
#include "ctl_tail.h"
#include "rackpulse/cfg.h"
#include "rackpulse/secret.h"

static bool valid_number(const char *s, double min, double max) {
  char *end;
  double v = s ? strtod(s, &end) : NAN;
  return s != NULL && *end == '\0' && isfinite(v) && v >= min && v <= max;
}

static void print_check(json_t *c) {
  json_t *obs = json_object_get(c, "observed");
  const char *unit = json_string_value(json_object_get(c, "unit"));
  const char *reason = json_string_value(json_object_get(c, "reason"));
  json_t *limit = json_object_get(c, "limit");
  char observed[64], lim[64];
  if (json_is_number(obs))
    snprintf(observed, sizeof(observed), "%.2f %s", json_number_value(obs), unit ? unit : "");
  else
    snprintf(observed, sizeof(observed), "none");
  if (json_is_number(limit))
    snprintf(lim, sizeof(lim), "%.2f %s", json_number_value(limit), unit ? unit : "");
  else
    snprintf(lim, sizeof(lim), "-");
  printf("  %-4s  %-18s observed %-14s limit %-12s%s%s\n",
         json_is_true(json_object_get(c, "pass")) ? "pass" : "FAIL",
         json_string_value(json_object_get(c, "name")), observed, lim, reason ? "  -- " : "",
         reason ? reason : "");
}

static int cmd_gate(const struct args *a) {
  if (a->rack == NULL || a->kw == NULL) {
    fprintf(stderr, "rackpulsectl: gate needs --rack R and --kw N\n");
    return EXIT_ERROR;
  }
  if (!valid_number(a->kw, 0, 100000)) {
    fprintf(stderr, "rackpulsectl: --kw: expected a non-negative number of kW, got '%s'\n", a->kw);
    return EXIT_ERROR;
  }
  char path[1024] = "/v1/racks/";
  char *rack_esc = curl_easy_escape(NULL, a->rack, 0);
  strncat(path, rack_esc, sizeof(path) - strlen(path) - 6);
  curl_free(rack_esc);
  strcat(path, "/gate");
  ctl_add_query(path, sizeof(path), "kw", a->kw);
  ctl_add_query(path, sizeof(path), "duration", a->duration);
  ctl_add_query(path, sizeof(path), "class", a->cls);
  ctl_add_query(path, sizeof(path), "owner", a->owner);
  ctl_deploy_query(a, path, sizeof(path));
  /* A token, when one is given, lets the gate be asked under a class
   * looser than the rack's own (without it the aggregator answers 403). */
  char token[256] = "";
  const char *file = a->token_file ? a->token_file : getenv("RACKPULSE_TOKEN_FILE");
  if (file != NULL && *file != '\0' && !ctl_read_token(a, token, sizeof(token)))
    return EXIT_ERROR;
  long status = 0;
  json_t *j = ctl_call("GET", a->base, path, NULL, token[0] ? token : NULL, &status);
  memset(token, 0, sizeof(token));
  if (j == NULL)
    return EXIT_ERROR;
  int code = EXIT_ERROR;
  const char *decision = json_string_value(json_object_get(j, "decision"));
  if (status != 200 || decision == NULL) {
    ctl_check_status("gate", status == 200 ? 500 : status, j);
  } else {
    code = strcmp(decision, "allow") == 0 ? EXIT_ALLOW : EXIT_DENY;
    if (a->json) {
      ctl_print_json(j);
    } else {
      printf("rack %s, %s kW: %s (policy %s, decision %s)\n", a->rack, a->kw,
             code == EXIT_ALLOW ? "ALLOW" : "DENY",
             json_string_value(json_object_get(j, "policy_version")),
             json_string_value(json_object_get(j, "decision_id")));
      size_t i;
      json_t *c;
      json_array_foreach(json_object_get(j, "checks"), i, c) print_check(c);
      json_t *o = json_object_get(j, "override");
      if (o != NULL) /* an override turned a deny into this allow */
        printf("  OVERRIDE %s by %s until %lld: %s\n", json_string_value(json_object_get(o, "id")),
               json_string_value(json_object_get(o, "client")),
               (long long)json_integer_value(json_object_get(o, "expires_ms")),
               json_string_value(json_object_get(o, "reason")));
    }
  }
  json_decref(j);
  return code;
}

static int cmd_rack(const struct args *a) {
  if (a->rack == NULL) {
    fprintf(stderr, "rackpulsectl: rack needs --rack R\n");
    return EXIT_ERROR;
  }
  char path[512] = "/v1/racks/";
  char *esc = curl_easy_escape(NULL, a->rack, 0);
  strncat(path, esc, sizeof(path) - strlen(path) - 1);
  curl_free(esc);
  return ctl_show(a, "rack", path, NULL);
}

static void print_placement(const json_t *j) {
  size_t i;
  json_t *r;
  printf("racks for %.1f kW (policy %s):\n", json_number_value(json_object_get(j, "kw")),
         json_string_value(json_object_get(j, "policy_version")));
  json_array_foreach(json_object_get(j, "racks"), i, r) {
    printf("  %zu. %-16s score %.3f\n", i + 1, json_string_value(json_object_get(r, "rack")),
           json_number_value(json_object_get(r, "score")));
  }
  json_array_foreach(json_object_get(j, "excluded"), i, r) {
    printf("  excluded %-16s", json_string_value(json_object_get(r, "rack")));
    size_t k;
    json_t *why;
    json_array_foreach(json_object_get(r, "reasons"), k, why)
        printf("%s%s", k ? "; " : " ", json_string_value(why));
    putchar('\n');
  }
}

static int cmd_placement(const struct args *a) {
  if (!valid_number(a->kw, 0, 100000)) {
    fprintf(stderr, "rackpulsectl: placement needs --kw N (kW, 0..100000)\n");
    return EXIT_ERROR;
  }
  char path[1024] = "/v1/placement";
  ctl_add_query(path, sizeof(path), "kw", a->kw);
  ctl_add_query(path, sizeof(path), "count", a->count);
  ctl_add_query(path, sizeof(path), "pool", a->pool);
  ctl_add_query(path, sizeof(path), "class", a->cls);
  ctl_deploy_query(a, path, sizeof(path));
  return ctl_show(a, "placement", path, print_placement);
}

/* A --start/--end value: Unix ms, RFC 3339 text, or "+2h" from now. */
static json_t *time_value(const char *s) {
  int64_t ms;
  if (s[0] == '+' && rp_parse_duration_ms(s + 1, &ms) == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms);
  }
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*end == '\0')
    return json_integer(v);
  return json_string(s);
}

static json_t *split_list(const char *s) {
  json_t *arr = json_array();
  char buf[2048];
  snprintf(buf, sizeof(buf), "%s", s);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
    json_array_append_new(arr, json_string(t));
  return arr;
}

/* A change: method + path + body, with the token; prints the answer. */
static int change(const struct args *a, const char *what, const char *method, const char *path,
                  const json_t *body) {
  long status = 0;
  json_t *j = ctl_change(a, method, path, body, &status);
  if (j == NULL)
    return EXIT_ERROR;
  int rc = ctl_check_status(what, status, j);
  if (rc == 0) {
    if (a->json) {
      ctl_print_json(j);
    } else if (json_object_get(j, "id")) {
      printf("reservation %s: %s, %.2f kW on %s for %s until %lld\n",
             json_string_value(json_object_get(j, "id")),
             json_string_value(json_object_get(j, "state")),
             json_number_value(json_object_get(j, "kw")),
             json_string_value(json_object_get(j, "rack")),
             json_string_value(json_object_get(j, "owner")),
             (long long)json_integer_value(json_object_get(j, "end_ms")));
    } else {
      ctl_print_json(j);
    }
  }
  json_decref(j);
  return rc;
}

static int cmd_reserve(const struct args *a) {
  if ((a->rack == NULL) == (a->pool == NULL) || a->kw == NULL || a->owner == NULL ||
      a->end == NULL) {
    fprintf(stderr, "rackpulsectl: reserve needs --rack R or --pool P, --kw N, --owner O, "
                    "--end TIME (Unix ms, RFC 3339, or +2h)\n");
    return EXIT_ERROR;
  }
  if (!valid_number(a->kw, 0.001, 100000)) {
    fprintf(stderr, "rackpulsectl: --kw: expected kW above 0\n");
    return EXIT_ERROR;
  }
  json_t *body = json_pack("{s:f, s:s, s:o, s:b}", "kw", strtod(a->kw, NULL), "owner", a->owner,
                           "end", time_value(a->end), "preemptible", (int)a->preemptible);
  json_object_set_new(body, a->rack ? "rack" : "pool", json_string(a->rack ? a->rack : a->pool));
  if (a->start)
    json_object_set_new(body, "start", time_value(a->start));
  if (a->cls)
    json_object_set_new(body, "class", json_string(a->cls));
  if (a->hosts)
    json_object_set_new(body, "hosts", split_list(a->hosts));
  if (a->outlets)
    json_object_set_new(body, "outlets", split_list(a->outlets));
  if (a->wait)
    json_object_set_new(body, "wait", json_string(a->wait));
  if (a->spread)
    json_object_set_new(body, "spread", json_string(a->spread));
  int rc = change(a, "reserve", "POST", "/v1/reservations", body);
  json_decref(body);
  return rc;
}

static int cmd_extend(const struct args *a) {
  if (a->id == NULL || a->end == NULL) {
    fprintf(stderr, "rackpulsectl: extend needs --id ID and --end TIME\n");
    return EXIT_ERROR;
  }
  char path[512];
  char *esc = curl_easy_escape(NULL, a->id, 0);
  snprintf(path, sizeof(path), "/v1/reservations/%s/extend", esc);
  curl_free(esc);
  json_t *body = json_pack("{s:o}", "end", time_value(a->end));
  int rc = change(a, "extend", "POST", path, body);
  json_decref(body);
  return rc;
}

static int cmd_release(const struct args *a) {
  if (a->id == NULL) {
    fprintf(stderr, "rackpulsectl: release needs --id ID\n");
    return EXIT_ERROR;
  }
  char path[512];
  char *esc = curl_easy_escape(NULL, a->id, 0);
  snprintf(path, sizeof(path), "/v1/reservations/%s", esc);
  curl_free(esc);
  return change(a, "release", "DELETE", path, NULL);
}

static int cmd_reservations(const struct args *a) {
  char path[512] = "/v1/reservations";
  ctl_add_query(path, sizeof(path), "rack", a->rack);
  ctl_add_query(path, sizeof(path), "owner", a->owner);
  return ctl_show(a, "reservations", path, ctl_print_reservations);
}

static void print_flags(const json_t *j) {
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(j, "flags"), i, f) {
    printf("%-16s %-16s owner %-12s expires %lld  %s\n",
           json_string_value(json_object_get(f, "rack")),
           json_string_value(json_object_get(f, "flag")),
           json_string_value(json_object_get(f, "owner")),
           (long long)json_integer_value(json_object_get(f, "expires_ms")),
           json_string_value(json_object_get(f, "reason")));
  }
}

static int cmd_flags(const struct args *a, const char *sub) {
  if (sub == NULL) {
    char path[512] = "/v1/flags";
    ctl_add_query(path, sizeof(path), "rack", a->rack);
    return ctl_show(a, "flags", path, print_flags);
  }
  if (strcmp(sub, "set") == 0) {
    int64_t ms;
    if (a->rack == NULL || a->flag == NULL || a->owner == NULL || a->for_ == NULL ||
        rp_parse_duration_ms(a->for_, &ms) != 0) {
      fprintf(stderr, "rackpulsectl: flags set needs --rack R --flag F --owner O --for 2h\n");
      return EXIT_ERROR;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:I, s:s}", "rack", a->rack, "flag", a->flag, "owner", a->owner,
                  "expires_ms", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms, "reason",
                  a->reason ? a->reason : "");
    int rc = change(a, "flags set", "POST", "/v1/flags", body);
    json_decref(body);
    return rc;
  }
  if (strcmp(sub, "clear") == 0) {
    if (a->rack == NULL || a->flag == NULL) {
      fprintf(stderr, "rackpulsectl: flags clear needs --rack R --flag F\n");
      return EXIT_ERROR;
    }
    char path[512];
    char *r = curl_easy_escape(NULL, a->rack, 0), *f = curl_easy_escape(NULL, a->flag, 0);
    snprintf(path, sizeof(path), "/v1/flags/%s/%s", r, f);
    curl_free(r);
    curl_free(f);
    return change(a, "flags clear", "DELETE", path, NULL);
  }
  fprintf(stderr, "rackpulsectl: flags: unknown subcommand '%s' (set or clear)\n", sub);
  return EXIT_ERROR;
}

static void print_audit(const json_t *j) {
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(j, "decisions"), i, d) {
    const char *action = json_string_value(json_object_get(d, "action"));
    if (action != NULL) { /* an operator's action (device_retire) or a reservation's */
      const char *dev = json_string_value(json_object_get(d, "device"));
      if (dev == NULL)
        dev = json_string_value(json_object_get(d, "reservation"));
      const char *owner = json_string_value(json_object_get(d, "owner"));
      const char *reason = json_string_value(json_object_get(d, "reason"));
      printf("%lld  %-12s %s %s by %s  %s\n",
             (long long)json_integer_value(json_object_get(d, "evaluated_at_ms")),
             json_string_value(json_object_get(d, "rack")), action, dev ? dev : "",
             owner ? owner : "?", reason ? reason : "");
      continue;
    }
    printf("%lld  %-12s %-5s %7.2f kW  policy %-12s %s\n",
           (long long)json_integer_value(json_object_get(d, "evaluated_at_ms")),
           json_string_value(json_object_get(d, "rack")),
           json_string_value(json_object_get(d, "decision")),
           json_number_value(json_object_get(d, "kw")),
           json_string_value(json_object_get(d, "policy_version")),
           json_string_value(json_object_get(d, "decision_id")));
  }
}

static int cmd_audit(const struct args *a) {
  char path[512] = "/v1/audit";
  ctl_add_query(path, sizeof(path), "rack", a->rack);
  ctl_add_query(path, sizeof(path), "since", a->since);
  ctl_add_query(path, sizeof(path), "until", a->until);
  ctl_add_query(path, sizeof(path), "limit", a->limit);
  return ctl_show(a, "audit", path, print_audit);
}

/* device retire: the device stops being an expected member of the rack's
 * gate inputs (until it reports again); audited. */
static int cmd_device(const struct args *a, const char *sub) {
  if (sub == NULL || strcmp(sub, "retire") != 0) {
    fprintf(stderr, "rackpulsectl: device: expected 'device retire'\n");
    return EXIT_ERROR;
  }
  if (a->rack == NULL || a->device == NULL) {
    fprintf(stderr, "rackpulsectl: device retire needs --rack R --device D\n");
    return EXIT_ERROR;
  }
  const char *owner = a->owner ? a->owner : getenv("USER");
  if (owner == NULL || *owner == '\0')
    owner = "operator";
  char path[512];
  char *r = curl_easy_escape(NULL, a->rack, 0), *d = curl_easy_escape(NULL, a->device, 0);
  snprintf(path, sizeof(path), "/v1/racks/%s/devices/%s/retire", r, d);
  curl_free(r);
  curl_free(d);
  json_t *body = json_pack("{s:s, s:s}", "owner", owner, "reason", a->reason ? a->reason : "");
  int rc = change(a, "device retire", "POST", path, body);
  json_decref(body);
  return rc;
}

/* One status: fetch, filter, sort, print. Returns 0 or EXIT_ERROR. */
static int status_once(const struct args *a) {
  long status = 0;
  json_t *j = ctl_call("GET", a->base, "/v1/floor", NULL, NULL, &status);
  if (j == NULL)
    return EXIT_ERROR;
  int rc = ctl_check_status("status", status, j);
  if (rc == 0) {
    json_t *racks = ctl_floor_select(j, a->row, a->loop);
    if (a->json) {
      json_t *o = json_pack("{s:O, s:O}", "racks", racks, "evaluated_at_ms",
                            json_object_get(j, "evaluated_at_ms"));
      json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
      fputc('\n', stdout);
      json_decref(o);
    } else {
      ctl_floor_print(racks);
    }
    json_decref(racks);
  }
  json_decref(j);
  fflush(stdout);
  return rc;
}

static int cmd_status(const struct args *a) { return status_once(a); }

/* top: status every 2 s; on a terminal the screen is cleared first, else
 * each refresh is a block headed by its time. --count N: N refreshes. */
static int cmd_top(const struct args *a) {
  long count = -1;
  if (a->count != NULL) {
    char *end;
    count = strtol(a->count, &end, 10);
    if (*end != '\0' || count < 1 || count > 1000000) {
      fprintf(stderr, "rackpulsectl: top --count: expected 1..1000000 refreshes\n");
      return EXIT_ERROR;
    }
  }
  bool tty = isatty(STDOUT_FILENO) && !a->json;
  int rc = 0;
  for (long n = 0; count < 0 || n < count; n++) {
    if (n > 0)
      sleep(2);
    if (tty)
      fputs("\033[H\033[2J", stdout);
    if (!a->json) {
      time_t now = time(NULL);
      struct tm tm;
      char when[32];
      strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
      printf("rackpulse top %s  %s\n", when, a->base);
    }
    rc = status_once(a);
    if (!tty && !a->json)
      putchar('\n');
  }
  return rc;
}

static void usage(FILE *out) {
  fprintf(out, "usage: rackpulsectl [--url URL] [--json] COMMAND [options]\n"
               "Asks the rackpulse aggregator. URL defaults to $RACKPULSE_URL, else\n"
               "http://127.0.0.1:8470. Changes need --token-file F (or $RACKPULSE_TOKEN_FILE).\n\n"
               "commands:\n"
               "  gate --rack R --kw N [--duration D] [--class C] [--owner O]\n"
               "                          may N more kW land on rack R now? exit 0 allow,\n"
               "                          1 deny, 2 error\n"
               "  rack --rack R           the rack's latest state (JSON)\n"
               "  placement --kw N [--count K] [--pool P] [--class C]\n"
               "                          racks ranked for N kW, and the ones excluded, why\n"
               "  reserve (--rack R | --pool P) --kw N --owner O --end T [--start T]\n"
               "          [--class gold|silver|bronze] [--preemptible] [--hosts a,b]\n"
               "          [--outlets 1,2]  reserve power (T: Unix ms, RFC 3339, or +2h)\n"
               "          [--wait 30m] [--spread row|loop]  wait until it fits, then\n"
               "                          admit it or refuse it; spread over rows/loops\n"
               "  extend --id ID --end T  extend a reservation\n"
               "  release --id ID         release a reservation\n"
               "  reservations [--rack R] [--owner O]\n"
               "  flags [--rack R]        flags in force\n"
               "  flags set --rack R --flag F --owner O --for D [--reason TEXT]\n"
               "                          F: scale-back, pause-admissions, evacuate, maintenance\n"
               "  flags clear --rack R --flag F\n"
               "  audit [--rack R] [--since MS] [--until MS] [--limit N]\n"
               "  audit --deploy-id X     one deploy's story: every decision and change that\n"
               "                          carried it, in the order they were audited\n"
               "  audit export [--file F] the audit log as JSON lines (hash-chained)\n"
               "  audit verify [--file F | --ledger DIR]\n"
               "                          check the chain of an export (F, or fetched from the\n"
               "                          API) or of the ledger's audit LMDB (DIR): exit 0 when\n"
               "                          whole, 1 on a gap, an edit or a cut, 2 on error\n"
               "  watch --rack R --kw N --for D [--baseline 30m] [--max-power-rise 8%%]\n"
               "        [--max-temp-rise C] [--max-slope C/min] [--max-stale 10s]\n"
               "        [--interval 5s] [--power-series S] [--temp-series S]\n"
               "                          a canary soak against the rack's baseline: exit 0\n"
               "                          held, 1 the moment a limit broke (or telemetry was\n"
               "                          lost), 2 on error\n"
               "  override --rack R --for D --reason TEXT   allow denied deploys on R for D\n"
               "                          (at most 24h; the override role); override list\n"
               "                          [--rack R]; override revoke --id ID\n"
               "  device retire --rack R --device D [--owner O] [--reason TEXT]\n"
               "                          forget a device that will not report again: it no\n"
               "                          longer fails the rack's checks as a stale member\n"
               "                          (owner defaults to $USER; audited)\n"
               "  status [--row R] [--loop L]\n"
               "                          one line per rack, worst first (denied, then least\n"
               "                          headroom): power and thermal headroom (kW), supply\n"
               "                          temperature, delta T, telemetry age, flags, failing\n"
               "                          checks, missing or stale inputs; --json: one object\n"
               "  top [--row R] [--loop L] [--count N]\n"
               "                          status every 2 s (clears a terminal; a block per\n"
               "                          refresh otherwise); N refreshes, default forever\n"
               "  tail [--rack R] [--json] [--from WHEN]\n"
               "                          frames from Kafka as they arrive (tail --help)\n"
               "  policy simulate --policy FILE --from T1 --to T2 [--against current|FILE]\n"
               "          [--racks a,b] [--incidents FILE] [--json]\n"
               "                          backtest a policy on the frames Kafka kept\n"
               "                          (policy --help); exit 1 when it allows a must-deny\n"
               "Deploy fields (every command): --deploy-id X --commit C --pipeline-url U\n"
               "--requester P, else $RACKPULSE_DEPLOY_ID (_COMMIT, _PIPELINE_URL, _REQUESTER),\n"
               "else GitHub Actions, GitLab CI or Jenkins variables. HTTPS: --cacert CA (or\n"
               "$RACKPULSE_CACERT) to verify the aggregator; --cert F --key F for a client\n"
               "certificate.\n"
               "Exit status: gate and watch 0 allow/held / 1 deny/broke / 2 error; audit\n"
               "verify 0 whole / 1 broken / 2 error; policy simulate 0 / 1 must-deny allowed /\n"
               "2 error; the others 0 ok / 2 error.\n");
}

int main(int argc, char **argv) {
  /* tail reads Kafka, not the HTTP API: its options are its own. */
  if (argc >= 2 && strcmp(argv[1], "tail") == 0)
    return ctl_tail_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "policy") == 0) /* reads Kafka too: ctl_simulate.c */
    return ctl_policy_main(argc - 1, argv + 1);
  struct args a = {.base = getenv("RACKPULSE_URL")};
  if (a.base == NULL || *a.base == '\0')
    a.base = "http://127.0.0.1:8470";
  enum {
    O_JSON = 256,
    O_POOL,
    O_CLASS,
    O_OWNER,
    O_DURATION,
    O_COUNT,
    O_START,
    O_END,
    O_ID,
    O_FLAG,
    O_REASON,
    O_FOR,
    O_HOSTS,
    O_OUTLETS,
    O_SINCE,
    O_UNTIL,
    O_LIMIT,
    O_TOKEN,
    O_PREEMPTIBLE,
    O_DEVICE,
    O_ROW,
    O_LOOP,
    O_DEPLOY_ID,
    O_COMMIT,
    O_PIPELINE_URL,
    O_REQUESTER,
    O_CACERT,
    O_CERT,
    O_KEY,
    O_FILE,
    O_LEDGER,
    O_BASELINE,
    O_MAX_POWER_RISE,
    O_MAX_TEMP_RISE,
    O_MAX_SLOPE,
    O_MAX_STALE,
    O_INTERVAL,
    O_POWER_SERIES,
    O_TEMP_SERIES,
    O_WAIT,
    O_SPREAD
  };
  static const struct option opts[] = {
      {"url", required_argument, NULL, 'u'},
      {"rack", required_argument, NULL, 'r'},
      {"kw", required_argument, NULL, 'k'},
      {"json", no_argument, NULL, O_JSON},
      {"pool", required_argument, NULL, O_POOL},
      {"class", required_argument, NULL, O_CLASS},
      {"owner", required_argument, NULL, O_OWNER},
      {"duration", required_argument, NULL, O_DURATION},
      {"count", required_argument, NULL, O_COUNT},
      {"start", required_argument, NULL, O_START},
      {"end", required_argument, NULL, O_END},
      {"id", required_argument, NULL, O_ID},
      {"flag", required_argument, NULL, O_FLAG},
      {"reason", required_argument, NULL, O_REASON},
      {"for", required_argument, NULL, O_FOR},
      {"hosts", required_argument, NULL, O_HOSTS},
      {"outlets", required_argument, NULL, O_OUTLETS},
      {"since", required_argument, NULL, O_SINCE},
      {"until", required_argument, NULL, O_UNTIL},
      {"limit", required_argument, NULL, O_LIMIT},
      {"token-file", required_argument, NULL, O_TOKEN},
      {"preemptible", no_argument, NULL, O_PREEMPTIBLE},
      {"device", required_argument, NULL, O_DEVICE},
      {"row", required_argument, NULL, O_ROW},
      {"loop", required_argument, NULL, O_LOOP},
      {"wait", required_argument, NULL, O_WAIT},
      {"spread", required_argument, NULL, O_SPREAD},
      {"deploy-id", required_argument, NULL, O_DEPLOY_ID},
      {"commit", required_argument, NULL, O_COMMIT},
      {"pipeline-url", required_argument, NULL, O_PIPELINE_URL},
      {"requester", required_argument, NULL, O_REQUESTER},
      {"cacert", required_argument, NULL, O_CACERT},
      {"cert", required_argument, NULL, O_CERT},
      {"key", required_argument, NULL, O_KEY},
      {"file", required_argument, NULL, O_FILE},
      {"ledger", required_argument, NULL, O_LEDGER},
      {"baseline", required_argument, NULL, O_BASELINE},
      {"max-power-rise", required_argument, NULL, O_MAX_POWER_RISE},
      {"max-temp-rise", required_argument, NULL, O_MAX_TEMP_RISE},
      {"max-slope", required_argument, NULL, O_MAX_SLOPE},
      {"max-stale", required_argument, NULL, O_MAX_STALE},
      {"interval", required_argument, NULL, O_INTERVAL},
      {"power-series", required_argument, NULL, O_POWER_SERIES},
      {"temp-series", required_argument, NULL, O_TEMP_SERIES},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  /* Options may come before or after the command words. */
  const char *words[2] = {NULL, NULL};
  int nwords = 0, c;
  while (optind < argc) {
    if ((c = getopt_long(argc, argv, "+u:r:k:h", opts, NULL)) == -1) {
      if (nwords == 2) {
        fprintf(stderr, "rackpulsectl: unexpected argument '%s'\n", argv[optind]);
        return EXIT_ERROR;
      }
      words[nwords++] = argv[optind++];
      continue;
    }
    switch (c) {
    case 'u': a.base = optarg; break;
    case 'r': a.rack = optarg; break;
    case 'k': a.kw = optarg; break;
    case O_JSON: a.json = true; break;
    case O_POOL: a.pool = optarg; break;
    case O_CLASS: a.cls = optarg; break;
    case O_OWNER: a.owner = optarg; break;
    case O_DURATION: a.duration = optarg; break;
    case O_COUNT: a.count = optarg; break;
    case O_START: a.start = optarg; break;
    case O_END: a.end = optarg; break;
    case O_ID: a.id = optarg; break;
    case O_FLAG: a.flag = optarg; break;
    case O_REASON: a.reason = optarg; break;
    case O_FOR: a.for_ = optarg; break;
    case O_HOSTS: a.hosts = optarg; break;
    case O_OUTLETS: a.outlets = optarg; break;
    case O_SINCE: a.since = optarg; break;
    case O_UNTIL: a.until = optarg; break;
    case O_LIMIT: a.limit = optarg; break;
    case O_TOKEN: a.token_file = optarg; break;
    case O_PREEMPTIBLE: a.preemptible = true; break;
    case O_DEVICE: a.device = optarg; break;
    case O_ROW: a.row = optarg; break;
    case O_LOOP: a.loop = optarg; break;
    case O_WAIT: a.wait = optarg; break;
    case O_SPREAD: a.spread = optarg; break;
    case O_DEPLOY_ID: a.deploy_id = optarg; break;
    case O_COMMIT: a.commit = optarg; break;
    case O_PIPELINE_URL: a.pipeline_url = optarg; break;
    case O_REQUESTER: a.requester = optarg; break;
    case O_CACERT: a.cacert = optarg; break;
    case O_CERT: a.cert = optarg; break;
    case O_KEY: a.key = optarg; break;
    case O_FILE: a.file = optarg; break;
    case O_LEDGER: a.ledger = optarg; break;
    case O_BASELINE: a.baseline = optarg; break;
    case O_MAX_POWER_RISE: a.max_power_rise = optarg; break;
    case O_MAX_TEMP_RISE: a.max_temp_rise = optarg; break;
    case O_MAX_SLOPE: a.max_slope = optarg; break;
    case O_MAX_STALE: a.max_stale = optarg; break;
    case O_INTERVAL: a.interval = optarg; break;
    case O_POWER_SERIES: a.power_series = optarg; break;
    case O_TEMP_SERIES: a.temp_series = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_ERROR;
    }
  }
  const char *command = words[0];
  if (command == NULL) {
    usage(stderr);
    return EXIT_ERROR;
  }
  if (words[1] != NULL && strcmp(command, "flags") != 0 && strcmp(command, "device") != 0 &&
      strcmp(command, "audit") != 0 && strcmp(command, "override") != 0) {
    fprintf(stderr, "rackpulsectl: unexpected argument '%s'\n", words[1]);
    return EXIT_ERROR;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  ctl_tls_init(&a);
  int rc = EXIT_ERROR;
  if (strcmp(command, "gate") == 0)
    rc = cmd_gate(&a);
  else if (strcmp(command, "rack") == 0)
    rc = cmd_rack(&a);
  else if (strcmp(command, "placement") == 0)
    rc = cmd_placement(&a);
  else if (strcmp(command, "reserve") == 0)
    rc = cmd_reserve(&a);
  else if (strcmp(command, "extend") == 0)
    rc = cmd_extend(&a);
  else if (strcmp(command, "release") == 0)
    rc = cmd_release(&a);
  else if (strcmp(command, "reservations") == 0)
    rc = cmd_reservations(&a);
  else if (strcmp(command, "flags") == 0)
    rc = cmd_flags(&a, words[1]);
  else if (strcmp(command, "audit") == 0 && (words[1] != NULL || a.deploy_id != NULL))
    rc = ctl_audit(&a, words[1]);
  else if (strcmp(command, "audit") == 0)
    rc = cmd_audit(&a);
  else if (strcmp(command, "watch") == 0)
    rc = ctl_watch(&a);
  else if (strcmp(command, "override") == 0)
    rc = ctl_override(&a, words[1]);
  else if (strcmp(command, "device") == 0)
    rc = cmd_device(&a, words[1]);
  else if (strcmp(command, "status") == 0)
    rc = cmd_status(&a);
  else if (strcmp(command, "top") == 0)
    rc = cmd_top(&a);
  else
    fprintf(stderr, "rackpulsectl: unknown command '%s' (see --help)\n", command);
  curl_global_cleanup();
  return rc;
}
