/*
 * mb_profile.h: Modbus register maps read from YAML, for the Modbus
 * collector. A device's map is a `registers:` list written inline in the
 * agent's config, or a profile file `<agent.profiles_dir>/modbus/NAME.yaml`
 * named by the device's `profile: NAME`, or both: inline entries replace the
 * profile's entry of the same name and the others are added. A profile file
 * holds
 *
 *   description: "what it maps and where the facts come from"   # optional
 *   address_base: 1     # 0 (default): 0-based protocol addresses;
 *                       # 1: documented 1-based numbers (30001 = input 0)
 *   max_regs: 60        # optional device defaults, overridden by the
 *   max_gap: 2          # device's own keys: max_regs, max_gap, pause,
 *   pause: 0ms          # timeout
 *   timeout: 500ms
 *   registers:
 *     - {name: cdu.supply_temp, function: input, address: 30001, type: i16,
 *        scale: 0.1, unit: Cel}
 *
 * Every error names the file and line it comes from ("generic-cdu.yaml:14:
 * registers[3].type: ..."). Runs on the loop thread while the configuration
 * loads; no I/O but reading the profile file.
 */
#ifndef RP_AGENT_MB_PROFILE_H
#define RP_AGENT_MB_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mb_map.h"
#include "rackpulse/cfg.h"

#define MB_MAX_REGISTERS 1024 /* registers in one device's map */
#define MB_PROFILE_NAME_MAX 64

/* A register map. The three arrays have n entries each and are owned by the
 * map: release them with mb_regmap_free(). */
struct mb_regmap {
  struct mb_register *regs;
  int *decimals;       /* wire precision: decimal digits sent per register */
  int32_t *documented; /* the 1-based number the map wrote (address_base 1), or -1 */
  size_t n;
};

/* Device defaults a profile may set; has_* says which it set. */
struct mb_profile_defaults {
  bool has_max_regs, has_max_gap, has_pause, has_timeout;
  int64_t max_regs, max_gap, pause_ms, timeout_ms;
};

/*
 * Parses the `registers:` list at `seq` of `doc` into *out (which must be
 * zeroed or freed). `where` prefixes key paths in messages ("modbus[0]" gives
 * "modbus[0].registers[2].type"). With address_base 1 every address is a
 * documented 1-based number and is converted (mb_address_from_documented()).
 * A name listed twice is an error. Returns 0, or -EINVAL with err set to
 * "file:line: where.registers[i].key: what", or -ENOMEM; on failure *out is
 * left empty.
 */
int mb_regmap_parse(const struct rp_cfg_doc *doc, rp_cfg_node seq, const char *where,
                    int address_base, struct mb_regmap *out, char *err, size_t errlen);

/*
 * Loads profile `name` from `<profiles_dir>/modbus/<name>.yaml` into *out
 * (zeroed or freed before) and *defs. `name` must be letters, digits, '.',
 * '_' or '-' and not start with '.'. Returns 0, or a negative errno with err
 * naming the profile file (and line, for a problem inside it); the caller
 * adds where the profile was asked for. On failure *out is left empty.
 */
int mb_profile_load(const char *profiles_dir, const char *name, struct mb_regmap *out,
                    struct mb_profile_defaults *defs, char *err, size_t errlen);

/*
 * Applies `over` (the inline entries) to *base: an entry whose name is in
 * base replaces it in place, the others are appended in their order. `over`
 * is only read. Returns 0, -E2BIG above MB_MAX_REGISTERS registers, or
 * -ENOMEM (base unchanged).
 */
int mb_regmap_override(struct mb_regmap *base, const struct mb_regmap *over);

/* Frees the arrays of *m and zeroes it. Accepts NULL; safe twice. */
void mb_regmap_free(struct mb_regmap *m);

/*
 * Converts a documented 1-based register number to the 0-based protocol
 * address of function fn. Accepted: the function's 5-digit block (coil
 * 1-9999, discrete 10001-19999, input 30001-39999, holding 40001-49999),
 * its 6-digit block (000001-065536, 100001-165536, 300001-365536,
 * 400001-465536), or a plain 1-based number 1-9999. Returns 0 and *out, or
 * -EINVAL (e.g. 40001 for an input register).
 */
int mb_address_from_documented(enum mb_function fn, int64_t n, uint16_t *out);

/* Prints the keys of a register entry and of a profile file for --help,
 * under the prefix `where` ("modbus[].registers[]"). */
void mb_register_help(FILE *out, const char *where);
void mb_profile_help(FILE *out);

#endif /* RP_AGENT_MB_PROFILE_H */
