/* agg_test_util.h: the fixture shared by the aggregator's decision-side
 * unit tests (test_concurrency.c, test_power.c): a real store, a gate on a
 * policy file and a ledger, in a fresh mkdtemp directory under /tmp. */
#ifndef RP_AGG_TEST_UTIL_H
#define RP_AGG_TEST_UTIL_H

#include <stdint.h>

#include "aggregator.h"
#include "rackpulse/frame.h"

struct agg_fx {
  char dir[64];
  struct rp_aggregator a; /* store, gate and ledger set; the rest zero */
  int64_t offset;         /* next Kafka offset for applied frames */
};

/* Opens x->a's store (a 64 MiB map), gate (on policy_yaml, written to a
 * file) and ledger in /tmp/rp_test_TAG_XXXXXX. Returns 0, or -1 with the
 * reason on stderr. */
int agg_fx_open(struct agg_fx *x, const char *tag, const char *policy_yaml);
/* Packs f, decodes it and applies it in a batch of its own at the next
 * offset, as the consumer would. Returns 0, or -1 with the reason on
 * stderr. */
int agg_fx_apply(struct agg_fx *x, const Rackpulse__V1__Frame *f);
/* The same for a decoded frame (freed here). */
int agg_fx_apply_decoded(struct agg_fx *x, rp_frame *fr);
/* f packed and decoded as the consumer decodes it (free with
 * rp_frame_free), or NULL with the reason on stderr. */
rp_frame *agg_frame_decoded(const Rackpulse__V1__Frame *f);
/* A decoded frame of `rack` (agent "agent-RACK") with sequence number seq
 * at ts and one series, cdu.supply_temp of device cdu1 at `celsius`, with
 * its dictionary; NULL on failure. */
rp_frame *agg_supply_frame(const char *rack, uint64_t seq, int64_t ts, double celsius);
/* Closes what agg_fx_open opened and removes its directory. Returns 0 or
 * the status of the removal. x itself is the caller's. */
int agg_fx_close(struct agg_fx *x);

#endif
