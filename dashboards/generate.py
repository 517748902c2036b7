#!/usr/bin/env python3
"""Writes the rackpulse Grafana dashboards (dashboards/*.json).

The JSON files are committed; this program is where they are edited. Every
metric name, series name and label the dashboards use is in METRICS and
SERIES below, so a renamed or new aggregator metric (aggregator/metrics.c)
is one edit here, then:

    python3 dashboards/generate.py           # rewrite the JSON files
    python3 dashboards/generate.py --check   # exit 1 if they are out of date

Panels exist only for metrics the aggregator exports today; what is still
missing (the Kafka consumer lag) is listed in dashboards/README.md. Panels
over rackpulse_value/rackpulse_window need the aggregator's opt-in
`metrics: {series: true}`, per-device panels `metrics: {devices: true}`; the
per-rack panels (headroom, devices down, flags, age) need neither.
"""
import json
import os
import sys

DATASOURCE = {"type": "prometheus", "uid": "rackpulse-prometheus"}
SCHEMA_VERSION = 39

# Metrics of the aggregator's /metrics (aggregator/metrics.c).
METRICS = {
    "value": "rackpulse_value",                      # {rack,series,device,unit,...}
    "window": "rackpulse_window",                    # {rack,series,device,window,stat}
    "rack_age": "rackpulse_rack_age_seconds",        # {rack}
    "device_up": "rackpulse_device_up",              # {rack,device,kind} (metrics.devices)
    "devices_down": "rackpulse_rack_devices_down",   # {rack}
    "scrape_ms": "rackpulse_device_scrape_ms",       # {rack,device,kind}
    "agent_frames": "rackpulse_agent_frames_total",  # {agent,rack}
    "agent_gaps": "rackpulse_agent_gaps_total",
    "agent_duplicates": "rackpulse_agent_duplicates_total",
    "agent_undecodable": "rackpulse_agent_undecodable_samples_total",
    "agent_incarnations": "rackpulse_agent_incarnations_total",
    "agent_unknown_dict": "rackpulse_agent_unknown_dictionary_frames_total",
    "ingest_frames": "rackpulse_ingest_frames_total",  # {outcome}
    "ingest_samples": "rackpulse_ingest_samples_total",
    "ingest_batches": "rackpulse_ingest_batches_total",
    "ingest_batch_frames": "rackpulse_ingest_batch_frames",
    "ingest_apply": "rackpulse_ingest_apply_seconds",
    "ingest_lag": "rackpulse_ingest_lag_seconds",
    "frame_lag": "rackpulse_ingest_frame_lag_seconds",  # histogram
    "store_used": "rackpulse_store_used_bytes",
    "store_map": "rackpulse_store_map_bytes",
    "store_map_max": "rackpulse_store_map_max_bytes",
    "store_grows": "rackpulse_store_map_grows_total",
    "gate_decisions": "rackpulse_gate_decisions_total",  # {decision}
    "gate_denials": "rackpulse_gate_denials_total",      # {check}
    "audit_dropped": "rackpulse_audit_dropped_total",    # decisions not kept
    "flag_active": "rackpulse_flag_active",              # {rack,flag,owner}
    # Thermal SLOs of the policy's `slo` section (aggregator/slo.c).
    "slo_budget": "rackpulse_slo_budget_remaining_ratio",  # {rack,objective}
    "slo_burn": "rackpulse_slo_burn_rate",                 # {rack,objective}
    "reservation_kw": "rackpulse_reservation_kw",        # {owner,kind=reserved|used}
    "deploy_event": "rackpulse_deploy_event_timestamp_seconds",  # {rack,kind,deploy_id}
    "energy_kwh": "rackpulse_energy_kwh_total",          # {owner,source=measured|estimated}
    "energy_cost": "rackpulse_energy_cost_total",        # {owner} at the policy's tariff
    "reservation_hours": "rackpulse_reservation_hours_total",  # {owner}
    # Per rack, from the aggregator's once-a-second evaluation (aggregator/floor.c).
    "rack_info": "rackpulse_rack_info",                  # {rack,row,loop,pool} 1
    "headroom": "rackpulse_rack_headroom_kw",            # {rack,kind=power|thermal}
    "power_limit": "rackpulse_rack_power_limit_kw",      # {rack} breaker x derating
    "draw": "rackpulse_rack_draw_kw",                    # {rack}
    "committed": "rackpulse_rack_committed_kw",          # {rack} the gate's committed kW
    "reserved": "rackpulse_rack_reserved_kw",            # {rack}
    "check_failing": "rackpulse_rack_check_failing",     # {rack,check} 1
    "spool_depth": "rackpulse_agent_spool_depth",        # {agent,rack}
    "frames_dropped": "rackpulse_agent_frames_dropped_total",
    "delivery_latency": "rackpulse_agent_delivery_latency_seconds",
}

