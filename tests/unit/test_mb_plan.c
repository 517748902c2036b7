/*
 * test_mb_plan.c: unit tests for Modbus request coalescing (agent/modbus/mb_plan.c):
 * worked examples, limits and errors, ownership, and a randomized check of
 * the plan's invariants (every register whole in its one request at the
 * right offset, limits and gaps honoured, as many requests as a simple
 * greedy reference) over thousands of random maps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/modbus/mb_map.h"
#include "agent/modbus/mb_plan.h"

static struct mb_register reg(enum mb_function fn, uint16_t address, enum mb_type type) {
  struct mb_register r;
  mb_register_init(&r);
  snprintf(r.name, sizeof(r.name), "r%u", (unsigned)address);
  r.fn = fn;
  r.address = address;
  r.type = type;
  return r;
}

static void assert_request(const struct mb_request *q, enum mb_function fn, unsigned start,
                           unsigned count) {
  assert_int_equal(q->fn, fn);
  assert_int_equal(q->start, start);
  assert_int_equal(q->count, count);
}

static void assert_slot(const struct mb_plan *p, size_t i, unsigned request, unsigned offset,
                        unsigned words) {
  assert_int_equal(p->slots[i].request, request);
  assert_int_equal(p->slots[i].offset, offset);
  assert_int_equal(p->slots[i].words, words);
}

static void test_adjacent_and_gaps(void **state) {
  /* Deliberately unsorted: slots follow the input order. */
  struct mb_register regs[] = {
      reg(MB_FN_HOLDING, 10, MB_TYPE_U16),
      reg(MB_FN_HOLDING, 0, MB_TYPE_U16),
      reg(MB_FN_HOLDING, 2, MB_TYPE_F32),
      reg(MB_FN_HOLDING, 1, MB_TYPE_I16),
  };
  struct mb_plan_limits lim = {0};
  struct mb_plan p;
  (void)state;

  assert_int_equal(mb_plan_build(regs, 4, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 2);
  assert_int_equal(p.nslots, 4);
  assert_request(&p.requests[0], MB_FN_HOLDING, 0, 4);
  assert_request(&p.requests[1], MB_FN_HOLDING, 10, 1);
  assert_slot(&p, 0, 1, 0, 1);
  assert_slot(&p, 1, 0, 0, 1);
  assert_slot(&p, 2, 0, 2, 2);
  assert_slot(&p, 3, 0, 1, 1);
  assert_int_equal(p.max_count, 4);
  mb_plan_free(&p);

  /* 6 unused words between 4 and 10: read across them at max_gap 6. */
  lim.max_gap = 5;
  assert_int_equal(mb_plan_build(regs, 4, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 2);
  mb_plan_free(&p);
  lim.max_gap = 6;
  assert_int_equal(mb_plan_build(regs, 4, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 1);
  assert_request(&p.requests[0], MB_FN_HOLDING, 0, 11);
  assert_slot(&p, 0, 0, 10, 1);
  mb_plan_free(&p);
}

static void test_limit_never_splits_a_value(void **state) {
  struct mb_register regs[] = {
      reg(MB_FN_INPUT, 0, MB_TYPE_U16),
      reg(MB_FN_INPUT, 1, MB_TYPE_U16),
      reg(MB_FN_INPUT, 2, MB_TYPE_U16),
      reg(MB_FN_INPUT, 3, MB_TYPE_F32), /* 3..4 would cross a 4-word limit */
      reg(MB_FN_INPUT, 5, MB_TYPE_F64),
  };
  struct mb_plan_limits lim = {.max_regs = 4};
  struct mb_plan p;
  (void)state;

  assert_int_equal(mb_plan_build(regs, 5, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 3);
  assert_request(&p.requests[0], MB_FN_INPUT, 0, 3);
  assert_request(&p.requests[1], MB_FN_INPUT, 3, 2);
  assert_request(&p.requests[2], MB_FN_INPUT, 5, 4);
  assert_slot(&p, 3, 1, 0, 2);
  assert_slot(&p, 4, 2, 0, 4);
  mb_plan_free(&p);
}

static void test_functions_apart_and_sorted(void **state) {
  struct mb_register regs[] = {
      reg(MB_FN_INPUT, 5, MB_TYPE_U16),         reg(MB_FN_HOLDING, 6, MB_TYPE_U16),
      reg(MB_FN_DISCRETE, 7, MB_TYPE_BITFIELD), reg(MB_FN_COIL, 8, MB_TYPE_U16),
      reg(MB_FN_HOLDING, 5, MB_TYPE_U16),
  };
  struct mb_plan p;
  (void)state;

  assert_int_equal(mb_plan_build(regs, 5, NULL, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 4);
  assert_request(&p.requests[0], MB_FN_COIL, 8, 1);
  assert_request(&p.requests[1], MB_FN_DISCRETE, 7, 1);
  assert_request(&p.requests[2], MB_FN_HOLDING, 5, 2);
  assert_request(&p.requests[3], MB_FN_INPUT, 5, 1);
  assert_slot(&p, 1, 2, 1, 1);
  assert_slot(&p, 4, 2, 0, 1);
  mb_plan_free(&p);
}

static void test_coils_use_bit_limit(void **state) {
  static struct mb_register regs[2001];
  struct mb_plan_limits lim = {.max_regs = 10};
  struct mb_plan p;
  (void)state;

  for (unsigned i = 0; i < 2001; i++)
    regs[i] = reg(MB_FN_COIL, (uint16_t)(100 + i), MB_TYPE_U16);
  assert_int_equal(mb_plan_build(regs, 2000, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 1);
  assert_request(&p.requests[0], MB_FN_COIL, 100, 2000);
  assert_int_equal(p.max_count, 2000);
  mb_plan_free(&p);
  assert_int_equal(mb_plan_build(regs, 2001, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 2);
  assert_request(&p.requests[1], MB_FN_COIL, 2100, 1);
  mb_plan_free(&p);
  lim.max_bits = 16;
  assert_int_equal(mb_plan_build(regs, 40, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 3);
  assert_request(&p.requests[2], MB_FN_COIL, 132, 8);
  mb_plan_free(&p);
}

static void test_overlapping_registers_share(void **state) {
  /* A status word read both as a bitfield and as a number. */
  struct mb_register regs[] = {
      reg(MB_FN_HOLDING, 20, MB_TYPE_BITFIELD),
      reg(MB_FN_HOLDING, 20, MB_TYPE_U16),
      reg(MB_FN_HOLDING, 19, MB_TYPE_U32),
  };
  struct mb_plan p;
  (void)state;

  assert_int_equal(mb_plan_build(regs, 3, NULL, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 1);
  assert_request(&p.requests[0], MB_FN_HOLDING, 19, 2);
  assert_slot(&p, 0, 0, 1, 1);
  assert_slot(&p, 1, 0, 1, 1);
  assert_slot(&p, 2, 0, 0, 2);
  mb_plan_free(&p);
}

static void test_one_per_register(void **state) {
  struct mb_register regs[] = {
      reg(MB_FN_HOLDING, 1, MB_TYPE_F32),
      reg(MB_FN_HOLDING, 0, MB_TYPE_U16),
      reg(MB_FN_HOLDING, 3, MB_TYPE_U16),
  };
  struct mb_plan_limits lim = {.max_gap = 100, .mode = MB_PLAN_ONE_PER_REGISTER};
  struct mb_plan p;
  (void)state;

  assert_int_equal(mb_plan_build(regs, 3, &lim, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 3);
  assert_request(&p.requests[0], MB_FN_HOLDING, 0, 1);
  assert_request(&p.requests[1], MB_FN_HOLDING, 1, 2);
  assert_request(&p.requests[2], MB_FN_HOLDING, 3, 1);
  assert_slot(&p, 0, 1, 0, 2);
  assert_slot(&p, 1, 0, 0, 1);
  assert_slot(&p, 2, 2, 0, 1);
  mb_plan_free(&p);
}

static void test_empty_and_free(void **state) {
  struct mb_plan p;
  (void)state;

  assert_int_equal(mb_plan_build(NULL, 0, NULL, &p, NULL, 0), 0);
  assert_int_equal(p.nrequests, 0);
  assert_null(p.requests);
  assert_null(p.slots);
  mb_plan_free(&p);
  mb_plan_free(&p);
  mb_plan_free(NULL);
}

static void test_errors(void **state) {
  struct mb_register regs[] = {
      reg(MB_FN_HOLDING, 40, MB_TYPE_F64),
      reg(MB_FN_INPUT, 65535, MB_TYPE_F32),
  };
  struct mb_plan_limits lim = {.max_regs = 126};
  struct mb_plan p;
  char err[160];
  (void)state;

  snprintf(regs[0].name, sizeof(regs[0].name), "cdu.energy");
  assert_int_equal(mb_plan_build(regs, 1, &lim, &p, err, sizeof(err)), -EINVAL);
  assert_string_equal(err, "max_regs_per_request 126 exceeds the Modbus limit of 125");
  assert_null(p.requests);
  lim = (struct mb_plan_limits){.max_bits = 2001};
  assert_int_equal(mb_plan_build(regs, 1, &lim, &p, err, sizeof(err)), -EINVAL);
  assert_string_equal(err, "max_bits_per_request 2001 exceeds the Modbus limit of 2000");
  lim = (struct mb_plan_limits){.mode = (enum mb_plan_mode)7};
  assert_int_equal(mb_plan_build(regs, 1, &lim, &p, err, sizeof(err)), -EINVAL);

  lim = (struct mb_plan_limits){.max_regs = 2};
  assert_int_equal(mb_plan_build(regs, 1, &lim, &p, err, sizeof(err)), -EINVAL);
  assert_string_equal(
      err, "register cdu.energy @ holding 40: f64 needs 4 words, max_regs_per_request is 2");
  assert_int_equal(mb_plan_build(regs, 2, NULL, &p, err, sizeof(err)), -EINVAL);
  assert_string_equal(err, "register r65535 @ input 65535: value runs past address 65535");
  regs[1].type = (enum mb_type)77;
  assert_int_equal(mb_plan_build(regs, 2, NULL, &p, NULL, 0), -EINVAL);
  regs[1].type = MB_TYPE_U16;
  regs[1].fn = (enum mb_function)0;
  assert_int_equal(mb_plan_build(regs, 2, NULL, &p, err, sizeof(err)), -EINVAL);
  assert_string_equal(err, "register r65535 @ function? 65535: unknown function or type");
  assert_null(p.requests);
  assert_int_equal(p.nrequests, 0);

  /* The last addresses are usable. */
  regs[1].fn = MB_FN_INPUT;
  assert_int_equal(mb_plan_build(regs, 2, NULL, &p, NULL, 0), 0);
  assert_request(&p.requests[1], MB_FN_INPUT, 65535, 1);
  mb_plan_free(&p);
  regs[1].type = MB_TYPE_F32;
  regs[1].address = 65534;
  assert_int_equal(mb_plan_build(regs, 2, NULL, &p, NULL, 0), 0);
  assert_request(&p.requests[1], MB_FN_INPUT, 65534, 2);
  mb_plan_free(&p);
}

/* ---- randomized: invariants and a greedy reference ---- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n) {
  /* xorshift64*: fixed seeds, the same sequence on every platform. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)(((rng_state * 2685821657736338717ull) >> 32) % n);
}

static void random_map(struct mb_register *regs, size_t n) {
  static const enum mb_type reg_types[] = {
      MB_TYPE_U16, MB_TYPE_I16, MB_TYPE_U32,      MB_TYPE_I32,
      MB_TYPE_F32, MB_TYPE_F64, MB_TYPE_BITFIELD,
  };
  uint32_t span = 8 + rnd(600); /* small spans force overlaps and merges */
  uint32_t base = rnd(2) ? 0 : 65536 - span - 4;

  for (size_t i = 0; i < n; i++) {
    enum mb_function fn = (enum mb_function)(1 + rnd(4));
    enum mb_type type =
        fn <= MB_FN_DISCRETE ? (rnd(2) ? MB_TYPE_U16 : MB_TYPE_BITFIELD) : reg_types[rnd(7)];
    regs[i] = reg(fn, (uint16_t)(base + rnd(span)), type);
  }
}

/* The reference: per function, intervals sorted by start by insertion
 * sort, then one greedy sweep counting requests. */
static size_t reference_count(const struct mb_register *regs, size_t n,
                              const struct mb_plan_limits *lim) {
  static uint32_t starts[512], ends[512];
  size_t total = 0;

  if (lim->mode == MB_PLAN_ONE_PER_REGISTER)
    return n;
  for (int fn = MB_FN_COIL; fn <= MB_FN_INPUT; fn++) {
    uint32_t limit = fn <= MB_FN_DISCRETE ? (lim->max_bits ? lim->max_bits : 2000)
                                          : (lim->max_regs ? lim->max_regs : 125);
    size_t m = 0;
    uint32_t first = 0, last = 0;

    for (size_t i = 0; i < n; i++) {
      size_t j;
      if ((int)regs[i].fn != fn)
        continue;
      for (j = m; j > 0 && starts[j - 1] > regs[i].address; j--) {
        starts[j] = starts[j - 1];
        ends[j] = ends[j - 1];
      }
      starts[j] = regs[i].address;
      ends[j] = regs[i].address + mb_register_words(&regs[i]);
      m++;
    }
    for (size_t j = 0; j < m; j++) {
      uint32_t hi = ends[j] > last ? ends[j] : last;
      bool join =
          j > 0 && (starts[j] <= last || starts[j] - last <= lim->max_gap) && hi - first <= limit;
      if (!join) {
        total++;
        first = starts[j];
        hi = ends[j];
      }
      last = hi;
    }
  }
  return total;
}

/* Checks each request: limit, edges used, no gap wider than max_gap. */
static void check_requests(size_t n, const struct mb_plan_limits *lim, const struct mb_plan *p,
                           uint64_t seed) {
  static bool used[2000];

  for (size_t q = 0; q < p->nrequests; q++) {
    const struct mb_request *req = &p->requests[q];
    bool bit = req->fn <= MB_FN_DISCRETE;
    unsigned limit =
        bit ? (lim->max_bits ? lim->max_bits : 2000) : (lim->max_regs ? lim->max_regs : 125);
    unsigned gap = 0;

    if (req->count == 0 || req->count > limit || req->count > p->max_count ||
        (uint32_t)req->start + req->count > 65536)
      fail_msg("seed %llu: request %zu count %u", (unsigned long long)seed, q,
               (unsigned)req->count);
    if (q > 0 && (p->requests[q - 1].fn > req->fn ||
                  (p->requests[q - 1].fn == req->fn && p->requests[q - 1].start > req->start)))
      fail_msg("seed %llu: request %zu out of order", (unsigned long long)seed, q);
    memset(used, 0, req->count);
    for (size_t i = 0; i < n; i++)
      if (p->slots[i].request == q)
        memset(used + p->slots[i].offset, 1, p->slots[i].words);
    if (!used[0] || !used[req->count - 1])
      fail_msg("seed %llu: request %zu reads unused edges", (unsigned long long)seed, q);
    for (unsigned k = 0; k < req->count; k++) {
      gap = used[k] ? 0 : gap + 1;
      if (gap > lim->max_gap)
        fail_msg("seed %llu: request %zu gap over %u", (unsigned long long)seed, q,
                 (unsigned)lim->max_gap);
    }
  }
}

/* Checks each register: in one request of its function, whole, at its
 * address. */
static void check_slots(const struct mb_register *regs, size_t n, const struct mb_plan *p,
                        uint64_t seed) {
  assert_int_equal(p->nslots, n);
  for (size_t i = 0; i < n; i++) {
    const struct mb_slot *s = &p->slots[i];
    const struct mb_request *req;
    if (s->request >= p->nrequests)
      fail_msg("seed %llu: register %zu in no request", (unsigned long long)seed, i);
    req = &p->requests[s->request];
    if (req->fn != regs[i].fn || s->words != mb_register_words(&regs[i]) ||
        (uint32_t)req->start + s->offset != regs[i].address ||
        (uint32_t)s->offset + s->words > req->count)
      fail_msg("seed %llu: register %zu misplaced", (unsigned long long)seed, i);
  }
}

static void test_random_plans(void **state) {
  static struct mb_register regs[512];
  (void)state;

  for (uint64_t seed = 1; seed <= 3000; seed++) {
    size_t n;
    struct mb_plan_limits lim;
    struct mb_plan p;
    char err[160];

    rng_state = seed * 0x9E3779B97F4A7C15ull;
    n = rnd(2) ? rnd(20) : rnd(512);
    random_map(regs, n);
    lim.max_regs = (uint16_t)(rnd(3) ? 4 + rnd(122) : 0);
    lim.max_bits = (uint16_t)(rnd(3) ? 1 + rnd(2000) : 0);
    lim.max_gap = (uint16_t)(rnd(4) ? rnd(12) : rnd(300));
    lim.mode = rnd(8) ? MB_PLAN_COALESCE : MB_PLAN_ONE_PER_REGISTER;
    if (mb_plan_build(regs, n, &lim, &p, err, sizeof(err)) != 0)
      fail_msg("seed %llu: %s", (unsigned long long)seed, err);
    check_slots(regs, n, &p, seed);
    check_requests(n, &lim, &p, seed);
    if (p.nrequests != reference_count(regs, n, &lim))
      fail_msg("seed %llu: %zu requests, reference %zu", (unsigned long long)seed, p.nrequests,
               reference_count(regs, n, &lim));
    mb_plan_free(&p);
  }
}

/* The same registers in another order give the same requests. */
static void test_deterministic(void **state) {
  static struct mb_register regs[300], shuffled[300];
  struct mb_plan a, b;
  struct mb_plan_limits lim = {.max_regs = 30, .max_gap = 3};
  (void)state;

  rng_state = 42;
  random_map(regs, 300);
  memcpy(shuffled, regs, sizeof(regs));
  for (size_t i = 299; i > 0; i--) {
    size_t j = rnd((uint32_t)i + 1);
    struct mb_register t = shuffled[i];
    shuffled[i] = shuffled[j];
    shuffled[j] = t;
  }
  assert_int_equal(mb_plan_build(regs, 300, &lim, &a, NULL, 0), 0);
  assert_int_equal(mb_plan_build(shuffled, 300, &lim, &b, NULL, 0), 0);
  assert_int_equal(a.nrequests, b.nrequests);
  assert_memory_equal(a.requests, b.requests, a.nrequests * sizeof(*a.requests));
  mb_plan_free(&a);
  mb_plan_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adjacent_and_gaps),
      cmocka_unit_test(test_limit_never_splits_a_value),
      cmocka_unit_test(test_functions_apart_and_sorted),
      cmocka_unit_test(test_coils_use_bit_limit),
      cmocka_unit_test(test_overlapping_registers_share),
      cmocka_unit_test(test_one_per_register),
      cmocka_unit_test(test_empty_and_free),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_random_plans),
      cmocka_unit_test(test_deterministic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
