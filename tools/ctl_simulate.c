/* rackpulsectl policy simulate: try a policy on history before it gates
 * production.
 *
 *   rackpulsectl policy simulate --policy candidate.yaml [--against current|FILE]
 *       --from T1 --to T2 [--racks a,b] [--incidents incidents.yaml] [--kw N]
 *       [--config aggregator.yaml] [--brokers LIST] [--topic NAME] [--json]
 *
 * Reads the frames of [T1, T2] from the frames topic with a consumer of its
 * own: partitions assigned by hand (no group membership, nothing committed,
 * so the running aggregators are not disturbed), each started at the first
 * offset at or after T1 - 60 s (rd_kafka_offsets_for_times; where the broker
 * answers no offset, as librdkafka's mock cluster does for any time, at the
 * beginning of what it kept) and read up to its end offset at the start or
 * past T2 + 60 s. The partitions are merged in frame-time order and fed to
 * the backtest engine (aggregator/replay.c: the aggregator's own store,
 * gate, ladder, SLO and placement code, in simulated time).
 *
 * "current" is the policy of the aggregator's configuration (--config, else
 * $RACKPULSE_AGGREGATOR_CONFIG, else /etc/rackpulse/aggregator.yaml): its
 * policy.file or its built-in policy; brokers and topic come from it too
 * unless given.
 *
 * incidents.yaml:
 *   incidents:
 *     - {rack: a01, start: 2026-12-06T10:38:00Z, end: 2026-12-06T10:45:00Z,
 *        what: "CDU supply excursion, evacuated by hand", must_deny: true}
 */
#include "ctl_simulate.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator.h"
#include "ctl_simulate_int.h"
#include "ctl_time.h"
#include "policy.h"
#include "rackpulse/cfg.h"
#include "rackpulse/clock.h"
#include "rackpulse/log.h"
#include "replay.h"

#define SLACK_MS 60000
#define MAX_RACKS 4096
#define MAX_INCIDENTS 256

struct sim_options {
  const char *policy, *against, *config, *brokers, *topic, *incidents;
  int64_t from_ms, to_ms;
  double kw;
  char *racks_buf;
  const char *racks[MAX_RACKS];
  size_t nracks;
  bool json;
};

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: rackpulsectl policy simulate --policy FILE [--against current|FILE]\n"
      "           --from T1 --to T2 [--racks a,b] [--incidents FILE] [--kw N]\n"
      "           [--config aggregator.yaml] [--brokers LIST] [--topic NAME] [--json]\n"
      "Replays the frames Kafka kept for [T1, T2] through the aggregator's gate, flag\n"
      "ladder, SLO and placement code under the candidate policy and the current one\n"
      "(or FILE), in simulated time, and reports the decisions that would change, flags\n"
      "raised earlier or later, and each incident's lead time. Times: a UTC time such as\n"
      "2026-12-06T10:00:00Z, Unix milliseconds, or an age such as -2h.\n"
      "  --against current  the policy of the aggregator's config (--config, else\n"
      "                     $RACKPULSE_AGGREGATOR_CONFIG, else /etc/rackpulse/aggregator.yaml)\n"
      "  --kw N             the request each decision asks about (default 0)\n"
      "  --incidents FILE   incidents: [{rack, start, end, what, must_deny}]\n"
      "Exit status: 0 done, 1 the candidate allows what an incident marks must_deny,\n"
      "2 error.\n");
}

