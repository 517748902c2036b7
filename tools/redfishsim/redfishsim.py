#!/usr/bin/python3
"""A Redfish service simulator: the test peer of the agent's Redfish
collector (and a way to try it without hardware). Python from Debian only
(http.server, ssl, threads; openssl for the certificate).

Each --device KIND:NAME is one Redfish service on its own port of
127.0.0.1 (a BMC): KIND is tray (a compute tray: Chassis with
EnvironmentMetrics, Sensors, PowerSubsystem, ThermalSubsystem, the older
Power and Thermal), shelf (a power shelf), cdu (ThermalEquipment/CDUs/1),
pdu (PowerEquipment/RackPDUs/1) or rack (all of them behind one service).
--devices KIND:COUNT:PREFIX adds COUNT devices named PREFIX1... (benchmarks).
The ports chosen are written to --ports-out as {"name": port}, and with
--agent-yaml the agent's `redfish:` list for them (certificate verified).

Every service speaks HTTPS (TLS 1.2+, HTTP/1.1 keep-alive) with a
certificate made at start by openssl (self-signed, SAN 127.0.0.1 and
localhost, written to --tls-dir as cert.pem and key.pem) or given with
--cert/--key; basic authentication and SessionService sessions
(POST /redfish/v1/SessionService/Sessions -> X-Auth-Token and Location;
DELETE ends one; idle sessions expire after --session-timeout);
$expand (.,*,~ with $levels up to 2) and $select as ServiceRoot's
ProtocolFeaturesSupported says; ETags on every GET and If-None-Match ->
304; EventService's ServerSentEventUri streams MetricReports
(TelemetryService) every --sse-interval seconds.

A test steers it through the --control file (JSON, re-read when it
changes): {"NAME" or "*": {"values": {...}, "layout": "", "faults": {...}}}.
values override the device's readings (resources.DEFAULTS; null = absent).
layout: "legacy" (a tray without Sensors/EnvironmentMetrics/subsystems),
"subsystems" (a tray without Sensors) or
"moved" (the CDU becomes CDUs/A). Faults, each true (every resource) or a
path substring (the resources whose path holds it):
  slow_ms: N         answer after N ms (slow_path: only paths holding it)
  status_503: ...    503 Service Unavailable with Retry-After
  malformed: ...     a JSON body cut in the middle
  hang: ...          read the request, never answer (the socket stays open)
  expire_sessions: N each new N drops every session (-> 401 on the next use)
  sse_stop: true     SSE streams end, new ones get 503
GET /_sim/stats (no auth) answers counters: connections, requests, logins,
logouts, unauthorized, expand, select, not_modified, sse_clients, GETs
per path and the session tokens issued (so a test can look for them where they must not be).

The user and password are --user and --password-file (the password's
first line). What this simulator does not cover: writes other than
sessions (PATCH, actions), EventService subscriptions by POST,
$filter, $skip/$top paging, Redfish's OEM-specific auth schemes,
TLS client certificates, and HTTP/2.
"""
import argparse
import base64
import copy
import hashlib
import json
import os
import secrets
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resources  # noqa: E402

V1 = resources.V1
SSE_URI = V1 + "/EventService/SSE"
SESSIONS = V1 + "/SessionService/Sessions"


def make_cert(tls_dir):
    os.makedirs(tls_dir, exist_ok=True)
    cert, key = os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-keyout", key, "-out", cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def same(a, b):
    """Constant-time comparison of two texts (any characters)."""
    return secrets.compare_digest(a.encode("utf-8", "surrogateescape"),
                                  b.encode("utf-8", "surrogateescape"))


class Control:
    """The --control file, re-read when its modification time changes."""

    def __init__(self, path):
        self.path, self.mtime, self.data = path, None, {}
        self.lock = threading.Lock()

    def get(self, name):
        with self.lock:
            if self.path:
                try:
                    m = os.stat(self.path).st_mtime_ns
                    if m != self.mtime:
                        with open(self.path, encoding="utf-8") as f:
                            self.data = json.load(f)
                        self.mtime = m
                except (OSError, ValueError):
                    pass
            d = {}
            for k in ("*", name):
                for key, v in (self.data.get(k) or {}).items():
                    d[key] = v if not isinstance(v, dict) else {**d.get(key, {}), **v}
            return d


