/* Store and forward (see delivery.h). Two spool batches alternate: the loop
 * fills one (new frames, acknowledgements) while the thread pool writes the
 * other. After a write, the sender hands the spool's oldest unsent frames to
 * Kafka up to the in-flight limit; each acknowledgement frees a slot and
 * queues the frame's deletion.
 *
 * A new frame is written at once (it must be durable before Kafka sees it);
 * deletions ride with the next frame's write, or go at once before a
 * resend. So a steady agent syncs once per frame, not twice. A crash before
 * a deletion is written sends that frame again on restart: a duplicate by
 * sequence number, which consumers drop, never a loss.
 *
 * Kafka errors: only a frame Kafka refuses for itself (too large, invalid)
 * is dropped, and counted as rejected. Any other error (unknown topic,
 * authorization, timeouts, a fatal producer error) keeps every frame in the
 * spool: sending pauses with a growing back-off and resumes from the oldest
 * frame. After a fatal error the producer is purged, closed and created
 * again. The error shows in the health (kafka_error) until a frame is
 * delivered again, and is logged once per episode. A producer that cannot
 * be created at start for a reason of the moment (threads, descriptors) is
 * created the same way from the retry timer; frames are spooled meanwhile.
 *
 * Spool errors: when a write fails (disk full, LMDB map full) the frames of
 * that write are kept in memory instead (bounded like the spool: the oldest
 * not yet handed to Kafka are dropped and counted) and still go to Kafka,
 * in sequence order with the spooled ones. The spool is "degraded" until a
 * write succeeds again; then new frames are written ahead as before. */
#include "delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "publish.h"
#include "rackpulse/log.h"
#include "spool.h"

/* A frame the spool could not hold, kept in memory until delivered. */
struct mem_frame {
  uint64_t seq;
  uint8_t *buf;
  size_t len;
};

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 8000

struct rp_delivery {
  uv_loop_t *loop;
  const struct rp_agent_config *cfg;
  char spool_dir[512];
  struct rp_spool *spool;
  struct rp_publisher *pub;
  bool client_lost; /* librdkafka left a half-made client: no other is made */
  struct rp_spool_batch batches[2];
  struct rp_spool_batch *filling; /* the loop adds to this one */
  struct rp_spool_batch *writing; /* NULL, or the batch in the thread pool */
  uv_work_t work;
  uint64_t next_seq;
  uint64_t sent_upto; /* highest seq handed to Kafka */
  uint64_t in_flight;
  bool rewind; /* resend from the oldest once in_flight is 0 */
  bool closing;
  uint64_t write_errors, dropped_session, delivered;
  /* Kafka errors. */
  uint64_t rejected;     /* frames Kafka refused for themselves */
  char kafka_error[256]; /* the error while it lasts, "" when delivering */
  uv_timer_t retry_timer;
  bool retry_timer_open;
  bool backing_off; /* pump() waits for the retry timer */
  uint64_t backoff_ms;
  bool recreate; /* fatal: replace the producer once nothing is in flight */
  bool creating; /* ...or create it: it could not be created at start */
  uint64_t recreations;
  /* Spool errors: frames of failed writes, in seq order. */
  struct mem_frame *mem;
  size_t nmem, cap_mem;
  uint64_t mem_bytes, mem_dropped, spool_write_failures;
  bool spool_degraded;
};

static void start_write(struct rp_delivery *d);
static void on_delivered(void *ctx, uint64_t seq, int err, bool permanent, const char *reason);
static void on_kafka_error(void *ctx, const char *reason, bool fatal);

static void on_write(uv_work_t *w) {
  struct rp_delivery *d = w->data;
  rp_spool_write(d->spool, d->writing);
}

/* The error Kafka gives now: logged when it starts or changes (unless the
 * caller has logged it), shown in the health until a frame is delivered
 * again. */
static void kafka_error_note(struct rp_delivery *d, const char *what, bool logged) {
  if (strcmp(d->kafka_error, what) == 0)
    return;
  if (!logged && d->kafka_error[0] == '\0')
    rp_error("delivery",
             "kafka: %s: frames stay in the spool and are sent again, oldest first, "
             "when Kafka takes them",
             what);
  else if (!logged)
    rp_warn("delivery", "kafka: now %s (frames still kept)", what);
  snprintf(d->kafka_error, sizeof(d->kafka_error), "%s", what);
}

