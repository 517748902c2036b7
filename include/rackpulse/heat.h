/* Derived thermal series for liquid-cooled racks: temperature difference,
 * heat carried away by the coolant, and the heat balance (liquid capture
 * ratio) against electrical power. Pure functions: no I/O, no allocation.
 * Feed their results into an rp_series (stats.h) to get windowed statistics.
 *
 * Units, everywhere in this file:
 *   temperatures        °C (a difference of temperatures is in K)
 *   volumetric flow     L/min
 *   density rho         kg/m³
 *   specific heat cp    kJ/(kg·K)
 *   heat and power      kW
 *
 *   Q [kW] = rho · cp · ΔT · V̇ / 60 000
 * (V̇ / 60 000 is the flow in m³/s; rho times it is kg/s; times cp·ΔT, kJ/s.)
 *
 * With the WATER preset, 100 L/min at ΔT 10 K carries 995.6 · 4.18 · 10 · 100 /
 * 60 000 = 69.36 kW (0.0694 kW per L/min·K). */
#ifndef RACKPULSE_HEAT_H
#define RACKPULSE_HEAT_H

/* Coolant properties. Plain data, owned by the caller. */
struct rp_coolant {
  double rho_kg_m3;  /* density */
  double cp_kj_kg_k; /* specific heat capacity */
};

enum rp_coolant_preset {
  RP_COOLANT_WATER, /* water at 30 °C: rho 995.6, cp 4.18 */
  RP_COOLANT_PG25,  /* 25 % propylene glycol at 30 °C: rho 1019.2, cp 3.94 */
};

/* Sets *out to a preset. Returns 0, or -EINVAL for an unknown preset. */
int rp_coolant_preset(enum rp_coolant_preset preset, struct rp_coolant *out);

/* Sets *out to custom properties. Returns 0, or -EINVAL unless both are
 * finite and > 0 (*out untouched). */
int rp_coolant_custom(double rho_kg_m3, double cp_kj_kg_k, struct rp_coolant *out);

/* ΔT = return − supply, in K (also inlet/exhaust: pass exhaust as `ret`).
 * Returns NaN when either input is NaN or infinite. A negative ΔT is returned
 * as is: it means swapped or failing sensors, and is for the caller to flag. */
double rp_delta_t(double ret_c, double supply_c);

/* Heat removed by the coolant into *kw_out, in kW, from ΔT in K and the
 * volumetric flow in L/min. Returns 0, or -EDOM when an input is not finite or
 * the flow is negative (a fault reading, not a flow); *kw_out is then NaN.
 * A negative ΔT gives a negative result (see rp_delta_t). */
int rp_heat_removed_kw(const struct rp_coolant *c, double delta_t_k, double flow_l_min,
                       double *kw_out);

/* Heat balance = heat removed ÷ electrical power (both kW) into *ratio_out:
 * the liquid capture ratio, normally a little below 1. Returns 0, or -EDOM
 * when either input is not finite or power_kw <= 0 (no division happens);
 * *ratio_out is then NaN. */
int rp_heat_balance(double heat_kw, double power_kw, double *ratio_out);

#endif
