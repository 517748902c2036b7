/* rackpulsectl tail: prints rackpulse frames from Kafka as they arrive.
 *
 *   rackpulsectl tail [--rack R] [--json] [--from latest|beginning|TIME]
 *                     [--brokers LIST] [--topic T] [--group G] [--count N]
 *
 * It is also the example for teams who build their own consumers on the
 * topic. Everything such a consumer needs is in this file, in order:
 *   1. A consumer in a group of its own (unique per run unless --group), so
 *      it never takes partitions away from the aggregators.
 *   2. On assignment, it chooses where each partition starts: the end
 *      (latest), the beginning, or the first message at or after a time
 *      (rd_kafka_offsets_for_times). With --group and no --from, the group's
 *      committed offsets are used, so a named group resumes where it stopped.
 *   3. Each message is decoded and validated with rp_frame_decode(); one that
 *      does not decode is reported with topic, partition and offset and
 *      skipped: a bad message must never stop a consumer.
 *   4. Samples carry series ids; names, units and decimals travel in a
 *      dictionary that an agent sends when it changes and every N frames.
 *      Keep the last dictionary of each agent and use it while its
 *      dictionary_hash (a hash of its content) matches the frame's; never
 *      resolve samples with another dictionary (after an agent restarts, the
 *      same ids may name other series). Frames of agents older than
 *      dictionary_hash (0) are matched on dictionary_version.
 * Output: one line per frame (time, rack, agent, seq, samples, devices up and
 * down, where it was read), or with --json one JSON object per line
 * (rp_frame_to_json, names resolved from the agent's last dictionary). */
#define _XOPEN_SOURCE 700 /* strptime */
#include "ctl_tail.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_time.h"
#include "rackpulse/cfg.h"
#include "rackpulse/frame.h"

enum from_kind { FROM_DEFAULT, FROM_LATEST, FROM_BEGINNING, FROM_TIME };

struct tail_options {
  const char *brokers, *topic, *rack, *group;
  bool json;
  enum from_kind from;
  int64_t from_ms; /* FROM_TIME: Unix ms */
  long count;      /* 0: until stopped */
};

/* The last dictionary seen from each agent: the frame that carried it. */
struct dict_entry {
  rp_frame *frame;
};

struct tail {
  struct tail_options o;
  rd_kafka_t *rk;
  struct dict_entry *dicts;
  size_t ndicts;
  long printed;
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* ---- 1. options and the consumer ------------------------------------------ */

static void tail_usage(FILE *out) {
  fprintf(out, "usage: rackpulsectl tail [options]\n"
               "Prints rackpulse frames from Kafka as they arrive, one line each.\n"
               "  --brokers LIST   bootstrap servers (default $RACKPULSE_BROKERS, else\n"
               "                   127.0.0.1:9092)\n"
               "  --topic T        topic (default rackpulse.frames)\n"
               "  --rack R         only frames of rack R\n"
               "  --json           one JSON object per frame, series names resolved\n"
               "  --from WHERE     latest (default), beginning, a UTC time\n"
               "                   (2026-11-22T10:00:00Z), Unix milliseconds, or an age\n"
               "                   such as -10m\n"
               "  --group G        consumer group (default: a new one per run; a named\n"
               "                   group commits its offsets and, without --from, resumes)\n"
               "  --count N        exit after N frames\n"
               "Frames that do not decode are reported on stderr with topic, partition\n"
               "and offset, and skipped. Ctrl-C stops.\n");
}

/* Parses --from: latest, beginning, an ISO 8601 UTC time, Unix ms, -DURATION. */
static int parse_from(const char *s, struct tail_options *o) {
  if (strcmp(s, "latest") == 0 || strcmp(s, "end") == 0) {
    o->from = FROM_LATEST;
    return 0;
  }
  if (strcmp(s, "beginning") == 0) {
    o->from = FROM_BEGINNING;
    return 0;
  }
  o->from = FROM_TIME;
  if (ctl_parse_time(s, &o->from_ms) == 0)
    return 0;
  fprintf(stderr,
          "rackpulsectl: tail: --from: expected latest, beginning, a UTC time such as "
          "2026-11-22T10:00:00Z, Unix milliseconds or an age such as -10m, got '%s'\n",
          s);
  return -EINVAL;
}

static int parse_options(int argc, char **argv, struct tail_options *o) {
  const char *env = getenv("RACKPULSE_BROKERS");
  *o = (struct tail_options){.brokers = env && *env ? env : "127.0.0.1:9092",
                             .topic = "rackpulse.frames"};
  enum { O_BROKERS = 256, O_TOPIC, O_RACK, O_JSON, O_FROM, O_GROUP, O_COUNT };
  static const struct option opts[] = {{"brokers", required_argument, NULL, O_BROKERS},
                                       {"topic", required_argument, NULL, O_TOPIC},
                                       {"rack", required_argument, NULL, O_RACK},
                                       {"json", no_argument, NULL, O_JSON},
                                       {"from", required_argument, NULL, O_FROM},
                                       {"group", required_argument, NULL, O_GROUP},
                                       {"count", required_argument, NULL, O_COUNT},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  char *end;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_BROKERS: o->brokers = optarg; break;
    case O_TOPIC: o->topic = optarg; break;
    case O_RACK: o->rack = optarg; break;
    case O_JSON: o->json = true; break;
    case O_FROM:
      if (parse_from(optarg, o) != 0)
        return -EINVAL;
      break;
    case O_GROUP: o->group = optarg; break;
    case O_COUNT:
      o->count = strtol(optarg, &end, 10);
      if (*end != '\0' || o->count < 1) {
        fprintf(stderr, "rackpulsectl: tail: --count: expected a positive number, got '%s'\n",
                optarg);
        return -EINVAL;
      }
      break;
    case 'h': tail_usage(stdout); exit(0);
    default: tail_usage(stderr); return -EINVAL;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "rackpulsectl: tail: unexpected argument '%s' (see tail --help)\n",
            argv[optind]);
    return -EINVAL;
  }
  if (o->from == FROM_DEFAULT && o->group == NULL)
    o->from = FROM_LATEST;
  return 0;
}

