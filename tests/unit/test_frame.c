/* Unit tests for frames (lib/frame.c, include/rackpulse/frame.h): the
 * scaled-integer value encoding, decode-and-validate of packed Frames built
 * here with the protobuf-c structs, every rule the validation enforces, and
 * the JSON rendering. Each packed message is copied into a buffer of exactly
 * its size, so AddressSanitizer catches any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/frame.h"

/* ---- a frame to pack ----------------------------------------------------- */

/* Every message of one frame, in one struct so tests can break one field. */
struct fixture {
  Rackpulse__V1__Label label, *label_ptrs[1];
  Rackpulse__V1__SeriesDef defs[2], *def_ptrs[2];
  uint32_t ids[3];
  int64_t scaled[3];
  Rackpulse__V1__SampleBlock block, *block_ptrs[1];
  Rackpulse__V1__SeriesStatus status, *status_ptrs[1];
  Rackpulse__V1__WindowStats stats, *stats_ptrs[1];
  Rackpulse__V1__DeviceStatus device, *device_ptrs[1];
  Rackpulse__V1__AgentHealth health;
  Rackpulse__V1__Frame frame;
};

static void fixture_init(struct fixture *x) {
  memset(x, 0, sizeof(*x));
  rackpulse__v1__label__init(&x->label);
  x->label.key = "loop";
  x->label.value = "primary";
  x->label_ptrs[0] = &x->label;

  rackpulse__v1__series_def__init(&x->defs[0]);
  x->defs[0].id = 0;
  x->defs[0].name = "cdu.supply_temp";
  x->defs[0].unit = "Cel";
  x->defs[0].device = "cdu1";
  x->defs[0].decimals = 2;
  x->defs[0].labels = x->label_ptrs;
  x->defs[0].n_labels = 1;
  rackpulse__v1__series_def__init(&x->defs[1]);
  x->defs[1].id = 7;
  x->defs[1].name = "cdu.flow";
  x->defs[1].unit = "L/min";
  x->defs[1].device = "cdu1";
  x->defs[1].decimals = 1;
  x->def_ptrs[0] = &x->defs[0];
  x->def_ptrs[1] = &x->defs[1];

  x->ids[0] = 0;
  x->ids[1] = 7;
  x->ids[2] = 99; /* in no dictionary */
  x->scaled[0] = 2137;
  x->scaled[1] = -15;
  x->scaled[2] = 123456789012LL;
  rackpulse__v1__sample_block__init(&x->block);
  x->block.ts_ms = 1700000000123LL;
  x->block.series = x->ids;
  x->block.n_series = 3;
  x->block.scaled = x->scaled;
  x->block.n_scaled = 3;
  x->block_ptrs[0] = &x->block;

  rackpulse__v1__series_status__init(&x->status);
  x->status.series = 7;
  x->status.status = RACKPULSE__V1__READING_STATUS__READING_ERROR;
  x->status.detail = "exception 2";
  x->status_ptrs[0] = &x->status;

  rackpulse__v1__window_stats__init(&x->stats);
  x->stats.series = 0;
  x->stats.window_s = 60;
  x->stats.count = 12;
  x->stats.min = NAN;
  x->stats.max = 22.5;
  x->stats.mean = 21.25;
  x->stats.stddev = INFINITY;
  x->stats.p50 = 21.0;
  x->stats.p95 = 22.0;
  x->stats.p99 = 22.25;
  x->stats.has_slope = 0;
  x->stats.slope_per_min = 0.5; /* ignored: has_slope is false */
  x->stats_ptrs[0] = &x->stats;

  rackpulse__v1__device_status__init(&x->device);
  x->device.device = "cdu1";
  x->device.kind = "modbus";
  x->device.up = 0;
  x->device.last_error = "cdu1: connection refused";
  x->device.scrape_ms = 17;
  x->device.scrapes = 1000;
  x->device.failures = 3;
  x->device.last_ok_ms = 1699999999000LL;
  x->device_ptrs[0] = &x->device;

  rackpulse__v1__agent_health__init(&x->health);
  x->health.version = "0.1.0";
  x->health.frames_produced = 500;
  x->health.frames_delivered = 498;
  x->health.frames_failed = 2;
  x->health.spool_depth = 4;
  x->health.frames_dropped = 1;
  x->health.delivery_latency_ms = 35;
  x->health.scrapes_late = 6;
  x->health.frames_rejected = 2;
  x->health.kafka_error = "Broker: Topic authorization failed";
  x->health.spool_write_failures = 3;
  x->health.spool_degraded = 1;

  rackpulse__v1__frame__init(&x->frame);
  x->frame.schema_version = 1;
  x->frame.agent_id = "agent-1";
  x->frame.rack_id = "r01";
  x->frame.seq = 42;
  x->frame.ts_ms = 1700000000500LL;
  x->frame.interval_ms = 1000;
  x->frame.dictionary_version = 3;
  x->frame.incarnation = 0xfedcba9876543210ull;
  x->frame.dictionary_hash = 0x0123456789abcdefull;
  x->frame.dictionary = x->def_ptrs;
  x->frame.n_dictionary = 2;
  x->frame.samples = x->block_ptrs;
  x->frame.n_samples = 1;
  x->frame.statuses = x->status_ptrs;
  x->frame.n_statuses = 1;
  x->frame.stats = x->stats_ptrs;
  x->frame.n_stats = 1;
  x->frame.devices = x->device_ptrs;
  x->frame.n_devices = 1;
  x->frame.health = &x->health;
}

