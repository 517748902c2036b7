/* Unit tests for the agent's random source for FreeIPMI
 * (agent/ipmi/ipmi_fi_random.c): it must behave as the library's own
 * ipmi_get_random(), which it replaces: every byte asked for, the count
 * returned, -1 and EINVAL for no buffer. That libfreeipmi's calls reach it
 * is checked end to end by ipmi_once_freeipmi (no /dev/urandom opened). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <freeipmi/util/ipmi-util.h>
#include <stdlib.h>
#include <string.h>

/* An IV's 16 bytes: filled, and two draws differ (a 2^-128 chance not). */
static void test_fills_an_iv(void **state) {
  (void)state;
  unsigned char a[16], b[16];
  memset(a, 0, sizeof(a));
  memset(b, 0, sizeof(b));
  assert_int_equal(ipmi_get_random(a, sizeof(a)), 16);
  assert_int_equal(ipmi_get_random(b, sizeof(b)), 16);
  assert_memory_not_equal(a, b, sizeof(a));
}

/* More than getrandom(2) promises in one call without interruption (256
 * bytes): every byte is written, none left as it was. Each byte of a
 * buffer pre-filled with a marker stays the marker with chance 1/256; over
 * 64 kB, fewer than 1 000 markers is certain for random bytes, and a
 * buffer left half unwritten would have 32 768 of them. */
static void test_fills_a_large_buffer(void **state) {
  (void)state;
  enum { LEN = 65536 };
  unsigned char *buf = malloc(LEN);
  assert_non_null(buf);
  memset(buf, 0xA5, LEN);
  assert_int_equal(ipmi_get_random(buf, LEN), LEN);
  size_t markers = 0;
  for (size_t i = 0; i < LEN; i++)
    markers += buf[i] == 0xA5;
  assert_true(markers < 1000);
  free(buf);
}

static void test_nothing_asked(void **state) {
  (void)state;
  unsigned char c = 7;
  assert_int_equal(ipmi_get_random(&c, 0), 0);
  assert_int_equal(c, 7);
  errno = 0;
  assert_int_equal(ipmi_get_random(NULL, 16), -1);
  assert_int_equal(errno, EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fills_an_iv),
      cmocka_unit_test(test_fills_a_large_buffer),
      cmocka_unit_test(test_nothing_asked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
