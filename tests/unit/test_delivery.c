/* Unit tests for store and forward on a full disk (agent/delivery.c over
 * agent/spool.c): each frame is handed to Kafka once while spool writes
 * fail, when they are retried, and when Kafka acknowledges or refuses a
 * frame held in memory only (investigating a duplicate seen once in CI in
 * delivery_disk_full, docs/failure-modes.md); and a producer that cannot
 * be created at start: retried for a reason of the moment, fatal for a
 * setting Kafka's client refuses.
 *
 * The spool is the real one (LMDB in a temporary directory). A failed
 * write is either real (the file size limit, RLIMIT_FSIZE, makes LMDB's
 * commit fail with EFBIG half-way, as ENOSPC does on a full disk) or
 * injected: rp_spool_write is wrapped at link time (-Wl,--wrap) and
 * reports -ENOSPC without writing, which is what a failed LMDB commit
 * leaves (the meta page is written last). Kafka is a fake publisher
 * (rp_pub_* below) that records every frame handed to it and acknowledges
 * only when the test says so. The loop is run to completion between
 * steps: spool writes run in libuv's thread pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "delivery.h"
#include "publish.h"
#include "spool.h"

/* ---- the fake publisher -------------------------------------------------- */

#define MAX_SENDS 256

struct rp_publisher {
  rp_pub_delivered_cb cb;
  void *ctx;
};

static struct {
  struct rp_publisher *pub;
  uint64_t sent[MAX_SENDS]; /* every frame handed over, in order */
  size_t nsent;
  bool fail_writes; /* the wrapped rp_spool_write reports a full disk */
  size_t writes, failed_writes;
  int new_fails, new_rc; /* the next new_fails rp_pub_new return new_rc */
  size_t creates;        /* rp_pub_new calls */
} fake;

int rp_pub_new(uv_loop_t *loop, const struct rp_agent_config *cfg, rp_pub_delivered_cb cb,
               rp_pub_error_cb error_cb, void *ctx, struct rp_publisher **out, char *err,
               size_t errlen) {
  (void)loop, (void)cfg, (void)error_cb;
  fake.creates++;
  if (fake.new_fails > 0) {
    fake.new_fails--;
    snprintf(err, errlen, "%s",
             fake.new_rc == -EINVAL ? "kafka setting ssl.ca.location: No such file"
                                    : "kafka producer: Failed to create thread: Resource "
                                      "temporarily unavailable (11)");
    return fake.new_rc;
  }
  struct rp_publisher *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  p->cb = cb;
  p->ctx = ctx;
  fake.pub = p;
  *out = p;
  return 0;
}

enum rp_pub_result rp_pub_send(struct rp_publisher *p, const char *key, uint64_t seq, uint8_t *buf,
                               size_t len, char *err, size_t errlen) {
  (void)p, (void)key, (void)len, (void)err, (void)errlen;
  assert_true(fake.nsent < MAX_SENDS);
  fake.sent[fake.nsent++] = seq;
  free(buf); /* librdkafka's once the send is accepted */
  return RP_PUB_OK;
}

void rp_pub_get_stats(const struct rp_publisher *p, struct rp_pub_stats *out) {
  (void)p;
  memset(out, 0, sizeof(*out));
}

bool rp_pub_fatal(struct rp_publisher *p, char *reason, size_t reasonlen) {
  (void)p, (void)reason, (void)reasonlen;
  return false;
}

void rp_pub_purge(struct rp_publisher *p) { (void)p; }

int rp_pub_close(struct rp_publisher *p, int timeout_ms) {
  (void)timeout_ms;
  free(p);
  fake.pub = NULL;
  return 0;
}

int rp_pub_discard(uv_loop_t *loop, struct rp_publisher *p) {
  (void)loop;
  return rp_pub_close(p, 0);
}

/* Kafka's delivery report for `seq`: acknowledged (err 0) or a transient
 * error (the frame is kept and sent again). */
static void kafka_reports(uint64_t seq, int err) {
  assert_non_null(fake.pub);
  fake.pub->cb(fake.pub->ctx, seq, err, false, err == 0 ? "Success" : "Local: transport");
}

