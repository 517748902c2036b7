/* rackpulse-aggregator: command line. Loads the config, opens the LMDB store,
 * starts the HTTP API and runs Kafka ingest on the main thread until SIGTERM
 * or SIGINT. Exit status: 0 ok, 1 runtime failure, 2 bad usage or config. */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "aggregator.h"
#include "cluster.h"
#include "forward.h"
#include "policy.h"
#include "rackpulse/log.h"
#include "rackpulse/secret.h"

#define DEFAULT_CONFIG "/etc/rackpulse/aggregator.yaml"

static struct rp_aggregator aggregator;

static void on_stop_signal(int sig) {
  (void)sig;
  aggregator.stop = true;
}

static void on_hup_signal(int sig) {
  (void)sig;
  aggregator.reload = true;
}

static void usage(FILE *out) {
  fprintf(out, "usage: rackpulse-aggregator [-c FILE] [--check-config] [--log-level L]\n"
               "Consumes rack frames from Kafka into LMDB and answers deploy gates over HTTP.\n\n"
               "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
               "      --check-config  validate the configuration and exit (0 = valid)\n"
               "      --log-level L   debug, info, warn or error (overrides log_level)\n"
               "  -V, --version       print the version\n"
               "  -h, --help          this text\n\n"
               "Configuration keys (YAML):\n");
  rp_aggregator_config_help(out);
}

int main(int argc, char **argv) {
  const char *config = DEFAULT_CONFIG, *log_level = NULL;
  bool check = false;
  enum { OPT_CHECK = 256, OPT_LOG };
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"check-config", no_argument, NULL, OPT_CHECK},
                                       {"log-level", required_argument, NULL, OPT_LOG},
                                       {"version", no_argument, NULL, 'V'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case OPT_CHECK: check = true; break;
    case OPT_LOG: log_level = optarg; break;
    case 'V': printf("rackpulse-aggregator %s\n", RP_VERSION); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "rackpulse-aggregator: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }
  char err[1024];
  struct rp_aggregator *a = &aggregator;
  if (rp_aggregator_config_load(config, &a->cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "rackpulse-aggregator: %s\n", err);
    return 2;
  }
  enum rp_log_level lvl;
  if (rp_log_level_parse(log_level ? log_level : a->cfg.log_level, &lvl) != 0) {
    fprintf(stderr, "rackpulse-aggregator: --log-level: '%s' is not debug, info, warn or error\n",
            log_level);
    return 2;
  }
  rp_log_set_level(lvl);
  if (check) {
    struct rp_policy *policy;
    if (rp_upkeep_load_policy(&a->cfg, &policy, err, sizeof(err)) != 0) {
      fprintf(stderr, "rackpulse-aggregator: %s\n", err);
      return 2;
    }
    rp_policy_free(policy);
    if (a->cfg.token_file[0] != '\0') {
      char token[256];
      if (rp_secret_read_file(a->cfg.token_file, token, sizeof(token), err, sizeof(err)) != 0) {
        fprintf(stderr, "rackpulse-aggregator: http.token_file: %s\n", err);
        return 2;
      }
      memset(token, 0, sizeof(token));
    }
    /* librdkafka knows its keys and values: kafka.properties are checked. */
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    int bad = rp_kafka_conf_common(&a->cfg, kconf, err, sizeof(err));
    rd_kafka_conf_destroy(kconf);
    if (bad != 0) {
      fprintf(stderr, "rackpulse-aggregator: %s\n", err);
      return 2;
    }
    printf("%s: valid: Kafka %s topic %s group %s, store %s, http %s:%lld\n", config,
           a->cfg.kafka.brokers, a->cfg.kafka.topic, a->cfg.kafka.group, a->cfg.store.path,
           a->cfg.http.listen, (long long)a->cfg.http.port);
    return 0;
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_hup_signal;
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int status = 1;
  bool rebuilt;
  char aside[700];
  if (store_open_rebuild(a->cfg.store.path, (size_t)a->cfg.store.map_size_mb << 20, &a->store,
                         &rebuilt, aside, sizeof(aside), err, sizeof(err)) != 0) {
    rp_error("aggregator", "%s", err);
    return 1;
  }
  if (rebuilt)
    rp_error("aggregator", "store %s was damaged: moved aside to %s; rebuilding it from Kafka",
             a->cfg.store.path, aside);
  size_t migrated;
  unsigned from = store_migrated_from(a->store, &migrated);
  if (from != 0)
    rp_info("aggregator",
            "store %s: migrated from layout %u to the current one (%zu latest values "
            "rewritten compact)",
            a->cfg.store.path, from, migrated);
  enum store_sync_mode sync = strcmp(a->cfg.store.sync, "full") == 0   ? STORE_SYNC_FULL
                              : strcmp(a->cfg.store.sync, "meta") == 0 ? STORE_SYNC_META
                                                                       : STORE_SYNC_PERIODIC;
  if (store_set_sync(a->store, sync, err, sizeof(err)) != 0) {
    rp_error("aggregator", "%s", err);
    store_close(a->store);
    return 1;
  }
  if (rp_upkeep_start(a, err, sizeof(err)) != 0) {
    rp_error("aggregator", "%s", err);
    goto out_upkeep;
  }
  if (a->cfg.cluster.member_id[0] != '\0' &&
      (rp_forward_global_init() != 0 || rp_cluster_start(a, &a->cluster, err, sizeof(err)) != 0)) {
    rp_error("aggregator", "cluster: %s", err);
    goto out_upkeep;
  }
  if (rp_http_start(a, &a->http, err, sizeof(err)) != 0) {
    rp_error("aggregator", "%s", err);
    goto out_upkeep;
  }
  if (rp_consume_run(a, err, sizeof(err)) != 0) {
    rp_error("aggregator", "ingest stopped: %s", err);
    goto out_http;
  }
  rp_info("aggregator", "stopped");
  status = 0;
out_http:
  rp_http_stop(a->http);
out_upkeep:
  a->stop = true;
  rp_cluster_leave(a->cluster);
  rp_upkeep_stop(a); /* nothing writes the ledger after this */
  if (a->cluster != NULL) {
    rp_cluster_stop(a->cluster);
    a->cluster = NULL;
    rp_forward_global_cleanup();
  }
  store_close(a->store);
  return status;
}
