/* Unit tests for the agent's series dictionary (agent/series.c) and frame
 * builder (agent/frames.c): ids are stable and bounded, and every field the
 * builder packs comes back through rp_frame_decode() (lib/frame.c), the
 * decoder every consumer uses. Targets are plain structs with a dummy
 * collector; no loop runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "rackpulse/frame.h"
#include "series.h"

static const struct rp_collector fake_modbus = {.name = "modbus"};
static const struct rp_collector fake_snmp = {.name = "snmp"};

static struct rp_reading reading(const char *name, const char *unit, int decimals,
                                 const struct rp_label *labels, size_t nlabels) {
  struct rp_reading r = {.name = name,
                         .unit = unit,
                         .labels = labels,
                         .nlabels = nlabels,
                         .decimals = decimals,
                         .status = RP_READING_OK};
  return r;
}

/* ---- series -------------------------------------------------------------- */

static void test_series_ids(void **state) {
  (void)state;
  struct rp_series_table t;
  assert_int_equal(rp_series_table_init(&t, 5), 0);
  assert_int_equal(t.version, 0);
  const struct rp_label pump_a[] = {{"pump", "A"}, {"loop", "primary"}};
  const struct rp_label pump_b[] = {{"pump", "B"}, {"loop", "primary"}};
  struct rp_reading ra = reading("cdu.flow", "L/min", 1, pump_a, 2);
  struct rp_reading rb = reading("cdu.flow", "L/min", 1, pump_b, 2);
  struct rp_reading plain = reading("cdu.flow", NULL, 0, NULL, 0);
  uint32_t id = 999, again = 999;

  assert_int_equal(rp_series_lookup(&t, "cdu1", &ra, &id), 0);
  assert_int_equal(id, 0);
  assert_int_equal(t.version, 1);
  /* Same (device, name, labels): same id, no new version. A reading is
   * matched by identity, not by its value or status. */
  ra.value = 12.5;
  ra.status = RP_READING_ERROR;
  assert_int_equal(rp_series_lookup(&t, "cdu1", &ra, &again), 0);
  assert_int_equal(again, 0);
  assert_int_equal(t.version, 1);
  assert_int_equal(t.count, 1);

  /* A different label value, a different device, no labels: new ids. */
  assert_int_equal(rp_series_lookup(&t, "cdu1", &rb, &id), 0);
  assert_int_equal(id, 1);
  assert_int_equal(t.version, 2);
  assert_int_equal(rp_series_lookup(&t, "cdu2", &ra, &id), 0);
  assert_int_equal(id, 2);
  assert_int_equal(t.version, 3);
  assert_int_equal(rp_series_lookup(&t, "cdu1", &plain, &id), 0);
  assert_int_equal(id, 3);
  assert_int_equal(t.version, 4);

  /* The entries hold copies of everything. */
  const struct rp_series *s = &t.entries[2];
  assert_int_equal(s->id, 2);
  assert_string_equal(s->name, "cdu.flow");
  assert_string_equal(s->unit, "L/min");
  assert_string_equal(s->device, "cdu2");
  assert_int_equal(s->decimals, 1);
  assert_int_equal(s->nlabels, 2);
  assert_string_equal(s->label_keys[0], "pump");
  assert_string_equal(s->label_values[0], "A");
  assert_string_equal(s->label_keys[1], "loop");
  assert_string_equal(s->label_values[1], "primary");
  assert_string_equal(t.entries[3].unit, ""); /* NULL unit */
  assert_int_equal(t.entries[3].nlabels, 0);

  /* Fill to the bound, then -ENOSPC without a version bump; known series
   * still resolve. */
  struct rp_reading last = reading("cdu.return_temp", "Cel", 2, NULL, 0);
  assert_int_equal(rp_series_lookup(&t, "cdu1", &last, &id), 0);
  assert_int_equal(id, 4);
  assert_int_equal(t.version, 5);
  struct rp_reading extra = reading("cdu.pressure", "kPa", 0, NULL, 0);
  id = 77;
  assert_int_equal(rp_series_lookup(&t, "cdu1", &extra, &id), -ENOSPC);
  assert_int_equal(id, 77);
  assert_int_equal(t.version, 5);
  assert_int_equal(t.count, 5);
  assert_int_equal(rp_series_lookup(&t, "cdu1", &rb, &id), 0);
  assert_int_equal(id, 1);
  assert_int_equal(rp_series_lookup(&t, "cdu2", &ra, &id), 0);
  assert_int_equal(id, 2);

  rp_series_table_free(&t);
  assert_null(t.entries);
  rp_series_table_free(&t); /* a zeroed table */
}

