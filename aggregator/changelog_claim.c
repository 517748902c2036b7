/* The fence on the ledger topic (claim.h): a member claims each partition
 * it is assigned before it rebuilds it, and confirms each record it writes
 * before it commits the change and answers its caller.
 *
 * Claiming. The claim is produced holding the ledger's write transaction,
 * and only while the partition is still pending here. A revocation clears
 * the pending bit, then waits for that transaction (rp_ledger_barrier in
 * cluster.c) before the group can give the partition to another member: a
 * revoked member's claim is on the log before the next owner's, or never
 * written. So the latest claim is the latest owner's.
 *
 * Confirming. A member cut off from the group coordinator that still
 * reaches the brokers (a zombie) does not know another member claimed the
 * partition. After the brokers put a change at offset O, its writer reads
 * the partition back from where it last confirmed up to O. When another
 * claim is there, the record is void (every member ignores it: it names a
 * claim that is not the latest before it): the change is aborted, the
 * caller answered 503 naming the claimer, and the partition no longer
 * answered here. When it cannot be read back in time, the change is not
 * made here and the partition is rebuilt from the topic under the same
 * claim (a new one would fence the member the group gave the partition to,
 * if this one lost it unawares), which applies the record if it turned out
 * valid; the caller is told so.
 *
 * The writers read with their own consumer handle: the tail reads the same
 * partitions with another on the members thread, which also rebuilds, and
 * a rebuild needs the write transaction a waiting writer holds. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "changelog_internal.h"
#include "claim.h"
#include "cluster.h"
#include "ledger.h"
#include "rackpulse/clock.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

struct claim_call {
  struct rp_changelog *cl;
  int32_t partition;
  int64_t offset;
  char *err;
  size_t errlen;
};

/* Under the ledger's write transaction (rp_ledger_exclusive). */
static int claim_locked(void *ctx) {
  struct claim_call *c = ctx;
  struct rp_changelog *cl = c->cl;
  if (!rp_cluster_pending(cl->a->cluster, c->partition)) {
    snprintf(c->err, c->errlen, "partition %d of %s was revoked before this member claimed it",
             (int)c->partition, cl->topic);
    return -ENOENT;
  }
  char key[160];
  int64_t now = rp_now_ms();
  if (rp_claim_key(key, sizeof(key), cl->member, now) == 0)
    return -EINVAL;
  json_t *v = json_pack("{s:s, s:i, s:I}", "member", cl->member, "partition", (int)c->partition,
                        "claimed_ms", (json_int_t)now);
  char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FAIL;
  int outcome =
      text ? rp_changelog_send(cl, c->partition, key, text, -1, &c->offset, &e) : RP_SENT_FAILED;
  free(text);
  if (outcome == RP_SENT_DELIVERED)
    return 0;
  /* Not tried again for a while: each try holds the write lock. */
  atomic_store(&cl->refused_until[c->partition], rp_mono_ms() + (uint64_t)cl->ack_wait_ms);
  snprintf(c->err, c->errlen, "the claim of partition %d was not acknowledged by %s (%s)",
           (int)c->partition, cl->topic, rd_kafka_err2str(e));
  return -EREMOTEIO;
}

int rp_changelog_claim(struct rp_changelog *cl, int32_t partition, int64_t *offset, char *err,
                       size_t errlen) {
  uint64_t until = atomic_load(&cl->refused_until[partition]), now = rp_mono_ms();
  if (until > now) {
    snprintf(err, errlen,
             "the ledger topic %s did not acknowledge a record of partition %d lately: its claim "
             "is tried again in %llu ms",
             cl->topic, (int)partition, (unsigned long long)(until - now));
    return -EAGAIN;
  }
  struct claim_call c = {cl, partition, -1, err, errlen};
  int rc = rp_ledger_exclusive(cl->a->ledger, claim_locked, &c);
  if (rc == -EIO && c.offset < 0)
    snprintf(err, errlen, "partition %d: the ledger's write transaction could not begin",
             (int)partition);
  if (rc == 0)
    *offset = c.offset;
  return rc;
}

void rp_changelog_assigned(struct rp_changelog *cl, int32_t partition) {
  if (cl != NULL && partition >= 0 && partition < cl->partitions)
    atomic_store(&cl->keep_claim[partition], -1);
}

void rp_changelog_fenced(struct rp_changelog *cl, int32_t partition, const char *member,
                         int64_t offset, const char *seen_by) {
  atomic_fetch_add(&cl->fenced, 1);
  atomic_store(&cl->claim[partition], -1);
  rp_cluster_fence(cl->a->cluster, partition);
  rp_warn("changelog",
          "%s [%d]: member %s claimed the partition at offset %" PRId64
          " (seen by %s): this member no longer answers for its racks until the group assigns "
          "it here again",
          cl->topic, (int)partition, member, offset, seen_by);
}

