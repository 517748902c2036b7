/*
 * test_mb_decode.c: unit tests for the Modbus register model (agent/modbus/mb_map.c)
 * and decoder (agent/modbus/mb_decode.c). Checks every vector in
 * packaging/profiles/modbus/generic-cdu.vectors (format in its header), that
 * the file covers every type in every order, and inline known answers,
 * error messages, name converters and register validation.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/modbus/mb_decode.h"
#include "agent/modbus/mb_map.h"

#define VECTORS RP_SOURCE_DIR "/packaging/profiles/modbus/generic-cdu.vectors"
#define NTYPES 7
#define NORDERS 4

/* One parsed vector line. */
struct vector {
  struct mb_register reg;
  uint16_t words[8];
  size_t nwords;
  enum mb_status status;
  bool has_value;
  double value;
  bool has_active;
  uint16_t active;
};

static int parse_status(const char *s, enum mb_status *out) {
  for (int st = MB_ST_OK; st <= MB_ST_BAD_LENGTH; st++) {
    if (strcmp(mb_status_name((enum mb_status)st), s) == 0) {
      *out = (enum mb_status)st;
      return 0;
    }
  }
  return -EINVAL;
}

/* "0:leak,~5:pump_stopped" into r->bits. */
static int parse_bits(char *s, struct mb_register *r) {
  char *save = NULL;
  for (char *tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    struct mb_bit *b;
    char *colon = strchr(tok, ':');
    if (colon == NULL || r->nbits >= MB_BITS_MAX)
      return -EINVAL;
    b = &r->bits[r->nbits++];
    b->active_low = tok[0] == '~';
    b->bit = (uint8_t)strtoul(tok + b->active_low, NULL, 10);
    snprintf(b->name, sizeof(b->name), "%s", colon + 1);
  }
  return 0;
}

static int parse_option(char *tok, struct vector *v) {
  char *eq = strchr(tok, '=');
  const char *val;
  if (eq == NULL)
    return -EINVAL;
  *eq = '\0';
  val = eq + 1;
  if (strcmp(tok, "scale") == 0)
    v->reg.scale = strtod(val, NULL);
  else if (strcmp(tok, "offset") == 0)
    v->reg.offset = strtod(val, NULL);
  else if (strcmp(tok, "min") == 0)
    v->reg.has_range = true, v->reg.min = strtod(val, NULL);
  else if (strcmp(tok, "max") == 0)
    v->reg.has_range = true, v->reg.max = strtod(val, NULL);
  else if (strcmp(tok, "sentinel") == 0)
    v->reg.has_sentinel = true, v->reg.sentinel = strtoull(val, NULL, 16);
  else if (strcmp(tok, "fn") == 0)
    return mb_function_from_name(val, &v->reg.fn);
  else if (strcmp(tok, "bits") == 0)
    return parse_bits(eq + 1, &v->reg);
  else if (strcmp(tok, "active") == 0)
    v->has_active = true, v->active = (uint16_t)strtoul(val, NULL, 16);
  else
    return -EINVAL;
  return 0;
}

/* Parses "TYPE ORDER WORD... -> STATUS [VALUE] [KEY=VALUE...]". */
static int parse_vector(char *line, unsigned lineno, struct vector *v) {
  char *save = NULL;
  char *tok;

  memset(v, 0, sizeof(*v));
  mb_register_init(&v->reg);
  snprintf(v->reg.name, sizeof(v->reg.name), "vector.line%u", lineno);
  v->reg.address = 100;
  v->reg.min = -INFINITY;
  v->reg.max = INFINITY;
  if (mb_type_from_name(strtok_r(line, " \t\n", &save), &v->reg.type) != 0 ||
      mb_order_from_name(strtok_r(NULL, " \t\n", &save), &v->reg.order) != 0)
    return -EINVAL;
  while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL && strcmp(tok, "->") != 0) {
    if (v->nwords >= 8)
      return -EINVAL;
    v->words[v->nwords++] = (uint16_t)strtoul(tok, NULL, 16);
  }
  if (tok == NULL || parse_status(strtok_r(NULL, " \t\n", &save), &v->status) != 0)
    return -EINVAL;
  while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL) {
    if (strchr(tok, '=') == NULL) {
      v->has_value = true;
      v->value = strtod(tok, NULL);
    } else if (parse_option(tok, v) != 0) {
      return -EINVAL;
    }
  }
  return 0;
}

