/* Secrets from files (see secret.h). */
#include "rackpulse/secret.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_checked(const char *path, char *out, size_t outlen, bool first_line, char *err,
                        size_t errlen) {
  /* O_NONBLOCK: a FIFO or device at the path must not hang start-up; it is
   * refused below as not a regular file. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: not a regular file", path);
    rc = -EINVAL;
  } else if ((st.st_mode & 0137) != 0) {
    snprintf(err, errlen,
             "%s: mode %04o lets others read it or its group write it: at most 0640 "
             "(chmod 0600 %s)",
             path, (unsigned)(st.st_mode & 07777), path);
    rc = -EPERM;
  } else {
    ssize_t n = read(fd, out, outlen - 1);
    if (n < 0) {
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
      rc = -EIO;
    } else {
      out[n] = '\0';
      if (first_line)
        out[strcspn(out, "\r\n")] = '\0';
      if ((size_t)n == outlen - 1 && strlen(out) == outlen - 1) {
        snprintf(err, errlen, "%s: secret longer than %zu bytes", path, outlen - 2);
        rc = -EFBIG;
      } else if (out[0] == '\0') {
        snprintf(err, errlen, "%s: empty", path);
        rc = -EINVAL;
      }
    }
  }
  close(fd);
  if (rc != 0)
    memset(out, 0, outlen);
  return rc;
}

int rp_secret_read_file(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  return read_checked(path, out, outlen, true, err, errlen);
}

int rp_secret_read_all(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  return read_checked(path, out, outlen, false, err, errlen);
}

int rp_secret_equal(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  /* Always walk the longer string; the comparison's time depends only on
   * the lengths, never on where the strings differ. */
  size_t n = la > lb ? la : lb;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < la ? (unsigned char)a[i] : 0;
    unsigned char y = i < lb ? (unsigned char)b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}