# Series names (agent configs and profiles; derived series from agent/edge.h).
SERIES = {
    "supply": "cdu.supply_temp",
    "return": "cdu.return_temp",
    "delta_t": "cdu.delta_t",          # derived: return - supply
    "heat_removed": "cdu.heat_removed",  # derived: flow x cp x delta T, kW
    "flow": "cdu.flow",
    "alarms": "cdu.alarms",            # bitfield, one series per alarm label
    "server_power": "server.power",    # IPMI: DCMI or the PSU sum, W
}

M, S = METRICS, SERIES
RACK = 'rack=~"$rack"'


def value(series, extra=""):
    """rackpulse_value of one series, or of several: value("a|b") matches either."""
    op = "=~" if "|" in series else "="
    return '%s{%s,series%s"%s"%s}' % (M["value"], RACK, op, series, extra)


def window(series, stat):
    return '%s{%s,series="%s",stat=~"%s"}' % (M["window"], RACK, series, stat)


RACK_POWER_KW = 'sum by (rack) (%s) / 1000' % value(S["server_power"], ',unit="W"')
# The tighter of power and thermal headroom per rack, with its row and loop.
TIGHTER_HEADROOM = ('min by (rack) (%s{%s}) * on (rack) group_left (row, loop) %s'
                    % (M["headroom"], RACK, M["rack_info"]))
HEADROOM_THRESHOLDS = [{"color": "red", "value": None}, {"color": "orange", "value": 0},
                       {"color": "yellow", "value": 5}, {"color": "green", "value": 20}]


# --- panels ---------------------------------------------------------------

def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    return {"datasource": DATASOURCE, "refId": ref, "expr": expr, "legendFormat": legend or "__auto",
            "range": not instant, "instant": instant, "format": fmt, "editorMode": "code"}


def panel(kind, title, desc, targets, unit="short", w=12, h=8, decimals=None, min_=None,
          max_=None, options=None, custom=None, thresholds=None, mappings=None):
    defaults = {"unit": unit, "color": {"mode": "palette-classic"}, "mappings": mappings or []}
    if decimals is not None:
        defaults["decimals"] = decimals
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
        defaults["color"] = {"mode": "thresholds"}
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0,
                              "showPoints": "never", "spanNulls": False}
    if custom:
        defaults.setdefault("custom", {}).update(custom)
    p = {"type": kind, "title": title, "description": desc, "datasource": DATASOURCE,
         "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
         "_size": (w, h)}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                        "orientation": "auto", "textMode": "auto"}
    elif kind == "state-timeline":
        p["options"] = {"showValue": "never", "mergeValues": True, "rowHeight": 0.9,
                        "alignValue": "left", "legend": {"showLegend": True,
                                                         "displayMode": "list",
                                                         "placement": "bottom"},
                        "tooltip": {"mode": "single", "sort": "none"}}
    elif kind in ("bargauge", "table"):
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
        if kind == "table":
            p["options"] = {"cellHeight": "sm", "footer": {"show": False}}
            p["transformations"] = [{"id": "organize", "options": {"excludeByName": {
                                        "Time": True, "Value": True, "__name__": True,
                                        "instance": True, "job": True}}}]
    if options:
        p["options"].update(options)
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


UP_MAPPING = [{"type": "value", "options": {"0": {"text": "down", "color": "red", "index": 0},
                                           "1": {"text": "up", "color": "green", "index": 1}}}]
ALARM_MAPPING = [{"type": "value", "options": {"0": {"text": "clear", "color": "green", "index": 0},
                                              "1": {"text": "ACTIVE", "color": "red", "index": 1}}}]
AGE_THRESHOLDS = [{"color": "green", "value": None}, {"color": "orange", "value": 5},
                  {"color": "red", "value": 10}]