static bool same_value(double want, double got) {
  if (isnan(want))
    return isnan(got);
  if (isinf(want) || want == 0.0)
    return want == got && signbit(want) == signbit(got);
  return fabs(want - got) <= 1e-9 * fabs(want);
}

/* Decodes one vector; returns NULL if it passes, else what went wrong. */
static const char *check_vector(const struct vector *v, char *why, size_t len) {
  struct mb_value out;
  char err[256] = "";
  int rc;

  if (mb_register_check(&v->reg, err, sizeof(err)) != 0)
    return snprintf(why, len, "register rejected: %s", err), why;
  rc = mb_decode(&v->reg, v->words, v->nwords, &out, err, sizeof(err));
  if (rc != (v->status == MB_ST_BAD_LENGTH ? -EINVAL : 0))
    return snprintf(why, len, "returned %d", rc), why;
  if (out.status != v->status)
    return snprintf(why, len, "status %s, want %s (%s)", mb_status_name(out.status),
                    mb_status_name(v->status), err),
           why;
  if ((v->status == MB_ST_OK) != (err[0] == '\0'))
    return snprintf(why, len, "err is \"%s\"", err), why;
  if (v->has_value && !same_value(v->value, out.value))
    return snprintf(why, len, "value %.17g, want %.17g", out.value, v->value), why;
  if (!v->has_value && !isnan(out.value))
    return snprintf(why, len, "value %.17g, want NaN", out.value), why;
  if (v->has_active && out.active != v->active)
    return snprintf(why, len, "active 0x%04X, want 0x%04X", (unsigned)out.active,
                    (unsigned)v->active),
           why;
  return NULL;
}

static void test_vectors_file(void **state) {
  bool covered[NTYPES][NORDERS] = {{false}};
  char line[512], why[512];
  unsigned lineno = 0, nvectors = 0;
  FILE *f = fopen(VECTORS, "r");
  (void)state;

  if (f == NULL)
    fail_msg("cannot open %s: %s", VECTORS, strerror(errno));
  while (fgets(line, sizeof(line), f) != NULL) {
    struct vector v;
    const char *bad;
    lineno++;
    if (line[strspn(line, " \t\n")] == '\0' || line[0] == '#')
      continue;
    if (parse_vector(line, lineno, &v) != 0)
      fail_msg("%s:%u: cannot parse the vector", VECTORS, lineno);
    bad = check_vector(&v, why, sizeof(why));
    if (bad != NULL)
      fail_msg("%s:%u: %s", VECTORS, lineno, bad);
    if (v.status == MB_ST_OK && v.reg.fn == MB_FN_HOLDING)
      covered[v.reg.type][v.reg.order] = true;
    nvectors++;
  }
  fclose(f);
  assert_true(nvectors >= 100);
  for (int t = 0; t < NTYPES; t++)
    for (int o = 0; o < NORDERS; o++)
      if (!covered[t][o])
        fail_msg("%s: no ok vector for %s %s", VECTORS, mb_type_name((enum mb_type)t),
                 mb_order_name((enum mb_order)o));
}

static struct mb_register make_reg(const char *name, enum mb_function fn, uint16_t address,
                                   enum mb_type type, enum mb_order order) {
  struct mb_register r;
  mb_register_init(&r);
  snprintf(r.name, sizeof(r.name), "%s", name);
  r.fn = fn;
  r.address = address;
  r.type = type;
  r.order = order;
  return r;
}

static double decode_ok(const struct mb_register *r, const uint16_t *w, size_t n) {
  struct mb_value v;
  char err[128] = "";
  assert_int_equal(mb_decode(r, w, n, &v, err, sizeof(err)), 0);
  assert_int_equal(v.status, MB_ST_OK);
  assert_string_equal(err, "");
  return v.value;
}

static void test_f32_known_answers(void **state) {
  static const struct {
    enum mb_order order;
    uint16_t w[2];
  } cases[] = {
      {MB_ORDER_ABCD, {0x41BC, 0x0000}},
      {MB_ORDER_CDAB, {0x0000, 0x41BC}},
      {MB_ORDER_BADC, {0xBC41, 0x0000}},
      {MB_ORDER_DCBA, {0x0000, 0xBC41}},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct mb_register r =
        make_reg("cdu.supply_temp", MB_FN_INPUT, 130, MB_TYPE_F32, cases[i].order);
    assert_true(decode_ok(&r, cases[i].w, 2) == 23.5);
  }
}

