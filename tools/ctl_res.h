/* rackpulsectl's view of reservations (ctl_res.c): one line per
 * reservation, and its energy and cost (the close-out summary, or so far). */
#ifndef RACKPULSE_CTL_RES_H
#define RACKPULSE_CTL_RES_H

#include <jansson.h>

/* Prints the answer of GET /v1/reservations. */
void ctl_print_reservations(const json_t *j);

#endif
