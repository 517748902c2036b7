/* FNV-1a, 64 bits (see rackpulse/hash.h). */
#include "rackpulse/hash.h"

#define FNV_PRIME 1099511628211ull

uint64_t rp_hash_update(uint64_t h, const void *p, size_t len) {
  const unsigned char *b = p;
  for (size_t i = 0; i < len; i++)
    h = (h ^ b[i]) * FNV_PRIME;
  return h;
}

uint64_t rp_hash_bytes(const void *p, size_t len) { return rp_hash_update(RP_HASH_INIT, p, len); }

uint64_t rp_hash_str(const char *s) {
  uint64_t h = RP_HASH_INIT;
  for (; *s != '\0'; s++)
    h = (h ^ (unsigned char)*s) * FNV_PRIME;
  return h;
}
