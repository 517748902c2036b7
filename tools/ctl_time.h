/* Times on rackpulsectl's command line (ctl_time.c), shared by the Kafka
 * commands (tail --from, policy simulate --from/--to). */
#ifndef RACKPULSE_CTL_TIME_H
#define RACKPULSE_CTL_TIME_H

#include <stdint.h>

/* An ISO 8601 UTC time (2026-11-22T10:00:00Z), Unix milliseconds, or an
 * age before now (-10m). Returns 0 and *ms, or -EINVAL. */
int ctl_parse_time(const char *s, int64_t *ms);

#endif