static void kafka_error_set(struct rp_delivery *d, const char *what) {
  kafka_error_note(d, what, false);
}

static void on_retry(uv_timer_t *t);

/* Pauses sending for the back-off (doubling up to a ceiling while the
 * errors last); the retry timer resumes it. */
static void back_off(struct rp_delivery *d) {
  if (d->backing_off || d->closing || !d->retry_timer_open)
    return;
  d->backoff_ms = d->backoff_ms == 0 ? BACKOFF_MIN_MS : d->backoff_ms * 2;
  if (d->backoff_ms > BACKOFF_MAX_MS)
    d->backoff_ms = BACKOFF_MAX_MS;
  d->backing_off = true;
  uv_timer_start(&d->retry_timer, on_retry, d->backoff_ms, 0);
}

/* A fatal producer error: nothing more can be sent with this producer. Its
 * frames come back (purged) and it is replaced from the retry timer, never
 * from inside one of its own callbacks. */
static void start_recreate(struct rp_delivery *d, const char *reason) {
  if (d->recreate || d->pub == NULL)
    return;
  char what[256];
  snprintf(what, sizeof(what), "fatal producer error: %s", reason);
  rp_error("delivery",
           "kafka: fatal producer error: %s: recreating the producer; frames stay in the spool "
           "and are sent again, oldest first",
           reason);
  kafka_error_note(d, what, true);
  d->recreate = true;
  d->recreations++;
  rp_pub_purge(d->pub);
  back_off(d);
}

/* The producer could not be created at start for a reason of the moment
 * (threads, descriptors, memory): the agent runs, frames are spooled, and
 * the retry timer creates the producer. */
static void create_later(struct rp_delivery *d, const char *why) {
  char what[256];
  snprintf(what, sizeof(what), "cannot create the producer: %s", why);
  rp_error("delivery",
           "kafka: %s; frames are spooled and the producer is created again with back-off", what);
  kafka_error_note(d, what, true);
  d->pub = NULL;
  d->recreate = d->creating = true;
  back_off(d);
}

