/* Times on rackpulsectl's command line (see ctl_time.h). */
#define _XOPEN_SOURCE 700 /* strptime */
#include "ctl_time.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rackpulse/cfg.h"
#include "rackpulse/frame.h"

int ctl_parse_time(const char *s, int64_t *ms) {
  int64_t age;
  if (s[0] == '-' && rp_parse_duration_ms(s + 1, &age) == 0) {
    *ms = rp_now_ms() - age;
    return 0;
  }
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno == 0 && *end == '\0' && v > 0) {
    *ms = v;
    return 0;
  }
  struct tm tm = {0};
  end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (end != NULL && (*end == '\0' || strcmp(end, "Z") == 0)) {
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
  }
  return -EINVAL;
}
