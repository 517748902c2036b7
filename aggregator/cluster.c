/* Membership of a site's aggregators (see cluster.h): this member's
 * assignment, set from the consumer's rebalance callback, and the members
 * table, read from the members topic by a thread of this file that also
 * publishes this member's record (every cluster.heartbeat and at once on a
 * change). The members topic is read from its beginning without a consumer
 * group (the legacy per-partition API), so every member reads all of it;
 * this member's own records there are ignored (its own state is local). */
#include "cluster.h"
#include "ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/clock.h"
#include "rackpulse/frame.h"
#include "rackpulse/log.h"

#define BITMAP_BYTES (RP_CLUSTER_MAX_PARTITIONS / 8)

struct member {
  char id[65];
  char url[256];
  bool left;
  int64_t ts_ms;          /* its clock, when it published the record */
  int64_t assigned_at_ms; /* when its assignment began */
  uint64_t recv_mono_ms;  /* our clock, when we read it */
  uint8_t owns[BITMAP_BYTES];
};

struct rp_cluster {
  struct rp_aggregator *a;
  struct rp_cluster_config cfg;
  char topic[128]; /* the frames topic */
  int32_t partition_count;
  pthread_mutex_t lock;
  uint8_t owns[BITMAP_BYTES];    /* this member's partitions, answered here */
  uint8_t pending[BITMAP_BYTES]; /* assigned, ledger not rebuilt yet: not answered */
  struct rp_changelog *changelog;
  bool left;
  int64_t assigned_at_ms;
  bool dirty; /* the assignment changed: publish now */
  struct member members[RP_CLUSTER_MAX_MEMBERS];
  size_t nmembers;
  rd_kafka_t *producer, *reader;
  rd_kafka_topic_t *members_rkt, *reader_rkt;
  rd_kafka_queue_t *queue;
  int32_t members_partitions;
  pthread_t thread;
  bool thread_started;
  volatile bool stop;
};

static char self_id[65];

const char *rp_cluster_self_id(void) { return self_id[0] ? self_id : NULL; }

void rp_cluster_stamp(json_t *answer) {
  if (self_id[0] != '\0' && json_is_object(answer))
    json_object_set_new(answer, "answered_by", json_string(self_id));
}

const struct rp_cluster_config *rp_cluster_config(const struct rp_cluster *c) { return &c->cfg; }

int32_t rp_cluster_partition(const char *rack, int32_t partition_count) {
  return rd_kafka_msg_partitioner_consistent(NULL, rack, strlen(rack), partition_count, NULL, NULL);
}

static bool bit(const uint8_t *map, int32_t p) { return (map[p / 8] >> (p % 8)) & 1; }
static void set_bit(uint8_t *map, int32_t p) { map[p / 8] |= (uint8_t)(1u << (p % 8)); }

static bool live(const struct rp_cluster *c, const struct member *m, int64_t now_ms,
                 uint64_t mono_ms) {
  int64_t timeout = c->cfg.member_timeout_ms;
  return !m->left && now_ms - m->ts_ms <= timeout &&
         (int64_t)(mono_ms - m->recv_mono_ms) <= timeout;
}

/* This member's record; `left` says it is leaving. */
static void publish(struct rp_cluster *c, bool left) {
  json_t *parts = json_array();
  pthread_mutex_lock(&c->lock);
  for (int32_t p = 0; p < c->partition_count && !left; p++)
    if (bit(c->owns, p))
      json_array_append_new(parts, json_integer(p));
  int64_t assigned_at = c->assigned_at_ms;
  c->dirty = false;
  pthread_mutex_unlock(&c->lock);
  json_t *rec =
      json_pack("{s:s, s:s, s:s, s:i, s:o, s:I, s:I, s:s}", "member", c->cfg.member_id, "url",
                c->cfg.advertise, "topic", c->topic, "partition_count", (int)c->partition_count,
                "partitions", parts, "assigned_at_ms", (json_int_t)assigned_at, "ts_ms",
                (json_int_t)rp_now_ms(), "state", left ? "left" : "up");
  char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
  json_decref(rec);
  if (text == NULL)
    return;
  if (rd_kafka_produce(c->members_rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_FREE, text,
                       strlen(text), c->cfg.member_id, strlen(c->cfg.member_id), NULL) != 0) {
    rp_warn("cluster", "member record not published on %s: %s", c->cfg.members_topic,
            rd_kafka_err2str(rd_kafka_last_error()));
    free(text);
  }
}

