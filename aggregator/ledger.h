/* The aggregator's ledger: what it decided and what operators asked for,
 * apart from the rack state that Kafka can rebuild. Records are JSON
 * objects, in two LMDB environments so that gate decisions, which anyone
 * may cause, can never take the space of flags and reservations:
 *
 *   STORE_PATH/ledger        reservations  id                 -> reservation
 *                            flags         rack "\0" flag     -> flag
 *                            retired       rack "\0" device   -> retirement
 *   STORE_PATH/ledger/audit  audit         rack "\0" ts_ms (8 bytes BE) id
 *                                                             -> entry (sealed)
 *                            chain         seq (8 bytes BE) -> ts_ms, hash, audit key
 *                            chain_meta    "head", "tip" -> seq, hash
 *                            (audit_time: the time index of ledgers written
 *                            before the chain, chained on open)
 *
 * The audit log is a bounded ring: at most audit_max_entries decisions in
 * at most audit_map_size bytes; past either, the oldest entries (in chain
 * order, over all racks) are deleted first and counted
 * (rp_ledger_audit_evicted), and the chain's head moves past them.
 * A ledger written before the split has its audit log moved on open.
 *
 * Safe to call from several threads (LMDB serialises writers; readers never
 * wait). */
#ifndef RACKPULSE_LEDGER_H
#define RACKPULSE_LEDGER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct rp_ledger;

struct rp_ledger_limits {
  size_t map_size;            /* reservations and flags */
  size_t audit_map_size;      /* the audit log (0: map_size) */
  int64_t audit_max_age_ms;   /* older decisions are pruned */
  uint64_t audit_max_entries; /* beyond this the oldest are pruned */
  size_t audit_queue_max;     /* decisions waiting for the writer (0: 100 000) */
};

int rp_ledger_open(const char *dir, const struct rp_ledger_limits *lim, struct rp_ledger **out,
                   char *err, size_t errlen);
void rp_ledger_close(struct rp_ledger *l);

/* Appends a decision (must hold "rack", "decision_id", "evaluated_at_ms").
 * Decisions are queued and written in batches (one transaction every
 * 100 ms or so, by a thread of the ledger), so a gate answer never waits for
 * a disk sync. Returns 0, -EINVAL for a decision without those fields, or
 * -ENOBUFS when the queue (audit_queue_max decisions) is full: the decision is then
 * not kept and counted (rp_ledger_audit_dropped). A full queue first makes
 * the caller wait (back-pressure, at most 2 s) for the writer. A batch the
 * writer cannot store is counted there too and logged as an error. */
int rp_ledger_audit_append(struct rp_ledger *l, const json_t *decision);
/* Every decision appended from now on is also handed to sink (in the
 * appending thread, before it is queued; the decision stays the caller's).
 * Set it before the ledger is shared between threads. */
void rp_ledger_set_audit_sink(struct rp_ledger *l, void (*sink)(void *ctx, const json_t *decision),
                              void *ctx);
/* Every reservation or flag write from now on (put, put_new, del, del_if)
 * is first handed to fn, in the writing thread, inside the write's LMDB
 * transaction before it commits: kind "reservation" (id: its id) or "flag"
 * (id: the flag name), value the record or NULL when deleted. fn returns 0
 * to let the write commit, or nonzero (with why in err) to abort it: the
 * write then returns -EREMOTEIO, the ledger is as it was, and
 * rp_ledger_write_error() says why. fn holds the ledger's writer lock while
 * it runs (other writes wait). Set it before the ledger is shared between
 * threads. */
typedef int (*rp_ledger_change_fn)(void *ctx, const char *rack, const char *kind, const char *id,
                                   const json_t *value, char *err, size_t errlen);
void rp_ledger_set_change_sink(struct rp_ledger *l, rp_ledger_change_fn fn, void *ctx);
/* What to tell a caller whose write returned rc: for -EREMOTEIO, why the
 * change sink refused this thread's last write; else "ledger write failed". */
const char *rp_ledger_write_error(int rc);
/* Writes the queued decisions now (also done by rp_ledger_close). */
void rp_ledger_audit_flush(struct rp_ledger *l);
uint64_t rp_ledger_audit_dropped(struct rp_ledger *l);
/* Decisions deleted, oldest first, to keep the audit log within its entry
 * cap or its map (retention by age is not counted here). */
uint64_t rp_ledger_audit_evicted(struct rp_ledger *l);
/* Decisions of `rack` (NULL: every rack) with since <= ts < until, oldest
 * first, at most `limit`. New reference. */
json_t *rp_ledger_audit_query(struct rp_ledger *l, const char *rack, int64_t since_ms,
                              int64_t until_ms, size_t limit);
/* Deletes decisions older than audit_max_age_ms or beyond the entry cap,
 * oldest first; returns how many. */
uint64_t rp_ledger_audit_prune(struct rp_ledger *l, int64_t now_ms);

