/* The ledger topic's ownership claims (aggregator/claim.c): the record
 * formats, and the scan a writer makes before it answers, against a
 * partition of librdkafka's mock cluster (a real broker protocol peer, in
 * process) holding claims and records in a known order. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "aggregator/claim.h"

#define TOPIC "ledger"

/* A message as the consumer would hand it over (key and headers only). */
static void message_with(rd_kafka_message_t *m, const char *key, int64_t offset) {
  memset(m, 0, sizeof(*m));
  m->key = (void *)key;
  m->key_len = strlen(key);
  m->offset = offset;
}

static void test_claim_key_and_member(void **state) {
  (void)state;
  char key[64];
  size_t n = rp_claim_key(key, sizeof(key), "agg-b", 1765000000123);
  assert_int_equal(n, strlen("@claim/agg-b/1765000000123"));
  assert_string_equal(key, "@claim/agg-b/1765000000123");
  char small[10];
  assert_int_equal(rp_claim_key(small, sizeof(small), "agg-b", 1765000000123), 0);

  rd_kafka_message_t m;
  struct rp_claim c;
  message_with(&m, key, 42);
  assert_true(rp_claim_of(&m, &c));
  assert_string_equal(c.member, "agg-b");
  assert_int_equal(c.offset, 42);
  /* A claim whose key names no member still fences: it is a claim. */
  message_with(&m, "@claim/x", 7);
  assert_true(rp_claim_of(&m, &c));
  assert_string_equal(c.member, "?");
  message_with(&m, "@claim/", 7);
  assert_false(rp_claim_of(&m, &c));
  message_with(&m, "r0001/reservation/abc", 7);
  assert_false(rp_claim_of(&m, &c));
  m.key = NULL;
  m.key_len = 0;
  assert_false(rp_claim_of(&m, &c));
}

/* The mock cluster, a producer and a consumer of it. */
struct peers {
  rd_kafka_t *owner, *producer, *consumer;
  rd_kafka_mock_cluster_t *mc;
  rd_kafka_topic_t *rkt;
};

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap) {
  char err[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
  if (type == RD_KAFKA_CONSUMER) {
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", err, sizeof(err));
  } else {
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof(err));
  }
  rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
  assert_non_null(rk);
  return rk;
}

