/* Aggregators that share a site through Kafka (the Kafka Streams
 * "interactive queries" pattern): the members of one consumer group own the
 * frames topic's partitions, each publishes its HTTP address and current
 * assignment on a members topic (keyed by member id, compacted on a real
 * cluster), and every member reads that topic, so any member knows which
 * member answers for a rack (its partition, by the producers' partitioner).
 *
 * A member record (JSON, key = member id):
 *   {"member", "url", "topic", "partition_count", "partitions": [..],
 *    "assigned_at_ms", "ts_ms", "state": "up"|"left"}
 * It is republished every cluster.heartbeat and at once when the assignment
 * changes; a member not heard of for cluster.member_timeout is gone (a
 * kill -9 leaves no "left" record), and a partition claimed by two live
 * members goes to the later assignment. This member's own partitions come
 * from its consumer's rebalance callback, never from the topic, so a
 * revoked partition stops being answered here at once.
 *
 * With cluster.member_id empty there is no cluster: a->cluster is NULL and
 * the aggregator behaves as a single member. */
#ifndef RACKPULSE_CLUSTER_H
#define RACKPULSE_CLUSTER_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator.h"
#include "rackpulse/cfg.h"

#define RP_CLUSTER_MAX_PARTITIONS 1024
#define RP_CLUSTER_MAX_MEMBERS 64

/* cluster_config.c: the cluster section of aggregator.yaml (into
 * cfg->cluster; http.* must be applied first, for the default advertise
 * URL). Returns 0 or -EINVAL with err naming file:line and key. */
int rp_cluster_config_apply(const struct rp_cfg_doc *doc, rp_cfg_node map,
                            struct rp_aggregator_config *cfg, char *err, size_t errlen);
void rp_cluster_config_help(FILE *out);

/* The partition of the frames topic a rack's frames go to: librdkafka's
 * default partitioner (consistent_random: CRC-32 of the key), which the
 * agent and the load generator use. */
int32_t rp_cluster_partition(const char *rack, int32_t partition_count);

/* Starts membership for a->cfg.cluster: reads the frames topic's partition
 * count, starts the members thread (publisher and reader of the members
 * topic). Returns 0 and *out (stop with rp_cluster_stop()), or a negative
 * errno with err set. */
int rp_cluster_start(struct rp_aggregator *a, struct rp_cluster **out, char *err, size_t errlen);
/* Stops the members thread and publishes a "left" record (once; accepts
 * NULL), then rp_cluster_stop() frees c (accepts NULL) once nothing writes
 * the ledger any more. */
void rp_cluster_leave(struct rp_cluster *c);
void rp_cluster_stop(struct rp_cluster *c);

/* From the consumer's rebalance callback (all accept c == NULL): the frames
 * topic's partitions in parts (other topics are ignored) are now assigned
 * to this member, in addition to those it has (`add`, the cooperative
 * protocol) or instead of them; revoked: those in parts are no longer
 * (NULL: none is). */
void rp_cluster_assigned(struct rp_cluster *c, const rd_kafka_topic_partition_list_t *parts,
                         bool add);
void rp_cluster_revoked(struct rp_cluster *c, const rd_kafka_topic_partition_list_t *parts);

/* For the ledger's claims (changelog_claim.c; any thread, c may be NULL):
 * pending: `partition` is assigned here and its ledger not rebuilt yet;
 * fence: another member claimed it: no longer answered or rebuilt here
 * until the group assigns it to this member again; rebuild_again: answered
 * again only after its ledger is rebuilt (a change of it may or may not
 * have taken effect); false when it was not answered here (revoked). */
bool rp_cluster_pending(struct rp_cluster *c, int32_t partition);
void rp_cluster_fence(struct rp_cluster *c, int32_t partition);
bool rp_cluster_rebuild_again(struct rp_cluster *c, int32_t partition);

enum rp_owner {
  RP_OWNER_SELF,   /* this member owns the rack's partition now */
  RP_OWNER_REMOTE, /* a live member does: member and url are set */
  RP_OWNER_NONE,   /* no live member does (rebalancing, or a member lost) */
};

