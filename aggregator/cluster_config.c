/* The cluster section of aggregator.yaml (see cluster.h):
 *
 *   cluster:
 *     member_id: agg-1                  # empty (default): a single member
 *     advertise: http://10.0.0.5:8470   # default http://{http.listen}:{http.port}
 *     members_topic: rackpulse.members
 *     heartbeat: 1s
 *     member_timeout: 4s
 *     session_timeout: 6s
 *     forward_timeout: 2s
 *     max_hops: 2
 *     ledger_ack_timeout: 5s
 *     tls_ca: /etc/rackpulse/ca.pem       # members serving HTTPS */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "rackpulse/cfg.h"

typedef struct rp_aggregator_config C;

static const struct rp_cfg_field cluster_fields[] = {
    RP_CFG_STR("member_id", C, cluster.member_id, "", 0,
               "this member's id in the site (1..64 of A-Z a-z 0-9 . _ -); empty: a single "
               "aggregator, no cluster"),
    RP_CFG_STR("advertise", C, cluster.advertise, "", 0,
               "URL the other members reach this one at (http://host:port); default "
               "http://{http.listen}:{http.port}, required when http.listen is 0.0.0.0"),
    RP_CFG_STR("members_topic", C, cluster.members_topic, "rackpulse.members", 0,
               "compacted topic of member records (HTTP address and assignment)"),
    RP_CFG_NUM("heartbeat", RP_CFG_DURATION, C, cluster.heartbeat_ms, "1s", 0.1, 60,
               "this member's record is republished this often"),
    RP_CFG_NUM("member_timeout", RP_CFG_DURATION, C, cluster.member_timeout_ms, "4s", 0.3, 600,
               "a member not heard of this long is taken as gone (its racks answer 503 until "
               "the group hands its partitions over)"),
    RP_CFG_NUM("session_timeout", RP_CFG_DURATION, C, cluster.session_timeout_ms, "6s", 1, 300,
               "Kafka session timeout: a member that died hands its partitions over after this"),
    RP_CFG_NUM("forward_timeout", RP_CFG_DURATION, C, cluster.forward_timeout_ms, "2s", 0.05, 60,
               "a request forwarded to the owner, or a fan-out to every member, waits this long"),
    RP_CFG_NUM("max_hops", RP_CFG_INT, C, cluster.max_hops, "2", 1, 8,
               "a request forwarded this many times is refused (508), never forwarded again"),
    RP_CFG_NUM("ledger_ack_timeout", RP_CFG_DURATION, C, cluster.ledger_ack_timeout_ms, "5s", 0.5,
               120,
               "a reservation, flag, retirement or override change the ledger topic has not "
               "acknowledged by then is not made (503)"),
    RP_CFG_STR("tls_ca", C, cluster.tls_ca, "", 0,
               "CA certificate (PEM) that signed the other members' HTTPS certificates "
               "(https:// advertise URLs); empty: the system's CAs"),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int rp_cluster_config_apply(const struct rp_cfg_doc *doc, rp_cfg_node map, C *cfg, char *err,
                            size_t errlen) {
  int rc =
      rp_cfg_apply(doc, map, "cluster", cluster_fields, N(cluster_fields), NULL, cfg, err, errlen);
  if (rc != 0 || cfg->cluster.member_id[0] == '\0')
    return rc;
  if (!rp_http_valid_id(cfg->cluster.member_id, strlen(cfg->cluster.member_id))) {
    rp_cfg_error(doc, rp_cfg_get(doc, map, "member_id"), "cluster.member_id", err, errlen,
                 "'%s': expected 1..64 characters of A-Z a-z 0-9 . _ -", cfg->cluster.member_id);
    return -EINVAL;
  }
  if (cfg->cluster.advertise[0] == '\0') {
    if (strcmp(cfg->http.listen, "0.0.0.0") == 0) {
      rp_cfg_error(doc, map, "cluster.advertise", err, errlen,
                   "required when http.listen is 0.0.0.0: the URL other members reach this one at");
      return -EINVAL;
    }
    snprintf(cfg->cluster.advertise, sizeof(cfg->cluster.advertise), "http://%s:%lld",
             cfg->http.listen, (long long)cfg->http.port);
  } else if (strncmp(cfg->cluster.advertise, "http://", 7) != 0 &&
             strncmp(cfg->cluster.advertise, "https://", 8) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, map, "advertise"), "cluster.advertise", err, errlen,
                 "'%s': expected http://host:port", cfg->cluster.advertise);
    return -EINVAL;
  }
  size_t n = strlen(cfg->cluster.advertise);
  while (n > 0 && cfg->cluster.advertise[n - 1] == '/')
    cfg->cluster.advertise[--n] = '\0';
  if (cfg->cluster.member_timeout_ms <= cfg->cluster.heartbeat_ms) {
    rp_cfg_error(doc, rp_cfg_get(doc, map, "member_timeout"), "cluster.member_timeout", err, errlen,
                 "must be longer than cluster.heartbeat (%lld ms)",
                 (long long)cfg->cluster.heartbeat_ms);
    return -EINVAL;
  }
  return 0;
}

void rp_cluster_config_help(FILE *out) {
  rp_cfg_print_help(out, "cluster", cluster_fields, N(cluster_fields));
}