static void test_series_too_long(void **state) {
  (void)state;
  struct rp_series_table t;
  assert_int_equal(rp_series_table_init(&t, 4), 0);
  char big[1100];
  memset(big, 'v', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  const struct rp_label l[] = {{"k", big}};
  struct rp_reading r = reading("n", "W", 0, l, 1);
  uint32_t id;
  assert_int_equal(rp_series_lookup(&t, "dev", &r, &id), -ENAMETOOLONG);
  r = reading(big, "W", 0, NULL, 0);
  assert_int_equal(rp_series_lookup(&t, "dev", &r, &id), -ENAMETOOLONG);
  assert_int_equal(t.count, 0);
  assert_int_equal(t.version, 0);
  rp_series_table_free(&t);
}

/* Many series through the hash index: every id is unique and stable. */
static void test_series_many(void **state) {
  (void)state;
  enum { N = 3000 };
  struct rp_series_table t;
  assert_int_equal(rp_series_table_init(&t, N), 0);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      char name[32], dev[16], val[16];
      snprintf(name, sizeof(name), "m%d", i % 37);
      snprintf(dev, sizeof(dev), "d%d", i % 11);
      snprintf(val, sizeof(val), "%d", i);
      const struct rp_label l[] = {{"i", val}};
      struct rp_reading r = reading(name, "W", 0, l, 1);
      uint32_t id;
      assert_int_equal(rp_series_lookup(&t, dev, &r, &id), 0);
      if (id != (uint32_t)i)
        fail_msg("round %d: series %d got id %u", round, i, id);
    }
    assert_int_equal(t.count, N);
    assert_int_equal(t.version, N);
  }
  rp_series_table_free(&t);
}

/* ---- builder ------------------------------------------------------------- */

struct world {
  struct rp_series_table series;
  struct rp_target up, down;
  struct rp_target *targets[2];
  struct rp_agent_health health;
};

static void world_init(struct world *w) {
  memset(w, 0, sizeof(*w));
  assert_int_equal(rp_series_table_init(&w->series, 16), 0);
  const struct rp_label loop[] = {{"loop", "primary"}};
  struct rp_reading rs[] = {
      reading("cdu.supply_temp", "Cel", 2, loop, 1),
      reading("cdu.flow", "L/min", 1, NULL, 0),
      reading("pdu.power", "W", 0, NULL, 0),
      reading("pdu.freq", "Hz", -1, NULL, 0),
  };
  const char *devs[] = {"cdu1", "cdu1", "pdu1", "pdu1"};
  for (size_t i = 0; i < 4; i++) {
    uint32_t id;
    assert_int_equal(rp_series_lookup(&w->series, devs[i], &rs[i], &id), 0);
    assert_int_equal(id, i);
  }
  snprintf(w->up.name, sizeof(w->up.name), "cdu1");
  w->up.collector = &fake_modbus;
  w->up.up = true;
  w->up.scrape_ms = 12;
  w->up.scrapes = 100;
  w->up.failures = 1;
  w->up.last_ok_ms = 1700000000000LL;
  snprintf(w->down.name, sizeof(w->down.name), "pdu1");
  w->down.collector = &fake_snmp;
  w->down.up = false;
  snprintf(w->down.last_error, sizeof(w->down.last_error), "pdu1: timeout after 2000 ms");
  w->down.scrape_ms = 2000;
  w->down.scrapes = 50;
  w->down.failures = 50;
  w->down.last_ok_ms = 0;
  w->targets[0] = &w->up;
  w->targets[1] = &w->down;
  w->health = (struct rp_agent_health){.frames_produced = 10,
                                       .frames_delivered = 9,
                                       .frames_failed = 1,
                                       .spool_depth = 2,
                                       .frames_dropped = 3,
                                       .scrapes_late = 4,
                                       .delivery_latency_ms = 55,
                                       .frames_rejected = 6,
                                       .spool_write_failures = 7,
                                       .spool_degraded = true,
                                       .kafka_error = "Broker: Topic authorization failed"};
}

