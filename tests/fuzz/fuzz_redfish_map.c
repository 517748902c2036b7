/* Fuzz harness: the Redfish collector's pure part (agent/redfish/redfish_map.c):
 * a JSON document from a service, mapped as every kind of resource (with and
 * without a forced status, with OEM pointers of a profile), and the JSON
 * pointer lookup. Invariants: every reading has a name and a unit; an OK
 * reading's value is finite; a reading that is not OK has a detail.
 *
 * Input: the first byte picks flags (bit 0: a power shelf, bit 1: several
 * units, bit 2: force an error status); the rest is the JSON text. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redfish/redfish_map.h"

static void check(const struct rf_out *out) {
  for (size_t i = 0; i < out->n; i++) {
    const struct rp_reading *r = &out->items[i].r;
    if (r->name == NULL || r->unit == NULL)
      abort();
    if (r->status == RP_READING_OK && !isfinite(r->value) && !isinf(r->value))
      abort();
    if (r->status != RP_READING_OK && r->detail == NULL)
      abort();
    for (size_t j = 0; j < r->nlabels; j++)
      if (r->labels[j].key == NULL || r->labels[j].value == NULL)
        abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t flags = data[0];
  json_error_t e;
  json_t *doc = json_loadb((const char *)data + 1, size - 1, 0, &e);
  if (doc == NULL)
    return 0;
  static const struct rf_oem oem[] = {
      {.kind = RF_K_CDU,
       .pointer = "/Oem/Contoso/FacilityValvePercent",
       .metric = "cdu.v",
       .unit = "%",
       .scale = 1,
       .decimals = 1},
      {.kind = RF_K_PDU, .pointer = "/Oem/0/a~1b", .metric = "pdu.x", .unit = "", .scale = 2},
  };
  struct rf_out out;
  memset(&out, 0, sizeof(out));
  for (int k = 0; k < RF_K_COUNT; k++) {
    struct rf_map_ctx ctx = {
        .uri = "/fuzz",
        .shelf = flags & 1,
        .many = flags & 2,
        .unit = "U1",
        .unit_key = "chassis",
        .legacy_total = true,
        .legacy_psu = true,
        .sensor_psu = true,
        .oem = oem,
        .noem = 2,
        .force = (flags & 4) ? RP_READING_ERROR : RP_READING_OK,
        .force_detail = "forced",
    };
    rf_map((enum rf_kind)k, doc, &ctx, &out);
  }
  rf_out_finish(&out);
  check(&out);
  rf_pointer(doc, "/Members/0/Reading");
  rf_pointer(doc, "/a~1b/~0/1");
  rf_out_free(&out);
  json_decref(doc);
  return 0;
}
