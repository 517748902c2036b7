/* rackpulsectl's floor views (ctl_floor.c), for `status` and `top`: the
 * racks of a GET /v1/floor answer on a row and loop, worst first (denied
 * racks, then the least headroom), and their one-line-per-rack table. */
#ifndef RACKPULSE_CTL_FLOOR_H
#define RACKPULSE_CTL_FLOOR_H

#include <jansson.h>

/* The racks of `floor` (the API's answer) in row `row` and loop `loop`
 * (NULL: any), worst first. Returns a new reference the caller releases. */
json_t *ctl_floor_select(const json_t *floor, const char *row, const char *loop);
/* Prints the table of `racks` (as ctl_floor_select returns them). */
void ctl_floor_print(const json_t *racks);

#endif
