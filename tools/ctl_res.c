/* rackpulsectl's reservations listing (see ctl_res.h). */
#include "ctl_res.h"

#include <stdio.h>

static void print_summary(const json_t *s) {
  json_t *cost = json_object_get(s, "cost"), *per_h = json_object_get(s, "cost_per_hour");
  json_t *peak = json_object_get(s, "peak_utilization"),
         *p95 = json_object_get(s, "p95_utilization");
  const char *cur = json_string_value(json_object_get(s, "currency"));
  printf("    energy %.3f kWh (%.3f estimated) over %.2f h",
         json_number_value(json_object_get(s, "kwh")),
         json_number_value(json_object_get(s, "estimated_kwh")),
         json_number_value(json_object_get(s, "hours")));
  if (json_is_number(cost))
    printf(", cost %.4f %s", json_number_value(cost), cur ? cur : "");
  if (json_is_number(per_h))
    printf(" (%.4f %s per hour)", json_number_value(per_h), cur ? cur : "");
  if (json_is_number(peak))
    printf(", peak %.0f%%", 100 * json_number_value(peak));
  if (json_is_number(p95))
    printf(", p95 %.0f%%", 100 * json_number_value(p95));
  putchar('\n');
}

void ctl_print_reservations(const json_t *j) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(j, "reservations"), i, r) {
    json_t *u = json_object_get(r, "utilization");
    const char *rack = json_string_value(json_object_get(r, "rack"));
    printf(
        "%s  %-10s %-12s %8.2f kW  %-6s owner %-12s", json_string_value(json_object_get(r, "id")),
        json_string_value(json_object_get(r, "state")), rack && rack[0] ? rack : "-",
        json_number_value(json_object_get(r, "kw")), json_string_value(json_object_get(r, "class")),
        json_string_value(json_object_get(r, "owner")));
    if (json_is_number(u))
      printf("  used %3.0f%%", 100 * json_number_value(u));
    if (json_object_get(r, "wait_until_ms"))
      printf("  waits until %lld",
             (long long)json_integer_value(json_object_get(r, "wait_until_ms")));
    putchar('\n');
    const json_t *s = json_object_get(r, "summary");
    if (json_is_object(s))
      print_summary(s);
  }
}