class Device:
    """One simulated service: its kind, sessions and counters."""

    def __init__(self, kind, name, opts, control):
        self.kind, self.name, self.opts, self.control = kind, name, opts, control
        self.sessions = {}   # token -> [id, last use]
        self.next_session = 1
        self.expire_gen = 0
        self.lock = threading.Lock()
        self.stats = {"connections": 0, "requests": 0, "logins": 0, "logouts": 0,
                      "unauthorized": 0, "expand": 0, "select": 0, "not_modified": 0,
                      "sse_clients": 0, "tokens": [], "gets": {}}
        self.seq = 0

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def state(self):
        c = self.control.get(self.name)
        vals = copy.deepcopy(resources.DEFAULTS)
        for k, v in (c.get("values") or {}).items():
            for part in vals.values():
                if k in part:
                    part[k] = v
        return c, vals

    def tree(self):
        c, vals = self.state()
        return c, resources.build(self.kind, vals, c.get("layout", ""), SSE_URI)

    def fault(self, c, key, path):
        f = (c.get("faults") or {}).get(key)
        if f is True:
            return True
        return isinstance(f, str) and f in path

    def check_expiry(self, c):
        gen = (c.get("faults") or {}).get("expire_sessions", 0)
        now = time.monotonic()
        with self.lock:
            if gen != self.expire_gen:
                self.expire_gen = gen
                self.sessions.clear()
            for t in [t for t, s in self.sessions.items()
                      if now - s[1] > self.opts.session_timeout]:
                del self.sessions[t]

    def authorized(self, headers):
        tok = headers.get("X-Auth-Token")
        with self.lock:
            if tok and tok in self.sessions:
                self.sessions[tok][1] = time.monotonic()
                return True
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
            return same(u, self.opts.user) and same(p, self.opts.password)
        return False

    def login(self, body):
        if not (same(str(body.get("UserName", "")), self.opts.user) and
                same(str(body.get("Password", "")), self.opts.password)):
            return None
        tok = secrets.token_hex(16)
        with self.lock:
            sid = self.next_session
            self.next_session += 1
            self.sessions[tok] = [sid, time.monotonic()]
            self.stats["logins"] += 1
            self.stats["tokens"].append(tok)
        return sid, tok

    def session_resources(self):
        with self.lock:
            ids = sorted(s[0] for s in self.sessions.values())
        res = {V1 + "/SessionService": resources.odata(
            V1 + "/SessionService", "#SessionService.v1_1_9.SessionService",
            Id="SessionService", Name="Session service", ServiceEnabled=True,
            SessionTimeout=self.opts.session_timeout, Status=resources.status(),
            Sessions={"@odata.id": SESSIONS})}
        res[SESSIONS] = resources.collection(SESSIONS, "SessionCollection", "Sessions",
                                             ["%s/%d" % (SESSIONS, i) for i in ids])
        for i in ids:
            p = "%s/%d" % (SESSIONS, i)
            res[p] = resources.odata(p, "#Session.v1_7_0.Session", Id=str(i),
                                     Name="Session %d" % i, UserName=self.opts.user)
        return res


def expand(res, doc, levels):
    """Members of a collection (and sub-collections, to `levels`) in place."""
    if levels <= 0 or not isinstance(doc.get("Members"), list):
        return doc
    doc = dict(doc)
    doc["Members"] = [expand(res, copy.deepcopy(res.get(m["@odata.id"], m)), levels - 1)
                      for m in doc["Members"]]
    return doc


