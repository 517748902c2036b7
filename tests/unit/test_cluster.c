/* Unit tests for the pure parts of a site's cluster: the rack -> partition
 * map (it must agree with librdkafka's default partitioner, which every
 * producer of frames uses), the cluster section of aggregator.yaml, and
 * kafka.properties (secrets and the settings exactly-once depends on are
 * refused, naming the key). Config files are written under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator.h"
#include "cluster.h"
#include "store.h"
#include <lmdb.h>

/* Loads YAML text as an aggregator config; returns the loader's result. */
static int load(const char *yaml, struct rp_aggregator_config *cfg, char *err, size_t errlen) {
  char path[] = "/tmp/rp-test-cluster-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  int rc = rp_aggregator_config_load(path, cfg, err, errlen);
  unlink(path);
  return rc;
}

/* CRC-32 (IEEE 802.3, reflected), bit by bit: the reference. */
static uint32_t crc32_ref(const char *s) {
  uint32_t crc = 0xFFFFFFFFu;
  for (; *s; s++) {
    crc ^= (uint8_t)*s;
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static void test_partition_matches_crc32(void **state) {
  (void)state;
  /* librdkafka's consistent partitioner: CRC-32 of the key mod the count. */
  static const int32_t expected[] = {2, 0, 2, 1, 3, 1, 3, 2, 0, 1, 3, 1};
  for (int i = 1; i <= 12; i++) {
    char rack[16];
    snprintf(rack, sizeof(rack), "r%04d", i);
    assert_int_equal(rp_cluster_partition(rack, 4), expected[i - 1]);
    assert_int_equal(rp_cluster_partition(rack, 7), (int32_t)(crc32_ref(rack) % 7));
  }
}

static void test_single_member_by_default(void **state) {
  (void)state;
  struct rp_aggregator_config cfg;
  char err[512];
  assert_int_equal(load("kafka: {brokers: 'x:1'}\n", &cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.cluster.member_id, "");
  assert_string_equal(cfg.kafka.ledger_topic, "rackpulse.ledger");
  assert_string_equal(cfg.kafka.audit_topic, "");
  assert_string_equal(cfg.store.sync, "meta");
  assert_int_equal(cfg.kafka.nprops, 0);
}

static void test_advertise_default_and_required(void **state) {
  (void)state;
  struct rp_aggregator_config cfg;
  char err[512];
  assert_int_equal(load("http: {listen: 10.1.2.3, port: 9000}\ncluster: {member_id: agg-1}\n", &cfg,
                        err, sizeof(err)),
                   0);
  assert_string_equal(cfg.cluster.advertise, "http://10.1.2.3:9000");
  assert_int_equal(cfg.cluster.max_hops, 2);
  assert_int_equal(
      load("http: {listen: 0.0.0.0}\ncluster: {member_id: agg-1}\n", &cfg, err, sizeof(err)),
      -EINVAL);
  assert_non_null(strstr(err, ":2: cluster.advertise: required when http.listen is 0.0.0.0"));
  assert_int_equal(
      load("cluster: {member_id: agg-1, advertise: 'http://h:1/'}\n", &cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.cluster.advertise, "http://h:1");
  assert_int_equal(load("cluster: {member_id: 'x/y'}\n", &cfg, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, ":1: cluster.member_id: 'x/y'"));
  assert_int_equal(
      load("cluster: {member_id: a, heartbeat: 5s, member_timeout: 2s}\n", &cfg, err, sizeof(err)),
      -EINVAL);
  assert_non_null(strstr(err, "cluster.member_timeout: must be longer than cluster.heartbeat"));
}

static void test_kafka_properties(void **state) {
  (void)state;
  struct rp_aggregator_config cfg;
  char err[512];
  assert_int_equal(load("kafka:\n  properties:\n    security.protocol: ssl\n"
                        "    ssl.ca.location: /etc/ca.pem\n",
                        &cfg, err, sizeof(err)),
                   0);
  assert_int_equal(cfg.kafka.nprops, 2);
  assert_string_equal(cfg.kafka.props[1].key, "ssl.ca.location");
  assert_string_equal(cfg.kafka.props[1].value, "/etc/ca.pem");
  static const char *const refused[] = {"enable.idempotence", "acks", "isolation.level",
                                        "enable.auto.commit", "partitioner"};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    char yaml[256], want[160];
    snprintf(yaml, sizeof(yaml), "kafka:\n  properties:\n    %s: x\n", refused[i]);
    assert_int_equal(load(yaml, &cfg, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), ":3: kafka.properties.%s: %s is set by rackpulse itself",
             refused[i], refused[i]);
    assert_non_null(strstr(err, want));
  }
  assert_int_equal(load("kafka:\n  properties: {sasl.password: hunter2}\n", &cfg, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "use kafka.sasl_password_file"));
  assert_null(strstr(err, "hunter2"));
  assert_int_equal(load("store: {sync: sometimes}\n", &cfg, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, ":1: store.sync: 'sometimes' is not full, meta or periodic"));
}

static void test_damage_errors(void **state) {
  (void)state;
  assert_true(store_err_damaged(MDB_CORRUPTED));
  assert_true(store_err_damaged(MDB_INVALID));
  assert_true(store_err_damaged(MDB_PAGE_NOTFOUND));
  assert_false(store_err_damaged(-ENOSPC));
  assert_false(store_err_damaged(0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_partition_matches_crc32),
      cmocka_unit_test(test_single_member_by_default),
      cmocka_unit_test(test_advertise_default_and_required),
      cmocka_unit_test(test_kafka_properties),
      cmocka_unit_test(test_damage_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
