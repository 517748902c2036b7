"""The resource trees the Redfish simulator serves, following DMTF's
published schemas (ServiceRoot, Chassis with EnvironmentMetrics, Sensors,
PowerSubsystem/ThermalSubsystem and the older Power/Thermal,
ThermalEquipment/CDUs (CoolingUnit, CoolantConnector, Pump, Reservoir,
LeakDetection, LeakDetector), PowerEquipment/RackPDUs (PowerDistribution,
Circuit, Outlet), SessionService, EventService, TelemetryService and
MetricReport).

build(kind, values, layout) returns {path: resource dict} for one device:
kind is tray, shelf, cdu, pdu or rack (all of them in one service). The
values are the device's current readings (see DEFAULTS); None makes a
reading absent (Reading: null), which a client must not take for zero.
layout "legacy" serves a tray's chassis without Sensors, EnvironmentMetrics
and the subsystems (only the older Power and Thermal resources), the way
older BMC firmware does; "subsystems" without Sensors (temperatures from
ThermalSubsystem's ThermalMetrics, supplies from PowerSubsystem); "moved" renames the CDU (CDUs/1 -> CDUs/A), a
service whose layout changed under a client.
"""

DEFAULTS = {
    "tray": {"power": 5200.0, "inlet_temp": 24.0, "exhaust_temp": 38.5,
             "gpu_temps": [61.0, 62.5, 60.0, 63.5], "gpu_power": [980.0, 1010.0, 995.0, 1002.0],
             "cpu_temp": 55.0, "psu_power": [2610.0, 2590.0], "fan_rpm": 9100.0},
    "shelf": {"power": 31500.0, "psu_power": [5250.0] * 6, "inlet_temp": 25.0},
    "cdu": {"supply_temp": 30.0, "return_temp": 40.0, "flow": 120.0,
            "supply_pressure": 310.0, "return_pressure": 225.0, "dp": 85.0,
            "facility_supply_temp": 22.0, "facility_return_temp": 33.0,
            "facility_flow": 140.0, "heat_removed": 83.4, "pump_speed": [62.5, 61.0],
            "level": 78.0, "leak": False, "oem_valve": 45.0},
    "pdu": {"inlets": [{"power": 21000.0, "current": 30.4, "voltage": 400.0, "energy": 123456.7},
                       {"power": 20500.0, "current": 29.6, "voltage": 400.0, "energy": 120001.2}],
            "breakers": [{"current": 14.2, "rating": 32.0}] * 6,
            "outlets": [450.0] * 12},
}

V1 = "/redfish/v1"


def odata(path, typ, **props):
    """A resource with its @odata.id and @odata.type."""
    d = {"@odata.id": path, "@odata.type": typ}
    d.update(props)
    return d


def status(state="Enabled", health="OK"):
    return {"State": state, "Health": health}


def collection(path, typ, name, members):
    return odata(path, "#%s.%s" % (typ, typ), Name=name,
                 Members=[{"@odata.id": m} for m in members],
                 **{"Members@odata.count": len(members)})


def reading(v, **extra):
    """A SensorExcerpt: Reading null when the value is absent."""
    d = {"Reading": v}
    d.update(extra)
    return d


def sensor(path, sid, name, rtype, units, ctx, value, **extra):
    st = status() if value is not None else status("Absent", None)
    return odata(path, "#Sensor.v1_7_0.Sensor", Id=sid, Name=name, ReadingType=rtype,
                 ReadingUnits=units, PhysicalContext=ctx, Reading=value, Status=st, **extra)


