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
 * sequence number, which consumers drop, never a loss. */
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

struct rp_delivery {
  uv_loop_t *loop;
  const struct rp_agent_config *cfg;
  struct rp_spool *spool;
  struct rp_publisher *pub;
  struct rp_spool_batch batches[2];
  struct rp_spool_batch *filling; /* the loop adds to this one */
  struct rp_spool_batch *writing; /* NULL, or the batch in the thread pool */
  uv_work_t work;
  uint64_t next_seq;
  uint64_t sent_upto; /* highest seq handed to Kafka */
  uint64_t in_flight;
  bool rewind; /* resend from the oldest once in_flight is 0 */
  bool closing;
  uint64_t failed, write_errors, dropped_session;
};

static void start_write(struct rp_delivery *d);

static void on_write(uv_work_t *w) {
  struct rp_delivery *d = w->data;
  rp_spool_write(d->spool, d->writing);
}

/* Hands the oldest unsent spooled frames to Kafka, up to the limit. Not
 * while a write is in progress: that write may drop, for the bound, frames
 * past the ones already handed over, so none may be handed over meanwhile. */
static void pump(struct rp_delivery *d) {
  if (d->writing != NULL)
    return;
  if (d->rewind && d->in_flight == 0) {
    if (d->filling->nacks > 0) { /* delete the delivered ones first */
      start_write(d);            /* (after_write pumps again) */
      return;
    }
    d->sent_upto = 0;
    d->rewind = false;
  }
  while (!d->rewind && d->in_flight < (uint64_t)d->cfg->spool.max_in_flight) {
    uint64_t seq;
    uint8_t *buf;
    size_t len;
    int rc = rp_spool_next(d->spool, d->sent_upto, &seq, &buf, &len);
    if (rc == -ENOENT)
      return;
    if (rc != 0) {
      rp_error("delivery", "spool read after frame %" PRIu64 ": %s", d->sent_upto, strerror(-rc));
      return;
    }
    char err[256];
    enum rp_pub_result r = rp_pub_send(d->pub, d->cfg->agent.rack, seq, buf, len, err, sizeof(err));
    if (r == RP_PUB_RETRY) {
      free(buf); /* still in the spool: sent again on the next pump */
      return;
    }
    d->sent_upto = seq;
    if (r == RP_PUB_DROP) {
      free(buf);
      d->failed++;
      rp_error("delivery", "frame %" PRIu64 " (%zu bytes) can never be sent: %s; dropped", seq, len,
               err);
      rp_spool_batch_add_ack(d->filling, seq);
      continue;
    }
    d->in_flight++;
  }
}

static void after_write(uv_work_t *w, int status) {
  struct rp_delivery *d = w->data;
  struct rp_spool_batch *b = d->writing;
  if (status != 0 || b->rc != 0) {
    d->write_errors++;
    rp_error("delivery", "%s; %zu frame(s) not spooled and lost",
             status != 0 ? "spool write cancelled" : b->err, b->nframes);
  }
  if (b->dropped > 0) {
    d->dropped_session += b->dropped;
    rp_warn("delivery", "spool full: dropped the %" PRIu64 " oldest unsent frame(s)", b->dropped);
  }
  rp_spool_batch_reset(b);
  d->writing = NULL;
  pump(d);
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
      d->failed++;
      rp_error("delivery", "frame %" PRIu64 " refused by Kafka for good (%s): dropped", seq,
               reason);
    }
    rp_spool_batch_add_ack(d->filling, seq);
  } else {
    /* Still in the spool. Resend everything from the oldest, in order, once
     * nothing is in flight any more (pump() first deletes what was
     * delivered, so that the resend does not repeat it). */
    d->rewind = true;
  }
  if (!d->closing)
    pump(d);
}

int rp_delivery_new(uv_loop_t *loop, const struct rp_agent_config *cfg, struct rp_delivery **out,
                    char *err, size_t errlen) {
  struct rp_delivery *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -ENOMEM;
  d->loop = loop;
  d->cfg = cfg;
  d->filling = &d->batches[0];
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/spool", cfg->agent.state_dir);
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
  rc = rp_pub_new(loop, cfg, on_delivered, d, &d->pub, err, errlen);
  if (rc != 0) {
    rp_spool_close(d->spool);
    free(d);
    return rc;
  }
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

void rp_delivery_health(struct rp_delivery *d, struct rp_agent_health *h) {
  struct rp_pub_stats ps;
  uint64_t frames, bytes;
  rp_pub_get_stats(d->pub, &ps);
  rp_spool_depth(d->spool, &frames, &bytes);
  h->frames_delivered = ps.delivered;
  h->frames_failed = d->failed + d->write_errors;
  h->delivery_latency_ms = ps.last_latency_ms;
  /* Frames Kafka has acknowledged leave the spool with the next write:
   * they are not counted as waiting. */
  uint64_t deleting = d->filling->nacks + (d->writing != NULL ? d->writing->nacks : 0);
  h->spool_depth = frames > deleting ? frames - deleting : 0;
  h->frames_dropped = rp_spool_dropped_total(d->spool);
}

void rp_delivery_close(struct rp_delivery *d, int timeout_ms) {
  if (d == NULL)
    return;
  /* Let a write in the thread pool finish, and the pending batch follow. */
  while (d->writing != NULL)
    uv_run(d->loop, UV_RUN_ONCE);
  d->closing = true;
  start_write(d);
  int left = rp_pub_close(d->pub, timeout_ms); /* acknowledgements arrive in here */
  start_write(d);                              /* ...and are recorded here */
  uv_run(d->loop, UV_RUN_DEFAULT);             /* the publisher's timer closes */
  uint64_t frames, bytes;
  rp_spool_depth(d->spool, &frames, &bytes);
  if (left > 0 || frames > 0)
    rp_info("delivery", "%" PRIu64 " frame(s) stay in the spool for the next start", frames);
  rp_spool_close(d->spool);
  rp_spool_batch_free(&d->batches[0]);
  rp_spool_batch_free(&d->batches[1]);
  free(d);
}