static struct member *find_member(struct rp_cluster *c, const char *id, bool add) {
  for (size_t i = 0; i < c->nmembers; i++)
    if (strcmp(c->members[i].id, id) == 0)
      return &c->members[i];
  if (!add)
    return NULL;
  if (c->nmembers == RP_CLUSTER_MAX_MEMBERS) {
    /* Full: reuse the entry heard of least recently. */
    size_t oldest = 0;
    for (size_t i = 1; i < c->nmembers; i++)
      if (c->members[i].recv_mono_ms < c->members[oldest].recv_mono_ms)
        oldest = i;
    memset(&c->members[oldest], 0, sizeof(c->members[oldest]));
    snprintf(c->members[oldest].id, sizeof(c->members[oldest].id), "%s", id);
    return &c->members[oldest];
  }
  struct member *m = &c->members[c->nmembers++];
  memset(m, 0, sizeof(*m));
  snprintf(m->id, sizeof(m->id), "%s", id);
  return m;
}

/* One record of the members topic into the table. */
static void read_record(struct rp_cluster *c, const rd_kafka_message_t *msg) {
  char key[65];
  if (msg->key == NULL || msg->key_len == 0 || msg->key_len >= sizeof(key))
    return;
  memcpy(key, msg->key, msg->key_len);
  key[msg->key_len] = '\0';
  if (strcmp(key, c->cfg.member_id) == 0)
    return;
  pthread_mutex_lock(&c->lock);
  if (msg->payload == NULL) { /* a tombstone: the member is gone for good */
    struct member *m = find_member(c, key, false);
    if (m != NULL)
      m->left = true;
    pthread_mutex_unlock(&c->lock);
    return;
  }
  json_t *rec = json_loadb(msg->payload, msg->len, 0, NULL);
  const char *url = json_string_value(json_object_get(rec, "url"));
  const char *topic = json_string_value(json_object_get(rec, "topic"));
  const char *state = json_string_value(json_object_get(rec, "state"));
  json_int_t count = json_integer_value(json_object_get(rec, "partition_count"));
  if (url == NULL || topic == NULL || state == NULL) {
    rp_warn("cluster", "%s [%d] offset %" PRId64 ": member record of %s not understood; ignored",
            c->cfg.members_topic, (int)msg->partition, msg->offset, key);
    pthread_mutex_unlock(&c->lock);
    json_decref(rec);
    return;
  }
  struct member *m = find_member(c, key, true);
  bool was_live = live(c, m, rp_now_ms(), rp_mono_ms());
  snprintf(m->url, sizeof(m->url), "%s", url);
  m->left = strcmp(state, "up") != 0;
  m->ts_ms = json_integer_value(json_object_get(rec, "ts_ms"));
  m->assigned_at_ms = json_integer_value(json_object_get(rec, "assigned_at_ms"));
  m->recv_mono_ms = rp_mono_ms();
  memset(m->owns, 0, sizeof(m->owns));
  if (strcmp(topic, c->topic) != 0 || count != c->partition_count) {
    rp_warn("cluster",
            "member %s consumes %s with %lld partitions, this member %s with %d: its "
            "assignment is ignored (every member must use the same topic and partitions)",
            key, topic, (long long)count, c->topic, (int)c->partition_count);
  } else {
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rec, "partitions"), i, p) {
      json_int_t n = json_integer_value(p);
      if (n >= 0 && n < c->partition_count)
        set_bit(m->owns, (int32_t)n);
    }
  }
  bool is_live = live(c, m, rp_now_ms(), rp_mono_ms());
  pthread_mutex_unlock(&c->lock);
  if (is_live != was_live)
    rp_info("cluster", "member %s at %s %s", key, url, is_live ? "joined" : "left");
  json_decref(rec);
}

static void rebuild_pending(struct rp_cluster *c);