/* Builds a frame and decodes it with the consumers' decoder. */
static rp_frame *build_decode(struct rp_frame_builder *b, const struct rp_frame_meta *m,
                              struct world *w, size_t ntargets) {
  uint8_t *buf = (uint8_t *)&buf;
  size_t len = 0;
  assert_int_equal(rp_builder_build(b, m, &w->series, w->targets, ntargets, &w->health, &buf, &len),
                   0);
  assert_true(len > 0);
  rp_frame *f = NULL;
  char err[256];
  int rc = rp_frame_decode(buf, len, &f, err, sizeof(err));
  free(buf);
  if (rc != 0)
    fail_msg("decode: %d %s", rc, err);
  return f;
}

static void test_build_full_frame(void **state) {
  (void)state;
  struct world w;
  world_init(&w);
  struct rp_frame_builder *b = rp_builder_new(5);
  assert_non_null(b);

  const uint32_t ids1[] = {0, 1};
  const int64_t sc1[] = {2137, -15};
  const uint32_t ids2[] = {2, 3, 0};
  const int64_t sc2[] = {42000, 500, 2140};
  assert_int_equal(rp_builder_add_block(b, 1700000000100LL, ids1, sc1, 2), 0);
  assert_int_equal(rp_builder_add_block(b, 1700000000200LL, ids2, sc2, 3), 0);
  assert_int_equal(rp_builder_add_block(b, 1700000000300LL, ids1, sc1, 0), 0); /* nothing */
  assert_int_equal(rp_builder_pending(b), 5);
  /* One more sample is over the bound: dropped whole, counted. */
  assert_int_equal(rp_builder_add_block(b, 1700000000400LL, ids1, sc1, 1), -ENOSPC);
  assert_int_equal(rp_builder_pending(b), 5);
  assert_int_equal(rp_builder_dropped(b), 1);
  assert_int_equal(rp_builder_add_status(b, 1, RP_READING_ERROR, "exception 2"), 0);
  assert_int_equal(rp_builder_add_status(b, 3, RP_READING_ABSENT, NULL), 0);

  struct rp_frame_meta m = {.agent_id = "agent-7",
                            .rack_id = "r12",
                            .seq = 1234567890123ULL,
                            .ts_ms = 1700000000500LL,
                            .interval_ms = 1000,
                            .with_dictionary = true};
  rp_frame *f = build_decode(b, &m, &w, 2);
  assert_int_equal(f->schema_version, RP_FRAME_SCHEMA_VERSION);
  assert_string_equal(f->agent_id, "agent-7");
  assert_string_equal(f->rack_id, "r12");
  assert_int_equal(f->seq, 1234567890123ULL);
  assert_int_equal(f->ts_ms, 1700000000500LL);
  assert_int_equal(f->interval_ms, 1000);
  assert_int_equal(f->dictionary_version, 4);

  assert_int_equal(f->n_dictionary, 4);
  static const struct {
    const char *name, *unit, *device;
    int decimals;
    size_t nlabels;
  } want_dict[] = {{"cdu.supply_temp", "Cel", "cdu1", 2, 1},
                   {"cdu.flow", "L/min", "cdu1", 1, 0},
                   {"pdu.power", "W", "pdu1", 0, 0},
                   {"pdu.freq", "Hz", "pdu1", -1, 0}};
  for (size_t i = 0; i < 4; i++) {
    const Rackpulse__V1__SeriesDef *d = f->dictionary[i];
    assert_int_equal(d->id, i);
    assert_string_equal(d->name, want_dict[i].name);
    assert_string_equal(d->unit, want_dict[i].unit);
    assert_string_equal(d->device, want_dict[i].device);
    assert_int_equal(d->decimals, want_dict[i].decimals);
    assert_int_equal(d->n_labels, want_dict[i].nlabels);
  }
  assert_string_equal(f->dictionary[0]->labels[0]->key, "loop");
  assert_string_equal(f->dictionary[0]->labels[0]->value, "primary");

  assert_int_equal(f->n_samples, 2);
  assert_int_equal(f->samples[0]->ts_ms, 1700000000100LL);
  assert_int_equal(f->samples[0]->n_series, 2);
  assert_int_equal(f->samples[0]->series[0], 0);
  assert_int_equal(f->samples[0]->series[1], 1);
  assert_int_equal(f->samples[0]->scaled[0], 2137);
  assert_int_equal(f->samples[0]->scaled[1], -15);
  assert_int_equal(f->samples[1]->ts_ms, 1700000000200LL);
  assert_int_equal(f->samples[1]->n_series, 3);
  assert_memory_equal(f->samples[1]->series, ids2, sizeof(ids2));
  assert_memory_equal(f->samples[1]->scaled, sc2, sizeof(sc2));

  assert_int_equal(f->n_statuses, 2);
  assert_int_equal(f->statuses[0]->series, 1);
  assert_int_equal(f->statuses[0]->status, RACKPULSE__V1__READING_STATUS__READING_ERROR);
  assert_string_equal(f->statuses[0]->detail, "exception 2");
  assert_int_equal(f->statuses[1]->series, 3);
  assert_int_equal(f->statuses[1]->status, RACKPULSE__V1__READING_STATUS__READING_ABSENT);
  assert_string_equal(f->statuses[1]->detail, "");

  assert_int_equal(f->n_devices, 2);
  const Rackpulse__V1__DeviceStatus *d0 = f->devices[0], *d1 = f->devices[1];
  assert_string_equal(d0->device, "cdu1");
  assert_string_equal(d0->kind, "modbus");
  assert_true(d0->up);
  assert_string_equal(d0->last_error, "");
  assert_int_equal(d0->scrape_ms, 12);
  assert_int_equal(d0->scrapes, 100);
  assert_int_equal(d0->failures, 1);
  assert_int_equal(d0->last_ok_ms, 1700000000000LL);
  assert_string_equal(d1->device, "pdu1");
  assert_string_equal(d1->kind, "snmp");
  assert_false(d1->up);
  assert_string_equal(d1->last_error, "pdu1: timeout after 2000 ms");
  assert_int_equal(d1->scrape_ms, 2000);
  assert_int_equal(d1->scrapes, 50);
  assert_int_equal(d1->failures, 50);
  assert_int_equal(d1->last_ok_ms, 0);

  assert_non_null(f->health);
  assert_string_equal(f->health->version, RP_VERSION);
  assert_int_equal(f->health->frames_produced, 10);
  assert_int_equal(f->health->frames_delivered, 9);
  assert_int_equal(f->health->frames_failed, 1);
  assert_int_equal(f->health->spool_depth, 2);
  assert_int_equal(f->health->frames_dropped, 3);
  assert_int_equal(f->health->scrapes_late, 4);
  assert_int_equal(f->health->frames_rejected, 6);
  assert_int_equal(f->health->spool_write_failures, 7);
  assert_true(f->health->spool_degraded);
  assert_string_equal(f->health->kafka_error, "Broker: Topic authorization failed");
  assert_int_equal(f->health->delivery_latency_ms, 55);
  assert_int_equal(f->n_stats, 0);
  rp_frame_free(f);

  /* The builder is empty after a build; the dropped count stays. */
  assert_int_equal(rp_builder_pending(b), 0);
  assert_int_equal(rp_builder_dropped(b), 1);

  /* The next frame: no dictionary asked for, but the version still says
   * which dictionary the samples refer to. */
  const uint32_t ids3[] = {2};
  const int64_t sc3[] = {41000};
  assert_int_equal(rp_builder_add_block(b, 1700000001100LL, ids3, sc3, 1), 0);
  m.seq++;
  m.ts_ms += 1000;
  m.with_dictionary = false;
  f = build_decode(b, &m, &w, 1);
  assert_int_equal(f->seq, 1234567890124ULL);
  assert_int_equal(f->n_dictionary, 0);
  assert_int_equal(f->dictionary_version, 4);
  assert_int_equal(f->n_samples, 1);
  assert_int_equal(f->samples[0]->n_series, 1);
  assert_int_equal(f->samples[0]->series[0], 2);
  assert_int_equal(f->samples[0]->scaled[0], 41000);
  assert_int_equal(f->n_statuses, 0); /* statuses were emptied too */
  /* The device did not scrape since: its status is not sent again. */
  assert_int_equal(f->n_devices, 0);
  rp_frame_free(f);

  /* Now the bound has room again: 5 samples fit after a build. */
  const uint32_t ids5[] = {0, 1, 2, 3, 0};
  const int64_t sc5[] = {1, 2, 3, 4, 5};
  assert_int_equal(rp_builder_add_block(b, 1700000002000LL, ids5, sc5, 5), 0);
  assert_int_equal(rp_builder_add_block(b, 1700000002000LL, ids5, sc5, 2), -ENOSPC);
  assert_int_equal(rp_builder_dropped(b), 3);
  rp_builder_free(b);
  rp_series_table_free(&w.series);
}