/* Packs a frame into a malloc'd buffer of exactly its size. */
static uint8_t *pack(const Rackpulse__V1__Frame *f, size_t *len) {
  *len = rackpulse__v1__frame__get_packed_size(f);
  uint8_t *buf = malloc(*len ? *len : 1);
  assert_non_null(buf);
  assert_int_equal(rackpulse__v1__frame__pack(f, buf), *len);
  return buf;
}

/* Packs and decodes; returns rp_frame_decode's result and its message. */
static int pack_decode(const Rackpulse__V1__Frame *f, rp_frame **out, char *err, size_t errlen) {
  size_t len;
  uint8_t *buf = pack(f, &len);
  *out = NULL;
  err[0] = '\0';
  int rc = rp_frame_decode(buf, len, out, err, errlen);
  free(buf);
  return rc;
}

static void expect_proto(const Rackpulse__V1__Frame *f, const char *want) {
  rp_frame *out;
  char err[256];
  int rc = pack_decode(f, &out, err, sizeof(err));
  if (rc != -EPROTO || strcmp(err, want) != 0)
    fail_msg("want -EPROTO '%s', got %d '%s'", want, rc, err);
  assert_null(out);
}

/* ---- values -------------------------------------------------------------- */

static void test_scale_known_answers(void **state) {
  (void)state;
  static const struct {
    double v;
    int d;
    int64_t want;
  } cases[] = {
      {21.37, 2, 2137},
      {-21.37, 2, -2137},
      {0.0, 5, 0},
      {-0.0, 3, 0},
      {1.23456789, 9, 1234567890},
      {-1e-9, 9, -1},
      {4e-10, 9, 0},
      {6e-10, 9, 1},
      {1234.0, -2, 12},
      {-1251.0, -2, -13},
      {123.456, -2, 1},
      {99.0, -1, 10},
      {1.0, 0, 1},
      {7.4999, 0, 7},
      {7.5001, 0, 8},
      {-7.5001, 0, -8},
      {2.5000001, 0, 3},
      {-2.4999999, 0, -2},
      {9.1e18, 0, 9100000000000000000LL},
      {123456.0, -2, 1235},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int64_t got = -777;
    int rc = rp_value_scale(cases[i].v, cases[i].d, &got);
    if (rc != 0 || got != cases[i].want)
      fail_msg("scale(%.17g, %d): rc %d, %lld, want %lld", cases[i].v, cases[i].d, rc,
               (long long)got, (long long)cases[i].want);
  }
  assert_true(rp_value_unscale(2137, 2) == 21.37);
  assert_true(rp_value_unscale(-15, 1) == -1.5);
  assert_true(rp_value_unscale(12, -2) == 1200.0);
  assert_true(rp_value_unscale(-1, 9) == -1e-9);
  assert_true(rp_value_unscale(0, 7) == 0.0);
}