def add_tray(res, cid, v, layout):
    base = "%s/Chassis/%s" % (V1, cid)
    ch = odata(base, "#Chassis.v1_23_0.Chassis", Id=cid, Name="Compute tray %s" % cid,
               ChassisType="RackMount", Manufacturer="Contoso", Model="CT-4GPU",
               Status=status(), PowerState="On",
               Power={"@odata.id": base + "/Power"}, Thermal={"@odata.id": base + "/Thermal"})
    res[base] = ch
    gpus = v["gpu_temps"]
    if layout != "legacy":
        ch["EnvironmentMetrics"] = {"@odata.id": base + "/EnvironmentMetrics"}
        if layout != "subsystems":
            ch["Sensors"] = {"@odata.id": base + "/Sensors"}
        ch["PowerSubsystem"] = {"@odata.id": base + "/PowerSubsystem"}
        ch["ThermalSubsystem"] = {"@odata.id": base + "/ThermalSubsystem"}
        res[base + "/EnvironmentMetrics"] = odata(
            base + "/EnvironmentMetrics", "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
            Id="EnvironmentMetrics", Name="Tray environment",
            PowerWatts=reading(v["power"], DataSourceUri=base + "/Sensors/TotalPower"),
            TemperatureCelsius=reading(v["inlet_temp"]))
        sens = []
        def add(sid, *a, **k):
            p = base + "/Sensors/" + sid
            res[p] = sensor(p, sid, *a, **k)
            sens.append(p)
        add("TotalPower", "Tray input power", "Power", "W", "Chassis", v["power"])
        add("Intake", "Intake temperature", "Temperature", "Cel", "Intake", v["inlet_temp"])
        add("Exhaust", "Exhaust temperature", "Temperature", "Cel", "Exhaust", v["exhaust_temp"])
        add("CPU0Temp", "CPU 0 temperature", "Temperature", "Cel", "CPU", v["cpu_temp"])
        for i, t in enumerate(gpus):
            add("GPU%dTemp" % i, "GPU %d temperature" % i, "Temperature", "Cel", "GPU", t)
        for i, w in enumerate(v["gpu_power"]):
            add("GPU%dPower" % i, "GPU %d power" % i, "Power", "W", "GPU", w)
        for i, w in enumerate(v["psu_power"]):
            add("PSU%dInputPower" % i, "PSU %d input power" % i, "Power", "W", "PowerSupply", w)
        add("Fan0", "Fan 0", "Rotational", "RPM", "Fan", v["fan_rpm"])
        res[base + "/Sensors"] = collection(base + "/Sensors", "SensorCollection",
                                            "Sensors", sens)
        add_power_subsystem(res, base, v["psu_power"])
        tm = base + "/ThermalSubsystem/ThermalMetrics"
        res[base + "/ThermalSubsystem"] = odata(
            base + "/ThermalSubsystem", "#ThermalSubsystem.v1_3_0.ThermalSubsystem",
            Id="ThermalSubsystem", Name="Thermal subsystem", Status=status(),
            ThermalMetrics={"@odata.id": tm})
        res[tm] = odata(tm, "#ThermalMetrics.v1_3_0.ThermalMetrics", Id="ThermalMetrics",
                        Name="Tray temperatures",
                        TemperatureSummaryCelsius={"Intake": reading(v["inlet_temp"]),
                                                   "Exhaust": reading(v["exhaust_temp"])},
                        TemperatureReadingsCelsius=[
                            reading(t, DeviceName="GPU %d" % i, PhysicalContext="GPU",
                                    DataSourceUri=base + "/Sensors/GPU%dTemp" % i)
                            for i, t in enumerate(gpus)])
    res[base + "/Power"] = odata(
        base + "/Power", "#Power.v1_7_1.Power", Id="Power", Name="Power",
        PowerControl=[{"@odata.id": base + "/Power#/PowerControl/0", "MemberId": "0",
                       "Name": "Tray power", "PowerConsumedWatts": v["power"]}],
        PowerSupplies=[{"@odata.id": base + "/Power#/PowerSupplies/%d" % i, "MemberId": str(i),
                        "Name": "PSU %d" % i, "PowerInputWatts": w, "Status": status()}
                       for i, w in enumerate(v["psu_power"])])
    res[base + "/Thermal"] = odata(
        base + "/Thermal", "#Thermal.v1_7_1.Thermal", Id="Thermal", Name="Thermal",
        Temperatures=[{"@odata.id": base + "/Thermal#/Temperatures/%d" % i, "MemberId": str(i),
                       "Name": n, "ReadingCelsius": t, "PhysicalContext": c,
                       "Status": status() if t is not None else status("Absent", None)}
                      for i, (n, t, c) in enumerate(
                          [("Inlet Temp", v["inlet_temp"], "Intake"),
                           ("Exhaust Temp", v["exhaust_temp"], "Exhaust")] +
                          [("GPU%d Temp" % j, t, "GPU") for j, t in enumerate(gpus)])],
        Fans=[{"@odata.id": base + "/Thermal#/Fans/0", "MemberId": "0", "Name": "Fan 0",
               "Reading": v["fan_rpm"], "ReadingUnits": "RPM", "Status": status()}])
    return base