/* Frames held in memory (the spool could not write them), by seq. */
static size_t mem_find(const struct rp_delivery *d, uint64_t seq) {
  size_t lo = 0, hi = d->nmem;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (d->mem[mid].seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo; /* the first with seq >= the one asked */
}

static void mem_remove(struct rp_delivery *d, size_t i) {
  d->mem_bytes -= d->mem[i].len;
  free(d->mem[i].buf);
  memmove(&d->mem[i], &d->mem[i + 1], (d->nmem - i - 1) * sizeof(d->mem[0]));
  d->nmem--;
}

/* Takes a frame the spool could not write (ownership of buf). Keeps within
 * the spool's bound by dropping the oldest frames not yet handed to Kafka.
 * Returns 0 or -ENOMEM (buf is then freed). */
static int mem_add(struct rp_delivery *d, uint64_t seq, uint8_t *buf, size_t len) {
  if (d->nmem == d->cap_mem) {
    size_t cap = d->cap_mem ? d->cap_mem * 2 : 64;
    struct mem_frame *m = realloc(d->mem, cap * sizeof(*m));
    if (m == NULL) {
      free(buf);
      return -ENOMEM;
    }
    d->mem = m;
    d->cap_mem = cap;
  }
  size_t at = mem_find(d, seq);
  memmove(&d->mem[at + 1], &d->mem[at], (d->nmem - at) * sizeof(d->mem[0]));
  d->mem[at] = (struct mem_frame){seq, buf, len};
  d->nmem++;
  d->mem_bytes += len;
  uint64_t max_bytes = (uint64_t)d->cfg->spool.max_mb << 20, dropped = 0;
  while (d->nmem > (uint64_t)d->cfg->spool.max_frames || d->mem_bytes > max_bytes) {
    size_t i = mem_find(d, d->sent_upto + 1);
    if (i >= d->nmem || d->mem[i].seq == seq)
      break; /* nothing older that Kafka does not have already */
    mem_remove(d, i);
    dropped++;
  }
  if (dropped > 0) {
    d->mem_dropped += dropped;
    rp_warn("delivery",
            "frames held in memory at the spool's bound: dropped the %" PRIu64
            " oldest unsent frame(s)",
            dropped);
  }
  return 0;
}

static bool ack_pending(const struct rp_spool_batch *b, uint64_t seq) {
  for (size_t i = b->nacks; i-- > 0;)
    if (b->acks[i] == seq)
      return true;
  return false;
}

/* The oldest frame after `after`, spooled or held in memory, skipping the
 * delivered ones whose deletion is not written yet. 0 with a malloc'd copy,
 * -ENOENT when there is none, or another negative errno. */
static int next_frame(struct rp_delivery *d, uint64_t after, uint64_t *seq, uint8_t **buf,
                      size_t *len) {
  uint64_t s_seq = 0, from = after;
  uint8_t *s_buf = NULL;
  size_t s_len = 0;
  int rc;
  while ((rc = rp_spool_next(d->spool, from, &s_seq, &s_buf, &s_len)) == 0 &&
         ack_pending(d->filling, s_seq)) {
    free(s_buf);
    s_buf = NULL;
    from = s_seq;
  }
  if (rc != 0 && rc != -ENOENT)
    return rc;
  size_t i = mem_find(d, after + 1);
  if (i < d->nmem && (rc == -ENOENT || d->mem[i].seq < s_seq)) {
    free(s_buf);
    *buf = malloc(d->mem[i].len ? d->mem[i].len : 1);
    if (*buf == NULL)
      return -ENOMEM;
    memcpy(*buf, d->mem[i].buf, d->mem[i].len);
    *seq = d->mem[i].seq;
    *len = d->mem[i].len;
    return 0;
  }
  if (rc == -ENOENT)
    return -ENOENT;
  *seq = s_seq;
  *buf = s_buf;
  *len = s_len;
  return 0;
}

/* A frame is done with: delivered, or refused by Kafka for itself. */
static void frame_done(struct rp_delivery *d, uint64_t seq) {
  size_t i = mem_find(d, seq);
  if (i < d->nmem && d->mem[i].seq == seq)
    mem_remove(d, i);
  else
    rp_spool_batch_add_ack(d->filling, seq);
}

/* Hands the oldest unsent frames to Kafka, up to the limit. Not while a
 * write is in progress: that write may drop, for the bound, frames past the
 * ones already handed over, so none may be handed over meanwhile. Not while
 * backing off from an error, nor while the producer is being replaced. */
static void pump(struct rp_delivery *d) {
  if (d->writing != NULL || d->backing_off || d->pub == NULL)
    return;
  char reason[512];
  if (!d->recreate && rp_pub_fatal(d->pub, reason, sizeof(reason)))
    start_recreate(d, reason);
  if (d->recreate)
    return;
  if (d->rewind && d->in_flight == 0) {
    if (d->filling->nacks > 0 && !d->spool_degraded) { /* delete the delivered first */
      start_write(d);                                  /* (after_write pumps again) */
      return;
    }
    d->sent_upto = 0;
    d->rewind = false;
  }
  while (!d->rewind && d->in_flight < (uint64_t)d->cfg->spool.max_in_flight) {
    uint64_t seq;
    uint8_t *buf;
    size_t len;
    int rc = next_frame(d, d->sent_upto, &seq, &buf, &len);
    if (rc == -ENOENT)
      return;
    if (rc != 0) {
      rp_error("delivery", "spool read after frame %" PRIu64 ": %s", d->sent_upto, strerror(-rc));
      return;
    }
    char err[512];
    enum rp_pub_result r = rp_pub_send(d->pub, d->cfg->agent.rack, seq, buf, len, err, sizeof(err));
    if (r == RP_PUB_RETRY) {
      free(buf); /* still kept: sent again on a later pump */
      if (err[0] != '\0') {
        if (rp_pub_fatal(d->pub, reason, sizeof(reason))) {
          start_recreate(d, reason);
        } else {
          kafka_error_set(d, err);
          back_off(d);
        }
      }
      return;
    }
    d->sent_upto = seq;
    if (r == RP_PUB_DROP) {
      free(buf);
      d->rejected++;
      rp_error("delivery", "frame %" PRIu64 " (%zu bytes) refused by Kafka: %s; dropped", seq, len,
               err);
      frame_done(d, seq);
      continue;
    }
    d->in_flight++;
  }
}

/* The back-off has passed: replace a failed producer if that is pending,
 * then send again. */
static void on_retry(uv_timer_t *t) {
  struct rp_delivery *d = t->data;
  d->backing_off = false;
  if (d->client_lost)
    return;
  if (d->recreate) {
    if (d->in_flight > 0) { /* purged frames still to come back */
      rp_pub_purge(d->pub);
      back_off(d);
      return;
    }
    char err[512];
    if (d->pub != NULL) {
      /* Nothing is in flight: the old client is destroyed off the loop. */
      if (rp_pub_discard(d->loop, d->pub) != 0)
        rp_warn("delivery", "kafka: could not hand the failed producer to the thread pool; "
                            "destroyed it on the loop");
      d->pub = NULL;
    }
    int rc =
        rp_pub_new(d->loop, d->cfg, on_delivered, on_kafka_error, d, &d->pub, err, sizeof(err));
    if (rc == -EDEADLK) {
      /* librdkafka left a half-made client running: no other is made in
       * this process; frames are spooled until the agent is restarted. */
      d->pub = NULL;
      d->client_lost = true;
      rp_error("delivery",
               "kafka: cannot %s the producer: %s; no other is tried in this process: restart "
               "the agent (frames are spooled meanwhile)",
               d->creating ? "create" : "recreate", err);
      kafka_error_note(d, "producer lost: restart the agent", true);
      return;
    }
    if (rc != 0) {
      d->pub = NULL;
      back_off(d); /* growing up to BACKOFF_MAX_MS */
      rp_error("delivery", "kafka: cannot %s the producer: %s; trying again in %" PRIu64 " ms",
               d->creating ? "create" : "recreate", err, d->backoff_ms);
      return;
    }
    if (d->creating)
      rp_warn("delivery", "kafka: producer created; sending the spooled frames, oldest first");
    else
      rp_warn("delivery", "kafka: producer recreated after the fatal error; sending again from "
                          "the oldest kept frame");
    d->recreate = d->creating = false;
    d->rewind = true;
  }
  pump(d);
}

static void after_write(uv_work_t *w, int status) {
  struct rp_delivery *d = w->data;
  struct rp_spool_batch *b = d->writing;
  bool failed = status != 0 || b->rc != 0;
  if (failed) {
    /* Nothing of this write reached the disk: its frames go to Kafka from
     * memory, its deletions wait for the next write. */
    d->spool_write_failures++;
    if (!d->spool_degraded)
      rp_error("delivery",
               "spool %s cannot be written: %s; frames go to Kafka from memory (not durable, "
               "at most spool.max_frames) until it can",
               d->spool_dir, status != 0 ? "spool write cancelled" : b->err);
    d->spool_degraded = true;
    for (size_t i = 0; i < b->nframes; i++) {
      if (mem_add(d, b->frames[i].seq, b->frames[i].buf, b->frames[i].len) != 0) {
        d->write_errors++;
        rp_error("delivery", "frame %" PRIu64 ": out of memory; lost", b->frames[i].seq);
      }
      b->frames[i].buf = NULL;
    }
    for (size_t i = 0; i < b->nacks; i++)
      rp_spool_batch_add_ack(d->filling, b->acks[i]);
  } else if (d->spool_degraded) {
    d->spool_degraded = false;
    rp_warn("delivery",
            "spool %s written again: back to write-ahead (%zu frame(s) still held in memory "
            "until Kafka has them)",
            d->spool_dir, d->nmem);
  }
  if (b->dropped > 0) {
    d->dropped_session += b->dropped;
    rp_warn("delivery", "spool full: dropped the %" PRIu64 " oldest unsent frame(s)", b->dropped);
  }
  rp_spool_batch_reset(b);
  d->writing = NULL;
  pump(d);
  /* After a failure only new frames try the spool again: deletions alone
   * would retry a full disk in a loop. */
  if (!failed || d->filling->nframes > 0)
    start_write(d);
}

static void start_write(struct rp_delivery *d) {
  struct rp_spool_batch *b = d->filling;
  if (d->writing != NULL || (b->nframes == 0 && b->nacks == 0))
    return;
  b->next_seq = d->next_seq;
  b->protect_from = d->sent_upto + 1;
  d->writing = b;
  d->filling = b == &d->batches[0] ? &d->batches[1] : &d->batches[0];
  d->work.data = d;
  if (d->closing) { /* the loop is winding down: write here and now */
    on_write(&d->work);
    after_write(&d->work, 0);
    return;
  }
  int rc = uv_queue_work(d->loop, &d->work, on_write, after_write);
  if (rc != 0) {
    on_write(&d->work);
    after_write(&d->work, 0);
  }
}

static void on_delivered(void *ctx, uint64_t seq, int err, bool permanent, const char *reason) {
  struct rp_delivery *d = ctx;
  d->in_flight--;
  if (err == 0 || permanent) {
    if (err != 0) {
      d->rejected++;
      rp_error("delivery", "frame %" PRIu64 " refused by Kafka (%s): dropped", seq, reason);
    } else {
      d->delivered++;
      if (d->kafka_error[0] != '\0' && !d->recreate) {
        rp_info("delivery", "kafka: delivering again (was: %s)", d->kafka_error);
        d->kafka_error[0] = '\0';
      }
      d->backoff_ms = 0;
    }
    frame_done(d, seq);
  } else {
    /* Still kept. Resend everything from the oldest, in order, once nothing
     * is in flight any more and the back-off has passed (pump() first
     * deletes what was delivered, so that the resend does not repeat it). */
    d->rewind = true;
    if (!d->recreate && !d->closing) {
      kafka_error_set(d, reason);
      back_off(d);
    }
  }
  if (!d->closing)
    pump(d);
}

/* Client-level errors: shown while frames wait; a fatal one replaces the
 * producer. */
static void on_kafka_error(void *ctx, const char *reason, bool fatal) {
  struct rp_delivery *d = ctx;
  if (d->closing)
    return;
  if (fatal) {
    start_recreate(d, reason);
    return;
  }
  /* librdkafka repeats these (with counts of suppressed ones): logged when
   * frames start waiting on them, then only kept up to date. */
  if (d->in_flight > 0 || d->rewind)
    kafka_error_note(d, reason, d->kafka_error[0] != '\0');
  else
    rp_warn("delivery", "kafka: %s", reason);
}

int rp_delivery_new(uv_loop_t *loop, const struct rp_agent_config *cfg, struct rp_delivery **out,
                    char *err, size_t errlen) {
  struct rp_delivery *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -ENOMEM;
  d->loop = loop;
  d->cfg = cfg;
  d->filling = &d->batches[0];
  char *dir = d->spool_dir;
  snprintf(d->spool_dir, sizeof(d->spool_dir), "%s/spool", cfg->agent.state_dir);
  if (mkdir(cfg->agent.state_dir, 0750) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "agent.state_dir %s: %s", cfg->agent.state_dir, strerror(errno));
    free(d);
    return -EIO;
  }
  struct rp_spool_limits lim = {
      .max_frames = (uint64_t)cfg->spool.max_frames,
      .max_bytes = (uint64_t)cfg->spool.max_mb << 20,
      .map_size = ((size_t)cfg->spool.max_mb << 21) + (64u << 20),
  };
  int rc = rp_spool_open(dir, &lim, &d->spool, err, errlen);
  if (rc != 0) {
    free(d);
    return rc;
  }
  d->next_seq = rp_spool_stored_next_seq(d->spool);
  rp_info("delivery", "incarnation %016" PRIx64 " (%s), next sequence number %" PRIu64,
          rp_spool_incarnation(d->spool),
          rp_spool_incarnation_is_new(d->spool) ? "new: created with this spool" : "from the spool",
          d->next_seq);
  rc = rp_pub_new(loop, cfg, on_delivered, on_kafka_error, d, &d->pub, err, errlen);
  if (rc == -EINVAL || rc == -EDEADLK) {
    /* -EINVAL: the configuration's, the agent cannot run with it;
     * -EDEADLK: a half-made client left running by librdkafka, the agent
     * exits non-zero and its service manager starts it again. */
    rp_spool_close(d->spool);
    free(d);
    return rc;
  }
  uv_timer_init(loop, &d->retry_timer);
  d->retry_timer.data = d;
  d->retry_timer_open = true;
  if (rc != 0)
    create_later(d, err);
  uint64_t frames, bytes;
  rp_spool_depth(d->spool, &frames, &bytes);
  if (frames > 0)
    rp_info("delivery",
            "spool %s holds %" PRIu64 " unsent frame(s) (%" PRIu64
            " bytes): sending them first, oldest first",
            dir, frames, bytes);
  *out = d;
  pump(d);
  return 0;
}

