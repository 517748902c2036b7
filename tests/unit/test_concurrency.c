/* Concurrency tests of the aggregator's decision side against a real store,
 * gate and ledger (aggregator/gate.c, reservations.c, ledger.c): many
 * threads admitting reservations that fit one at a time but not together
 * (exactly the ones that fit are admitted), release racing extend (no lost
 * update), gates evaluated while racks are being added (no use of freed
 * trip state: run under ASan and TSan, label tsan), trip state kept per rack
 * and class, and the class rule for unauthenticated callers. Also the
 * ledger's space: a flood of audit entries never takes the room of flags
 * and reservations, and the audit ring drops the oldest decisions first.
 * And a SIGHUP reload of the API's clients (auth.c) racing threads that
 * authenticate: each sees the old clients or the new ones.
 * Each test works in a fresh mkdtemp directory under /tmp and removes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg_test_util.h"
#include "aggregator.h"
#include "auth.h"
#include "gate.h"
#include "ledger.h"
#include "policy.h"
#include "reservations.h"
#include "store.h"

#define TOPIC "rackpulse.frames"
#define T0 1700000000000LL

/* ---- fixture: store, gate (a policy file) and ledger in a temp dir ------ */

static const char policy_yaml[] =
    "version: conc-1\n"
    "defaults:\n"
    "  max_staleness: 60s\n"
    "  supply_temp: {max: 40, hysteresis: 2, persist: 3}\n"
    "  power: {enabled: true, series: pdu.power, stat: latest, across: sum}\n"
    "classes:\n"
    "  gold: {supply_temp: {max: 38}}\n"
    "  loose: {supply_temp: {max: 50}}\n"
    "racks:\n"
    "  - {id: r1, breaker_kw: 100, derating: 1.0}\n"
    "  - {id: r2, breaker_kw: 100, derating: 1.0}\n"
    "  - {id: r3, breaker_kw: 100, derating: 1.0}\n"
    "  - {id: r4, breaker_kw: 100, derating: 1.0}\n";

static int setup(void **state) {
  struct agg_fx *x = calloc(1, sizeof(*x));
  if (x == NULL || agg_fx_open(x, "conc", policy_yaml) != 0) {
    free(x);
    return -1;
  }
  x->a.cfg.reservations.unused_grace_ms = 3600000;
  *state = x;
  return 0;
}

static int teardown(void **state) {
  struct agg_fx *x = *state;
  int rc = agg_fx_close(x);
  free(x);
  return rc;
}

/* Applies one frame of `rack` at ts: supply temperature (°C) and PDU power
 * (W), as the consumer would (agg_test_util.c). */
static void frame(struct agg_fx *x, const char *rack, int64_t ts, double supply_c, double power_w) {
  const struct agg_ser s[] = {
      {.name = "cdu.supply_temp", .unit = "Cel", .device = "cdu1", .value = supply_c},
      {.name = "pdu.power", .unit = "W", .device = "pdu1", .value = power_w}};
  agg_fx_frame(x, rack, ts, s, 2);
}

/* ---- concurrent admission -------------------------------------------------- */

#define NTHREADS 16

struct admit_arg {
  struct agg_fx *x;
  const char *rack;
  int index;
  pthread_barrier_t *go;
  int status;
  char id[32];
};

static void *admit_one(void *p) {
  struct admit_arg *t = p;
  char owner[32];
  snprintf(owner, sizeof(owner), "owner-%d", t->index);
  json_t *body = json_pack("{s:s, s:f, s:s, s:I}", "rack", t->rack, "kw", 10.0, "owner", owner,
                           "end", (json_int_t)(rp_now_ms() + 3600000));
  pthread_barrier_wait(t->go);
  json_t *r = rp_reservation_create(&t->x->a, body, rp_now_ms(), &t->status);
  if (t->status == 201)
    snprintf(t->id, sizeof(t->id), "%s", json_string_value(json_object_get(r, "id")));
  json_decref(r);
  json_decref(body);
  return NULL;
}

/* 80 kW of headroom (breaker 100 kW, draw 20 kW), sixteen threads asking
 * 10 kW each at once: exactly eight are admitted, on each of four racks. */
