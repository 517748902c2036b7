/*
 * mb_map.c: the Modbus register map model's helpers: defaults, sizes,
 * validation of one register, and the name <-> enum tables the YAML map
 * loader uses. No I/O, no allocation.
 */
#include "mb_map.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct mb_name {
  const char *name;
  int value;
};

/* Canonical name first for each value; aliases after. */
static const struct mb_name fn_names[] = {
    {"coil", MB_FN_COIL},
    {"discrete", MB_FN_DISCRETE},
    {"holding", MB_FN_HOLDING},
    {"input", MB_FN_INPUT},
    {"coils", MB_FN_COIL},
    {"discrete_input", MB_FN_DISCRETE},
    {"holding_register", MB_FN_HOLDING},
    {"input_register", MB_FN_INPUT},
};

static const struct mb_name type_names[] = {
    {"u16", MB_TYPE_U16},           {"i16", MB_TYPE_I16},    {"u32", MB_TYPE_U32},
    {"i32", MB_TYPE_I32},           {"f32", MB_TYPE_F32},    {"f64", MB_TYPE_F64},
    {"bitfield", MB_TYPE_BITFIELD}, {"uint16", MB_TYPE_U16}, {"int16", MB_TYPE_I16},
    {"uint32", MB_TYPE_U32},        {"int32", MB_TYPE_I32},  {"float32", MB_TYPE_F32},
    {"float64", MB_TYPE_F64},
};

static const struct mb_name order_names[] = {
    {"ABCD", MB_ORDER_ABCD},
    {"CDAB", MB_ORDER_CDAB},
    {"BADC", MB_ORDER_BADC},
    {"DCBA", MB_ORDER_DCBA},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int from_name(const struct mb_name *t, size_t n, const char *name, int *out) {
  if (name == NULL)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (strcasecmp(t[i].name, name) == 0) {
      *out = t[i].value;
      return 0;
    }
  }
  return -EINVAL;
}

static const char *to_name(const struct mb_name *t, size_t n, int value) {
  for (size_t i = 0; i < n; i++)
    if (t[i].value == value)
      return t[i].name;
  return NULL;
}

int mb_function_from_name(const char *name, enum mb_function *out) {
  int v;
  int rc = from_name(fn_names, COUNT(fn_names), name, &v);
  if (rc == 0)
    *out = (enum mb_function)v;
  return rc;
}

int mb_type_from_name(const char *name, enum mb_type *out) {
  int v;
  int rc = from_name(type_names, COUNT(type_names), name, &v);
  if (rc == 0)
    *out = (enum mb_type)v;
  return rc;
}

int mb_order_from_name(const char *name, enum mb_order *out) {
  int v;
  int rc = from_name(order_names, COUNT(order_names), name, &v);
  if (rc == 0)
    *out = (enum mb_order)v;
  return rc;
}

const char *mb_function_name(enum mb_function fn) {
  return to_name(fn_names, COUNT(fn_names), (int)fn);
}

const char *mb_type_name(enum mb_type type) {
  return to_name(type_names, COUNT(type_names), (int)type);
}

const char *mb_order_name(enum mb_order order) {
  return to_name(order_names, COUNT(order_names), (int)order);
}

void mb_register_init(struct mb_register *r) {
  memset(r, 0, sizeof(*r));
  r->fn = MB_FN_HOLDING;
  r->type = MB_TYPE_U16;
  r->order = MB_ORDER_ABCD;
  r->scale = 1.0;
  r->offset = 0.0;
}

unsigned mb_type_words(enum mb_type type) {
  switch (type) {
  case MB_TYPE_U16:
  case MB_TYPE_I16:
  case MB_TYPE_BITFIELD: return 1;
  case MB_TYPE_U32:
  case MB_TYPE_I32:
  case MB_TYPE_F32: return 2;
  case MB_TYPE_F64: return 4;
  }
  return 0;
}

static bool fn_is_bit(enum mb_function fn) { return fn == MB_FN_COIL || fn == MB_FN_DISCRETE; }

unsigned mb_register_words(const struct mb_register *r) {
  unsigned words = mb_type_words(r->type);
  if (mb_function_name(r->fn) == NULL || words == 0)
    return 0;
  return fn_is_bit(r->fn) ? 1 : words;
}

char *mb_register_where(const struct mb_register *r, char *buf, size_t len) {
  const char *fn = mb_function_name(r->fn);
  if (len == 0)
    return buf;
  snprintf(buf, len, "register %.*s @ %s %u", MB_NAME_MAX - 1,
           r->name[0] != '\0' ? r->name : "(unnamed)", fn != NULL ? fn : "function?",
           (unsigned)r->address);
  return buf;
}

/* Fills err with "register NAME @ FN ADDR: what" and returns -EINVAL. */
static int fail(const struct mb_register *r, char *err, size_t errlen, const char *what) {
  char where[MB_NAME_MAX + 48];
  if (err != NULL && errlen > 0)
    snprintf(err, errlen, "%s: %s", mb_register_where(r, where, sizeof(where)), what);
  return -EINVAL;
}

static int check_bits(const struct mb_register *r, char *err, size_t errlen) {
  uint32_t seen = 0;
  if (r->type != MB_TYPE_BITFIELD)
    return r->nbits == 0 ? 0 : fail(r, err, errlen, "named bits need type bitfield");
  if (r->nbits > MB_BITS_MAX)
    return fail(r, err, errlen, "more than 16 named bits");
  for (size_t i = 0; i < r->nbits; i++) {
    const struct mb_bit *b = &r->bits[i];
    if (b->bit >= 16)
      return fail(r, err, errlen, "bit number must be 0..15");
    if (b->name[0] == '\0' || memchr(b->name, '\0', MB_BIT_NAME_MAX) == NULL)
      return fail(r, err, errlen, "bit name empty or too long");
    if (seen & (1u << b->bit))
      return fail(r, err, errlen, "bit listed twice");
    seen |= 1u << b->bit;
  }
  return 0;
}

int mb_register_check(const struct mb_register *r, char *err, size_t errlen) {
  unsigned words = mb_register_words(r);

  if (r->name[0] == '\0' || memchr(r->name, '\0', MB_NAME_MAX) == NULL)
    return fail(r, err, errlen, "name empty or too long");
  if (memchr(r->unit, '\0', MB_UNIT_MAX) == NULL)
    return fail(r, err, errlen, "unit too long");
  if (mb_function_name(r->fn) == NULL)
    return fail(r, err, errlen, "unknown function");
  if (mb_type_name(r->type) == NULL)
    return fail(r, err, errlen, "unknown type");
  if (mb_order_name(r->order) == NULL)
    return fail(r, err, errlen, "unknown order");
  if (fn_is_bit(r->fn) && r->type != MB_TYPE_U16 && r->type != MB_TYPE_BITFIELD)
    return fail(r, err, errlen, "coils and discrete inputs take type u16 or bitfield");
  if ((uint32_t)r->address + words > 65536u)
    return fail(r, err, errlen, "value runs past address 65535");
  if (!isfinite(r->scale) || r->scale == 0.0)
    return fail(r, err, errlen, "scale must be finite and non-zero");
  if (!isfinite(r->offset))
    return fail(r, err, errlen, "offset must be finite");
  if (r->has_range && !(r->min <= r->max))
    return fail(r, err, errlen, "range needs min <= max");
  if (r->has_sentinel && words < 4 && (r->sentinel >> (16 * words)) != 0)
    return fail(r, err, errlen, "sentinel wider than the type");
  return check_bits(r, err, errlen);
}