/* The ledger partitions owned (or being rebuilt) are read on: records
 * other writers add to them are applied (changelog_tail.c). */
static void tail_ledger(struct rp_cluster *c) {
  uint8_t keep[BITMAP_BYTES];
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < BITMAP_BYTES; i++)
    keep[i] = c->owns[i] | c->pending[i];
  pthread_mutex_unlock(&c->lock);
  rp_changelog_tail_keep(c->changelog, keep);
  rp_changelog_tail_poll(c->changelog);
}

static void *members_thread(void *arg) {
  struct rp_cluster *c = arg;
  uint64_t last_pub = 0;
  while (!c->stop) {
    uint64_t now = rp_mono_ms();
    pthread_mutex_lock(&c->lock);
    bool dirty = c->dirty;
    pthread_mutex_unlock(&c->lock);
    rebuild_pending(c);
    tail_ledger(c);
    rp_changelog_reassert(c->changelog);
    if (dirty || now - last_pub >= (uint64_t)c->cfg.heartbeat_ms) {
      publish(c, false);
      last_pub = now;
    }
    rd_kafka_poll(c->producer, 0);
    rd_kafka_message_t *msg = rd_kafka_consume_queue(c->queue, 100);
    while (msg != NULL) {
      if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        read_record(c, msg);
      else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        rp_warn("cluster", "%s: %s", c->cfg.members_topic, rd_kafka_message_errstr(msg));
      rd_kafka_message_destroy(msg);
      msg = rd_kafka_consume_queue(c->queue, 0);
    }
  }
  return NULL;
}

static int start_reader(struct rp_cluster *c, char *err, size_t errlen) {
  c->reader =
      rp_kafka_client_new(&c->a->cfg, RD_KAFKA_CONSUMER, "members reader", NULL, NULL, err, errlen);
  if (c->reader == NULL)
    return -EINVAL;
  int rc = rp_kafka_partition_count(c->reader, c->cfg.members_topic, &c->members_partitions, err,
                                    errlen);
  if (rc != 0)
    return rc;
  c->reader_rkt = rd_kafka_topic_new(c->reader, c->cfg.members_topic, NULL);
  c->queue = rd_kafka_queue_new(c->reader);
  for (int32_t p = 0; p < c->members_partitions; p++) {
    if (rd_kafka_consume_start_queue(c->reader_rkt, p, RD_KAFKA_OFFSET_BEGINNING, c->queue) != 0) {
      snprintf(err, errlen, "reading %s [%d]: %s", c->cfg.members_topic, (int)p,
               rd_kafka_err2str(rd_kafka_last_error()));
      return -EIO;
    }
  }
  return 0;
}

