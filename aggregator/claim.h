/* Ownership claims on the ledger topic: the fence that keeps two members
 * from both admitting against one rack's headroom (changelog.c).
 *
 * A member that is assigned a partition first writes a claim record to
 * that partition of kafka.ledger_topic (key "@claim/<member>/<ms>", unique,
 * so compaction never removes one) and then tags every record it writes
 * there with the claim's offset (header RP_CLAIM_HEADER). Log order
 * decides: a record is valid when its header names the latest claim
 * before it in the partition, void when a later claim came between (its
 * writer had lost the partition, whether it knew it or not). A record
 * without the header (a third-party producer, a seed written before any
 * member joined, an older aggregator) is outside the protocol and valid.
 *
 * This file knows the record formats and how to read a partition for
 * claims; it needs nothing of the aggregator, so a unit test drives it
 * against librdkafka's mock cluster. */
#ifndef RACKPULSE_CLAIM_H
#define RACKPULSE_CLAIM_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_CLAIM_HEADER "rackpulse-claim"
#define RP_CLAIM_KEY_PREFIX "@claim/"

/* A claim read from the topic. */
struct rp_claim {
  int64_t offset;  /* where it is in the partition */
  char member[65]; /* who claimed ("?" when the value does not say) */
};

/* The key of a claim by `member` at wall time now_ms, into key (cap
 * bytes). Returns its length, 0 when it does not fit. */
size_t rp_claim_key(char *key, size_t cap, const char *member, int64_t now_ms);

/* True when m is a claim record; then *out holds its offset and member. */
bool rp_claim_of(const rd_kafka_message_t *m, struct rp_claim *out);

/* The claim offset m was written under (its RP_CLAIM_HEADER), or -1 when
 * it has none, -2 when the header is not a non-negative decimal offset. */
int64_t rp_claim_header(const rd_kafka_message_t *m);

/* Reads `partition` of rkt's topic (rkt from a consumer handle that reads
 * nothing else of this partition; enable.partition.eof set) from offset
 * `from` up to and including `upto`, looking for a claim. Returns 0 when
 * none is there, 1 when one is (the first, in *found), -ETIMEDOUT when
 * the partition could not be read up to `upto` within wait_ms, -EIO when
 * it could not be read at all. */
int rp_claim_scan(rd_kafka_topic_t *rkt, int32_t partition, int64_t from, int64_t upto,
                  int64_t wait_ms, struct rp_claim *found);

#endif