static void test_integer_known_answers(void **state) {
  struct mb_register r = make_reg("x", MB_FN_HOLDING, 0, MB_TYPE_I16, MB_ORDER_ABCD);
  uint16_t w16 = 0xFF85;
  uint16_t w32[2] = {0xFFFE, 0x1DC0}; /* -123456, ABCD */
  uint16_t w32_cdab[2] = {0x1DC0, 0xFFFE};
  uint16_t f64[4] = {0x4037, 0x8000, 0x0000, 0x0000}; /* 23.5 */
  (void)state;

  assert_true(decode_ok(&r, &w16, 1) == -123.0);
  r.type = MB_TYPE_U16;
  assert_true(decode_ok(&r, &w16, 1) == 65413.0);
  r.type = MB_TYPE_I32;
  assert_true(decode_ok(&r, w32, 2) == -123456.0);
  r.order = MB_ORDER_CDAB;
  assert_true(decode_ok(&r, w32_cdab, 2) == -123456.0);
  r.type = MB_TYPE_U32;
  assert_true(decode_ok(&r, w32_cdab, 2) == 4294843840.0);
  r.type = MB_TYPE_F64;
  r.order = MB_ORDER_ABCD;
  assert_true(decode_ok(&r, f64, 4) == 23.5);
}

static void test_negative_zero_keeps_sign(void **state) {
  struct mb_register r = make_reg("x", MB_FN_HOLDING, 0, MB_TYPE_F32, MB_ORDER_ABCD);
  uint16_t w[2] = {0x8000, 0x0000};
  double v;
  (void)state;

  v = decode_ok(&r, w, 2);
  assert_true(v == 0.0 && signbit(v));
}

static void test_bad_length_message(void **state) {
  struct mb_register r = make_reg("cdu.supply_temp", MB_FN_INPUT, 130, MB_TYPE_F32, MB_ORDER_CDAB);
  uint16_t w[1] = {0x41BC};
  struct mb_value v;
  char err[128];
  (void)state;

  assert_int_equal(mb_decode(&r, w, 1, &v, err, sizeof(err)), -EINVAL);
  assert_int_equal(v.status, MB_ST_BAD_LENGTH);
  assert_true(isnan(v.value));
  assert_string_equal(err, "register cdu.supply_temp @ input 130: f32 needs 2 words, got 1");
  /* err may be NULL, and a short buffer is truncated, not overrun. */
  assert_int_equal(mb_decode(&r, w, 1, &v, NULL, 0), -EINVAL);
  assert_int_equal(mb_decode(&r, w, 1, &v, err, 9), -EINVAL);
  assert_string_equal(err, "register");
}

static void test_data_condition_messages(void **state) {
  struct mb_register r = make_reg("cdu.supply_temp", MB_FN_INPUT, 130, MB_TYPE_I16, MB_ORDER_ABCD);
  uint16_t hot = 523, absent = 0xFFFF;
  uint16_t nan_words[2] = {0x7FC0, 0x0000};
  struct mb_value v;
  char err[128];
  (void)state;

  snprintf(r.unit, sizeof(r.unit), "degC");
  r.scale = 0.1;
  r.has_range = true;
  r.min = 17;
  r.max = 45;
  r.has_sentinel = true;
  r.sentinel = 0xFFFF;
  assert_int_equal(mb_decode(&r, &hot, 1, &v, err, sizeof(err)), 0);
  assert_int_equal(v.status, MB_ST_OUT_OF_RANGE);
  assert_true(fabs(v.value - 52.3) < 1e-9);
  assert_string_equal(err, "register cdu.supply_temp @ input 130: 52.3 degC outside [17, 45]");

  assert_int_equal(mb_decode(&r, &absent, 1, &v, err, sizeof(err)), 0);
  assert_int_equal(v.status, MB_ST_ABSENT);
  assert_true(isnan(v.value));
  assert_int_equal(v.raw, 0xFFFF);
  assert_non_null(strstr(err, "sensor absent"));

  r.type = MB_TYPE_F32;
  r.has_sentinel = false;
  assert_int_equal(mb_decode(&r, nan_words, 2, &v, err, sizeof(err)), 0);
  assert_int_equal(v.status, MB_ST_NOT_FINITE);
  assert_true(isnan(v.value));
  assert_non_null(strstr(err, "f32 value is nan"));
}

