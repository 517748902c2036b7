/* rackpulsectl: the operator's and the pipeline's command line to the
 * aggregator's HTTP API (libcurl).
 *
 *   rackpulsectl [--url URL] gate --rack R --kw N [--json]
 *   rackpulsectl [--url URL] rack --rack R
 *   rackpulsectl tail [--rack R] [--json] [--from WHEN]   (Kafka; ctl_tail.c)
 *
 * `gate` exits 0 on allow, 1 on deny and 2 on any error (unreachable
 * aggregator, unknown rack, bad arguments), so a CI job can gate on it. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_tail.h"

#define EXIT_ALLOW 0
#define EXIT_DENY 1
#define EXIT_ERROR 2

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

/* GETs base+path. Returns the parsed JSON body (or NULL with a message on
 * stderr) and the HTTP status in *status. */
static json_t *get_json(const char *base, const char *path, long *status) {
  char url[2048];
  snprintf(url, sizeof(url), "%s%s", base, path);
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return NULL;
  struct buffer body = {0};
  char curl_err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  json_t *j = NULL;
  if (rc != CURLE_OK) {
    fprintf(stderr, "rackpulsectl: %s: %s\n", url, curl_err[0] ? curl_err : curl_easy_strerror(rc));
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    json_error_t jerr;
    j = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
    if (j == NULL)
      fprintf(stderr, "rackpulsectl: %s: HTTP %ld, answer is not JSON: %s\n", url, *status,
              jerr.text);
  }
  free(body.data);
  curl_easy_cleanup(curl);
  return j;
}

static void print_check(json_t *c) {
  json_t *obs = json_object_get(c, "observed");
  const char *unit = json_string_value(json_object_get(c, "unit"));
  const char *reason = json_string_value(json_object_get(c, "reason"));
  char observed[64];
  if (json_is_number(obs))
    snprintf(observed, sizeof(observed), "%.2f %s", json_number_value(obs), unit ? unit : "");
  else
    snprintf(observed, sizeof(observed), "none");
  printf("  %-4s  %-18s observed %-14s limit %.2f %s%s%s\n",
         json_is_true(json_object_get(c, "pass")) ? "pass" : "FAIL",
         json_string_value(json_object_get(c, "name")), observed,
         json_number_value(json_object_get(c, "limit")), unit ? unit : "",
         reason ? "  -- " : "", reason ? reason : "");
}

static int cmd_gate(const char *base, const char *rack, const char *kw, bool as_json) {
  char path[512];
  char *end;
  double v = strtod(kw, &end);
  if (*end != '\0' || !isfinite(v) || v < 0) {
    fprintf(stderr, "rackpulsectl: --kw: expected a non-negative number of kW, got '%s'\n", kw);
    return EXIT_ERROR;
  }
  char *rack_esc = curl_easy_escape(NULL, rack, 0);
  snprintf(path, sizeof(path), "/v1/racks/%s/gate?kw=%s", rack_esc, kw);
  curl_free(rack_esc);
  long status = 0;
  json_t *j = get_json(base, path, &status);
  if (j == NULL)
    return EXIT_ERROR;
  int code = EXIT_ERROR;
  const char *decision = json_string_value(json_object_get(j, "decision"));
  if (status != 200 || decision == NULL) {
    const char *e = json_string_value(json_object_get(j, "error"));
    fprintf(stderr, "rackpulsectl: gate %s: HTTP %ld: %s\n", rack, status, e ? e : "no decision");
  } else {
    code = strcmp(decision, "allow") == 0 ? EXIT_ALLOW : EXIT_DENY;
    if (as_json) {
      json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
      fputc('\n', stdout);
    } else {
      printf("rack %s, %s kW: %s (policy %s, decision %s)\n", rack, kw,
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

static int cmd_rack(const char *base, const char *rack) {
  char path[512];
  char *rack_esc = curl_easy_escape(NULL, rack, 0);
  snprintf(path, sizeof(path), "/v1/racks/%s", rack_esc);
  curl_free(rack_esc);
  long status = 0;
  json_t *j = get_json(base, path, &status);
  if (j == NULL)
    return EXIT_ERROR;
  json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
  fputc('\n', stdout);
  json_decref(j);
  return status == 200 ? 0 : EXIT_ERROR;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: rackpulsectl [--url URL] COMMAND [options]\n"
          "Asks the rackpulse aggregator. URL defaults to $RACKPULSE_URL, else\n"
          "http://127.0.0.1:8470.\n\n"
          "commands:\n"
          "  gate --rack R --kw N [--json]   may N more kW land on rack R now?\n"
          "                                  exit 0 allow, 1 deny, 2 error\n"
          "  rack --rack R                   the rack's latest state as JSON\n"
          "  tail [--rack R] [--json] [--from WHEN]\n"
          "                                  frames from Kafka as they arrive\n"
          "                                  (see rackpulsectl tail --help)\n");
}

int main(int argc, char **argv) {
  /* tail reads Kafka, not the HTTP API: its options are its own. */
  if (argc >= 2 && strcmp(argv[1], "tail") == 0)
    return ctl_tail_main(argc - 1, argv + 1);
  const char *base = getenv("RACKPULSE_URL");
  if (base == NULL || *base == '\0')
    base = "http://127.0.0.1:8470";
  const char *rack = NULL, *kw = NULL;
  bool as_json = false;
  enum { OPT_JSON = 256 };
  static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                       {"rack", required_argument, NULL, 'r'},
                                       {"kw", required_argument, NULL, 'k'},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  /* Options may come before or after the command word. */
  const char *command = NULL;
  int c;
  while (optind < argc) {
    if ((c = getopt_long(argc, argv, "+u:r:k:h", opts, NULL)) == -1) {
      if (command != NULL) {
        fprintf(stderr, "rackpulsectl: unexpected argument '%s'\n", argv[optind]);
        return EXIT_ERROR;
      }
      command = argv[optind++];
      continue;
    }
    switch (c) {
    case 'u':
      base = optarg;
      break;
    case 'r':
      rack = optarg;
      break;
    case 'k':
      kw = optarg;
      break;
    case OPT_JSON:
      as_json = true;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return EXIT_ERROR;
    }
  }
  if (command == NULL) {
    usage(stderr);
    return EXIT_ERROR;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = EXIT_ERROR;
  if (strcmp(command, "gate") == 0) {
    if (rack == NULL || kw == NULL)
      fprintf(stderr, "rackpulsectl: gate needs --rack R and --kw N\n");
    else
      rc = cmd_gate(base, rack, kw, as_json);
  } else if (strcmp(command, "rack") == 0) {
    if (rack == NULL)
      fprintf(stderr, "rackpulsectl: rack needs --rack R\n");
    else
      rc = cmd_rack(base, rack);
  } else {
    fprintf(stderr, "rackpulsectl: unknown command '%s' (see --help)\n", command);
  }
  curl_global_cleanup();
  return rc;
}
