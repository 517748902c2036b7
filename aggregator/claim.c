/* Ownership claims on the ledger topic: record formats and the scan of a
 * partition for claims (see claim.h). */
#include "claim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rackpulse/clock.h"

#define PREFIX_LEN (sizeof(RP_CLAIM_KEY_PREFIX) - 1)

size_t rp_claim_key(char *key, size_t cap, const char *member, int64_t now_ms) {
  int n = snprintf(key, cap, RP_CLAIM_KEY_PREFIX "%s/%" PRId64, member, now_ms);
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

bool rp_claim_of(const rd_kafka_message_t *m, struct rp_claim *out) {
  const char *key = m->key;
  if (key == NULL || m->key_len <= PREFIX_LEN || memcmp(key, RP_CLAIM_KEY_PREFIX, PREFIX_LEN) != 0)
    return false;
  /* The member: what lies between the prefix and the last '/'. */
  const char *who = key + PREFIX_LEN, *end = key + m->key_len;
  const char *slash = end;
  while (slash > who && slash[-1] != '/')
    slash--;
  size_t len = slash > who ? (size_t)(slash - 1 - who) : 0;
  if (len == 0 || len >= sizeof(out->member))
    snprintf(out->member, sizeof(out->member), "?");
  else
    snprintf(out->member, sizeof(out->member), "%.*s", (int)len, who);
  out->offset = m->offset;
  return true;
}

int64_t rp_claim_header(const rd_kafka_message_t *m) {
  rd_kafka_headers_t *hdrs = NULL;
  const void *val = NULL;
  size_t size = 0;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      rd_kafka_header_get_last(hdrs, RP_CLAIM_HEADER, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return -1;
  if (val == NULL || size == 0 || size > 19)
    return -2;
  int64_t offset = 0;
  for (size_t i = 0; i < size; i++) {
    char c = ((const char *)val)[i];
    if (c < '0' || c > '9')
      return -2;
    offset = offset * 10 + (c - '0');
  }
  return offset;
}

int rp_claim_scan(rd_kafka_topic_t *rkt, int32_t partition, int64_t from, int64_t upto,
                  int64_t wait_ms, struct rp_claim *found) {
  if (from > upto)
    return 0;
  if (rd_kafka_consume_start(rkt, partition, from) != 0)
    return -EIO;
  uint64_t deadline = rp_mono_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
  int64_t next = from;
  int rc = -ETIMEDOUT;
  while (next <= upto && rc == -ETIMEDOUT) {
    uint64_t now = rp_mono_ms();
    if (now >= deadline)
      break;
    rd_kafka_message_t *m = rd_kafka_consume(rkt, partition, (int)(deadline - now));
    if (m == NULL)
      continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset >= next) {
      if (m->offset <= upto && rp_claim_of(m, found))
        rc = 1;
      next = m->offset + 1;
    } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->offset > next) {
      next = m->offset; /* the end: offsets before it compacted away */
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consume_stop(rkt, partition);
  if (rc == -ETIMEDOUT && next > upto)
    rc = 0;
  return rc;
}