int rp_changelog_confirm(struct rp_changelog *cl, int32_t partition, const char *key, int64_t claim,
                         int64_t offset, char *err, size_t errlen) {
  int64_t from = claim + 1;
  if (cl->confirmed_claim[partition] == claim && cl->confirmed_upto[partition] + 1 > from)
    from = cl->confirmed_upto[partition] + 1;
  struct rp_claim other;
  int rc = rp_claim_scan(cl->confirm_rkt, partition, from, offset - 1, cl->ack_wait_ms, &other);
  if (rc == 0) {
    cl->confirmed_claim[partition] = claim;
    cl->confirmed_upto[partition] = offset;
    return 0;
  }
  cl->confirmed_claim[partition] = -1;
  if (rc == 1) {
    atomic_fetch_add(&cl->voided, 1);
    snprintf(err, errlen,
             "%s at offset %" PRId64 " of ledger topic %s partition %d is void: member %s "
             "claimed the partition at offset %" PRId64 ", after this member's claim at %" PRId64
             ": nothing was changed, and this member no longer answers for it",
             key, offset, cl->topic, (int)partition, other.member, other.offset, claim);
    rp_error("changelog", "%s", err);
    rp_changelog_fenced(cl, partition, other.member, other.offset, "its writer");
    return -ESTALE;
  }
  snprintf(err, errlen,
           "%s at offset %" PRId64 " of ledger topic %s partition %d could not be read back "
           "within %" PRId64 " ms to confirm no other member claimed the partition first: it "
           "was not made here, but it may take effect: the partition's ledger is rebuilt from "
           "the topic; read it back before retrying",
           key, offset, cl->topic, (int)partition, cl->ack_wait_ms);
  rp_error("changelog", "%s", err);
  atomic_store(&cl->claim[partition], -1);
  /* Kept before the partition turns pending, so that its rebuild sees it;
   * dropped when it was revoked meanwhile (its next assignment claims
   * anew). */
  atomic_store(&cl->keep_claim[partition], claim);
  if (!rp_cluster_rebuild_again(cl->a->cluster, partition))
    atomic_store(&cl->keep_claim[partition], -1);
  return rc;
}

#define VOID_KEYS_MAX 4096 /* keys waiting to be written again, at most */

void rp_changelog_void_seen(struct rp_changelog *cl, const rd_kafka_message_t *m) {
  struct rp_changelog_key k;
  rp_changelog_key_split(m, &k);
  /* Overrides live in memory and end soon: not written again. */
  if (k.kind == NULL || (strcmp(k.kind, "reservation") != 0 && strcmp(k.kind, "flag") != 0 &&
                         strcmp(k.kind, "retirement") != 0))
    return;
  if (strlen(k.text) >= sizeof(cl->void_keys->rack) || strlen(k.id) >= sizeof(cl->void_keys->id))
    return;
  for (size_t i = 0; i < cl->nvoid; i++) {
    const struct rp_void_key *v = &cl->void_keys[i];
    if (v->partition == m->partition && strcmp(v->rack, k.text) == 0 &&
        strcmp(v->kind, k.kind) == 0 && strcmp(v->id, k.id) == 0)
      return;
  }
  if (cl->nvoid == VOID_KEYS_MAX) {
    rp_warn("changelog",
            "%s [%d]: more than %d keys with void records wait to be written again: %s/%s/%s "
            "is not",
            cl->topic, (int)m->partition, VOID_KEYS_MAX, k.text, k.kind, k.id);
    return;
  }
  if (cl->void_keys == NULL &&
      (cl->void_keys = calloc(VOID_KEYS_MAX, sizeof(*cl->void_keys))) == NULL)
    return;
  struct rp_void_key *v = &cl->void_keys[cl->nvoid++];
  v->partition = m->partition;
  snprintf(v->rack, sizeof(v->rack), "%s", k.text);
  snprintf(v->kind, sizeof(v->kind), "%s", k.kind);
  snprintf(v->id, sizeof(v->id), "%s", k.id);
}

void rp_changelog_reassert(struct rp_changelog *cl) {
  if (cl == NULL)
    return;
  size_t kept = 0;
  for (size_t i = 0; i < cl->nvoid; i++) {
    struct rp_void_key *v = &cl->void_keys[i];
    int rc = -ESTALE;
    if (atomic_load(&cl->claim[v->partition]) >= 0)
      rc = rp_ledger_republish(cl->a->ledger, v->rack, v->kind, v->id);
    else if (rp_cluster_pending(cl->a->cluster, v->partition))
      rc = -EAGAIN; /* being rebuilt: after it */
    if (rc == 0) {
      atomic_fetch_add(&cl->reasserted, 1);
      rp_info("changelog",
              "%s [%d]: %s/%s/%s written again under this member's claim (a void record of it "
              "is on the topic)",
              cl->topic, (int)v->partition, v->rack, v->kind, v->id);
    } else if (rc == -EREMOTEIO || rc == -EAGAIN || rc == -EIO) {
      cl->void_keys[kept++] = *v; /* the topic did not take it: again next time */
    }
    /* -ENOENT: this member holds no state for it (nothing valid to
     * protect); -ESTALE: the partition is no longer ours (its owner's). */
  }
  cl->nvoid = kept;
}