static void test_concurrent_admission(void **state) {
  struct agg_fx *x = *state;
  static const char *const racks[] = {"r1", "r2", "r3", "r4"};
  for (size_t k = 0; k < 4; k++)
    frame(x, racks[k], rp_now_ms(), 30.0, 20000);
  for (size_t k = 0; k < 4; k++) {
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    struct admit_arg args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
      args[i] = (struct admit_arg){.x = x, .rack = racks[k], .index = i, .go = &go};
      assert_int_equal(pthread_create(&th[i], NULL, admit_one, &args[i]), 0);
    }
    int admitted = 0, refused = 0;
    for (int i = 0; i < NTHREADS; i++) {
      pthread_join(th[i], NULL);
      admitted += args[i].status == 201;
      refused += args[i].status == 409;
    }
    pthread_barrier_destroy(&go);
    double held =
        rp_reservations_reserved_kw(x->a.ledger, racks[k], NULL, rp_now_ms(), rp_now_ms() + 1000);
    if (admitted != 8 || refused != 8 || fabs(held - 80.0) > 1e-6)
      fail_msg("rack %s: %d admitted, %d refused, %.1f kW held: expected 8, 8 and 80 kW of "
               "80 kW headroom",
               racks[k], admitted, refused, held);
  }
}

/* ---- release racing extend ------------------------------------------------- */

struct race_arg {
  struct agg_fx *x;
  const char *id;
  bool release;
  pthread_barrier_t *go;
  int status;
};

static void *race_one(void *p) {
  struct race_arg *t = p;
  json_t *body = json_pack("{s:I}", "end", (json_int_t)(rp_now_ms() + 7200000));
  pthread_barrier_wait(t->go);
  json_t *r = t->release ? rp_reservation_release(&t->x->a, t->id, rp_now_ms(), &t->status)
                         : rp_reservation_extend(&t->x->a, t->id, body, rp_now_ms(), &t->status);
  json_decref(r);
  json_decref(body);
  return NULL;
}

/* A release and an extend of the same reservation at once: whatever the
 * order, the reservation ends released (an extend that read it before the
 * release must not write it back active). */
static void test_release_races_extend(void **state) {
  struct agg_fx *x = *state;
  frame(x, "r1", rp_now_ms(), 30.0, 20000);
  for (int round = 0; round < 40; round++) {
    int status;
    json_t *body = json_pack("{s:s, s:f, s:s, s:I}", "rack", "r1", "kw", 1.0, "owner", "o", "end",
                             (json_int_t)(rp_now_ms() + 3600000));
    json_t *r = rp_reservation_create(&x->a, body, rp_now_ms(), &status);
    json_decref(body);
    assert_int_equal(status, 201);
    char id[32];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "id")));
    json_decref(r);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    pthread_t th[2];
    struct race_arg args[2] = {{x, id, true, &go, 0}, {x, id, false, &go, 0}};
    for (int i = 0; i < 2; i++)
      assert_int_equal(pthread_create(&th[i], NULL, race_one, &args[i]), 0);
    for (int i = 0; i < 2; i++)
      pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    assert_int_equal(args[0].status, 200);
    json_t *after = rp_ledger_res_get(x->a.ledger, id);
    assert_non_null(after);
    const char *st = json_string_value(json_object_get(after, "state"));
    if (strcmp(st, "released") != 0)
      fail_msg("round %d: reservation %s is %s after release (extend answered %d): a lost "
               "update",
               round, id, st, args[1].status);
    json_decref(after);
  }
}

/* ---- gates while racks are added ------------------------------------------ */

#define NRACKS 300

struct gate_arg {
  struct agg_fx *x;
  int first, step, rounds;
  _Atomic int *failures;
};

static void *gate_loop(void *p) {
  struct gate_arg *t = p;
  for (int round = 0; round < t->rounds; round++) {
    for (int i = t->first; i < NRACKS; i += t->step) {
      char rack[16], err[256];
      snprintf(rack, sizeof(rack), "g%03d", i);
      struct rp_gate_request q = {.rack = rack, .kw = 1};
      int status;
      json_t *d = rp_gate_evaluate(t->x->a.gate, t->x->a.store, t->x->a.ledger, &q, T0 + 1000,
                                   &status, err, sizeof(err));
      const json_t *c = json_array_get(json_object_get(d, "checks"), 2); /* supply_temp */
      if (d == NULL || !json_is_true(json_object_get(c, "pass")))
        atomic_fetch_add(t->failures, 1);
      json_decref(d);
    }
  }
  return NULL;
}