/* Every scaled integer survives unscale then scale, for every decimals. */
static void test_scale_round_trip(void **state) {
  (void)state;
  static const int64_t samples[] = {0,
                                    1,
                                    -1,
                                    7,
                                    -7,
                                    2137,
                                    -2137,
                                    99999,
                                    -100001,
                                    123456789,
                                    -987654321,
                                    1099511627775LL,
                                    -1099511627775LL};
  for (int d = -2; d <= 9; d++) {
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
      double v = rp_value_unscale(samples[i], d);
      int64_t back = 0;
      int rc = rp_value_scale(v, d, &back);
      if (rc != 0 || back != samples[i])
        fail_msg("decimals %d: %lld -> %.17g -> rc %d, %lld", d, (long long)samples[i], v, rc,
                 (long long)back);
    }
    /* And decimal values written with at most d digits survive the other way. */
    if (d >= 0) {
      double v = 321.0 + 0.5 * (d > 0); /* 321 or 321.5 */
      int64_t s;
      assert_int_equal(rp_value_scale(v, d, &s), 0);
      assert_true(rp_value_unscale(s, d) == v);
      assert_int_equal(rp_value_scale(-v, d, &s), 0);
      assert_true(rp_value_unscale(s, d) == -v);
    }
  }
}

/* Exact ties (x.5 after scaling) round to one of the two nearest integers,
 * the same magnitude for v and -v. The header does not say which one. */
static void test_scale_half_way(void **state) {
  (void)state;
  static const struct {
    double v;
    int d;
  } ties[] = {{0.5, 0},   {1.5, 0},  {2.5, 0},    {1e6 + 0.5, 0}, {0.125, 2},
              {0.375, 2}, {0.05, 1}, {150.0, -2}, {250.0, -2},    {0.0625, 3}};
  for (size_t i = 0; i < sizeof(ties) / sizeof(ties[0]); i++) {
    double exact = ties[i].v * pow(10.0, ties[i].d);
    int64_t pos = 0, neg = 0;
    assert_int_equal(rp_value_scale(ties[i].v, ties[i].d, &pos), 0);
    assert_int_equal(rp_value_scale(-ties[i].v, ties[i].d, &neg), 0);
    if (fabs((double)pos - exact) > 0.5 + 1e-9)
      fail_msg("scale(%g, %d) = %lld, not nearest to %g", ties[i].v, ties[i].d, (long long)pos,
               exact);
    if (neg != -pos)
      fail_msg("scale(%g, %d) = %lld but scale(-v) = %lld", ties[i].v, ties[i].d, (long long)pos,
               (long long)neg);
  }
}

static void test_scale_range_errors(void **state) {
  (void)state;
  static const struct {
    double v;
    int d;
  } bad[] = {{NAN, 2},   {-NAN, 0},     {INFINITY, 0}, {-INFINITY, 9},
             {1e10, 9},  {-1e10, 9},    {9.3e18, 0},   {-9.3e18, 0},
             {1e300, 2}, {DBL_MAX, -2}, {1e17, 2},     {-92233720368.6, 8}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t out = 55;
    int rc = rp_value_scale(bad[i].v, bad[i].d, &out);
    if (rc != -ERANGE || out != 55)
      fail_msg("scale(%g, %d): rc %d out %lld, want -ERANGE and untouched", bad[i].v, bad[i].d, rc,
               (long long)out);
  }
}

/* ---- decoding ------------------------------------------------------------ */