static int parse_options(int argc, char **argv, struct sim_options *o) {
  const char *env = getenv("RACKPULSE_AGGREGATOR_CONFIG");
  *o = (struct sim_options){.against = "current",
                            .config = env && *env ? env : "/etc/rackpulse/aggregator.yaml"};
  enum {
    O_POLICY = 256,
    O_AGAINST,
    O_FROM,
    O_TO,
    O_RACKS,
    O_INC,
    O_KW,
    O_CONFIG,
    O_BROKERS,
    O_TOPIC,
    O_JSON
  };
  static const struct option opts[] = {{"policy", required_argument, NULL, O_POLICY},
                                       {"against", required_argument, NULL, O_AGAINST},
                                       {"from", required_argument, NULL, O_FROM},
                                       {"to", required_argument, NULL, O_TO},
                                       {"racks", required_argument, NULL, O_RACKS},
                                       {"incidents", required_argument, NULL, O_INC},
                                       {"kw", required_argument, NULL, O_KW},
                                       {"config", required_argument, NULL, O_CONFIG},
                                       {"brokers", required_argument, NULL, O_BROKERS},
                                       {"topic", required_argument, NULL, O_TOPIC},
                                       {"json", no_argument, NULL, O_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool have_from = false, have_to = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_POLICY: o->policy = optarg; break;
    case O_AGAINST: o->against = optarg; break;
    case O_FROM:
    case O_TO:
      if (ctl_parse_time(optarg, c == O_FROM ? &o->from_ms : &o->to_ms) != 0) {
        fprintf(stderr,
                "rackpulsectl: policy simulate: --%s: expected a UTC time such as "
                "2026-12-06T10:00:00Z, Unix milliseconds or an age such as -2h, got '%s'\n",
                c == O_FROM ? "from" : "to", optarg);
        return 2;
      }
      *(c == O_FROM ? &have_from : &have_to) = true;
      break;
    case O_RACKS:
      free(o->racks_buf);
      o->racks_buf = strdup(optarg);
      o->nracks = 0;
      for (char *save = NULL, *t = strtok_r(o->racks_buf, ",", &save);
           t != NULL && o->nracks < MAX_RACKS; t = strtok_r(NULL, ",", &save))
        o->racks[o->nracks++] = t;
      break;
    case O_INC: o->incidents = optarg; break;
    case O_KW:
      o->kw = strtod(optarg, NULL);
      if (!(o->kw >= 0 && o->kw <= 100000)) {
        fprintf(stderr, "rackpulsectl: policy simulate: --kw: 0..100000, got '%s'\n", optarg);
        return 2;
      }
      break;
    case O_CONFIG: o->config = optarg; break;
    case O_BROKERS: o->brokers = optarg; break;
    case O_TOPIC: o->topic = optarg; break;
    case O_JSON: o->json = true; break;
    case 'h': usage(stdout); return 1;
    default: usage(stderr); return 2;
    }
  }
  if (optind >= argc || strcmp(argv[optind], "simulate") != 0 || optind + 1 != argc) {
    fprintf(stderr, "rackpulsectl: policy: expected 'simulate' (see policy --help)\n");
    return 2;
  }
  if (o->policy == NULL || !have_from || !have_to || o->to_ms <= o->from_ms) {
    fprintf(stderr, "rackpulsectl: policy simulate: --policy, --from and --to are required, "
                    "with --to after --from\n");
    return 2;
  }
  return 0;
}

/* ---- incidents ---- */

struct incident_yaml {
  char rack[RP_ID_MAX + 1], start[40], end[40], what[160];
  bool must_deny;
};

static int load_incidents(const char *path, struct rp_replay_incident **out, size_t *n) {
  static const struct rp_cfg_field fields[] = {
      RP_CFG_STR("rack", struct incident_yaml, rack, NULL, 1, "the rack"),
      RP_CFG_STR("start", struct incident_yaml, start, NULL, 1, "when it started"),
      RP_CFG_STR("end", struct incident_yaml, end, NULL, 0, "when it ended (default: start)"),
      RP_CFG_STR("what", struct incident_yaml, what, NULL, 0, "what happened"),
      RP_CFG_NUM("must_deny", RP_CFG_BOOL, struct incident_yaml, must_deny, "false", 0, 0,
                 "the candidate must deny the rack from start to end"),
  };
  static const char *const sections[] = {"incidents", NULL};
  struct rp_cfg_doc *doc;
  char err[512];
  if (rp_cfg_load(path, &doc, err, sizeof(err)) != 0) {
    fprintf(stderr, "rackpulsectl: policy simulate: %s\n", err);
    return -EINVAL;
  }
  rp_cfg_node root = rp_cfg_root(doc), list = rp_cfg_get(doc, root, "incidents");
  size_t count = rp_cfg_seq_len(doc, list);
  int rc = rp_cfg_apply(doc, root, "incidents", NULL, 0, sections, NULL, err, sizeof(err));
  if (rc == 0 &&
      (list == 0 || rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE || count > MAX_INCIDENTS)) {
    rp_cfg_error(doc, list ? list : root, "incidents", err, sizeof(err),
                 "expected a list of at most %d incidents", MAX_INCIDENTS);
    rc = -EINVAL;
  }
  struct rp_replay_incident *v = rc == 0 ? calloc(count + 1, sizeof(*v)) : NULL;
  for (size_t i = 0; rc == 0 && i < count; i++) {
    char where[32];
    snprintf(where, sizeof(where), "incidents[%zu]", i);
    rp_cfg_node item = rp_cfg_seq_item(doc, list, i);
    struct incident_yaml y = {0};
    if ((rc = rp_cfg_apply(doc, item, where, fields, 5, NULL, &y, err, sizeof(err))) != 0)
      break;
    struct rp_replay_incident *in = &v[i];
    snprintf(in->rack, sizeof(in->rack), "%s", y.rack);
    snprintf(in->what, sizeof(in->what), "%s", y.what);
    in->must_deny = y.must_deny;
    if (ctl_parse_time(y.start, &in->start_ms) != 0 ||
        (y.end[0] != '\0' && ctl_parse_time(y.end, &in->end_ms) != 0)) {
      rp_cfg_error(doc, item, where, err, sizeof(err),
                   "start/end: expected a UTC time such as 2026-12-06T10:00:00Z or Unix ms");
      rc = -EINVAL;
      break;
    }
    if (y.end[0] == '\0')
      in->end_ms = in->start_ms;
  }
  rp_cfg_free(doc);
  if (rc != 0) {
    fprintf(stderr, "rackpulsectl: policy simulate: %s\n", err);
    free(v);
    return rc;
  }
  *out = v;
  *n = count;
  return 0;
}

