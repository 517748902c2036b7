/* rackpulse-devbroker: a Kafka-protocol cluster for local runs and tests,
 * built on librdkafka's mock cluster (rdkafka_mock.h). It listens on
 * loopback, creates the rackpulse topics, prints its bootstrap address on
 * stdout (and into --bootstrap-file) and runs until SIGINT or SIGTERM.
 *
 * Faults for tests: SIGUSR1 takes every broker down, SIGUSR2 brings them back.
 * SIGHUP applies the commands in the --control file, one a line:
 *   produce_errors ERR COUNT   the next COUNT Produce requests fail with ERR
 *   init_pid_errors ERR COUNT  the same for InitProducerId requests
 *   clear_errors               forget the errors still pushed
 *   topic_error TOPIC ERR      metadata reports ERR for TOPIC (NO_ERROR clears)
 *   partition_leader TOPIC P B partition P of TOPIC led by broker B; -1: no
 *                              leader (its Produce requests fail, other
 *                              topics' and partitions' go on)
 *   produce_delay B MS         broker B answers its next Produce request MS
 *                              ms late (and then takes it)
 *   fetch_delay B MS           broker B answers its next Fetch request MS ms
 *                              late (a consumer of B's partitions reads
 *                              nothing meanwhile)
 * where ERR is a Kafka error name as librdkafka spells it without its prefix
 * (TOPIC_AUTHORIZATION_FAILED) or its number. The broker writes the control
 * file's name with ".done" appended when it has applied them.
 * It keeps everything in memory: production points at a real Kafka cluster. */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t fault_request; /* 1 = down, 2 = up */
static volatile sig_atomic_t control_request;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}
static void on_down(int sig) {
  (void)sig;
  fault_request = 1;
}
static void on_up(int sig) {
  (void)sig;
  fault_request = 2;
}

static void on_control(int sig) {
  (void)sig;
  control_request = 1;
}

static void usage(FILE *out) {
  fprintf(out, "usage: rackpulse-devbroker [options]\n"
               "A Kafka-protocol dev broker on librdkafka's mock cluster (loopback only,\n"
               "in memory). Prints the bootstrap address, then serves until SIGINT/SIGTERM.\n"
               "  -b, --brokers N          brokers in the cluster (default 1)\n"
               "  -p, --partitions N       partitions of each topic (default 4)\n"
               "  -t, --topic NAME         a topic to create (repeatable; default\n"
               "                           rackpulse.frames, .events, .members,\n"
               "                           .audit and .ledger)\n"
               "  -f, --bootstrap-file F   also write the bootstrap address to F\n"
               "  -c, --control F          commands applied on SIGHUP (see the source)\n"
               "  -d, --debug LIST         librdkafka debug contexts to log on stderr\n"
               "                           (e.g. mock: the group coordinator's steps)\n"
               "  -h, --help               this text\n"
               "Signals: SIGUSR1 takes all brokers down, SIGUSR2 brings them up,\n"
               "SIGHUP applies the --control file.\n");
}

static int set_all_brokers(rd_kafka_mock_cluster_t *mc, int nbrokers, int up) {
  for (int id = 1; id <= nbrokers; id++) {
    rd_kafka_resp_err_t e =
        up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fprintf(stderr, "devbroker: broker %d: %s\n", id, rd_kafka_err2str(e));
      return -1;
    }
  }
  fprintf(stderr, "devbroker: all %d broker(s) %s\n", nbrokers, up ? "up" : "down");
  return 0;
}

/* ERR by name (without RD_KAFKA_RESP_ERR_) or number; -1 when unknown. */
static int parse_err(const char *name, rd_kafka_resp_err_t *out) {
  char *end;
  long n = strtol(name, &end, 10);
  if (end != name && *end == '\0') {
    *out = (rd_kafka_resp_err_t)n;
    return 0;
  }
  const struct rd_kafka_err_desc *descs;
  size_t cnt;
  rd_kafka_get_err_descs(&descs, &cnt);
  for (size_t i = 0; i < cnt; i++)
    if (descs[i].name != NULL && strcmp(descs[i].name, name) == 0) {
      *out = descs[i].code;
      return 0;
    }
  return -1;
}