/* Four threads evaluate gates: one walks racks it has not seen (each adds
 * trip state, growing the gate's table several times), the others keep
 * evaluating the first racks, whose trip state the growth must not move
 * from under them. */
static void test_gates_while_racks_are_added(void **state) {
  struct agg_fx *x = *state;
  for (int i = 0; i < NRACKS; i++) {
    char rack[16];
    snprintf(rack, sizeof(rack), "g%03d", i);
    frame(x, rack, T0, 30.0, 20000);
  }
  _Atomic int failures = 0;
  struct gate_arg args[4] = {{x, 0, 1, 1, &failures},
                             {x, 0, 100, 300, &failures},
                             {x, 1, 100, 300, &failures},
                             {x, 2, 100, 300, &failures}};
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, gate_loop, &args[i]), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&failures), 0);
}

/* ---- trip state per class, and the class rule ------------------------------ */

static json_t *gate_at(struct agg_fx *x, const char *cls, bool trusted, int64_t now, int *status,
                       char *err, size_t errlen) {
  struct rp_gate_request q = {.rack = "r1", .kw = 1, .class_name = cls, .trusted = trusted};
  return rp_gate_evaluate(x->a.gate, x->a.store, x->a.ledger, &q, now, status, err, errlen);
}

static bool supply_passes(const json_t *d) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(d, "checks"), i, c) {
    if (strcmp(json_string_value(json_object_get(c, "name")), "supply_temp") == 0)
      return json_is_true(json_object_get(c, "pass"));
  }
  fail_msg("no supply_temp check");
  return false;
}

/* An unauthenticated caller may ask for a stricter class (gold: max 38),
 * not a looser one (loose: max 50): 403 naming it; a trusted caller may. */
static void test_looser_class_refused(void **state) {
  struct agg_fx *x = *state;
  frame(x, "r1", T0, 30.0, 20000);
  int status = 0;
  char err[256] = "";
  json_t *d = gate_at(x, "loose", false, T0 + 500, &status, err, sizeof(err));
  assert_null(d);
  assert_int_equal(status, 403);
  assert_non_null(strstr(err, "class 'loose'"));
  assert_non_null(strstr(err, "supply_temp max 50 > 40"));
  d = gate_at(x, "loose", true, T0 + 500, &status, err, sizeof(err));
  assert_non_null(d);
  json_decref(d);
  d = gate_at(x, "gold", false, T0 + 500, &status, err, sizeof(err));
  assert_non_null(d);
  assert_string_equal(json_string_value(json_object_get(d, "class")), "gold");
  json_decref(d);
  d = gate_at(x, "nosuch", false, T0 + 500, &status, err, sizeof(err));
  assert_null(d);
  assert_int_equal(status, 400);
}

/* Three samples at 42 °C (own limit 40, persist 3), each evaluated under
 * the loose class (in band there) and then the rack's own limits: the own
 * check still trips on the third. Then, back at 30 °C and cleared, three
 * samples at 39 °C under gold (max 38: out of band there) and own (in
 * band): gold trips on the third, the rack's own limits never do. */
