/* FNV-1a, 64 bits: the hash of the in-memory indexes (the agent's series
 * dictionary, the aggregator's dictionary cache, the HTTP rate limiter's
 * slots). Fast and well spread for short keys; not for anything an
 * attacker must not be able to collide. */
#ifndef RACKPULSE_HASH_H
#define RACKPULSE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a's starting value: rp_hash_update(RP_HASH_INIT, p, len) ==
 * rp_hash_bytes(p, len). */
#define RP_HASH_INIT 14695981039346656037ull

/* Continues the hash `h` over `len` bytes at `p` (for hashes built from
 * several fields). */
uint64_t rp_hash_update(uint64_t h, const void *p, size_t len);
/* The hash of `len` bytes at `p`. */
uint64_t rp_hash_bytes(const void *p, size_t len);
/* The hash of the C string `s`, without its NUL (equal to
 * rp_hash_bytes(s, strlen(s))). */
uint64_t rp_hash_str(const char *s);

#endif