/* ---- 2. where each partition starts ---------------------------------------- */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  struct tail *t = opaque;
  if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_assign(rk, NULL);
    return;
  }
  if (t->o.from == FROM_TIME) {
    /* offsets_for_times() takes the time in .offset and returns, per
     * partition, the first offset at or after it (the end when none is). */
    for (int i = 0; i < parts->cnt; i++)
      parts->elems[i].offset = t->o.from_ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, parts, 10000);
    for (int i = 0; i < parts->cnt; i++) {
      rd_kafka_topic_partition_t *p = &parts->elems[i];
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR && p->err == RD_KAFKA_RESP_ERR_NO_ERROR && p->offset >= 0)
        continue;
      /* Real Kafka answers -1 when no message is that recent; librdkafka's
       * mock cluster (the dev broker) answers -1 for any time. */
      fprintf(stderr,
              "rackpulsectl: tail: %s [%d]: no offset for the time (%s); "
              "starting at the end\n",
              p->topic, (int)p->partition,
              e        ? rd_kafka_err2str(e)
              : p->err ? rd_kafka_err2str(p->err)
                       : "none that recent");
      p->offset = RD_KAFKA_OFFSET_END;
    }
  } else if (t->o.from != FROM_DEFAULT) {
    int64_t start = t->o.from == FROM_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    for (int i = 0; i < parts->cnt; i++)
      parts->elems[i].offset = start;
  } /* FROM_DEFAULT (a named group): the committed offsets. */
  rd_kafka_assign(rk, parts);
}

static int create_consumer(struct tail *t) {
  char group[128], e[512];
  if (t->o.group != NULL) {
    snprintf(group, sizeof(group), "%s", t->o.group);
  } else {
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(group, sizeof(group), "rackpulsectl-tail-%s-%ld-%lld", host, (long)getpid(),
             (long long)rp_now_ms());
  }
  const char *settings[][2] = {
      {"bootstrap.servers", t->o.brokers},
      {"group.id", group},
      /* Only a named group keeps its place; a one-off group commits nothing. */
      {"enable.auto.commit", t->o.group ? "true" : "false"},
      {"auto.offset.reset", t->o.from == FROM_BEGINNING ? "earliest" : "latest"},
      {"fetch.wait.max.ms", "100"},
      {"log_level", "3"},
  };
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
    if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], e, sizeof(e)) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "rackpulsectl: tail: kafka setting %s: %s\n", settings[i][0], e);
      rd_kafka_conf_destroy(conf);
      return -EINVAL;
    }
  }
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_opaque(conf, t);
  t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
  if (t->rk == NULL) {
    fprintf(stderr, "rackpulsectl: tail: kafka consumer: %s\n", e);
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
  }
  rd_kafka_poll_set_consumer(t->rk);
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, t->o.topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(t->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "rackpulsectl: tail: subscribe %s: %s\n", t->o.topic, rd_kafka_err2str(err));
    return -EINVAL;
  }
  return 0;
}

/* ---- 4. dictionaries ------------------------------------------------------- */

