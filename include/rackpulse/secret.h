/* Secrets (passwords, communities, API tokens) come from files that only
 * their owner (and group, read-only) can read, or from the environment;
 * never from config files, argv, logs, frames or metrics. */
#ifndef RACKPULSE_SECRET_H
#define RACKPULSE_SECRET_H

#include <stddef.h>

/* Reads the secret in `path` (first line, without its newline) into out.
 * Refuses a file that is not a regular file, is readable or writable by
 * others or writable by its group (anything beyond 0640), is empty, or does
 * not fit. Returns 0, or a negative errno with err naming the file and the
 * rule (never the secret). */
int rp_secret_read_file(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* The same rules, but the whole file (every line) into out: for files of
 * several secrets, such as the API's tokens file. */
int rp_secret_read_all(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* Compares two secrets in time independent of where they differ. Returns 1
 * when equal. */
int rp_secret_equal(const char *a, const char *b);

#endif