static void test_bitfield_alarms(void **state) {
  struct mb_register r = make_reg("cdu.status", MB_FN_HOLDING, 7, MB_TYPE_BITFIELD, MB_ORDER_ABCD);
  uint16_t w = 0x0009;
  struct mb_value v;
  (void)state;

  r.nbits = 2;
  r.bits[0].bit = 0;
  snprintf(r.bits[0].name, sizeof(r.bits[0].name), "leak");
  r.bits[1].bit = 3;
  snprintf(r.bits[1].name, sizeof(r.bits[1].name), "pump_fault");
  assert_int_equal(mb_register_check(&r, NULL, 0), 0);
  assert_int_equal(mb_decode(&r, &w, 1, &v, NULL, 0), 0);
  assert_int_equal(v.active, 0x0009);
  w = 0x0002; /* an unnamed bit: not an alarm */
  assert_int_equal(mb_decode(&r, &w, 1, &v, NULL, 0), 0);
  assert_int_equal(v.active, 0);
  assert_true(v.value == 2.0);
}

static void test_unknown_type_is_rejected(void **state) {
  struct mb_register r = make_reg("x", MB_FN_HOLDING, 0, MB_TYPE_U16, MB_ORDER_ABCD);
  uint16_t w = 1;
  struct mb_value v;
  char err[128];
  (void)state;

  r.type = (enum mb_type)42;
  assert_int_equal(mb_decode(&r, &w, 1, &v, err, sizeof(err)), -EINVAL);
  assert_int_equal(v.status, MB_ST_BAD_LENGTH);
  assert_string_equal(err, "register x @ holding 0: unknown function or type");
  r.type = MB_TYPE_U16;
  r.fn = (enum mb_function)9;
  assert_int_equal(mb_decode(&r, &w, 1, &v, err, sizeof(err)), -EINVAL);
}

static void test_type_words(void **state) {
  struct mb_register r = make_reg("x", MB_FN_COIL, 0, MB_TYPE_U16, MB_ORDER_ABCD);
  (void)state;
  assert_int_equal(mb_type_words(MB_TYPE_U16), 1);
  assert_int_equal(mb_type_words(MB_TYPE_I16), 1);
  assert_int_equal(mb_type_words(MB_TYPE_BITFIELD), 1);
  assert_int_equal(mb_type_words(MB_TYPE_U32), 2);
  assert_int_equal(mb_type_words(MB_TYPE_I32), 2);
  assert_int_equal(mb_type_words(MB_TYPE_F32), 2);
  assert_int_equal(mb_type_words(MB_TYPE_F64), 4);
  assert_int_equal(mb_type_words((enum mb_type)99), 0);
  assert_int_equal(mb_register_words(&r), 1);
  r.fn = MB_FN_INPUT;
  r.type = MB_TYPE_F64;
  assert_int_equal(mb_register_words(&r), 4);
  r.fn = (enum mb_function)0;
  assert_int_equal(mb_register_words(&r), 0);
}

static void test_name_converters(void **state) {
  enum mb_function fn = MB_FN_COIL;
  enum mb_type type = MB_TYPE_U16;
  enum mb_order order = MB_ORDER_ABCD;
  (void)state;

  for (int i = MB_FN_COIL; i <= MB_FN_INPUT; i++) {
    assert_int_equal(mb_function_from_name(mb_function_name((enum mb_function)i), &fn), 0);
    assert_int_equal(fn, i);
  }
  for (int i = MB_TYPE_U16; i <= MB_TYPE_BITFIELD; i++) {
    assert_int_equal(mb_type_from_name(mb_type_name((enum mb_type)i), &type), 0);
    assert_int_equal(type, i);
  }
  for (int i = MB_ORDER_ABCD; i <= MB_ORDER_DCBA; i++) {
    assert_int_equal(mb_order_from_name(mb_order_name((enum mb_order)i), &order), 0);
    assert_int_equal(order, i);
  }
  assert_int_equal(mb_function_from_name("Input_Register", &fn), 0);
  assert_int_equal(fn, MB_FN_INPUT);
  assert_int_equal(mb_type_from_name("FLOAT32", &type), 0);
  assert_int_equal(type, MB_TYPE_F32);
  assert_int_equal(mb_order_from_name("cdab", &order), 0);
  assert_int_equal(order, MB_ORDER_CDAB);

  /* Unknown names fail and leave the output alone. */
  assert_int_equal(mb_function_from_name("register", &fn), -EINVAL);
  assert_int_equal(mb_type_from_name("f16", &type), -EINVAL);
  assert_int_equal(mb_type_from_name("", &type), -EINVAL);
  assert_int_equal(mb_order_from_name("ABDC", &order), -EINVAL);
  assert_int_equal(mb_order_from_name(NULL, &order), -EINVAL);
  assert_int_equal(fn, MB_FN_INPUT);
  assert_int_equal(type, MB_TYPE_F32);
  assert_int_equal(order, MB_ORDER_CDAB);
  assert_null(mb_function_name((enum mb_function)0));
  assert_null(mb_type_name((enum mb_type)7));
  assert_null(mb_order_name((enum mb_order)4));
  assert_string_equal(mb_status_name(MB_ST_OUT_OF_RANGE), "out_of_range");
}

