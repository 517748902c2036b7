/* Derived thermal series: ΔT, heat removed by the coolant, and the heat
 * balance against electrical power. Units and formulas are in
 * include/rackpulse/heat.h; the coolant constants are those of
 * shared/REFERENCE.md ("Heat"), at 30 °C. */
#include "rackpulse/heat.h"

#include <errno.h>
#include <math.h>

int rp_coolant_preset(enum rp_coolant_preset preset, struct rp_coolant *out) {
  switch (preset) {
  case RP_COOLANT_WATER:
    *out = (struct rp_coolant){.rho_kg_m3 = 995.6, .cp_kj_kg_k = 4.18};
    return 0;
  case RP_COOLANT_PG25:
    *out = (struct rp_coolant){.rho_kg_m3 = 1019.2, .cp_kj_kg_k = 3.94};
    return 0;
  }
  return -EINVAL;
}

int rp_coolant_custom(double rho_kg_m3, double cp_kj_kg_k, struct rp_coolant *out) {
  if (!(isfinite(rho_kg_m3) && rho_kg_m3 > 0 && isfinite(cp_kj_kg_k) && cp_kj_kg_k > 0))
    return -EINVAL;
  *out = (struct rp_coolant){.rho_kg_m3 = rho_kg_m3, .cp_kj_kg_k = cp_kj_kg_k};
  return 0;
}

double rp_delta_t(double ret_c, double supply_c) {
  if (!(isfinite(ret_c) && isfinite(supply_c)))
    return NAN;
  return ret_c - supply_c;
}

int rp_heat_removed_kw(const struct rp_coolant *c, double delta_t_k, double flow_l_min,
                       double *kw_out) {
  *kw_out = NAN;
  if (!(isfinite(delta_t_k) && isfinite(flow_l_min) && flow_l_min >= 0))
    return -EDOM;
  *kw_out = c->rho_kg_m3 * c->cp_kj_kg_k * delta_t_k * flow_l_min / 60000.0;
  return 0;
}

int rp_heat_balance(double heat_kw, double power_kw, double *ratio_out) {
  *ratio_out = NAN;
  if (!(isfinite(heat_kw) && isfinite(power_kw) && power_kw > 0))
    return -EDOM;
  *ratio_out = heat_kw / power_kw;
  return 0;
}
