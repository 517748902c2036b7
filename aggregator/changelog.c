/* The ledger's changelog in a cluster (the Kafka Streams changelog-topic
 * pattern): every reservation, flag, device retirement and override
 * (override.c, kept in memory) a member writes for a rack it owns is also
 * produced to kafka.ledger_topic (compacted: the latest state per record
 * survives), on the rack's partition of the frames topic (the topics are
 * co-partitioned: the same partition count, checked at start, and the
 * rack's partition by the producers' partitioner), keyed "rack/kind/id",
 * the value the record as the API answers it, or a tombstone when a flag
 * is cleared or an override revoked. The writer (an HTTP thread, the upkeep
 * thread) waits for the broker to acknowledge it (acks=all, idempotent)
 * inside the ledger's write transaction, which commits only once the record
 * is acknowledged: a change the topic did not take is aborted, the ledger
 * stays as it was and the caller is answered 503 naming the topic and
 * partition (rp_ledger_write_error). So what a caller was told is written
 * outlives the member's disk, and nothing it was told failed is kept.
 *
 * When a member is assigned a frames partition it claims it (a claim
 * record on the ledger partition, changelog_claim.c) and rebuilds that
 * partition's ledger from the topic before it answers for those racks:
 * records written under a claim that is not the latest before them are
 * void (their writer had lost the partition) and left out, and each
 * record this member writes names its claim and is read back before it is
 * committed (claim.h). The rebuild drops the member's local flags and
 * overrides of those racks, then every valid record of the partition,
 * oldest first, replaces what the member had (latest wins; a state applied
 * twice is the same state). At start, a partition never written is seeded
 * with what the member holds (no claim yet), so a single aggregator that
 * becomes the first member keeps its ledger. Only the owner of a rack
 * decides admission against it, so after a failover the new owner admits
 * against the reservations its predecessor made.
 *
 * A write for a rack this member does not own (a request routed here
 * before the rack was handed over, the upkeep of a stale copy) is refused:
 * the owner's state is the site's. The owner checks it inside the ledger's
 * write transaction, and a revocation waits for the write in flight
 * (rp_ledger_barrier, cluster.c) before the partition can go to another
 * member, so every change the old owner made is on the topic before the
 * new owner rebuilds from it. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "changelog_internal.h"
#include "claim.h"
#include "cluster.h"
#include "ledger.h"
#include "override.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"
#include "reservations.h"

#define PURGE_WAIT_MS 2000
#define REBUILD_WAIT_MS 15000

/* Set while this thread applies records of the topic (rebuild, tail):
 * its writes are not produced again. */
static _Thread_local bool rebuilding;

/* The outcome of one change, shared by its writer and the delivery
 * callback: whichever of them comes second frees it. RP_SENT_FAILED: the
 * brokers refused it or it never left this member (not persisted);
 * RP_SENT_UNSURE: it failed after a request that got no answer (it may be
 * in the topic). */
struct delivery {
  _Atomic int state;
  rd_kafka_resp_err_t err;
  int64_t offset; /* where the brokers put it */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  struct delivery *d = m->_private;
  if (d == NULL)
    return;
  int expected = RP_SENT_PENDING, outcome = RP_SENT_DELIVERED;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
    outcome = rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED ? RP_SENT_FAILED
                                                                              : RP_SENT_UNSURE;
  d->err = m->err;
  d->offset = m->offset;
  if (!atomic_compare_exchange_strong(&d->state, &expected, outcome))
    free(d); /* the writer gave up waiting */
}

static void poll_until(rd_kafka_t *rk, struct delivery *d, uint64_t deadline) {
  while (atomic_load(&d->state) == RP_SENT_PENDING && rp_mono_ms() < deadline)
    rd_kafka_poll(rk, 10);
}

/* Waits for d's outcome; frees d or leaves it to the callback. A change
 * still queued after cluster.ledger_ack_timeout is purged from the
 * producer's queue (only one change is ever outstanding: the writer holds
 * the ledger's write transaction), so that it cannot reach the topic after
 * its caller was told it failed. Returns RP_SENT_DELIVERED (*offset set),
 * RP_SENT_FAILED, RP_SENT_UNSURE or RP_SENT_ABANDONED, *err the broker's or
 * librdkafka's error. */