/* mb_register_check() on r after one change; returns err's text after ": ". */
static const char *check_msg(const struct mb_register *r, char *err, size_t len) {
  const char *colon;
  if (mb_register_check(r, err, len) == 0)
    return "(accepted)";
  colon = strstr(err, ": ");
  return colon != NULL ? colon + 2 : err;
}

static void test_register_check(void **state) {
  struct mb_register good = make_reg("cdu.flow", MB_FN_INPUT, 12, MB_TYPE_U32, MB_ORDER_CDAB);
  struct mb_register r;
  char err[160];
  (void)state;

  assert_int_equal(mb_register_check(&good, err, sizeof(err)), 0);

  r = good, r.name[0] = '\0';
  assert_string_equal(check_msg(&r, err, sizeof(err)), "name empty or too long");
  r = good, r.type = (enum mb_type)9;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "unknown type");
  r = good, r.order = (enum mb_order)9;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "unknown order");
  r = good, r.fn = (enum mb_function)9;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "unknown function");
  r = good, r.fn = MB_FN_COIL;
  assert_string_equal(check_msg(&r, err, sizeof(err)),
                      "coils and discrete inputs take type u16 or bitfield");
  r = good, r.address = 65535;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "value runs past address 65535");
  r.type = MB_TYPE_U16;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "(accepted)");
  r = good, r.scale = 0.0;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "scale must be finite and non-zero");
  assert_string_equal(err, "register cdu.flow @ input 12: scale must be finite and non-zero");
  r = good, r.scale = NAN;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "scale must be finite and non-zero");
  r = good, r.offset = INFINITY;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "offset must be finite");
  r = good, r.has_range = true, r.min = 5, r.max = 1;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "range needs min <= max");
  r = good, r.has_sentinel = true, r.sentinel = 0x1FFFFFFFFull;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "sentinel wider than the type");
  r.sentinel = 0xFFFFFFFFu;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "(accepted)");
  r = good, r.nbits = 1;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "named bits need type bitfield");

  r = good, r.type = MB_TYPE_BITFIELD, r.nbits = 2;
  r.bits[0].bit = 1, snprintf(r.bits[0].name, MB_BIT_NAME_MAX, "leak");
  r.bits[1].bit = 1, snprintf(r.bits[1].name, MB_BIT_NAME_MAX, "pump_fault");
  assert_string_equal(check_msg(&r, err, sizeof(err)), "bit listed twice");
  r.bits[1].bit = 16;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "bit number must be 0..15");
  r.bits[1].bit = 15, r.bits[1].name[0] = '\0';
  assert_string_equal(check_msg(&r, err, sizeof(err)), "bit name empty or too long");
  r.bits[1].name[0] = 'p';
  assert_string_equal(check_msg(&r, err, sizeof(err)), "(accepted)");
  r.nbits = MB_BITS_MAX + 1;
  assert_string_equal(check_msg(&r, err, sizeof(err)), "more than 16 named bits");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors_file),
      cmocka_unit_test(test_f32_known_answers),
      cmocka_unit_test(test_integer_known_answers),
      cmocka_unit_test(test_negative_zero_keeps_sign),
      cmocka_unit_test(test_bad_length_message),
      cmocka_unit_test(test_data_condition_messages),
      cmocka_unit_test(test_bitfield_alarms),
      cmocka_unit_test(test_unknown_type_is_rejected),
      cmocka_unit_test(test_type_words),
      cmocka_unit_test(test_name_converters),
      cmocka_unit_test(test_register_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
