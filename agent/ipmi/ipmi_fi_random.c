/* Random bytes for FreeIPMI's RMCP+ sessions, one system call each.
 *
 * FreeIPMI draws every lanplus packet's random IV (and the session
 * set-up's nonces) through ipmi_get_random(), which opens /dev/urandom,
 * reads it and closes it again on every call: three system calls per IPMI
 * request, about 6 % of the in-process backend's CPU on the bench rack
 * (BENCHMARKS.md). The library has no hook for its random source, so the
 * agent's executable defines the function itself: libfreeipmi calls it
 * through its procedure linkage table, and the dynamic linker binds those
 * calls to the executable's definition (ELF symbol interposition, the
 * mechanism malloc replacements use). It reads the same kernel random
 * source with getrandom(2). The prototype is FreeIPMI's own header's, so
 * the compiler checks the signature against the library's; the behaviour
 * is the library's: buflen bytes and the count returned, or -1 with errno
 * set. Tested by test_ipmi_random (the bytes) and ipmi_once_freeipmi (the
 * binding: no /dev/urandom opened while sessions run).
 *
 * This file is linked into the rackpulse-agent executable itself, not the
 * rpagent library: an archive member is not pulled in to satisfy a shared
 * library's reference. */
#include <errno.h>
#include <freeipmi/util/ipmi-util.h>
#include <stddef.h>
#include <sys/random.h>

int ipmi_get_random(void *buf, unsigned int buflen) {
  unsigned char *p = buf;
  unsigned int left = buflen;
  if (buf == NULL) {
    errno = EINVAL;
    return -1;
  }
  while (left > 0) {
    ssize_t n = getrandom(p, left, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    left -= (unsigned int)n;
  }
  return (int)buflen;
}
