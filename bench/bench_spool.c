/* Spool benchmark (issue 7): frames/s written to the agent's LMDB spool
 * (group-committed: one transaction and one sync per batch) and replayed
 * from it (rp_spool_next, oldest first), for 4 KiB frames, plus the
 * process's peak RSS with a full spool. Compared in the same run with one
 * sync per frame (batch 1), the anchors' way that saturates at a few
 * thousand writes a second.
 *
 *   bench_spool [DIR] [--frames N] [--batch B] [--size BYTES] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kb;
}

/* Writes n frames in batches of b into a fresh spool in dir; returns frames/s. */
static double write_rate(const char *dir, long n, long b, size_t size, struct rp_spool **out) {
  char err[256];
  struct rp_spool_limits lim = {.max_frames = (uint64_t)n * 2,
                                .max_bytes = (uint64_t)n * size * 2,
                                .map_size = (size_t)n * size * 4 + (64u << 20)};
  if (rp_spool_open(dir, &lim, out, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_spool: %s\n", err);
    exit(1);
  }
  struct rp_spool_batch batch = {0};
  double t0 = now_s();
  for (long seq = 1; seq <= n;) {
    for (long i = 0; i < b && seq <= n; i++, seq++) {
      uint8_t *buf = malloc(size);
      memset(buf, (int)(seq & 0xff), size);
      rp_spool_batch_add_frame(&batch, (uint64_t)seq, buf, size);
    }
    batch.next_seq = (uint64_t)seq;
    rp_spool_write(*out, &batch);
    if (batch.rc != 0) {
      fprintf(stderr, "bench_spool: %s\n", batch.err);
      exit(1);
    }
    rp_spool_batch_reset(&batch);
  }
  double dt = now_s() - t0;
  rp_spool_batch_free(&batch);
  return (double)n / dt;
}

int main(int argc, char **argv) {
  long frames = 100000, batch = 1000;
  size_t size = 4096;
  static const struct option opts[] = {{"frames", required_argument, NULL, 'n'},
                                       {"batch", required_argument, NULL, 'b'},
                                       {"size", required_argument, NULL, 's'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "n:b:s:", opts, NULL)) != -1) {
    if (c == 'n')
      frames = atol(optarg);
    else if (c == 'b')
      batch = atol(optarg);
    else if (c == 's')
      size = (size_t)atol(optarg);
    else
      return 2;
  }
  const char *base = optind < argc ? argv[optind] : "/tmp";
  char dir[512], cmd[600];
  snprintf(dir, sizeof(dir), "%s/rp-bench-spool.%d", base, (int)getpid());

  struct rp_spool *s;
  double w = write_rate(dir, frames, batch, size, &s);
  long rss_full = peak_rss_kb();
  double t0 = now_s();
  uint64_t after = 0, seq;
  long replayed = 0;
  uint8_t *buf;
  size_t len;
  while (rp_spool_next(s, after, &seq, &buf, &len) == 0) {
    after = seq;
    replayed++;
    free(buf);
  }
  double r = (double)replayed / (now_s() - t0);
  uint64_t depth, bytes;
  rp_spool_depth(s, &depth, &bytes);
  rp_spool_close(s);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_spool: could not remove %s\n", dir);

  /* The baseline: one transaction and sync per frame, on fewer frames. */
  long base_frames = frames < 2000 ? frames : 2000;
  double w1 = write_rate(dir, base_frames, 1, size, &s);
  rp_spool_close(s);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_spool: could not remove %s\n", dir);

  printf("spool in %s, %zu-byte frames\n", base, size);
  printf("write, batches of %-5ld %10.0f frames/s  (%ld frames)\n", batch, w, frames);
  printf("write, one sync a frame %10.0f frames/s  (%ld frames)\n", w1, base_frames);
  printf("ratio batched / one-by-one: %.1fx\n", w / w1);
  printf("replay, oldest first    %10.0f frames/s  (%ld frames)\n", r, replayed);
  printf("spool held %llu frames, %.1f MiB; peak RSS %.1f MiB\n", (unsigned long long)depth,
         (double)bytes / 1048576.0, (double)rss_full / 1024.0);
  return 0;
}
