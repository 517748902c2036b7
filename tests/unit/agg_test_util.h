/* agg_test_util.h: the fixture shared by the aggregator's decision-side
 * unit tests (test_concurrency.c, test_power.c): a real store, a gate on a
 * policy file and a ledger, in a fresh mkdtemp directory under /tmp. */
#ifndef RP_AGG_TEST_UTIL_H
#define RP_AGG_TEST_UTIL_H

#include <stdint.h>

#include <jansson.h>

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

/* One series of a frame: value in `unit` (sent with 0 decimals, so W). */
struct agg_ser {
  const char *name, *unit, *device, *lkey, *lval;
  double value;
};
/* A cmocka setup: a new fixture at *state (agg_fx_open) whose
 * reservations config is unused_grace, idle_window (ms) and idle_threshold
 * as given, preempt_notice 0, pack_margin 0. Returns 0 or -1. */
int agg_fx_setup(void **state, const char *tag, const char *policy_yaml, int64_t unused_grace_ms,
                 int64_t idle_window_ms, double idle_threshold);
/* The matching teardown: closes and frees *state. */
int agg_fx_teardown(void **state);

/* Applies one frame of `rack` at ts with the given series (at most 8), as
 * the consumer would (packed, decoded, applied in a batch), received at ts on the aggregator's clock. */
void agg_fx_frame(struct agg_fx *x, const char *rack, int64_t ts, const struct agg_ser *s,
                  size_t n);
/* The gate's decision for `kw` on `rack` by `owner` (may be NULL) for a
 * minute at now (fails the test on no decision). */
json_t *agg_gate(struct agg_fx *x, const char *rack, double kw, const char *owner, int64_t now);
/* The check `name` of decision d (fails the test when absent). */
json_t *agg_check_of(json_t *d, const char *name);
/* The number at `key` of c (fails the test when not a number). */
double agg_num(json_t *c, const char *key);

#endif
