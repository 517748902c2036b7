/* rackpulsectl's floor views (see ctl_floor.h): the racks of a
 * GET /v1/floor answer filtered and sorted worst first, and the table that
 * `status` and `top` print. No I/O but stdout. */
#include "ctl_floor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double jnum(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The tighter of power and thermal headroom; -inf when either is unknown
 * (missing evidence sorts with the worst). */
static double tighter(const json_t *r) {
  double p = jnum(r, "power_headroom_kw"), t = jnum(r, "thermal_headroom_kw");
  if (isnan(p) || isnan(t))
    return -INFINITY;
  return p < t ? p : t;
}

static int worst_first(const void *x, const void *y) {
  const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
  const char *da = json_string_value(json_object_get(a, "decision"));
  const char *db = json_string_value(json_object_get(b, "decision"));
  int ra = da != NULL && strcmp(da, "allow") == 0, rb = db != NULL && strcmp(db, "allow") == 0;
  if (ra != rb)
    return ra - rb; /* denied first */
  double ha = tighter(a), hb = tighter(b);
  if (ha != hb)
    return ha < hb ? -1 : 1;
  const char *ia = json_string_value(json_object_get(a, "rack"));
  const char *ib = json_string_value(json_object_get(b, "rack"));
  return strcmp(ia ? ia : "", ib ? ib : "");
}

json_t *ctl_floor_select(const json_t *floor, const char *want_row, const char *want_loop) {
  json_t *all = json_object_get(floor, "racks");
  size_t n = json_array_size(all), k = 0, i;
  json_t **v = calloc(n ? n : 1, sizeof(*v)), *r;
  json_t *out = json_array();
  if (v == NULL)
    return out;
  json_array_foreach(all, i, r) {
    const char *row = json_string_value(json_object_get(r, "row"));
    const char *loop = json_string_value(json_object_get(r, "loop"));
    if ((want_row && (row == NULL || strcmp(row, want_row) != 0)) ||
        (want_loop && (loop == NULL || strcmp(loop, want_loop) != 0)))
      continue;
    v[k++] = r;
  }
  qsort(v, k, sizeof(*v), worst_first);
  for (i = 0; i < k; i++)
    json_array_append(out, v[i]);
  free(v);
  return out;
}

static void put_num(char *buf, size_t len, double v, int decimals) {
  if (isfinite(v))
    snprintf(buf, len, "%.*f", decimals, v);
  else
    snprintf(buf, len, "-");
}

/* Prints `list` (strings, or objects with `key`) joined with `sep`. */
static void put_list(const char *label, const json_t *list, const char *key, const char *sep) {
  size_t i;
  json_t *e;
  if (json_array_size(list) == 0)
    return;
  printf("  %s ", label);
  json_array_foreach(list, i, e) {
    const char *s = json_string_value(key ? json_object_get(e, key) : e);
    printf("%s%s", i ? sep : "", s ? s : "?");
  }
}

void ctl_floor_print(const json_t *racks) {
  printf("%-14s %-6s %-6s %-5s %9s %9s %7s %6s %7s  %s\n", "RACK", "ROW", "LOOP", "GATE",
         "POWER_kW", "THERM_kW", "SUPPLY", "DT", "AGE_s", "FLAGS / FAILING / MISSING");
  size_t i;
  json_t *r;
  json_array_foreach(racks, i, r) {
    char p[24], t[24], sup[24], dt[24], age[24];
    put_num(p, sizeof(p), jnum(r, "power_headroom_kw"), 1);
    put_num(t, sizeof(t), jnum(r, "thermal_headroom_kw"), 1);
    put_num(sup, sizeof(sup), jnum(r, "supply_temp"), 1);
    put_num(dt, sizeof(dt), jnum(r, "delta_t"), 1);
    put_num(age, sizeof(age), jnum(r, "age_s"), 1);
    const char *row = json_string_value(json_object_get(r, "row"));
    const char *loop = json_string_value(json_object_get(r, "loop"));
    const char *d = json_string_value(json_object_get(r, "decision"));
    printf("%-14s %-6s %-6s %-5s %9s %9s %7s %6s %7s",
           json_string_value(json_object_get(r, "rack")), row && *row ? row : "-",
           loop && *loop ? loop : "-", d ? d : "?", p, t, sup, dt, age);
    put_list("flags:", json_object_get(r, "flags"), NULL, ",");
    put_list("failing:", json_object_get(r, "failing"), "check", ",");
    put_list("missing:", json_object_get(r, "missing"), NULL, "; ");
    putchar('\n');
  }
}