def rack_variable(name="rack", metric=None, label="rack"):
    q = "label_values(%s, %s)" % (metric or M["rack_age"], label)
    return {"name": name, "label": label.capitalize(), "type": "query", "datasource": DATASOURCE,
            "query": {"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery",
                      "qryType": 1},
            "definition": q, "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [], "sort": 1, "hide": 0, "regex": "", "skipUrlSync": False}


def deploy_annotation():
    # Deploys and decisions on the racks' time series: each rack's newest
    # event of a kind (a gate with a deploy id, a canary's start and verdict,
    # an override, a change) at the time it happened (the value is its Unix
    # time, so Grafana places the mark there, not at the scrape).
    return {"name": "Deploys", "datasource": DATASOURCE, "enable": True, "hide": False,
            "iconColor": "rgba(255, 152, 48, 1)", "useValueForTime": True, "step": "10s",
            "expr": "%s{%s} * 1000" % (M["deploy_event"], RACK),
            "titleFormat": "{{kind}} {{deploy_id}}", "textFormat": "rack {{rack}}",
            "tagKeys": "rack,kind,deploy_id"}


def dashboard(uid, title, desc, panels, variables, annotations=()):
    # Lay the panels out left to right, top to bottom, and number them.
    x = y = rowh = 0
    out = []
    for i, p in enumerate(panels, 1):
        w, h = p.pop("_size")
        if x + w > 24:
            x, y, rowh = 0, y + rowh, 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        rowh = max(rowh, h)
        if p["type"] == "row":
            x, y, rowh = 0, y + h, 0
        out.append(p)
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["rackpulse"],
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-1h", "to": "now"}, "timezone": "browser", "refresh": "10s",
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "timepicker": {}, "id": None,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}] + list(annotations)},
        "links": [{"type": "dashboards", "tags": ["rackpulse"], "asDropdown": True,
                   "title": "rackpulse", "includeVars": True, "keepTime": True,
                   "icon": "external link", "targetBlank": False, "tooltip": "", "url": ""}],
        "templating": {"list": variables},
        "panels": out,
    }


# --- the dashboards -------------------------------------------------------

def rack_overview():
    panels = [
        panel("stat", "Floor heat map: tighter headroom per rack, kW",
              "Each rack (by row and cooling loop from the policy) coloured by the tighter of "
              "its power and thermal headroom at 0 kW requested: red below 0 (over its "
              "limit), orange under 5 kW, green from 20 kW. A rack without data has no tile: "
              "see `rackpulsectl status` for what is missing.",
              [target(TIGHTER_HEADROOM, "{{row}} {{loop}} {{rack}}", instant=True)],
              unit="kwatt", w=24, h=7, decimals=1, thresholds=HEADROOM_THRESHOLDS,
              options={"colorMode": "background", "graphMode": "none",
                       "textMode": "value_and_name", "orientation": "horizontal",
                       "wideLayout": True}),
        panel("timeseries", "Headroom, kW",
              "Power headroom (breaker x derating - draw - reservations - margin) and thermal "
              "headroom (CDU capacity - heat removed) per rack, as the deploy gate computes "
              "them.",
              [target('%s{%s}' % (M["headroom"], RACK), "{{rack}} {{kind}}")], unit="kwatt",
              w=12, thresholds=HEADROOM_THRESHOLDS),
        panel("timeseries", "Power: limit, committed, reserved, kW",
              "The derated breaker limit, the power the gate counts as committed (other owners' "
              "reservations at the larger of reserved and measured, plus draw not accounted "
              "to them) and the reservations alone.",
              [target('%s{%s}' % (M["power_limit"], RACK), "{{rack}} limit"),
               target('%s{%s}' % (M["committed"], RACK), "{{rack}} committed", ref="B"),
               target('%s{%s}' % (M["reserved"], RACK), "{{rack}} reserved", ref="C")],
              unit="kwatt", w=12),
        panel("stat", "Telemetry age",
              "Seconds since each rack's newest frame. Gates fail closed beyond the policy's "
              "max_staleness.",
              [target('%s{%s}' % (M["rack_age"], RACK), "{{rack}}")], unit="s", w=8, h=5,
              decimals=1, thresholds=AGE_THRESHOLDS),
        panel("stat", "Devices down",
              "Devices whose last scrape failed, per rack.",
              [target('%s{%s}' % (M["devices_down"], RACK), "{{rack}}")],
              w=8, h=5, thresholds=[{"color": "green", "value": None},
                                    {"color": "red", "value": 1}]),
        panel("stat", "CDU supply temperature",
              "Latest CDU secondary supply temperature (the deploy gate's supply_temp input).",
              [target(value(S["supply"]), "{{rack}} {{device}}")], unit="celsius", w=8, h=5,
              decimals=1),
        panel("timeseries", "Rack power (servers), kW",
              "Sum of the servers' power readings over IPMI (DCMI, else the PSU sum); the "
              "derated limit and headroom are in the panels above.",
              [target(RACK_POWER_KW, "{{rack}}")], unit="kwatt", w=12),
        panel("timeseries", "Heat removed vs power, kW",
              "Heat carried away by the CDU loop (derived: flow x cp x delta T) next to the "
              "servers' electrical power.",
              [target('sum by (rack) (%s)' % value(S["heat_removed"]), "{{rack}} heat removed"),
               target(RACK_POWER_KW, "{{rack}} power", ref="B")], unit="kwatt", w=12),
        panel("timeseries", "Supply and return temperature",
              "CDU secondary loop temperatures.",
              [target(value("%s|%s" % (S["supply"], S["return"])),
                      "{{rack}} {{device}} {{series}}")],
              unit="celsius", w=12),
        panel("timeseries", "Flow",
              "CDU secondary loop flow.",
              [target(value(S["flow"]), "{{rack}} {{device}}")], unit="flowlpm", w=12),
        panel("timeseries", "Reservations: reserved vs used, kW",
              "Active power reservations per owner (all racks), and what their hosts or "
              "outlets draw.",
              [target('sum by (owner, kind) (%s)' % M["reservation_kw"], "{{owner}} {{kind}}")],
              unit="kwatt", w=24),
        panel("timeseries", "Cost per training hour",
              "Per owner: the cost of its reservations' energy (measured draw, or the reserved "
              "kW while not measured, at the policy's tariff) per hour of reservation over the "
              "last hour.",
              [target('sum by (owner) (increase(%s[1h])) / sum by (owner) (increase(%s[1h]))'
                      % (M["energy_cost"], M["reservation_hours"]), "{{owner}}")],
              unit="currencyEUR", w=12),
        panel("timeseries", "Reservation energy, kWh per hour",
              "Per owner and source: energy of reservations, measured or estimated.",
              [target('sum by (owner, source) (rate(%s[5m])) * 3600' % M["energy_kwh"],
                      "{{owner}} {{source}}")],
              unit="kwatt", w=12),
    ]
    return dashboard("rackpulse-rack-overview", "rackpulse / Rack overview",
                     "Power, heat and freshness of each rack.", panels, [rack_variable()],
                     [deploy_annotation()])


