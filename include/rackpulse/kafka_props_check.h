/* rp_kafka_prop_check(): a kafka.properties entry as librdkafka sees it,
 * for rp_kafka_props_load() (kafka_props.h). Header-only so that the
 * common library, which the CLI also links, does not pull in librdkafka;
 * the daemons, which link it anyway, include this. */
#ifndef RACKPULSE_KAFKA_PROPS_CHECK_H
#define RACKPULSE_KAFKA_PROPS_CHECK_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* 0 when librdkafka takes `key: value` (an unknown property or a value of
 * the wrong kind is refused with its reason in why). Files named by a
 * value (ssl.ca.location...) are only read when the client starts. */
static inline int rp_kafka_prop_check(const char *key, const char *value, char *why,
                                      size_t whylen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int ok = rd_kafka_conf_set(conf, key, value, why, whylen) == RD_KAFKA_CONF_OK;
  rd_kafka_conf_destroy(conf);
  return ok ? 0 : -1;
}

#endif
