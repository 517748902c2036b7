/* The tail of the ledger topic (changelog.c): after a member rebuilt a
 * partition's ledger from kafka.ledger_topic it goes on reading that
 * partition, from the offset where the rebuild ended, in log order, and
 * applies what anyone else wrote there, latest wins, as the rebuild does
 * (a third-party producer, an older aggregator: records without a claim
 * header). Records this member
 * produced carry its member id in the RP_CHANGELOG_WRITER header and are
 * skipped (its ledger already holds them, maybe newer). A record of a rack
 * this member does not own is ignored; a malformed one is logged and
 * skipped. A record written under a claim that is not this member's
 * (claim.h) is void and ignored; another member's claim fences the
 * partition (it is no longer answered or read here). A third party's
 * reservation that puts its rack over its power headroom stays (it is on
 * the topic; the gate counts it) and is logged as a warning.
 *
 * It runs on the cluster's members thread (cluster.c), which also
 * rebuilds: the rebuild hands a partition to the tail with no lock
 * between them, and the thread already wakes at least every 100 ms. It
 * reads with the rebuild's consumer handle (no group: offsets are not
 * committed; every assignment starts with a rebuild). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "changelog_internal.h"
#include "claim.h"
#include "cluster.h"
#include "reservations_internal.h"
#include "rackpulse/clock.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define TAIL_BATCH 500 /* records applied per call, at most */

int rp_changelog_tail_init(struct rp_changelog *cl) {
  cl->tail_from = malloc((size_t)cl->partitions * sizeof(*cl->tail_from));
  cl->tail_q = rd_kafka_queue_new(cl->reader);
  if (cl->tail_from == NULL || cl->tail_q == NULL)
    return -ENOMEM;
  for (int32_t p = 0; p < cl->partitions; p++)
    cl->tail_from[p] = -1;
  return 0;
}

void rp_changelog_tail_free(struct rp_changelog *cl) {
  for (int32_t p = 0; cl->tail_from != NULL && p < cl->partitions; p++)
    rp_changelog_tail_stop(cl, p);
  if (cl->tail_q != NULL)
    rd_kafka_queue_destroy(cl->tail_q);
  free(cl->tail_from);
  cl->tail_q = NULL;
  cl->tail_from = NULL;
}

void rp_changelog_tail_start(struct rp_changelog *cl, int32_t partition, int64_t from) {
  rp_changelog_tail_stop(cl, partition);
  if (rd_kafka_consume_start_queue(cl->reader_rkt, partition, from, cl->tail_q) != 0) {
    rp_error("changelog",
             "%s [%d]: cannot read on from offset %" PRId64
             " (%s): records other writers add are not applied until it is rebuilt",
             cl->topic, (int)partition, from, rd_kafka_err2str(rd_kafka_last_error()));
    return;
  }
  cl->tail_from[partition] = from;
}

void rp_changelog_tail_stop(struct rp_changelog *cl, int32_t partition) {
  if (cl->tail_from[partition] < 0)
    return;
  rd_kafka_consume_stop(cl->reader_rkt, partition);
  cl->tail_from[partition] = -1;
}

void rp_changelog_tail_keep(struct rp_changelog *cl, const uint8_t *keep) {
  if (cl == NULL)
    return;
  for (int32_t p = 0; p < cl->partitions; p++)
    if (cl->tail_from[p] >= 0 && !(keep[p / 8] & (1u << (p % 8)))) {
      rp_changelog_tail_stop(cl, p);
      rp_info("changelog", "%s [%d]: no longer read (revoked)", cl->topic, (int)p);
    }
}

/* The writer header of m into out ("" when it has none). */
static void writer_of(const rd_kafka_message_t *m, char *out, size_t outlen) {
  rd_kafka_headers_t *hdrs = NULL;
  const void *val = NULL;
  size_t size = 0;
  out[0] = '\0';
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
      rd_kafka_header_get_last(hdrs, RP_CHANGELOG_WRITER, &val, &size) ==
          RD_KAFKA_RESP_ERR_NO_ERROR &&
      val != NULL)
    snprintf(out, outlen, "%.*s", (int)(size < outlen ? size : outlen - 1), (const char *)val);
}

/* An active reservation applied from another writer that leaves its rack
 * with negative power headroom: logged (the gate counts it already). */
static void check_headroom(struct rp_changelog *cl, const json_t *res, const char *rack,
                           const char *writer) {
  int64_t now = rp_now_ms(), start = rp_res_jint(res, "start_ms"), end = rp_res_jint(res, "end_ms");
  double headroom = NAN;
  char why[256];
  if (rp_res_is_active(res) && end > now &&
      rp_res_headroom_kw(cl->a, rack, start > now ? start : now, end, now, &headroom, why,
                         sizeof(why)) &&
      headroom < 0)
    rp_warn("changelog",
            "reservation %s of rack %s (%g kW, owner %s) written by %s puts the rack %.3f kW over "
            "its power headroom: it was admitted by another writer; it is kept and counted",
            json_string_value(json_object_get(res, "id")), rack,
            json_number_value(json_object_get(res, "kw")),
            json_string_value(json_object_get(res, "owner")), writer, -headroom);
}

