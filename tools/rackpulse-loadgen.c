/* rackpulse-loadgen: publishes synthetic agent frames to Kafka, for tests and
 * the ingest benchmark. R racks × A agents each send N frames, in rounds
 * (every agent's frame k before any agent's frame k + 1), keyed by rack id
 * like the real agent, with sequence numbers, a dictionary on the first
 * frame and every --dict-every frames, device status and window statistics
 * (as older agents send them: doubles in every frame; or, with
 * --stats-every N, as agents since issue 25 do: scaled integers in every
 * N-th frame, stats_every_frames set).
 *
 * Values are deterministic: series i of agent a in rack r (1-based) at
 * sequence number q has the scaled value
 *     base(i) + ((r * 31 + a * 7 + i * 3 + q) % 100)
 * with base 250 for cdu.supply_temp (decimals 1: 25.0 .. 34.9 Cel), so a test
 * can compute what the aggregator must hold. Frame times are the wall clock
 * when built, or --ts-base + (q - 1) × --interval when given (and then also
 * the Kafka message timestamps, so history can be looked up by time).
 * --excursion R:FROM:TO:RISE adds a CDU supply temperature excursion to
 * rack R (1-based): 0 before FROM seconds of frame time, rising linearly to
 * RISE °C at TO, held after (the backtest's incident, issue 23).
 *
 * Exit status: 0 when every frame was delivered, 1 otherwise, 2 on usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rackpulse/frame.h"
#include "stats_wire.h"

#define MAX_DEVICES 8

struct options {
  const char *brokers, *topic, *rack_prefix;
  long racks, agents, frames, series, dict_every, stats_every;
  double rate; /* frames per second over all agents; 0 = unpaced */
  uint64_t seq_start;
  int64_t ts_base_ms; /* 0: wall clock */
  int64_t interval_ms;
  bool quiet;
  bool dict_hash; /* dictionaries named by content hash, as agents since issue 17 */
  long exc_rack;  /* --excursion: rack number, 0: none */
  double exc_from_s, exc_to_s, exc_rise;
};

/* One simulated agent: its ids and its frame, built once and refilled. */
struct sim_agent {
  char agent_id[RP_ID_MAX + 1], rack_id[RP_ID_MAX + 1];
  long rack_no, agent_no; /* 1-based */
  char (*names)[48], (*devices)[24], (*label_values)[16];
  Rackpulse__V1__SeriesDef *defs, **def_ptrs;
  Rackpulse__V1__Label *labels, **label_ptrs;
  uint32_t *ids;
  int64_t *scaled;
  Rackpulse__V1__SampleBlock block, *block_ptr;
  Rackpulse__V1__WindowStats stats[2], *stats_ptrs[2];
  Rackpulse__V1__DeviceStatus devs[MAX_DEVICES], *dev_ptrs[MAX_DEVICES];
  char dev_names[MAX_DEVICES][24];
  Rackpulse__V1__AgentHealth health;
  Rackpulse__V1__Frame f;
};

