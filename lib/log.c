/* Logging: timestamped single lines on stderr (see log.h). A line is built in
 * one buffer and written with one write(2) so that lines from several
 * processes sharing a terminal or a journal do not interleave. */
#include "rackpulse/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum rp_log_level min_level = RP_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rp_log_set_level(enum rp_log_level level) { min_level = level; }

int rp_log_level_parse(const char *name, enum rp_log_level *out) {
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcmp(name, level_names[i]) == 0) {
      *out = (enum rp_log_level)i;
      return 0;
    }
  }
  return -EINVAL;
}

void rp_log(enum rp_log_level level, const char *component, const char *fmt, ...) {
  if (level < min_level)
    return;
  char line[2048];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof(line),
                   "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (long)(tv.tv_usec / 1000), level_names[level], component);
  if (n < 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof(line) - 2)
    len = sizeof(line) - 2;
  line[len++] = '\n';
  ssize_t rc = write(STDERR_FILENO, line, len);
  (void)rc; /* Nowhere left to report a failed log write. */
}
