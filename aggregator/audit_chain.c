/* The audit log's hash chain (see audit_chain.h): sealing entries and
 * verifying a run of them. SHA-256 is nettle's; no I/O here. */
#include "audit_chain.h"

#include <errno.h>
#include <inttypes.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char zero_hash[RP_CHAIN_HEX] =
    "0000000000000000000000000000000000000000000000000000000000000000";

void rp_chain_to_hex(const uint8_t raw[32], char out[RP_CHAIN_HEX]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = digits[raw[i] >> 4];
    out[2 * i + 1] = digits[raw[i] & 15];
  }
  out[64] = '\0';
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

bool rp_chain_from_hex(const char *hex, uint8_t raw[32]) {
  if (hex == NULL || strlen(hex) != 64)
    return false;
  for (int i = 0; i < 32; i++) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    raw[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

static void sha256_hex(const char *text, size_t len, char out[RP_CHAIN_HEX]) {
  struct sha256_ctx ctx;
  uint8_t digest[SHA256_DIGEST_SIZE];
  sha256_init(&ctx);
  sha256_update(&ctx, len, (const uint8_t *)text);
  sha256_digest(&ctx, sizeof(digest), digest);
  rp_chain_to_hex(digest, out);
}

char *rp_chain_seal_text(json_t *entry, uint64_t seq, const char prev[RP_CHAIN_HEX],
                         char out[RP_CHAIN_HEX]) {
  json_object_del(entry, "hash");
  if (json_object_set_new(entry, "seq", json_integer((json_int_t)seq)) != 0 ||
      json_object_set_new(entry, "prev", json_string(prev[0] ? prev : zero_hash)) != 0)
    return NULL;
  char *text = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
  if (text == NULL)
    return NULL;
  size_t len = strlen(text);
  sha256_hex(text, len, out);
  /* "{...}" -> "{...,"hash":"<64 hex>"}" ("{}" cannot happen: seq is set). */
  char *stored = realloc(text, len + 10 + 64 + 3);
  if (stored == NULL) {
    free(text);
    return NULL;
  }
  snprintf(stored + len - 1, 10 + 64 + 4, ",\"hash\":\"%s\"}", out);
  json_object_set_new(entry, "hash", json_string(out));
  return stored;
}

int rp_chain_hash(const json_t *entry, char out[RP_CHAIN_HEX]) {
  json_t *copy = json_copy((json_t *)entry); /* shallow: only "hash" is removed */
  if (copy == NULL)
    return -ENOMEM;
  json_object_del(copy, "hash");
  char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
  json_decref(copy);
  if (text == NULL)
    return -ENOMEM;
  sha256_hex(text, strlen(text), out);
  free(text);
  return 0;
}

int rp_chain_seal(json_t *entry, uint64_t seq, const char prev[RP_CHAIN_HEX],
                  char out[RP_CHAIN_HEX]) {
  if (json_object_set_new(entry, "seq", json_integer((json_int_t)seq)) != 0 ||
      json_object_set_new(entry, "prev", json_string(prev[0] ? prev : zero_hash)) != 0)
    return -ENOMEM;
  int rc = rp_chain_hash(entry, out);
  if (rc == 0 && json_object_set_new(entry, "hash", json_string(out)) != 0)
    rc = -ENOMEM;
  return rc;
}

int rp_chain_verify_next(struct rp_chain_verify *v, const json_t *entry, char *err, size_t errlen) {
  json_t *jseq = json_object_get(entry, "seq");
  const char *prev = json_string_value(json_object_get(entry, "prev"));
  const char *hash = json_string_value(json_object_get(entry, "hash"));
  if (!json_is_integer(jseq) || prev == NULL || hash == NULL) {
    snprintf(err, errlen, "entry %" PRIu64 " of the run: not sealed (no seq, prev or hash)",
             v->entries + 1);
    return -1;
  }
  uint64_t seq = (uint64_t)json_integer_value(jseq);
  if (v->entries == 0 && !v->have_head) {
    v->last_seq = seq - 1;
    snprintf(v->last_hash, sizeof(v->last_hash), "%s", prev);
  } else if (v->entries == 0) {
    v->last_seq = v->head_seq;
    snprintf(v->last_hash, sizeof(v->last_hash), "%s", v->head_hash[0] ? v->head_hash : zero_hash);
  }
  if (seq != v->last_seq + 1) {
    snprintf(err, errlen,
             "gap: entry seq %" PRIu64 " follows seq %" PRIu64 " (%" PRIu64 " missing)", seq,
             v->last_seq, seq > v->last_seq ? seq - v->last_seq - 1 : 0);
    return -1;
  }
  if (strcmp(prev, v->last_hash) != 0) {
    snprintf(err, errlen,
             "broken link: entry seq %" PRIu64 " names prev %.16s..., entry %" PRIu64
             " hashes to %.16s...",
             seq, prev, v->last_seq, v->last_hash);
    return -1;
  }
  char computed[RP_CHAIN_HEX];
  if (rp_chain_hash(entry, computed) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (strcmp(computed, hash) != 0) {
    snprintf(err, errlen, "edited: entry seq %" PRIu64 " hashes to %.16s..., it says %.16s...", seq,
             computed, hash);
    return -1;
  }
  if (v->have_tip && seq == v->tip_seq) {
    if (strcmp(hash, v->tip_hash) != 0) {
      snprintf(err, errlen, "the entry at the log's tip (seq %" PRIu64 ") does not have its hash",
               seq);
      return -1;
    }
    v->tip_reached = true;
  }
  v->entries++;
  v->last_seq = seq;
  snprintf(v->last_hash, sizeof(v->last_hash), "%s", hash);
  return 0;
}

int rp_chain_verify_end(const struct rp_chain_verify *v, char *err, size_t errlen) {
  uint64_t from = v->have_head ? v->head_seq : 0;
  if (v->have_tip && v->tip_seq > from && !v->tip_reached) {
    snprintf(err, errlen,
             "truncated: the run ends at seq %" PRIu64 ", the log's tip is seq %" PRIu64,
             v->entries ? v->last_seq : from, v->tip_seq);
    return -1;
  }
  return 0;
}
