/* Modbus register maps from YAML: one `registers:` list (inline in the
 * agent's config or in a profile file), a profile file with its device
 * defaults and its address base, and the merge of inline entries over a
 * profile. The map model is mb_map.h; the contracts are in mb_profile.h. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mb_profile.h"
#include "rackpulse/frame.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One register as written in YAML, before conversion. */
struct reg_text {
  char name[MB_NAME_MAX], unit[MB_UNIT_MAX];
  char function[16], type[16], order[8];
  int64_t address, decimals;
  double scale, offset, min, max;
  char sentinel[24];
};

typedef struct reg_text R;

static const struct rp_cfg_field register_fields[] = {
    RP_CFG_STR("name", R, name, NULL, 1, "metric name, e.g. cdu.supply_temp"),
    RP_CFG_STR("unit", R, unit, "", 0, "unit: Cel, L/min, kPa, %, ..."),
    RP_CFG_STR("function", R, function, "holding", 0, MB_FUNCTION_NAMES),
    RP_CFG_NUM("address", RP_CFG_INT, R, address, NULL, 0, 465536,
               "0-based protocol address; in a profile with address_base 1, the "
               "documented number (30001 = input 0, 40001 = holding 0)"),
    RP_CFG_STR("type", R, type, "u16", 0, MB_TYPE_NAMES),
    RP_CFG_STR("order", R, order, "ABCD", 0, MB_ORDER_NAMES),
    RP_CFG_NUM("scale", RP_CFG_DOUBLE, R, scale, "1", 0, 0, "value = raw × scale + offset"),
    RP_CFG_NUM("offset", RP_CFG_DOUBLE, R, offset, "0", 0, 0, "added after scaling"),
    RP_CFG_NUM("decimals", RP_CFG_INT, R, decimals, "-1", -1, 9,
               "decimal digits sent (-1: from scale; 3 for floats)"),
    RP_CFG_NUM("min", RP_CFG_DOUBLE, R, min, "0", 0, 0, "plausible minimum (with max)"),
    RP_CFG_NUM("max", RP_CFG_DOUBLE, R, max, "0", 0, 0, "plausible maximum (with min)"),
    RP_CFG_STR("sentinel", R, sentinel, "", 0, "raw value meaning 'sensor absent', e.g. 0xFFFF"),
};

static const char *const register_sections[] = {"bits", NULL};

/* A profile file's own keys (its `registers:` list is a section). */
struct profile_text {
  char description[1024];
  int64_t address_base, max_regs, max_gap, pause_ms, timeout_ms;
};

typedef struct profile_text P;

static const struct rp_cfg_field profile_fields[] = {
    RP_CFG_STR("description", P, description, "", 0,
               "what the profile maps and where its facts come from"),
    RP_CFG_NUM("address_base", RP_CFG_INT, P, address_base, "0", 0, 1,
               "0: addresses are 0-based protocol addresses; 1: documented 1-based "
               "numbers, converted (input 30001 -> 0, holding 40001 -> 0)"),
    RP_CFG_NUM("max_regs", RP_CFG_INT, P, max_regs, NULL, 1, 125,
               "device default: registers per request at most"),
    RP_CFG_NUM("max_gap", RP_CFG_INT, P, max_gap, NULL, 0, 124,
               "device default: unused registers a request may read across"),
    RP_CFG_NUM("pause", RP_CFG_DURATION, P, pause_ms, NULL, 0, 10,
               "device default: pause between requests"),
    RP_CFG_NUM("timeout", RP_CFG_DURATION, P, timeout_ms, NULL, 0.01, 60,
               "device default: response timeout of one request"),
};

static const char *const profile_sections[] = {"registers", NULL};