/* The hash chain (audit_chain.h, ledger_audit.c). Every entry is sealed
 * with "seq", "prev" and "hash" as it is written. chain_info gives the
 * head (the newest evicted entry; 0 and "" when none) and the tip (the
 * newest entry); returns 0 or -EIO. export returns the stored text of the
 * entries with seq > after_seq in chain order, one per line, at most max
 * (malloc'd, the caller frees; NULL when there is none), and the last seq
 * in it; with `ends`, also the head and tip as they stood when it was read
 * (the same read transaction). by_deploy returns the entries whose "deploy"."deploy_id" is
 * deploy_id, in chain order, at most limit (new reference). */
int rp_ledger_audit_chain_info(struct rp_ledger *l, uint64_t *head_seq, char head_hash[65],
                               uint64_t *tip_seq, char tip_hash[65]);
struct rp_audit_ends {
  uint64_t head_seq, tip_seq;
  char head_hash[65], tip_hash[65];
};
char *rp_ledger_audit_export(struct rp_ledger *l, uint64_t after_seq, size_t max, size_t *len,
                             uint64_t *last_seq, struct rp_audit_ends *ends);
json_t *rp_ledger_audit_by_deploy(struct rp_ledger *l, const char *deploy_id, size_t limit);

/* Reservations, keyed by their "id". put replaces; get returns a new
 * reference or NULL; list returns every reservation (new reference). */
int rp_ledger_res_put(struct rp_ledger *l, const json_t *res);
/* Writes every reservation of the array `list` in one transaction, and
 * only here: not handed to the change sink (the ledger topic). For
 * bookkeeping the site can lose to a failover, as the energy integrated
 * between the records the owner does publish. */
int rp_ledger_res_put_local(struct rp_ledger *l, const json_t *list);
json_t *rp_ledger_res_get(struct rp_ledger *l, const char *id);
json_t *rp_ledger_res_list(struct rp_ledger *l);
/* Deletes reservation `id` (0, or -ENOENT / a negative LMDB error). */
int rp_ledger_res_del(struct rp_ledger *l, const char *id);
/* Serialises changes to reservations: whoever reads reservations to decide
 * a write (admission, preemption, extend, release, expiry) holds this from
 * the read to the write, so concurrent requests see each other's writes. */
void rp_ledger_res_lock(struct rp_ledger *l);
void rp_ledger_res_unlock(struct rp_ledger *l);

/* Flags, keyed by rack and flag name. */
int rp_ledger_flag_put(struct rp_ledger *l, const char *rack, const char *flag,
                       const json_t *value);
int rp_ledger_flag_del(struct rp_ledger *l, const char *rack, const char *flag);
/* For writers that decide from an earlier read (automatic flags, expiry),
 * so that they never overwrite or delete a flag someone set meanwhile:
 * put_new writes only when the rack has no such flag (else -EEXIST);
 * del_if deletes only while the flag is still exactly `seen` (else
 * -ESTALE; -ENOENT when gone). */
int rp_ledger_flag_put_new(struct rp_ledger *l, const char *rack, const char *flag,
                           const json_t *value);
int rp_ledger_flag_del_if(struct rp_ledger *l, const char *rack, const char *flag,
                          const json_t *seen);
json_t *rp_ledger_flag_list(struct rp_ledger *l, const char *rack);

/* Device retirements (the site's record of them; the store keeps its own
 * to leave the device's data out): rec holds "rack", "device",
 * "retired_ms", "owner"; put replaces (change kind "retirement", id the
 * device); list gives those of `rack` (NULL: all; new reference). */
int rp_ledger_retired_put(struct rp_ledger *l, const json_t *rec);
/* Waits until the reservation, flag, retirement or override write in
 * progress (if any, its change sink included) has ended. */
void rp_ledger_barrier(struct rp_ledger *l);
/* Calls fn(ctx) holding the ledger's write transaction (nothing written),
 * so that it is ordered with every change and with rp_ledger_barrier().
 * Returns fn's result, or -EIO when the transaction could not begin. */
int rp_ledger_exclusive(struct rp_ledger *l, int (*fn)(void *ctx), void *ctx);
/* Hands the change sink the stored state of one reservation, flag or
 * retirement of `rack` again, read and handed over under the write lock
 * (so no newer change can come between). 0, -ENOENT when none is stored,
 * -EREMOTEIO (refused: rp_ledger_write_error), -EINVAL or -EIO. */
int rp_ledger_republish(struct rp_ledger *l, const char *rack, const char *kind, const char *id);
/* A change kept outside the ledger (overrides, in memory) handed to the
 * change sink as a write would be, under the ledger's writer lock: 0,
 * -EREMOTEIO (refused: rp_ledger_write_error) or -EIO. */
int rp_ledger_publish(struct rp_ledger *l, const char *rack, const char *kind, const char *id,
                      const json_t *value);
json_t *rp_ledger_retired_list(struct rp_ledger *l, const char *rack);

#endif
