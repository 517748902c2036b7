/* Unit tests for the small shared helpers: FNV-1a hashing
 * (lib/hash.c, rackpulse/hash.h) and the monotonic clock (lib/clock.c,
 * rackpulse/clock.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "rackpulse/clock.h"
#include "rackpulse/hash.h"

/* The FNV-1a 64-bit reference values (Fowler, Noll, Vo test vectors). */
static void test_hash_known_answers(void **state) {
  (void)state;
  static const struct {
    const char *s;
    uint64_t h;
  } cases[] = {
      {"", 0xcbf29ce484222325ull},
      {"a", 0xaf63dc4c8601ec8cull},
      {"foobar", 0x85944171f73967e8ull},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_true(rp_hash_str(cases[i].s) == cases[i].h);
    assert_true(rp_hash_bytes(cases[i].s, strlen(cases[i].s)) == cases[i].h);
  }
  /* Bytes after a NUL count for rp_hash_bytes. */
  static const unsigned char addr[4] = {127, 0, 0, 1};
  assert_true(rp_hash_bytes(addr, 4) != rp_hash_bytes(addr, 3));
}

static void test_mono_clock(void **state) {
  (void)state;
  uint64_t ms = rp_mono_ms(), us = rp_mono_us();
  assert_true(us / 1000 >= ms && us / 1000 - ms < 1000);
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  uint64_t ms2 = rp_mono_ms(), us2 = rp_mono_us();
  assert_true(ms2 >= ms + 20);
  assert_true(us2 >= us + 20000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash_known_answers),
      cmocka_unit_test(test_mono_clock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