/* produce KEY with the claim header UNDER (NULL: none) at the next offset. */
static void produce(struct peers *p, const char *key, const char *under) {
  rd_kafka_headers_t *h = rd_kafka_headers_new(1);
  if (under != NULL)
    rd_kafka_header_add(h, RP_CLAIM_HEADER, -1, under, -1);
  assert_int_equal(rd_kafka_producev(p->producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                     RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE("{}", 2),
                                     RD_KAFKA_V_HEADERS(h),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                   RD_KAFKA_RESP_ERR_NO_ERROR);
  assert_int_equal(rd_kafka_flush(p->producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static int peers_up(void **state) {
  static struct peers p;
  char err[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  p.owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (p.owner == NULL)
    return -1;
  p.mc = rd_kafka_mock_cluster_new(p.owner, 1);
  if (p.mc == NULL || rd_kafka_mock_topic_create(p.mc, TOPIC, 1, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return -1;
  const char *bootstrap = rd_kafka_mock_cluster_bootstraps(p.mc);
  p.producer = client(RD_KAFKA_PRODUCER, bootstrap);
  p.consumer = client(RD_KAFKA_CONSUMER, bootstrap);
  p.rkt = rd_kafka_topic_new(p.consumer, TOPIC, NULL);
  /* The partition: 0 a's claim, 1-2 a's records, 3 z's claim, 4 a's record
   * (void: written under claim 0 after claim 3), 5 a record with no claim
   * header (a third party's). */
  produce(&p, "@claim/a/1000", NULL);
  produce(&p, "r1/reservation/x", "0");
  produce(&p, "r1/flag/maintenance", "0");
  produce(&p, "@claim/z/2000", NULL);
  produce(&p, "r1/reservation/y", "0");
  produce(&p, "r1/flag/evacuate", NULL);
  *state = &p;
  return 0;
}

static int peers_down(void **state) {
  struct peers *p = *state;
  rd_kafka_topic_destroy(p->rkt);
  rd_kafka_destroy(p->consumer);
  rd_kafka_destroy(p->producer);
  rd_kafka_mock_cluster_destroy(p->mc);
  rd_kafka_destroy(p->owner);
  return 0;
}

static void test_scan_finds_the_later_claim(void **state) {
  struct peers *p = *state;
  struct rp_claim c = {.offset = -1};
  /* a confirms its record at 2: nothing between its claim and it. */
  assert_int_equal(rp_claim_scan(p->rkt, 0, 1, 1, 10000, &c), 0);
  /* ... and its record at 4: z claimed at 3. */
  assert_int_equal(rp_claim_scan(p->rkt, 0, 1, 3, 10000, &c), 1);
  assert_int_equal(c.offset, 3);
  assert_string_equal(c.member, "z");
  /* From where a last confirmed (2) on: still found. */
  c.offset = -1;
  assert_int_equal(rp_claim_scan(p->rkt, 0, 3, 4, 10000, &c), 1);
  assert_int_equal(c.offset, 3);
  /* Past the claim: none. */
  assert_int_equal(rp_claim_scan(p->rkt, 0, 4, 5, 10000, &c), 0);
  /* An empty range reads nothing. */
  assert_int_equal(rp_claim_scan(p->rkt, 0, 5, 4, 0, &c), 0);
}

static void test_scan_times_out_short_of_the_offset(void **state) {
  struct peers *p = *state;
  struct rp_claim c;
  /* Offset 20 is never written: the scan cannot confirm it. */
  assert_int_equal(rp_claim_scan(p->rkt, 0, 4, 20, 300, &c), -ETIMEDOUT);
  /* The partition is usable again after a scan (it stops what it starts). */
  assert_int_equal(rp_claim_scan(p->rkt, 0, 0, 0, 10000, &c), 1);
  assert_int_equal(c.offset, 0);
}

/* The claim headers of the n records from offset `from` on, into out. */
static int read_headers(struct peers *p, int64_t from, int n, int64_t *out) {
  rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, rd_kafka_mock_cluster_bootstraps(p->mc));
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, TOPIC, NULL);
  assert_int_equal(rd_kafka_consume_start(rkt, 0, from), 0);
  int seen = 0;
  for (int tries = 0; seen < n && tries < 200; tries++) {
    rd_kafka_message_t *m = rd_kafka_consume(rkt, 0, 100);
    if (m == NULL)
      continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset >= from && m->offset < from + n) {
      out[m->offset - from] = rp_claim_header(m);
      seen++;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consume_stop(rkt, 0);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return seen;
}

static void test_claim_header(void **state) {
  struct peers *p = *state;
  int64_t want[] = {-1, 0, 0, -1, 0, -1}, got[6];
  assert_int_equal(read_headers(p, 0, 6, got), 6);
  for (int i = 0; i < 6; i++)
    assert_int_equal(got[i], want[i]);
}

/* Runs last: it adds records 6-9, headers a hostile producer could send. */
static void test_claim_header_malformed(void **state) {
  struct peers *p = *state;
  const char *values[] = {"12x", "", "-3", "12345678901234567890"};
  for (size_t i = 0; i < 4; i++)
    produce(p, "r1/flag/x", values[i]);
  int64_t got[4];
  assert_int_equal(read_headers(p, 6, 4, got), 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal(got[i], -2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_claim_key_and_member),
      cmocka_unit_test(test_scan_finds_the_later_claim),
      cmocka_unit_test(test_scan_times_out_short_of_the_offset),
      cmocka_unit_test(test_claim_header),
      cmocka_unit_test(test_claim_header_malformed),
  };
  return cmocka_run_group_tests(tests, peers_up, peers_down);
}
