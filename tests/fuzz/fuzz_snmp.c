/* Fuzz harness: the SNMP collector's pure parts (agent/snmp/snmp_value.c,
 * agent/snmp/snmp_profile.c): OID text, value conversion and scaling (with a
 * decimal-digits companion), the energy counter across wraps and restarts,
 * and profile files (YAML) with the row-index matching of their metrics.
 *
 * Input: the first byte picks a mode; the rest is the mode's input:
 *   0  YAML profile text -> snmp_profile_parse, then match every metric
 *      against index tuples built from the input's bytes
 *   1  OID text -> snmp_oid_parse, compare and subtree test with itself
 *   2  raw bytes -> a value, a scaling and digits -> snmp_value_convert,
 *      then a run of counter updates and uptime-restart checks */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/cfg.h"
#include "rackpulse/frame.h"
#include "snmp/snmp_profile.h"
#include "snmp/snmp_value.h"

static uint64_t take(const uint8_t **p, size_t *n, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i<bytes && * n> 0; i++, (*p)++, (*n)--)
    v = v << 8 | **p;
  return v;
}

static void fuzz_profile(const uint8_t *data, size_t size) {
  struct rp_cfg_doc *doc = NULL;
  char err[512];
  if (rp_cfg_load_string("fuzz.yaml", (const char *)data, size, &doc, err, sizeof(err)) != 0)
    return;
  struct snmp_profile p;
  memset(&p, 0, sizeof(p));
  if (snmp_profile_parse(doc, "fuzz", &p, err, sizeof(err)) == 0) {
    uint32_t index[8];
    for (size_t i = 0; i < 8; i++)
      index[i] = size > i ? data[i] : (uint32_t)i;
    for (size_t m = 0; m < p.nmetrics; m++) {
      const char *keys[SNMP_MAX_LABELS];
      char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
      size_t nlabels;
      for (size_t n = 0; n <= 8; n++)
        snmp_metric_match(&p.metrics[m], index, n, keys, values, &nlabels);
    }
  }
  snmp_profile_free(&p);
  rp_cfg_free(doc);
}

static void fuzz_oid(const uint8_t *data, size_t size) {
  char text[512];
  size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  struct snmp_oid a, b;
  if (snmp_oid_parse(text, &a) != 0)
    return;
  b = a;
  /* An OID equals itself and is not strictly inside its own subtree. */
  if (snmp_oid_cmp(&a, &b) != 0 || snmp_oid_under(&a, &b))
    abort();
  char back[512];
  snmp_oid_format(&a, back, sizeof(back));
  struct snmp_oid c;
  if (snmp_oid_parse(back, &c) != 0 || snmp_oid_cmp(&a, &c) != 0)
    abort(); /* formatting and parsing again gives the same OID */
}

static void fuzz_values(const uint8_t *p, size_t n) {
  struct snmp_value v = {.type = (enum snmp_vtype)(take(&p, &n, 1) % 12)};
  v.i = (int64_t)take(&p, &n, 8);
  v.u = take(&p, &n, 8);
  struct snmp_value digits = {.type = (enum snmp_vtype)(take(&p, &n, 1) % 12)};
  digits.i = (int8_t)take(&p, &n, 1);
  digits.u = take(&p, &n, 1);
  static const double scales[] = {1, 0.1, 0.01, 0.001, 10, 1000, 1e-9, 3.5};
  struct snmp_scaling s = {.scale = scales[take(&p, &n, 1) % 8]};
  s.decimals = rp_scale_decimals(s.scale);
  s.has_invalid = take(&p, &n, 1) & 1;
  s.invalid = (int8_t)take(&p, &n, 1);
  double out;
  int decimals;
  char why[256];
  snmp_value_convert(&v, &s, take(&p, &n, 1) & 1 ? &digits : NULL, &out, &decimals, why,
                     sizeof(why));
  struct snmp_counter c = {0};
  enum snmp_counter_event ev;
  uint32_t uptime = 0;
  while (n >= 6) {
    uint64_t raw = take(&p, &n, 4);
    uint32_t now = (uint32_t)take(&p, &n, 2) << 8;
    bool restarted = snmp_uptime_restarted(uptime, now);
    uptime = now;
    snmp_counter_update(&c, raw, (raw & 1) ? 32 : 0, restarted, s.scale, &ev);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  switch (data[0] % 3) {
  case 0: fuzz_profile(data + 1, size - 1); break;
  case 1: fuzz_oid(data + 1, size - 1); break;
  default: fuzz_values(data + 1, size - 1);
  }
  return 0;
}