static void test_decode_valid(void **state) {
  (void)state;
  struct fixture x;
  fixture_init(&x);
  rp_frame *f;
  char err[256];
  assert_int_equal(pack_decode(&x.frame, &f, err, sizeof(err)), 0);
  assert_non_null(f);
  assert_int_equal(f->schema_version, 1);
  assert_string_equal(f->agent_id, "agent-1");
  assert_string_equal(f->rack_id, "r01");
  assert_int_equal(f->seq, 42);
  assert_int_equal(f->ts_ms, 1700000000500LL);
  assert_int_equal(f->interval_ms, 1000);
  assert_int_equal(f->dictionary_version, 3);
  assert_true(f->incarnation == 0xfedcba9876543210ull);
  assert_true(f->dictionary_hash == 0x0123456789abcdefull);
  assert_int_equal(f->n_dictionary, 2);
  assert_int_equal(f->dictionary[0]->id, 0);
  assert_string_equal(f->dictionary[0]->name, "cdu.supply_temp");
  assert_string_equal(f->dictionary[0]->unit, "Cel");
  assert_string_equal(f->dictionary[0]->device, "cdu1");
  assert_int_equal(f->dictionary[0]->decimals, 2);
  assert_int_equal(f->dictionary[0]->n_labels, 1);
  assert_string_equal(f->dictionary[0]->labels[0]->key, "loop");
  assert_string_equal(f->dictionary[0]->labels[0]->value, "primary");
  assert_int_equal(f->dictionary[1]->id, 7);
  assert_int_equal(f->dictionary[1]->n_labels, 0);
  assert_int_equal(f->n_samples, 1);
  assert_int_equal(f->samples[0]->ts_ms, 1700000000123LL);
  assert_int_equal(f->samples[0]->n_series, 3);
  assert_int_equal(f->samples[0]->n_scaled, 3);
  assert_int_equal(f->samples[0]->series[1], 7);
  assert_int_equal(f->samples[0]->scaled[1], -15);
  assert_int_equal(f->samples[0]->scaled[2], 123456789012LL);
  assert_int_equal(f->n_statuses, 1);
  assert_int_equal(f->statuses[0]->status, RACKPULSE__V1__READING_STATUS__READING_ERROR);
  assert_string_equal(f->statuses[0]->detail, "exception 2");
  assert_int_equal(f->n_stats, 1);
  assert_true(isnan(f->stats[0]->min));
  assert_int_equal(f->n_devices, 1);
  assert_string_equal(f->devices[0]->last_error, "cdu1: connection refused");
  assert_int_equal(f->devices[0]->failures, 3);
  assert_non_null(f->health);
  assert_int_equal(f->health->scrapes_late, 6);

  assert_ptr_equal(rp_frame_find_series(f, 7), f->dictionary[1]);
  assert_ptr_equal(rp_frame_find_series(f, 0), f->dictionary[0]);
  assert_null(rp_frame_find_series(f, 99));
  assert_null(rp_frame_find_series(NULL, 0));
  rp_frame_free(f);
  rp_frame_free(NULL);

  /* The limits themselves are accepted. */
  char name[RP_FRAME_MAX_NAME + 1], id[RP_ID_MAX + 1];
  memset(name, 'n', RP_FRAME_MAX_NAME);
  name[RP_FRAME_MAX_NAME] = '\0';
  memset(id, 'a', RP_ID_MAX);
  id[RP_ID_MAX] = '\0';
  x.defs[1].name = name;
  x.label.value = name;
  x.frame.agent_id = id;
  x.frame.rack_id = id;
  x.defs[0].decimals = -9;
  x.defs[1].decimals = 9;
  assert_int_equal(pack_decode(&x.frame, &f, err, sizeof(err)), 0);
  assert_int_equal(strlen(f->dictionary[1]->name), RP_FRAME_MAX_NAME);
  rp_frame_free(f);
}

static void test_decode_garbage(void **state) {
  (void)state;
  static const struct {
    const char *bytes;
    size_t len;
  } cases[] = {
      /* Field 2 (agent_id) says 16 bytes follow, one does. */
      {"\x12\x10"
       "a",
       3},
      /* A varint that never ends. */
      {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12},
      /* Field number 0 is invalid. */
      {"\x00\x01", 2},
      /* Field 1 (uint32) sent with the length-delimited wire type. */
      {"\x0a\x02zz", 4},
      /* Wire types 6 and 7 do not exist. */
      {"\x0e\x01", 2},
      {"plain text, not protobuf at all", 31},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t *buf = malloc(cases[i].len);
    assert_non_null(buf);
    memcpy(buf, cases[i].bytes, cases[i].len);
    rp_frame *f = NULL;
    char err[256] = "";
    int rc = rp_frame_decode(buf, cases[i].len, &f, err, sizeof(err));
    free(buf);
    if (rc != -EBADMSG)
      fail_msg("case %zu: rc %d '%s', want -EBADMSG", i, rc, err);
    assert_null(f);
    assert_string_equal(err, "not a rackpulse.v1.Frame (protobuf decoding failed)");
  }
}

/* Every prefix of a valid frame is refused or decodes to a valid frame; it
 * never crashes or reads past its end. Cutting the last byte always breaks
 * the last field, so that one must be refused. */
static void test_decode_truncated(void **state) {
  (void)state;
  struct fixture x;
  fixture_init(&x);
  size_t len;
  uint8_t *whole = pack(&x.frame, &len);
  assert_true(len > 100);
  size_t refused = 0;
  for (size_t n = 0; n < len; n++) {
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    memcpy(buf, whole, n);
    rp_frame *f = NULL;
    char err[256];
    int rc = rp_frame_decode(buf, n, &f, err, sizeof(err));
    free(buf);
    if (rc == 0) {
      assert_non_null(f);
      assert_int_equal(f->schema_version, 1);
      rp_frame_free(f);
      continue;
    }
    if (rc != -EBADMSG && rc != -EPROTO)
      fail_msg("prefix %zu of %zu: rc %d", n, len, rc);
    refused++;
    if (n == len - 1)
      assert_int_equal(rc, -EBADMSG);
  }
  /* Nearly every cut lands inside a field. */
  assert_true(refused > len / 2);
  free(whole);
}