void __real_rp_spool_write(struct rp_spool *s, struct rp_spool_batch *b);
void __wrap_rp_spool_write(struct rp_spool *s, struct rp_spool_batch *b);

void __wrap_rp_spool_write(struct rp_spool *s, struct rp_spool_batch *b) {
  fake.writes++;
  if (!fake.fail_writes) {
    __real_rp_spool_write(s, b);
    return;
  }
  fake.failed_writes++;
  b->dropped = 0;
  b->rc = -ENOSPC;
  snprintf(b->err, sizeof(b->err), "spool write of %zu frame(s): No space left on device",
           b->nframes);
}

/* ---- helpers ------------------------------------------------------------- */

struct fixture {
  char dir[64];
  uv_loop_t loop;
  struct rp_agent_config cfg;
  struct rp_delivery *d;
};

/* A fixture whose delivery is not open yet: open_delivery() opens it. */
static int setup_closed(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/rp-test-delivery.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  memset(&fake, 0, sizeof(fake));
  snprintf(f->cfg.agent.state_dir, sizeof(f->cfg.agent.state_dir), "%s", f->dir);
  snprintf(f->cfg.agent.rack, sizeof(f->cfg.agent.rack), "r1");
  f->cfg.spool.max_frames = 1000;
  f->cfg.spool.max_mb = 4;
  f->cfg.spool.max_in_flight = 1000;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  *state = f;
  return 0;
}

static int open_delivery(struct fixture *f) {
  char err[256] = "";
  int rc = rp_delivery_new(&f->loop, &f->cfg, &f->d, err, sizeof(err));
  if (rc != 0)
    f->d = NULL;
  return rc;
}

static int setup(void **state) {
  setup_closed(state);
  assert_int_equal(open_delivery(*state), 0);
  return 0;
}