def add_power_subsystem(res, base, psus):
    ps = base + "/PowerSubsystem"
    res[ps] = odata(ps, "#PowerSubsystem.v1_1_2.PowerSubsystem", Id="PowerSubsystem",
                    Name="Power subsystem", Status=status(),
                    PowerSupplies={"@odata.id": ps + "/PowerSupplies"})
    members = []
    for i, w in enumerate(psus):
        p = "%s/PowerSupplies/%d" % (ps, i)
        res[p] = odata(p, "#PowerSupply.v1_6_0.PowerSupply", Id=str(i), Name="PSU %d" % i,
                       Status=status(), Metrics={"@odata.id": p + "/Metrics"})
        res[p + "/Metrics"] = odata(p + "/Metrics", "#PowerSupplyMetrics.v1_1_0.PowerSupplyMetrics",
                                    Id="Metrics", Name="PSU %d metrics" % i,
                                    InputPowerWatts=reading(w))
        members.append(p)
    res[ps + "/PowerSupplies"] = collection(ps + "/PowerSupplies", "PowerSupplyCollection",
                                            "Power supplies", members)


def add_shelf(res, cid, v):
    base = "%s/Chassis/%s" % (V1, cid)
    res[base] = odata(base, "#Chassis.v1_23_0.Chassis", Id=cid, Name="Power shelf %s" % cid,
                      ChassisType="Shelf", Manufacturer="Contoso", Model="PS-33kW",
                      Status=status(), PowerState="On",
                      EnvironmentMetrics={"@odata.id": base + "/EnvironmentMetrics"},
                      PowerSubsystem={"@odata.id": base + "/PowerSubsystem"},
                      Sensors={"@odata.id": base + "/Sensors"})
    res[base + "/EnvironmentMetrics"] = odata(
        base + "/EnvironmentMetrics", "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
        Id="EnvironmentMetrics", Name="Shelf environment", PowerWatts=reading(v["power"]))
    add_power_subsystem(res, base, v["psu_power"])
    p = base + "/Sensors/Intake"
    res[p] = sensor(p, "Intake", "Shelf intake temperature", "Temperature", "Cel", "Intake",
                    v["inlet_temp"])
    res[base + "/Sensors"] = collection(base + "/Sensors", "SensorCollection", "Sensors", [p])
    return base


