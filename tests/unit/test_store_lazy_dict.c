/* Unit tests for frames decoded without their dictionary (issue 19, ingest
 * latency): rp_frame_decode_lazy() (lib/frame_lazy.c) leaves out a
 * dictionary named by its hash, so that the aggregator does not unpack a
 * dictionary it already stores (after a site-wide agent restart every agent
 * sends its own at once); store_apply() uses the stored one, or decodes the
 * message whole when it does not hold it (aggregator/store_apply.c,
 * store__apply_msg). A dictionary named by a legacy version that is sent
 * again unchanged is not rewritten either (store_dictionary). Each test opens a store in a fresh mkdtemp directory
 * (store_test_util.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_internal.h" /* struct store: dict_series_written */
#include "store_test_util.h"

#define T0 1700000000000LL

/* A packed frame and what rp_frame_decode_lazy() made of it. */
struct packed {
  uint8_t *buf;
  size_t len;
  rp_frame *f;
  bool left_out;
};

static void pack_lazy(struct fb *b, struct packed *p) {
  p->len = rackpulse__v1__frame__get_packed_size(&b->f);
  p->buf = malloc(p->len ? p->len : 1);
  assert_non_null(p->buf);
  rackpulse__v1__frame__pack(&b->f, p->buf);
  char err[256];
  if (rp_frame_decode_lazy(p->buf, p->len, &p->f, &p->left_out, err, sizeof(err)) != 0)
    fail_msg("decode: %s", err);
}

static void packed_free(struct packed *p) {
  rp_frame_free(p->f);
  free(p->buf);
}

/* The standard dictionary under its content hash, one sample, one device. */
static uint64_t hashed_frame(struct fb *b, uint64_t seq, int64_t flow) {
  fb_init(b, "agent-1", "r1", seq, T0 + (int64_t)seq * 1000, 1);
  b->f.incarnation = 7;
  fb_std_dict(b);
  assert_int_equal(rp_frame_dictionary_hash(&b->f, &b->f.dictionary_hash), 0);
  fb_sample(b, 1, flow);
  fb_device(b, "cdu1", "modbus", 1, "", 10, 0);
  return b->f.dictionary_hash;
}

/* Applies p as the consumer does: the message kept when the dictionary was
 * left out. Returns the message's frame after store_apply(). */
static const rp_frame *apply_packed(struct store *s, struct packed *p, int64_t offset,
                                    enum store_outcome *o) {
  struct store_msg m = {.frame = p->f,
                        .topic = TOPIC,
                        .partition = 0,
                        .offset = offset,
                        .raw = p->left_out ? p->buf : NULL,
                        .raw_len = p->len};
  char err[256];
  if (store_apply(s, &m, 1, err, sizeof(err)) != 0)
    fail_msg("store_apply: %s", err);
  if (o != NULL)
    *o = m.outcome;
  return m.frame;
}

/* Only a dictionary named by a hash is left out; the rest of the frame
 * decodes as rp_frame_decode() decodes it. */
