/* test_audit_queue: the audit writer's full queue (ledger.c,
 * rp_ledger_audit_append). With the writer held (as by a disk that does not
 * take the batch: the test holds the chain lock the writer needs to take
 * one), a queue of audit_queue_max decisions fills; the next append waits
 * its bounded back-pressure, then returns -ENOBUFS (the caller answers
 * 503) and is counted in rp_ledger_audit_dropped (/metrics'
 * rackpulse_audit_dropped_total); it does not block. Once the writer goes
 * on, every queued decision is written, none but the counted one is lost,
 * and the queue takes decisions again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <time.h>

#include "aggregator/ledger_internal.h"

#define QUEUE 4

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int append(struct rp_ledger *l, int i) {
  char id[32];
  snprintf(id, sizeof(id), "d%d", i);
  json_t *d = json_pack("{s:s, s:s, s:I, s:s}", "rack", "r1", "decision_id", id, "evaluated_at_ms",
                        (json_int_t)(1000 + i), "decision", "allow");
  assert_non_null(d);
  int rc = rp_ledger_audit_append(l, d);
  json_decref(d);
  return rc;
}

/* The decision ids the ledger holds, in order, joined by ','. */
static void stored_ids(struct rp_ledger *l, char *out, size_t len) {
  json_t *all = rp_ledger_audit_query(l, NULL, 0, INT64_MAX, 100);
  size_t i, at = 0;
  json_t *e;
  out[0] = '\0';
  json_array_foreach(all, i, e) {
    at += (size_t)snprintf(out + at, len - at, "%s%s", i ? "," : "",
                           json_string_value(json_object_get(e, "decision_id")));
    assert_true(at < len);
  }
  json_decref(all);
}

static void test_full_queue_drops_and_counts(void **state) {
  (void)state;
  char dir[] = "/tmp/rp_test_audit_queue_XXXXXX", err[256], ids[256], cmd[300];
  assert_non_null(mkdtemp(dir));
  struct rp_ledger_limits lim = {
      .map_size = 4u << 20, .audit_max_age_ms = 3600000, .audit_queue_max = QUEUE};
  struct rp_ledger *l;
  assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);

  /* The writer cannot take a batch while this is held. */
  pthread_mutex_lock(&l->chain_lock);
  for (int i = 0; i < QUEUE; i++)
    assert_int_equal(append(l, i), 0);
  assert_int_equal(rp_ledger_audit_dropped(l), 0);
  int64_t t0 = mono_ms();
  assert_int_equal(append(l, QUEUE), -ENOBUFS);
  int64_t waited = mono_ms() - t0;
  assert_int_equal(rp_ledger_audit_dropped(l), 1);
  /* Back-pressure first (2 s), then the refusal: bounded, not a hang. */
  if (waited < 1000 || waited > 60000)
    fail_msg("the append on a full queue returned after %lld ms", (long long)waited);

  pthread_mutex_unlock(&l->chain_lock);
  rp_ledger_audit_flush(l);
  stored_ids(l, ids, sizeof(ids));
  assert_string_equal(ids, "d0,d1,d2,d3");

  /* Room again: taken, written, and the count stays. */
  assert_int_equal(append(l, QUEUE + 1), 0);
  rp_ledger_audit_flush(l);
  stored_ids(l, ids, sizeof(ids));
  assert_string_equal(ids, "d0,d1,d2,d3,d5");
  assert_int_equal(rp_ledger_audit_dropped(l), 1);

  rp_ledger_close(l);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_queue_drops_and_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
