/* Publishing frames to Kafka with librdkafka (publish_kafka.c). The producer
 * is idempotent with acks=all; delivery reports are served from a libuv
 * timer on the loop thread. A send is three-valued: ok, retry later (queue
 * full, broker away, unknown topic, authorization, a fatal producer error:
 * keep the frame), or drop (Kafka refuses the frame itself: too large,
 * invalid). After a fatal error (rd_kafka_fatal_error) the producer cannot
 * send again: the owner closes it and creates a new one. */
#ifndef RACKPULSE_PUBLISH_H
#define RACKPULSE_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct rp_agent_config;
struct rp_publisher;

enum rp_pub_result { RP_PUB_OK, RP_PUB_RETRY, RP_PUB_DROP };

struct rp_pub_stats {
  uint64_t delivered, failed;
  uint32_t last_latency_ms;
  uint64_t in_flight;
};

/* Called on the loop thread (or inside rp_pub_close) once per frame sent:
 * err 0 = acknowledged by Kafka; otherwise `permanent` says whether Kafka
 * refused the frame itself (sending it again can never succeed). */
typedef void (*rp_pub_delivered_cb)(void *ctx, uint64_t seq, int err, bool permanent,
                                    const char *reason);
/* Called on the loop thread for a client-level error librdkafka reports
 * (all brokers down, authentication, a fatal error: `fatal` is then true and
 * `reason` is the underlying error). */
typedef void (*rp_pub_error_cb)(void *ctx, const char *reason, bool fatal);

/* Creates the producer and starts its poll timer on `loop`. Returns 0 and
 * *out; -EINVAL when a setting is refused (a property, a file it names:
 * the configuration's fault, err says which); or -EAGAIN or -ENOMEM when
 * the system cannot give it threads, descriptors or memory now (worth
 * trying again); or -EDEADLK when librdkafka's threads did not initialize
 * in time (it then leaves them running, half-made: the process must not
 * try again, but exit and be restarted). An unreachable or unknown broker is no error here:
 * librdkafka connects later, from its own threads. */
int rp_pub_new(uv_loop_t *loop, const struct rp_agent_config *cfg, rp_pub_delivered_cb cb,
               rp_pub_error_cb error_cb, void *ctx, struct rp_publisher **out, char *err,
               size_t errlen);

/* Hands frame `seq` to librdkafka, keyed by `key`. On RP_PUB_OK librdkafka
 * owns `buf` (malloc'd) and frees it, and the callback follows; otherwise
 * the caller still owns it and err says why ("" when the queue is merely
 * full). */
enum rp_pub_result rp_pub_send(struct rp_publisher *p, const char *key, uint64_t seq, uint8_t *buf,
                               size_t len, char *err, size_t errlen);

void rp_pub_get_stats(const struct rp_publisher *p, struct rp_pub_stats *out);

/* True once the producer has hit a fatal error; `reason` (may be NULL) gets
 * librdkafka's rd_kafka_fatal_error() text. */
bool rp_pub_fatal(struct rp_publisher *p, char *reason, size_t reasonlen);

/* Gives back every frame librdkafka still holds, queued or in flight,
 * without blocking: their delivery reports (not acknowledged, not
 * permanent) follow from the loop. */
void rp_pub_purge(struct rp_publisher *p);

/* Waits up to `timeout_ms` for in-flight frames (blocking: call only after
 * the loop has stopped), then destroys the producer and frees `p`. Returns
 * the number of frames still undelivered. Accepts NULL. */
int rp_pub_close(struct rp_publisher *p, int timeout_ms);

/* Lets go of a producer that holds no frame any more (every delivery report
 * has come back, e.g. after rp_pub_purge on a fatal error) without blocking
 * the loop: the handles close on the loop, and rd_kafka_destroy(), which
 * joins librdkafka's threads and may wait on sockets, runs in libuv's thread
 * pool. `p` is freed; returns 0, or -1 (and destroys on the loop thread) when
 * the work cannot be queued. */
int rp_pub_discard(uv_loop_t *loop, struct rp_publisher *p);

#endif
