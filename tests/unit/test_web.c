/* Unit tests for the incident-map page's embedded files (aggregator/web.c):
 * the paths served and their types, that the embedded bytes are the files
 * of aggregator/web/ (cmake/embed_web.cmake), that the page has no inline
 * code its Content-Security-Policy would block, and that the policy is
 * strict (nothing inline, nothing from elsewhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"

/* The file as it is in the source tree; the caller frees it. */
static char *read_source(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/aggregator/web/%s", RP_SOURCE_DIR, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = malloc(1 << 20);
  assert_non_null(buf);
  *len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  return buf;
}

static void expect_asset(const char *path, const char *file, const char *type) {
  const unsigned char *data;
  size_t len;
  const char *t;
  assert_true(rp_web_asset(path, &data, &len, &t));
  assert_string_equal(t, type);
  size_t flen;
  char *src = read_source(file, &flen);
  assert_int_equal(len, flen);
  assert_memory_equal(data, src, len);
  assert_int_equal(data[len], 0); /* NUL-terminated as well */
  free(src);
}

static void test_paths_and_types(void **state) {
  (void)state;
  expect_asset("/", "index.html", "text/html; charset=utf-8");
  expect_asset("/index.html", "index.html", "text/html; charset=utf-8");
  expect_asset("/floor.js", "floor.js", "text/javascript; charset=utf-8");
  expect_asset("/floor.css", "floor.css", "text/css; charset=utf-8");
  const unsigned char *data;
  size_t len;
  const char *t;
  assert_false(rp_web_asset("/nope.js", &data, &len, &t));
  assert_false(rp_web_asset("/floor.js/", &data, &len, &t));
  assert_false(rp_web_asset("", &data, &len, &t));
  assert_false(rp_web_asset("//", &data, &len, &t));
}

static void test_no_inline_code(void **state) {
  (void)state;
  const unsigned char *data;
  size_t len;
  const char *t;
  assert_true(rp_web_asset("/", &data, &len, &t));
  const char *html = (const char *)data;
  assert_non_null(strstr(html, "<script src=\"floor.js\""));
  assert_null(strstr(html, "<script>"));
  assert_null(strstr(html, " style="));
  assert_null(strstr(html, "javascript:"));
  assert_null(strstr(html, "http://"));
  assert_null(strstr(html, "https://"));
  static const char *const handlers[] = {
      " onclick=", " onload=", " onerror=", " onchange=", " onmouseover="};
  for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
    assert_null(strstr(html, handlers[i]));
  assert_true(rp_web_asset("/floor.js", &data, &len, &t));
  assert_null(strstr((const char *)data, "innerHTML"));
  assert_null(strstr((const char *)data, "eval("));
}

static void test_csp(void **state) {
  (void)state;
  assert_non_null(strstr(rp_web_csp, "default-src 'none'"));
  assert_non_null(strstr(rp_web_csp, "script-src 'self';"));
  assert_non_null(strstr(rp_web_csp, "style-src 'self';"));
  assert_non_null(strstr(rp_web_csp, "connect-src 'self';"));
  assert_non_null(strstr(rp_web_csp, "frame-ancestors 'none'"));
  assert_null(strstr(rp_web_csp, "unsafe"));
  assert_null(strstr(rp_web_csp, "*"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paths_and_types),
      cmocka_unit_test(test_no_inline_code),
      cmocka_unit_test(test_csp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
