/* The ledger's state, shared by ledger.c (reservations, flags, the audit
 * ring and its writer) and ledger_audit.c (the audit log's hash chain in
 * LMDB: chaining, eviction by chain order, export, queries by deploy). Not
 * for other files: they use ledger.h. */
#ifndef RACKPULSE_LEDGER_INTERNAL_H
#define RACKPULSE_LEDGER_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "audit_chain.h"
#include "ledger.h"

#define AUDIT_QUEUE_MAX 100000

struct rp_ledger {
  MDB_env *env;       /* reservations, flags */
  MDB_env *audit_env; /* audit, audit_time (legacy), chain, chain_meta */
  MDB_dbi audit, audit_time, reservations, flags, retired;
  /* chain: seq (8 bytes BE) -> ts_ms (8 BE), hash (32), audit key;
   * chain_meta: "head" / "tip" -> seq (8 BE), hash (32). */
  MDB_dbi chain, chain_meta;
  struct rp_ledger_limits lim;
  pthread_mutex_t res_lock; /* rp_ledger_res_lock() */
  _Atomic uint64_t evicted; /* audit entries dropped, oldest first, to make room */
  /* The chain's tip as committed (changed only by write_batch, under
   * chain_lock, which rp_ledger_audit_flush holds from taking a batch to
   * its commit; taken before lock). */
  pthread_mutex_t chain_lock;
  uint64_t tip_seq;
  char tip_hash[RP_CHAIN_HEX];
  /* Decisions waiting for the audit writer. */
  pthread_mutex_t lock;
  pthread_cond_t wake, room;
  json_t **queue;
  size_t nqueue;
  _Atomic uint64_t dropped;
  bool stop;
  pthread_t writer;
  /* rp_ledger_set_audit_sink() */
  void (*sink)(void *ctx, const json_t *decision);
  void *sink_ctx;
  /* rp_ledger_set_change_sink() */
  rp_ledger_change_fn change;
  void *change_ctx;
};

/* One reservation, flag, retirement or override write, as the change sink
 * sees it. */
struct rp_ledger_change {
  const char *rack, *kind, *id;
  const json_t *value;
};

/* ledger.c. commit_change: commits txn once the change sink has accepted c
 * (NULL: no change to hand over); a refused change is aborted. Returns 0,
 * -EREMOTEIO (refused: rp_ledger_write_error) or -EIO. flag_key: the key
 * of a flag or retirement (rack, NUL, id) into key; its length, 0 when it
 * does not fit. */
int rp_ledger_commit_change(struct rp_ledger *l, MDB_txn *txn, const struct rp_ledger_change *c);
size_t rp_ledger_flag_key(char *key, size_t cap, const char *rack, const char *flag);

/* ledger_audit.c. All return 0 or an LMDB error code unless said. */
/* Opens the chain's databases and reads the tip; entries written before the
 * chain existed are chained in time order first (legacy audit_time). */
int rp_ledger_chain_open(struct rp_ledger *l);
/* Stores the chain index of one sealed entry (seq, hash) under audit key k,
 * time ts, in txn. */
int rp_ledger_chain_put(struct rp_ledger *l, MDB_txn *txn, uint64_t seq,
                        const char hash[RP_CHAIN_HEX], const MDB_val *k, int64_t ts);
/* Records the tip (seq, hash) in txn. */
int rp_ledger_chain_put_meta(struct rp_ledger *l, MDB_txn *txn, const char *which, uint64_t seq,
                             const char hash[RP_CHAIN_HEX]);
/* Deletes the oldest entries in chain order while there are more than keep
 * or they are older than before_ms, moving the head. Returns how many. */
uint64_t rp_ledger_chain_evict(struct rp_ledger *l, MDB_txn *txn, uint64_t keep, int64_t before_ms);

#endif
