"""racksim's physics: one rack (servers, two PDU feeds, a CDU) stepped in
fixed steps of model time (0.1 s), so every value served by every simulated
device comes from the same instant of the same rack.

Nothing here does I/O: racksim.py steps the model, applies scenario events
and serves `Rack.readings()` over Modbus, SNMP and IPMI. The equations and
their sources are in tools/racksim/README.md ("The model").
"""
import copy
import math

# Coolants: density kg/m3 and specific heat kJ/kg.K at 30 degC, the values
# of shared/REFERENCE.md ("Heat") and of the agent's heat_removed presets.
COOLANTS = {"water": (995.6, 4.18), "pg25": (1019.2, 3.94)}
AIR_RHO, AIR_CP = 1.16, 1.005      # kg/m3 and kJ/kg.K at ~30 degC

# Every tunable of the rack, with its default; a scenario's `rack:` section
# overrides any of them by name (unknown names are refused).
DEFAULTS = {
    "id": "sim-r01",
    "servers": 4,                 # one BMC each (ipmi_sim)
    "gpus_per_server": 8,         # the BMC shows the first four GPU temperatures
    "gpu_idle_w": 90.0,
    "gpu_max_w": 1000.0,          # at utilisation 1, before throttling
    "server_base_w": 1000.0,      # CPUs, memory, NICs, fans: DC watts
    "cpu_w": 250.0,               # of server_base_w, on the CPU cold plate
    "psu_efficiency": 0.94,       # AC in / DC out
    "psu_share": 0.505,           # PSU1's share when both feeds are up
    "capture": 0.80,              # fraction of server heat taken by the liquid
    "gpu_r_th": 0.035,            # K/W, GPU to secondary supply (cold plate)
    "cpu_r_th": 0.10,             # K/W
    "gpu_tau": 8.0,               # s, GPU and cold-plate thermal time constant
    "throttle_c": 87.0,           # GPU temperature above which power is capped
    "throttle_min": 0.5,          # lowest power cap (fraction of gpu_max_w)
    "room_temp": 24.0,            # server inlet air, degC
    "air_tau": 20.0,              # s, exhaust air time constant
    # PDUs: feed A carries PSU1 of every server, feed B PSU2; server i is on
    # phase (i-1) % 3 + 1 and outlet i; one over-current protector per phase.
    "pdus": ["pdu-a", "pdu-b"],
    "voltage": [230.0, 231.0, 229.0],   # line-to-neutral per phase, V
    "power_factor": 0.98,
    "pdu_own_w": 18.0,            # the PDU's own consumption (controller, meters)
    "pdu_loss": 0.004,            # fraction of load lost in the PDU's wiring
    "energy_wh": 123456.0,        # PDU energy counters at start, Wh
    # CDU, secondary loop.
    "coolant": "water",
    "setpoint": 30.0,             # supply temperature setpoint, degC
    "facility_supply": 24.0,      # facility (primary) water in, degC
    "facility_flow": 90.0,        # L/min at full valve
    "ua_max": 2.6,                # kW/K, heat exchanger at full valve
    "loop_tau": 45.0,             # s, secondary supply temperature time constant
    "flow_max": 70.0,             # L/min at 100 % pump speed and a healthy pump
    "dp_max": 160.0,              # kPa at 100 % speed
    "dp_setpoint": 100.0,         # kPa, the pump speed controller's target
    "pump_health": 1.0,           # 1 new; flow and head scale with it
    "pump_gain": 0.004,           # speed fraction per kPa per second (I term)
    "reservoir_l": 20.0,          # litres at 100 % level
    "level": 78.0,                # %, at start
    "leak_lpm": 0.0,              # L/min lost to a leak
    "return_pressure_base": 80.0,  # kPa at 0 % level; +40 kPa at 100 %
}

# Parameters that shape the rack and cannot change while it runs.
FIXED = ("id", "servers", "gpus_per_server", "pdus", "coolant", "voltage")


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def lag(value, target, dt, tau):
    """First-order lag: value moves toward target with time constant tau."""
    if tau <= 0:
        return target
    return value + (target - value) * (1.0 - math.exp(-dt / tau))


