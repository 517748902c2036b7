/* Fuzzes the YAML configuration layer (lib/cfg.c): rp_cfg_load_string() on
 * any text, a walk over the whole node tree through the accessors (kinds,
 * lines, scalars, mapping keys, sequence items; an alias may refer to its
 * own anchor's node, so the tree can be a cyclic graph: the walk visits at
 * most 4096 nodes, the configuration code itself never recurses), and rp_cfg_apply() of a field
 * table holding every field type, with ranges, defaults and a required key,
 * to the root and to every mapping in the document (keys s, i, d, b, t, r
 * and the section x). Every scalar also goes through
 * rp_parse_duration_ms(). Errors must be NUL-terminated and name the file.
 * Seeds: packaging/config and small hand-written documents. */
#include <errno.h>
#include <stdbool.h>

#include "fuzz_common.h"
#include "rackpulse/cfg.h"

struct every_type {
  char s[8];
  int64_t i;
  double d;
  bool b;
  int64_t t;
  char r[4];
};

typedef struct every_type E;
static const struct rp_cfg_field fields[] = {
    RP_CFG_STR("s", E, s, "dflt", 0, "a short string"),
    RP_CFG_NUM("i", RP_CFG_INT, E, i, "3", -5, 1e12, "an integer"),
    RP_CFG_NUM("d", RP_CFG_DOUBLE, E, d, "0.5", 0, 0, "an unbounded number"),
    RP_CFG_NUM("b", RP_CFG_BOOL, E, b, "false", 0, 0, "a boolean"),
    RP_CFG_NUM("t", RP_CFG_DURATION, E, t, "250ms", 0.001, 86400, "a duration"),
};
static const struct rp_cfg_field required[] = {
    RP_CFG_STR("r", E, r, NULL, 1, "a required string"),
};
static const char *const sections[] = {"x", NULL};

static void check_err(const struct rp_cfg_doc *doc, const char *err, size_t errlen) {
  FUZZ_ASSERT(fuzz_terminated(err, errlen));
  FUZZ_ASSERT(strncmp(err, rp_cfg_path(doc), strlen(rp_cfg_path(doc))) == 0);
}

static void apply_tables(const struct rp_cfg_doc *doc, rp_cfg_node map) {
  E e;
  char err[1024];
  memset(&e, 0x5a, sizeof(e));
  if (rp_cfg_apply(doc, map, "fuzz", fields, sizeof(fields) / sizeof(fields[0]), sections, &e, err,
                   sizeof(err)) == 0) {
    FUZZ_ASSERT(fuzz_terminated(e.s, sizeof(e.s)));
    FUZZ_ASSERT(e.i >= -5 && e.i <= 1000000000000LL);
    FUZZ_ASSERT(e.t >= 1 && e.t <= 86400000);
  } else {
    check_err(doc, err, sizeof(err));
  }
  if (rp_cfg_apply(doc, map, "fuzz", required, 1, NULL, &e, err, sizeof(err)) == 0)
    FUZZ_ASSERT(fuzz_terminated(e.r, sizeof(e.r)));
  else
    check_err(doc, err, sizeof(err));
}

static size_t budget; /* nodes the walk may still visit */

static void walk(const struct rp_cfg_doc *doc, rp_cfg_node node, int depth) {
  if (depth > 12 || budget == 0)
    return;
  budget--;
  FUZZ_ASSERT(rp_cfg_line(doc, node) >= 1);
  switch (rp_cfg_kind(doc, node)) {
  case RP_CFG_SCALAR: {
    const char *s = rp_cfg_scalar(doc, node);
    int64_t ms;
    FUZZ_ASSERT(s != NULL);
    if (rp_parse_duration_ms(s, &ms) == 0)
      FUZZ_ASSERT(ms >= 0);
    break;
  }
  case RP_CFG_SEQUENCE:
    for (size_t i = 0; i < rp_cfg_seq_len(doc, node) && i < 64; i++)
      walk(doc, rp_cfg_seq_item(doc, node, i), depth + 1);
    FUZZ_ASSERT(rp_cfg_seq_item(doc, node, rp_cfg_seq_len(doc, node)) == 0);
    break;
  case RP_CFG_MAPPING:
    apply_tables(doc, node);
    for (size_t i = 0; i < rp_cfg_map_len(doc, node) && i < 64; i++) {
      rp_cfg_node v = 0;
      const char *k = rp_cfg_map_key(doc, node, i, &v);
      if (k != NULL)
        FUZZ_ASSERT(rp_cfg_get(doc, node, k) != 0);
      walk(doc, v, depth + 1);
    }
    FUZZ_ASSERT(rp_cfg_map_key(doc, node, rp_cfg_map_len(doc, node), NULL) == NULL);
    break;
  case RP_CFG_NONE: FUZZ_ASSERT(0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct rp_cfg_doc *doc = NULL;
  char err[512];
  int rc = rp_cfg_load_string("fuzz.yaml", (const char *)data, size, &doc, err, sizeof(err));
  if (rc != 0) {
    FUZZ_ASSERT(rc == -EINVAL || rc == -ENOMEM);
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && strncmp(err, "fuzz.yaml:", 10) == 0);
    return 0;
  }
  rp_cfg_node root = rp_cfg_root(doc);
  budget = 4096;
  if (root == 0)
    apply_tables(doc, 0); /* an empty file: every default */
  else
    walk(doc, root, 0);
  /* Absent and out-of-range nodes are "absent", never a crash. */
  FUZZ_ASSERT(rp_cfg_kind(doc, 0) == RP_CFG_NONE && rp_cfg_kind(doc, 1 << 20) == RP_CFG_NONE);
  FUZZ_ASSERT(rp_cfg_scalar(doc, -1) == NULL && rp_cfg_line(doc, 1 << 20) == 0);

  /* The duration parser on the raw input as one string. */
  char *text = fuzz_strndup(data, size);
  int64_t ms;
  if (rp_parse_duration_ms(text, &ms) == 0)
    FUZZ_ASSERT(ms >= 0 && ms <= 9000000000000000LL);
  free(text);
  rp_cfg_free(doc);
  return 0;
}