def add_cdu(res, v, layout):
    cid = "A" if layout == "moved" else "1"
    te = V1 + "/ThermalEquipment"
    base = "%s/CDUs/%s" % (te, cid)
    res[te] = odata(te, "#ThermalEquipment.v1_1_1.ThermalEquipment", Id="ThermalEquipment",
                    Name="Cooling equipment", Status=status(),
                    CDUs={"@odata.id": te + "/CDUs"})
    res[te + "/CDUs"] = collection(te + "/CDUs", "CoolingUnitCollection", "CDUs", [base])
    res[base] = odata(
        base, "#CoolingUnit.v1_2_0.CoolingUnit", Id=cid, Name="Rack CDU", EquipmentType="CDU",
        Manufacturer="Contoso", Model="CDU-1350", Status=status(),
        Coolant={"CoolantType": "Water"},
        PrimaryCoolantConnectors={"@odata.id": base + "/PrimaryCoolantConnectors"},
        SecondaryCoolantConnectors={"@odata.id": base + "/SecondaryCoolantConnectors"},
        Pumps={"@odata.id": base + "/Pumps"}, Reservoirs={"@odata.id": base + "/Reservoirs"},
        LeakDetection={"@odata.id": base + "/LeakDetection"},
        Oem={"Contoso": {"@odata.type": "#ContosoCoolingUnit.v1_0_0.CoolingUnit",
                         "FacilityValvePercent": v["oem_valve"]}})

    def connector(coll, cid2, name, sup, ret, flow, extra):
        p = "%s/%s/%s" % (base, coll, cid2)
        res[p] = odata(p, "#CoolantConnector.v1_1_0.CoolantConnector", Id=cid2, Name=name,
                       CoolantConnectorType="Pair", Status=status(),
                       SupplyTemperatureCelsius=reading(sup),
                       ReturnTemperatureCelsius=reading(ret),
                       FlowLitersPerMinute=reading(flow), **extra)
        res["%s/%s" % (base, coll)] = collection("%s/%s" % (base, coll),
                                                 "CoolantConnectorCollection", name + "s", [p])

    connector("SecondaryCoolantConnectors", "1", "Rack loop", v["supply_temp"],
              v["return_temp"], v["flow"],
              {"SupplyPressurekPa": reading(v["supply_pressure"]),
               "ReturnPressurekPa": reading(v["return_pressure"]),
               "DeltaPressurekPa": reading(v["dp"]),
               "HeatRemovedkW": reading(v["heat_removed"])})
    connector("PrimaryCoolantConnectors", "1", "Facility loop", v["facility_supply_temp"],
              v["facility_return_temp"], v["facility_flow"], {})
    pumps = []
    for i, s in enumerate(v["pump_speed"]):
        p = "%s/Pumps/%d" % (base, i + 1)
        res[p] = odata(p, "#Pump.v1_1_0.Pump", Id=str(i + 1), Name="Pump %d" % (i + 1),
                       PumpType="Liquid", Status=status(), PumpSpeedPercent=reading(s))
        pumps.append(p)
    res[base + "/Pumps"] = collection(base + "/Pumps", "PumpCollection", "Pumps", pumps)
    r = base + "/Reservoirs/1"
    res[r] = odata(r, "#Reservoir.v1_0_0.Reservoir", Id="1", Name="Reservoir",
                   ReservoirType="Inline", Status=status(), FluidLevelPercent=reading(v["level"]))
    res[base + "/Reservoirs"] = collection(base + "/Reservoirs", "ReservoirCollection",
                                           "Reservoirs", [r])
    ld = base + "/LeakDetection"
    dets = []
    for i in range(2):
        p = "%s/LeakDetectors/%d" % (ld, i + 1)
        state = "Critical" if (v["leak"] and i == 0) else "OK"
        res[p] = odata(p, "#LeakDetector.v1_1_0.LeakDetector", Id=str(i + 1),
                       Name="Drip tray %d" % (i + 1), LeakDetectorType="Moisture",
                       DetectorState=state, Status=status())
        dets.append(p)
    res[ld + "/LeakDetectors"] = collection(ld + "/LeakDetectors", "LeakDetectorCollection",
                                            "Leak detectors", dets)
    res[ld] = odata(ld, "#LeakDetection.v1_1_0.LeakDetection", Id="LeakDetection",
                    Name="Leak detection", Status=status(),
                    LeakDetectors={"@odata.id": ld + "/LeakDetectors"})
    return base