class Job:
    """A workload on some servers: utilisation ramping to `util` over `ramp`
    seconds, with a swing of +-`swing` (fraction of util) at `period` s."""

    def __init__(self, start, util=0.0, ramp=0.0, swing=0.0, period=4.0, shape="sine", prev=0.0):
        self.start, self.util, self.ramp = start, float(util), float(ramp)
        self.swing, self.period, self.shape, self.prev = float(swing), float(period), shape, prev

    def base(self, t):
        if self.ramp <= 0 or t >= self.start + self.ramp:
            return self.util
        f = clamp((t - self.start) / self.ramp, 0.0, 1.0)
        return self.prev + (self.util - self.prev) * f

    def at(self, t, phase=0.0):
        u = self.base(t)
        if self.swing > 0 and self.period > 0:
            x = math.sin(2 * math.pi * (t - self.start) / self.period + phase)
            if self.shape == "square":
                x = 1.0 if x >= 0 else -1.0
            u *= 1.0 + self.swing * x
        return clamp(u, 0.0, 1.0)


class Server:
    def __init__(self, rack, index):
        p = rack.p
        self.rack, self.index = rack, index
        self.name = f"{rack.prefix}gpu{index}"
        self.phase = (index - 1) % 3 + 1
        self.util = 0.0
        self.cap = 1.0                      # throttle cap on GPU power, fraction
        self.gpu_w = p["gpu_idle_w"]
        self.gpu_temp = [p["setpoint"] + p["gpu_r_th"] * p["gpu_idle_w"]] * p["gpus_per_server"]
        self.cpu_temp = p["setpoint"] + p["cpu_r_th"] * p["cpu_w"]
        self.inlet = p["room_temp"]
        self.exhaust = p["room_temp"] + 8.0
        self.q_liquid = 0.0                 # kW into the secondary loop
        self.dc_w = 0.0
        self.ac_w = 0.0
        self.psu = [0.0, 0.0]
        self.fan = 0.3
        self.throttled = False
        self._first = True

    def step(self, t, dt, supply):
        p = self.rack.p
        job = self.rack.job_for(self.index)
        # A few degrees of phase between servers: a job's collectives align
        # them, but not to the millisecond.
        self.util = job.at(t, phase=0.15 * self.index)
        # Throttling: the cap falls 10 %/s while the hottest GPU is above the
        # limit and recovers 2 %/s once it is 2 K below.
        hottest = max(self.gpu_temp)
        if hottest > p["throttle_c"]:
            self.cap = max(p["throttle_min"], self.cap - 0.10 * dt)
        elif hottest < p["throttle_c"] - 2.0:
            self.cap = min(1.0, self.cap + 0.02 * dt)
        self.throttled = self.cap < 0.999
        demand = p["gpu_idle_w"] + (p["gpu_max_w"] - p["gpu_idle_w"]) * self.util
        self.gpu_w = min(demand, max(p["gpu_idle_w"], p["gpu_max_w"] * self.cap))
        self.dc_w = self.gpu_w * p["gpus_per_server"] + p["server_base_w"]
        self.ac_w = self.dc_w / p["psu_efficiency"]
        # Temperatures: each GPU tends to supply + R_th * P with the cold
        # plate's time constant; the four a BMC shows differ by their
        # position on the loop (later plates see slightly warmer coolant).
        for g in range(len(self.gpu_temp)):
            target = supply + p["gpu_r_th"] * self.gpu_w * (1.0 + 0.02 * g)
            self.gpu_temp[g] = target if self._first else lag(self.gpu_temp[g], target, dt, p["gpu_tau"])
        cpu_target = supply + p["cpu_r_th"] * p["cpu_w"]
        self.cpu_temp = cpu_target if self._first else lag(self.cpu_temp, cpu_target, dt, p["gpu_tau"])
        # All electrical input becomes heat: capture x to the liquid (lagging
        # like the cold plates), the rest to air.
        q_target = p["capture"] * self.ac_w / 1000.0
        self.q_liquid = q_target if self._first else lag(self.q_liquid, q_target, dt, p["gpu_tau"])
        self.inlet = lag(self.inlet, p["room_temp"], dt, 60.0) if not self._first else p["room_temp"]
        # Fans follow the hottest GPU: 30 % at 50 degC, 100 % at 85 degC.
        self.fan = clamp(0.3 + 0.7 * (max(self.gpu_temp) - 50.0) / 35.0, 0.3, 1.0)
        airflow = 0.04 + 0.10 * self.fan                       # m3/s
        air_kw = (1.0 - p["capture"]) * self.ac_w / 1000.0
        ex_target = self.inlet + air_kw / (AIR_RHO * AIR_CP * airflow)
        self.exhaust = ex_target if self._first else lag(self.exhaust, ex_target, dt, p["air_tau"])
        # PSUs: shared between the feeds; one feed lost puts it all on the other.
        a_up = self.rack.feed_up(0)
        b_up = self.rack.feed_up(1)
        if a_up and b_up:
            self.psu = [self.ac_w * p["psu_share"], self.ac_w * (1.0 - p["psu_share"])]
        elif a_up:
            self.psu = [self.ac_w, 0.0]
        elif b_up:
            self.psu = [0.0, self.ac_w]
        else:
            self.psu = [0.0, 0.0]
        self._first = False