static void test_decode_rules(void **state) {
  (void)state;
  struct fixture x;
  char big[RP_FRAME_MAX_NAME + 2], id[RP_ID_MAX + 2];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  memset(id, 'a', sizeof(id) - 1);
  id[sizeof(id) - 1] = '\0';

  fixture_init(&x);
  x.frame.schema_version = 2;
  expect_proto(&x.frame, "schema_version 2, this build reads 1");
  x.frame.schema_version = 0;
  expect_proto(&x.frame, "schema_version 0, this build reads 1");

  fixture_init(&x);
  x.frame.rack_id = "";
  expect_proto(&x.frame, "empty agent_id or rack_id");
  fixture_init(&x);
  x.frame.agent_id = "";
  expect_proto(&x.frame, "empty agent_id or rack_id");
  fixture_init(&x);
  x.frame.rack_id = id;
  expect_proto(&x.frame, "rack_id longer than 64 bytes");
  fixture_init(&x);
  x.frame.agent_id = id;
  expect_proto(&x.frame, "agent_id longer than 64 bytes");

  fixture_init(&x);
  x.block.n_scaled = 2;
  expect_proto(&x.frame, "sample block 0: 3 series ids but 2 values");
  fixture_init(&x);
  x.block.n_series = 0;
  expect_proto(&x.frame, "sample block 0: 0 series ids but 3 values");

  fixture_init(&x);
  x.defs[1].name = big;
  expect_proto(&x.frame, "series name longer than 128 bytes");
  fixture_init(&x);
  x.defs[0].unit = big;
  expect_proto(&x.frame, "series unit longer than 128 bytes");
  fixture_init(&x);
  x.defs[0].device = big;
  expect_proto(&x.frame, "series device longer than 128 bytes");
  fixture_init(&x);
  x.label.key = big;
  expect_proto(&x.frame, "label key longer than 128 bytes");
  fixture_init(&x);
  x.label.value = big;
  expect_proto(&x.frame, "label value longer than 128 bytes");
  fixture_init(&x);
  x.defs[1].name = "";
  expect_proto(&x.frame, "series 7 has an empty name");
  fixture_init(&x);
  x.defs[1].decimals = 10;
  expect_proto(&x.frame, "series 7: decimals 10 outside -9..9");
  fixture_init(&x);
  x.defs[0].decimals = -10;
  expect_proto(&x.frame, "series 0: decimals -10 outside -9..9");

  /* An empty message is a frame of schema version 0. */
  rp_frame *f = NULL;
  char err[256];
  uint8_t one = 0;
  assert_int_equal(rp_frame_decode(&one, 0, &f, err, sizeof(err)), -EPROTO);
  assert_null(f);
}

static void test_decode_oversized(void **state) {
  (void)state;
  size_t len = RP_FRAME_MAX_BYTES + 1;
  uint8_t *buf = calloc(1, len);
  assert_non_null(buf);
  rp_frame *f = NULL;
  char err[256];
  assert_int_equal(rp_frame_decode(buf, len, &f, err, sizeof(err)), -EMSGSIZE);
  assert_null(f);
  assert_string_equal(err, "message of 4194305 bytes exceeds the 4194304-byte frame limit");
  free(buf);

  /* A message of exactly the limit is decoded (and refused only by content):
   * a frame whose agent_id string fills it. */
  struct fixture x;
  fixture_init(&x);
  x.frame.n_dictionary = x.frame.n_samples = x.frame.n_statuses = 0;
  x.frame.n_stats = x.frame.n_devices = 0;
  x.frame.health = NULL;
  size_t room = RP_FRAME_MAX_BYTES - 100;
  char *huge = malloc(RP_FRAME_MAX_BYTES);
  assert_non_null(huge);
  memset(huge, 'd', RP_FRAME_MAX_BYTES);
  huge[room] = '\0';
  x.frame.agent_id = huge;
  size_t size = rackpulse__v1__frame__get_packed_size(&x.frame);
  huge[room] = 'd';
  room += RP_FRAME_MAX_BYTES - size;
  huge[room] = '\0';
  assert_int_equal(rackpulse__v1__frame__get_packed_size(&x.frame), RP_FRAME_MAX_BYTES);
  assert_int_equal(pack_decode(&x.frame, &f, err, sizeof(err)), -EPROTO);
  assert_string_equal(err, "agent_id longer than 64 bytes");
  free(huge);
}

