/* What the store's unit tests share (store_test_util.c): a store in a
 * temporary directory, frames built with the protobuf-c structs, packed and
 * decoded with rp_frame_decode() exactly as the consumer does and applied in
 * batches, and small readers. Used by test_store.c, test_store_identity.c
 * and (the fixture only) test_store_growth.c. */
#ifndef RP_TEST_STORE_TEST_UTIL_H
#define RP_TEST_STORE_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define TOPIC "rackpulse.frames"
#define MAP_SIZE (64u << 20)

/* ---- fixture: a store in a temporary directory ---------------------------- */

struct fx {
  char dir[64];
  struct store *s;
};

/* cmocka set-up: opens a store of MAP_SIZE in a fresh mkdtemp directory. */
int fx_setup(void **state);
/* cmocka tear-down: closes the store and removes its directory. */
int fx_teardown(void **state);
/* Closes and opens the store again (what survives a restart). */
void fx_reopen(struct fx *x);

/* ---- frames -------------------------------------------------------------- */

#define MAXN 8

/* One frame under construction: a dictionary, one sample block, statuses and
 * devices. Strings are borrowed from the caller (literals). */
struct fb {
  Rackpulse__V1__Label labels[MAXN], *label_ptrs[MAXN];
  Rackpulse__V1__SeriesDef defs[MAXN], *def_ptrs[MAXN];
  uint32_t ids[MAXN];
  int64_t scaled[MAXN];
  Rackpulse__V1__SampleBlock block, *block_ptrs[1];
  Rackpulse__V1__SeriesStatus sts[MAXN], *st_ptrs[MAXN];
  Rackpulse__V1__DeviceStatus devs[MAXN], *dev_ptrs[MAXN];
  Rackpulse__V1__Frame f;
};

void fb_init(struct fb *b, const char *agent, const char *rack, uint64_t seq, int64_t ts_ms,
             uint32_t dict_version);

void fb_def(struct fb *b, uint32_t id, const char *name, const char *unit, const char *device,
            int decimals, const char *lkey, const char *lval);

/* The standard dictionary of agent "agent-1" in rack "r1". */
void fb_std_dict(struct fb *b);

void fb_sample(struct fb *b, uint32_t id, int64_t scaled);

void fb_status(struct fb *b, uint32_t id, Rackpulse__V1__ReadingStatus st, const char *detail);

void fb_device(struct fb *b, const char *device, const char *kind, int up, const char *last_error,
               uint64_t scrapes, uint64_t failures);

/* Packs and decodes the frame as the consumer would. */
rp_frame *fb_decode(const struct fb *b);

/* Applies frames in one committed batch; outcomes[i] gets each outcome. */
void apply_batch(struct store *s, struct fb *const *frames, size_t n, int32_t partition,
                 int64_t first_offset, enum store_outcome *outcomes);

enum store_outcome apply_one(struct store *s, struct fb *b, int64_t offset);

/* ---- readers ------------------------------------------------------------- */

int latest(struct store *s, const char *rack, const char *name, struct store_latest *out);

double latest_value(struct store *s, const char *rack, const char *name);

int rack_of(struct store *s, const char *rack, struct store_rack *out);

struct agents {
  size_t n;
  char names[4][RP_ID_MAX + 1];
  struct store_agent a[4];
};

void on_agent(void *ctx, const char *agent, const struct store_agent *a);

/* The stored record of `agent`; fails the test when there is none. */
struct store_agent agent_of(struct store *s, const char *agent);

size_t count_agents(struct store *s);

struct keys {
  size_t n;
  char key[8][200];
  struct store_latest l[8];
  struct store_device d[8];
};

void on_latest(void *ctx, const char *key, const struct store_latest *l);

void on_device(void *ctx, const char *device, const struct store_device *d);

void on_rack(void *ctx, const char *rack, const struct store_rack *rk);

#endif