static int wait_delivery(rd_kafka_t *rk, struct delivery *d, int64_t wait_ms,
                         rd_kafka_resp_err_t *err, int64_t *offset) {
  poll_until(rk, d, rp_mono_ms() + (uint64_t)wait_ms);
  if (atomic_load(&d->state) == RP_SENT_PENDING) {
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE);
    poll_until(rk, d, rp_mono_ms() + PURGE_WAIT_MS);
  }
  int expected = RP_SENT_PENDING;
  if (atomic_compare_exchange_strong(&d->state, &expected, RP_SENT_ABANDONED)) {
    *err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    return RP_SENT_ABANDONED;
  }
  *err = d->err;
  *offset = d->offset;
  free(d);
  return expected;
}

int rp_changelog_send(struct rp_changelog *cl, int32_t partition, const char *key, const char *text,
                      int64_t claim, int64_t *offset, rd_kafka_resp_err_t *err) {
  struct delivery *d = calloc(1, sizeof(*d));
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
  *err = RD_KAFKA_RESP_ERR__FAIL;
  if (d == NULL || hdrs == NULL)
    goto fail;
  rd_kafka_header_add(hdrs, RP_CHANGELOG_WRITER, -1, cl->member, -1);
  if (claim >= 0) {
    char under[24];
    snprintf(under, sizeof(under), "%" PRId64, claim);
    rd_kafka_header_add(hdrs, RP_CLAIM_HEADER, -1, under, -1);
  }
  *err = rd_kafka_producev(cl->producer, RD_KAFKA_V_RKT(cl->rkt), RD_KAFKA_V_PARTITION(partition),
                           RD_KAFKA_V_KEY(key, strlen(key)),
                           RD_KAFKA_V_VALUE((void *)text, text ? strlen(text) : 0),
                           RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                           RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
  if (*err != RD_KAFKA_RESP_ERR_NO_ERROR)
    goto fail;
  /* librdkafka owns hdrs now. */
  atomic_store(&cl->in_flight, 1);
  int outcome = wait_delivery(cl->producer, d, cl->ack_wait_ms, err, offset);
  atomic_store(&cl->in_flight, 0);
  return outcome;
fail:
  if (hdrs != NULL)
    rd_kafka_headers_destroy(hdrs);
  free(d);
  return RP_SENT_FAILED;
}

/* Produces one change to `partition` under this member's claim of it,
 * waits for the brokers and, under a claim, confirms that no other member
 * claimed the partition before the record (changelog_claim.c). Returns 0
 * when acknowledged and confirmed, else -EREMOTEIO with why in err (naming
 * the topic and partition). */
static int produce(struct rp_changelog *cl, int32_t partition, const char *rack, const char *kind,
                   const char *id, const json_t *value, char *err, size_t errlen) {
  char key[256];
  snprintf(key, sizeof(key), "%s/%s/%s", rack, kind, id);
  /* The value as the API answers it (a reservation without its writer's
   * bookkeeping, reservations.h). */
  json_t *shown = value != NULL && strcmp(kind, "reservation") == 0 ? rp_reservation_public(value)
                                                                    : json_incref((json_t *)value);
  char *text = shown ? json_dumps(shown, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
  json_decref(shown);
  int64_t claim = atomic_load(&cl->claim[partition]), offset = -1;
  rd_kafka_resp_err_t e;
  int outcome = rp_changelog_send(cl, partition, key, text, claim, &offset, &e);
  free(text);
  if (outcome == RP_SENT_DELIVERED) {
    atomic_fetch_add(&cl->produced, 1);
    atomic_store(&cl->refused_until[partition], 0);
    if (claim < 0)
      return 0;
    return rp_changelog_confirm(cl, partition, key, claim, offset, err, errlen) == 0 ? 0
                                                                                     : -EREMOTEIO;
  }
  atomic_fetch_add(&cl->failed, 1);
  atomic_store(&cl->refused_until[partition], rp_mono_ms() + (uint64_t)cl->ack_wait_ms);
  snprintf(err, errlen,
           "%s not acknowledged by ledger topic %s partition %d (%s): nothing was changed%s", key,
           cl->topic, (int)partition, rd_kafka_err2str(e),
           outcome == RP_SENT_FAILED ? ""
                                     : "; the record may still have reached the topic: read it "
                                       "back before retrying");
  rp_error("changelog", "%s", err);
  return -EREMOTEIO;
}

/* A partition whose last change was not acknowledged refuses the next ones
 * at once for cluster.ledger_ack_timeout, then lets one through to probe:
 * while the topic is down, the writers (HTTP threads, the upkeep pass with
 * its expiries and automatic flags) are not each held for the timeout.
 * True, with why in err, when this change is refused so. */
static bool refused_fast(struct rp_changelog *cl, int32_t partition, const char *rack,
                         const char *kind, const char *id, char *err, size_t errlen) {
  uint64_t until = atomic_load(&cl->refused_until[partition]), now = rp_mono_ms();
  if (until <= now)
    return false;
  snprintf(err, errlen,
           "%s/%s/%s not acknowledged by ledger topic %s partition %d (it did not acknowledge a "
           "change in the last %lld ms; tried again in %llu ms): nothing was changed",
           rack, kind, id, cl->topic, (int)partition, (long long)cl->ack_wait_ms,
           (unsigned long long)(until - now));
  atomic_fetch_add(&cl->failed, 1);
  return true;
}

static int on_change(void *ctx, const char *rack, const char *kind, const char *id,
                     const json_t *value, char *err, size_t errlen) {
  struct rp_changelog *cl = ctx;
  if (rebuilding)
    return 0;
  int32_t partition;
  char member[65], url[256];
  if (rp_cluster_owner(cl->a->cluster, rack, &partition, member, url) != RP_OWNER_SELF) {
    /* Handed over since the request was routed here (or a stale copy's
     * upkeep): the owner's state is the site's. */
    snprintf(err, errlen,
             "rack %s (partition %d of %s) is no longer this member's: nothing was changed; ask "
             "again",
             rack, (int)partition, cl->topic);
    return -EREMOTEIO;
  }
  if (refused_fast(cl, partition, rack, kind, id, err, errlen))
    return -EREMOTEIO;
  return produce(cl, partition, rack, kind, id, value, err, errlen);
}

/* Produces the records of `all` (stolen) of racks of `partition` as
 * `kind`, keyed by their field `id_field`. Returns how many were written. */
static size_t seed_records(struct rp_changelog *cl, int32_t partition, json_t *all,
                           const char *kind, const char *id_field) {
  size_t n = 0, i;
  char why[512]; /* a record not written is logged by produce() */
  json_t *x;
  json_array_foreach(all, i, x) {
    const char *rack = json_string_value(json_object_get(x, "rack"));
    const char *id = json_string_value(json_object_get(x, id_field));
    if (rack && id && rp_cluster_partition(rack, cl->partitions) == partition)
      n += produce(cl, partition, rack, kind, id, x, why, sizeof(why)) == 0;
  }
  json_decref(all);
  return n;
}

/* The ledger partition has never been written (a new site, or a single
 * aggregator that just became a member): what this member holds for its
 * racks becomes the partition's first records, so that it is not lost. */
static size_t seed(struct rp_changelog *cl, int32_t partition) {
  struct rp_ledger *l = cl->a->ledger;
  return seed_records(cl, partition, rp_ledger_res_list(l), "reservation", "id") +
         seed_records(cl, partition, rp_ledger_flag_list(l, NULL), "flag", "flag") +
         seed_records(cl, partition, rp_ledger_retired_list(l, NULL), "retirement", "device");
}

/* Every partition of the topic that was never written is seeded with what
 * this member holds for its racks, before the member joins the group: the
 * first member of a new site (a single aggregator that becomes a member)
 * keeps its ledger, whichever member is assigned the racks. */
static void seed_empty(struct rp_changelog *cl) {
  for (int32_t p = 0; p < cl->partitions; p++) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(cl->reader, cl->topic, p, &lo, &hi, REBUILD_WAIT_MS) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi != lo)
      continue;
    size_t n = seed(cl, p);
    if (n > 0)
      rp_info("changelog", "partition %d of %s was empty: seeded with this member's %zu record(s)",
              (int)p, cl->topic, n);
  }
}

