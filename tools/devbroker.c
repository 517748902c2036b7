/* rackpulse-devbroker: a Kafka-protocol cluster for local runs and tests,
 * built on librdkafka's mock cluster (rdkafka_mock.h). It listens on
 * loopback, creates the rackpulse topics, prints its bootstrap address on
 * stdout (and into --bootstrap-file) and runs until SIGINT or SIGTERM.
 *
 * Faults for tests: SIGUSR1 takes every broker down, SIGUSR2 brings them back.
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

static void usage(FILE *out) {
  fprintf(out, "usage: rackpulse-devbroker [options]\n"
               "A Kafka-protocol dev broker on librdkafka's mock cluster (loopback only,\n"
               "in memory). Prints the bootstrap address, then serves until SIGINT/SIGTERM.\n"
               "  -b, --brokers N          brokers in the cluster (default 1)\n"
               "  -p, --partitions N       partitions of each topic (default 4)\n"
               "  -t, --topic NAME         a topic to create (repeatable; default\n"
               "                           rackpulse.frames and rackpulse.events)\n"
               "  -f, --bootstrap-file F   also write the bootstrap address to F\n"
               "  -h, --help               this text\n"
               "Signals: SIGUSR1 takes all brokers down, SIGUSR2 brings them up.\n");
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

int main(int argc, char **argv) {
  int nbrokers = 1, partitions = 4, ntopics = 0;
  const char *topics[16];
  const char *bootstrap_file = NULL;
  static const struct option opts[] = {
      {"brokers", required_argument, NULL, 'b'}, {"partitions", required_argument, NULL, 'p'},
      {"topic", required_argument, NULL, 't'},   {"bootstrap-file", required_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "b:p:t:f:h", opts, NULL)) != -1) {
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
  }

  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
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
  sigprocmask(SIG_BLOCK, &blocked, &waitmask);
  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = on_down;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_up;
  sigaction(SIGUSR2, &sa, NULL);

  while (!stop_requested) {
    sigsuspend(&waitmask); /* The mock cluster serves from its own threads. */
    if (fault_request != 0) {
      set_all_brokers(mc, nbrokers, fault_request == 2);
      fault_request = 0;
    }
  }
  fprintf(stderr, "devbroker: stopping\n");
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