/* An empty builder still makes a valid frame: ids, dictionary, health. */
static void test_build_empty(void **state) {
  (void)state;
  struct world w;
  world_init(&w);
  struct rp_frame_builder *b = rp_builder_new(8);
  assert_non_null(b);
  struct rp_frame_meta m = {.agent_id = "a",
                            .rack_id = "r",
                            .seq = 1,
                            .ts_ms = 5,
                            .interval_ms = 250,
                            .with_dictionary = true};
  rp_frame *f = build_decode(b, &m, &w, 0);
  assert_int_equal(f->n_samples, 0);
  assert_int_equal(f->n_statuses, 0);
  assert_int_equal(f->n_devices, 0);
  assert_int_equal(f->n_dictionary, 4);
  assert_int_equal(f->interval_ms, 250);
  rp_frame_free(f);

  /* The series table grows: the next dictionary has the new series and a
   * new version. */
  struct rp_reading r = reading("cdu.return_temp", "Cel", 2, NULL, 0);
  uint32_t id;
  assert_int_equal(rp_series_lookup(&w.series, "cdu1", &r, &id), 0);
  m.seq = 2;
  f = build_decode(b, &m, &w, 0);
  assert_int_equal(f->dictionary_version, 5);
  assert_int_equal(f->n_dictionary, 5);
  assert_string_equal(f->dictionary[4]->name, "cdu.return_temp");
  assert_int_equal(f->dictionary[4]->id, id);
  rp_frame_free(f);
  rp_builder_free(b);
  rp_builder_free(NULL);
  rp_series_table_free(&w.series);
}

