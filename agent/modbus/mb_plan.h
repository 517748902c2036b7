/*
 * mb_plan.h: request coalescing for the Modbus collector. From a device's
 * register map, computed once when the map is loaded, a plan of read
 * requests: registers of the same function that are adjacent or close are
 * read by one request, within the device's per-request limit, and no value
 * is ever split across two requests. No I/O; allocates only in
 * mb_plan_build().
 */
#ifndef RP_AGENT_MB_PLAN_H
#define RP_AGENT_MB_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "mb_map.h"

/* Modbus spec limits on one read request. */
#define MB_MAX_READ_REGS 125  /* FC3, FC4 */
#define MB_MAX_READ_BITS 2000 /* FC1, FC2 */

enum mb_plan_mode {
  MB_PLAN_COALESCE = 0,         /* as few requests as the limits allow */
  MB_PLAN_ONE_PER_REGISTER = 1, /* no coalescing: the benchmark baseline */
};

/* A device's limits. A zeroed struct means: spec maxima, only adjacent
 * registers merged, coalescing on. */
struct mb_plan_limits {
  uint16_t max_regs; /* words per FC3/FC4 request, 1..125; 0 = 125 */
  uint16_t max_bits; /* bits per FC1/FC2 request, 1..2000; 0 = 2000 */
  /* Unused words (or bits) a request may read across between the end of
     * one value and the start of the next; 0 = merge only adjacent ones. */
  uint16_t max_gap;
  enum mb_plan_mode mode;
};

/* One read: function fn, count words (or bits) from address start. */
struct mb_request {
  enum mb_function fn;
  uint16_t start;
  uint16_t count; /* 1..the limit for fn */
};

/* Where one register's value is in the plan's results: words
 * [offset, offset + words) of requests[request]'s reply. */
struct mb_slot {
  uint32_t request; /* index into mb_plan.requests */
  uint16_t offset;  /* register address - request start */
  uint16_t words;   /* mb_register_words() of the register */
};

struct mb_plan {
  struct mb_request *requests; /* sorted by function, then start */
  size_t nrequests;
  struct mb_slot *slots; /* slots[i] is regs[i]'s, for the regs given */
  size_t nslots;         /* = nregs */
  uint16_t max_count;    /* largest request count: one reply buffer's size */
};

/*
 * Plans the reads of regs[0..nregs) under *lim (NULL = a zeroed struct).
 *
 * Requests come out sorted by function then start address, deterministic
 * for the same input (ties between registers at one address are broken by
 * their index). In MB_PLAN_COALESCE mode registers are taken in that order
 * and each joins the open request when it has the same function, starts at
 * most max_gap past the request's end (or overlaps it), and the request
 * then still fits the limit; otherwise it opens a new request. In
 * MB_PLAN_ONE_PER_REGISTER mode each register gets its own request.
 *
 * Ownership: on success *plan owns two arrays allocated here; release them
 * with mb_plan_free(plan). regs is only read, not kept. With nregs == 0 the
 * plan is empty and its arrays are NULL.
 *
 * Returns 0, or on failure leaves *plan zeroed (nothing to free) and returns
 * -EINVAL with err (if not NULL) saying what and where (a limit above the
 * spec maximum, a register with an unknown function or type, running past
 * address 65535, or larger than its function's limit, e.g. "register
 * cdu.energy @ holding 40: f64 needs 4 words, max_regs_per_request is 2"),
 * or -ENOMEM.
 */
int mb_plan_build(const struct mb_register *regs, size_t nregs, const struct mb_plan_limits *lim,
                  struct mb_plan *plan, char *err, size_t errlen);

/* Frees the arrays of a plan from mb_plan_build() and zeroes *plan. Accepts
 * NULL and a zeroed plan; safe to call twice. */
void mb_plan_free(struct mb_plan *plan);

#endif /* RP_AGENT_MB_PLAN_H */
