/* Fuzzes what the aggregator's HTTP API does with a client's text before it
 * touches any state (aggregator/http_api.c, aggregator/reservations.c,
 * lib/cfg.c): the input's first line is a query string, split and
 * %-decoded as libmicrohttpd hands arguments over (%00 ends a value), each
 * argument checked as the routes check it (kw with rp_http_parse_kw(),
 * duration with rp_parse_duration_ms(), ids with rp_http_valid_id()); the
 * rest is a request body, parsed with rp_http_parse_body() and, when it is
 * an object, validated as a reservation (rp_reservation_check()) and as an
 * extension (rp_reservation_parse_time() on "end"). A body refused must
 * come with a 400 and a message; one accepted must respect every bound the
 * answer promises. Seeds: gate queries and reservation bodies from the
 * README and tests. */
#include <errno.h>
#include <math.h>

#include "aggregator.h"
#include "fuzz_common.h"
#include "rackpulse/cfg.h"
#include "reservations.h"

#define NOW_MS 1790000000000LL /* a fixed "now": deterministic runs */

static int hex(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* In place, as MHD_http_unescape(): %XX decoded, '+' kept. */
static void unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (r[0] == '%' && hex(r[1]) >= 0 && hex(r[2]) >= 0) {
      *w++ = (char)(hex(r[1]) * 16 + hex(r[2]));
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

static void check_arg(const char *key, const char *value) {
  if (strcmp(key, "kw") == 0) {
    double kw;
    if (rp_http_parse_kw(value, &kw) == 0)
      FUZZ_ASSERT(isfinite(kw) && kw >= 0 && kw <= 100000);
  } else if (strcmp(key, "duration") == 0) {
    int64_t ms;
    if (rp_parse_duration_ms(value, &ms) == 0)
      FUZZ_ASSERT(ms >= 0);
  } else if (rp_http_valid_id(value, strlen(value))) {
    size_t n = strlen(value);
    FUZZ_ASSERT(n >= 1 && n <= 64 &&
                strspn(value, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n);
  }
}

static void check_body(const char *text, size_t len) {
  unsigned status = 0;
  const char *why = NULL;
  json_t *body = rp_http_parse_body(text, len, &status, &why);
  if (body == NULL) {
    FUZZ_ASSERT(status == 400 && why != NULL);
    return;
  }
  FUZZ_ASSERT(json_is_object(body));
  struct rp_reservation_req q;
  int st = 0;
  json_t *e = rp_reservation_check(body, NOW_MS, &q, &st);
  if (e != NULL) {
    FUZZ_ASSERT(st == 400 && json_string_value(json_object_get(e, "error")) != NULL);
    char *dumped = json_dumps(e, JSON_COMPACT);
    FUZZ_ASSERT(dumped != NULL);
    free(dumped);
    json_decref(e);
  } else {
    FUZZ_ASSERT((q.rack == NULL) != (q.pool == NULL));
    FUZZ_ASSERT(q.owner != NULL && q.cls != NULL && q.rank >= 0 && q.rank <= 2);
    FUZZ_ASSERT(isfinite(q.kw) && q.kw > 0 && q.kw <= 100000);
    FUZZ_ASSERT(q.start < q.end && q.end > NOW_MS && q.end - q.start <= 31LL * 86400000);
  }
  int64_t end;
  if (rp_reservation_parse_time(json_object_get(body, "end"), &end) == 0)
    FUZZ_ASSERT(end > 0);
  json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *nl = memchr(data, '\n', size);
  size_t qlen = nl ? (size_t)(nl - (const char *)data) : size;
  char *query = fuzz_strndup(data, qlen);
  char *save = NULL;
  for (char *kv = strtok_r(query, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
    char *eq = strchr(kv, '=');
    char *value = eq ? eq + 1 : kv + strlen(kv);
    if (eq)
      *eq = '\0';
    unescape(kv);
    unescape(value);
    check_arg(kv, value);
  }
  free(query);
  if (nl != NULL)
    check_body(nl + 1, size - qlen - 1);
  return 0;
}