int rp_changelog_start(struct rp_aggregator *a, int32_t frames_partitions,
                       struct rp_changelog **out, char *err, size_t errlen) {
  struct rp_changelog *cl = calloc(1, sizeof(*cl));
  if (cl == NULL)
    return -ENOMEM;
  cl->a = a;
  cl->ack_wait_ms =
      a->cfg.cluster.ledger_ack_timeout_ms > 0 ? a->cfg.cluster.ledger_ack_timeout_ms : 5000;
  snprintf(cl->topic, sizeof(cl->topic), "%s", a->cfg.kafka.ledger_topic);
  snprintf(cl->member, sizeof(cl->member), "%s", a->cfg.cluster.member_id);
  int rc = -EINVAL;
  if ((cl->producer = rp_kafka_client_new(&a->cfg, RD_KAFKA_PRODUCER, "ledger producer",
                                          on_delivery, cl, err, errlen)) == NULL ||
      (cl->reader = rp_kafka_client_new(&a->cfg, RD_KAFKA_CONSUMER, "ledger reader", NULL, NULL,
                                        err, errlen)) == NULL ||
      (cl->confirmer = rp_kafka_client_new(&a->cfg, RD_KAFKA_CONSUMER, "ledger confirmer", NULL,
                                           NULL, err, errlen)) == NULL)
    goto fail;
  if ((rc = rp_kafka_partition_count(cl->producer, cl->topic, &cl->partitions, err, errlen)) != 0)
    goto fail;
  if (cl->partitions != frames_partitions) {
    snprintf(err, errlen,
             "kafka.ledger_topic %s has %d partitions and kafka.topic %s has %d: they must be "
             "equal (the ledger is co-partitioned with the frames by rack)",
             cl->topic, (int)cl->partitions, a->cfg.kafka.topic, (int)frames_partitions);
    rc = -EINVAL;
    goto fail;
  }
  size_t np = (size_t)cl->partitions;
  if ((cl->refused_until = calloc(np, sizeof(*cl->refused_until))) == NULL ||
      (cl->claim = calloc(np, sizeof(*cl->claim))) == NULL ||
      (cl->keep_claim = calloc(np, sizeof(*cl->keep_claim))) == NULL ||
      (cl->confirmed_claim = calloc(np, sizeof(*cl->confirmed_claim))) == NULL ||
      (cl->confirmed_upto = calloc(np, sizeof(*cl->confirmed_upto))) == NULL ||
      rp_changelog_tail_init(cl) != 0) {
    snprintf(err, errlen, "out of memory");
    rc = -ENOMEM;
    goto fail;
  }
  for (size_t p = 0; p < np; p++) {
    atomic_store(&cl->claim[p], -1);
    atomic_store(&cl->keep_claim[p], -1);
    cl->confirmed_claim[p] = -1;
  }
  cl->rkt = rd_kafka_topic_new(cl->producer, cl->topic, NULL);
  cl->reader_rkt = rd_kafka_topic_new(cl->reader, cl->topic, NULL);
  cl->confirm_rkt = rd_kafka_topic_new(cl->confirmer, cl->topic, NULL);
  seed_empty(cl);
  rp_ledger_set_change_sink(a->ledger, on_change, cl);
  *out = cl;
  return 0;
fail:
  rp_changelog_stop(cl);
  return rc;
}

