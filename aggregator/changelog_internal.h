/* What changelog.c (the ledger topic: produce, rebuild) and
 * changelog_tail.c (reading the owned partitions after their rebuild)
 * share. */
#ifndef RACKPULSE_CHANGELOG_INTERNAL_H
#define RACKPULSE_CHANGELOG_INTERNAL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The header naming the member that produced a record (its member id). */
#define RP_CHANGELOG_WRITER "rackpulse-writer"

struct rp_changelog {
  struct rp_aggregator *a;
  rd_kafka_t *producer, *reader, *confirmer;
  rd_kafka_topic_t *rkt, *reader_rkt, *confirm_rkt;
  char topic[128];
  char member[65]; /* cluster.member_id: the writer header of our records */
  int32_t partitions;
  int64_t ack_wait_ms; /* cluster.ledger_ack_timeout */
  _Atomic uint64_t produced, failed;
  _Atomic int in_flight; /* 0 or 1: writers hold the ledger's write transaction */
  /* Per partition: until when (monotonic ms) a change is refused without
   * waiting, after one was not acknowledged (see refused_fast). */
  _Atomic uint64_t *refused_until;
  /* Per partition: the offset of this member's claim (claim.h) while it
   * owns the partition, -1 otherwise. Set by the rebuild (members thread),
   * read by the writers and the tail. */
  _Atomic int64_t *claim;
  /* Per partition: a claim of this member to rebuild under again, without
   * a new claim (a write's read-back timed out), -1 otherwise. A new claim
   * would fence the member the group gave the partition to if this one
   * lost it unawares. */
  _Atomic int64_t *keep_claim;
  /* Per partition, writers only (they hold the ledger's write
   * transaction): up to which offset the partition was read back and found
   * without a later claim, and under which claim (confirm_write()). */
  int64_t *confirmed_claim, *confirmed_upto;
  _Atomic uint64_t voided, fenced;
  /* Keys of the void records seen by the rebuild and the tail, their state
   * to be written again under this member's claim (members thread only;
   * rp_changelog_reassert). */
  struct rp_void_key *void_keys;
  size_t nvoid;
  _Atomic uint64_t reasserted;
  /* The tail (changelog_tail.c, members thread only): the queue of the
   * partitions read after their rebuild, and per partition the offset
   * the tail started at (-1: not read). */
  rd_kafka_queue_t *tail_q;
  int64_t *tail_from;
  _Atomic uint64_t tail_applied;
};

/* A record's key "rack/kind/id", split once for whoever reads it (the
 * rebuild, the tail). rack: the bytes before the first '/' ("" when there
 * is none, it is empty or longer than any rack id); kind and id: NULL
 * unless the whole key (shorter than 256 bytes) is rack/kind/id with a
 * rack and an id, and then text holds that rack. */
struct rp_changelog_key {
  char rack[128];
  char text[256];
  const char *kind, *id;
};
void rp_changelog_key_split(const rd_kafka_message_t *m, struct rp_changelog_key *k);

/* Applies record m of the topic, its key split into k and its value
 * decoded (NULL: none, or not JSON), to the ledger (an override: to the
 * overrides in force), latest wins, without producing it again. 0, or a
 * negative errno with why the record is malformed or was refused. */
int rp_changelog_apply(struct rp_changelog *cl, const rd_kafka_message_t *m,
                       const struct rp_changelog_key *k, const json_t *value, char *why,
                       size_t whylen);

/* What a change's record is once the brokers answered (changelog.c). */
enum { RP_SENT_PENDING, RP_SENT_DELIVERED, RP_SENT_FAILED, RP_SENT_UNSURE, RP_SENT_ABANDONED };

/* Produces one record (key, text: NULL for a tombstone) to `partition`,
 * with this member's writer header and, when claim >= 0, the claim header,
 * and waits for the brokers (at most cluster.ledger_ack_timeout, then the
 * record is purged). Returns an RP_SENT_ outcome; on RP_SENT_DELIVERED
 * *offset is where it is; *err the broker's or librdkafka's error. */
int rp_changelog_send(struct rp_changelog *cl, int32_t partition, const char *key, const char *text,
                      int64_t claim, int64_t *offset, rd_kafka_resp_err_t *err);

/* changelog_claim.c. claim: writes this member's claim of `partition`
 * (still pending here: checked under the ledger's write transaction) and
 * returns 0 with its offset in *offset, -ENOENT when the partition is no
 * longer pending here, -EREMOTEIO when the topic did not take it (why in
 * err). confirm: the writer of `key` at `offset` under `claim` (holding the
 * ledger's write transaction) reads the partition back up to it: 0 when no
 * other claim came between; else the record is void or unsure, the
 * partition is fenced or rebuilt, and a negative errno with why in err. */
int rp_changelog_claim(struct rp_changelog *cl, int32_t partition, int64_t *offset, char *err,
                       size_t errlen);
int rp_changelog_confirm(struct rp_changelog *cl, int32_t partition, const char *key, int64_t claim,
                         int64_t offset, char *err, size_t errlen);

/* A key a void record was written under. */
struct rp_void_key {
  int32_t partition;
  char rack[128], kind[16], id[128];
};
/* changelog_claim.c: notes the key of void record m (members thread), so
 * that its state is written again once the partition is answered here. */
void rp_changelog_void_seen(struct rp_changelog *cl, const rd_kafka_message_t *m);

/* The partition's latest claim is another member's (seen at `offset`):
 * counted, logged, and the partition no longer answered here (changelog.c;
 * any thread). */
void rp_changelog_fenced(struct rp_changelog *cl, int32_t partition, const char *member,
                         int64_t offset, const char *seen_by);

/* changelog_tail.c. init/free: with the changelog. start: reads
 * `partition` from offset `from` on (after its rebuild); stop: no longer
 * (before a rebuild, on revoke). Members thread only. */
int rp_changelog_tail_init(struct rp_changelog *cl);
void rp_changelog_tail_free(struct rp_changelog *cl);
void rp_changelog_tail_start(struct rp_changelog *cl, int32_t partition, int64_t from);
void rp_changelog_tail_stop(struct rp_changelog *cl, int32_t partition);

#endif