static int parse_bits(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                      struct mb_register *r, char *err, size_t errlen) {
  if (map == 0)
    return 0;
  if (rp_cfg_kind(doc, map) != RP_CFG_MAPPING) {
    rp_cfg_error(doc, map, where, err, errlen, "bits: expected a mapping of bit: name");
    return -EINVAL;
  }
  for (size_t i = 0; i < rp_cfg_map_len(doc, map); i++) {
    rp_cfg_node v;
    const char *bit = rp_cfg_map_key(doc, map, i, &v);
    const char *name = rp_cfg_scalar(doc, v);
    char *end;
    long b = bit ? strtol(bit, &end, 10) : -1;
    if (bit == NULL || *end != '\0' || b < 0 || b > 15 || name == NULL ||
        strlen(name) >= MB_BIT_NAME_MAX || r->nbits == MB_BITS_MAX) {
      rp_cfg_error(doc, v, where, err, errlen,
                   "bits: expected 'N: name' with N in 0..15 and a name under %d characters",
                   MB_BIT_NAME_MAX);
      return -EINVAL;
    }
    r->bits[r->nbits].bit = (uint8_t)b;
    snprintf(r->bits[r->nbits].name, sizeof(r->bits[0].name), "%s", name);
    r->nbits++;
  }
  return 0;
}

/* Wire precision of a register: enough decimal digits for its scale. */
static int default_decimals(const struct mb_register *r) {
  if (r->type == MB_TYPE_F32 || r->type == MB_TYPE_F64)
    return 3;
  return rp_scale_decimals(r->scale);
}

int mb_address_from_documented(enum mb_function fn, int64_t n, uint16_t *out) {
  int64_t block5, block6;
  switch (fn) {
  case MB_FN_COIL: block5 = 0, block6 = 0; break;
  case MB_FN_DISCRETE: block5 = 10000, block6 = 100000; break;
  case MB_FN_INPUT: block5 = 30000, block6 = 300000; break;
  case MB_FN_HOLDING: block5 = 40000, block6 = 400000; break;
  default: return -EINVAL;
  }
  if (n > block5 && n <= block5 + 9999)
    *out = (uint16_t)(n - block5 - 1);
  else if (n > block6 && n <= block6 + 65536)
    *out = (uint16_t)(n - block6 - 1);
  else if (n >= 1 && n <= 9999)
    *out = (uint16_t)(n - 1);
  else
    return -EINVAL;
  return 0;
}

/* The documented forms of fn's addresses, for messages. */
static const char *documented_forms(enum mb_function fn) {
  switch (fn) {
  case MB_FN_COIL: return "a coil is 1..9999 or 000001..065536 (documented 00001 = coil 0)";
  case MB_FN_DISCRETE:
    return "a discrete input is 10001..19999 or 100001..165536 (documented 10001 = "
           "discrete 0), or 1..9999";
  case MB_FN_INPUT:
    return "an input register is 30001..39999 or 300001..365536 (documented 30001 = "
           "input 0), or 1..9999";
  default:
    return "a holding register is 40001..49999 or 400001..465536 (documented 40001 = "
           "holding 0), or 1..9999";
  }
}

