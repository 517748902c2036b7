/* Unit tests for the agent's cnd_timedwait() (agent/kafka_timedwait.c),
 * which librdkafka's timed waits reach in the agent: a wait that times
 * out ends no earlier than 1 ms after its deadline, a signalled wait ends
 * with success, a deadline whose nanoseconds roll over is still valid.
 * That librdkafka's main thread no longer spins is checked end to end by
 * agent_kafka_idle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <threads.h>
#include <time.h>

static int64_t realtime_ns(void) {
  struct timespec t;
  timespec_get(&t, TIME_UTC);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static struct timespec at_ns(int64_t ns) {
  return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

/* Timed out: not before the deadline plus the 1 ms librdkafka rounded
 * away (a lower bound only, which no load on the machine can break). */
static void test_timeout_ends_a_millisecond_late(void **state) {
  (void)state;
  cnd_t c;
  mtx_t m;
  assert_int_equal(cnd_init(&c), thrd_success);
  assert_int_equal(mtx_init(&m, mtx_plain), thrd_success);
  int64_t deadline = realtime_ns() + 5000000; /* 5 ms */
  struct timespec ts = at_ns(deadline);
  mtx_lock(&m);
  int rc;
  do
    rc = cnd_timedwait(&c, &m, &ts);
  while (rc == thrd_success); /* spurious wakeups */
  mtx_unlock(&m);
  int64_t ended = realtime_ns();
  assert_int_equal(rc, thrd_timedout);
  assert_true(ended >= deadline + 1000000);
  cnd_destroy(&c);
  mtx_destroy(&m);
}

/* A deadline 0.5 ms before a whole second: moved by 1 ms, its
 * nanoseconds must carry into the seconds (else EINVAL: thrd_error). */
static void test_deadline_rolls_over_a_second(void **state) {
  (void)state;
  cnd_t c;
  mtx_t m;
  assert_int_equal(cnd_init(&c), thrd_success);
  assert_int_equal(mtx_init(&m, mtx_plain), thrd_success);
  struct timespec ts = {.tv_sec = realtime_ns() / 1000000000 - 1, .tv_nsec = 999500000};
  mtx_lock(&m);
  assert_int_equal(cnd_timedwait(&c, &m, &ts), thrd_timedout);
  mtx_unlock(&m);
  cnd_destroy(&c);
  mtx_destroy(&m);
}

struct signaller {
  cnd_t c;
  mtx_t m;
  bool done;
};

static int signal_it(void *arg) {
  struct signaller *s = arg;
  mtx_lock(&s->m);
  s->done = true;
  cnd_signal(&s->c);
  mtx_unlock(&s->m);
  return 0;
}

/* Signalled long before its deadline (60 s): success, and the condition
 * the signaller set. */
static void test_signalled_wait_succeeds(void **state) {
  (void)state;
  struct signaller s = {.done = false};
  assert_int_equal(cnd_init(&s.c), thrd_success);
  assert_int_equal(mtx_init(&s.m, mtx_plain), thrd_success);
  struct timespec ts = at_ns(realtime_ns() + (int64_t)60 * 1000000000);
  thrd_t t;
  mtx_lock(&s.m);
  assert_int_equal(thrd_create(&t, signal_it, &s), thrd_success);
  int rc = thrd_success;
  while (!s.done && rc == thrd_success)
    rc = cnd_timedwait(&s.c, &s.m, &ts);
  mtx_unlock(&s.m);
  assert_int_equal(rc, thrd_success);
  assert_true(s.done);
  assert_int_equal(thrd_join(t, NULL), thrd_success);
  cnd_destroy(&s.c);
  mtx_destroy(&s.m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timeout_ends_a_millisecond_late),
      cmocka_unit_test(test_deadline_rolls_over_a_second),
      cmocka_unit_test(test_signalled_wait_succeeds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
