/* agg_test_util.c: the aggregator test fixture (see agg_test_util.h). */
#include "agg_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "gate.h"
#include "ledger.h"
#include "policy.h"
#include "store.h"

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