/* Applies the control file's commands; reports each on stderr. */
static void apply_control(rd_kafka_mock_cluster_t *mc, const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "devbroker: control %s: %s\n", path, strerror(errno));
    return;
  }
  char line[512], a[256], b[256], c[32];
  int lineno = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    lineno++;
    char cmd[64];
    a[0] = b[0] = c[0] = '\0';
    int n = sscanf(line, "%63s %255s %255s %31s", cmd, a, b, c);
    if (n < 1 || cmd[0] == '#')
      continue;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if ((strcmp(cmd, "produce_errors") == 0 || strcmp(cmd, "init_pid_errors") == 0) && n == 3 &&
        parse_err(a, &err) == 0 && atoi(b) > 0) {
      size_t cnt = (size_t)atoi(b);
      rd_kafka_resp_err_t *errs = malloc(cnt * sizeof(*errs));
      if (errs == NULL)
        break;
      for (size_t i = 0; i < cnt; i++)
        errs[i] = err;
      int16_t api = cmd[0] == 'p' ? 0 /* Produce */ : 22 /* InitProducerId */;
      rd_kafka_mock_push_request_errors_array(mc, api, cnt, errs);
      free(errs);
      fprintf(stderr, "devbroker: next %zu %s request(s) fail with %s\n", cnt,
              api == 0 ? "Produce" : "InitProducerId", rd_kafka_err2name(err));
    } else if (strcmp(cmd, "clear_errors") == 0) {
      rd_kafka_mock_clear_request_errors(mc, 0);
      rd_kafka_mock_clear_request_errors(mc, 22);
      fprintf(stderr, "devbroker: pushed request errors cleared\n");
    } else if (strcmp(cmd, "topic_error") == 0 && n == 3 && parse_err(b, &err) == 0) {
      rd_kafka_mock_topic_set_error(mc, a, err);
      fprintf(stderr, "devbroker: topic %s: metadata error %s\n", a, rd_kafka_err2name(err));
    } else if (strcmp(cmd, "produce_delay") == 0 && n == 3 &&
               rd_kafka_mock_broker_push_request_error_rtts(mc, atoi(a), 0 /* Produce */, 1,
                                                            RD_KAFKA_RESP_ERR_NO_ERROR, atoi(b)) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
      fprintf(stderr, "devbroker: broker %s answers its next Produce %s ms late\n", a, b);
    } else if (strcmp(cmd, "fetch_delay") == 0 && n == 3 &&
               rd_kafka_mock_broker_push_request_error_rtts(mc, atoi(a), 1 /* Fetch */, 1,
                                                            RD_KAFKA_RESP_ERR_NO_ERROR, atoi(b)) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
      fprintf(stderr, "devbroker: broker %s answers its next Fetch %s ms late\n", a, b);
    } else if (strcmp(cmd, "partition_leader") == 0 && n == 4 &&
               rd_kafka_mock_partition_set_leader(mc, a, atoi(b), atoi(c)) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
      fprintf(stderr, "devbroker: topic %s [%s]: leader %s\n", a, b, c);
    } else {
      fprintf(stderr, "devbroker: control %s:%d: cannot apply: %s", path, lineno, line);
    }
  }
  fclose(f);
  char done[4096];
  snprintf(done, sizeof(done), "%s.done", path);
  FILE *d = fopen(done, "w");
  if (d != NULL)
    fclose(d);
}