void rp_changelog_stop(struct rp_changelog *cl) {
  if (cl == NULL)
    return;
  rp_changelog_tail_free(cl);
  if (cl->rkt != NULL)
    rd_kafka_topic_destroy(cl->rkt);
  if (cl->reader_rkt != NULL)
    rd_kafka_topic_destroy(cl->reader_rkt);
  if (cl->confirm_rkt != NULL)
    rd_kafka_topic_destroy(cl->confirm_rkt);
  if (cl->producer != NULL) {
    rd_kafka_flush(cl->producer, (int)cl->ack_wait_ms);
    rd_kafka_destroy(cl->producer);
  }
  if (cl->reader != NULL)
    rd_kafka_destroy(cl->reader);
  if (cl->confirmer != NULL)
    rd_kafka_destroy(cl->confirmer);
  free(cl->refused_until);
  free(cl->void_keys);
  free(cl->claim);
  free(cl->keep_claim);
  free(cl->confirmed_claim);
  free(cl->confirmed_upto);
  free(cl);
}

void rp_changelog_key_split(const rd_kafka_message_t *m, struct rp_changelog_key *k) {
  const char *key = m->key, *slash = key ? memchr(key, '/', m->key_len) : NULL;
  size_t rl = slash ? (size_t)(slash - key) : 0;
  if (rl >= sizeof(k->rack))
    rl = 0;
  memcpy(k->rack, key ? key : "", rl);
  k->rack[rl] = '\0';
  k->kind = k->id = NULL;
  if (key == NULL || m->key_len == 0 || m->key_len >= sizeof(k->text))
    return;
  memcpy(k->text, key, m->key_len);
  k->text[m->key_len] = '\0';
  char *kind = strchr(k->text, '/'), *id = kind ? strchr(kind + 1, '/') : NULL;
  if (id == NULL)
    return;
  *kind++ = '\0';
  *id++ = '\0';
  if (k->text[0] != '\0' && *id != '\0') {
    k->kind = kind;
    k->id = id;
  }
}

