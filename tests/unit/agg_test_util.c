/* agg_test_util.c: the aggregator test fixture (see agg_test_util.h). */
#include "agg_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "gate.h"
#include "ledger.h"
#include "policy.h"
#include "rackpulse/frame.h"
#include "store.h"

#define TOPIC "rackpulse.frames"

int agg_fx_open(struct agg_fx *x, const char *tag, const char *policy_yaml) {
  snprintf(x->dir, sizeof(x->dir), "/tmp/rp_test_%s_XXXXXX", tag);
  if (mkdtemp(x->dir) == NULL)
    return -1;
  char path[128], err[512];
  snprintf(path, sizeof(path), "%s/policy.yaml", x->dir);
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(policy_yaml, f) < 0 || fclose(f) != 0)
    return -1;
  struct rp_policy *p;
  if (rp_policy_load(path, &p, err, sizeof(err)) != 0) {
    fprintf(stderr, "policy: %s\n", err);
    return -1;
  }
  if (rp_gate_new(p, &x->a.gate) != 0)
    return -1;
  snprintf(path, sizeof(path), "%s/store", x->dir);
  if (mkdir(path, 0700) != 0 || store_open(path, 64u << 20, &x->a.store, err, sizeof(err)) != 0) {
    fprintf(stderr, "store: %s\n", err);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/ledger", x->dir);
  struct rp_ledger_limits lim = {
      .map_size = 16u << 20, .audit_max_age_ms = 3600000, .audit_max_entries = 100000};
  if (rp_ledger_open(path, &lim, &x->a.ledger, err, sizeof(err)) != 0) {
    fprintf(stderr, "ledger: %s\n", err);
    return -1;
  }
  return 0;
}

rp_frame *agg_frame_decoded(const Rackpulse__V1__Frame *f) {
  size_t len = rackpulse__v1__frame__get_packed_size(f);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL)
    return NULL;
  rackpulse__v1__frame__pack(f, buf);
  rp_frame *fr = NULL;
  char err[256];
  if (rp_frame_decode(buf, len, &fr, err, sizeof(err)) != 0) {
    fprintf(stderr, "decode: %s\n", err);
    fr = NULL;
  }
  free(buf);
  return fr;
}

int agg_fx_apply_decoded(struct agg_fx *x, rp_frame *fr) {
  if (fr == NULL)
    return -1;
  char err[256];
  struct store_msg m = {.frame = fr, .topic = "rackpulse.frames", .offset = x->offset++};
  int rc = store_apply(x->a.store, &m, 1, err, sizeof(err));
  rp_frame_free(fr);
  if (rc != 0)
    fprintf(stderr, "apply: %s\n", err);
  return rc == 0 ? 0 : -1;
}

int agg_fx_apply(struct agg_fx *x, const Rackpulse__V1__Frame *f) {
  return agg_fx_apply_decoded(x, agg_frame_decoded(f));
}

rp_frame *agg_supply_frame(const char *rack, uint64_t seq, int64_t ts, double celsius) {
  Rackpulse__V1__Frame f = RACKPULSE__V1__FRAME__INIT;
  Rackpulse__V1__SeriesDef d = RACKPULSE__V1__SERIES_DEF__INIT, *dp = &d;
  Rackpulse__V1__SampleBlock b = RACKPULSE__V1__SAMPLE_BLOCK__INIT, *bp = &b;
  uint32_t id = 0;
  int64_t scaled = (int64_t)llround(celsius * 10);
  char agent[96];
  snprintf(agent, sizeof(agent), "agent-%s", rack);
  d.name = "cdu.supply_temp";
  d.unit = "Cel";
  d.device = "cdu1";
  d.decimals = 1;
  f.schema_version = 1;
  f.agent_id = agent;
  f.rack_id = (char *)rack;
  f.seq = seq;
  f.ts_ms = b.ts_ms = ts;
  f.interval_ms = 1000;
  f.dictionary_version = 1;
  f.n_dictionary = 1;
  f.dictionary = &dp;
  b.n_series = b.n_scaled = 1;
  b.series = &id;
  b.scaled = &scaled;
  f.n_samples = 1;
  f.samples = &bp;
  return agg_frame_decoded(&f);
}

int agg_fx_close(struct agg_fx *x) {
  rp_ledger_close(x->a.ledger);
  store_close(x->a.store);
  rp_gate_free(x->a.gate);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
  return system(cmd);
}