def parse_expand(q):
    """$expand=.($levels=N) or * or ~ -> levels (0: none)."""
    if not q:
        return 0
    levels = 1
    if "$levels=" in q:
        try:
            levels = int(q.split("$levels=")[1].rstrip(")"))
        except ValueError:
            return -1
    return min(levels, 2) if q[0] in ".*~" else -1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rackpulse-redfishsim/1"

    def log_message(self, fmt, *args):  # requests are counted, not logged
        pass

    def setup(self):
        super().setup()
        self.server.dev.count("connections")

    def send_json(self, code, doc, extra=None, raw=None):
        body = raw if raw is not None else json.dumps(doc, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("OData-Version", "4.0")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, msg):
        self.send_json(code, {"error": {"code": "Base.1.16.0.GeneralError", "message": msg,
                                        "@Message.ExtendedInfo": []}})

    def preamble(self, path):
        """Counters and faults; False when the request was answered (or hung)."""
        dev = self.server.dev
        dev.count("requests")
        c, _ = dev.state()
        dev.check_expiry(c)
        if path.startswith("/_sim"):
            return c, True
        ms = (c.get("faults") or {}).get("slow_ms", 0)
        sp = (c.get("faults") or {}).get("slow_path")
        if ms and (not sp or sp in path):
            time.sleep(ms / 1000.0)
        if dev.fault(c, "hang", path):
            while not self.server.stopping:
                time.sleep(0.2)
            self.close_connection = True
            return c, False
        if dev.fault(c, "status_503", path):
            self.send_json(503, {"error": {"code": "Base.1.16.0.ServiceTemporarilyUnavailable",
                                           "message": "busy"}}, {"Retry-After": "1"})
            return c, False
        return c, True

    def need_auth(self, path):
        public = (V1, V1 + "/", "/redfish", "/redfish/", V1 + "/odata", V1 + "/$metadata")
        return path not in public

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        c, go = self.preamble(path)
        if not go:
            return
        dev = self.server.dev
        if path == "/_sim/stats":
            with dev.lock:
                return self.send_json(200, dev.stats)
        if self.need_auth(path) and not dev.authorized(self.headers):
            dev.count("unauthorized")
            return self.error(401, "authentication required")
        if path in ("/redfish", "/redfish/"):
            return self.send_json(200, {"v1": V1 + "/"})
        if path == V1 + "/$metadata":
            return self.send_json(404, None, raw=b"{}")
        if path == SSE_URI:
            return self.sse(c)
        with dev.lock:
            dev.stats["gets"][path] = dev.stats["gets"].get(path, 0) + 1
        _, res = dev.tree()
        res.update(dev.session_resources())
        p = path.rstrip("/") or "/"
        if p == V1 + "/TelemetryService/MetricReports/Readings":
            doc = resources.metric_report(res, dev.seq, time.strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif p in res:
            doc = res[p]
        else:
            return self.error(404, "no resource at %s" % p)
        levels = parse_expand(query.get("$expand"))
        if levels < 0:
            return self.error(400, "$expand %s is not supported" % query["$expand"])
        if levels:
            dev.count("expand")
            doc = expand(res, doc, levels)
        if "$select" in query:
            dev.count("select")
            keep = set(query["$select"].split(","))
            doc = {k: v for k, v in doc.items() if k in keep or k.startswith("@odata")}
        body = json.dumps(doc, separators=(",", ":")).encode()
        if dev.fault(c, "malformed", path):
            return self.send_json(200, None, raw=body[: max(1, len(body) // 2)])
        etag = 'W/"%s"' % hashlib.sha1(body).hexdigest()[:16]
        if self.headers.get("If-None-Match") == etag:
            dev.count("not_modified")
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_json(200, None, {"ETag": etag}, raw=body)

    do_HEAD = do_GET

    def sse(self, c):
        dev = self.server.dev
        if (c.get("faults") or {}).get("sse_stop"):
            return self.error(503, "event stream stopped")
        dev.count("sse_clients")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        try:
            while not self.server.stopping:
                c, res = dev.tree()
                if (c.get("faults") or {}).get("sse_stop"):
                    return
                with dev.lock:
                    dev.seq += 1
                    seq = dev.seq
                rep = resources.metric_report(res, seq, time.strftime("%Y-%m-%dT%H:%M:%SZ"))
                ev = "id: %d\ndata: %s\n\n" % (seq, json.dumps(rep, separators=(",", ":")))
                self.wfile.write(ev.encode())
                self.wfile.flush()
                time.sleep(self.server.dev.opts.sse_interval)
        except OSError:
            return

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        body = self.read_body()
        _, go = self.preamble(path)
        if not go:
            return
        if path != SESSIONS:
            return self.error(405, "only sessions can be created here")
        if not isinstance(body, dict):
            return self.error(400, "the body is not a JSON object")
        got = self.server.dev.login(body)
        if got is None:
            self.server.dev.count("unauthorized")
            return self.error(401, "wrong user name or password")
        sid, tok = got
        loc = "%s/%d" % (SESSIONS, sid)
        self.send_json(201, resources.odata(loc, "#Session.v1_7_0.Session", Id=str(sid),
                                            Name="Session %d" % sid, UserName=body["UserName"]),
                       {"X-Auth-Token": tok, "Location": loc})

    def do_DELETE(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        _, go = self.preamble(path)
        if not go:
            return
        dev = self.server.dev
        if not dev.authorized(self.headers):
            dev.count("unauthorized")
            return self.error(401, "authentication required")
        with dev.lock:
            tok = next((t for t, s in dev.sessions.items()
                        if "%s/%d" % (SESSIONS, s[0]) == path), None)
            if tok is not None:
                del dev.sessions[tok]
                dev.stats["logouts"] += 1
        if tok is None:
            return self.error(404, "no session at %s" % path)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, dev, ctx):
        self.dev, self.ctx, self.stopping = dev, ctx, False
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request, client_address):
        pass  # a client that went away mid-answer (a deadline, a wrong CA) is no news

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the request's own thread, so a client
        # that stalls in it holds up nobody else.
        try:
            request.settimeout(60)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            tls.settimeout(None)
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def parse_devices(args):
    devs = [d.split(":", 1) for d in args.device]
    for spec in args.devices:
        kind, count, prefix = spec.split(":")
        devs += [[kind, "%s%d" % (prefix, i + 1)] for i in range(int(count))]
    for kind, _ in devs:
        if kind not in ("tray", "shelf", "cdu", "pdu", "rack"):
            sys.exit("redfishsim: unknown device kind %s" % kind)
    return devs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", action="append", default=[], help="KIND:NAME (repeat)")
    ap.add_argument("--devices", action="append", default=[], help="KIND:COUNT:PREFIX")
    ap.add_argument("--ports-out", required=True, help="write {name: port} here")
    ap.add_argument("--agent-yaml", help="write the agent's redfish: list for the devices here")
    ap.add_argument("--control", help="JSON file of values and faults (see above)")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--cert"), ap.add_argument("--key")
    ap.add_argument("--tls-dir", help="where a generated cert.pem/key.pem go")
    ap.add_argument("--session-timeout", type=float, default=600.0)
    ap.add_argument("--sse-interval", type=float, default=1.0)
    args = ap.parse_args()
    with open(args.password_file, encoding="utf-8") as f:
        args.password = f.readline().rstrip("\r\n")
    if not args.cert:
        if not args.tls_dir:
            sys.exit("redfishsim: --cert/--key or --tls-dir is needed")
        args.cert, args.key = make_cert(args.tls_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    control = Control(args.control)
    servers, ports = [], {}
    for kind, name in parse_devices(args):
        srv = Server(Device(kind, name, args, control), ctx)
        ports[name] = srv.server_address[1]
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.5},
                         daemon=True).start()
    tmp = args.ports_out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(ports, f)
    os.rename(tmp, args.ports_out)
    if args.agent_yaml:
        with open(args.agent_yaml, "w", encoding="utf-8") as f:
            f.write("redfish:\n")
            for name, port in ports.items():
                f.write("  - {name: %s, host: 127.0.0.1, port: %d, user: %s, password_file: %s, "
                        "ca_file: %s}\n" % (name, port, args.user,
                                             os.path.abspath(args.password_file),
                                             os.path.abspath(args.cert)))
    print("redfishsim: %d services up: %s" % (len(ports), ports), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for s in servers:
            s.stopping = True


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