/* A record's value names the rack and id of its key (reservations and
 * retirements are stored by what their value says). */
static bool value_matches(const json_t *value, const char *rack, const char *id_field,
                          const char *id) {
  const char *r = json_string_value(json_object_get(value, "rack"));
  const char *i = json_string_value(json_object_get(value, id_field));
  return r != NULL && i != NULL && strcmp(rack, r) == 0 && strcmp(id, i) == 0;
}

static int apply_value(struct rp_changelog *cl, const char *rack, const char *kind, const char *id,
                       const json_t *value, bool tombstone, char *why, size_t whylen) {
  struct rp_ledger *l = cl->a->ledger;
  int rc = -EINVAL;
  if (strcmp(kind, "override") == 0 && (value != NULL || tombstone)) {
    if (cl->a->overrides != NULL)
      rp_override_restore(cl->a->overrides, id, value, rp_now_ms());
    return 0;
  }
  if (strcmp(kind, "flag") == 0 && tombstone) {
    rc = rp_ledger_flag_del(l, rack, id);
    return rc == -ENOENT ? 0 : rc;
  }
  if (value == NULL) {
    snprintf(why, whylen, "the value is not JSON");
    return -EINVAL;
  }
  if (strcmp(kind, "reservation") == 0 && value_matches(value, rack, "id", id))
    rc = rp_ledger_res_put(l, value);
  else if (strcmp(kind, "flag") == 0 && value_matches(value, rack, "flag", id))
    rc = rp_ledger_flag_put(l, rack, id, value);
  else if (strcmp(kind, "retirement") == 0 && value_matches(value, rack, "device", id))
    rc = rp_ledger_retired_put(l, value);
  else {
    snprintf(why, whylen, "not a %s record of rack %s and id %s", kind, rack, id);
    return -EINVAL;
  }
  if (rc != 0)
    snprintf(why, whylen, "the ledger refused it: %s", strerror(-rc));
  return rc;
}

int rp_changelog_apply(struct rp_changelog *cl, const rd_kafka_message_t *m,
                       const struct rp_changelog_key *k, const json_t *value, char *why,
                       size_t whylen) {
  if (k->kind == NULL) {
    snprintf(why, whylen, "the key is not rack/kind/id");
    return -EINVAL;
  }
  if (strcmp(k->kind, "reservation") != 0 && strcmp(k->kind, "flag") != 0 &&
      strcmp(k->kind, "retirement") != 0 && strcmp(k->kind, "override") != 0) {
    snprintf(why, whylen, "unknown kind \"%s\"", k->kind);
    return -EINVAL;
  }
  bool was = rebuilding;
  rebuilding = true;
  int rc = apply_value(cl, k->text, k->kind, k->id, value, m->payload == NULL, why, whylen);
  rebuilding = was;
  return rc;
}

/* Applies m as read by the rebuild: 0 when it was. */
static int apply_message(struct rp_changelog *cl, const rd_kafka_message_t *m) {
  struct rp_changelog_key k;
  char why[256];
  rp_changelog_key_split(m, &k);
  json_t *value = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
  int rc = rp_changelog_apply(cl, m, &k, value, why, sizeof(why));
  json_decref(value);
  return rc;
}

struct in_partition {
  struct rp_changelog *cl;
  int32_t partition;
};
static bool in_partition(void *ctx, const char *rack) {
  const struct in_partition *p = ctx;
  return rack != NULL && rp_cluster_partition(rack, p->cl->partitions) == p->partition;
}