/* The frame holding the agent's last dictionary, or NULL. */
static const rp_frame *dict_of(const struct tail *t, const char *agent) {
  for (size_t i = 0; i < t->ndicts; i++)
    if (strcmp(t->dicts[i].frame->agent_id, agent) == 0)
      return t->dicts[i].frame;
  return NULL;
}

/* Keeps f (which carries a dictionary) as its agent's dictionary, taking
 * ownership. Returns false when it could not (the caller still owns f). */
static bool dict_keep(struct tail *t, rp_frame *f) {
  for (size_t i = 0; i < t->ndicts; i++) {
    if (strcmp(t->dicts[i].frame->agent_id, f->agent_id) == 0) {
      rp_frame_free(t->dicts[i].frame);
      t->dicts[i].frame = f;
      return true;
    }
  }
  struct dict_entry *grown = realloc(t->dicts, (t->ndicts + 1) * sizeof(*grown));
  if (grown == NULL)
    return false;
  t->dicts = grown;
  t->dicts[t->ndicts++].frame = f;
  return true;
}

/* ---- 3. printing ----------------------------------------------------------- */

static void print_line(const rd_kafka_message_t *m, const rp_frame *f) {
  char when[32];
  time_t secs = (time_t)(f->ts_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  size_t samples = 0, up = 0;
  for (size_t i = 0; i < f->n_samples; i++)
    samples += f->samples[i]->n_series;
  for (size_t i = 0; i < f->n_devices; i++)
    up += f->devices[i]->up ? 1 : 0;
  printf("%s.%03dZ rack %s agent %s seq %" PRIu64 " samples %zu devices %zu up %zu down%s"
         "  (%s [%d] offset %" PRId64 ")\n",
         when, (int)(f->ts_ms % 1000), f->rack_id, f->agent_id, f->seq, samples, up,
         f->n_devices - up, f->n_dictionary ? " +dictionary" : "", rd_kafka_topic_name(m->rkt),
         (int)m->partition, m->offset);
}

/* Whether f's samples refer to the dictionary `dict` carried. */
static bool same_dictionary(const rp_frame *dict, const rp_frame *f) {
  if (dict->dictionary_hash != 0 || f->dictionary_hash != 0)
    return dict->dictionary_hash == f->dictionary_hash;
  return dict->dictionary_version == f->dictionary_version; /* older agents */
}

static void print_json(struct tail *t, const rp_frame *f) {
  const rp_frame *dict = dict_of(t, f->agent_id);
  if (dict != NULL && !same_dictionary(dict, f))
    dict = NULL; /* samples of another dictionary: show ids only */
  json_t *j = rp_frame_to_json(f, dict);
  json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(12));
  fputc('\n', stdout);
  json_decref(j);
}

/* Handles one message; returns true when a frame was printed. */
static bool on_message(struct tail *t, const rd_kafka_message_t *m) {
  rp_frame *f = NULL;
  char why[256];
  if (rp_frame_decode(m->payload, m->len, &f, why, sizeof(why)) != 0) {
    fprintf(stderr,
            "rackpulsectl: tail: %s [%d] offset %" PRId64 ": %zu-byte message skipped: %s\n",
            rd_kafka_topic_name(m->rkt), (int)m->partition, m->offset, m->len, why);
    return false;
  }
  if (t->o.rack != NULL && strcmp(f->rack_id, t->o.rack) != 0) {
    rp_frame_free(f); /* an agent serves one rack: its dictionary is not needed */
    return false;
  }
  bool kept = false;
  if (f->n_dictionary > 0)
    kept = dict_keep(t, f);
  if (t->o.json)
    print_json(t, f);
  else
    print_line(m, f);
  fflush(stdout); /* one line at a time, also into a pipe */
  if (!kept)
    rp_frame_free(f);
  return true;
}

int ctl_tail_main(int argc, char **argv) {
  struct tail t = {0};
  if (parse_options(argc, argv, &t.o) != 0)
    return 2;
  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int status = 0;
  if (create_consumer(&t) != 0) {
    status = 2;
    goto cleanup;
  }
  while (!stop_requested && (t.o.count == 0 || t.printed < t.o.count)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(t.rk, 200);
    if (m == NULL)
      continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (on_message(&t, m))
        t.printed++;
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      fprintf(stderr, "rackpulsectl: tail: %s\n", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
  }
cleanup:
  if (t.rk != NULL) {
    rd_kafka_consumer_close(t.rk);
    rd_kafka_destroy(t.rk);
  }
  for (size_t i = 0; i < t.ndicts; i++)
    rp_frame_free(t.dicts[i].frame);
  free(t.dicts);
  return status;
}
