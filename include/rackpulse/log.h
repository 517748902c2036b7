/* Logging for the daemons and tools: one line per event on stderr,
 * "TIME LEVEL COMPONENT: message", so that journald and a terminal both read
 * it. Libraries do not log; they return errors and their callers log them. */
#ifndef RACKPULSE_LOG_H
#define RACKPULSE_LOG_H

enum rp_log_level { RP_LOG_DEBUG, RP_LOG_INFO, RP_LOG_WARN, RP_LOG_ERROR };

/* Messages below `level` are discarded. The default is RP_LOG_INFO. */
void rp_log_set_level(enum rp_log_level level);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -EINVAL. */
int rp_log_level_parse(const char *name, enum rp_log_level *out);

void rp_log(enum rp_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rp_debug(comp, ...) rp_log(RP_LOG_DEBUG, comp, __VA_ARGS__)
#define rp_info(comp, ...) rp_log(RP_LOG_INFO, comp, __VA_ARGS__)
#define rp_warn(comp, ...) rp_log(RP_LOG_WARN, comp, __VA_ARGS__)
#define rp_error(comp, ...) rp_log(RP_LOG_ERROR, comp, __VA_ARGS__)

#endif