class Pdu:
    def __init__(self, rack, feed, name):
        self.rack, self.feed, self.name = rack, feed, name
        self.up = True
        self.energy_wh = float(rack.p["energy_wh"]) + 1000.0 * feed
        self.outlet_w = {}
        self.outlet_a = {}
        self.phase_w = {1: 0.0, 2: 0.0, 3: 0.0}
        self.phase_a = {1: 0.0, 2: 0.0, 3: 0.0}
        self.phase_v = {1: 0.0, 2: 0.0, 3: 0.0}
        self.power_w = 0.0

    def step(self, dt):
        p = self.rack.p
        pf = p["power_factor"]
        for ph in (1, 2, 3):
            self.phase_v[ph] = p["voltage"][ph - 1] if self.up else 0.0
            self.phase_w[ph] = 0.0
            self.phase_a[ph] = 0.0
        for s in self.rack.servers:
            w = s.psu[self.feed] if self.up else 0.0
            v = self.phase_v[s.phase]
            a = w / (v * pf) if v > 0 else 0.0
            self.outlet_w[s.index] = w
            self.outlet_a[s.index] = a
            # Losses in the PDU's busbars and cords are metered at the inlet.
            self.phase_w[s.phase] += w * (1.0 + p["pdu_loss"])
        if self.up:
            self.phase_w[1] += p["pdu_own_w"]
        for ph in (1, 2, 3):
            v = self.phase_v[ph]
            self.phase_a[ph] = self.phase_w[ph] / (v * pf) if v > 0 else 0.0
        self.power_w = sum(self.phase_w.values())
        self.energy_wh += self.power_w * dt / 3600.0


class Cdu:
    def __init__(self, loop):
        p = loop.p
        self.loop = loop
        self.rho, self.cp = COOLANTS[p["coolant"]]
        self.supply = p["setpoint"]
        self.speed = 0.8
        self.level = p["level"]
        self.flow = 0.0
        self.dp = 0.0
        self.q = 0.0
        self.ret = self.supply
        self.valve = 0.0
        self.fac_return = p["facility_supply"]
        self._first = True

    def kw_per_lpm_k(self):
        return self.rho * self.cp / 60000.0

    def step(self, dt):
        p = self.loop.p
        h = clamp(p["pump_health"], 0.0, 1.0)
        # Pump: head ~ (speed x health)^2, flow ~ speed x health on a fixed
        # system curve (affinity laws); an integral controller holds dP.
        self.dp = p["dp_max"] * (self.speed * h) ** 2
        self.speed = clamp(self.speed + p["pump_gain"] * (p["dp_setpoint"] - self.dp) * dt, 0.05, 1.0)
        self.dp = p["dp_max"] * (self.speed * h) ** 2
        self.flow = p["flow_max"] * self.speed * h
        # Heat into the loop: what every rack's servers' cold plates take.
        self.q = sum(s.q_liquid for s in self.loop.servers())
        # Supply: the valve opens to hold the setpoint; at full valve the heat
        # exchanger cannot take Q below facility + Q / UA_max. The loop's
        # coolant mass gives the supply its time constant.
        fac = p["facility_supply"]
        margin = p["setpoint"] - fac
        self.valve = clamp(self.q / (p["ua_max"] * margin), 0.0, 1.0) if margin > 0 else 1.0
        target = max(p["setpoint"], fac + self.q / p["ua_max"])
        self.supply = target if self._first else lag(self.supply, target, dt, p["loop_tau"])
        # Return = supply + Q / (m_dot cp).
        k = self.kw_per_lpm_k()
        self.ret = self.supply + (self.q / (k * self.flow) if self.flow > 0.5 else 0.0)
        fac_flow = max(p["facility_flow"] * self.valve, 1.0)
        self.fac_return = fac + self.q / (k * fac_flow)
        # Reservoir: a leak drains it.
        self.level = clamp(self.level - 100.0 * p["leak_lpm"] * dt / 60.0 / p["reservoir_l"], 0.0, 100.0)
        self._first = False

    def heat_from(self, supply, ret, flow):
        """The heat a CDU computes from its own sensors (what it reports)."""
        return self.kw_per_lpm_k() * (ret - supply) * flow


