/*
 * mb_map.h: the Modbus register map model. A CDU's map is data: one
 * struct mb_register per value (metric name, unit, function, address, type,
 * word/byte order, scale, offset, optional "sensor absent" sentinel, optional
 * valid range, and for status words a table of named bits). The YAML map
 * loader fills these; mb_decode.h turns register words into values and
 * mb_plan.h groups registers into read requests. No I/O, no allocation.
 *
 * Byte and word order. A value of n bytes is named by its bytes from most
 * significant (A) to least significant; the order says how they sit in the
 * registers as read off the wire (each register is a 16-bit word; register 0
 * is the lowest address). The name is read as two independent choices:
 *
 *   word order: most significant word first (ABCD, BADC) or last (CDAB, DCBA);
 *   byte order inside each word: high byte first (ABCD, CDAB) or low (BADC, DCBA).
 *
 *   order  4 bytes (u32/i32/f32)      8 bytes (f64), bytes A..H
 *   ABCD   [AB] [CD]  big-endian       [AB] [CD] [EF] [GH]
 *   CDAB   [CD] [AB]  word-swapped     [GH] [EF] [CD] [AB]  (all words reversed)
 *   BADC   [BA] [DC]  byte-swapped     [BA] [DC] [FE] [HG]
 *   DCBA   [DC] [BA]  little-endian    [HG] [FE] [DC] [BA]
 *
 * One-word values (u16, i16, bitfield) have no word order: ABCD and CDAB read
 * the word as sent (high byte first), BADC and DCBA swap its two bytes.
 * Coils and discrete inputs are single bits; their order is ignored.
 *
 * Addresses are 0-based protocol addresses (documented "30001" = input
 * register 0); converting from a map's 1-based notation is the loader's job.
 */
#ifndef RP_AGENT_MB_MAP_H
#define RP_AGENT_MB_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB_NAME_MAX 64     /* metric name, with its NUL */
#define MB_UNIT_MAX 16     /* unit, with its NUL */
#define MB_BIT_NAME_MAX 32 /* a status bit's name, with its NUL */
#define MB_BITS_MAX 16     /* named bits per bitfield register */

/* The Modbus read function; the values are the function codes. */
enum mb_function {
  MB_FN_COIL = 1,     /* FC1, read coils: 1 bit each */
  MB_FN_DISCRETE = 2, /* FC2, read discrete inputs: 1 bit each */
  MB_FN_HOLDING = 3,  /* FC3, read holding registers: 16 bits each */
  MB_FN_INPUT = 4,    /* FC4, read input registers: 16 bits each */
};

enum mb_type {
  MB_TYPE_U16 = 0,  /* 1 word, unsigned */
  MB_TYPE_I16,      /* 1 word, two's complement */
  MB_TYPE_U32,      /* 2 words, unsigned */
  MB_TYPE_I32,      /* 2 words, two's complement */
  MB_TYPE_F32,      /* 2 words, IEEE 754 binary32 */
  MB_TYPE_F64,      /* 4 words, IEEE 754 binary64 */
  MB_TYPE_BITFIELD, /* 1 word of status bits, see struct mb_bit */
};

/* See the table at the top of this file. */
enum mb_order {
  MB_ORDER_ABCD = 0,
  MB_ORDER_CDAB,
  MB_ORDER_BADC,
  MB_ORDER_DCBA,
};

/* Accepted names, for the loader's "expected one of" messages. */
#define MB_FUNCTION_NAMES "coil, discrete, holding, input"
#define MB_TYPE_NAMES "u16, i16, u32, i32, f32, f64, bitfield"
#define MB_ORDER_NAMES "ABCD, CDAB, BADC, DCBA"

/* One named bit of a BITFIELD register. The bit is "active" (the named
 * condition holds) when it reads 1, or 0 if active_low is set. */
struct mb_bit {
  uint8_t bit; /* 0 = least significant bit of the word; < 16 */
  bool active_low;
  char name[MB_BIT_NAME_MAX]; /* e.g. "leak", "pump_fault" */
};