def thermal():
    dev = 'device=~"$device"'
    panels = [
        row("Temperatures"),
        panel("timeseries", "Supply and return temperature",
              "CDU secondary loop supply and return.",
              [target('%s{%s,%s,series=~"%s|%s"}' % (M["value"], RACK, dev, S["supply"],
                                                      S["return"]),
                      "{{rack}} {{device}} {{series}}")], unit="celsius", w=12),
        panel("timeseries", "Delta T (return - supply)",
              "Derived by the agent from the latest return and supply temperatures.",
              [target(value(S["delta_t"]), "{{rack}}")], unit="kelvin", w=12),
        panel("timeseries", "Supply temperature slope",
              "Least-squares slope of the supply temperature over each window (per minute).",
              [target(window(S["supply"], "slope_per_min"), "{{rack}} {{device}} {{window}}s")],
              unit="short", w=12, custom={"axisLabel": "K/min"}),
        panel("timeseries", "Supply temperature p95 / p99",
              "Rolling percentiles of the supply temperature over each window (edge statistics).",
              [target(window(S["supply"], "p95|p99"), "{{rack}} {{device}} {{stat}} {{window}}s")],
              unit="celsius", w=12),
        row("Heat and flow"),
        panel("timeseries", "Heat removed",
              "Derived: flow x coolant density x specific heat x delta T.",
              [target(value(S["heat_removed"]), "{{rack}}")], unit="kwatt", w=8),
        panel("timeseries", "Heat balance (heat removed / power)",
              "Near 1 when the loop removes what the servers draw; a drift exposes a failing "
              "sensor or heat going to air.",
              [target('sum by (rack) (%s) / (%s)' % (value(S["heat_removed"]), RACK_POWER_KW),
                      "{{rack}}")], unit="percentunit", w=8, decimals=2),
        panel("timeseries", "Flow",
              "CDU secondary loop flow (L/min).",
              [target('%s{%s,%s,series="%s"}' % (M["value"], RACK, dev, S["flow"]),
                      "{{rack}} {{device}}")], unit="flowlpm", w=8),
        panel("timeseries", "Flow stability (stddev)",
              "Standard deviation of the flow over each window: a pump or valve hunting shows "
              "here first.",
              [target(window(S["flow"], "stddev"), "{{rack}} {{device}} {{window}}s")],
              unit="flowlpm", w=12),
        panel("timeseries", "Delta T window mean",
              "Mean delta T over each window.",
              [target(window(S["delta_t"], "mean"), "{{rack}} {{window}}s")], unit="kelvin",
              w=12),
    ]
    devices = rack_variable("device", '%s{%s,series=~"cdu.*"}' % (M["value"], RACK), "device")
    return dashboard("rackpulse-thermal", "rackpulse / Thermal",
                     "CDU loop temperatures, delta T, slope, heat removed, heat balance and flow.",
                     panels, [rack_variable(), devices], [deploy_annotation()])