class Loop:
    """One CDU's secondary loop and the racks on it (one by default): the
    CDU takes the heat of every rack's servers, and every rack sees the
    loop's supply temperature. Parameters are shared by all racks."""

    def __init__(self, params=None, racks=1):
        p = copy.deepcopy(DEFAULTS)
        for k, v in (params or {}).items():
            if k not in DEFAULTS:
                raise ValueError(f"rack.{k}: unknown parameter (known: {', '.join(sorted(DEFAULTS))})")
            p[k] = v
        if p["coolant"] not in COOLANTS:
            raise ValueError(f"rack.coolant: '{p['coolant']}' is not one of {', '.join(COOLANTS)}")
        if not 1 <= int(p["servers"]) <= 32:
            raise ValueError("rack.servers: expected 1..32")
        if not 1 <= int(racks) <= 8:
            raise ValueError("racks: expected 1..8")
        p["servers"] = int(p["servers"])
        self.p = p
        self.t = 0.0
        self.ramps = []                     # (param, start_t, start_v, end_t, end_v)
        self.racks = [Rack(self, k, int(racks)) for k in range(1, int(racks) + 1)]
        self.cdu = Cdu(self)
        self.step(0.0)

    def servers(self):
        return [s for r in self.racks for s in r.servers]

    def set_param(self, name, value, over=0.0):
        if name not in DEFAULTS or name in FIXED:
            raise ValueError(f"set: '{name}' cannot be changed while running")
        if over and over > 0:
            self.ramps = [r for r in self.ramps if r[0] != name]
            self.ramps.append((name, self.t, float(self.p[name]), self.t + float(over), float(value)))
        else:
            self.p[name] = value

    def step(self, dt):
        self.t += dt
        for r in list(self.ramps):
            name, t0, v0, t1, v1 = r
            f = clamp((self.t - t0) / (t1 - t0), 0.0, 1.0)
            self.p[name] = v0 + (v1 - v0) * f
            if f >= 1.0:
                self.ramps.remove(r)
        for rack in self.racks:
            rack.step(dt)
        self.cdu.step(dt)

    def it_power_w(self):
        return sum(s.ac_w for s in self.servers())


class Rack:
    """One rack on a loop: its servers (BMCs) and its two PDU feeds. With
    several racks on the loop, rack k's id ends in k (sim-r01, sim-r02) and
    its devices are prefixed rNN- (r02-gpu1, r02-pdu-a)."""

    def __init__(self, loop, index=1, count=1):
        p = loop.p
        self.loop, self.p, self.index = loop, p, index
        if count == 1:
            self.id, self.prefix = p["id"], ""
        else:
            self.id, self.prefix = f"{p['id'].rstrip('0123456789')}{index:02d}", f"r{index:02d}-"
        self.jobs = {0: Job(0.0)}           # server index (0 = all) -> Job
        self.feeds_up = [True, True]
        self.servers = [Server(self, i) for i in range(1, p["servers"] + 1)]
        self.pdus = [Pdu(self, f, self.prefix + name) for f, name in enumerate(p["pdus"][:2])]

    @property
    def t(self):
        return self.loop.t

    @property
    def cdu(self):
        return self.loop.cdu

    def feed_up(self, feed):
        return feed < len(self.pdus) and self.feeds_up[feed]

    def job_for(self, index):
        return self.jobs.get(index, self.jobs[0])

    def set_job(self, servers, **kw):
        for i in servers or [0]:
            prev = self.job_for(i).base(self.t)
            self.jobs[i] = Job(self.t, prev=prev, **kw)
            if i == 0:   # a job on every server replaces per-server ones
                self.jobs = {0: self.jobs[0]}

    def step(self, dt):
        for s in self.servers:
            s.step(self.t, dt, self.loop.cdu.supply)
        for f, pdu in enumerate(self.pdus):
            pdu.up = self.feeds_up[f]
            pdu.step(dt)

    def it_power_w(self):
        return sum(s.ac_w for s in self.servers)