static int parse_register(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                          int address_base, struct mb_register *r, int *decimals,
                          int32_t *documented, char *err, size_t errlen) {
  R t;
  memset(&t, 0, sizeof(t));
  int rc = rp_cfg_apply(doc, node, where, register_fields, N(register_fields), register_sections,
                        &t, err, errlen);
  if (rc != 0)
    return rc;
  mb_register_init(r);
  snprintf(r->name, sizeof(r->name), "%s", t.name);
  snprintf(r->unit, sizeof(r->unit), "%s", t.unit);
  r->scale = t.scale;
  r->offset = t.offset;
  if (mb_function_from_name(t.function, &r->fn) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "function"), where, err, errlen,
                 "function '%s' is not one of " MB_FUNCTION_NAMES, t.function);
    return -EINVAL;
  }
  *documented = -1;
  if (address_base == 1) {
    if (mb_address_from_documented(r->fn, t.address, &r->address) != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, node, "address"), where, err, errlen,
                   "address %lld: with address_base 1 (documented 1-based numbers) %s",
                   (long long)t.address, documented_forms(r->fn));
      return -EINVAL;
    }
    *documented = (int32_t)t.address;
  } else if (t.address > 65535) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "address"), where, err, errlen,
                 "address %lld: a 0-based protocol address is 0..65535 (documented "
                 "numbers such as 30001 need address_base: 1 in a profile)",
                 (long long)t.address);
    return -EINVAL;
  } else {
    r->address = (uint16_t)t.address;
  }
  if (mb_type_from_name(t.type, &r->type) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "type"), where, err, errlen,
                 "type '%s' is not one of " MB_TYPE_NAMES, t.type);
    return -EINVAL;
  }
  if (mb_order_from_name(t.order, &r->order) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "order"), where, err, errlen,
                 "order '%s' is not one of " MB_ORDER_NAMES, t.order);
    return -EINVAL;
  }
  if (rp_cfg_get(doc, node, "min") != 0 || rp_cfg_get(doc, node, "max") != 0) {
    r->has_range = true;
    r->min = rp_cfg_get(doc, node, "min") ? t.min : -INFINITY;
    r->max = rp_cfg_get(doc, node, "max") ? t.max : INFINITY;
  }
  if (t.sentinel[0] != '\0') {
    char *end;
    errno = 0;
    r->sentinel = strtoull(t.sentinel, &end, 0);
    r->has_sentinel = true;
    if (*end != '\0' || errno != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, node, "sentinel"), where, err, errlen,
                   "sentinel '%s' is not an integer such as 0xFFFF", t.sentinel);
      return -EINVAL;
    }
  }
  if ((rc = parse_bits(doc, rp_cfg_get(doc, node, "bits"), where, r, err, errlen)) != 0)
    return rc;
  char why[256];
  if (mb_register_check(r, why, sizeof(why)) != 0) {
    if (*documented >= 0)
      rp_cfg_error(doc, node, where, err, errlen, "%s (documented %ld, address_base 1)", why,
                   (long)*documented);
    else
      rp_cfg_error(doc, node, where, err, errlen, "%s", why);
    return -EINVAL;
  }
  *decimals = t.decimals >= 0 ? (int)t.decimals : default_decimals(r);
  return 0;
}

void mb_regmap_free(struct mb_regmap *m) {
  if (m == NULL)
    return;
  free(m->regs);
  free(m->decimals);
  free(m->documented);
  memset(m, 0, sizeof(*m));
}

/* Sizes the three arrays of *m for n entries (keeping the first m->n). */
static int regmap_grow(struct mb_regmap *m, size_t n) {
  struct mb_register *regs = realloc(m->regs, (n ? n : 1) * sizeof(*regs));
  if (regs == NULL)
    return -ENOMEM;
  m->regs = regs;
  int *dec = realloc(m->decimals, (n ? n : 1) * sizeof(*dec));
  if (dec == NULL)
    return -ENOMEM;
  m->decimals = dec;
  int32_t *doc = realloc(m->documented, (n ? n : 1) * sizeof(*doc));
  if (doc == NULL)
    return -ENOMEM;
  m->documented = doc;
  return 0;
}

int mb_regmap_parse(const struct rp_cfg_doc *doc, rp_cfg_node seq, const char *where,
                    int address_base, struct mb_regmap *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  char rwhere[160];
  snprintf(rwhere, sizeof(rwhere), "%s%sregisters", where ? where : "",
           where && where[0] ? "." : "");
  if (rp_cfg_kind(doc, seq) != RP_CFG_SEQUENCE) {
    rp_cfg_error(doc, seq, rwhere, err, errlen, "expected a list of registers");
    return -EINVAL;
  }
  size_t n = rp_cfg_seq_len(doc, seq);
  if (n > MB_MAX_REGISTERS) {
    rp_cfg_error(doc, seq, rwhere, err, errlen, "%zu registers, at most %d", n, MB_MAX_REGISTERS);
    return -EINVAL;
  }
  if (regmap_grow(out, n) != 0) {
    mb_regmap_free(out);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    char iwhere[192];
    snprintf(iwhere, sizeof(iwhere), "%s[%zu]", rwhere, i);
    rp_cfg_node item = rp_cfg_seq_item(doc, seq, i);
    int rc = parse_register(doc, item, iwhere, address_base, &out->regs[i], &out->decimals[i],
                            &out->documented[i], err, errlen);
    if (rc != 0) {
      mb_regmap_free(out);
      return rc;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(out->regs[j].name, out->regs[i].name) == 0) {
        rp_cfg_error(doc, item, iwhere, err, errlen,
                     "register name '%s' is listed twice (also %s[%zu])", out->regs[i].name, rwhere,
                     j);
        mb_regmap_free(out);
        return -EINVAL;
      }
    }
    out->n = i + 1;
  }
  return 0;
}

