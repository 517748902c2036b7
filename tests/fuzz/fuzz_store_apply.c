/* Fuzzes the aggregator's apply path (lib/frame.c, aggregator/store.c) the
 * way consume.c drives it: the input is a batch of Kafka messages, each a
 * 2-byte big-endian length and that many bytes (the last one takes what is
 * left); every message goes through rp_frame_decode(), those that do not
 * decode are skipped by offset, and the batch is applied with store_apply()
 * (store_batch_apply() per frame, growing the map when it fills) to a fresh
 * LMDB store on tmpfs. The state is then read back through every reader
 * the HTTP API and /metrics use, whose text must be UTF-8 for the JSON
 * answers (free text of a frame is any bytes). Several frames per input let dictionaries,
 * duplicates, gaps, unknown series, incarnations and dictionary hashes meet. Seeds: batches packed by
 * tests/fuzz/corpus/make_frames.sh. */
#include <errno.h>

#include "fuzz_common.h"
#include "store.h"

#define MAX_MSGS 16

/* What the API renders with json_pack("s") must be valid UTF-8. */
static void check_text(const char *s) {
  json_t *j = json_string(s);
  FUZZ_ASSERT(j != NULL);
  json_decref(j);
}

static void on_latest(void *ctx, const char *key, const struct store_latest *l) {
  FUZZ_ASSERT(strlen(key) < 512);
  check_text(key);
  FUZZ_ASSERT(fuzz_terminated(l->unit, sizeof(l->unit)) &&
              fuzz_terminated(l->detail, sizeof(l->detail)));
  check_text(l->unit);
  check_text(l->detail);
  ++*(size_t *)ctx;
}
static void on_stats(void *ctx, const char *key, const struct store_stats *s) {
  (void)s;
  FUZZ_ASSERT(strchr(key, '|') != NULL);
  ++*(size_t *)ctx;
}
static void on_device(void *ctx, const char *device, const struct store_device *d) {
  (void)device;
  FUZZ_ASSERT(fuzz_terminated(d->kind, sizeof(d->kind)));
  FUZZ_ASSERT(fuzz_terminated(d->last_error, sizeof(d->last_error)));
  check_text(device);
  check_text(d->kind);
  check_text(d->last_error);
  ++*(size_t *)ctx;
}
static void on_agent(void *ctx, const char *agent, const struct store_agent *a) {
  (void)agent;
  FUZZ_ASSERT(fuzz_terminated(a->rack, sizeof(a->rack)));
  /* Identity: bounded marks, the current incarnation counted; stored
   * dictionaries are distinct and packed at the front. */
  FUZZ_ASSERT(a->nprevious <= STORE_AGENT_INCARNATIONS - 1);
  FUZZ_ASSERT(a->incarnations >= 1 && a->incarnations >= a->nprevious + 1);
  for (size_t i = 0; i < STORE_AGENT_DICTS; i++)
    for (size_t j = i + 1; j < STORE_AGENT_DICTS; j++)
      FUZZ_ASSERT(a->dicts[j] == 0 || (a->dicts[i] != 0 && a->dicts[i] != a->dicts[j]));
  ++*(size_t *)ctx;
}

struct racks {
  struct store_read *rd;
  size_t n;
};
static void on_rack(void *ctx, const char *rack, const struct store_rack *r) {
  struct racks *rs = ctx;
  size_t n = 0;
  struct store_latest l;
  struct store_stats s;
  FUZZ_ASSERT(fuzz_terminated(r->agent, sizeof(r->agent)));
  check_text(rack);
  check_text(r->agent);
  struct store_agent ag; /* the rack's agent always has its record */
  FUZZ_ASSERT(store_read_agent(rs->rd, r->agent, &ag) == 0);
  FUZZ_ASSERT(store_read_each_latest(rs->rd, rack, on_latest, &n) == 0);
  FUZZ_ASSERT(store_read_each_stats(rs->rd, rack, on_stats, &n) == 0);
  FUZZ_ASSERT(store_read_each_device(rs->rd, rack, on_device, &n) == 0);
  (void)store_read_latest_by_name(rs->rd, rack, "cdu.supply_temp", &l);
  (void)store_read_stats_by_name(rs->rd, rack, "cdu.supply_temp", 60, &s);
  rs->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char data_path[160], lock_path[160];
  if (data_path[0] == '\0') {
    snprintf(data_path, sizeof(data_path), "%s/data.mdb", fuzz_dir());
    snprintf(lock_path, sizeof(lock_path), "%s/lock.mdb", fuzz_dir());
  }
  unlink(data_path);
  unlink(lock_path);
  char err[512];
  struct store *s;
  if (store_open(fuzz_dir(), 256u << 10, &s, err, sizeof(err)) != 0) {
    fprintf(stderr, "store_open: %s\n", err);
    abort();
  }
  store_set_map_max(s, 4u << 20);

  struct store_msg msgs[MAX_MSGS];
  rp_frame *frames[MAX_MSGS];
  size_t n = 0;
  while (size > 0 && n < MAX_MSGS) {
    size_t len = size >= 2 ? (size_t)(data[0] << 8 | data[1]) : 0;
    size_t skip = size >= 2 ? 2 : size;
    data += skip;
    size -= skip;
    if (len > size)
      len = size;
    frames[n] = NULL;
    char why[256];
    if (rp_frame_decode(data, len, &frames[n], why, sizeof(why)) != 0)
      frames[n] = NULL;
    msgs[n] = (struct store_msg){.frame = frames[n],
                                 .topic = "rackpulse.frames",
                                 .partition = (int32_t)(n % 3),
                                 .offset = (int64_t)n * 7};
    data += len;
    size -= len;
    n++;
  }
  int rc = store_apply(s, msgs, n, err, sizeof(err));
  FUZZ_ASSERT(rc == 0 || rc == -ENOSPC);
  if (rc == 0) {
    int64_t next;
    for (int32_t p = 0; p < 3 && (size_t)p < n; p++)
      FUZZ_ASSERT(store_get_offset(s, "rackpulse.frames", p, &next) == 0 && next > 0);
  }

  struct racks rs = {0};
  size_t agents = 0;
  FUZZ_ASSERT(store_read_begin(s, &rs.rd) == 0);
  FUZZ_ASSERT(store_read_each_rack(rs.rd, on_rack, &rs) == 0);
  FUZZ_ASSERT(store_read_each_agent(rs.rd, on_agent, &agents) == 0);
  store_read_end(rs.rd);
  for (size_t i = 0; i < n; i++)
    rp_frame_free(frames[i]);
  store_close(s);
  return 0;
}