/* ---- policies ---- */

static int load_policies(const struct sim_options *o, struct rp_aggregator_config *cfg,
                         bool have_cfg, struct rp_policy **cand, struct rp_policy **cur) {
  char err[1024];
  if (rp_policy_load(o->policy, cand, err, sizeof(err)) != 0) {
    fprintf(stderr, "rackpulsectl: policy simulate: candidate: %s\n", err);
    return -EINVAL;
  }
  int rc;
  if (strcmp(o->against, "current") == 0) {
    if (!have_cfg) {
      fprintf(stderr, "rackpulsectl: policy simulate: --against current needs the "
                      "aggregator's config (--config); or give --against FILE\n");
      rp_policy_free(*cand);
      return -EINVAL;
    }
    rc = rp_upkeep_load_policy(cfg, cur, err, sizeof(err));
  } else {
    rc = rp_policy_load(o->against, cur, err, sizeof(err));
  }
  if (rc != 0) {
    fprintf(stderr, "rackpulsectl: policy simulate: current: %s\n", err);
    rp_policy_free(*cand);
  }
  return rc;
}

int ctl_policy_main(int argc, char **argv) {
  struct sim_options o;
  int rc = parse_options(argc, argv, &o);
  if (rc != 0) {
    free(o.racks_buf);
    return rc == 1 ? 0 : rc;
  }
  /* The replayed flags are the report's, not log lines. */
  rp_log_set_level(RP_LOG_ERROR);
  struct rp_aggregator_config cfg;
  char err[1024];
  bool have_cfg = access(o.config, R_OK) == 0 &&
                  rp_aggregator_config_load(o.config, &cfg, err, sizeof(err)) == 0;
  if (!have_cfg && access(o.config, R_OK) == 0)
    fprintf(stderr, "rackpulsectl: policy simulate: %s\n", err);
  struct rp_sim_run run = {.from_ms = o.from_ms, .to_ms = o.to_ms, .json = o.json};
  run.brokers = o.brokers ? o.brokers : have_cfg ? cfg.kafka.brokers : getenv("RACKPULSE_BROKERS");
  run.topic = o.topic ? o.topic : have_cfg ? cfg.kafka.topic : "rackpulse.frames";
  if (run.brokers == NULL || run.brokers[0] == '\0')
    run.brokers = "127.0.0.1:9092";
  struct rp_replay_incident *inc = NULL;
  size_t ninc = 0;
  struct rp_policy *cand = NULL, *cur = NULL;
  rc = 2;
  if (o.incidents != NULL && load_incidents(o.incidents, &inc, &ninc) != 0)
    goto done;
  if (load_policies(&o, &cfg, have_cfg, &cand, &cur) != 0)
    goto done;
  /* Scratch state (the replay's store and ledgers) is thrown away: on
   * tmpfs where there is one, so that their commits cost no disk syncs. */
  char dir[64];
  snprintf(dir, sizeof(dir), "%s/rackpulse-simulate.XXXXXX",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("rackpulsectl: policy simulate: scratch directory");
    rp_policy_free(cand);
    rp_policy_free(cur);
    goto done;
  }
  struct rp_replay_options ro = {.dir = dir,
                                 .kw = o.kw,
                                 .hold_ms = have_cfg ? cfg.flags.min_hold_ms : 0,
                                 .from_ms = o.from_ms,
                                 .to_ms = o.to_ms,
                                 .racks = o.racks,
                                 .nracks = o.nracks,
                                 .incidents = inc,
                                 .nincidents = ninc};
  rc = rp_sim_replay(&run, cand, cur, &ro);
  char cmd[64];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "rackpulsectl: policy simulate: could not remove %s\n", dir);
done:
  free(inc);
  free(o.racks_buf);
  return rc;
}
