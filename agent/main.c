/* rackpulse-agent: command line. Reads the config, then either checks it
 * (--check-config), scrapes once and prints the frame (--once), or runs the
 * agent until SIGTERM/SIGINT. Exit status: 0 ok, 1 runtime failure, 2 bad
 * usage or configuration. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "rackpulse/log.h"

#define DEFAULT_CONFIG "/etc/rackpulse/agent.yaml"

static void usage(FILE *out) {
  fprintf(out, "usage: rackpulse-agent [-c FILE] [--check-config | --once] [--log-level L]\n"
               "Scrapes the rack's BMCs, PDUs and CDUs and publishes one protobuf frame per\n"
               "interval to Kafka, keyed by rack id.\n\n"
               "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
               "      --check-config  validate the configuration and exit (0 = valid)\n"
               "      --once          scrape every device once, print the frame as JSON, exit\n"
               "      --log-level L   debug, info, warn or error (overrides agent.log_level)\n"
               "  -V, --version       print the version\n"
               "  -h, --help          this text\n\n"
               "Configuration keys (YAML):\n");
  rp_agent_config_help(out);
  for (size_t i = 0; rp_collectors[i] != NULL; i++) {
    fprintf(out, "  %s: a list of devices, each with:\n", rp_collectors[i]->name);
    rp_collectors[i]->help(out);
  }
}

int main(int argc, char **argv) {
  const char *config = DEFAULT_CONFIG;
  const char *log_level = NULL;
  bool check = false, once = false;
  enum { OPT_CHECK = 256, OPT_ONCE, OPT_LOG };
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"check-config", no_argument, NULL, OPT_CHECK},
                                       {"once", no_argument, NULL, OPT_ONCE},
                                       {"log-level", required_argument, NULL, OPT_LOG},
                                       {"version", no_argument, NULL, 'V'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case OPT_CHECK: check = true; break;
    case OPT_ONCE: once = true; break;
    case OPT_LOG: log_level = optarg; break;
    case 'V': printf("rackpulse-agent %s\n", RP_VERSION); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "rackpulse-agent: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }

  static struct rp_agent agent;
  char err[1024];
  if (rp_agent_config_load(config, &agent.cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "rackpulse-agent: %s\n", err);
    return 2;
  }
  enum rp_log_level lvl;
  if (rp_log_level_parse(log_level ? log_level : agent.cfg.agent.log_level, &lvl) != 0) {
    fprintf(stderr, "rackpulse-agent: --log-level: '%s' is not debug, info, warn or error\n",
            log_level);
    rp_agent_config_free(&agent.cfg);
    return 2;
  }
  rp_log_set_level(lvl);
  if (check) {
    printf("%s: valid: rack %s, %zu device(s), Kafka %s topic %s\n", config, agent.cfg.agent.rack,
           agent.cfg.ntargets, agent.cfg.kafka.brokers, agent.cfg.kafka.topic);
    rp_agent_config_free(&agent.cfg);
    return 0;
  }
  agent.once = once;
  snprintf(agent.config_path, sizeof(agent.config_path), "%s", config);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = rp_agent_start(&agent, &loop, err, sizeof(err));
  if (rc != 0) {
    rp_error("agent", "cannot start: %s", err);
    agent.exit_code = 1;
    rp_agent_stop(&agent);
  } else {
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  rp_agent_close(&agent);
  if (uv_loop_close(&loop) != 0)
    rp_warn("agent", "handles still open at exit");
  return agent.exit_code;
}
