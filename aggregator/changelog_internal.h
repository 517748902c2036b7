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
  rd_kafka_t *producer, *reader;
  rd_kafka_topic_t *rkt, *reader_rkt;
  char topic[128];
  char member[65]; /* cluster.member_id: the writer header of our records */
  int32_t partitions;
  int64_t ack_wait_ms; /* cluster.ledger_ack_timeout */
  _Atomic uint64_t produced, failed;
  _Atomic int in_flight; /* 0 or 1: writers hold the ledger's write transaction */
  /* Per partition: until when (monotonic ms) a change is refused without
   * waiting, after one was not acknowledged (see refused_fast). */
  _Atomic uint64_t *refused_until;
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

/* changelog_tail.c. init/free: with the changelog. start: reads
 * `partition` from offset `from` on (after its rebuild); stop: no longer
 * (before a rebuild, on revoke). Members thread only. */
int rp_changelog_tail_init(struct rp_changelog *cl);
void rp_changelog_tail_free(struct rp_changelog *cl);
void rp_changelog_tail_start(struct rp_changelog *cl, int32_t partition, int64_t from);
void rp_changelog_tail_stop(struct rp_changelog *cl, int32_t partition);

#endif