static bool valid_profile_name(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len >= MB_PROFILE_NAME_MAX || name[0] == '.')
    return false;
  return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

int mb_profile_load(const char *profiles_dir, const char *name, struct mb_regmap *out,
                    struct mb_profile_defaults *defs, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  memset(defs, 0, sizeof(*defs));
  if (!valid_profile_name(name)) {
    snprintf(err, errlen,
             "profile '%s': a name is letters, digits, '.', '_' and '-' (not first '.'), "
             "under %d characters",
             name, MB_PROFILE_NAME_MAX);
    return -EINVAL;
  }
  char path[512];
  snprintf(path, sizeof(path), "%s/modbus/%s.yaml", profiles_dir, name);
  struct rp_cfg_doc *doc = NULL;
  int rc = rp_cfg_load(path, &doc, err, errlen);
  if (rc != 0)
    return rc;
  rp_cfg_node root = rp_cfg_root(doc);
  P p;
  memset(&p, 0, sizeof(p));
  rc = rp_cfg_apply(doc, root, "profile", profile_fields, N(profile_fields), profile_sections, &p,
                    err, errlen);
  if (rc != 0)
    goto out;
  rp_cfg_node regs = rp_cfg_get(doc, root, "registers");
  if (rp_cfg_seq_len(doc, regs) == 0) {
    rp_cfg_error(doc, regs ? regs : root, "profile.registers", err, errlen,
                 "expected a list of 1..%d registers", MB_MAX_REGISTERS);
    rc = -EINVAL;
    goto out;
  }
  if ((rc = mb_regmap_parse(doc, regs, "", (int)p.address_base, out, err, errlen)) != 0)
    goto out;
  defs->has_max_regs = rp_cfg_get(doc, root, "max_regs") != 0;
  defs->has_max_gap = rp_cfg_get(doc, root, "max_gap") != 0;
  defs->has_pause = rp_cfg_get(doc, root, "pause") != 0;
  defs->has_timeout = rp_cfg_get(doc, root, "timeout") != 0;
  defs->max_regs = p.max_regs;
  defs->max_gap = p.max_gap;
  defs->pause_ms = p.pause_ms;
  defs->timeout_ms = p.timeout_ms;
out:
  rp_cfg_free(doc);
  return rc;
}

int mb_regmap_override(struct mb_regmap *base, const struct mb_regmap *over) {
  size_t added = 0;
  for (size_t i = 0; i < over->n; i++) {
    bool found = false;
    for (size_t j = 0; j < base->n && !found; j++)
      found = strcmp(base->regs[j].name, over->regs[i].name) == 0;
    added += !found;
  }
  if (base->n + added > MB_MAX_REGISTERS)
    return -E2BIG;
  if (regmap_grow(base, base->n + added) != 0)
    return -ENOMEM;
  size_t n = base->n;
  for (size_t i = 0; i < over->n; i++) {
    size_t j = 0;
    while (j < base->n && strcmp(base->regs[j].name, over->regs[i].name) != 0)
      j++;
    if (j == base->n)
      j = n++;
    base->regs[j] = over->regs[i];
    base->decimals[j] = over->decimals[i];
    base->documented[j] = over->documented[i];
  }
  base->n = n;
  return 0;
}

void mb_register_help(FILE *out, const char *where) {
  char key[128];
  rp_cfg_print_help(out, where, register_fields, N(register_fields));
  snprintf(key, sizeof(key), "%s.bits", where);
  fprintf(out, "  %-28s %-9s %s\n", key, "mapping",
          "bitfield: bit number -> alarm name (value 1 = active)");
}

void mb_profile_help(FILE *out) {
  fprintf(out, "  modbus profile file <agent.profiles_dir>/modbus/NAME.yaml:\n");
  rp_cfg_print_help(out, "profile", profile_fields, N(profile_fields));
  fprintf(out, "  %-28s %-9s %s\n", "profile.registers", "list",
          "the register map, entries as modbus[].registers[]");
}