int main(int argc, char **argv) {
  int nbrokers = 1, partitions = 4, ntopics = 0;
  const char *topics[16];
  const char *bootstrap_file = NULL, *control_file = NULL, *debug = NULL;
  static const struct option opts[] = {
      {"brokers", required_argument, NULL, 'b'}, {"partitions", required_argument, NULL, 'p'},
      {"topic", required_argument, NULL, 't'},   {"bootstrap-file", required_argument, NULL, 'f'},
      {"control", required_argument, NULL, 'c'}, {"debug", required_argument, NULL, 'd'},
      {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "b:p:t:f:c:d:h", opts, NULL)) != -1) {
    switch (c) {
    case 'b': nbrokers = atoi(optarg); break;
    case 'p': partitions = atoi(optarg); break;
    case 't':
      if (ntopics == 16) {
        fprintf(stderr, "devbroker: at most 16 topics\n");
        return 2;
      }
      topics[ntopics++] = optarg;
      break;
    case 'f': bootstrap_file = optarg; break;
    case 'c': control_file = optarg; break;
    case 'd': debug = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (nbrokers < 1 || nbrokers > 9 || partitions < 1 || partitions > 1024) {
    fprintf(stderr, "devbroker: --brokers must be 1..9 and --partitions 1..1024\n");
    return 2;
  }
  if (ntopics == 0) {
    topics[ntopics++] = "rackpulse.frames";
    topics[ntopics++] = "rackpulse.events";
    topics[ntopics++] = "rackpulse.members";
    topics[ntopics++] = "rackpulse.audit";
    topics[ntopics++] = "rackpulse.ledger";
  }

  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", debug ? "7" : "3", NULL, 0);
  if (debug &&
      rd_kafka_conf_set(conf, "debug", debug, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "devbroker: --debug %s: %s\n", debug, errstr);
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == NULL) {
    fprintf(stderr, "devbroker: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
  if (mc == NULL) {
    fprintf(stderr, "devbroker: cannot create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  for (int i = 0; i < ntopics; i++) {
    rd_kafka_resp_err_t e =
        rd_kafka_mock_topic_create(mc, topics[i], partitions, nbrokers < 3 ? nbrokers : 3);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fprintf(stderr, "devbroker: topic %s: %s\n", topics[i], rd_kafka_err2str(e));
      rd_kafka_mock_cluster_destroy(mc);
      rd_kafka_destroy(rk);
      return 1;
    }
  }
  const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
  if (bootstrap_file != NULL) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", bootstrap_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", bootstrap) < 0 || fclose(f) != 0 ||
        rename(tmp, bootstrap_file) != 0) {
      fprintf(stderr, "devbroker: %s: %s\n", bootstrap_file, strerror(errno));
      rd_kafka_mock_cluster_destroy(mc);
      rd_kafka_destroy(rk);
      return 1;
    }
  }
  printf("%s\n", bootstrap);
  fflush(stdout);
  fprintf(stderr, "devbroker: %d broker(s) at %s, %d partition(s) per topic\n", nbrokers, bootstrap,
          partitions);

  /* Signals stay blocked except inside sigsuspend(), so none is missed
   * between checking the flags and waiting. */
  sigset_t blocked, waitmask;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGUSR2);
  sigaddset(&blocked, SIGHUP);
  sigprocmask(SIG_BLOCK, &blocked, &waitmask);
  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = on_down;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_up;
  sigaction(SIGUSR2, &sa, NULL);
  sa.sa_handler = on_control;
  sigaction(SIGHUP, &sa, NULL);

  while (!stop_requested) {
    sigsuspend(&waitmask); /* The mock cluster serves from its own threads. */
    if (fault_request != 0) {
      set_all_brokers(mc, nbrokers, fault_request == 2);
      fault_request = 0;
    }
    if (control_request != 0) {
      control_request = 0;
      if (control_file != NULL)
        apply_control(mc, control_file);
      else
        fprintf(stderr, "devbroker: SIGHUP without --control: ignored\n");
    }
  }
  fprintf(stderr, "devbroker: stopping\n");
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