static void free_cluster(struct rp_cluster *c) {
  rp_changelog_stop(c->changelog);
  if (c->reader_rkt != NULL) {
    for (int32_t p = 0; p < c->members_partitions; p++)
      rd_kafka_consume_stop(c->reader_rkt, p);
    rd_kafka_topic_destroy(c->reader_rkt);
  }
  if (c->queue != NULL)
    rd_kafka_queue_destroy(c->queue);
  if (c->reader != NULL)
    rd_kafka_destroy(c->reader);
  if (c->members_rkt != NULL)
    rd_kafka_topic_destroy(c->members_rkt);
  if (c->producer != NULL)
    rd_kafka_destroy(c->producer);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

int rp_cluster_start(struct rp_aggregator *a, struct rp_cluster **out, char *err, size_t errlen) {
  struct rp_cluster *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  c->a = a;
  c->cfg = a->cfg.cluster;
  snprintf(c->topic, sizeof(c->topic), "%s", a->cfg.kafka.topic);
  pthread_mutex_init(&c->lock, NULL);
  int rc = -EINVAL;
  c->producer =
      rp_kafka_client_new(&a->cfg, RD_KAFKA_PRODUCER, "members producer", NULL, NULL, err, errlen);
  if (c->producer == NULL)
    goto fail;
  if ((rc = rp_kafka_partition_count(c->producer, c->topic, &c->partition_count, err, errlen)) != 0)
    goto fail;
  c->members_rkt = rd_kafka_topic_new(c->producer, c->cfg.members_topic, NULL);
  if ((rc = start_reader(c, err, errlen)) != 0)
    goto fail;
  if ((rc = rp_changelog_start(a, c->partition_count, &c->changelog, err, errlen)) != 0)
    goto fail;
  snprintf(self_id, sizeof(self_id), "%s", c->cfg.member_id);
  if (pthread_create(&c->thread, NULL, members_thread, c) != 0) {
    snprintf(err, errlen, "cannot start the members thread");
    rc = -EAGAIN;
    goto fail;
  }
  c->thread_started = true;
  rp_info("cluster", "member %s at %s: %s has %d partitions, members on %s", c->cfg.member_id,
          c->cfg.advertise, c->topic, (int)c->partition_count, c->cfg.members_topic);
  *out = c;
  return 0;
fail:
  self_id[0] = '\0';
  free_cluster(c);
  return rc;
}

void rp_cluster_leave(struct rp_cluster *c) {
  if (c == NULL || c->left)
    return;
  c->left = true;
  c->stop = true;
  if (c->thread_started)
    pthread_join(c->thread, NULL);
  c->thread_started = false;
  publish(c, true);
  if (rd_kafka_flush(c->producer, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    rp_warn("cluster", "the 'left' record of %s was not delivered: the others will time it out",
            c->cfg.member_id);
}

void rp_cluster_stop(struct rp_cluster *c) {
  if (c == NULL)
    return;
  rp_cluster_leave(c);
  self_id[0] = '\0';
  free_cluster(c);
}

bool rp_cluster_answers(struct rp_cluster *c, const char *rack) {
  if (c == NULL)
    return true;
  int32_t partition;
  char member[65], url[256];
  return rp_cluster_owner(c, rack, &partition, member, url) == RP_OWNER_SELF;
}

int32_t rp_cluster_home(struct rp_cluster *c, const char *rack) {
  return c == NULL || rack == NULL ? -1 : rp_cluster_partition(rack, c->partition_count);
}

void rp_cluster_metrics(struct rp_cluster *c, FILE *out) {
  if (c != NULL)
    rp_changelog_metrics(c->changelog, out);
}

/* Rebuilds the ledger of every pending partition, then answers for it
 * (members thread). A partition revoked meanwhile stays unanswered; one
 * that cannot be rebuilt is tried again on the next call. */
static void rebuild_pending(struct rp_cluster *c) {
  for (int32_t p = 0; p < c->partition_count && !c->stop; p++) {
    pthread_mutex_lock(&c->lock);
    bool pending = bit(c->pending, p);
    pthread_mutex_unlock(&c->lock);
    if (!pending)
      continue;
    char err[512];
    int rc = rp_changelog_rebuild(c->changelog, p, err, sizeof(err));
    if (rc == -ENOENT)
      continue; /* revoked meanwhile: not pending any more */
    if (rc == -ESTALE) {
      /* Claimed by another member: not tried again (claiming it back would
       * fence a member the group gave it to). */
      rp_cluster_fence(c, p);
      rp_warn("cluster", "partition %d is not answered here: %s", (int)p, err);
      continue;
    }
    if (rc == -EAGAIN)
      continue; /* its last failure was logged; tried again later */
    if (rc != 0) {
      rp_warn("cluster", "partition %d is not answered here yet: ledger not rebuilt: %s", (int)p,
              err);
      continue;
    }
    pthread_mutex_lock(&c->lock);
    if (bit(c->pending, p)) {
      c->pending[p / 8] &= (uint8_t) ~(1u << (p % 8));
      set_bit(c->owns, p);
      c->assigned_at_ms = rp_now_ms();
      c->dirty = true;
    }
    pthread_mutex_unlock(&c->lock);
  }
}

/* Sets (or clears) the bits of parts' frames-topic partitions in map.
 * Locked. */
static void mark(struct rp_cluster *c, uint8_t *map, const rd_kafka_topic_partition_list_t *parts,
                 bool on) {
  for (int i = 0; parts != NULL && i < parts->cnt; i++) {
    const rd_kafka_topic_partition_t *p = &parts->elems[i];
    if (strcmp(p->topic, c->topic) != 0 || p->partition < 0 || p->partition >= c->partition_count)
      continue;
    if (on)
      set_bit(map, p->partition);
    else
      map[p->partition / 8] &= (uint8_t) ~(1u << (p->partition % 8));
  }
}

void rp_cluster_assigned(struct rp_cluster *c, const rd_kafka_topic_partition_list_t *parts,
                         bool add) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->lock);
  if (!add) {
    memset(c->owns, 0, sizeof(c->owns));
    memset(c->pending, 0, sizeof(c->pending));
  }
  /* Answered once their ledger is rebuilt (members thread), under a new
   * claim. */
  mark(c, c->pending, parts, true);
  for (int i = 0; parts != NULL && i < parts->cnt; i++)
    if (strcmp(parts->elems[i].topic, c->topic) == 0 && parts->elems[i].partition >= 0 &&
        parts->elems[i].partition < c->partition_count)
      rp_changelog_assigned(c->changelog, parts->elems[i].partition);
  c->dirty = true;
  pthread_mutex_unlock(&c->lock);
}

void rp_cluster_revoked(struct rp_cluster *c, const rd_kafka_topic_partition_list_t *parts) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->lock);
  if (parts == NULL) {
    memset(c->owns, 0, sizeof(c->owns));
    memset(c->pending, 0, sizeof(c->pending));
  } else {
    mark(c, c->owns, parts, false);
    mark(c, c->pending, parts, false);
  }
  c->dirty = true;
  pthread_mutex_unlock(&c->lock);
  /* A change decided while we owned them is on the ledger topic (or was
   * refused) before the partitions can be assigned to another member,
   * which rebuilds their ledger from it; later ones see we do not own
   * them. */
  rp_info("cluster", "%d partition(s) revoked: waiting for the ledger change in flight, if any",
          parts ? parts->cnt : c->partition_count);
  rp_ledger_barrier(c->a->ledger);
}

