/* Fuzzes Modbus request planning (agent/modbus/mb_plan.c): the input is a device's
 * limits (max_regs, max_bits, max_gap, mode: any values, out of spec ones
 * included) and up to 256 registers (function, type, address: unknown
 * functions and types, values running past 65535 included). When
 * mb_plan_build() accepts them the plan must keep every promise of
 * mb_plan.h: requests sorted, within their function's limit and the address
 * space, every register's value whole inside its own request at the right
 * offset, max_count the largest request. Any violation aborts. */
#include <errno.h>

#include "fuzz_common.h"
#include "modbus/mb_plan.h"

#define MAX_REGS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_reader in = {data, size};
  static struct mb_register regs[MAX_REGS];
  struct mb_plan_limits lim = {0};
  char err[256];

  lim.max_regs = fuzz_u16(&in) % 140;
  lim.max_bits = fuzz_u16(&in) % 2100;
  lim.max_gap = fuzz_u16(&in);
  lim.mode = (enum mb_plan_mode)(fuzz_u8(&in) % 3);
  size_t n = 0;
  while (in.n >= 4 && n < MAX_REGS) {
    struct mb_register *r = &regs[n];
    mb_register_init(r);
    snprintf(r->name, sizeof(r->name), "r%zu", n);
    r->fn = (enum mb_function)(fuzz_u8(&in) % 5);
    r->type = (enum mb_type)(fuzz_u8(&in) % 8);
    r->address = fuzz_u16(&in);
    n++;
  }

  struct mb_plan plan;
  int rc = mb_plan_build(regs, n, &lim, &plan, err, sizeof(err));
  if (rc != 0) {
    FUZZ_ASSERT(rc == -EINVAL || rc == -ENOMEM);
    FUZZ_ASSERT(plan.requests == NULL && plan.slots == NULL && plan.nrequests == 0);
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && err[0] != '\0');
    return 0;
  }
  unsigned max_regs = lim.max_regs ? lim.max_regs : MB_MAX_READ_REGS;
  unsigned max_bits = lim.max_bits ? lim.max_bits : MB_MAX_READ_BITS;
  FUZZ_ASSERT(plan.nslots == n && plan.nrequests <= n);
  uint16_t max_count = 0;
  for (size_t q = 0; q < plan.nrequests; q++) {
    const struct mb_request *req = &plan.requests[q];
    bool bits = req->fn == MB_FN_COIL || req->fn == MB_FN_DISCRETE;
    FUZZ_ASSERT(req->count >= 1 && req->count <= (bits ? max_bits : max_regs));
    FUZZ_ASSERT((uint32_t)req->start + req->count <= 65536u);
    if (q > 0) {
      const struct mb_request *prev = &plan.requests[q - 1];
      FUZZ_ASSERT(prev->fn < req->fn || (prev->fn == req->fn && prev->start <= req->start));
    }
    if (req->count > max_count)
      max_count = req->count;
  }
  FUZZ_ASSERT(plan.max_count == max_count);
  for (size_t i = 0; i < n; i++) {
    const struct mb_slot *s = &plan.slots[i];
    FUZZ_ASSERT(s->request < plan.nrequests);
    const struct mb_request *req = &plan.requests[s->request];
    FUZZ_ASSERT(req->fn == regs[i].fn);
    FUZZ_ASSERT(s->words == mb_register_words(&regs[i]));
    FUZZ_ASSERT((uint32_t)req->start + s->offset == regs[i].address);
    FUZZ_ASSERT((uint32_t)s->offset + s->words <= req->count);
  }
  if (lim.mode == MB_PLAN_ONE_PER_REGISTER)
    FUZZ_ASSERT(plan.nrequests == n);
  mb_plan_free(&plan);
  mb_plan_free(&plan); /* safe twice */
  return 0;
}