/* ---- JSON ---------------------------------------------------------------- */

static const json_t *sample_at(const json_t *o, size_t i) {
  const json_t *s = json_array_get(json_object_get(o, "samples"), i);
  assert_non_null(s);
  return s;
}

static void test_to_json(void **state) {
  (void)state;
  struct fixture x;
  char err[256];
  fixture_init(&x);
  rp_frame *dict;
  assert_int_equal(pack_decode(&x.frame, &dict, err, sizeof(err)), 0);

  /* A later frame without a dictionary: names come from `dict`. */
  x.frame.n_dictionary = 0;
  x.frame.seq = 43;
  x.stats.has_slope = 1;
  x.stats.slope_per_min = -0.25;
  rp_frame *f;
  assert_int_equal(pack_decode(&x.frame, &f, err, sizeof(err)), 0);

  json_t *o = rp_frame_to_json(f, dict);
  assert_non_null(o);
  assert_int_equal(json_integer_value(json_object_get(o, "schema_version")), 1);
  assert_string_equal(json_string_value(json_object_get(o, "agent_id")), "agent-1");
  assert_string_equal(json_string_value(json_object_get(o, "rack_id")), "r01");
  assert_int_equal(json_integer_value(json_object_get(o, "seq")), 43);
  assert_int_equal(json_integer_value(json_object_get(o, "ts_ms")), 1700000000500LL);
  assert_int_equal(json_integer_value(json_object_get(o, "interval_ms")), 1000);
  assert_int_equal(json_integer_value(json_object_get(o, "dictionary_version")), 3);
  /* 64-bit ids as hex strings: a JSON number would lose their low bits. */
  assert_string_equal(json_string_value(json_object_get(o, "incarnation")), "fedcba9876543210");
  assert_string_equal(json_string_value(json_object_get(o, "dictionary_hash")), "0123456789abcdef");
  assert_int_equal(json_array_size(json_object_get(o, "dictionary")), 0);
  assert_int_equal(json_array_size(json_object_get(o, "samples")), 3);

  const json_t *s0 = sample_at(o, 0);
  assert_string_equal(json_string_value(json_object_get(s0, "name")), "cdu.supply_temp");
  assert_string_equal(json_string_value(json_object_get(s0, "unit")), "Cel");
  assert_string_equal(json_string_value(json_object_get(s0, "device")), "cdu1");
  assert_true(json_real_value(json_object_get(s0, "value")) == 21.37);
  assert_int_equal(json_integer_value(json_object_get(s0, "ts_ms")), 1700000000123LL);
  assert_int_equal(json_integer_value(json_object_get(s0, "series")), 0);
  assert_null(json_object_get(s0, "scaled"));
  const json_t *s1 = sample_at(o, 1);
  assert_string_equal(json_string_value(json_object_get(s1, "name")), "cdu.flow");
  assert_true(json_real_value(json_object_get(s1, "value")) == -1.5);
  /* Unknown to both: the raw scaled integer, no name. */
  const json_t *s2 = sample_at(o, 2);
  assert_null(json_object_get(s2, "name"));
  assert_null(json_object_get(s2, "value"));
  assert_int_equal(json_integer_value(json_object_get(s2, "series")), 99);
  assert_int_equal(json_integer_value(json_object_get(s2, "scaled")), 123456789012LL);

  const json_t *st = json_array_get(json_object_get(o, "statuses"), 0);
  assert_int_equal(json_integer_value(json_object_get(st, "series")), 7);
  assert_string_equal(json_string_value(json_object_get(st, "status")), "READING_ERROR");
  assert_string_equal(json_string_value(json_object_get(st, "detail")), "exception 2");

  const json_t *ws = json_array_get(json_object_get(o, "stats"), 0);
  assert_int_equal(json_integer_value(json_object_get(ws, "window_s")), 60);
  assert_int_equal(json_integer_value(json_object_get(ws, "count")), 12);
  assert_true(json_is_null(json_object_get(ws, "min")));    /* NaN */
  assert_true(json_is_null(json_object_get(ws, "stddev"))); /* inf */
  assert_true(json_real_value(json_object_get(ws, "max")) == 22.5);
  assert_true(json_real_value(json_object_get(ws, "p99")) == 22.25);
  assert_true(json_real_value(json_object_get(ws, "slope_per_min")) == -0.25);

  const json_t *dv = json_array_get(json_object_get(o, "devices"), 0);
  assert_string_equal(json_string_value(json_object_get(dv, "device")), "cdu1");
  assert_string_equal(json_string_value(json_object_get(dv, "kind")), "modbus");
  assert_true(json_is_false(json_object_get(dv, "up")));
  assert_string_equal(json_string_value(json_object_get(dv, "last_error")),
                      "cdu1: connection refused");
  assert_int_equal(json_integer_value(json_object_get(dv, "scrape_ms")), 17);
  assert_int_equal(json_integer_value(json_object_get(dv, "scrapes")), 1000);
  assert_int_equal(json_integer_value(json_object_get(dv, "last_ok_ms")), 1699999999000LL);

  const json_t *h = json_object_get(o, "health");
  assert_string_equal(json_string_value(json_object_get(h, "version")), "0.1.0");
  assert_int_equal(json_integer_value(json_object_get(h, "frames_delivered")), 498);
  assert_int_equal(json_integer_value(json_object_get(h, "delivery_latency_ms")), 35);
  assert_int_equal(json_integer_value(json_object_get(h, "scrapes_late")), 6);
  assert_int_equal(json_integer_value(json_object_get(h, "frames_rejected")), 2);
  assert_string_equal(json_string_value(json_object_get(h, "kafka_error")),
                      "Broker: Topic authorization failed");
  assert_int_equal(json_integer_value(json_object_get(h, "spool_write_failures")), 3);
  assert_true(json_is_true(json_object_get(h, "spool_degraded")));
  json_decref(o);

  /* Without a dictionary every sample is raw, and no slope means null. */
  rp_frame_free(f);
  x.stats.has_slope = 0;
  x.frame.health = NULL;
  assert_int_equal(pack_decode(&x.frame, &f, err, sizeof(err)), 0);
  o = rp_frame_to_json(f, NULL);
  assert_non_null(o);
  assert_null(json_object_get(sample_at(o, 0), "name"));
  assert_int_equal(json_integer_value(json_object_get(sample_at(o, 0), "scaled")), 2137);
  const json_t *ws2 = json_array_get(json_object_get(o, "stats"), 0);
  assert_true(json_is_null(json_object_get(ws2, "slope_per_min")));
  assert_true(json_is_null(json_object_get(o, "health")));
  json_decref(o);

  /* The frame's own dictionary wins, and is rendered. */
  o = rp_frame_to_json(dict, NULL);
  const json_t *d0 = json_array_get(json_object_get(o, "dictionary"), 0);
  assert_string_equal(json_string_value(json_object_get(d0, "name")), "cdu.supply_temp");
  assert_int_equal(json_integer_value(json_object_get(d0, "decimals")), 2);
  assert_string_equal(json_string_value(json_object_get(json_object_get(d0, "labels"), "loop")),
                      "primary");
  assert_true(json_real_value(json_object_get(sample_at(o, 0), "value")) == 21.37);
  json_decref(o);

  rp_frame_free(f);
  rp_frame_free(dict);
}