uint64_t rp_delivery_take_seq(struct rp_delivery *d) { return d->next_seq++; }

uint64_t rp_delivery_incarnation(const struct rp_delivery *d) {
  return rp_spool_incarnation(d->spool);
}

void rp_delivery_submit(struct rp_delivery *d, uint64_t seq, uint8_t *buf, size_t len) {
  if (rp_spool_batch_add_frame(d->filling, seq, buf, len) != 0) {
    d->write_errors++;
    rp_error("delivery", "frame %" PRIu64 ": out of memory; lost", seq);
    free(buf);
    return;
  }
  start_write(d);
}

uint64_t rp_delivery_gaps(const struct rp_delivery *d) {
  return rp_spool_dropped_total(d->spool) + d->mem_dropped + d->recreations;
}

void rp_delivery_health(struct rp_delivery *d, struct rp_agent_health *h) {
  struct rp_pub_stats ps = {0};
  uint64_t frames, bytes;
  if (d->pub != NULL)
    rp_pub_get_stats(d->pub, &ps);
  rp_spool_depth(d->spool, &frames, &bytes);
  /* Counted here rather than by the producer: a recreated producer starts
   * from 0. */
  h->frames_delivered = d->delivered;
  h->frames_failed = d->write_errors + d->rejected;
  h->frames_rejected = d->rejected;
  h->spool_write_failures = d->spool_write_failures;
  h->spool_degraded = d->spool_degraded;
  snprintf(h->kafka_error, sizeof(h->kafka_error), "%s", d->kafka_error);
  h->delivery_latency_ms = ps.last_latency_ms;
  /* Frames Kafka has acknowledged leave the spool with the next write:
   * they are not counted as waiting. */
  uint64_t deleting = d->filling->nacks + (d->writing != NULL ? d->writing->nacks : 0);
  h->spool_depth = (frames > deleting ? frames - deleting : 0) + d->nmem;
  h->frames_dropped = rp_spool_dropped_total(d->spool) + d->mem_dropped;
}

