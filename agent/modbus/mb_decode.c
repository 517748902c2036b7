/*
 * mb_decode.c: decodes one map register's words into a value and a status.
 * Words are assembled into a raw bit pattern by explicit shifts in the
 * register's word/byte order (mb_map.h), so the result does not depend on
 * the CPU's endianness; then the sentinel, type, scale/offset and range are
 * applied in that order. No I/O, no allocation.
 */
#include "mb_decode.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(float) == 4, "f32 decoding needs a 4-byte float");
_Static_assert(sizeof(double) == 8, "f64 decoding needs an 8-byte double");

const char *mb_status_name(enum mb_status status) {
  switch (status) {
  case MB_ST_OK: return "ok";
  case MB_ST_ABSENT: return "absent";
  case MB_ST_OUT_OF_RANGE: return "out_of_range";
  case MB_ST_NOT_FINITE: return "not_finite";
  case MB_ST_BAD_LENGTH: return "bad_length";
  }
  return NULL;
}

/* Fills err with "register NAME @ FN ADDR: <fmt...>" if err is not NULL. */
static void explain(const struct mb_register *r, char *err, size_t errlen, const char *fmt, ...) {
  char where[MB_NAME_MAX + 48];
  char what[160];
  va_list ap;

  if (err == NULL || errlen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  snprintf(err, errlen, "%s: %s", mb_register_where(r, where, sizeof(where)), what);
}

/* The n words (n <= 4) as one integer, most significant byte first. */
static uint64_t assemble(const uint16_t *words, size_t n, enum mb_order order) {
  bool swap_bytes = order == MB_ORDER_BADC || order == MB_ORDER_DCBA;
  bool low_word_first = order == MB_ORDER_CDAB || order == MB_ORDER_DCBA;
  uint64_t raw = 0;

  for (size_t i = 0; i < n; i++) {
    /* i counts from the most significant word. */
    uint16_t w = words[low_word_first ? n - 1 - i : i];
    if (swap_bytes)
      w = (uint16_t)((w >> 8) | (w << 8));
    raw = (raw << 16) | w;
  }
  return raw;
}

static double f32_from_bits(uint64_t raw) {
  uint32_t bits = (uint32_t)raw;
  float f;
  memcpy(&f, &bits, sizeof(f));
  return (double)f;
}

static double f64_from_bits(uint64_t raw) {
  double d;
  memcpy(&d, &raw, sizeof(d));
  return d;
}

/* raw read as r->type, before scale and offset. */
static double interpret(enum mb_type type, uint64_t raw) {
  switch (type) {
  case MB_TYPE_I16: return raw >= 0x8000u ? (double)((int32_t)raw - 0x10000) : (double)raw;
  case MB_TYPE_I32:
    return raw >= 0x80000000u ? (double)((int64_t)raw - 0x100000000LL) : (double)raw;
  case MB_TYPE_F32: return f32_from_bits(raw);
  case MB_TYPE_F64: return f64_from_bits(raw);
  case MB_TYPE_U16:
  case MB_TYPE_U32:
  case MB_TYPE_BITFIELD: break;
  }
  return (double)raw;
}

/* The named bits of a bitfield whose condition holds, by bit position. */
static uint16_t active_bits(const struct mb_register *r, uint64_t raw) {
  uint16_t active = 0;
  size_t n = r->nbits < MB_BITS_MAX ? r->nbits : MB_BITS_MAX;

  for (size_t i = 0; i < n; i++) {
    unsigned bit = r->bits[i].bit;
    if (bit >= 16)
      continue;
    bool set = (raw >> bit) & 1u;
    if (set != r->bits[i].active_low)
      active |= (uint16_t)(1u << bit);
  }
  return active;
}

/* Sets out for a register that could not be decoded; returns -EINVAL. */
static int bad_length(const struct mb_register *r, size_t nwords, struct mb_value *out, char *err,
                      size_t errlen) {
  unsigned need = mb_register_words(r);
  const char *type = mb_type_name(r->type);

  out->status = MB_ST_BAD_LENGTH;
  if (need == 0)
    explain(r, err, errlen, "unknown function or type");
  else
    explain(r, err, errlen, "%s needs %u word%s, got %zu", type, need, need == 1 ? "" : "s",
            nwords);
  return -EINVAL;
}

static void check_range(const struct mb_register *r, struct mb_value *out, char *err,
                        size_t errlen) {
  if (!r->has_range || r->type == MB_TYPE_BITFIELD)
    return;
  if (out->value >= r->min && out->value <= r->max)
    return;
  out->status = MB_ST_OUT_OF_RANGE;
  explain(r, err, errlen, "%g%s%s outside [%g, %g]", out->value, r->unit[0] != '\0' ? " " : "",
          r->unit, r->min, r->max);
}

int mb_decode(const struct mb_register *r, const uint16_t *words, size_t nwords,
              struct mb_value *out, char *err, size_t errlen) {
  unsigned need = mb_register_words(r);
  bool is_bit = r->fn == MB_FN_COIL || r->fn == MB_FN_DISCRETE;

  out->value = NAN;
  out->raw = 0;
  out->active = 0;
  if (need == 0 || nwords != need)
    return bad_length(r, nwords, out, err, errlen);

  out->raw = is_bit ? (words[0] != 0) : assemble(words, need, r->order);
  if (r->has_sentinel && out->raw == r->sentinel) {
    out->status = MB_ST_ABSENT;
    explain(r, err, errlen, "raw 0x%llX is the sentinel: sensor absent",
            (unsigned long long)out->raw);
    return 0;
  }

  out->status = MB_ST_OK;
  if (r->type == MB_TYPE_BITFIELD) {
    out->value = (double)out->raw;
    out->active = active_bits(r, out->raw);
    return 0;
  }

  out->value = interpret(r->type, out->raw) * r->scale;
  if (r->offset != 0.0)
    out->value += r->offset;
  if (!isfinite(out->value)) {
    out->status = MB_ST_NOT_FINITE;
    explain(r, err, errlen, "%s value is %g (raw 0x%llX)", mb_type_name(r->type), out->value,
            (unsigned long long)out->raw);
    return 0;
  }
  check_range(r, out, err, errlen);
  return 0;
}