static void test_lazy_decode_leaves_out_hashed_dictionary(void **state) {
  (void)state;
  struct fb b;
  struct packed p;
  uint64_t h = hashed_frame(&b, 1, 1234);
  pack_lazy(&b, &p);
  assert_true(p.left_out);
  assert_int_equal(p.f->n_dictionary, 0); /* none of its series unpacked */
  assert_true(p.f->dictionary_hash == h);
  assert_string_equal(p.f->agent_id, "agent-1");
  assert_string_equal(p.f->rack_id, "r1");
  assert_int_equal(p.f->seq, 1);
  assert_true(p.f->incarnation == 7);
  assert_int_equal(p.f->n_samples, 1);
  assert_int_equal(p.f->samples[0]->n_series, 1);
  assert_int_equal(p.f->samples[0]->scaled[0], 1234);
  assert_int_equal(p.f->n_devices, 1);
  assert_string_equal(p.f->devices[0]->device, "cdu1");
  packed_free(&p);

  /* Named by dictionary_version (older agents): decoded whole. */
  fb_init(&b, "agent-1", "r1", 2, T0, 3);
  fb_std_dict(&b);
  fb_sample(&b, 1, 5);
  pack_lazy(&b, &p);
  assert_false(p.left_out);
  assert_int_equal(p.f->n_dictionary, 3);
  packed_free(&p);

  /* No dictionary at all. */
  fb_init(&b, "agent-1", "r1", 3, T0, 1);
  b.f.dictionary_hash = h;
  fb_sample(&b, 1, 5);
  pack_lazy(&b, &p);
  assert_false(p.left_out);
  assert_true(p.f->dictionary_hash == h);
  packed_free(&p);

  /* Not a frame: the same error as rp_frame_decode(). */
  static const uint8_t junk[] = {0x0b, 0xff, 0x42, 0x07};
  rp_frame *f = NULL;
  bool left_out = true;
  char err[256];
  assert_int_equal(rp_frame_decode_lazy(junk, sizeof(junk), &f, &left_out, err, sizeof(err)),
                   rp_frame_decode(junk, sizeof(junk), &f, err, sizeof(err)));
  assert_false(left_out);
}

/* A dictionary the store does not hold yet is decoded from the message and
 * stored; the next frames that send it again are applied with the stored
 * one, as the whole frame would have been. */
static void test_unknown_dictionary_is_decoded_from_the_message(void **state) {
  struct fx *x = *state;
  struct fb b;
  struct packed p;
  enum store_outcome o;
  uint64_t h = hashed_frame(&b, 1, 1215);
  pack_lazy(&b, &p);
  assert_true(p.left_out);
  assert_ptr_equal(apply_packed(x->s, &p, 0, &o), p.f);
  assert_int_equal(o, STORE_APPLIED);
  packed_free(&p);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 121.5);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_true(ag.dicts[0] == h);
  assert_int_equal(ag.unknown_dict_frames, 0);

  /* Sent again (an agent restart): applied with the stored dictionary. */
  fx_reopen(x); /* nothing cached: what LMDB holds */
  hashed_frame(&b, 2, 1230);
  pack_lazy(&b, &p);
  apply_packed(x->s, &p, 1, &o);
  assert_int_equal(o, STORE_APPLIED);
  packed_free(&p);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 123.0);
  ag = agent_of(x->s, "agent-1");
  assert_int_equal(ag.frames, 2);
  assert_int_equal(ag.undecodable, 0);
  assert_int_equal(ag.unknown_dict_frames, 0);
}

/* A stored dictionary sent again becomes the agent's most recent one, as
 * when it is decoded (the least recent is the one evicted). */
static void test_left_out_dictionary_becomes_most_recent(void **state) {
  struct fx *x = *state;
  struct fb b;
  struct packed p;
  uint64_t h1 = hashed_frame(&b, 1, 1000);
  apply_one(x->s, &b, 0);
  fb_init(&b, "agent-1", "r1", 2, T0 + 2000, 1);
  b.f.incarnation = 7;
  fb_def(&b, 0, "cdu.return_temp", "Cel", "cdu1", 1, NULL, NULL);
  assert_int_equal(rp_frame_dictionary_hash(&b.f, &b.f.dictionary_hash), 0);
  uint64_t h2 = b.f.dictionary_hash;
  fb_sample(&b, 0, 300);
  apply_one(x->s, &b, 1);
  struct store_agent ag = agent_of(x->s, "agent-1");
  assert_true(ag.dicts[0] == h2 && ag.dicts[1] == h1);

  hashed_frame(&b, 3, 1100);
  pack_lazy(&b, &p);
  assert_true(p.left_out);
  apply_packed(x->s, &p, 2, NULL);
  packed_free(&p);
  ag = agent_of(x->s, "agent-1");
  assert_true(ag.dicts[0] == h1 && ag.dicts[1] == h2);
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 110.0);
}