static volatile sig_atomic_t stop;
static uint64_t delivered, failed;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    delivered++;
  } else {
    if (failed++ < 5)
      fprintf(stderr, "loadgen: delivery failed: %s\n", rd_kafka_err2str(m->err));
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The series layout of every agent: three CDU series on agent 1, then
 * server and PDU series on devices of its own. */
static void sim_agent_init(struct sim_agent *s, const struct options *o, long rack_no,
                           long agent_no) {
  size_t n = (size_t)o->series;
  memset(s, 0, sizeof(*s));
  s->rack_no = rack_no;
  s->agent_no = agent_no;
  snprintf(s->rack_id, sizeof(s->rack_id), "%s%04ld", o->rack_prefix, rack_no);
  snprintf(s->agent_id, sizeof(s->agent_id), "lg-%s-%ld", s->rack_id, agent_no);
  s->names = calloc(n, sizeof(*s->names));
  s->devices = calloc(n, sizeof(*s->devices));
  s->label_values = calloc(n, sizeof(*s->label_values));
  s->defs = calloc(n, sizeof(*s->defs));
  s->def_ptrs = calloc(n, sizeof(*s->def_ptrs));
  s->labels = calloc(n, sizeof(*s->labels));
  s->label_ptrs = calloc(n, sizeof(*s->label_ptrs));
  s->ids = calloc(n, sizeof(*s->ids));
  s->scaled = calloc(n, sizeof(*s->scaled));
  if (!s->names || !s->devices || !s->label_values || !s->defs || !s->def_ptrs || !s->labels ||
      !s->label_ptrs || !s->ids || !s->scaled) {
    fprintf(stderr, "loadgen: out of memory\n");
    exit(1);
  }
  static const char *const cdu[] = {"cdu.supply_temp", "cdu.return_temp", "cdu.flow"};
  static const char *const cdu_units[] = {"Cel", "Cel", "L/min"};
  for (size_t i = 0; i < n; i++) {
    Rackpulse__V1__SeriesDef *d = &s->defs[i];
    rackpulse__v1__series_def__init(d);
    d->id = (uint32_t)i;
    d->decimals = 1;
    if (agent_no == 1 && i < 3) {
      snprintf(s->names[i], sizeof(s->names[i]), "%s", cdu[i]);
      snprintf(s->devices[i], sizeof(s->devices[i]), "cdu1");
      d->unit = (char *)cdu_units[i];
    } else {
      long k = (long)i - (agent_no == 1 ? 3 : 0);
      static const char *const kinds[] = {"server.inlet_temp", "server.power", "pdu.outlet_power"};
      static const char *const units[] = {"Cel", "W", "W"};
      int kind = (int)(k % 3);
      snprintf(s->names[i], sizeof(s->names[i]), "%s", kinds[kind]);
      d->unit = (char *)units[kind];
      d->decimals = kind == 0 ? 1 : 0;
      rackpulse__v1__label__init(&s->labels[i]);
      s->labels[i].key = kind == 2 ? "outlet" : "slot";
      snprintf(s->label_values[i], sizeof(s->label_values[i]), "%ld", k / 3);
      s->labels[i].value = s->label_values[i];
      s->label_ptrs[i] = &s->labels[i];
      d->labels = &s->label_ptrs[i];
      d->n_labels = 1;
      if (kind == 2)
        snprintf(s->devices[i], sizeof(s->devices[i]), "h%ld.pdu1", agent_no);
      else
        snprintf(s->devices[i], sizeof(s->devices[i]), "h%ld.bmc%ld", agent_no, (k / 3) % 6);
    }
    d->name = s->names[i];
    d->device = s->devices[i];
    s->def_ptrs[i] = d;
    s->ids[i] = (uint32_t)i;
  }
  rackpulse__v1__sample_block__init(&s->block);
  s->block.series = s->ids;
  s->block.n_series = n;
  s->block.scaled = s->scaled;
  s->block.n_scaled = n;
  s->block_ptr = &s->block;

  rackpulse__v1__frame__init(&s->f);
  s->f.schema_version = RP_FRAME_SCHEMA_VERSION;
  s->f.agent_id = s->agent_id;
  s->f.rack_id = s->rack_id;
  s->f.interval_ms = o->interval_ms;
  s->f.dictionary_version = 1;
  s->f.samples = &s->block_ptr;
  s->f.n_samples = 1;
  if (o->dict_hash) { /* as agent/frames.c: the hash of the whole dictionary */
    s->f.dictionary = s->def_ptrs;
    s->f.n_dictionary = n;
    if (rp_frame_dictionary_hash(&s->f, &s->f.dictionary_hash) != 0) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
  }

  /* Window statistics of series 0 over 60 s and 300 s. */
  for (size_t w = 0; w < 2 && n > 0; w++) {
    rackpulse__v1__window_stats__init(&s->stats[w]);
    s->stats[w].series = 0;
    s->stats[w].window_s = w ? 300 : 60;
    s->stats_ptrs[w] = &s->stats[w];
  }
  s->f.stats = s->stats_ptrs;
  s->f.n_stats = n > 0 ? 2 : 0;

  size_t ndev = 0;
  if (agent_no == 1)
    snprintf(s->dev_names[ndev++], sizeof(s->dev_names[0]), "cdu1");
  snprintf(s->dev_names[ndev++], sizeof(s->dev_names[0]), "h%ld.pdu1", agent_no);
  for (long b = 0; b < 6 && ndev < MAX_DEVICES; b++)
    snprintf(s->dev_names[ndev++], sizeof(s->dev_names[0]), "h%ld.bmc%ld", agent_no, b);
  for (size_t i = 0; i < ndev; i++) {
    Rackpulse__V1__DeviceStatus *d = &s->devs[i];
    rackpulse__v1__device_status__init(d);
    d->device = s->dev_names[i];
    d->kind = i == 0 && agent_no == 1 ? "modbus" : strstr(s->dev_names[i], "pdu") ? "snmp" : "ipmi";
    s->dev_ptrs[i] = d;
  }
  s->f.devices = s->dev_ptrs;
  s->f.n_devices = ndev;

  rackpulse__v1__agent_health__init(&s->health);
  s->health.version = "loadgen";
  s->f.health = &s->health;
}

static void sim_agent_free(struct sim_agent *s) {
  free(s->names);
  free(s->devices);
  free(s->label_values);
  free(s->defs);
  free(s->def_ptrs);
  free(s->labels);
  free(s->label_ptrs);
  free(s->ids);
  free(s->scaled);
}

/* Fills the frame for sequence number seq. */
static void sim_agent_fill(struct sim_agent *s, const struct options *o, uint64_t seq,
                           bool with_dictionary) {
  int64_t ts = o->ts_base_ms ? o->ts_base_ms + (int64_t)(seq - 1) * o->interval_ms : rp_now_ms();
  s->f.seq = seq;
  s->f.ts_ms = ts;
  s->f.dictionary = with_dictionary ? s->def_ptrs : NULL;
  s->f.n_dictionary = with_dictionary ? (size_t)o->series : 0;
  s->block.ts_ms = ts;
  for (size_t i = 0; i < (size_t)o->series; i++) {
    int64_t base = s->agent_no == 1 && i < 3  ? (i == 2   ? 1180
                                                 : i == 1 ? 350
                                                          : 250)
                   : s->defs[i].decimals == 1 ? 220
                                              : 400;
    s->scaled[i] =
        base +
        (int64_t)(((uint64_t)s->rack_no * 31 + (uint64_t)s->agent_no * 7 + i * 3 + seq) % 100);
  }
  if (o->exc_rack == s->rack_no && s->agent_no == 1 && o->series > 0) {
    double t = (double)(seq - 1) * (double)o->interval_ms / 1000.0;
    double k = t <= o->exc_from_s ? 0
               : t >= o->exc_to_s ? 1
                                  : (t - o->exc_from_s) / (o->exc_to_s - o->exc_from_s);
    s->scaled[0] += (int64_t)(k * o->exc_rise * 10); /* decimals 1 */
  }
  double v0 = rp_value_unscale(s->scaled[0], s->defs[0].decimals);
  s->f.stats_every_frames = (uint32_t)o->stats_every;
  s->f.n_stats =
      s->block.n_series > 0 &&
              (o->stats_every == 0 || seq % (uint64_t)o->stats_every == 1 || o->stats_every == 1)
          ? 2
          : 0;
  for (size_t w = 0; w < s->f.n_stats; w++) {
    Rackpulse__V1__WindowStats *st = &s->stats[w];
    st->count = (uint32_t)(w ? 300 : 60);
    st->min = v0 - 1.5;
    st->max = v0 + 1.5;
    st->mean = v0;
    st->stddev = 0.5;
    st->p50 = v0;
    st->p95 = v0 + 1.0;
    st->p99 = v0 + 1.25;
    st->has_slope = true;
    st->slope_per_min = (double)((int64_t)(seq % 7) - 3) / 10.0;
    st->newest_ms = ts; /* the newest sample is this frame's */
    if (o->stats_every > 0)
      rp_stats_wire_scale(st, s->defs[0].decimals); /* else left as doubles */
  }
  for (size_t i = 0; i < s->f.n_devices; i++) {
    Rackpulse__V1__DeviceStatus *d = &s->devs[i];
    d->up = (seq + i) % 17 != 0;
    d->last_error = d->up ? "" : "timeout after 2000 ms";
    d->scrape_ms = (uint32_t)(5 + (seq + i) % 20);
    d->scrapes = seq;
    d->failures = seq / 17;
    d->last_ok_ms = d->up ? ts : ts - o->interval_ms;
  }
  s->health.frames_produced = seq;
  s->health.frames_delivered = seq - 1;
}

static void usage(FILE *out) {
  fprintf(out, "usage: rackpulse-loadgen [options]\n"
               "Publishes synthetic rackpulse frames: R racks x A agents x N frames.\n"
               "  -b, --brokers LIST     bootstrap servers (default $RACKPULSE_BROKERS,\n"
               "                         else 127.0.0.1:9092)\n"
               "  -t, --topic NAME       topic (default rackpulse.frames)\n"
               "  -r, --racks R          racks (default 1), ids PREFIX0001..\n"
               "  -a, --agents A         agents per rack (default 1)\n"
               "  -n, --frames N         frames per agent (default 10)\n"
               "  -s, --series S         samples per frame (default 20, at least 3)\n"
               "      --rack-prefix P    rack id prefix (default r)\n"
               "      --seq-start Q      first sequence number (default 1)\n"
               "      --stats-every N    window statistics as scaled integers in every N-th\n"
               "                         frame (stats_every_frames N); 0: doubles in every\n"
               "                         frame, as older agents (default)\n"
               "      --dict-every K     dictionary every K frames (default 100; always on\n"
               "                         the first frame this run publishes)\n"
               "      --dict-hash        name the dictionary by its content hash\n"
               "                         (dictionary_hash), as the agent does; default: by\n"
               "                         dictionary_version 1, as agents before it\n"
               "      --rate F           frames per second over all agents (default 0 =\n"
               "                         as fast as the producer takes them)\n"
               "      --interval MS      frame interval written in frames (default 1000)\n"
               "      --ts-base MS       frame time of seq 1 (Unix ms; default: wall clock);\n"
               "                         also the messages' Kafka timestamps\n"
               "      --excursion R:FROM:TO:RISE\n"
               "                         rack R's CDU supply temperature rises linearly by\n"
               "                         RISE degC from FROM to TO seconds after seq 1\n"
               "  -q, --quiet            no summary line\n"
               "  -h, --help             this text\n");
}

static int parse_long(const char *opt, const char *text, long min, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "loadgen: %s: expected an integer %ld..%ld, got '%s'\n", opt, min, max, text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_options(int argc, char **argv, struct options *o) {
  const char *env = getenv("RACKPULSE_BROKERS");
  *o = (struct options){.brokers = env && *env ? env : "127.0.0.1:9092",
                        .topic = "rackpulse.frames",
                        .rack_prefix = "r",
                        .racks = 1,
                        .agents = 1,
                        .frames = 10,
                        .series = 20,
                        .dict_every = 100,
                        .seq_start = 1,
                        .interval_ms = 1000};
  enum { O_PREFIX = 256, O_SEQ, O_DICT, O_RATE, O_INTERVAL, O_TS, O_STATS, O_EXC, O_HASH };
  static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                       {"topic", required_argument, NULL, 't'},
                                       {"racks", required_argument, NULL, 'r'},
                                       {"agents", required_argument, NULL, 'a'},
                                       {"frames", required_argument, NULL, 'n'},
                                       {"series", required_argument, NULL, 's'},
                                       {"rack-prefix", required_argument, NULL, O_PREFIX},
                                       {"seq-start", required_argument, NULL, O_SEQ},
                                       {"dict-every", required_argument, NULL, O_DICT},
                                       {"dict-hash", no_argument, NULL, O_HASH},
                                       {"stats-every", required_argument, NULL, O_STATS},
                                       {"rate", required_argument, NULL, O_RATE},
                                       {"interval", required_argument, NULL, O_INTERVAL},
                                       {"ts-base", required_argument, NULL, O_TS},
                                       {"excursion", required_argument, NULL, O_EXC},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  long v;
  while ((c = getopt_long(argc, argv, "b:t:r:a:n:s:qh", opts, NULL)) != -1) {
    switch (c) {
    case 'b': o->brokers = optarg; break;
    case 't': o->topic = optarg; break;
    case 'r':
      if (parse_long("--racks", optarg, 1, 100000, &o->racks) != 0)
        return 2;
      break;
    case 'a':
      if (parse_long("--agents", optarg, 1, 1000, &o->agents) != 0)
        return 2;
      break;
    case 'n':
      if (parse_long("--frames", optarg, 1, 100000000, &o->frames) != 0)
        return 2;
      break;
    case 's':
      if (parse_long("--series", optarg, 3, RP_FRAME_MAX_SERIES, &o->series) != 0)
        return 2;
      break;
    case O_PREFIX:
      if (strlen(optarg) > 32) {
        fprintf(stderr, "loadgen: --rack-prefix: at most 32 characters\n");
        return 2;
      }
      o->rack_prefix = optarg;
      break;
    case O_SEQ:
      if (parse_long("--seq-start", optarg, 1, 1000000000000L, &v) != 0)
        return 2;
      o->seq_start = (uint64_t)v;
      break;
    case O_DICT:
      if (parse_long("--dict-every", optarg, 1, 1000000000, &o->dict_every) != 0)
        return 2;
      break;
    case O_STATS:
      if (parse_long("--stats-every", optarg, 0, 3600, &o->stats_every) != 0)
        return 2;
      break;
    case O_RATE: {
      char *end;
      o->rate = strtod(optarg, &end);
      if (*end != '\0' || !(o->rate >= 0) || o->rate > 1e9) {
        fprintf(stderr, "loadgen: --rate: expected frames per second, got '%s'\n", optarg);
        return 2;
      }
      break;
    }
    case O_INTERVAL:
      if (parse_long("--interval", optarg, 1, 3600000, &v) != 0)
        return 2;
      o->interval_ms = v;
      break;
    case O_TS:
      if (parse_long("--ts-base", optarg, 1, 4102444800000L, &v) != 0)
        return 2;
      o->ts_base_ms = v;
      break;
    case O_EXC:
      if (sscanf(optarg, "%ld:%lf:%lf:%lf", &o->exc_rack, &o->exc_from_s, &o->exc_to_s,
                 &o->exc_rise) != 4 ||
          o->exc_rack < 1 || !(o->exc_to_s > o->exc_from_s)) {
        fprintf(stderr, "loadgen: --excursion: expected RACK:FROM_S:TO_S:RISE_C, got '%s'\n",
                optarg);
        return 2;
      }
      break;
    case O_HASH: o->dict_hash = true; break;
    case 'q': o->quiet = true; break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }
  return 0;
}

static rd_kafka_t *create_producer(const struct options *o) {
  char e[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *settings[][2] = {
      {"bootstrap.servers", o->brokers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.codec", "lz4"},
      {"linger.ms", "5"},
      {"queue.buffering.max.messages", "200000"},
      {"queue.buffering.max.kbytes", "1048576"},
      {"message.max.bytes", "10000000"},
  };
  for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
    if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], e, sizeof(e)) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "loadgen: kafka setting %s: %s\n", settings[i][0], e);
      rd_kafka_conf_destroy(conf);
      return NULL;
    }
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
  if (rk == NULL) {
    fprintf(stderr, "loadgen: kafka producer: %s\n", e);
    rd_kafka_conf_destroy(conf);
  }
  return rk;
}

/* Produces one message, waiting while the local queue is full. */
static int produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, void *buf, size_t len, const char *key,
                   int64_t ts_ms) {
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(buf, len),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
      return 0;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || stop) {
      fprintf(stderr, "loadgen: produce: %s\n", rd_kafka_err2str(err));
      return -1;
    }
    rd_kafka_poll(rk, 50);
  }
}