def add_pdu(res, v):
    pe = V1 + "/PowerEquipment"
    base = pe + "/RackPDUs/1"
    res[pe] = odata(pe, "#PowerEquipment.v1_2_0.PowerEquipment", Id="PowerEquipment",
                    Name="Power equipment", Status=status(),
                    RackPDUs={"@odata.id": pe + "/RackPDUs"})
    res[pe + "/RackPDUs"] = collection(pe + "/RackPDUs", "PowerDistributionCollection",
                                       "Rack PDUs", [base])
    res[base] = odata(base, "#PowerDistribution.v1_3_0.PowerDistribution", Id="1",
                      Name="Rack PDU", EquipmentType="RackPDU", Manufacturer="Contoso",
                      Model="PDU-2x63A", Status=status(),
                      Mains={"@odata.id": base + "/Mains"},
                      Branches={"@odata.id": base + "/Branches"},
                      Outlets={"@odata.id": base + "/Outlets"})

    def circuits(coll, items, make):
        members = []
        for i, it in enumerate(items):
            p = "%s/%s/%d" % (base, coll, i + 1)
            res[p] = odata(p, "#Circuit.v1_7_0.Circuit", Id=str(i + 1), Status=status(),
                           **make(i, it))
            members.append(p)
        res["%s/%s" % (base, coll)] = collection("%s/%s" % (base, coll), "CircuitCollection",
                                                 coll, members)

    circuits("Mains", v["inlets"], lambda i, m: {
        "Name": "Inlet %d" % (i + 1), "CircuitType": "Mains", "PhaseWiringType": "ThreePhase4Wire",
        "PowerWatts": reading(m["power"]), "CurrentAmps": reading(m["current"]),
        "Voltage": reading(m["voltage"]), "EnergykWh": reading(m["energy"])})
    circuits("Branches", v["breakers"], lambda i, b: {
        "Name": "Branch %d" % (i + 1), "CircuitType": "Branch", "BreakerState": "Normal",
        "RatedCurrentAmps": b["rating"], "CurrentAmps": reading(b["current"])})
    members = []
    for i, w in enumerate(v["outlets"]):
        p = "%s/Outlets/%d" % (base, i + 1)
        res[p] = odata(p, "#Outlet.v1_4_0.Outlet", Id=str(i + 1), Name="Outlet %d" % (i + 1),
                       OutletType="C19", PowerState="On", Status=status(),
                       PowerWatts=reading(w),
                       CurrentAmps=reading(None if w is None else round(w / 230.0, 2)))
        members.append(p)
    res[base + "/Outlets"] = collection(base + "/Outlets", "OutletCollection", "Outlets", members)
    return base


def add_services(res, kind, chassis, sse_uri):
    root = odata(V1, "#ServiceRoot.v1_16_0.ServiceRoot", Id="RootService",
                 Name="rackpulse Redfish simulator (%s)" % kind, RedfishVersion="1.18.0",
                 UUID="92384634-2938-2342-8820-489239905423",
                 Vendor="rackpulse-sim",
                 ProtocolFeaturesSupported={
                     "ExpandQuery": {"ExpandAll": True, "Levels": True, "Links": True,
                                     "NoLinks": True, "MaxLevels": 2},
                     "SelectQuery": True, "FilterQuery": False, "OnlyMemberQuery": True},
                 Chassis={"@odata.id": V1 + "/Chassis"},
                 SessionService={"@odata.id": V1 + "/SessionService"},
                 EventService={"@odata.id": V1 + "/EventService"},
                 TelemetryService={"@odata.id": V1 + "/TelemetryService"},
                 Links={"Sessions": {"@odata.id": V1 + "/SessionService/Sessions"}})
    if V1 + "/ThermalEquipment" in res:
        root["ThermalEquipment"] = {"@odata.id": V1 + "/ThermalEquipment"}
    if V1 + "/PowerEquipment" in res:
        root["PowerEquipment"] = {"@odata.id": V1 + "/PowerEquipment"}
    res[V1] = root
    res[V1 + "/Chassis"] = collection(V1 + "/Chassis", "ChassisCollection", "Chassis", chassis)
    res[V1 + "/EventService"] = odata(
        V1 + "/EventService", "#EventService.v1_10_0.EventService", Id="EventService",
        Name="Event service", ServiceEnabled=True, Status=status(),
        ServerSentEventUri=sse_uri,
        Subscriptions={"@odata.id": V1 + "/EventService/Subscriptions"},
        Actions={"#EventService.SubmitTestEvent": {
            "target": V1 + "/EventService/Actions/EventService.SubmitTestEvent"}},
        SSEFilterPropertiesSupported={"EventFormatType": True, "MetricReportDefinition": True},
        EventFormatTypes=["Event", "MetricReport"])
    res[V1 + "/EventService/Subscriptions"] = collection(
        V1 + "/EventService/Subscriptions", "EventDestinationCollection", "Subscriptions", [])
    ts = V1 + "/TelemetryService"
    res[ts] = odata(ts, "#TelemetryService.v1_3_0.TelemetryService", Id="TelemetryService",
                    Name="Telemetry service", ServiceEnabled=True, Status=status(),
                    MetricReports={"@odata.id": ts + "/MetricReports"},
                    MetricReportDefinitions={"@odata.id": ts + "/MetricReportDefinitions"})
    mrd = ts + "/MetricReportDefinitions/Readings"
    res[mrd] = odata(mrd, "#MetricReportDefinition.v1_4_0.MetricReportDefinition",
                     Id="Readings", Name="Every reading", MetricReportDefinitionType="Periodic",
                     ReportActions=["RedfishEvent", "LogToMetricReportsCollection"],
                     Schedule={"RecurrenceInterval": "PT1S"}, Status=status())
    res[ts + "/MetricReportDefinitions"] = collection(
        ts + "/MetricReportDefinitions", "MetricReportDefinitionCollection",
        "Metric report definitions", [mrd])
    res[ts + "/MetricReports"] = collection(ts + "/MetricReports", "MetricReportCollection",
                                            "Metric reports", [ts + "/MetricReports/Readings"])


