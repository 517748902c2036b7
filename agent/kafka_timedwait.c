/* librdkafka's timed waits, ending 1 ms after their deadline.
 *
 * librdkafka 2.0.2 (Debian 12) has its main thread sleep until its next
 * timer with rd_kafka_q_serve(rk_ops, sleeptime_us / 1000, ...): the wait
 * is rounded down to whole milliseconds, so the thread wakes up to 1 ms
 * before the timer is due and then calls rd_kafka_q_serve() with a zero
 * timeout, and reads the clock, in a loop until it is (upstream fixed it by
 * rounding up, in 2.3.1). Its 1 s timer re-arms itself from the time it
 * ran, so the thread spins for most of a millisecond every second: on the
 * bench rack 0.9 ms of CPU a second, ~10 % of the agent's
 * (BENCHMARKS.md, issue 25's fourth pass).
 *
 * Those waits end in C11's cnd_timedwait(), which librdkafka calls from
 * glibc through its procedure linkage table (the only library of the agent
 * that does). The agent's executable defines cnd_timedwait() itself (ELF
 * symbol interposition, as ipmi_fi_random.c does for FreeIPMI): the
 * deadline is moved 1 ms later and glibc's own function does the wait.
 * A timed wait then lasts at least as long as the whole milliseconds it
 * was computed from, the rounding up that librdkafka later adopted, and
 * the thread sleeps until its timer is due. A wait that is signalled ends
 * as before; a wait that times out ends at most 1 ms later than librdkafka
 * asked, which none of its timeouts (milliseconds to minutes) notices.
 * Tested by test_kafka_timedwait (the semantics) and agent_kafka_idle
 * (the binding: rdk:main's CPU in a running agent).
 *
 * Linked into the rackpulse-agent executable itself, not the rpagent
 * library (see ipmi_fi_random.c). */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#define KAFKA_WAIT_PAD_NS 1000000L /* 1 ms: librdkafka's rounding */

typedef int (*cnd_timedwait_fn)(cnd_t *restrict, mtx_t *restrict, const struct timespec *restrict);

static cnd_timedwait_fn next_timedwait;
static pthread_once_t next_once = PTHREAD_ONCE_INIT;

/* glibc's cnd_timedwait, the definition after this executable's. */
static void find_next(void) {
  void *sym = dlsym(RTLD_NEXT, "cnd_timedwait");
  if (sym != NULL)
    memcpy(&next_timedwait, &sym, sizeof(next_timedwait));
}

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mtx,
                  const struct timespec *restrict time_point) {
  pthread_once(&next_once, find_next);
  if (next_timedwait == NULL || time_point == NULL)
    return thrd_error;
  struct timespec padded = *time_point;
  padded.tv_nsec += KAFKA_WAIT_PAD_NS;
  if (padded.tv_nsec >= 1000000000L) {
    padded.tv_nsec -= 1000000000L;
    padded.tv_sec++;
  }
  return next_timedwait(cond, mtx, &padded);
}