void rp_delivery_close(struct rp_delivery *d, int timeout_ms) {
  if (d == NULL)
    return;
  /* Let a write in the thread pool finish, and the pending batch follow. */
  while (d->writing != NULL)
    uv_run(d->loop, UV_RUN_ONCE);
  d->closing = true;
  start_write(d);
  if (d->retry_timer_open) {
    uv_timer_stop(&d->retry_timer);
    uv_close((uv_handle_t *)&d->retry_timer, NULL);
    d->retry_timer_open = false;
  }
  int left = rp_pub_close(d->pub, timeout_ms); /* acknowledgements arrive in here */
  d->pub = NULL;
  start_write(d);                  /* ...and are recorded here */
  uv_run(d->loop, UV_RUN_DEFAULT); /* the publisher's timer closes */
  if (d->nmem > 0)
    rp_warn("delivery", "%zu frame(s) the spool could not hold were never delivered: lost",
            d->nmem);
  for (size_t i = 0; i < d->nmem; i++)
    free(d->mem[i].buf);
  free(d->mem);
  uint64_t frames, bytes;
  rp_spool_depth(d->spool, &frames, &bytes);
  if (left > 0 || frames > 0)
    rp_info("delivery", "%" PRIu64 " frame(s) stay in the spool for the next start", frames);
  rp_spool_close(d->spool);
  rp_spool_batch_free(&d->batches[0]);
  rp_spool_batch_free(&d->batches[1]);
  free(d);
}
