/* The audit log's hash chain, shared by the aggregator (which seals each
 * entry as it is written) and rackpulsectl (which verifies an export or the
 * LMDB file). An entry is a JSON object; sealing adds
 *
 *   "seq"   its position in the chain (1, 2, ...),
 *   "prev"  the hash of the entry before it (64 hex digits; for the first
 *           entry ever, 64 zeros),
 *   "hash"  SHA-256 (nettle) of the entry's canonical text: the object
 *           without "hash", keys sorted, compact, reals to 12 digits.
 *
 * Changing any field of an entry changes its hash; removing or inserting an
 * entry breaks the seq run or the prev link of the next one. The oldest
 * entries may be evicted (the ring's cap): the chain's "head" (seq and hash
 * of the newest evicted entry) says where the kept part must start, its
 * "tip" where it must end. */
#ifndef RACKPULSE_AUDIT_CHAIN_H
#define RACKPULSE_AUDIT_CHAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_CHAIN_HEX 65 /* 64 hex digits and a NUL */

/* The SHA-256 of `entry`'s canonical text (without its "hash"), in hex.
 * Returns 0, or -ENOMEM. */
int rp_chain_hash(const json_t *entry, char out[RP_CHAIN_HEX]);

/* Sets "seq", "prev" and "hash" of `entry` (replacing any earlier seal) and
 * copies the hash to out. Returns 0 or -ENOMEM. */
int rp_chain_seal(json_t *entry, uint64_t seq, const char prev[RP_CHAIN_HEX],
                  char out[RP_CHAIN_HEX]);

/* Seals `entry` as rp_chain_seal does (it must not hold "hash" yet) and
 * returns the text to store: its canonical text with "hash" appended as the
 * last key (one serialisation; a verifier re-derives the canonical text).
 * The caller frees it; NULL when out of memory. */
char *rp_chain_seal_text(json_t *entry, uint64_t seq, const char prev[RP_CHAIN_HEX],
                         char out[RP_CHAIN_HEX]);

/* Hex <-> the 32 raw bytes of a hash. from_hex returns false on bad text. */
void rp_chain_to_hex(const uint8_t raw[32], char out[RP_CHAIN_HEX]);
bool rp_chain_from_hex(const char *hex, uint8_t raw[32]);

/* A verification run over entries in seq order. Set `head_*` (the newest
 * evicted entry; seq 0 and "" for a chain never evicted) with have_head
 * when known, otherwise the first entry's seq and prev are taken as they
 * are; set `tip_*` with have_tip when the log's tip is known: the run must
 * reach it and its entry there must have that hash. */
struct rp_chain_verify {
  bool have_head, have_tip;
  uint64_t head_seq, tip_seq;
  char head_hash[RP_CHAIN_HEX], tip_hash[RP_CHAIN_HEX];
  /* progress */
  uint64_t entries, last_seq;
  char last_hash[RP_CHAIN_HEX];
  bool tip_reached;
};

/* Checks the next entry. Returns 0, or -1 with err saying which entry and
 * what is wrong (a gap, a broken link, an edited entry). */
int rp_chain_verify_next(struct rp_chain_verify *v, const json_t *entry, char *err, size_t errlen);

/* Checks, after the last entry, that the run reached the tip. Returns 0
 * or -1 with err (entries cut from the end). */
int rp_chain_verify_end(const struct rp_chain_verify *v, char *err, size_t errlen);

#endif