static void remove_tree(const char *dir) {
  char path[128];
  const char *names[] = {"spool/data.mdb", "spool/lock.mdb"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
  snprintf(path, sizeof(path), "%s/spool", dir);
  rmdir(path);
  rmdir(dir);
}

static int teardown(void **state) {
  struct fixture *f = *state;
  if (f->d != NULL)
    rp_delivery_close(f->d, 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  remove_tree(f->dir);
  free(f);
  return 0;
}

/* A new frame (its bytes name its seq), then the loop until its write and
 * everything it started are done. */
static void submit(struct fixture *f) {
  uint64_t seq = rp_delivery_take_seq(f->d);
  uint8_t *buf = malloc(32);
  assert_non_null(buf);
  memset(buf, (int)seq, 32);
  rp_delivery_submit(f->d, seq, buf, 32);
  uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* How many times `seq` was handed to Kafka. */
static size_t times_sent(uint64_t seq) {
  size_t n = 0;
  for (size_t i = 0; i < fake.nsent; i++)
    n += fake.sent[i] == seq;
  return n;
}

static void assert_each_sent_once(uint64_t first, uint64_t last) {
  for (uint64_t seq = first; seq <= last; seq++) {
    if (times_sent(seq) != 1)
      fail_msg("frame %llu handed to Kafka %zu times", (unsigned long long)seq, times_sent(seq));
  }
  assert_int_equal(fake.nsent, last - first + 1);
}

static uint64_t waiting(struct fixture *f) {
  struct rp_agent_health h;
  memset(&h, 0, sizeof(h));
  rp_delivery_health(f->d, &h);
  return h.spool_depth;
}

static void kafka_error(struct fixture *f, char *out, size_t outlen) {
  struct rp_agent_health h;
  memset(&h, 0, sizeof(h));
  rp_delivery_health(f->d, &h);
  snprintf(out, outlen, "%s", h.kafka_error);
}

static bool degraded(struct fixture *f) {
  struct rp_agent_health h;
  memset(&h, 0, sizeof(h));
  rp_delivery_health(f->d, &h);
  return h.spool_degraded;
}

/* ---- tests --------------------------------------------------------------- */

/* delivery_disk_full's course: Kafka away, the spool fills, frames go from
 * memory, Kafka returns while the disk is still full (the reports of
 * frames held in memory only arrive), then the disk has room again. Every
 * frame is handed to Kafka once. */
static void test_disk_full_sends_each_frame_once(void **state) {
  struct fixture *f = *state;
  for (int i = 0; i < 3; i++) /* 1..3 spooled, then Kafka away */
    submit(f);
  fake.fail_writes = true; /* the disk is full: 4..6 from memory */
  for (int i = 0; i < 3; i++)
    submit(f);
  assert_int_equal(fake.failed_writes, 3);
  assert_true(degraded(f));
  assert_each_sent_once(1, 6);
  assert_int_equal(waiting(f), 6);

  /* Kafka back, the disk still full: acknowledgements of spooled frames
   * wait for a write, those of frames in memory free them. */
  for (uint64_t seq = 1; seq <= 6; seq++)
    kafka_reports(seq, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  submit(f); /* 7: its write fails too, and carries the deletions again */
  kafka_reports(7, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_each_sent_once(1, 7);
  assert_int_equal(waiting(f), 0);

  fake.fail_writes = false; /* room again */
  submit(f);
  assert_false(degraded(f));
  kafka_reports(8, 0);
  submit(f);
  kafka_reports(9, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_each_sent_once(1, 9);
  assert_int_equal(waiting(f), 0);
}

/* A transient error reported for a frame while the disk is full: after the
 * back-off the frames Kafka has not acknowledged are sent again, oldest
 * first; none it acknowledged (spooled or held in memory) is sent again. */
static void test_resend_while_degraded_skips_acknowledged(void **state) {
  struct fixture *f = *state;
  for (int i = 0; i < 3; i++) /* 1..3 spooled */
    submit(f);
  fake.fail_writes = true;
  for (int i = 0; i < 3; i++) /* 4..6 in memory */
    submit(f);
  kafka_reports(1, 0); /* spooled, its deletion not written */
  kafka_reports(4, 0); /* in memory */
  kafka_reports(2, -EIO);
  kafka_reports(3, 0);
  kafka_reports(5, -EIO);
  kafka_reports(6, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* the back-off, then the resend */
  assert_int_equal(fake.nsent, 8);
  assert_int_equal(fake.sent[6], 2);
  assert_int_equal(fake.sent[7], 5);
  kafka_reports(2, 0);
  kafka_reports(5, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(fake.nsent, 8);
  assert_int_equal(waiting(f), 0);
}

/* The spool itself: a write whose LMDB commit fails half-way (the file
 * cannot grow: EFBIG under RLIMIT_FSIZE, as ENOSPC on a full disk) leaves
 * none of its frames in the spool, so a frame kept in memory after a
 * failed write is never also sent from the spool. */
static void test_failed_commit_leaves_nothing(void **state) {
  (void)state;
  memset(&fake, 0, sizeof(fake)); /* real writes only */
  char dir[64];
  snprintf(dir, sizeof(dir), "/tmp/rp-test-spool.XXXXXX");
  assert_non_null(mkdtemp(dir));
  char spool_dir[96];
  snprintf(spool_dir, sizeof(spool_dir), "%s/spool", dir);
  struct rp_spool_limits lim = {.max_frames = 1000, .max_bytes = 4 << 20, .map_size = 64 << 20};
  struct rp_spool *s = NULL;
  char err[256] = "";
  assert_int_equal(rp_spool_open(spool_dir, &lim, &s, err, sizeof(err)), 0);
  struct rp_spool_batch b;
  memset(&b, 0, sizeof(b));
  uint8_t *small = calloc(1, 100);
  assert_non_null(small);
  assert_int_equal(rp_spool_batch_add_frame(&b, 1, small, 100), 0);
  b.next_seq = 2;
  rp_spool_write(s, &b);
  assert_int_equal(b.rc, 0);
  rp_spool_batch_reset(&b);

  /* The data file may not grow any more: a write needing new pages fails
   * in the commit. */
  char data[128];
  snprintf(data, sizeof(data), "%s/data.mdb", spool_dir);
  struct stat st;
  assert_int_equal(stat(data, &st), 0);
  struct rlimit old, lim_now;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim_now = old;
  lim_now.rlim_cur = (rlim_t)st.st_size;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim_now), 0);
  for (uint64_t seq = 2; seq <= 4; seq++) {
    uint8_t *big = calloc(1, 64 << 10);
    assert_non_null(big);
    assert_int_equal(rp_spool_batch_add_frame(&b, seq, big, 64 << 10), 0);
  }
  assert_int_equal(rp_spool_batch_add_ack(&b, 1), 0);
  b.next_seq = 5;
  rp_spool_write(s, &b);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, old_handler);
  assert_int_not_equal(b.rc, 0);
  rp_spool_batch_reset(&b);

  /* Nothing of the failed write: frame 1 still there (its deletion was in
   * it), 2..4 absent, counters as before. */
  uint64_t seq = 0, frames = 0, bytes = 0;
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(rp_spool_next(s, 0, &seq, &buf, &len), 0);
  assert_int_equal(seq, 1);
  free(buf);
  assert_int_equal(rp_spool_next(s, 1, &seq, &buf, &len), -ENOENT);
  rp_spool_depth(s, &frames, &bytes);
  assert_int_equal(frames, 1);
  assert_int_equal(bytes, 100);

  /* Room again: the same frames are written once. */
  for (uint64_t n = 2; n <= 4; n++) {
    uint8_t *big = calloc(1, 64 << 10);
    assert_non_null(big);
    assert_int_equal(rp_spool_batch_add_frame(&b, n, big, 64 << 10), 0);
  }
  rp_spool_write(s, &b);
  assert_int_equal(b.rc, 0);
  rp_spool_depth(s, &frames, &bytes);
  assert_int_equal(frames, 4);
  rp_spool_batch_free(&b);
  rp_spool_close(s);
  remove_tree(dir);
}

/* The producer cannot be created at start for a reason of the moment (a
 * thread librdkafka could not start): the agent starts anyway, says why in
 * its health, spools its frames, and creates the producer with back-off;
 * then the spooled frames go to Kafka, oldest first, once each. */
static void test_producer_created_later(void **state) {
  struct fixture *f = *state;
  fake.new_fails = 2;
  fake.new_rc = -EAGAIN;
  assert_int_equal(open_delivery(f), 0);
  char why[256];
  kafka_error(f, why, sizeof(why));
  assert_non_null(strstr(why, "cannot create the producer: kafka producer: Failed to create"));
  uint64_t seq = rp_delivery_take_seq(f->d);
  uint8_t *buf = calloc(1, 32);
  assert_non_null(buf);
  rp_delivery_submit(f->d, seq, buf, 32);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* the write, not yet the retry */
  assert_int_equal(fake.nsent, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* two retries: the second creates it */
  assert_int_equal(fake.creates, 3);
  assert_non_null(fake.pub);
  submit(f);
  assert_each_sent_once(1, 2);
  kafka_reports(1, 0);
  kafka_reports(2, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  kafka_error(f, why, sizeof(why));
  assert_string_equal(why, "");
  assert_int_equal(waiting(f), 0);
}

/* A setting Kafka's client refuses (here a TLS file that cannot be read)
 * is the configuration's fault: the delivery, and so the agent, does not
 * start, and nothing is retried. */
static void test_refused_setting_stops_the_start(void **state) {
  struct fixture *f = *state;
  fake.new_fails = 1;
  fake.new_rc = -EINVAL;
  assert_int_equal(open_delivery(f), -EINVAL);
  assert_null(f->d);
  assert_int_equal(fake.creates, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_disk_full_sends_each_frame_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resend_while_degraded_skips_acknowledged, setup,
                                      teardown),
      cmocka_unit_test(test_failed_commit_leaves_nothing),
      cmocka_unit_test_setup_teardown(test_producer_created_later, setup_closed, teardown),
      cmocka_unit_test_setup_teardown(test_refused_setting_stops_the_start, setup_closed, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
