/* Unit tests for configuration files (lib/cfg.c, include/rackpulse/cfg.h):
 * known answers for every field type, defaults, and every error the field
 * tables report, each checked for its exact "file:line: key: problem" text.
 * Documents come from strings (rp_cfg_load_string) and from temporary files
 * under /tmp (rp_cfg_load). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rackpulse/cfg.h"

/* ---- a table to apply ---------------------------------------------------- */

struct conf {
  char name[16];
  int64_t count;
  double ratio;
  bool enabled;
  int64_t timeout_ms;
  char note[32];
  int64_t port;
  double offset;
};

static const struct rp_cfg_field fields[] = {
    RP_CFG_STR("name", struct conf, name, NULL, 1, "device name"),
    RP_CFG_NUM("count", RP_CFG_INT, struct conf, count, "3", 0, 0, "how many"),
    RP_CFG_NUM("ratio", RP_CFG_DOUBLE, struct conf, ratio, "0.5", 0, 1, "a fraction"),
    RP_CFG_NUM("enabled", RP_CFG_BOOL, struct conf, enabled, "true", 0, 0, "on or off"),
    RP_CFG_NUM("timeout", RP_CFG_DURATION, struct conf, timeout_ms, "500ms", 0.1, 60,
               "how long to wait"),
    RP_CFG_STR("note", struct conf, note, "hello", 0, "free text"),
    RP_CFG_NUM("port", RP_CFG_INT, struct conf, port, "502", 1, 65535, "TCP port"),
    RP_CFG_NUM("offset", RP_CFG_DOUBLE, struct conf, offset, NULL, 0, 0, "no default"),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* The same table without the required key, for absent sections. */
#define OPTIONAL_FIELDS (fields + 1)
#define NOPTIONAL (NFIELDS - 1)

static const char *const sections[] = {"registers", "labels", NULL};

static const char KNOWN[] = "known keys: name, count, ratio, enabled, timeout, note, port, offset";

/* Parses `text` as "t.yaml" and applies section `dev` into *c (pre-filled
 * with 0x55 so defaults that are not applied show). Returns apply's result;
 * asserts that parsing itself succeeded. */
static int apply_text(const char *text, struct conf *c, char *err, size_t errlen) {
  struct rp_cfg_doc *doc = NULL;
  char perr[256] = "";
  int rc = rp_cfg_load_string("t.yaml", text, strlen(text), &doc, perr, sizeof(perr));
  if (rc != 0)
    fail_msg("parse failed: %s", perr);
  assert_non_null(doc);
  memset(c, 0x55, sizeof(*c));
  err[0] = '\0';
  rp_cfg_node dev = rp_cfg_get(doc, rp_cfg_root(doc), "dev");
  rc = rp_cfg_apply(doc, dev, "dev", fields, NFIELDS, sections, c, err, errlen);
  rp_cfg_free(doc);
  return rc;
}

/* Applies `text` and asserts -EINVAL with exactly `want` as the message. */
static void expect_error(const char *text, const char *want) {
  struct conf c;
  char err[1024];
  int rc = apply_text(text, &c, err, sizeof(err));
  if (rc != -EINVAL || strcmp(err, want) != 0)
    fail_msg("for:\n%s\nwant -EINVAL '%s'\ngot %d '%s'", text, want, rc, err);
}

/* Writes `text` to a fresh file under /tmp; the caller unlinks `path`. */
static void write_temp(char path[64], const char *text) {
  snprintf(path, 64, "/tmp/rp_test_cfg_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t len = strlen(text);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  assert_int_equal(close(fd), 0);
}

/* ---- known answers ------------------------------------------------------- */

static void test_every_type(void **state) {
  (void)state;
  struct conf c;
  char err[512];
  const char *text = "# rackpulse test\n"
                     "dev:\n"
                     "  name: cdu-1\n"
                     "  count: -42\n"
                     "  ratio: 0.25\n"
                     "  enabled: no\n"
                     "  timeout: 1m\n"
                     "  note: \"quoted: text\"\n"
                     "  port: 1502\n"
                     "  offset: -1.5e3\n";
  if (apply_text(text, &c, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  assert_string_equal(c.name, "cdu-1");
  assert_int_equal(c.count, -42);
  assert_true(c.ratio == 0.25);
  assert_false(c.enabled);
  assert_int_equal(c.timeout_ms, 60000);
  assert_string_equal(c.note, "quoted: text");
  assert_int_equal(c.port, 1502);
  assert_true(c.offset == -1500.0);
}

static void test_bool_forms(void **state) {
  (void)state;
  static const struct {
    const char *text;
    bool want;
  } cases[] = {{"true", true}, {"True", true}, {"yes", true},    {"YES", true},
               {"on", true},   {"1", true},    {"false", false}, {"FALSE", false},
               {"no", false},  {"off", false}, {"Off", false},   {"0", false}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char text[128], err[512];
    struct conf c;
    snprintf(text, sizeof(text), "dev:\n  name: x\n  enabled: %s\n", cases[i].text);
    int rc = apply_text(text, &c, err, sizeof(err));
    if (rc != 0)
      fail_msg("'%s': %s", cases[i].text, err);
    if (c.enabled != cases[i].want)
      fail_msg("'%s' gave %d", cases[i].text, (int)c.enabled);
  }
  expect_error("dev:\n  name: x\n  enabled: maybe\n",
               "t.yaml:3: dev.enabled: expected true or false, got 'maybe'");
  expect_error("dev:\n  name: x\n  enabled: 2\n",
               "t.yaml:3: dev.enabled: expected true or false, got '2'");
}

static void test_parse_duration(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t ms;
  } good[] = {{"250ms", 250}, {"5s", 5000},  {"2m", 120000}, {"2min", 120000}, {"1h", 3600000},
              {"1.5", 1500},  {"10", 10000}, {"0", 0},       {"0.25s", 250},   {"1.5h", 5400000},
              {"5 s", 5000},  {"0.0004", 0}, {"0.0006", 1},  {"1e3ms", 1000}};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    int64_t ms = -1;
    int rc = rp_parse_duration_ms(good[i].text, &ms);
    if (rc != 0 || ms != good[i].ms)
      fail_msg("'%s': rc %d, %lld ms, want %lld", good[i].text, rc, (long long)ms,
               (long long)good[i].ms);
  }
  static const char *const bad[] = {"",    "abc", "5x",    "-1s", "5S", "5 sec",
                                    "nan", "inf", "1e400", "ms",  "1d", "5s5"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t ms = 77;
    int rc = rp_parse_duration_ms(bad[i], &ms);
    if (rc != -EINVAL || ms != 77)
      fail_msg("'%s': rc %d, ms %lld, want -EINVAL and untouched", bad[i], rc, (long long)ms);
  }
}

static void test_duration_fields(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t ms;
  } cases[] = {{"250ms", 250}, {"5s", 5000}, {"1.5", 1500}, {"0.1", 100}, {"60s", 60000}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char text[128], err[512];
    struct conf c;
    snprintf(text, sizeof(text), "dev:\n  name: x\n  timeout: %s\n", cases[i].text);
    assert_int_equal(apply_text(text, &c, err, sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, cases[i].ms);
  }
  expect_error("dev:\n  name: x\n  timeout: soon\n",
               "t.yaml:3: dev.timeout: expected a duration such as 500ms, 5s or 2m, got "
               "'soon'");
  /* The range of a duration is in seconds: 0.1..60. */
  expect_error("dev:\n  name: x\n  timeout: 2m\n",
               "t.yaml:3: dev.timeout: 2m is outside 0.1..60 seconds");
  expect_error("dev:\n  name: x\n  timeout: 50ms\n",
               "t.yaml:3: dev.timeout: 50ms is outside 0.1..60 seconds");
}

static void test_defaults(void **state) {
  (void)state;
  struct conf c;
  char err[512];
  assert_int_equal(apply_text("dev:\n  name: only\n", &c, err, sizeof(err)), 0);
  assert_string_equal(c.name, "only");
  assert_int_equal(c.count, 3);
  assert_true(c.ratio == 0.5);
  assert_true(c.enabled);
  assert_int_equal(c.timeout_ms, 500);
  assert_string_equal(c.note, "hello");
  assert_int_equal(c.port, 502);
  /* No default: the member is left as it was (0x55 bytes). */
  double untouched;
  memset(&untouched, 0x55, sizeof(untouched));
  assert_memory_equal(&c.offset, &untouched, sizeof(untouched));

  /* An absent section (map 0) takes every default. */
  struct rp_cfg_doc *doc = NULL;
  const char *text = "other: {}\n";
  assert_int_equal(rp_cfg_load_string("t.yaml", text, strlen(text), &doc, err, sizeof(err)), 0);
  rp_cfg_node dev = rp_cfg_get(doc, rp_cfg_root(doc), "dev");
  assert_int_equal(dev, 0);
  memset(&c, 0, sizeof(c));
  assert_int_equal(
      rp_cfg_apply(doc, dev, "dev", OPTIONAL_FIELDS, NOPTIONAL, NULL, &c, err, sizeof(err)), 0);
  assert_int_equal(c.count, 3);
  assert_int_equal(c.port, 502);
  assert_string_equal(c.note, "hello");
  rp_cfg_free(doc);
}

/* ---- errors -------------------------------------------------------------- */

static void test_required_missing(void **state) {
  (void)state;
  /* The line is the section mapping's own line. */
  expect_error("dev:\n  count: 1\n  port: 2\n", "t.yaml:2: dev.name: required key is missing");
  expect_error("\n\ndev: {count: 1}\n", "t.yaml:3: dev.name: required key is missing");
}

static void test_unknown_key(void **state) {
  (void)state;
  char want[512];
  snprintf(want, sizeof(want), "t.yaml:4: dev.colour: unknown key (%s, registers, labels)", KNOWN);
  expect_error("dev:\n  name: x\n  count: 1\n  colour: red\n", want);
  snprintf(want, sizeof(want), "t.yaml:2: dev.prot: unknown key (%s, registers, labels)", KNOWN);
  expect_error("dev:\n  prot: [1, 2]\n  name: x\n", want);

  /* Without sections the list ends at the table. */
  struct rp_cfg_doc *doc = NULL;
  char err[512];
  const char *text = "dev:\n\n  registers: []\n";
  assert_int_equal(rp_cfg_load_string("t.yaml", text, strlen(text), &doc, err, sizeof(err)), 0);
  struct conf c;
  assert_int_equal(rp_cfg_apply(doc, rp_cfg_get(doc, rp_cfg_root(doc), "dev"), "dev",
                                OPTIONAL_FIELDS, NOPTIONAL, NULL, &c, err, sizeof(err)),
                   -EINVAL);
  assert_string_equal(err, "t.yaml:3: dev.registers: unknown key (known keys: count, ratio, "
                           "enabled, timeout, note, port, offset)");
  rp_cfg_free(doc);
}

/* Unknown and duplicate keys are errors about the key, so they name the
 * key's line, also when the value is a block that starts on a later line. */
static void test_key_errors_name_the_key_line(void **state) {
  (void)state;
  expect_error("dev:\n  name: x\n  registers: []\n  registers:\n    - a\n",
               "t.yaml:4: dev.registers: duplicate key");
  char want[512];
  snprintf(want, sizeof(want), "t.yaml:3: dev.prot: unknown key (%s, registers, labels)", KNOWN);
  expect_error("dev:\n  name: x\n  prot:\n    a: 1\n", want);
}

static void test_duplicate_key(void **state) {
  (void)state;
  expect_error("dev:\n  name: x\n  count: 1\n  port: 9\n  count: 2\n",
               "t.yaml:5: dev.count: duplicate key");
  expect_error("dev:\n  registers: []\n  name: x\n  registers: []\n",
               "t.yaml:4: dev.registers: duplicate key");
}

static void test_wrong_type(void **state) {
  (void)state;
  expect_error("dev:\n  name:\n    first: a\n",
               "t.yaml:3: dev.name: expected a string, got a mapping");
  expect_error("dev:\n  name: [a, b]\n", "t.yaml:2: dev.name: expected a string, got a list");
  expect_error("dev:\n  name: x\n  count: abc\n",
               "t.yaml:3: dev.count: expected an integer, got 'abc'");
  expect_error("dev:\n  name: x\n  count: 1.5\n",
               "t.yaml:3: dev.count: expected an integer, got '1.5'");
  expect_error("dev:\n  name: x\n  count: 12abc\n",
               "t.yaml:3: dev.count: expected an integer, got '12abc'");
  expect_error("dev:\n  name: x\n  count: 99999999999999999999\n",
               "t.yaml:3: dev.count: expected an integer, got '99999999999999999999'");
  expect_error("dev:\n  name: x\n  ratio: half\n",
               "t.yaml:3: dev.ratio: expected a number, got 'half'");
  expect_error("dev:\n  name: x\n  ratio: nan\n",
               "t.yaml:3: dev.ratio: expected a number, got 'nan'");
  expect_error("dev: [1, 2]\n", "t.yaml:1: dev: expected a mapping of keys");
  expect_error("dev: 5\n", "t.yaml:1: dev: expected a mapping of keys");
  expect_error("dev:\n  [a, b]: 1\n", "t.yaml:2: dev: keys must be plain scalars");
}

static void test_out_of_range(void **state) {
  (void)state;
  struct conf c;
  char err[512];
  expect_error("dev:\n  name: x\n  port: 70000\n", "t.yaml:3: dev.port: 70000 is outside 1..65535");
  expect_error("dev:\n  name: x\n  port: 0\n", "t.yaml:3: dev.port: 0 is outside 1..65535");
  expect_error("dev:\n  name: x\n  ratio: 1.01\n", "t.yaml:3: dev.ratio: 1.01 is outside 0..1");
  expect_error("dev:\n  name: x\n  ratio: -0.5\n", "t.yaml:3: dev.ratio: -0.5 is outside 0..1");
  /* Inclusive bounds. */
  assert_int_equal(apply_text("dev:\n  name: x\n  port: 1\n  ratio: 0\n", &c, err, sizeof(err)), 0);
  assert_int_equal(c.port, 1);
  assert_int_equal(apply_text("dev:\n  name: x\n  port: 65535\n  ratio: 1\n", &c, err, sizeof(err)),
                   0);
  assert_int_equal(c.port, 65535);
  assert_true(c.ratio == 1.0);
  /* min == max: no range at all. */
  assert_int_equal(apply_text("dev:\n  name: x\n  count: -9000000000\n", &c, err, sizeof(err)), 0);
  assert_int_equal(c.count, -9000000000LL);
}

static void test_string_too_long(void **state) {
  (void)state;
  struct conf c;
  char err[512];
  /* name is char[16]: 15 characters fit, 16 do not. */
  assert_int_equal(apply_text("dev:\n  name: abcdefghijklmno\n", &c, err, sizeof(err)), 0);
  assert_string_equal(c.name, "abcdefghijklmno");
  expect_error("dev:\n  name: abcdefghijklmnop\n", "t.yaml:2: dev.name: longer than 15 characters");
}

static void test_invalid_yaml(void **state) {
  (void)state;
  static const struct {
    const char *text, *prefix;
  } cases[] = {
      /* A key indented deeper than its siblings, on line 4. */
      {"dev:\n  name: x\n  port: 2\n    count: 3\n", "t.yaml:4: "},
      /* A tab where indentation is expected, on line 3. */
      {"dev:\n  name: x\n\tport: 2\n", "t.yaml:3: "},
      /* A flow sequence opened on line 2 is still open at line 3's key. */
      {"dev:\n  name: [a, b\n  port: 2\n", "t.yaml:3: "},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct rp_cfg_doc *doc = NULL;
    char err[512] = "";
    int rc =
        rp_cfg_load_string("t.yaml", cases[i].text, strlen(cases[i].text), &doc, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    if (strncmp(err, cases[i].prefix, strlen(cases[i].prefix)) != 0)
      fail_msg("case %zu: '%s' does not start with '%s'", i, err, cases[i].prefix);
    /* libyaml's description follows the location. */
    assert_true(strlen(err) > strlen(cases[i].prefix) + 2);
    assert_null(doc);
  }
}

static void test_top_level_not_mapping(void **state) {
  (void)state;
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"- a\n- b\n", "t.yaml:1: the top level must be a mapping of sections"},
      {"# a comment\n\njust text\n", "t.yaml:3: the top level must be a mapping of sections"},
      {"--- [1, 2]\n", "t.yaml:1: the top level must be a mapping of sections"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct rp_cfg_doc *doc = NULL;
    char err[512] = "";
    int rc =
        rp_cfg_load_string("t.yaml", cases[i].text, strlen(cases[i].text), &doc, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    assert_null(doc);
    assert_string_equal(err, cases[i].want);
  }
}

static void test_sections_are_skipped(void **state) {
  (void)state;
  struct rp_cfg_doc *doc = NULL;
  char err[512];
  const char *text = "dev:\n"
                     "  name: cdu\n"
                     "  registers:\n"
                     "    - {name: supply, address: 10}\n"
                     "    - {name: flow, address: 12}\n"
                     "  labels: {row: A}\n"
                     "  port: 503\n";
  assert_int_equal(rp_cfg_load_string("t.yaml", text, strlen(text), &doc, err, sizeof(err)), 0);
  rp_cfg_node dev = rp_cfg_get(doc, rp_cfg_root(doc), "dev");
  struct conf c;
  memset(&c, 0, sizeof(c));
  assert_int_equal(rp_cfg_apply(doc, dev, "dev", fields, NFIELDS, sections, &c, err, sizeof(err)),
                   0);
  assert_string_equal(c.name, "cdu");
  assert_int_equal(c.port, 503);

  /* The skipped sections are there for the caller to walk. */
  rp_cfg_node regs = rp_cfg_get(doc, dev, "registers");
  assert_int_equal(rp_cfg_kind(doc, regs), RP_CFG_SEQUENCE);
  assert_int_equal(rp_cfg_seq_len(doc, regs), 2);
  rp_cfg_node second = rp_cfg_seq_item(doc, regs, 1);
  assert_int_equal(rp_cfg_kind(doc, second), RP_CFG_MAPPING);
  assert_int_equal(rp_cfg_line(doc, second), 5);
  assert_string_equal(rp_cfg_scalar(doc, rp_cfg_get(doc, second, "name")), "flow");
  assert_string_equal(rp_cfg_scalar(doc, rp_cfg_get(doc, second, "address")), "12");
  assert_int_equal(rp_cfg_seq_item(doc, regs, 2), 0);
  assert_int_equal(rp_cfg_map_len(doc, dev), 4);
  rp_cfg_node v = 0;
  assert_string_equal(rp_cfg_map_key(doc, dev, 3, &v), "port");
  assert_string_equal(rp_cfg_scalar(doc, v), "503");
  assert_null(rp_cfg_map_key(doc, dev, 4, &v));
  assert_int_equal(rp_cfg_get(doc, regs, "name"), 0); /* not a mapping */
  assert_null(rp_cfg_scalar(doc, regs));
  assert_int_equal(rp_cfg_kind(doc, 0), RP_CFG_NONE);
  assert_int_equal(rp_cfg_line(doc, 0), 0);

  /* rp_cfg_error formats the caller's own checks the same way. */
  rp_cfg_error(doc, second, "dev.registers[1]", err, sizeof(err), "address %d is odd", 13);
  assert_string_equal(err, "t.yaml:5: dev.registers[1]: address 13 is odd");
  rp_cfg_free(doc);
}

/* ---- files --------------------------------------------------------------- */

static void test_load_file(void **state) {
  (void)state;
  char path[64], err[512], want[256];
  write_temp(path, "dev:\n  name: from-file\n  count: 7\n  bogus: 1\n");
  struct rp_cfg_doc *doc = NULL;
  assert_int_equal(rp_cfg_load(path, &doc, err, sizeof(err)), 0);
  assert_string_equal(rp_cfg_path(doc), path);
  struct conf c;
  int rc = rp_cfg_apply(doc, rp_cfg_get(doc, rp_cfg_root(doc), "dev"), "dev", fields, NFIELDS, NULL,
                        &c, err, sizeof(err));
  assert_int_equal(rc, -EINVAL);
  snprintf(want, sizeof(want), "%s:4: dev.bogus: unknown key (", path);
  if (strncmp(err, want, strlen(want)) != 0)
    fail_msg("'%s' does not start with '%s'", err, want);
  rp_cfg_free(doc);
  unlink(path);

  /* A parse error names the file too. */
  write_temp(path, "dev:\n  name: x\n\tport: 2\n");
  doc = NULL;
  assert_int_equal(rp_cfg_load(path, &doc, err, sizeof(err)), -EINVAL);
  assert_null(doc);
  snprintf(want, sizeof(want), "%s:3: ", path);
  if (strncmp(err, want, strlen(want)) != 0)
    fail_msg("'%s' does not start with '%s'", err, want);
  unlink(path);

  /* An empty file is an empty mapping: every default applies. */
  write_temp(path, "");
  assert_int_equal(rp_cfg_load(path, &doc, err, sizeof(err)), 0);
  assert_int_equal(rp_cfg_root(doc), 0);
  memset(&c, 0, sizeof(c));
  assert_int_equal(rp_cfg_apply(doc, rp_cfg_get(doc, rp_cfg_root(doc), "dev"), "dev",
                                OPTIONAL_FIELDS, NOPTIONAL, NULL, &c, err, sizeof(err)),
                   0);
  assert_int_equal(c.port, 502);
  rp_cfg_free(doc);
  unlink(path);

  /* A file larger than one read buffer (8 KiB) is read whole. */
  size_t cap = 64 * 1024;
  char *big = malloc(cap);
  assert_non_null(big);
  size_t n = (size_t)snprintf(big, cap, "dev:\n");
  for (int i = 0; i < 2000; i++)
    n += (size_t)snprintf(big + n, cap - n, "  # filler comment line %04d\n", i);
  n += (size_t)snprintf(big + n, cap - n, "  name: tail\n");
  assert_true(n < cap);
  write_temp(path, big);
  free(big);
  assert_int_equal(rp_cfg_load(path, &doc, err, sizeof(err)), 0);
  memset(&c, 0, sizeof(c));
  assert_int_equal(rp_cfg_apply(doc, rp_cfg_get(doc, rp_cfg_root(doc), "dev"), "dev", fields,
                                NFIELDS, NULL, &c, err, sizeof(err)),
                   0);
  assert_string_equal(c.name, "tail");
  assert_int_equal(
      rp_cfg_line(doc, rp_cfg_get(doc, rp_cfg_get(doc, rp_cfg_root(doc), "dev"), "name")), 2002);
  rp_cfg_free(doc);
  unlink(path);
}

static void test_missing_file(void **state) {
  (void)state;
  char path[128], err[512], want[256];
  snprintf(path, sizeof(path), "/tmp/rp_test_cfg_missing_%ld/agent.yaml", (long)getpid());
  struct rp_cfg_doc *doc = NULL;
  assert_int_equal(rp_cfg_load(path, &doc, err, sizeof(err)), -ENOENT);
  assert_null(doc);
  snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
  assert_string_equal(err, want);

  /* A directory opens but cannot be read as a file. */
  assert_true(rp_cfg_load("/tmp", &doc, err, sizeof(err)) < 0);
  assert_null(doc);
  assert_true(strncmp(err, "/tmp: ", 6) == 0);
}

static void test_help(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  rp_cfg_print_help(out, "dev", fields, NFIELDS);
  fclose(out);
  assert_non_null(strstr(text, "  dev.name "));
  assert_non_null(strstr(text, "device name (required)\n"));
  assert_non_null(strstr(text, "dev.timeout"));
  assert_non_null(strstr(text, "how long to wait (default: 500ms)\n"));
  assert_non_null(strstr(text, "duration"));
  assert_non_null(strstr(text, "no default\n"));
  size_t lines = 0;
  for (const char *p = text; *p; p++)
    lines += *p == '\n';
  assert_int_equal(lines, NFIELDS);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_type),
      cmocka_unit_test(test_bool_forms),
      cmocka_unit_test(test_parse_duration),
      cmocka_unit_test(test_duration_fields),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_required_missing),
      cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_duplicate_key),
      cmocka_unit_test(test_key_errors_name_the_key_line),
      cmocka_unit_test(test_wrong_type),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_string_too_long),
      cmocka_unit_test(test_invalid_yaml),
      cmocka_unit_test(test_top_level_not_mapping),
      cmocka_unit_test(test_sections_are_skipped),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_help),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