/* Drops this member's flags and overrides of the racks of `partition`
 * (the topic's tombstones may have been compacted away). */
static void drop_flags(struct rp_changelog *cl, int32_t partition) {
  struct in_partition p = {cl, partition};
  if (cl->a->overrides != NULL)
    rp_overrides_drop_if(cl->a->overrides, in_partition, &p);
  json_t *all = rp_ledger_flag_list(cl->a->ledger, NULL), *f;
  size_t i;
  json_array_foreach(all, i, f) {
    const char *rack = json_string_value(json_object_get(f, "rack"));
    const char *flag = json_string_value(json_object_get(f, "flag"));
    if (rack && flag && rp_cluster_partition(rack, cl->partitions) == partition)
      rp_ledger_flag_del(cl->a->ledger, rack, flag);
  }
  json_decref(all);
}

/* What a rebuild read: the latest claim so far, and counts. */
struct replay {
  struct rp_claim latest; /* offset -1: none yet */
  size_t applied, voided;
};

/* One record of the rebuild, in log order: a claim becomes the latest; a
 * record written under a claim that is not the latest before it is void
 * (its writer had lost the partition) and logged; any other is applied. */
static void replay_record(struct rp_changelog *cl, const rd_kafka_message_t *m, struct replay *r) {
  struct rp_claim claim;
  if (rp_claim_of(m, &claim)) {
    r->latest = claim;
    return;
  }
  int64_t under = rp_claim_header(m);
  if (under == -1 || (under >= 0 && under == r->latest.offset)) {
    r->applied += apply_message(cl, m) == 0;
    return;
  }
  r->voided++;
  atomic_fetch_add(&cl->voided, 1);
  rp_changelog_void_seen(cl, m);
  rp_warn("changelog",
          "%s [%d] offset %" PRId64 ": record %.*s is void (written under claim %" PRId64
          ", the partition's latest claim then was %s's at %" PRId64 "): not applied",
          cl->topic, (int)m->partition, m->offset,
          m->key ? (int)(m->key_len < 200 ? m->key_len : 200) : 0,
          m->key ? (const char *)m->key : "", under,
          r->latest.offset >= 0 ? r->latest.member : "nobody", r->latest.offset);
}

/* Reads `partition` from its start up to `hi` (exclusive) into the ledger.
 * 0, or -ETIMEDOUT / -EIO with err set. */
static int replay(struct rp_changelog *cl, int32_t partition, int64_t lo, int64_t hi,
                  struct replay *r, char *err, size_t errlen) {
  if (rd_kafka_consume_start(cl->reader_rkt, partition, RD_KAFKA_OFFSET_BEGINNING) != 0) {
    snprintf(err, errlen, "%s [%d]: %s", cl->topic, (int)partition,
             rd_kafka_err2str(rd_kafka_last_error()));
    return -EIO;
  }
  uint64_t deadline = rp_mono_ms() + REBUILD_WAIT_MS;
  int64_t next = lo;
  while (next < hi && rp_mono_ms() < deadline) {
    rd_kafka_message_t *m = rd_kafka_consume(cl->reader_rkt, partition, 100);
    if (m == NULL)
      continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset < hi) {
      replay_record(cl, m, r);
      next = m->offset + 1;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      next = hi; /* written after the rebuild began: the tail's */
    } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      next = m->offset > next ? m->offset : next;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consume_stop(cl->reader_rkt, partition);
  if (next < hi) {
    snprintf(err, errlen, "%s [%d]: read up to offset %" PRId64 " of %" PRId64 " in %d s",
             cl->topic, (int)partition, next, hi, REBUILD_WAIT_MS / 1000);
    return -ETIMEDOUT;
  }
  return 0;
}

