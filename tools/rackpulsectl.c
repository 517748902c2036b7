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

#include "ctl_floor.h"
#include "ctl_res.h"
#include "ctl_tail.h"
#include "rackpulse/cfg.h"
#include "rackpulse/secret.h"

#define EXIT_ALLOW 0
#define EXIT_DENY 1
#define EXIT_ERROR 2

struct args {
  const char *base, *rack, *kw, *pool, *cls, *owner, *duration, *count;
  const char *start, *end, *id, *flag, *reason, *for_, *hosts, *outlets;
  const char *since, *until, *limit, *token_file, *device, *row, *loop, *wait, *spread;
  bool json, preemptible;
};

struct buffer {
  char *data;
  size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
  struct buffer *b = ctx;
  size_t add = size * n;
  if (b->len + add > (8u << 20))
    return 0; /* refuse answers over 8 MiB */
  char *grown = realloc(b->data, b->len + add + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + b->len, p, add);
  b->data = grown;
  b->len += add;
  b->data[b->len] = '\0';
  return add;
}

/* One request. Returns the parsed JSON answer (or NULL, with a message on
 * stderr) and the HTTP status in *status. `body` (may be NULL) is sent as
 * JSON; `token` (may be NULL) as a bearer token. */
static json_t *call(const char *method, const char *base, const char *path, const json_t *body,
                    const char *token, long *status) {
  char url[2048];
  snprintf(url, sizeof(url), "%s%s", base, path);
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return NULL;
  struct buffer answer = {0};
  char curl_err[CURL_ERROR_SIZE] = "", auth[512];
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (token != NULL) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
    memset(auth, 0, sizeof(auth));
  }
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (text != NULL)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  json_t *j = NULL;
  if (rc != CURLE_OK) {
    fprintf(stderr, "rackpulsectl: %s %s: %s\n", method, url,
            curl_err[0] ? curl_err : curl_easy_strerror(rc));
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    json_error_t jerr;
    j = json_loadb(answer.data ? answer.data : "", answer.len, 0, &jerr);
    if (j == NULL)
      fprintf(stderr, "rackpulsectl: %s: HTTP %ld, answer is not JSON: %s\n", url, *status,
              jerr.text);
  }
  curl_slist_free_all(headers);
  free(text);
  free(answer.data);
  curl_easy_cleanup(curl);
  return j;
}

static void print_json(const json_t *j) {
  json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
  fputc('\n', stdout);
}

/* Prints the API's error and returns EXIT_ERROR, or 0 when status is 2xx. */
static int check_status(const char *what, long status, const json_t *j) {
  if (status >= 200 && status < 300)
    return 0;
  const char *e = json_string_value(json_object_get(j, "error"));
  fprintf(stderr, "rackpulsectl: %s: HTTP %ld: %s\n", what, status, e ? e : "failed");
  return EXIT_ERROR;
}

/* Appends "&key=value" (URL-escaped) when value is set. */
static void add_query(char *path, size_t len, const char *key, const char *value) {
  if (value == NULL)
    return;
  char *esc = curl_easy_escape(NULL, value, 0);
  size_t used = strlen(path);
  snprintf(path + used, len - used, "%c%s=%s", strchr(path, '?') ? '&' : '?', key, esc);
  curl_free(esc);
}

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

static bool read_token(const struct args *a, char *token, size_t len);

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
  add_query(path, sizeof(path), "kw", a->kw);
  add_query(path, sizeof(path), "duration", a->duration);
  add_query(path, sizeof(path), "class", a->cls);
  add_query(path, sizeof(path), "owner", a->owner);
  /* A token, when one is given, lets the gate be asked under a class
   * looser than the rack's own (without it the aggregator answers 403). */
  char token[256] = "";
  const char *file = a->token_file ? a->token_file : getenv("RACKPULSE_TOKEN_FILE");
  if (file != NULL && *file != '\0' && !read_token(a, token, sizeof(token)))
    return EXIT_ERROR;
  long status = 0;
  json_t *j = call("GET", a->base, path, NULL, token[0] ? token : NULL, &status);
  memset(token, 0, sizeof(token));
  if (j == NULL)
    return EXIT_ERROR;
  int code = EXIT_ERROR;
  const char *decision = json_string_value(json_object_get(j, "decision"));
  if (status != 200 || decision == NULL) {
    check_status("gate", status == 200 ? 500 : status, j);
  } else {
    code = strcmp(decision, "allow") == 0 ? EXIT_ALLOW : EXIT_DENY;
    if (a->json) {
      print_json(j);
    } else {
      printf("rack %s, %s kW: %s (policy %s, decision %s)\n", a->rack, a->kw,
             code == EXIT_ALLOW ? "ALLOW" : "DENY",
             json_string_value(json_object_get(j, "policy_version")),
             json_string_value(json_object_get(j, "decision_id")));
      size_t i;
      json_t *c;
      json_array_foreach(json_object_get(j, "checks"), i, c) print_check(c);
    }
  }
  json_decref(j);
  return code;
}

/* GET PATH and print it (JSON, or `human` when given and not --json). */
static int show(const struct args *a, const char *what, const char *path,
                void (*human)(const json_t *)) {
  long status = 0;
  json_t *j = call("GET", a->base, path, NULL, NULL, &status);
  if (j == NULL)
    return EXIT_ERROR;
  int rc = check_status(what, status, j);
  if (rc == 0) {
    if (a->json || human == NULL)
      print_json(j);
    else
      human(j);
  }
  json_decref(j);
  return rc;
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
  return show(a, "rack", path, NULL);
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
  add_query(path, sizeof(path), "kw", a->kw);
  add_query(path, sizeof(path), "count", a->count);
  add_query(path, sizeof(path), "pool", a->pool);
  add_query(path, sizeof(path), "class", a->cls);
  return show(a, "placement", path, print_placement);
}

