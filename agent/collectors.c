/* The collectors this build has. A new protocol is one file with one const
 * struct rp_collector, listed here. */
#include "collector.h"

const struct rp_collector *const rp_collectors[] = {
    &rp_collector_modbus,
    &rp_collector_ipmi,
    &rp_collector_snmp,
    NULL,
};