def build(kind, values, layout="", sse_uri=V1 + "/EventService/SSE"):
    """Every resource of one device (or a whole rack), keyed by path."""
    res = {}
    chassis = []
    if kind in ("tray", "rack"):
        chassis.append(add_tray(res, "Tray1", values["tray"], layout))
    if kind in ("shelf", "rack"):
        chassis.append(add_shelf(res, "PowerShelf1", values["shelf"]))
    if kind in ("cdu", "rack"):
        add_cdu(res, values["cdu"], layout)
    if kind in ("pdu", "rack"):
        add_pdu(res, values["pdu"])
    add_services(res, kind, chassis, sse_uri)
    return res


READING_KEYS = ("Reading", "PowerWatts", "ReadingCelsius", "PowerConsumedWatts",
                "PowerInputWatts")


def metric_report(res, seq, timestamp):
    """A MetricReport carrying every sensor excerpt's Reading of the tree:
    MetricProperty is the resource's URI with a JSON pointer to the value."""
    values = []

    def walk(uri, node, ptr):
        if isinstance(node, dict):
            if "Reading" in node and not isinstance(node["Reading"], (dict, list)):
                r = node["Reading"]   # an absent reading travels as null
                values.append({"MetricId": ptr.rsplit("/", 1)[-1] or "Reading",
                               "MetricValue": None if r is None else str(r),
                               "MetricProperty": "%s#%s/Reading" % (uri, ptr),
                               "Timestamp": timestamp})
                return
            for k, v in node.items():
                if not k.startswith("@") and k not in ("Oem", "Links", "Status"):
                    walk(uri, v, "%s/%s" % (ptr, k))

    for uri, r in sorted(res.items()):
        if not uri.startswith((V1 + "/ThermalEquipment/", V1 + "/PowerEquipment/")):
            continue   # the CDU's and PDU's readings are what reports carry here
        walk(uri, {k: v for k, v in r.items() if not k.startswith("@")}, "")
    return odata(V1 + "/TelemetryService/MetricReports/Readings",
                 "#MetricReport.v1_5_0.MetricReport", Id="Readings", Name="Every reading",
                 ReportSequence=str(seq), Timestamp=timestamp,
                 MetricReportDefinition={"@odata.id": V1 +
                                         "/TelemetryService/MetricReportDefinitions/Readings"},
                 MetricValues=values)
