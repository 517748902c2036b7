/* Fuzzes Modbus register maps written in YAML (agent/modbus/mb_profile.c on top of
 * lib/cfg.c): the input is a profile file, loaded the way the agent loads
 * one (mb_profile_load() from <dir>/modbus/NAME.yaml), and the same text as
 * a device's inline `registers:` list (rp_cfg_load_string() then
 * mb_regmap_parse()). A map that loads is then merged over itself
 * (mb_regmap_override()), planned (mb_plan_build() with the profile's
 * limits) and every register decoded from zero words, as the collector
 * would. Seeds: packaging/profiles/modbus and tests/fixtures. */
#include <errno.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "modbus/mb_decode.h"
#include "modbus/mb_plan.h"
#include "modbus/mb_profile.h"

static void use_map(const struct mb_regmap *m, const struct mb_profile_defaults *defs) {
  char err[512];
  FUZZ_ASSERT(m->n >= 1 && m->n <= MB_MAX_REGISTERS);
  for (size_t i = 0; i < m->n; i++) {
    FUZZ_ASSERT(mb_register_check(&m->regs[i], err, sizeof(err)) == 0);
    FUZZ_ASSERT(m->decimals[i] >= 0 && m->decimals[i] <= 9);
    uint16_t words[4] = {0};
    struct mb_value v;
    FUZZ_ASSERT(
        mb_decode(&m->regs[i], words, mb_register_words(&m->regs[i]), &v, err, sizeof(err)) == 0);
  }
  struct mb_regmap copy = {0};
  FUZZ_ASSERT(mb_regmap_override(&copy, m) == 0 && copy.n == m->n);
  FUZZ_ASSERT(mb_regmap_override(&copy, m) == 0 && copy.n == m->n); /* all replaced */
  mb_regmap_free(&copy);
  struct mb_plan_limits lim = {0};
  if (defs != NULL) {
    lim.max_regs = defs->has_max_regs ? (uint16_t)defs->max_regs : 0;
    lim.max_gap = defs->has_max_gap ? (uint16_t)defs->max_gap : 0;
  }
  struct mb_plan plan;
  if (mb_plan_build(m->regs, m->n, &lim, &plan, err, sizeof(err)) == 0)
    mb_plan_free(&plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[256];
  char err[1024];
  if (path[0] == '\0') {
    snprintf(path, sizeof(path), "%s/modbus", fuzz_dir());
    if (mkdir(path, 0700) != 0)
      abort();
    snprintf(path, sizeof(path), "%s/modbus/fuzz.yaml", fuzz_dir());
  }

  /* As a profile file. */
  fuzz_write_file(path, data, size);
  struct mb_regmap map;
  struct mb_profile_defaults defs;
  int rc = mb_profile_load(fuzz_dir(), "fuzz", &map, &defs, err, sizeof(err));
  FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)));
  if (rc == 0) {
    use_map(&map, &defs);
    mb_regmap_free(&map);
  } else {
    FUZZ_ASSERT(map.n == 0 && map.regs == NULL);
  }

  /* As a device's inline registers. */
  struct rp_cfg_doc *doc;
  if (rp_cfg_load_string("device.yaml", (const char *)data, size, &doc, err, sizeof(err)) != 0)
    return 0;
  rp_cfg_node regs = rp_cfg_get(doc, rp_cfg_root(doc), "registers");
  if (regs != 0 && mb_regmap_parse(doc, regs, "modbus[0]", 0, &map, err, sizeof(err)) == 0) {
    if (map.n > 0)
      use_map(&map, NULL);
    mb_regmap_free(&map);
  }
  rp_cfg_free(doc);
  return 0;
}
