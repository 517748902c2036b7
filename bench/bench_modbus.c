/* bench_modbus: CPU and wall time per scrape of a 60-register CDU map over
 * Modbus TCP, coalesced (mb_plan's MB_PLAN_COALESCE) against one request
 * per register (MB_PLAN_ONE_PER_REGISTER), with libmodbus directly and our
 * decoder, as the agent's worker does it.
 *
 * The device is the pymodbus test server (tests/fixtures/modbus/
 * typed_server.py, Debian's python3-pymodbus), started here on a free
 * loopback port and stopped at the end. The map: 40 one-word values (i16
 * x0.1 temperatures, pressures, speeds) at input 0..39, 8 float32 CDAB at
 * input 40..55, 12 u16 at holding 0..11 (68 words, 2 requests coalesced, 60
 * requests one per register).
 *
 * Per mode: 20 warm-up scrapes, then RUNS runs of back-to-back scrapes for
 * SECONDS each; the figures are the median run's per-scrape wall time, this
 * process's CPU (user + system, CLOCK_PROCESS_CPUTIME_ID) and the server's
 * CPU (from /proc/PID/stat, in clock ticks: hence runs of seconds). The
 * modes alternate run by run so drift hits both.
 *
 *   bench_modbus [--seconds S] [--runs N] [--python /usr/bin/python3]
 */
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "modbus/mb_decode.h"
#include "modbus/mb_map.h"
#include "modbus/mb_plan.h"

#ifndef RP_SOURCE_DIR
#define RP_SOURCE_DIR "."
#endif
#define NREGS 60
#define MAX_RUNS 31

extern char **environ;

