/*
 * mb_plan.c: groups a register map into Modbus read requests. Registers are
 * sorted by (function, address, index) and swept once: each joins the open
 * request if the gap and the per-request limit allow, else opens a new one.
 * A value is always placed whole in one request. Runs at map load time, not
 * on the scrape path.
 */
#include "mb_plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fn_is_bit(enum mb_function fn) { return fn == MB_FN_COIL || fn == MB_FN_DISCRETE; }

/* Fills err (if not NULL) from fmt and returns -EINVAL. */
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (err != NULL && errlen > 0) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* Checks the limits and fills in the defaults for zeroes. */
static int resolve_limits(const struct mb_plan_limits *in, struct mb_plan_limits *out, char *err,
                          size_t errlen) {
  if (in != NULL)
    *out = *in;
  else
    memset(out, 0, sizeof(*out));
  if (out->max_regs == 0)
    out->max_regs = MB_MAX_READ_REGS;
  if (out->max_bits == 0)
    out->max_bits = MB_MAX_READ_BITS;
  if (out->max_regs > MB_MAX_READ_REGS)
    return fail(err, errlen, "max_regs_per_request %u exceeds the Modbus limit of %d",
                (unsigned)out->max_regs, MB_MAX_READ_REGS);
  if (out->max_bits > MB_MAX_READ_BITS)
    return fail(err, errlen, "max_bits_per_request %u exceeds the Modbus limit of %d",
                (unsigned)out->max_bits, MB_MAX_READ_BITS);
  if (out->mode != MB_PLAN_COALESCE && out->mode != MB_PLAN_ONE_PER_REGISTER)
    return fail(err, errlen, "unknown plan mode %d", (int)out->mode);
  return 0;
}

static unsigned limit_for(const struct mb_plan_limits *lim, enum mb_function fn) {
  return fn_is_bit(fn) ? lim->max_bits : lim->max_regs;
}

/* Checks that r can be placed in a request on its own. */
static int check_register(const struct mb_register *r, const struct mb_plan_limits *lim, char *err,
                          size_t errlen) {
  char where[MB_NAME_MAX + 48];
  unsigned words = mb_register_words(r);

  mb_register_where(r, where, sizeof(where));
  if (words == 0)
    return fail(err, errlen, "%s: unknown function or type", where);
  if ((uint32_t)r->address + words > 65536u)
    return fail(err, errlen, "%s: value runs past address 65535", where);
  if (words > limit_for(lim, r->fn))
    return fail(err, errlen, "%s: %s needs %u words, %s is %u", where, mb_type_name(r->type), words,
                fn_is_bit(r->fn) ? "max_bits_per_request" : "max_regs_per_request",
                limit_for(lim, r->fn));
  return 0;
}

/* Sort key: function, then address, then index; all keys distinct. */
static uint64_t sort_key(const struct mb_register *r, size_t index) {
  return ((uint64_t)r->fn << 48) | ((uint64_t)r->address << 32) | (uint64_t)(uint32_t)index;
}

static int cmp_key(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* True if r may join the open request req (whose exclusive end is end). */
static bool can_join(const struct mb_request *req, uint32_t end, const struct mb_register *r,
                     unsigned words, const struct mb_plan_limits *lim) {
  uint32_t r_end = (uint32_t)r->address + words;
  uint32_t new_end = r_end > end ? r_end : end;

  if (lim->mode == MB_PLAN_ONE_PER_REGISTER || r->fn != req->fn)
    return false;
  if (r->address > end && r->address - end > lim->max_gap)
    return false;
  return new_end - req->start <= limit_for(lim, r->fn);
}

/* The sweep: keys are sorted; fills plan->requests and plan->slots. */
static void sweep(const struct mb_register *regs, const uint64_t *keys, size_t n,
                  const struct mb_plan_limits *lim, struct mb_plan *plan) {
  struct mb_request *req = NULL;
  uint32_t end = 0;

  for (size_t k = 0; k < n; k++) {
    size_t i = (size_t)(keys[k] & 0xFFFFFFFFu);
    const struct mb_register *r = &regs[i];
    unsigned words = mb_register_words(r);
    uint32_t r_end = (uint32_t)r->address + words;

    if (req == NULL || !can_join(req, end, r, words, lim)) {
      req = &plan->requests[plan->nrequests++];
      req->fn = r->fn;
      req->start = r->address;
      end = r->address;
    }
    if (r_end > end)
      end = r_end;
    req->count = (uint16_t)(end - req->start);
    if (req->count > plan->max_count)
      plan->max_count = req->count;
    plan->slots[i].request = (uint32_t)(req - plan->requests);
    plan->slots[i].offset = (uint16_t)(r->address - req->start);
    plan->slots[i].words = (uint16_t)words;
  }
}

int mb_plan_build(const struct mb_register *regs, size_t nregs, const struct mb_plan_limits *lim,
                  struct mb_plan *plan, char *err, size_t errlen) {
  struct mb_plan_limits l;
  uint64_t *keys;
  int rc;

  memset(plan, 0, sizeof(*plan));
  rc = resolve_limits(lim, &l, err, errlen);
  if (rc != 0)
    return rc;
  if (nregs > UINT32_MAX)
    return fail(err, errlen, "%zu registers: too many", nregs);
  for (size_t i = 0; i < nregs; i++) {
    rc = check_register(&regs[i], &l, err, errlen);
    if (rc != 0)
      return rc;
  }
  if (nregs == 0)
    return 0;

  keys = calloc(nregs, sizeof(*keys));
  if (keys == NULL)
    goto fail_keys;
  plan->requests = calloc(nregs, sizeof(*plan->requests));
  if (plan->requests == NULL)
    goto fail_requests;
  plan->slots = calloc(nregs, sizeof(*plan->slots));
  if (plan->slots == NULL)
    goto fail_slots;

  for (size_t i = 0; i < nregs; i++)
    keys[i] = sort_key(&regs[i], i);
  qsort(keys, nregs, sizeof(*keys), cmp_key);
  plan->nslots = nregs;
  sweep(regs, keys, nregs, &l, plan);
  free(keys);
  return 0;

fail_slots:
  free(plan->requests);
fail_requests:
  free(keys);
fail_keys:
  memset(plan, 0, sizeof(*plan));
  fail(err, errlen, "planning %zu registers: out of memory", nregs);
  return -ENOMEM;
}

void mb_plan_free(struct mb_plan *plan) {
  if (plan == NULL)
    return;
  free(plan->requests);
  free(plan->slots);
  memset(plan, 0, sizeof(*plan));
}