def gates():
    panels = [
        row("Decisions"),
        panel("timeseries", "Gate decisions",
              "Gate answers per second, allow and deny (all racks), and decisions the audit "
              "log could not keep (should stay 0).",
              [target('sum by (decision) (rate(%s[$__rate_interval]))' % M["gate_decisions"],
                      "{{decision}}"),
               target('rate(%s[$__rate_interval])' % M["audit_dropped"], "not audited", ref="B")],
              unit="reqps", w=12),
        panel("bargauge", "Denials by failing check",
              "Denials in the dashboard's time range, by the check that failed (a denial may "
              "count under several).",
              [target('sum by (check) (increase(%s[$__range]))' % M["gate_denials"], "{{check}}",
                      instant=True)], w=12,
              options={"orientation": "horizontal", "displayMode": "gradient",
                       "showUnfilled": True}),
        panel("table", "Active flags",
              "Thermal flags set on racks (scale-back, pause-admissions, evacuate, maintenance), "
              "with their owner.",
              [target('%s{%s} == 1' % (M["flag_active"], RACK), "", instant=True, fmt="table")],
              w=24, h=6,
              options={"showHeader": True}),
        row("Thermal SLOs"),
        panel("timeseries", "SLO error budget left",
              "Share of each thermal objective's budget of time above its threshold still left "
              "in its period (policy `slo`; below 0: overspent).",
              [target('%s{%s}' % (M["slo_budget"], RACK), "{{rack}} {{objective}}")],
              unit="percentunit", w=12),
        panel("timeseries", "SLO burn rate",
              "Error-budget burn rate over each objective's burn window: 1 spends the budget "
              "exactly over the period.",
              [target('%s{%s}' % (M["slo_burn"], RACK), "{{rack}} {{objective}}")], w=12),
        row("Gate inputs"),
        panel("timeseries", "Telemetry age (telemetry_fresh)",
              "Seconds since the rack's newest frame: the telemetry_fresh check denies beyond "
              "policy.max_staleness.",
              [target('%s{%s}' % (M["rack_age"], RACK), "{{rack}}")], unit="s", w=12),
        panel("timeseries", "Supply temperature (supply_temp)",
              "The supply_temp check denies above policy.supply_temp_max.",
              [target(value(S["supply"]), "{{rack}} {{device}}")], unit="celsius", w=12),
        row("Device alarms"),
        panel("state-timeline", "CDU alarms",
              "Alarm bits reported by the CDUs (leak, pump fault, ...).",
              [target(value(S["alarms"]), "{{rack}} {{device}} {{alarm}}")], w=12,
              mappings=ALARM_MAPPING, thresholds=[{"color": "green", "value": None},
                                                  {"color": "red", "value": 1}]),
        panel("state-timeline", "Devices up",
              "A device that stops answering takes its series out of the gate's inputs.",
              [target('%s{%s}' % (M["device_up"], RACK), "{{rack}} {{device}}")], w=12,
              mappings=UP_MAPPING, thresholds=[{"color": "red", "value": None},
                                               {"color": "green", "value": 1}]),
    ]
    return dashboard("rackpulse-gates", "rackpulse / Gates and flags",
                     "Gate decisions and denials, active flags, and what the checks read.",
                     panels, [rack_variable()], [deploy_annotation()])