/*
 * One value in a device's map. value = raw * scale + offset, where raw is the
 * integer or float the registers hold (see mb_decode.h). Start from
 * mb_register_init() so scale is 1 and the optional parts are off.
 *
 * Coils and discrete inputs take type U16 (value 0 or 1, then scaled) or
 * BITFIELD (bit 0 may be named, e.g. a "leak" discrete input).
 */
struct mb_register {
  char name[MB_NAME_MAX]; /* metric name, e.g. "cdu.supply_temp" */
  char unit[MB_UNIT_MAX]; /* e.g. "degC", "l/min", "Pa"; may be empty */
  enum mb_function fn;
  uint16_t address; /* 0-based protocol address of the first word */
  enum mb_type type;
  enum mb_order order;
  double scale;  /* finite, non-zero */
  double offset; /* finite */

  /* Raw bit pattern (after ordering, before sign or float interpretation,
     * e.g. 0xFFFF, or 0xFFFFFFFF for a 2-word value) meaning "sensor absent". */
  bool has_sentinel;
  uint64_t sentinel;

  /* Valid range of the scaled value, inclusive. */
  bool has_range;
  double min, max;

  /* BITFIELD only: the named bits, bits[0..nbits). */
  struct mb_bit bits[MB_BITS_MAX];
  size_t nbits;
};

/* Sets *r to the defaults: empty name and unit, holding register 0, u16,
 * ABCD, scale 1, offset 0, no sentinel, no range, no bits. */
void mb_register_init(struct mb_register *r);

/* Registers (16-bit words) a value of this type occupies: 1, 2 or 4;
 * 0 for an unknown type. */
unsigned mb_type_words(enum mb_type type);

/* Protocol units r occupies in its address space: 1 for a coil or discrete
 * input (one bit), else mb_type_words(r->type); 0 if fn or type is unknown. */
unsigned mb_register_words(const struct mb_register *r);

/*
 * Checks that *r is a register mb_decode() and mb_plan_build() accept: name
 * set, known function/type/order, the value fits below address 65536, coils
 * and discretes are u16 or bitfield, scale finite and non-zero, offset
 * finite, min <= max, the sentinel fits the type's width, bits only on a
 * bitfield, each bit < 16, named, and not listed twice.
 * Returns 0, or -EINVAL with err (if not NULL) saying what and where, e.g.
 * "register cdu.flow @ input 12: scale must be finite and non-zero".
 */
int mb_register_check(const struct mb_register *r, char *err, size_t errlen);

/* Writes "register NAME @ FUNCTION ADDRESS" (e.g. "register cdu.supply_temp
 * @ input 130") to buf, truncated to len; the prefix of the messages of
 * mb_register_check(), mb_decode() and mb_plan_build(). Returns buf. */
char *mb_register_where(const struct mb_register *r, char *buf, size_t len);

/*
 * Name <-> enum converters for the map loader. The from_name functions match
 * case-insensitively, set *out and return 0, or return -EINVAL (leaving *out
 * alone) for NULL or an unknown name. Accepted:
 *   function: coil (coils), discrete (discrete_input), holding
 *             (holding_register), input (input_register)
 *   type:     u16 i16 u32 i32 f32 f64 bitfield
 *             (also uint16 int16 uint32 int32 float32 float64)
 *   order:    ABCD CDAB BADC DCBA
 * The name functions return the canonical (first listed) name as a static
 * string, or NULL for a value outside the enum.
 */
int mb_function_from_name(const char *name, enum mb_function *out);
int mb_type_from_name(const char *name, enum mb_type *out);
int mb_order_from_name(const char *name, enum mb_order *out);
const char *mb_function_name(enum mb_function fn);
const char *mb_type_name(enum mb_type type);
const char *mb_order_name(enum mb_order order);

#endif /* RP_AGENT_MB_MAP_H */