/* uint32 fields above INT_MAX keep their value in JSON. */
static void test_to_json_large_uint32(void **state) {
  (void)state;
  struct fixture x;
  char err[256];
  fixture_init(&x);
  x.defs[1].id = 3000000000u;
  x.ids[1] = 3000000000u;
  x.stats.window_s = 4000000000u;
  x.device.scrape_ms = 2500000000u;
  rp_frame *f;
  assert_int_equal(pack_decode(&x.frame, &f, err, sizeof(err)), 0);
  json_t *o = rp_frame_to_json(f, NULL);
  assert_non_null(o);
  /* Read everything, free, then assert: a failure leaks nothing. */
  const json_t *s1 = sample_at(o, 1);
  const json_t *d1 = json_array_get(json_object_get(o, "dictionary"), 1);
  const json_t *ws = json_array_get(json_object_get(o, "stats"), 0);
  const json_t *dv = json_array_get(json_object_get(o, "devices"), 0);
  int named = json_is_string(json_object_get(s1, "name"));
  json_int_t series = json_integer_value(json_object_get(s1, "series"));
  json_int_t id = json_integer_value(json_object_get(d1, "id"));
  json_int_t window = json_integer_value(json_object_get(ws, "window_s"));
  json_int_t scrape = json_integer_value(json_object_get(dv, "scrape_ms"));
  json_decref(o);
  rp_frame_free(f);
  assert_true(named);
  /* Regression: json_pack "i" was once given a json_int_t, so these came
   * out negative (and the call was undefined behaviour). */
  assert_int_equal(series, 3000000000LL);
  assert_int_equal(id, 3000000000LL);
  assert_int_equal(window, 4000000000LL);
  assert_int_equal(scrape, 2500000000LL);
}