static double now_s(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of a process in seconds, or -1. */
static double proc_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the command may hold spaces */
  unsigned long utime, stime;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static void build_map(struct mb_register *regs) {
  for (int i = 0; i < NREGS; i++) {
    struct mb_register *r = &regs[i];
    mb_register_init(r);
    if (i < 40) {
      snprintf(r->name, sizeof(r->name), "cdu.in%02d", i);
      r->fn = MB_FN_INPUT;
      r->address = (uint16_t)i;
      r->type = i % 2 ? MB_TYPE_U16 : MB_TYPE_I16;
      r->scale = 0.1;
    } else if (i < 48) {
      snprintf(r->name, sizeof(r->name), "cdu.f%02d", i - 40);
      r->fn = MB_FN_INPUT;
      r->address = (uint16_t)(40 + 2 * (i - 40));
      r->type = MB_TYPE_F32;
      r->order = MB_ORDER_CDAB;
    } else {
      snprintf(r->name, sizeof(r->name), "cdu.hr%02d", i - 48);
      r->fn = MB_FN_HOLDING;
      r->address = (uint16_t)(i - 48);
    }
  }
}

/* One scrape as the agent's worker does it: the plan's requests, then every
 * register decoded. Returns 0 or an errno. */
static int scrape(modbus_t *ctx, const struct mb_register *regs, const struct mb_plan *plan,
                  uint16_t (*replies)[MB_MAX_READ_REGS], double *sink) {
  for (size_t i = 0; i < plan->nrequests; i++) {
    const struct mb_request *q = &plan->requests[i];
    int n = q->fn == MB_FN_INPUT ? modbus_read_input_registers(ctx, q->start, q->count, replies[i])
                                 : modbus_read_registers(ctx, q->start, q->count, replies[i]);
    if (n != q->count)
      return errno ? errno : EIO;
  }
  for (size_t i = 0; i < NREGS; i++) {
    const struct mb_slot *s = &plan->slots[i];
    struct mb_value v;
    mb_decode(&regs[i], replies[s->request] + s->offset, s->words, &v, NULL, 0);
    *sink += v.value;
  }
  return 0;
}

struct run {
  double wall, cpu, server_cpu; /* seconds per scrape */
  long scrapes;
};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  double seconds = 2;
  int runs = 5;
  const char *python = "/usr/bin/python3";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
      runs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--python") == 0 && i + 1 < argc)
      python = argv[++i];
    else {
      fprintf(stderr, "usage: bench_modbus [--seconds S] [--runs N] [--python PATH]\n");
      return 2;
    }
  }
  if (!(seconds > 0) || runs < 1 || runs > MAX_RUNS) {
    fprintf(stderr, "bench_modbus: --seconds > 0, --runs 1..%d\n", MAX_RUNS);
    return 2;
  }

  int port = free_port();
  char port_s[16], server[512];
  snprintf(port_s, sizeof(port_s), "%d", port);
  snprintf(server, sizeof(server), "%s/tests/fixtures/modbus/typed_server.py", RP_SOURCE_DIR);
  char *args[] = {(char *)python, server, "--port", port_s, NULL};
  pid_t pid;
  if (port < 0 || posix_spawn(&pid, python, NULL, NULL, args, environ) != 0) {
    fprintf(stderr, "bench_modbus: cannot start %s %s\n", python, server);
    return 1;
  }

  int rc = 1;
  struct mb_register regs[NREGS];
  build_map(regs);
  struct mb_plan plans[2] = {{0}};
  modbus_t *ctx[2] = {NULL, NULL};
  static uint16_t replies[NREGS][MB_MAX_READ_REGS];
  const char *names[2] = {"coalesced", "one per register"};
  char err[256];
  for (int m = 0; m < 2; m++) {
    struct mb_plan_limits lim = {.mode = m ? MB_PLAN_ONE_PER_REGISTER : MB_PLAN_COALESCE};
    if (mb_plan_build(regs, NREGS, &lim, &plans[m], err, sizeof(err)) != 0) {
      fprintf(stderr, "bench_modbus: plan: %s\n", err);
      goto out;
    }
    ctx[m] = modbus_new_tcp("127.0.0.1", port);
    modbus_set_response_timeout(ctx[m], 2, 0);
    int tries = 0;
    while (modbus_connect(ctx[m]) != 0) {
      if (++tries > 100) { /* 10 s: the server did not start */
        fprintf(stderr, "bench_modbus: connect 127.0.0.1:%d: %s\n", port, modbus_strerror(errno));
        goto out;
      }
      struct timespec ts = {0, 100000000};
      nanosleep(&ts, NULL);
    }
  }

  double sink = 0;
  for (int m = 0; m < 2; m++)
    for (int i = 0; i < 20; i++)
      if ((rc = scrape(ctx[m], regs, &plans[m], replies, &sink)) != 0) {
        fprintf(stderr, "bench_modbus: %s: %s\n", names[m], modbus_strerror(rc));
        rc = 1;
        goto out;
      }
  struct run r[2][MAX_RUNS];
  for (int k = 0; k < runs; k++) {
    for (int m = 0; m < 2; m++) {
      double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
      double s0 = proc_cpu_s(pid);
      long scrapes = 0;
      do {
        if ((rc = scrape(ctx[m], regs, &plans[m], replies, &sink)) != 0) {
          fprintf(stderr, "bench_modbus: %s: %s\n", names[m], modbus_strerror(rc));
          rc = 1;
          goto out;
        }
        scrapes++;
      } while (now_s(CLOCK_MONOTONIC) - w0 < seconds);
      r[m][k].scrapes = scrapes;
      r[m][k].wall = (now_s(CLOCK_MONOTONIC) - w0) / scrapes;
      r[m][k].cpu = (now_s(CLOCK_PROCESS_CPUTIME_ID) - c0) / scrapes;
      r[m][k].server_cpu = (proc_cpu_s(pid) - s0) / scrapes;
    }
  }

  printf("bench_modbus: %d-register CDU map over Modbus TCP to pymodbus on 127.0.0.1, "
         "%d runs of %.1f s per mode (median run; scrapes per run: %ld coalesced, %ld one "
         "per register)\n",
         NREGS, runs, seconds, r[0][0].scrapes, r[1][0].scrapes);
  printf("%-18s %9s %15s %18s %19s\n", "mode", "requests", "wall ms/scrape", "agent CPU us/scrape",
         "server CPU ms/scrape");
  double med[2][3];
  for (int m = 0; m < 2; m++) {
    double w[MAX_RUNS], c[MAX_RUNS], s[MAX_RUNS];
    for (int k = 0; k < runs; k++)
      w[k] = r[m][k].wall, c[k] = r[m][k].cpu, s[k] = r[m][k].server_cpu;
    med[m][0] = median(w, runs);
    med[m][1] = median(c, runs);
    med[m][2] = median(s, runs);
    printf("%-18s %9zu %15.3f %18.1f %19.3f\n", names[m], plans[m].nrequests, med[m][0] * 1e3,
           med[m][1] * 1e6, med[m][2] * 1e3);
  }
  printf("ratio one-per-register / coalesced: wall %.1fx, agent CPU %.1fx, server CPU %.1fx\n",
         med[1][0] / med[0][0], med[1][1] / med[0][1], med[1][2] / med[0][2]);
  fflush(stdout);
  if (sink == 12345.678) /* keeps the decoding from being optimised away */
    printf(" \n");
  rc = 0;
out:
  for (int m = 0; m < 2; m++) {
    if (ctx[m] != NULL) {
      modbus_close(ctx[m]);
      modbus_free(ctx[m]);
    }
    mb_plan_free(&plans[m]);
  }
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  return rc;
}
