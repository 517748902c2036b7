/* Fuzzes gate policy files (aggregator/policy.c): the input is written to a
 * file and loaded with rp_policy_load() as at start and on SIGHUP. A policy
 * that loads must hold what the gate relies on: every rack listed once with
 * an id, every check's min <= max when both are set, stats other than
 * latest with a window, persist >= 1; rp_policy_for() then answers for
 * every rack and class, and for names not in the file. Seeds:
 * packaging/config/policy.yaml and variations. */
#include <errno.h>
#include <math.h>

#include "fuzz_common.h"
#include "policy.h"

static void check_set(const struct rp_policy_set *s) {
  FUZZ_ASSERT(s->max_staleness_ms >= 0);
  for (size_t i = 0; i < RP_CHECK_COUNT; i++) {
    const struct rp_check_limits *c = &s->check[i];
    FUZZ_ASSERT(fuzz_terminated(c->series, sizeof(c->series)));
    FUZZ_ASSERT(isnan(c->min) || isnan(c->max) || c->min <= c->max);
    FUZZ_ASSERT(c->stat == RP_STAT_LATEST || c->window_ms > 0);
    FUZZ_ASSERT(c->persist >= 1);
    FUZZ_ASSERT((unsigned)c->stat <= RP_STAT_SLOPE && (unsigned)c->across <= RP_ACROSS_SUM);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[160];
  if (path[0] == '\0')
    snprintf(path, sizeof(path), "%s/policy.yaml", fuzz_dir());
  fuzz_write_file(path, data, size);
  struct rp_policy *p = NULL;
  char err[1024];
  int rc = rp_policy_load(path, &p, err, sizeof(err));
  if (rc != 0) {
    FUZZ_ASSERT(rc == -EINVAL || rc == -ENOMEM || rc == -EFBIG);
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && strncmp(err, path, strlen(path)) == 0);
    return 0;
  }
  FUZZ_ASSERT(p->version[0] != '\0' && p->nclasses <= 16);
  check_set(&p->defaults);
  const struct rp_rack_meta *meta;
  for (size_t i = 0; i < p->nclasses; i++) {
    check_set(&p->classes[i]);
    FUZZ_ASSERT(rp_policy_for(p, "no-such-rack", p->class_names[i], &meta) == &p->classes[i]);
  }
  for (size_t i = 0; i < p->nracks; i++) {
    const struct rp_rack_meta *r = &p->racks[i];
    FUZZ_ASSERT(r->id[0] != '\0');
    check_set(&r->set);
    FUZZ_ASSERT(rp_policy_for(p, r->id, NULL, &meta) == &r->set && meta == r);
    for (size_t j = 0; j < i; j++)
      FUZZ_ASSERT(strcmp(p->racks[j].id, r->id) != 0);
  }
  FUZZ_ASSERT(rp_policy_for(p, "", "", &meta) != NULL);
  FUZZ_ASSERT(rp_policy_for(p, "x", "a-class-name-longer-than-any-class-can-be", &meta) == NULL);
  rp_policy_free(p);
  return 0;
}