static void test_classes_keep_their_own_trip_state(void **state) {
  struct agg_fx *x = *state;
  int status;
  char err[256];
  for (int i = 1; i <= 3; i++) {
    frame(x, "r1", T0 + i * 1000, 42.0, 20000);
    json_t *loose = gate_at(x, "loose", true, T0 + i * 1000 + 100, &status, err, sizeof(err));
    json_t *own = gate_at(x, NULL, false, T0 + i * 1000 + 200, &status, err, sizeof(err));
    assert_non_null(loose);
    assert_non_null(own);
    assert_true(supply_passes(loose));
    if (supply_passes(own) != (i < 3))
      fail_msg("sample %d at 42 C: own supply_temp %s (persist 3, loose class asked between)", i,
               supply_passes(own) ? "passes" : "fails");
    json_decref(loose);
    json_decref(own);
  }
  /* Back to 30 °C: own clears (30 <= 40 - 2). */
  frame(x, "r1", T0 + 4000, 30.0, 20000);
  json_t *own = gate_at(x, NULL, false, T0 + 4100, &status, err, sizeof(err));
  assert_true(supply_passes(own));
  json_decref(own);
  /* 39 °C: out of gold's band (38) for three samples, inside the rack's. */
  for (int i = 5; i <= 7; i++) {
    frame(x, "r1", T0 + i * 1000, 39.0, 20000);
    json_t *gold = gate_at(x, "gold", false, T0 + i * 1000 + 100, &status, err, sizeof(err));
    own = gate_at(x, NULL, false, T0 + i * 1000 + 200, &status, err, sizeof(err));
    assert_non_null(gold);
    assert_non_null(own);
    assert_int_equal(supply_passes(gold), i < 7);
    if (!supply_passes(own))
      fail_msg("sample %d at 39 C: own supply_temp (max 40) fails: gold's trip state leaked", i);
    json_decref(gold);
    json_decref(own);
  }
}

/* ---- ledger space ---------------------------------------------------------- */

static void audit_flood(struct rp_ledger *l, int n, int64_t t0) {
  for (int i = 0; i < n; i++) {
    char rack[16], id[40];
    snprintf(rack, sizeof(rack), "f%02d", i % 7);
    snprintf(id, sizeof(id), "%032d", i);
    /* A decision of some size, as real ones are (~1 KiB). */
    json_t *d = json_pack("{s:s, s:s, s:I, s:s, s:s}", "rack", rack, "decision_id", id,
                          "evaluated_at_ms", (json_int_t)(t0 + i), "decision", "deny", "padding",
                          "................................................................"
                          "................................................................"
                          "................................................................"
                          "................................................................");
    assert_int_equal(rp_ledger_audit_append(l, d), 0);
    json_decref(d);
    if (i % 100 == 99) /* batches as the writer's every 100 ms would be */
      rp_ledger_audit_flush(l);
  }
  rp_ledger_audit_flush(l);
}

/* A ledger with a 1 MiB map and no entry cap to speak of: 20 000
 * decisions (~8 MiB) fill the audit map, never the one of flags and
 * reservations, and the oldest make room, counted. */
static void test_audit_flood_leaves_room(void **state) {
  struct agg_fx *x = *state;
  char dir[128], err[256];
  snprintf(dir, sizeof(dir), "%s/small-ledger", x->dir);
  struct rp_ledger_limits lim = {
      .map_size = 1u << 20, .audit_max_age_ms = INT64_MAX / 2, .audit_max_entries = 1000000000};
  struct rp_ledger *l;
  assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);
  audit_flood(l, 20000, T0);
  assert_true(rp_ledger_audit_evicted(l) > 10000);
  assert_int_equal(rp_ledger_audit_dropped(l), 0);
  json_t *f = json_pack("{s:s, s:s, s:s, s:I}", "rack", "f01", "flag", "evacuate", "source", "auto",
                        "expires_ms", (json_int_t)INT64_MAX);
  assert_int_equal(rp_ledger_flag_put(l, "f01", "evacuate", f), 0);
  json_decref(f);
  json_t *r =
      json_pack("{s:s, s:s, s:f, s:s}", "id", "res-1", "rack", "f01", "kw", 5.0, "state", "active");
  assert_int_equal(rp_ledger_res_put(l, r), 0);
  json_decref(r);
  /* The newest decision is kept. */
  json_t *q = rp_ledger_audit_query(l, "f05", T0 + 19990, T0 + 20000, 100);
  assert_int_equal(json_array_size(q), 2); /* 19990 and 19997 (i % 7 == 5) */
  json_decref(q);
  rp_ledger_close(l);
}

/* A cap of 100 entries over seven racks: the 100 newest decisions stay,
 * whichever rack they belong to. */