/* Who answers for `rack` now; *partition is its partition. member and url
 * (sizes 65 and 256 at least) are set for RP_OWNER_REMOTE and SELF. */
enum rp_owner rp_cluster_owner(struct rp_cluster *c, const char *rack, int32_t *partition,
                               char *member, char *url);

/* A live member: its id and URL. */
struct rp_member_addr {
  char id[65];
  char url[256];
};
/* The live members, this one first. Returns how many (at most max). */
size_t rp_cluster_live(struct rp_cluster *c, struct rp_member_addr *out, size_t max);

/* Partitions no live member owns now, as a JSON array (new reference). */
json_t *rp_cluster_unowned(struct rp_cluster *c);

/* GET /v1/cluster: this member, the partition count and every member known
 * with its assignment and liveness. New reference. */
json_t *rp_cluster_json(struct rp_cluster *c);

/* This process's member id, or NULL without a cluster: answers carry it
 * (answered_by, X-Rackpulse-Answered-By). Set by rp_cluster_start(). */
const char *rp_cluster_self_id(void);
/* Adds "answered_by" to an answer that is a JSON object (with a cluster). */
void rp_cluster_stamp(json_t *answer);

/* kafka_conf.c: a producer (idempotent) or a consumer without a group (it
 * reads the partitions it starts, partition EOF reported) for the
 * aggregator's own topics, with the settings every client shares; dr is
 * the producer's delivery callback (may be NULL), opaque its opaque.
 * Returns the client, or NULL with err naming `what`. */
typedef void (*rp_kafka_dr_fn)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
rd_kafka_t *rp_kafka_client_new(const struct rp_aggregator_config *cfg, rd_kafka_type_t type,
                                const char *what, rp_kafka_dr_fn dr, void *opaque, char *err,
                                size_t errlen);

/* The partition count of `topic` (1..RP_CLUSTER_MAX_PARTITIONS), asking
 * the cluster for up to ~10 s. Returns 0 or a negative errno, err naming
 * the topic. */
int rp_kafka_partition_count(rd_kafka_t *rk, const char *topic, int32_t *out, char *err,
                             size_t errlen);

/* This member's cluster settings. */
const struct rp_cluster_config *rp_cluster_config(const struct rp_cluster *c);

/* changelog.c: reservations and flags of owned racks to kafka.ledger_topic,
 * and a partition's ledger rebuilt from it (see the file). start checks the
 * topic has frames_partitions partitions and hooks a->ledger. */
struct rp_changelog;
int rp_changelog_start(struct rp_aggregator *a, int32_t frames_partitions,
                       struct rp_changelog **out, char *err, size_t errlen);
void rp_changelog_stop(struct rp_changelog *cl);
/* Claims `partition` for this member (claim.h), then rebuilds its ledger
 * from the topic. 0; -ENOENT when the partition is no longer pending here
 * (revoked: nothing to do); -ESTALE when another member claimed it after
 * this one (do not try again); another negative errno when it may be
 * tried again; err says why. */
int rp_changelog_rebuild(struct rp_changelog *cl, int32_t partition, char *err, size_t errlen);
void rp_changelog_metrics(struct rp_changelog *cl, FILE *out);
/* changelog_tail.c (members thread): stop reading the partitions not set
 * in the bitmap `keep` (revoked); apply what other writers added to the
 * partitions read since (never blocks). */
void rp_changelog_tail_keep(struct rp_changelog *cl, const uint8_t *keep);
/* changelog_claim.c (any thread): `partition` was just assigned here: its
 * rebuild makes a new claim (not one kept from an earlier assignment). */
void rp_changelog_assigned(struct rp_changelog *cl, int32_t partition);
void rp_changelog_tail_poll(struct rp_changelog *cl);
/* changelog_claim.c (members thread): for each key a void record was seen
 * under, on a partition answered here, writes the state this member holds
 * for it again (so that on a compacted topic the key's latest record is a
 * valid one); may wait for the topic like any change. */
void rp_changelog_reassert(struct rp_changelog *cl);

#endif