bool rp_cluster_pending(struct rp_cluster *c, int32_t partition) {
  if (c == NULL || partition < 0 || partition >= c->partition_count)
    return false;
  pthread_mutex_lock(&c->lock);
  bool pending = bit(c->pending, partition);
  pthread_mutex_unlock(&c->lock);
  return pending;
}

void rp_cluster_fence(struct rp_cluster *c, int32_t partition) {
  if (c == NULL || partition < 0 || partition >= c->partition_count)
    return;
  pthread_mutex_lock(&c->lock);
  c->owns[partition / 8] &= (uint8_t) ~(1u << (partition % 8));
  c->pending[partition / 8] &= (uint8_t) ~(1u << (partition % 8));
  c->dirty = true;
  pthread_mutex_unlock(&c->lock);
}

bool rp_cluster_rebuild_again(struct rp_cluster *c, int32_t partition) {
  if (c == NULL || partition < 0 || partition >= c->partition_count)
    return false;
  pthread_mutex_lock(&c->lock);
  bool owned = bit(c->owns, partition);
  if (owned) {
    c->owns[partition / 8] &= (uint8_t) ~(1u << (partition % 8));
    set_bit(c->pending, partition);
    c->dirty = true;
  }
  pthread_mutex_unlock(&c->lock);
  return owned;
}

enum rp_owner rp_cluster_owner(struct rp_cluster *c, const char *rack, int32_t *partition,
                               char *member, char *url) {
  int32_t p = rp_cluster_partition(rack, c->partition_count);
  *partition = p;
  enum rp_owner who = RP_OWNER_NONE;
  int64_t now = rp_now_ms();
  uint64_t mono = rp_mono_ms();
  pthread_mutex_lock(&c->lock);
  /* Ours, unless a live member was assigned it later (our consumer has not
   * noticed losing it yet: its store is no longer fed). */
  bool ours = bit(c->owns, p);
  for (size_t i = 0; ours && i < c->nmembers; i++)
    if (bit(c->members[i].owns, p) && live(c, &c->members[i], now, mono) &&
        c->members[i].assigned_at_ms > c->assigned_at_ms)
      ours = false;
  if (ours) {
    who = RP_OWNER_SELF;
    snprintf(member, 65, "%s", c->cfg.member_id);
    snprintf(url, 256, "%s", c->cfg.advertise);
  } else {
    const struct member *best = NULL;
    for (size_t i = 0; i < c->nmembers; i++) {
      const struct member *m = &c->members[i];
      if (bit(m->owns, p) && live(c, m, now, mono) &&
          (best == NULL || m->assigned_at_ms > best->assigned_at_ms))
        best = m;
    }
    if (best != NULL) {
      who = RP_OWNER_REMOTE;
      snprintf(member, 65, "%s", best->id);
      snprintf(url, 256, "%s", best->url);
    }
  }
  pthread_mutex_unlock(&c->lock);
  return who;
}