/* The bearer token for changes; exits the command with an error if absent. */
static bool read_token(const struct args *a, char *token, size_t len) {
  const char *file = a->token_file ? a->token_file : getenv("RACKPULSE_TOKEN_FILE");
  if (file == NULL || *file == '\0') {
    fprintf(stderr, "rackpulsectl: changes need a token: --token-file F or "
                    "RACKPULSE_TOKEN_FILE\n");
    return false;
  }
  char err[512];
  if (rp_secret_read_file(file, token, len, err, sizeof(err)) != 0) {
    fprintf(stderr, "rackpulsectl: token: %s\n", err);
    return false;
  }
  return true;
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
  char token[256];
  if (!read_token(a, token, sizeof(token)))
    return EXIT_ERROR;
  long status = 0;
  json_t *j = call(method, a->base, path, body, token, &status);
  memset(token, 0, sizeof(token));
  if (j == NULL)
    return EXIT_ERROR;
  int rc = check_status(what, status, j);
  if (rc == 0) {
    if (a->json) {
      print_json(j);
    } else if (json_object_get(j, "id")) {
      printf("reservation %s: %s, %.2f kW on %s for %s until %lld\n",
             json_string_value(json_object_get(j, "id")),
             json_string_value(json_object_get(j, "state")),
             json_number_value(json_object_get(j, "kw")),
             json_string_value(json_object_get(j, "rack")),
             json_string_value(json_object_get(j, "owner")),
             (long long)json_integer_value(json_object_get(j, "end_ms")));
    } else {
      print_json(j);
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
  add_query(path, sizeof(path), "rack", a->rack);
  add_query(path, sizeof(path), "owner", a->owner);
  return show(a, "reservations", path, ctl_print_reservations);
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
    add_query(path, sizeof(path), "rack", a->rack);
    return show(a, "flags", path, print_flags);
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
  add_query(path, sizeof(path), "rack", a->rack);
  add_query(path, sizeof(path), "since", a->since);
  add_query(path, sizeof(path), "until", a->until);
  add_query(path, sizeof(path), "limit", a->limit);
  return show(a, "audit", path, print_audit);
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
  json_t *j = call("GET", a->base, "/v1/floor", NULL, NULL, &status);
  if (j == NULL)
    return EXIT_ERROR;
  int rc = check_status("status", status, j);
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
               "          [--wait 30m] [--spread row|loop]  queue if it does not fit yet; spread\n"
               "  extend --id ID --end T  extend a reservation\n"
               "  release --id ID         release a reservation\n"
               "  reservations [--rack R] [--owner O]\n"
               "  flags [--rack R]        flags in force\n"
               "  flags set --rack R --flag F --owner O --for D [--reason TEXT]\n"
               "                          F: scale-back, pause-admissions, evacuate, maintenance\n"
               "  flags clear --rack R --flag F\n"
               "  audit [--rack R] [--since MS] [--until MS] [--limit N]\n"
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
               "Exit status: gate 0 allow / 1 deny / 2 error; the others 0 ok / 2 error.\n");
}

int main(int argc, char **argv) {
  /* tail reads Kafka, not the HTTP API: its options are its own. */
  if (argc >= 2 && strcmp(argv[1], "tail") == 0)
    return ctl_tail_main(argc - 1, argv + 1);
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
    O_WAIT,
    O_SPREAD,
    O_SINCE,
    O_UNTIL,
    O_LIMIT,
    O_TOKEN,
    O_PREEMPTIBLE,
    O_DEVICE,
    O_ROW,
    O_LOOP
  };
  static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
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
                                       {"wait", required_argument, NULL, O_WAIT},
                                       {"spread", required_argument, NULL, O_SPREAD},
                                       {"since", required_argument, NULL, O_SINCE},
                                       {"until", required_argument, NULL, O_UNTIL},
                                       {"limit", required_argument, NULL, O_LIMIT},
                                       {"token-file", required_argument, NULL, O_TOKEN},
                                       {"preemptible", no_argument, NULL, O_PREEMPTIBLE},
                                       {"device", required_argument, NULL, O_DEVICE},
                                       {"row", required_argument, NULL, O_ROW},
                                       {"loop", required_argument, NULL, O_LOOP},
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
    case O_WAIT: a.wait = optarg; break;
    case O_SPREAD: a.spread = optarg; break;
    case O_SINCE: a.since = optarg; break;
    case O_UNTIL: a.until = optarg; break;
    case O_LIMIT: a.limit = optarg; break;
    case O_TOKEN: a.token_file = optarg; break;
    case O_PREEMPTIBLE: a.preemptible = true; break;
    case O_DEVICE: a.device = optarg; break;
    case O_ROW: a.row = optarg; break;
    case O_LOOP: a.loop = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_ERROR;
    }
  }
  const char *command = words[0];
  if (command == NULL) {
    usage(stderr);
    return EXIT_ERROR;
  }
  if (words[1] != NULL && strcmp(command, "flags") != 0 && strcmp(command, "device") != 0) {
    fprintf(stderr, "rackpulsectl: unexpected argument '%s'\n", words[1]);
    return EXIT_ERROR;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
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
  else if (strcmp(command, "audit") == 0)
    rc = cmd_audit(&a);
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