/* True when m is another member's claim of partition p, read after ours:
 * the partition is fenced and no longer read. */
static bool fenced_by(struct rp_changelog *cl, const rd_kafka_message_t *m) {
  struct rp_claim other;
  if (!rp_claim_of(m, &other))
    return false;
  int32_t p = m->partition;
  if (other.offset > atomic_load(&cl->claim[p])) {
    rp_changelog_tail_stop(cl, p);
    rp_changelog_fenced(cl, p, other.member, other.offset, "the tail");
  }
  return true;
}

/* One record read from an owned partition. */
static void tail_record(struct rp_changelog *cl, const rd_kafka_message_t *m) {
  int32_t p = m->partition;
  if (p < 0 || p >= cl->partitions || cl->tail_from[p] < 0 || m->offset < cl->tail_from[p])
    return; /* read before a stop, or before the rebuild's end */
  if (atomic_load(&cl->claim[p]) < 0)
    return; /* fenced, or to be rebuilt: no longer read */
  if (fenced_by(cl, m))
    return;
  char writer[80], why[256];
  writer_of(m, writer, sizeof(writer));
  const char *who = writer[0] ? writer : "(no writer header)";
  char key[201]; /* for the log: m->key is not NUL-terminated */
  snprintf(key, sizeof(key), "%.*s", m->key ? (int)(m->key_len < 200 ? m->key_len : 200) : 0,
           m->key ? (const char *)m->key : "");
  int64_t claim = atomic_load(&cl->claim[p]), under = rp_claim_header(m);
  if (under == -2 || (under >= 0 && under != claim)) {
    atomic_fetch_add(&cl->voided, 1);
    rp_changelog_void_seen(cl, m);
    rp_warn("changelog",
            "%s [%d] offset %" PRId64 ": record %s by %s is void (written under claim %" PRId64
            ", this member's claim at %" PRId64 " is the latest): not applied",
            cl->topic, (int)p, m->offset, key, who, under, claim);
    return;
  }
  if (writer[0] != '\0' && strcmp(writer, cl->member) == 0)
    return; /* ours: the ledger holds it, or a newer state */
  int32_t owner_partition = -1;
  char member[65], url[256];
  struct rp_changelog_key k;
  rp_changelog_key_split(m, &k);
  const char *rack = k.rack;
  if (rack[0] == '\0') {
    /* No rack this member could own (none, or longer than any rack id):
     * never applied without the ownership check below. */
    rp_warn("changelog", "%s [%d] offset %" PRId64 ": malformed record %s by %s skipped: no rack",
            cl->topic, (int)p, m->offset, key, who);
    return;
  }
  int32_t belongs = rp_cluster_partition(rack, cl->partitions);
  if (belongs != p) {
    rp_warn("changelog",
            "%s [%d] offset %" PRId64 ": record %s by %s ignored: rack %s belongs to partition "
            "%d",
            cl->topic, (int)p, m->offset, key, who, rack, (int)belongs);
    return;
  }
  if (cl->a->cluster != NULL &&
      rp_cluster_owner(cl->a->cluster, rack, &owner_partition, member, url) != RP_OWNER_SELF) {
    rp_info("changelog",
            "%s [%d] offset %" PRId64 ": record %s by %s ignored: the partition is no longer "
            "this member's",
            cl->topic, (int)p, m->offset, key, who);
    return;
  }
  json_t *value = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
  if (rp_changelog_apply(cl, m, &k, value, why, sizeof(why)) != 0) {
    rp_warn("changelog", "%s [%d] offset %" PRId64 ": malformed record %s by %s skipped: %s",
            cl->topic, (int)p, m->offset, key, who, why);
  } else {
    atomic_fetch_add(&cl->tail_applied, 1);
    rp_info("changelog", "%s [%d] offset %" PRId64 ": applied %s written by %s", cl->topic, (int)p,
            m->offset, key, who);
    if (strcmp(k.kind, "reservation") == 0 && value != NULL)
      check_headroom(cl, value, rack, who);
  }
  json_decref(value);
}

void rp_changelog_tail_poll(struct rp_changelog *cl) {
  if (cl == NULL || cl->tail_q == NULL)
    return;
  for (int n = 0; n < TAIL_BATCH; n++) {
    rd_kafka_message_t *m = rd_kafka_consume_queue(cl->tail_q, 0);
    if (m == NULL)
      return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
      tail_record(cl, m);
    else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      rp_warn("changelog", "%s [%d]: %s", cl->topic, (int)m->partition, rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
  }
}