def agent_health():
    agent_sel = RACK
    panels = [
        row("Devices"),
        panel("state-timeline", "Device up",
              "1 when the device's last scrape succeeded.",
              [target('%s{%s}' % (M["device_up"], RACK), "{{rack}} {{device}} ({{kind}})")],
              w=12, mappings=UP_MAPPING, thresholds=[{"color": "red", "value": None},
                                                     {"color": "green", "value": 1}]),
        panel("timeseries", "Scrape duration",
              "Duration of each device's last scrape.",
              [target('%s{%s}' % (M["scrape_ms"], RACK), "{{rack}} {{device}}")], unit="ms",
              w=12),
        row("Agents"),
        panel("timeseries", "Telemetry age",
              "Seconds since each rack's newest frame.",
              [target('%s{%s}' % (M["rack_age"], RACK), "{{rack}}")], unit="s", w=8,
              thresholds=AGE_THRESHOLDS),
        panel("timeseries", "Frames applied per agent",
              "Frames per second applied to the store, per agent.",
              [target('rate(%s{%s}[$__rate_interval])' % (M["agent_frames"], agent_sel),
                      "{{agent}}")], unit="reqps", w=8),
        panel("timeseries", "Sequence gaps, duplicates, undecodable samples",
              "Per agent, over the last hour: frames never received, received twice, "
              "samples that arrived before their dictionary, frames skipped for an unknown "
              "dictionary hash, and new incarnations (the agent's state was reset, e.g. a "
              "re-imaged host).",
              [target('increase(%s{%s}[1h])' % (M["agent_gaps"], agent_sel), "{{agent}} gaps"),
               target('increase(%s{%s}[1h])' % (M["agent_duplicates"], agent_sel),
                      "{{agent}} duplicates", ref="B"),
               target('increase(%s{%s}[1h])' % (M["agent_undecodable"], agent_sel),
                      "{{agent}} undecodable", ref="C"),
               target('increase(%s{%s}[1h])' % (M["agent_unknown_dict"], agent_sel),
                      "{{agent}} unknown dictionary", ref="D"),
               target('increase(%s{%s}[1h])' % (M["agent_incarnations"], agent_sel),
                      "{{agent}} new incarnations", ref="E")], w=8),
        panel("timeseries", "Agent spool and delivery",
              "From each agent's newest frame: frames in its spool not yet delivered (growing "
              "while Kafka is away), frames dropped from a full spool, and the delivery latency "
              "of its last frame.",
              [target('%s{%s}' % (M["spool_depth"], agent_sel), "{{agent}} spool depth"),
               target('increase(%s{%s}[1h])' % (M["frames_dropped"], agent_sel),
                      "{{agent}} dropped (1h)", ref="B"),
               target('%s{%s} * 1000' % (M["delivery_latency"], agent_sel),
                      "{{agent}} delivery latency ms", ref="C")], w=24),
        row("Aggregator ingest"),
        panel("timeseries", "Frames read, by outcome",
              "applied, duplicate (ignored) and invalid (undecodable, skipped).",
              [target('sum by (outcome) (rate(%s[$__rate_interval]))' % M["ingest_frames"],
                      "{{outcome}}")], unit="reqps", w=8),
        panel("timeseries", "Samples applied",
              "Samples per second in applied frames.",
              [target('rate(%s[$__rate_interval])' % M["ingest_samples"], "samples/s")],
              unit="short", w=8),
        panel("timeseries", "Ingest lag",
              "Now minus the newest applied frame's time, and the p99 of frame time to "
              "visible commit.",
              [target(M["ingest_lag"], "newest frame"),
               target('histogram_quantile(0.99, sum by (le) (rate(%s_bucket[$__rate_interval])))'
                      % M["frame_lag"], "p99 frame to commit", ref="B")], unit="s", w=8),
        panel("timeseries", "Batches",
              "LMDB write transactions per second, frames in the last one, and its duration.",
              [target('rate(%s[$__rate_interval])' % M["ingest_batches"], "batches/s"),
               target(M["ingest_batch_frames"], "frames in last batch", ref="B"),
               target(M["ingest_apply"], "last batch seconds", ref="C")], w=12),
        panel("timeseries", "Store",
              "LMDB map size, bytes in use and the largest map allowed.",
              [target(M["store_used"], "used"), target(M["store_map"], "map", ref="B"),
               target(M["store_map_max"], "map max", ref="C")], unit="bytes", w=12),
    ]
    return dashboard("rackpulse-agent-health", "rackpulse / Agent health",
                     "Devices, agents and the aggregator's ingest.", panels, [rack_variable()])


DASHBOARDS = {
    "rack-overview.json": rack_overview,
    "thermal.json": thermal,
    "gates-flags.json": gates,
    "agent-health.json": agent_health,
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    check = "--check" in sys.argv[1:]
    stale = []
    for name, make in DASHBOARDS.items():
        text = json.dumps(make(), indent=2) + "\n"
        path = os.path.join(here, name)
        if check:
            try:
                with open(path) as f:
                    if f.read() != text:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("out of date (run python3 dashboards/generate.py): " + " ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