/* A dictionary left out that the store lacks and that does not decode:
 * the message is skipped as one that does not decode (frame set to NULL,
 * its offset stored so that it is not read again). */
static void test_undecodable_dictionary_skips_the_message(void **state) {
  struct fx *x = *state;
  struct fb b;
  struct packed p;
  hashed_frame(&b, 1, 1000);
  b.defs[0].decimals = 12; /* outside -9..9: the whole frame is refused */
  pack_lazy(&b, &p);
  assert_true(p.left_out);
  rp_frame *whole = NULL;
  char err[256];
  assert_int_not_equal(rp_frame_decode(p.buf, p.len, &whole, err, sizeof(err)), 0);
  assert_null(apply_packed(x->s, &p, 5, NULL));
  packed_free(&p);
  int64_t next = 0;
  assert_int_equal(store_get_offset(x->s, TOPIC, 0, &next), 0);
  assert_int_equal(next, 6);
  assert_int_equal(count_agents(x->s), 0);
}

static void legacy_frame(struct fb *b, uint64_t seq, const char *flow_unit, int64_t flow) {
  fb_init(b, "agent-1", "r1", seq, T0 + (int64_t)seq * 1000, 1);
  fb_def(b, 0, "cdu.supply_temp", "Cel", "cdu1", 2, "loop", "primary");
  fb_def(b, 1, "cdu.flow", flow_unit, "cdu1", 1, NULL, NULL);
  fb_def(b, 2, "pdu.power", "W", "pdu1", 0, "outlet", "3");
  fb_sample(b, 1, flow);
  fb_sample(b, 0, 3150);
  fb_sample(b, 2, 900);
}

/* A legacy dictionary sent again unchanged is kept as stored (no delete
 * and rewrite of its series: store.dict_series_written counts them); one whose
 * content changed under the same version replaces it. */
static void test_unchanged_legacy_dictionary_is_not_rewritten(void **state) {
  struct fx *x = *state;
  struct fb b;
  legacy_frame(&b, 1, "L/min", 1215);
  apply_one(x->s, &b, 0);
  assert_int_equal(x->s->dict_series_written, 3);

  legacy_frame(&b, 2, "L/min", 1230);
  apply_one(x->s, &b, 1);
  assert_int_equal(x->s->dict_series_written, 3); /* none written again */
  assert_true(latest_value(x->s, "r1", "cdu.flow") == 123.0);
  struct store_latest l;
  assert_int_equal(latest(x->s, "r1", "cdu.flow", &l), 0);
  assert_string_equal(l.unit, "L/min");

  /* The same version with another unit: replaced, the samples decoded
   * with the new content. */
  legacy_frame(&b, 3, "m3/h", 80);
  apply_one(x->s, &b, 2);
  assert_int_equal(x->s->dict_series_written, 6);
  assert_int_equal(latest(x->s, "r1", "cdu.flow", &l), 0);
  assert_string_equal(l.unit, "m3/h");
  assert_true(l.value == 8.0);
  fx_reopen(x); /* what LMDB holds */
  legacy_frame(&b, 4, "m3/h", 90);
  b.f.n_dictionary = 0;
  apply_one(x->s, &b, 3);
  assert_int_equal(latest(x->s, "r1", "cdu.flow", &l), 0);
  assert_string_equal(l.unit, "m3/h");
  assert_true(l.value == 9.0);
  assert_true(latest_value(x->s, "r1", "pdu.power") == 900.0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lazy_decode_leaves_out_hashed_dictionary),
      T(test_unknown_dictionary_is_decoded_from_the_message),
      T(test_left_out_dictionary_becomes_most_recent),
      T(test_undecodable_dictionary_skips_the_message),
      T(test_unchanged_legacy_dictionary_is_not_rewritten),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