int main(int argc, char **argv) {
  struct options o;
  int rc = parse_options(argc, argv, &o);
  if (rc != 0)
    return rc;
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  size_t nagents = (size_t)(o.racks * o.agents);
  struct sim_agent *agents = calloc(nagents, sizeof(*agents));
  uint8_t *buf = NULL;
  size_t buf_cap = 0;
  rd_kafka_t *rk = NULL;
  rd_kafka_topic_t *rkt = NULL;
  int status = 1;
  if (agents == NULL) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  for (long r = 0; r < o.racks; r++)
    for (long a = 0; a < o.agents; a++)
      sim_agent_init(&agents[r * o.agents + a], &o, r + 1, a + 1);
  if ((rk = create_producer(&o)) == NULL)
    goto cleanup;
  if ((rkt = rd_kafka_topic_new(rk, o.topic, NULL)) == NULL) {
    fprintf(stderr, "loadgen: topic %s: %s\n", o.topic, rd_kafka_err2str(rd_kafka_last_error()));
    goto cleanup;
  }

  double start = now_s();
  uint64_t sent = 0, samples = 0, bytes = 0;
  for (long k = 0; k < o.frames && !stop; k++) {
    uint64_t seq = o.seq_start + (uint64_t)k;
    bool dict = k == 0 || (seq - 1) % (uint64_t)o.dict_every == 0;
    for (size_t i = 0; i < nagents && !stop; i++) {
      struct sim_agent *s = &agents[i];
      sim_agent_fill(s, &o, seq, dict);
      size_t len = rackpulse__v1__frame__get_packed_size(&s->f);
      if (len > buf_cap) {
        uint8_t *grown = realloc(buf, len);
        if (grown == NULL) {
          fprintf(stderr, "loadgen: out of memory\n");
          goto cleanup;
        }
        buf = grown;
        buf_cap = len;
      }
      rackpulse__v1__frame__pack(&s->f, buf);
      if (produce(rk, rkt, buf, len, s->rack_id, o.ts_base_ms ? s->f.ts_ms : 0) != 0)
        goto cleanup;
      sent++;
      samples += (uint64_t)o.series;
      bytes += len;
      rd_kafka_poll(rk, 0);
      if (o.rate > 0) {
        double due = start + (double)sent / o.rate, now = now_s();
        if (due > now) {
          struct timespec ts = {(time_t)(due - now),
                                (long)((due - now - (double)(time_t)(due - now)) * 1e9)};
          nanosleep(&ts, NULL);
        }
      }
    }
  }
  double produced_s = now_s() - start;
  while (rd_kafka_outq_len(rk) > 0 && !stop && now_s() - start - produced_s < 60)
    rd_kafka_poll(rk, 100);
  double total_s = now_s() - start;
  if (!o.quiet)
    fprintf(stderr,
            "loadgen: %" PRIu64 " frames (%" PRIu64 " samples, %.1f bytes/sample) for %ld "
            "rack(s) x %ld agent(s), seq %" PRIu64 "..%" PRIu64 ", delivered %" PRIu64
            ", failed %" PRIu64 ", in %.2f s\n",
            sent, samples, samples ? (double)bytes / (double)samples : 0.0, o.racks, o.agents,
            o.seq_start, o.seq_start + (uint64_t)o.frames - 1, delivered, failed, total_s);
  status = delivered == sent && failed == 0 && !stop ? 0 : 1;
cleanup:
  if (rkt != NULL)
    rd_kafka_topic_destroy(rkt);
  if (rk != NULL)
    rd_kafka_destroy(rk);
  for (size_t i = 0; i < nagents; i++)
    sim_agent_free(&agents[i]);
  free(agents);
  free(buf);
  return status;
}
