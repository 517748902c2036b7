/* kafka.properties: librdkafka settings passed through (see kafka_props.h). */
#include "rackpulse/kafka_props.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool reserved_key(const char *const *reserved, const char *key) {
  for (size_t i = 0; reserved != NULL && reserved[i] != NULL; i++)
    if (strcmp(reserved[i], key) == 0)
      return true;
  return false;
}

int rp_kafka_props_load(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                        const char *const *reserved, const char *secret_key,
                        rp_kafka_prop_check_fn check, struct rp_kafka_prop *props, size_t max,
                        size_t *n, char *err, size_t errlen) {
  if (map == 0)
    return 0;
  if (rp_cfg_kind(doc, map) != RP_CFG_MAPPING) {
    rp_cfg_error(doc, map, where, err, errlen, "expected a mapping");
    return -EINVAL;
  }
  size_t len = rp_cfg_map_len(doc, map);
  for (size_t i = 0; i < len; i++) {
    rp_cfg_node v;
    const char *key = rp_cfg_map_key(doc, map, i, &v);
    const char *value = rp_cfg_scalar(doc, v);
    char at[192];
    snprintf(at, sizeof(at), "%s.%s", where, key ? key : "?");
    if (key == NULL || value == NULL) {
      rp_cfg_error(doc, v, at, err, errlen, "expected key: value");
      return -EINVAL;
    }
    if (strstr(key, "password") != NULL || strstr(key, "secret") != NULL) {
      rp_cfg_error(doc, v, at, err, errlen,
                   "secrets are not accepted in the config file; use %s (a file readable only "
                   "by the daemon)",
                   secret_key);
      return -EINVAL;
    }
    if (reserved_key(reserved, key)) {
      rp_cfg_error(doc, v, at, err, errlen,
                   "%s is set by rackpulse itself (exactly-once delivery and ordering depend on "
                   "it) and may not be overridden",
                   key);
      return -EINVAL;
    }
    char why[256];
    if (check != NULL && check(key, value, why, sizeof(why)) != 0) {
      rp_cfg_error(doc, v, at, err, errlen, "the Kafka client refuses it: %s", why);
      return -EINVAL;
    }
    if (*n == max || strlen(key) >= sizeof(props[0].key) ||
        strlen(value) >= sizeof(props[0].value)) {
      rp_cfg_error(doc, v, at, err, errlen, "too many or too long properties");
      return -EINVAL;
    }
    snprintf(props[*n].key, sizeof(props[*n].key), "%s", key);
    snprintf(props[*n].value, sizeof(props[*n].value), "%s", value);
    (*n)++;
  }
  return 0;
}