static void test_status_bound(void **state) {
  (void)state;
  struct rp_frame_builder *b = rp_builder_new(2);
  assert_non_null(b);
  assert_int_equal(rp_builder_add_status(b, 0, RP_READING_ERROR, "a"), 0);
  assert_int_equal(rp_builder_add_status(b, 1, RP_READING_OUT_OF_RANGE, "b"), 0);
  assert_int_equal(rp_builder_add_status(b, 2, RP_READING_ERROR, "c"), -ENOSPC);
  /* A detail longer than the builder keeps is shortened, not overflowed. */
  struct world w;
  world_init(&w);
  struct rp_frame_meta m = {.agent_id = "a", .rack_id = "r", .seq = 1};
  rp_frame *f = build_decode(b, &m, &w, 0);
  assert_int_equal(f->n_statuses, 2);
  assert_int_equal(f->statuses[1]->status, RACKPULSE__V1__READING_STATUS__READING_OUT_OF_RANGE);
  rp_frame_free(f);
  char longd[400];
  memset(longd, 'z', sizeof(longd) - 1);
  longd[sizeof(longd) - 1] = '\0';
  assert_int_equal(rp_builder_add_status(b, 2, RP_READING_ERROR, longd), 0);
  f = build_decode(b, &m, &w, 0);
  assert_int_equal(f->n_statuses, 1);
  assert_true(strlen(f->statuses[0]->detail) > 0);
  assert_true(strlen(f->statuses[0]->detail) < sizeof(longd) - 1);
  assert_memory_equal(f->statuses[0]->detail, longd, strlen(f->statuses[0]->detail));
  rp_frame_free(f);
  rp_builder_free(b);
  rp_series_table_free(&w.series);
}

/* ---- dictionary identity ------------------------------------------------- */

struct spec {
  const char *device, *name, *unit;
  int decimals;
  const char *label_value; /* "loop" label, or NULL */
};

