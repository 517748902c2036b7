/*
 * mb_decode.h: turns the 16-bit words read for one map register into a
 * value with a status. Our own decoding by explicit shifts, independent of
 * the CPU's byte order and of libmodbus's float helpers (which differ across
 * versions). Pure: no I/O, no allocation, safe to call from any thread.
 */
#ifndef RP_AGENT_MB_DECODE_H
#define RP_AGENT_MB_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "mb_map.h"

enum mb_status {
  MB_ST_OK = 0,       /* value is valid */
  MB_ST_ABSENT,       /* raw equals the register's sentinel: no sensor */
  MB_ST_OUT_OF_RANGE, /* value is outside [min, max]; value still set */
  MB_ST_NOT_FINITE,   /* float NaN or +-inf (or the scaled value is) */
  MB_ST_BAD_LENGTH,   /* nwords is not what the register needs */
};

struct mb_value {
  /* raw * scale + offset. NAN when ABSENT or BAD_LENGTH; the non-finite
     * value when NOT_FINITE. For a BITFIELD, the word itself, unscaled. */
  double value;
  /* The register's bits assembled in value order (see mb_map.h), zero
     * extended: what the sentinel is compared with. 0 when BAD_LENGTH. */
  uint64_t raw;
  enum mb_status status;
  /* BITFIELD only: the named bits whose condition holds, by bit position
     * (bit n set = the struct mb_bit with .bit == n is active). Else 0. */
  uint16_t active;
};

/*
 * Decodes words[0..nwords) for register r into *out.
 *
 * words are the register's words in address order, as read (holding/input
 * registers), or for a coil/discrete input one word holding the bit (0 =
 * off, anything else = on). nwords must equal mb_register_words(r).
 * Steps: assemble raw by r->order; if r->has_sentinel and raw == sentinel,
 * ABSENT; interpret raw as r->type; scale and offset (offset skipped when 0,
 * so -0.0 survives); NOT_FINITE if not finite; OUT_OF_RANGE if r->has_range
 * and the value is outside [min, max] (not checked for bitfields).
 *
 * Returns 0 when a status was decided (out->status says which, OK or a data
 * condition; for any status but OK err, if not NULL, says what, e.g.
 * "register cdu.supply_temp @ input 130: 52.3 outside [17, 45]").
 * Returns -EINVAL for a length mismatch (out->status = MB_ST_BAD_LENGTH,
 * err e.g. "...: f32 needs 2 words, got 1") or an unknown function or type
 * (out->status = MB_ST_BAD_LENGTH too). r is assumed to have passed
 * mb_register_check(); r, words, out are not NULL (words may be NULL when
 * nwords is 0).
 */
int mb_decode(const struct mb_register *r, const uint16_t *words, size_t nwords,
              struct mb_value *out, char *err, size_t errlen);

/* "ok", "absent", "out_of_range", "not_finite", "bad_length"; NULL for a
 * value outside the enum. Static strings. */
const char *mb_status_name(enum mb_status status);

#endif /* RP_AGENT_MB_DECODE_H */
