/* Fuzzes Modbus value decoding (agent/modbus/mb_decode.c, with the register checks
 * of agent/modbus/mb_map.c): the input is a register definition (function, type,
 * order, address, scale, offset, range, sentinel and named bits, any bit
 * patterns, NaN included) followed by the words a device answered.
 * mb_register_check() must refuse what mb_decode() cannot take; for the
 * registers it accepts, mb_decode() must decide a status for the words (the
 * right number, or any other number: BAD_LENGTH) without UB. Seeds: a
 * register per type and order, written by tests/fuzz/corpus/make_seeds.py. */
#include <errno.h>
#include <math.h>

#include "fuzz_common.h"
#include "modbus/mb_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_reader in = {data, size};
  struct mb_register r;
  char err[256];

  mb_register_init(&r);
  snprintf(r.name, sizeof(r.name), "fuzz.value");
  snprintf(r.unit, sizeof(r.unit), "Cel");
  r.fn = (enum mb_function)(fuzz_u8(&in) % 6); /* 0 and 5: unknown */
  r.type = (enum mb_type)(fuzz_u8(&in) % 8);   /* 7: unknown */
  r.order = (enum mb_order)(fuzz_u8(&in) % 5); /* 4: unknown */
  r.address = fuzz_u16(&in);
  uint8_t flags = fuzz_u8(&in);
  r.scale = (flags & 1) ? fuzz_double(&in) : 0.1;
  r.offset = (flags & 2) ? fuzz_double(&in) : 0;
  r.has_range = (flags & 4) != 0;
  if (r.has_range) {
    r.min = fuzz_double(&in);
    r.max = fuzz_double(&in);
  }
  r.has_sentinel = (flags & 8) != 0;
  if (r.has_sentinel)
    r.sentinel = fuzz_u64(&in);
  if (flags & 16) {
    r.nbits = fuzz_u8(&in) % (MB_BITS_MAX + 2); /* one past the array: refused */
    for (size_t i = 0; i < r.nbits && i < MB_BITS_MAX; i++) {
      r.bits[i].bit = fuzz_u8(&in) % 18;
      r.bits[i].active_low = fuzz_u8(&in) & 1;
      snprintf(r.bits[i].name, sizeof(r.bits[i].name), "bit%zu", i);
    }
  }
  if (mb_register_check(&r, err, sizeof(err)) != 0) {
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && err[0] != '\0');
    return 0;
  }
  unsigned need = mb_register_words(&r);
  FUZZ_ASSERT(need >= 1 && need <= 4);
  FUZZ_ASSERT(mb_function_name(r.fn) && mb_type_name(r.type) && mb_order_name(r.order));

  uint16_t words[8];
  size_t nwords = (flags & 32) ? fuzz_u8(&in) % 8 : need;
  for (size_t i = 0; i < nwords; i++)
    words[i] = fuzz_u16(&in);
  struct mb_value v;
  int rc = mb_decode(&r, words, nwords, &v, err, sizeof(err));
  FUZZ_ASSERT(mb_status_name(v.status) != NULL);
  if (nwords != need) {
    FUZZ_ASSERT(rc == -EINVAL && v.status == MB_ST_BAD_LENGTH);
    return 0;
  }
  FUZZ_ASSERT(rc == 0);
  switch (v.status) {
  case MB_ST_OK:
    FUZZ_ASSERT(isfinite(v.value));
    if (r.has_range && r.type != MB_TYPE_BITFIELD)
      FUZZ_ASSERT(v.value >= r.min && v.value <= r.max);
    break;
  case MB_ST_ABSENT: FUZZ_ASSERT(isnan(v.value) && r.has_sentinel && v.raw == r.sentinel); break;
  case MB_ST_OUT_OF_RANGE: FUZZ_ASSERT(r.has_range && isfinite(v.value)); break;
  case MB_ST_NOT_FINITE: FUZZ_ASSERT(!isfinite(v.value)); break;
  case MB_ST_BAD_LENGTH: FUZZ_ASSERT(0);
  }
  if (r.type != MB_TYPE_BITFIELD)
    FUZZ_ASSERT(v.active == 0);
  if (need < 4)
    FUZZ_ASSERT(v.raw >> (16 * need) == 0);
  return 0;
}