int agg_fx_setup(void **state, const char *tag, const char *policy_yaml, int64_t unused_grace_ms,
                 int64_t idle_window_ms, double idle_threshold) {
  struct agg_fx *x = calloc(1, sizeof(*x));
  if (x == NULL || agg_fx_open(x, tag, policy_yaml) != 0) {
    free(x);
    return -1;
  }
  x->a.cfg.reservations.unused_grace_ms = unused_grace_ms;
  x->a.cfg.reservations.idle_window_ms = idle_window_ms;
  x->a.cfg.reservations.idle_threshold = idle_threshold;
  *state = x;
  return 0;
}

int agg_fx_teardown(void **state) {
  struct agg_fx *x = *state;
  int rc = agg_fx_close(x);
  free(x);
  return rc;
}

/* Applies one frame of `rack` at ts with the given series, as the consumer
 * would (packed, decoded, applied in a batch). */
void agg_fx_frame(struct agg_fx *x, const char *rack, int64_t ts, const struct agg_ser *s,
                  size_t n) {
  Rackpulse__V1__Frame f = RACKPULSE__V1__FRAME__INIT;
  Rackpulse__V1__SeriesDef d[8], *dp[8];
  Rackpulse__V1__Label lab[8], *labp[8];
  Rackpulse__V1__SampleBlock b = RACKPULSE__V1__SAMPLE_BLOCK__INIT, *bp = &b;
  uint32_t ids[8];
  int64_t scaled[8];
  assert_true(n <= 8);
  for (size_t i = 0; i < n; i++) {
    d[i] = (Rackpulse__V1__SeriesDef)RACKPULSE__V1__SERIES_DEF__INIT;
    d[i].id = (uint32_t)i;
    d[i].name = (char *)s[i].name;
    d[i].unit = (char *)s[i].unit;
    d[i].device = (char *)s[i].device;
    if (s[i].lkey != NULL) {
      lab[i] = (Rackpulse__V1__Label)RACKPULSE__V1__LABEL__INIT;
      lab[i].key = (char *)s[i].lkey;
      lab[i].value = (char *)s[i].lval;
      labp[i] = &lab[i];
      d[i].n_labels = 1;
      d[i].labels = &labp[i];
    }
    dp[i] = &d[i];
    ids[i] = (uint32_t)i;
    scaled[i] = (int64_t)llround(s[i].value);
  }
  char agent[96];
  snprintf(agent, sizeof(agent), "agent-%s", rack);
  f.schema_version = 1;
  f.agent_id = agent;
  f.rack_id = (char *)rack;
  f.seq = (uint64_t)x->offset + 1;
  f.ts_ms = ts;
  f.interval_ms = 1000;
  f.dictionary_version = (uint32_t)x->offset + 1; /* each frame brings its own dictionary */
  f.n_dictionary = n;
  f.dictionary = dp;
  b.ts_ms = ts;
  b.n_series = n;
  b.series = ids;
  b.n_scaled = n;
  b.scaled = scaled;
  f.n_samples = 1;
  f.samples = &bp;
  size_t len = rackpulse__v1__frame__get_packed_size(&f);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  rackpulse__v1__frame__pack(&f, buf);
  rp_frame *fr = NULL;
  char err[256];
  assert_int_equal(rp_frame_decode(buf, len, &fr, err, sizeof(err)), 0);
  free(buf);
  struct store_batch *bt = NULL;
  enum store_outcome o;
  assert_int_equal(store_batch_begin(x->a.store, &bt, err, sizeof(err)), 0);
  store_batch_set_received(bt, ts); /* received when it was sent: tests run in their own time */
  if (store_batch_apply(bt, fr, TOPIC, 0, x->offset++, &o, err, sizeof(err)) != 0)
    fail_msg("apply: %s", err);
  rp_frame_free(fr);
  if (store_batch_commit(bt, err, sizeof(err)) != 0)
    fail_msg("commit: %s", err);
}

json_t *agg_check_of(json_t *d, const char *name) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(d, "checks"), i,
                     c) if (strcmp(json_string_value(json_object_get(c, "name")), name) ==
                            0) return c;
  fail_msg("no check %s", name);
  return NULL;
}

double agg_num(json_t *c, const char *key) {
  json_t *v = json_object_get(c, key);
  if (!json_is_number(v))
    fail_msg("%s: not a number", key);
  return json_number_value(v);
}

json_t *agg_gate(struct agg_fx *x, const char *rack, double kw, const char *owner, int64_t now) {
  struct rp_gate_request q = {.rack = rack, .kw = kw, .owner = owner, .duration_ms = 60000};
  int status = 0;
  char err[256];
  json_t *d =
      rp_gate_evaluate(x->a.gate, x->a.store, x->a.ledger, &q, now, &status, err, sizeof(err));
  if (d == NULL)
    fail_msg("gate: %d %s", status, err);
  return d;
}