int rp_changelog_rebuild(struct rp_changelog *cl, int32_t partition, char *err, size_t errlen) {
  rp_changelog_tail_stop(cl, partition);
  atomic_store(&cl->claim[partition], -1);
  int64_t claim = atomic_exchange(&cl->keep_claim[partition], -1), lo = 0, hi = 0;
  int rc = claim >= 0 ? 0 : rp_changelog_claim(cl, partition, &claim, err, errlen);
  if (rc != 0)
    return rc;
  /* The end after our claim: everything before it is read now, anything
   * after it by the tail. */
  rd_kafka_resp_err_t e =
      rd_kafka_query_watermark_offsets(cl->reader, cl->topic, partition, &lo, &hi, REBUILD_WAIT_MS);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "%s [%d]: end offset not known: %s", cl->topic, (int)partition,
             rd_kafka_err2str(e));
    return -EIO;
  }
  if (hi <= claim) {
    snprintf(err, errlen,
             "%s [%d]: end offset %" PRId64 " is not past this member's claim at %" PRId64,
             cl->topic, (int)partition, hi, claim);
    return -EIO;
  }
  rebuilding = true;
  drop_flags(cl, partition);
  struct replay r = {.latest = {.offset = -1}};
  rc = replay(cl, partition, lo, hi, &r, err, errlen);
  rebuilding = false;
  if (rc != 0)
    return rc;
  if (r.latest.offset != claim) {
    snprintf(err, errlen,
             "%s [%d]: member %s claimed the partition at offset %" PRId64
             ", after this member's claim at %" PRId64,
             cl->topic, (int)partition, r.latest.offset >= 0 ? r.latest.member : "?",
             r.latest.offset, claim);
    atomic_fetch_add(&cl->fenced, 1);
    return -ESTALE;
  }
  atomic_store(&cl->claim[partition], claim);
  rp_changelog_tail_start(cl, partition, hi);
  rp_info("changelog",
          "ledger of partition %d rebuilt from %s: %zu record(s) applied, %zu void (offsets "
          "%" PRId64 "..%" PRId64 "), claimed at offset %" PRId64,
          (int)partition, cl->topic, r.applied, r.voided, lo, hi, claim);
  return 0;
}

void rp_changelog_metrics(struct rp_changelog *cl, FILE *out) {
  if (cl == NULL)
    return;
  fprintf(
      out,
      "# HELP rackpulse_ledger_topic_produced_total Reservation and flag changes written to "
      "kafka.ledger_topic.\n# TYPE rackpulse_ledger_topic_produced_total counter\n"
      "rackpulse_ledger_topic_produced_total %llu\n"
      "# HELP rackpulse_ledger_topic_failed_total Changes kafka.ledger_topic did not "
      "acknowledge (a member taking the rack over will not know them).\n"
      "# TYPE rackpulse_ledger_topic_failed_total counter\n"
      "rackpulse_ledger_topic_failed_total %llu\n"
      "# HELP rackpulse_ledger_topic_in_flight Changes waiting for kafka.ledger_topic's "
      "acknowledgement.\n# TYPE rackpulse_ledger_topic_in_flight gauge\n"
      "rackpulse_ledger_topic_in_flight %d\n"
      "# HELP rackpulse_ledger_topic_tail_applied_total Records other writers added to an "
      "owned partition of kafka.ledger_topic after its rebuild, applied here.\n"
      "# TYPE rackpulse_ledger_topic_tail_applied_total counter\n"
      "rackpulse_ledger_topic_tail_applied_total %llu\n"
      "# HELP rackpulse_ledger_topic_void_total Records of kafka.ledger_topic written under "
      "a claim that was no longer the partition's latest (a writer that had lost the "
      "partition), not applied; those this member wrote were answered 503.\n"
      "# TYPE rackpulse_ledger_topic_void_total counter\n"
      "rackpulse_ledger_topic_void_total %llu\n"
      "# HELP rackpulse_ledger_topic_fenced_total Times another member's claim of a "
      "partition this member held or claimed was seen (the partition is no longer answered "
      "here until assigned again).\n"
      "# TYPE rackpulse_ledger_topic_fenced_total counter\n"
      "rackpulse_ledger_topic_fenced_total %llu\n"
      "# HELP rackpulse_ledger_topic_reasserted_total States this member wrote again under "
      "its claim because a void record of the same key was on the topic.\n"
      "# TYPE rackpulse_ledger_topic_reasserted_total counter\n"
      "rackpulse_ledger_topic_reasserted_total %llu\n",
      (unsigned long long)atomic_load(&cl->produced), (unsigned long long)atomic_load(&cl->failed),
      atomic_load(&cl->in_flight), (unsigned long long)atomic_load(&cl->tail_applied),
      (unsigned long long)atomic_load(&cl->voided), (unsigned long long)atomic_load(&cl->fenced),
      (unsigned long long)atomic_load(&cl->reasserted));
}