/* The dictionary's identity: the canonical form documented in frame.h,
 * pinned by a value computed independently (a few lines of Python over the
 * same bytes), independent of the order the dictionary is sent in. */
static void test_dictionary_hash(void **state) {
  (void)state;
  struct fixture x;
  fixture_init(&x);
  uint64_t h = 0;
  assert_int_equal(rp_frame_dictionary_hash(&x.frame, &h), 0);
  assert_true(h == 0xd30a17dea3abe74bull);
  /* Streaming by hand gives the same. */
  uint64_t s = RP_DICT_HASH_INIT;
  s = rp_dict_hash_series(s, 0, "cdu.supply_temp", "Cel", "cdu1", 2, 1);
  s = rp_dict_hash_label(s, "loop", "primary");
  s = rp_dict_hash_series(s, 7, "cdu.flow", "L/min", "cdu1", 1, 0);
  assert_true(rp_dict_hash_final(s) == h);
  /* Sent in another order: same dictionary, same hash. */
  x.def_ptrs[0] = &x.defs[1];
  x.def_ptrs[1] = &x.defs[0];
  uint64_t again = 0;
  assert_int_equal(rp_frame_dictionary_hash(&x.frame, &again), 0);
  assert_true(again == h);
  /* Any field changes it. */
  x.defs[1].id = 8;
  assert_int_equal(rp_frame_dictionary_hash(&x.frame, &again), 0);
  assert_true(again != h);
  x.defs[1].id = 7;
  x.label.value = "secondary";
  assert_int_equal(rp_frame_dictionary_hash(&x.frame, &again), 0);
  assert_true(again != h);
  /* The empty dictionary has a hash too; none is 0. */
  x.frame.n_dictionary = 0;
  assert_int_equal(rp_frame_dictionary_hash(&x.frame, &again), 0);
  assert_true(again == 0xefd01f60ba992926ull);
  assert_true(rp_dict_hash_final(0) != 0);
  /* Legacy ids: one per version, never 0, never a content hash above. */
  assert_true(rp_dict_legacy_id(1) != rp_dict_legacy_id(2));
  assert_true(rp_dict_legacy_id(0) != 0);
  assert_true(rp_dict_legacy_id(3) != h);
}

static void test_now_ms(void **state) {
  (void)state;
  int64_t a = rp_now_ms(), b = rp_now_ms();
  assert_true(a > 1600000000000LL); /* after 2020 */
  assert_true(b >= a && b - a < 1000);
}

/* The decimals a scale needs. The tolerance is relative to the digit
 * tried: an exact 8-digit scale is 8 (an absolute 1e-9 made it 9, as
 * 1.23456789e8 is not an integer to within 1e-9 in doubles). */
static void test_scale_decimals(void **state) {
  (void)state;
  static const struct {
    double scale;
    int want;
  } cases[] = {
      {0.01, 2}, {10, 0},      {0.001, 3}, {1, 0},          {0.5, 1},         {0.1, 1},
      {0.3, 1},  {0.025, 3},   {-0.05, 2}, {0.000123, 6},   {1234.5678, 4},   {1.23456789, 8},
      {0, 0},    {1.0 / 3, 9}, {1e6, 0},   {12345678.9, 1}, {0.123456785, 9}, {0.0125, 4},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    if (rp_scale_decimals(cases[i].scale) != cases[i].want)
      fail_msg("scale %.17g: %d decimals, want %d", cases[i].scale,
               rp_scale_decimals(cases[i].scale), cases[i].want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scale_decimals),
      cmocka_unit_test(test_scale_known_answers),
      cmocka_unit_test(test_scale_round_trip),
      cmocka_unit_test(test_scale_half_way),
      cmocka_unit_test(test_scale_range_errors),
      cmocka_unit_test(test_decode_valid),
      cmocka_unit_test(test_decode_garbage),
      cmocka_unit_test(test_decode_truncated),
      cmocka_unit_test(test_decode_rules),
      cmocka_unit_test(test_decode_oversized),
      cmocka_unit_test(test_to_json),
      cmocka_unit_test(test_to_json_large_uint32),
      cmocka_unit_test(test_now_ms),
      cmocka_unit_test(test_dictionary_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