size_t rp_cluster_live(struct rp_cluster *c, struct rp_member_addr *out, size_t max) {
  size_t n = 0;
  int64_t now = rp_now_ms();
  uint64_t mono = rp_mono_ms();
  if (max == 0)
    return 0;
  snprintf(out[n].id, sizeof(out[n].id), "%s", c->cfg.member_id);
  snprintf(out[n].url, sizeof(out[n].url), "%s", c->cfg.advertise);
  n++;
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < c->nmembers && n < max; i++) {
    if (!live(c, &c->members[i], now, mono))
      continue;
    snprintf(out[n].id, sizeof(out[n].id), "%s", c->members[i].id);
    snprintf(out[n].url, sizeof(out[n].url), "%s", c->members[i].url);
    n++;
  }
  pthread_mutex_unlock(&c->lock);
  return n;
}

/* Partitions owned by this member or a live one, as a bitmap. Locked. */
static void owned_map(struct rp_cluster *c, uint8_t *map) {
  int64_t now = rp_now_ms();
  uint64_t mono = rp_mono_ms();
  memcpy(map, c->owns, BITMAP_BYTES);
  for (size_t i = 0; i < c->nmembers; i++)
    if (live(c, &c->members[i], now, mono))
      for (size_t b = 0; b < BITMAP_BYTES; b++)
        map[b] |= c->members[i].owns[b];
}

json_t *rp_cluster_unowned(struct rp_cluster *c) {
  uint8_t map[BITMAP_BYTES];
  pthread_mutex_lock(&c->lock);
  owned_map(c, map);
  pthread_mutex_unlock(&c->lock);
  json_t *out = json_array();
  for (int32_t p = 0; p < c->partition_count; p++)
    if (!bit(map, p))
      json_array_append_new(out, json_integer(p));
  return out;
}

static json_t *partitions_json(const struct rp_cluster *c, const uint8_t *map) {
  json_t *out = json_array();
  for (int32_t p = 0; p < c->partition_count; p++)
    if (bit(map, p))
      json_array_append_new(out, json_integer(p));
  return out;
}

json_t *rp_cluster_json(struct rp_cluster *c) {
  int64_t now = rp_now_ms();
  uint64_t mono = rp_mono_ms();
  json_t *members = json_array();
  pthread_mutex_lock(&c->lock);
  json_array_append_new(members, json_pack("{s:s, s:s, s:o, s:I, s:b, s:b}", "member",
                                           c->cfg.member_id, "url", c->cfg.advertise, "partitions",
                                           partitions_json(c, c->owns), "assigned_at_ms",
                                           (json_int_t)c->assigned_at_ms, "live", 1, "self", 1));
  for (size_t i = 0; i < c->nmembers; i++) {
    const struct member *m = &c->members[i];
    json_array_append_new(
        members,
        json_pack("{s:s, s:s, s:o, s:I, s:b, s:b, s:I, s:s}", "member", m->id, "url", m->url,
                  "partitions", partitions_json(c, m->owns), "assigned_at_ms",
                  (json_int_t)m->assigned_at_ms, "live", live(c, m, now, mono), "self", 0, "age_ms",
                  (json_int_t)(mono - m->recv_mono_ms), "state", m->left ? "left" : "up"));
  }
  pthread_mutex_unlock(&c->lock);
  return json_pack("{s:s, s:s, s:i, s:s, s:o, s:o}", "member", c->cfg.member_id, "topic", c->topic,
                   "partition_count", (int)c->partition_count, "members_topic",
                   c->cfg.members_topic, "members", members, "unowned", rp_cluster_unowned(c));
}