static void test_audit_ring_drops_oldest_first(void **state) {
  struct agg_fx *x = *state;
  char dir[128], err[256];
  snprintf(dir, sizeof(dir), "%s/ring-ledger", x->dir);
  struct rp_ledger_limits lim = {
      .map_size = 4u << 20, .audit_max_age_ms = INT64_MAX / 2, .audit_max_entries = 100};
  struct rp_ledger *l;
  assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);
  audit_flood(l, 1000, T0);
  json_t *all = rp_ledger_audit_query(l, NULL, 0, INT64_MAX, 10000);
  assert_int_equal(json_array_size(all), 100);
  size_t i;
  json_t *d;
  json_array_foreach(all, i, d) {
    if (json_integer_value(json_object_get(d, "evaluated_at_ms")) < T0 + 900)
      fail_msg("decision of %lld kept, not one of the 100 newest",
               (long long)json_integer_value(json_object_get(d, "evaluated_at_ms")));
  }
  json_decref(all);
  assert_int_equal(rp_ledger_audit_evicted(l), 900);
  rp_ledger_close(l);
}

/* A ledger of the old layout (audit beside flags): opening it moves the
 * decisions to the audit environment and frees the old database. */
static void test_old_audit_is_moved(void **state) {
  struct agg_fx *x = *state;
  char dir[128], err[256];
  snprintf(dir, sizeof(dir), "%s/old-ledger", x->dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
  assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "audit", MDB_CREATE, &dbi), 0);
  for (int i = 0; i < 2500; i++) { /* more than one batch of the move */
    char key[32] = "a01";
    uint64_t ts = (uint64_t)(T0 + i);
    for (int b = 0; b < 8; b++)
      key[4 + b] = (char)(ts >> (56 - 8 * b));
    snprintf(key + 12, sizeof(key) - 12, "%08d", i);
    char val[128];
    int vlen = snprintf(val, sizeof(val),
                        "{\"rack\":\"a01\",\"decision_id\":\"%08d\",\"evaluated_at_ms\":%lld}", i,
                        (long long)ts);
    MDB_val k = {20, key}, v = {(size_t)vlen, val};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
  }
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  struct rp_ledger_limits lim = {
      .map_size = 4u << 20, .audit_max_age_ms = INT64_MAX / 2, .audit_max_entries = 100000};
  struct rp_ledger *l;
  assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);
  json_t *all = rp_ledger_audit_query(l, "a01", 0, INT64_MAX, 10000);
  assert_int_equal(json_array_size(all), 2500);
  json_decref(all);
  rp_ledger_close(l);
  /* The old database is gone. */
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
  assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0640), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), MDB_NOTFOUND);
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

/* Expiry and automatic flags decide from an earlier read: a flag set again
 * meanwhile is neither deleted (del_if) nor overwritten (put_new). */
static void test_flag_writes_from_a_stale_read(void **state) {
  struct agg_fx *x = *state;
  struct rp_ledger *l = x->a.ledger;
  json_t *first = json_pack("{s:s, s:s, s:s, s:I}", "rack", "r1", "flag", "maintenance", "source",
                            "api", "expires_ms", (json_int_t)1000);
  assert_int_equal(rp_ledger_flag_put(l, "r1", "maintenance", first), 0);
  json_t *read = rp_ledger_flag_list(l, "r1"); /* what the expiry read */
  json_t *seen = json_incref(json_array_get(read, 0));
  json_decref(read);
  assert_non_null(seen);
  /* An operator sets it again, later expiry, before the expiry deletes. */
  json_t *again = json_pack("{s:s, s:s, s:s, s:I}", "rack", "r1", "flag", "maintenance", "source",
                            "api", "expires_ms", (json_int_t)9000);
  assert_int_equal(rp_ledger_flag_put(l, "r1", "maintenance", again), 0);
  assert_int_equal(rp_ledger_flag_del_if(l, "r1", "maintenance", seen), -ESTALE);
  json_t *list = rp_ledger_flag_list(l, "r1");
  assert_int_equal(json_array_size(list), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "expires_ms")),
                   9000);
  json_decref(list);
  /* An automatic flag does not replace it. */
  json_t *autof =
      json_pack("{s:s, s:s, s:s}", "rack", "r1", "flag", "maintenance", "source", "auto");
  assert_int_equal(rp_ledger_flag_put_new(l, "r1", "maintenance", autof), -EEXIST);
  /* As read now, it goes. */
  assert_int_equal(rp_ledger_flag_del_if(l, "r1", "maintenance", again), 0);
  assert_int_equal(rp_ledger_flag_del_if(l, "r1", "maintenance", again), -ENOENT);
  assert_int_equal(rp_ledger_flag_put_new(l, "r1", "maintenance", autof), 0);
  json_decref(autof);
  json_decref(again);
  json_decref(seen);
  json_decref(first);
}

