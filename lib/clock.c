/* Monotonic time (see rackpulse/clock.h). */
#include "rackpulse/clock.h"

#include <time.h>

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t rp_mono_ms(void) { return mono_ns() / 1000000; }

uint64_t rp_mono_us(void) { return mono_ns() / 1000; }