/* The content hash of a table filled from spec[0..n). */
static uint64_t hash_of(const struct spec *spec, size_t n) {
  struct rp_series_table t;
  assert_int_equal(rp_series_table_init(&t, 16), 0);
  for (size_t i = 0; i < n; i++) {
    const struct rp_label loop[] = {{"loop", spec[i].label_value}};
    struct rp_reading r =
        reading(spec[i].name, spec[i].unit, spec[i].decimals, loop, spec[i].label_value ? 1 : 0);
    uint32_t id;
    assert_int_equal(rp_series_lookup(&t, spec[i].device, &r, &id), 0);
  }
  uint64_t h = rp_series_table_hash(&t);
  assert_true(h != 0);
  assert_true(rp_series_table_hash(&t) == h); /* cached, same */
  rp_series_table_free(&t);
  return h;
}

/* The dictionary hash changes when the content changes (any field, or the
 * id a series got) and not otherwise. */
static void test_dictionary_hash(void **state) {
  (void)state;
  const struct spec base[] = {{"cdu1", "cdu.supply_temp", "Cel", 2, "primary"},
                              {"cdu1", "cdu.flow", "L/min", 1, NULL},
                              {"pdu1", "pdu.power", "W", 0, NULL}};
  uint64_t h = hash_of(base, 3);
  assert_true(hash_of(base, 3) == h); /* another table, another run: same content */
  assert_true(hash_of(base, 2) != h);
  struct spec v[3];
  memcpy(v, base, sizeof(v));
  v[1].unit = "l/min";
  assert_true(hash_of(v, 3) != h);
  memcpy(v, base, sizeof(v));
  v[2].decimals = 1;
  assert_true(hash_of(v, 3) != h);
  memcpy(v, base, sizeof(v));
  v[2].device = "pdu2";
  assert_true(hash_of(v, 3) != h);
  memcpy(v, base, sizeof(v));
  v[0].label_value = "secondary";
  assert_true(hash_of(v, 3) != h);
  memcpy(v, base, sizeof(v));
  v[0].name = "cdu.return_temp";
  assert_true(hash_of(v, 3) != h);
  /* The same series in another order: other ids, another dictionary. */
  const struct spec swapped[] = {base[1], base[0], base[2]};
  assert_true(hash_of(swapped, 3) != h);

  /* In a live table: looking up a known series keeps the hash, a new one
   * changes it. */
  struct world w;
  world_init(&w);
  uint64_t before = rp_series_table_hash(&w.series);
  struct rp_reading again = reading("cdu.flow", "L/min", 1, NULL, 0);
  uint32_t id;
  assert_int_equal(rp_series_lookup(&w.series, "cdu1", &again, &id), 0);
  assert_true(rp_series_table_hash(&w.series) == before);
  struct rp_reading fresh = reading("cdu.level", "%", 0, NULL, 0);
  assert_int_equal(rp_series_lookup(&w.series, "cdu1", &fresh, &id), 0);
  uint64_t after = rp_series_table_hash(&w.series);
  assert_true(after != before);

  /* Frames carry the incarnation and the hash, with the dictionary or
   * without it; a consumer computes the same hash from the dictionary. */
  struct rp_frame_builder *b = rp_builder_new(8);
  assert_non_null(b);
  struct rp_frame_meta m = {.agent_id = "a",
                            .rack_id = "r",
                            .incarnation = 0xfedcba9876543210ull,
                            .seq = 1,
                            .ts_ms = 5,
                            .interval_ms = 1000,
                            .with_dictionary = true};
  rp_frame *f = build_decode(b, &m, &w, 0);
  assert_true(f->incarnation == 0xfedcba9876543210ull);
  assert_true(f->dictionary_hash == after);
  uint64_t consumer = 0;
  assert_int_equal(rp_frame_dictionary_hash(f, &consumer), 0);
  assert_true(consumer == after);
  rp_frame_free(f);
  m.seq = 2;
  m.with_dictionary = false;
  f = build_decode(b, &m, &w, 0);
  assert_int_equal(f->n_dictionary, 0);
  assert_true(f->dictionary_hash == after);
  assert_true(f->incarnation == 0xfedcba9876543210ull);
  rp_frame_free(f);
  rp_builder_free(b);
  rp_series_table_free(&w.series);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_series_ids),      cmocka_unit_test(test_series_too_long),
      cmocka_unit_test(test_series_many),     cmocka_unit_test(test_build_full_frame),
      cmocka_unit_test(test_build_empty),     cmocka_unit_test(test_status_bound),
      cmocka_unit_test(test_dictionary_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
