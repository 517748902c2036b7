/* Monotonic time for measuring durations (scrape times, delivery latency,
 * batch ages). The clock is CLOCK_MONOTONIC, the one libuv's uv_hrtime()
 * reads, so these values may be compared with uv_hrtime()'s. Wall-clock
 * time for frames is rp_now_ms() in frame.h. */
#ifndef RACKPULSE_CLOCK_H
#define RACKPULSE_CLOCK_H

#include <stdint.h>

/* Milliseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
uint64_t rp_mono_ms(void);
/* Microseconds since the same point. */
uint64_t rp_mono_us(void);

#endif