/* ---- a SIGHUP reload racing authentication -------------------------------- */

#define AUTH_READERS 4
#define AUTH_RELOADS 200
#define TOKEN_A "alice-token-0123456789"
#define TOKEN_B "bob-token-0123456789ab"

struct auth_race {
  struct rp_auth *auth;
  atomic_bool stop;
  atomic_int mixed; /* answers that are neither the old clients nor the new */
};

/* Authenticates until told to stop (and at least 200 times): alice is in
 * both tables (reserve in one, admin in the other), bob only in the first,
 * a wrong token in neither. */
static void *authenticate(void *p) {
  struct auth_race *r = p;
  for (int n = 0; n < 200 || !atomic_load(&r->stop); n++) {
    struct rp_client c;
    if (!rp_auth_by_token(r->auth, TOKEN_A, &c) || strcmp(c.name, "alice") != 0 ||
        (c.roles != RP_ROLE_RESERVE && c.roles != RP_ROLE_ADMIN) || c.secret[0] != '\0')
      atomic_fetch_add(&r->mixed, 1);
    if (rp_auth_by_token(r->auth, TOKEN_B, &c) &&
        (strcmp(c.name, "bob") != 0 || c.roles != RP_ROLE_FLAG))
      atomic_fetch_add(&r->mixed, 1);
    if (rp_auth_by_token(r->auth, "not-a-token-of-anyone", &c) || !rp_auth_enabled(r->auth))
      atomic_fetch_add(&r->mixed, 1);
  }
  return NULL;
}

static void write_tokens(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(chmod(path, 0600), 0);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

/* Reloads (what SIGHUP does) swapping two tokens files while threads
 * authenticate: every answer comes from one table or the other, and under
 * ThreadSanitizer (label tsan) a swap outside the lock is a reported race. */
static void test_auth_reload_races_lookups(void **state) {
  (void)state;
  char dir[] = "/tmp/rp_test_auth_XXXXXX", one[64], two[64], err[256];
  assert_non_null(mkdtemp(dir));
  snprintf(one, sizeof(one), "%s/one", dir);
  snprintf(two, sizeof(two), "%s/two", dir);
  write_tokens(one, "alice reserve " TOKEN_A "\nbob flag " TOKEN_B "\n");
  write_tokens(two, "# bob is gone, alice is admin\nalice admin " TOKEN_A "\n");
  struct auth_race r = {.stop = false, .mixed = 0};
  assert_int_equal(rp_auth_load(one, NULL, &r.auth, err, sizeof(err)), 0);
  pthread_t t[AUTH_READERS];
  for (int i = 0; i < AUTH_READERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, authenticate, &r), 0);
  for (int i = 0; i < AUTH_RELOADS; i++) {
    size_t n = 0;
    assert_int_equal(rp_auth_reload(r.auth, i % 2 ? one : two, NULL, &n, err, sizeof(err)), 0);
    assert_int_equal(n, i % 2 ? 2 : 1);
  }
  atomic_store(&r.stop, true);
  for (int i = 0; i < AUTH_READERS; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(atomic_load(&r.mixed), 0);
  rp_auth_free(r.auth);
  assert_int_equal(unlink(one), 0);
  assert_int_equal(unlink(two), 0);
  assert_int_equal(rmdir(dir), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_concurrent_admission),
      T(test_release_races_extend),
      T(test_gates_while_racks_are_added),
      T(test_looser_class_refused),
      T(test_classes_keep_their_own_trip_state),
      T(test_audit_flood_leaves_room),
      T(test_audit_ring_drops_oldest_first),
      T(test_old_audit_is_moved),
      T(test_flag_writes_from_a_stale_read),
      cmocka_unit_test(test_auth_reload_races_lookups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
