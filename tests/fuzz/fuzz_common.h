/* Helpers shared by the libFuzzer harnesses in tests/fuzz/: turning the
 * fuzzer's bytes into a NUL-terminated string, a file on disk for the
 * loaders that only take a path, and small readers for structured inputs.
 * Every harness is one LLVMFuzzerTestOneInput over one parser; see
 * tests/fuzz/CMakeLists.txt for how they are built and run. */
#ifndef RP_FUZZ_COMMON_H
#define RP_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the parser promises: a violation is a finding, so abort and
 * let libFuzzer keep the input. */
#define FUZZ_ASSERT(cond)                                                          \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

/* True when s[0..size) holds a NUL: the fixed-size text fields of the
 * parsers' output must always be terminated. */
static inline int fuzz_terminated(const char *s, size_t size) {
  return memchr(s, '\0', size) != NULL;
}

/* A heap copy of data with a NUL appended (the caller frees it). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL)
    abort();
  if (size > 0)
    memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* Replaces the contents of the file at `path` with data[0..size). */
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* A private directory for one harness process, made on first use under
 * /dev/shm (tmpfs: no disk writes per input) or else /tmp, and removed at
 * exit with whatever the harness left in it. */
static char fuzz_dir_path[128];
static inline void fuzz_dir_remove(void) {
  char cmd[160];
  if (fuzz_dir_path[0] == '\0')
    return;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir_path);
  if (system(cmd) != 0)
    fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}
static inline const char *fuzz_dir(void) {
  if (fuzz_dir_path[0] != '\0')
    return fuzz_dir_path;
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/rp-fuzz-XXXXXX", base);
  if (mkdtemp(fuzz_dir_path) == NULL) {
    perror("mkdtemp");
    abort();
  }
  atexit(fuzz_dir_remove);
  return fuzz_dir_path;
}

/* Reads structured fields off the front of the input; past the end every
 * read gives zeroes, so any input is a valid structure. */
struct fuzz_reader {
  const uint8_t *p;
  size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_reader *r) {
  if (r->n == 0)
    return 0;
  r->n--;
  return *r->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_reader *r) {
  uint16_t hi = fuzz_u8(r);
  return (uint16_t)(hi << 8 | fuzz_u8(r));
}

static inline uint64_t fuzz_u64(struct fuzz_reader *r) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | fuzz_u8(r);
  return v;
}

/* Any bit pattern: NaN, infinities and subnormals included. */
static inline double fuzz_double(struct fuzz_reader *r) {
  uint64_t bits = fuzz_u64(r);
  double d;
  memcpy(&d, &bits, sizeof(d));
  return d;
}

#endif
