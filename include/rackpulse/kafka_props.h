/* kafka.properties in a daemon's config: librdkafka settings passed through
 * as they are (security.protocol, ssl.*, sasl.mechanisms, sasl.username),
 * read from a YAML mapping. Secrets never come from the config file (it is
 * world-readable on most hosts): keys naming a password or secret are
 * refused, and the SASL password comes from a file of its own. */
#ifndef RACKPULSE_KAFKA_PROPS_H
#define RACKPULSE_KAFKA_PROPS_H

#include <stdbool.h>
#include <stddef.h>

#include "rackpulse/cfg.h"

struct rp_kafka_prop {
  char key[64];
  char value[512];
};

/* The properties every rackpulse producer of frames and ledger records
 * sets itself (for a `reserved` list): the brokers, the delivery
 * guarantees (no duplicates or reordering on retry) and the partitioner
 * (every producer must put a rack on the partition the aggregators compute
 * for it: librdkafka's default, CRC-32 of the rack id). */
#define RP_KAFKA_PRODUCER_RESERVED                                                          \
  "bootstrap.servers", "enable.idempotence", "acks", "request.required.acks",               \
      "max.in.flight.requests.per.connection", "max.in.flight", "enable.gapless.guarantee", \
      "transactional.id", "partitioner", "partitioner.consistent.hash"

/* Whether the Kafka client takes `key: value`: 0, or -1 with why (its
 * words). rp_kafka_prop_check() in kafka_props_check.h asks librdkafka. */
typedef int (*rp_kafka_prop_check_fn)(const char *key, const char *value, char *why, size_t whylen);

/* Reads mapping `map` (0: none, nothing to do) at `where` ("kafka.properties")
 * into props[*n..max), advancing *n. Refuses keys that name a password or a
 * secret (saying to use `secret_key` instead), the keys in `reserved` (a
 * NULL-ended list, may be NULL), which the daemon sets itself because a
 * guarantee depends on them, and, when `check` is given, a key or value
 * the client refuses (so that --check-config finds it, not the start).
 * Returns 0, or -EINVAL with err naming file:line and the key. */
int rp_kafka_props_load(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                        const char *const *reserved, const char *secret_key,
                        rp_kafka_prop_check_fn check, struct rp_kafka_prop *props, size_t max,
                        size_t *n, char *err, size_t errlen);

#endif
