/* Fuzzes the two configuration loaders as a whole, from a file as the
 * daemons read them: rp_agent_config_load() (agent/config.c: the agent,
 * kafka, spool, stats and derived sections and every collector's devices,
 * Modbus register maps and profiles included) and
 * rp_aggregator_config_load() (aggregator/config.c). The input is written
 * to a memfd and loaded through /proc/self/fd/N. A loaded agent config is
 * freed again (device teardown included); an error must name the file.
 * Seeds: packaging/config/{agent,aggregator}.yaml and test configs. Runs
 * with the source tree as working directory, so `profiles_dir:
 * packaging/profiles` in a seed finds the shipped profiles, and
 * RP_FUZZ_SECRET is set for the `*_env` secrets of the seeds. */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <sys/mman.h>

#include "agent.h"
#include "aggregator.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  setenv("RP_FUZZ_SECRET", "not-a-real-secret", 1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  char err[1024];
  if (fd < 0) {
    fd = memfd_create("rp-fuzz-config", MFD_CLOEXEC);
    if (fd < 0)
      abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
    abort();

  struct rp_agent_config acfg;
  int rc = rp_agent_config_load(path, &acfg, err, sizeof(err));
  if (rc == 0) {
    FUZZ_ASSERT(acfg.agent.rack[0] != '\0' && acfg.agent.interval_ms >= 100);
    for (size_t i = 0; i < acfg.ntargets; i++)
      FUZZ_ASSERT(acfg.targets[i]->interval_ms > 0);
    rp_agent_config_free(&acfg);
  } else {
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && strncmp(err, path, strlen(path)) == 0);
  }

  struct rp_aggregator_config gcfg;
  rc = rp_aggregator_config_load(path, &gcfg, err, sizeof(err));
  if (rc == 0)
    FUZZ_ASSERT(gcfg.store.map_size_mb <= gcfg.store.map_size_max_mb);
  else
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && strncmp(err, path, strlen(path)) == 0);
  return 0;
}
