/* The collectors this build has, and the agent's slot of state for each.
 * A new protocol is one file with one const struct rp_collector, listed
 * here. */
#include <stddef.h>

#include "agent.h"

const struct rp_collector *const rp_collectors[] = {
    &rp_collector_modbus, &rp_collector_ipmi, &rp_collector_snmp, &rp_collector_redfish, NULL,
};

_Static_assert(sizeof(rp_collectors) / sizeof(rp_collectors[0]) <= RP_COLLECTORS_MAX + 1,
               "RP_COLLECTORS_MAX is smaller than the list of collectors");

void **rp_collector_state(struct rp_agent *a, const struct rp_collector *c) {
  for (size_t i = 0; rp_collectors[i] != NULL; i++)
    if (rp_collectors[i] == c)
      return &a->collector_state[i];
  return NULL;
}

void rp_collectors_free_state(struct rp_agent *a) {
  for (size_t i = 0; rp_collectors[i] != NULL; i++) {
    if (a->collector_state[i] != NULL && rp_collectors[i]->free_state != NULL)
      rp_collectors[i]->free_state(a->collector_state[i]);
    a->collector_state[i] = NULL;
  }
}
