#!/usr/bin/python3
"""polycrud benchmark run: every protocol and peer, side by side, on one data set.

Called by `./polycrud bench` once MariaDB and Redis of the local stack run and
the users table is seeded. For each target (the four polycrud faces, Thrift
compact, the web gateway, and the two peers) it starts that target's server on
a private port, drives it with build/benchmarks/load/polycrud-bench through the
protocol's real client, stops it, and moves on, so every target runs alone
with the same two cores. The plan per target:

  ping     closed loop, Ping only: the raw protocol cost
  get      closed loop, GetUser over ids 1..1000 (cache hits after warm-up)
  mix      closed loop, get=95,update=4,create=1, Zipf over the seeded ids
  batch    closed loop, BatchGetUsers of 1000 ids (large-data handling)
  open-R   open loop at R arrivals/s of the mix, for each rate of the sweep,
           ascending, until one is not sustained

Then it checks the harness against tools it did not write (wrk for REST and
SOAP, h2load for gRPC) at the same concurrency, and runs the micro-benchmarks.
Raw results go to OUT/raw/*.json; report.py turns them into REPORT.md.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
SERVER_BIN = os.path.join(BUILD, "server", "polycrud-server")
BENCH_BIN = os.path.join(BUILD, "benchmarks", "load", "polycrud-bench")
MICRO_BIN = os.path.join(BUILD, "benchmarks", "micro", "polycrud-micro-bench")
PEER_SH = os.path.join(ROOT, "benchmarks", "peers", "peer.sh")
WEB_DIR = os.path.join(ROOT, "web")

# Private ports of the benchmark's servers (never those of ./polycrud up).
PORTS = {
    "thrift": 29090,
    "grpc": 29051,
    "soap": 29080,
    "rest": 29081,
    "web": 29300,
    "python-thrift": 29190,
    "express": 29181,
}

# What each target is: how it is started and which polycrud-bench protocol
# drives it. "faces" are the polycrud-server faces it needs (REST is always
# added for /metrics, the cache hit ratio).
TARGETS = {
    "thrift": {"kind": "polycrud", "faces": ["thrift"], "client": "thrift", "port": "thrift"},
    "thrift-compact": {
        "kind": "polycrud",
        "faces": ["thrift"],
        "client": "thrift-compact",
        "port": "thrift",
        "server_args": ["--thrift-protocol", "compact"],
    },
    # The Thrift face with the in-process near cache (single instance only).
    "thrift-near": {
        "kind": "polycrud",
        "faces": ["thrift"],
        "client": "thrift",
        "port": "thrift",
        "server_args": ["--near-cache-entries", "1000000"],
    },
    "grpc": {"kind": "polycrud", "faces": ["grpc"], "client": "grpc", "port": "grpc"},
    # SOAP reads each request without a thread (transport/http), so its
    # default 8 workers serve any number of connections; more workers than
    # cores only add hand-offs (docs/reliability.md).
    "soap": {"kind": "polycrud", "faces": ["soap"], "client": "soap", "port": "soap"},
    "rest": {"kind": "polycrud", "faces": [], "client": "rest", "port": "rest"},
    "web": {"kind": "web", "faces": ["thrift"], "client": "web", "port": "web"},
    "python-thrift": {"kind": "peer", "client": "thrift", "port": "python-thrift"},
    "express": {"kind": "peer", "client": "rest", "port": "express"},
}
DEFAULT_TARGETS = list(TARGETS)

MIX = "get=95,update=4,create=1"
# Targets that serve SearchUsers (the peers do not): each gets a search run,
# "user" and 6 digits of a random seeded username (100 users share a prefix),
# on 2 connections: a search's own latency, not MariaDB's queue at saturation.
SEARCH_KINDS = ("polycrud", "web")
SEARCH_DIGITS = 6
SEARCH_CONNECTIONS = 2


class Plan:
    """Durations, concurrency and sweep of one run (full or --quick)."""

    def __init__(self, args):
        self.quick = args.quick
        self.warmup_s = args.warmup_s if args.warmup_s is not None else (
            0.5 if args.quick else 2)
        self.duration_s = args.duration_s if args.duration_s is not None else (
            1.5 if args.quick else 6)
        self.connections = args.connections
        self.open_connections = args.open_connections
        self.zipf_s = args.zipf_s
        self.users = args.users
        if args.rates:
            self.rates = [int(r) for r in args.rates.split(",")]
        else:
            self.rates = [2000, 17000] if args.quick else [1000, 2500, 5000, 10000, 17000, 25000]
        self.cache_warm_s = 5 if args.quick else 60
        self.prime_s = 1 if args.quick else 3
        self.batch = not args.quick
        self.validate = not args.no_validate
        self.micro = not args.no_micro

    def runs_per_target(self, target):
        searches = 1 if TARGETS[target]["kind"] in SEARCH_KINDS else 0
        return 3 + searches + (1 if self.batch else 0) + len(self.rates)

    def as_json(self):
        return {
            "quick": self.quick,
            "warmup_s": self.warmup_s,
            "duration_s": self.duration_s,
            "connections": self.connections,
            "open_connections": self.open_connections,
            "mix": MIX,
            "zipf_s": self.zipf_s,
            "users": self.users,
            "rates": self.rates,
            "cache_warm_s": self.cache_warm_s,
            "prime_s": self.prime_s,
        }


class Progress:
    """One line on stderr: a bar over every planned step, the current step, ETA."""

    def __init__(self, total, enabled):
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.started = time.monotonic()
        self.current = ""

    def step(self, label):
        self.current = label
        self.draw()

    def advance(self):
        self.done = min(self.done + 1, self.total)
        self.draw()

    def draw(self):
        if not self.enabled:
            return
        width = 28
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.started
        eta = ""
        if self.done > 0:
            remaining = elapsed / self.done * (self.total - self.done)
            eta = " ETA %d:%02d" % (remaining // 60, remaining % 60)
        line = "[%s%s] %3d/%d %-34s%s" % ("#" * filled, "." * (width - filled), self.done,
                                          self.total, self.current[:34], eta)
        sys.stderr.write("\r" + line + "\033[K")
        sys.stderr.flush()

    def finish(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def log(message):
    sys.stderr.write("\r\033[K" if sys.stderr.isatty() else "")
    print(message, flush=True)


def read_env_file(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                values[key] = value
    return values


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port, process, timeout_s, log_path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("exited during start-up (log: %s):\n%s" % (log_path, tail(log_path)))
        if port_open(port):
            return
        time.sleep(0.1)
    raise RuntimeError("port %d not open after %d s (log: %s):\n%s" %
                       (port, timeout_s, log_path, tail(log_path)))


def tail(path, lines=20):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Stack:
    """MariaDB and Redis of the local stack, plus the tokens of this run."""

    def __init__(self, endpoints, state_dir):
        self.env = endpoints
        self.state_dir = state_dir
        self.redis_port = int(endpoints["REDIS_PORT"])
        self.mysql_port = int(endpoints["MYSQL_PORT"])
        self.admin_token = secrets.token_hex(32)
        self.reader_token = secrets.token_hex(32)
        # polycrud-bench reads Redis INFO (peers without /metrics) as the admin
        # user; its password reaches it through the environment.
        os.environ["POLYCRUD_BENCH_REDIS_PASSWORD"] = self.redis_admin_password()

    def server_environment(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYCRUD_")}
        env.update({
            "POLYCRUD_MYSQL_HOST": self.env.get("MYSQL_HOST", "127.0.0.1"),
            "POLYCRUD_MYSQL_PORT": str(self.mysql_port),
            "POLYCRUD_MYSQL_USER": self.env["MYSQL_USER"],
            "POLYCRUD_MYSQL_PASSWORD": self.env["MYSQL_PASSWORD"],
            "POLYCRUD_MYSQL_DATABASE": self.env["MYSQL_DATABASE"],
            "POLYCRUD_REDIS_HOST": self.env.get("REDIS_HOST", "127.0.0.1"),
            "POLYCRUD_REDIS_PORT": str(self.redis_port),
            "POLYCRUD_REDIS_USER": self.env["REDIS_USER"],
            "POLYCRUD_REDIS_PASSWORD": self.env["REDIS_PASSWORD"],
            "POLYCRUD_ADMIN_TOKEN_SHA256": hashlib.sha256(self.admin_token.encode()).hexdigest(),
            "POLYCRUD_READER_TOKEN_SHA256": hashlib.sha256(self.reader_token.encode()).hexdigest(),
            "POLYCRUD_LOG_LEVEL": "warn",
        })
        return env

    def store_pids(self):
        """Pids of the local stack's Redis and MariaDB (for CPU affinity)."""
        pids = []
        for path in ("redis/redis.pid", "mariadb/mysqld.pid"):
            try:
                with open(os.path.join(self.state_dir, path), encoding="ascii") as f:
                    pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return pids

    def mariadb(self, sql):
        return subprocess.run(["mariadb", "--defaults-file=%s" % os.path.join(
            self.state_dir, "mariadb", "my.cnf"), "-uroot", "-N", "-B", "-e", sql], check=True,
                              capture_output=True, text=True).stdout.strip()

    def settle(self, timeout_s=60, dirty_pages=200):
        """Waits until InnoDB has flushed the dirty pages earlier targets' writes left,
        so a target does not pay for the previous one's background flushing. Returns
        the seconds waited."""
        started = time.monotonic()
        previous = self.mariadb("SELECT @@GLOBAL.innodb_max_dirty_pages_pct, "
                                "@@GLOBAL.innodb_io_capacity, "
                                "@@GLOBAL.innodb_io_capacity_max").split()
        try:
            # Flush as fast as the disk allows while nothing is measured.
            self.mariadb("SET GLOBAL innodb_io_capacity_max = 20000; "
                         "SET GLOBAL innodb_io_capacity = 20000; "
                         "SET GLOBAL innodb_max_dirty_pages_pct = 0")
            while time.monotonic() - started < timeout_s:
                dirty = int(self.mariadb(
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                    "WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'") or 0)
                if dirty <= dirty_pages:
                    break
                time.sleep(0.5)
        finally:
            self.mariadb("SET GLOBAL innodb_max_dirty_pages_pct = %s; "
                         "SET GLOBAL innodb_io_capacity = %d; "
                         "SET GLOBAL innodb_io_capacity_max = %d" % (
                             float(previous[0]), int(previous[1]), int(previous[2])))
        return time.monotonic() - started

    def redis_admin_password(self):
        with open(os.path.join(self.state_dir, "redis", "admin.password"), encoding="ascii") as f:
            return f.readline().strip()

    def redis(self, *args):
        """redis-cli ARGS as the admin user (the password in the environment)."""
        env = dict(os.environ, REDISCLI_AUTH=self.redis_admin_password())
        return subprocess.run(["redis-cli", "--no-auth-warning", "--user", "admin", "-p",
                               str(self.redis_port), *args], check=True, env=env,
                              capture_output=True, text=True).stdout.strip()


class Target:
    """A running target: its processes (server side) and where to reach it."""

    def __init__(self, name, spec, stack, state_dir):
        self.name = name
        self.spec = spec
        self.stack = stack
        self.state_dir = state_dir
        self.processes = []  # (name, Popen) we started
        self.peer = None
        self.pids = []  # server-side pids whose CPU counts
        self.port = PORTS[spec["port"]]
        self.metrics_url = None
        self.cpus = None  # e.g. "1": the server side runs on these CPUs only

    def start(self):
        kind = self.spec["kind"]
        if kind in ("polycrud", "web"):
            self._start_server()
        if kind == "web":
            self._start_web()
        if kind == "peer":
            self._start_peer()

    def _start_server(self):
        faces = list(self.spec["faces"]) + ["rest"]
        args = pinned([SERVER_BIN, "--protocols", ",".join(faces)], self.cpus)
        for face in ("thrift", "grpc", "soap", "rest"):
            args += ["--%s-port" % face, str(PORTS[face])]
        args += self.spec.get("server_args", [])
        log_path = os.path.join(self.state_dir, "%s-server.log" % self.name)
        with open(log_path, "ab") as out:
            p = subprocess.Popen(args, env=self.stack.server_environment(), stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        self.processes.append(("polycrud-server", p))
        for face in faces:
            wait_port(PORTS[face], p, 60, log_path)
        self.pids.append(p.pid)
        self.metrics_url = "http://127.0.0.1:%d/metrics" % PORTS["rest"]

    def _start_web(self):
        log_path = os.path.join(self.state_dir, "web.log")
        env = dict(os.environ)
        env = {k: v for k, v in env.items() if not k.startswith("POLYCRUD_")}
        env.update({
            "NODE_ENV": "production",
            "POLYCRUD_WEB_PORT": str(PORTS["web"]),
            "POLYCRUD_THRIFT_HOST": "127.0.0.1",
            "POLYCRUD_THRIFT_PORT": str(PORTS["thrift"]),
            "POLYCRUD_WEB_LOG_LEVEL": "warn",
        })
        with open(log_path, "ab") as out:
            p = subprocess.Popen(web_command(), cwd=WEB_DIR, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        self.processes.append(("web", p))
        wait_port(PORTS["web"], p, 60, log_path)
        self.pids.insert(0, p.pid)

    def _start_peer(self):
        env = self.stack.server_environment()
        env["PEER_PORT"] = str(self.port)
        subprocess.run([PEER_SH, "start", self.name, self.state_dir, str(self.port)], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        self.peer = self.name
        pid = subprocess.run([PEER_SH, "pid", self.name, self.state_dir], check=True,
                             capture_output=True, text=True).stdout.strip()
        self.pids.append(int(pid))

    def stop(self):
        if self.peer is not None:
            subprocess.run([PEER_SH, "stop", self.peer, self.state_dir], check=False,
                           stdout=subprocess.DEVNULL)
            self.peer = None
        for _, p in reversed(self.processes):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.processes = []

    def bench_args(self):
        args = ["--protocol", self.spec["client"], "--port", str(self.port),
                "--token", self.stack.admin_token]
        if self.pids:
            args += ["--server-pid", ",".join(str(p) for p in self.pids)]
        if self.metrics_url and self.spec["kind"] == "polycrud":
            args += ["--metrics-url", self.metrics_url]
        else:
            args += ["--redis-port", str(self.stack.redis_port), "--redis-user", "admin"]
        return args


def pinned(command, cpus):
    """COMMAND run on CPUS only (taskset), or as it is when CPUS is None."""
    return command if cpus is None else ["taskset", "-c", cpus, *command]


def set_affinity(pids, cpus):
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass


def web_command():
    """The web console's own entry point (web/bin/polycrud-web.js)."""
    subprocess.run(["node", os.path.join(WEB_DIR, "scripts", "gen.js")], check=True,
                   stdout=subprocess.DEVNULL)
    return ["node", os.path.join(WEB_DIR, "bin", "polycrud-web.js")]


def save_result(path, doc, command, token, name):
    """Stores the result document DOC at PATH with the polycrud-bench COMMAND that made it
    (the token masked) and logs its one-line summary under NAME."""
    doc["command"] = " ".join(a if a != token else "$TOKEN" for a in command)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    log("%-28s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  errors %d" % (
        name, doc["throughput_rps"], doc["latency_ms"]["p50"], doc["latency_ms"]["p99"],
        doc.get("error_count", 0)))
    return doc


def run_bench(target, plan, out_dir, run_name, extra, client_cpus=None):
    """Runs polycrud-bench once; returns its result document (with run metadata)."""
    path = os.path.join(out_dir, "raw", "%s--%s.json" % (target.name, run_name))
    args = [*pinned([BENCH_BIN], client_cpus), *target.bench_args(), "--warmup-s", str(plan.warmup_s), "--duration-s",
            str(plan.duration_s), "--json", path, "--label", "%s/%s" % (target.name, run_name),
            *extra]
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0 or not os.path.exists(path):
        raise RuntimeError("polycrud-bench failed for %s/%s (exit %d):\n%s%s" %
                           (target.name, run_name, result.returncode, result.stdout,
                            result.stderr[-2000:]))
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    doc["target"] = target.name
    doc["run"] = run_name
    doc["command"] = " ".join(a if a != target.stack.admin_token else "$TOKEN" for a in args)
    doc["wall_s"] = round(time.monotonic() - started, 3)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    summary = "%-15s %-9s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  errors %d" % (
        target.name, run_name, doc["throughput_rps"], doc["latency_ms"]["p50"],
        doc["latency_ms"]["p99"], doc.get("error_count", 0))
    if doc.get("mode") == "open":
        summary += "  %s" % ("sustained" if doc.get("sustained") else "NOT sustained")
    log(summary)
    return doc


def bench_target(target, plan, out_dir, progress):
    key_args = ["--keys", "zipf", "--zipf-s", str(plan.zipf_s), "--min-id", "1", "--max-id",
                str(plan.users)]
    closed = ["--mode", "closed", "--connections", str(plan.connections)]
    runs = [
        ("ping", closed + ["--mix", "ping=1"]),
        ("get", closed + ["--mix", "get=1", "--keys", "uniform", "--min-id", "1", "--max-id",
                          "1000"]),
        ("mix", closed + ["--mix", MIX] + key_args),
    ]
    if target.spec["kind"] in SEARCH_KINDS:
        runs.append(("search", ["--mode", "closed", "--connections", str(SEARCH_CONNECTIONS),
                                "--mix", "search=1", "--search-digits", str(SEARCH_DIGITS),
                                "--keys", "uniform", "--min-id", "1", "--max-id",
                                str(plan.users)]))
    if plan.batch:
        runs.append(("batch", ["--mode", "closed", "--connections", "4", "--mix", "batch_get=1",
                               "--batch-size", "1000"] + key_args))
    # Not measured: lets a freshly started target reach its steady state
    # (JIT compilation of the Node.js targets, pools filled, threads spawned).
    subprocess.run([BENCH_BIN, *target.bench_args(), "--mode", "closed", "--connections",
                    str(plan.connections), "--mix", "ping=1,get=1", "--keys", "uniform",
                    "--min-id", "1", "--max-id", "1000", "--warmup-s", "0", "--duration-s",
                    str(plan.prime_s)], check=True, capture_output=True)
    docs = []
    for run_name, extra in runs:
        progress.step("%s %s" % (target.name, run_name))
        docs.append(run_bench(target, plan, out_dir, run_name, extra))
        progress.advance()
    sustained = True
    for rate in plan.rates:
        run_name = "open-%d" % rate
        if not sustained:
            log("%-15s %-9s skipped: a lower rate was not sustained" % (target.name, run_name))
            progress.advance()
            continue
        progress.step("%s %s" % (target.name, run_name))
        extra = ["--mode", "open", "--rate", str(rate), "--connections",
                 str(plan.open_connections), "--mix", MIX] + key_args
        doc = run_bench(target, plan, out_dir, run_name, extra)
        docs.append(doc)
        sustained = bool(doc.get("sustained"))
        progress.advance()
    return docs


# ------------------------------------------------------------ validation ----


def wrk_lua_get():
    return ('local n = 0\n'
            'request = function()\n'
            '  n = n + 1\n'
            '  return wrk.format("GET", "/v1/users/" .. ((n * 7919) % 1000 + 1))\n'
            'end\n')


def soap_envelope(body):
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:pc="urn:polycrud:v1"><SOAP-ENV:Body>%s</SOAP-ENV:Body></SOAP-ENV:Envelope>' %
            body)


def wrk_lua_soap(operation, token):
    head = ('wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "text/xml; charset=utf-8"\n'
            'wrk.headers["Authorization"] = "Bearer %s"\n' % token)
    if operation == "ping":
        return head + ('wrk.headers["SOAPAction"] = "\\"urn:polycrud:v1#Ping\\""\n'
                       'wrk.body = [[%s]]\n' % soap_envelope("<pc:Ping/>"))
    before, after = soap_envelope("<pc:GetUser><pc:id>@</pc:id></pc:GetUser>").split("@")
    return head + ('wrk.headers["SOAPAction"] = "\\"urn:polycrud:v1#GetUser\\""\n'
                   'local n = 0\n'
                   'request = function()\n'
                   '  n = n + 1\n'
                   '  local body = [[%s]] .. ((n * 7919) %% 1000 + 1) .. [[%s]]\n'
                   '  return wrk.format(nil, nil, nil, body)\n'
                   'end\n' % (before, after))


def parse_wrk(text):
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    lat = re.search(r"Latency\s+([0-9.]+)(us|ms|s)", text)
    return {
        "throughput_rps": float(m.group(1)) if m else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else None,
        "mean_latency": (lat.group(1) + lat.group(2)) if lat else None,
    }


def parse_h2load(text):
    m = re.search(r"finished in [^,]+, ([0-9.]+) req/s", text)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    return {
        "throughput_rps": float(m.group(1)) if m else None,
        "non_2xx": (int(status.group(3)) + int(status.group(4))) if status else None,
    }


def grpc_frame(message_bytes):
    return b"\x00" + struct.pack(">I", len(message_bytes)) + message_bytes


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def validate(stack, plan, out_dir, progress):
    """The harness against wrk (REST, SOAP) and h2load (gRPC), same concurrency.

    Twice: as the main runs (everything shares every core), where each tool's
    own CPU cost competes with the server's; and with the load generator
    pinned to CPU 0 and the server, Redis and MariaDB to the other CPUs, so
    both tools measure the server rather than themselves.
    """
    results = []
    c = plan.connections
    d = max(plan.duration_s, 2)
    cpus = sorted(os.sched_getaffinity(0))
    layouts = [("shared", None, None)]
    if len(cpus) >= 2 and not plan.quick:
        layouts.append(("pinned", str(cpus[0]), ",".join(str(x) for x in cpus[1:])))
    scratch = tempfile.mkdtemp(prefix="polycrud-bench-")
    try:
        for layout, client_cpus, server_cpus in layouts:
            store_pids = stack.store_pids()
            if server_cpus is not None:
                set_affinity(store_pids, {int(x) for x in server_cpus.split(",")})
            try:
                for name, tool in (("rest", "wrk"), ("soap", "wrk"), ("grpc", "h2load")):
                    results += validate_face(stack, plan, out_dir, scratch, name, tool, c, d,
                                             layout, client_cpus, server_cpus)
                    progress.advance()
            finally:
                set_affinity(store_pids, set(cpus))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    with open(os.path.join(out_dir, "raw", "validation.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    return results


# Rounds of (harness run, tool run) per validation case in a full run; the
# quick run does one. Identical runs on a small shared machine differ by more
# than the 15% being checked, so one pair cannot settle it; the median of the
# pairs' ratios can.
VALIDATION_ROUNDS = 3


def summarize_rounds(harness_rps, tool_rps):
    """Medians of rounds run in pairs (harness, then tool, back to back).

    Returns (median harness req/s, median tool req/s, median of the pairs'
    ratios); a pair whose tool figure is missing or 0 gives no ratio.
    """
    ratios = [h / t for h, t in zip(harness_rps, tool_rps) if t]
    tools = [t for t in tool_rps if t is not None]
    return (statistics.median(harness_rps) if harness_rps else None,
            statistics.median(tools) if tools else None,
            statistics.median(ratios) if ratios else None)


def validate_face(stack, plan, out_dir, scratch, name, tool, c, d, layout, client_cpus,
                  server_cpus):
    results = []
    target = Target(name, TARGETS[name], stack, scratch)
    target.cpus = server_cpus
    rounds = 1 if plan.quick else VALIDATION_ROUNDS
    try:
        target.start()
        for op in ("ping", "get"):
            extra = ["--mode", "closed", "--connections", str(c)]
            if op == "ping":
                extra += ["--mix", "ping=1"]
            else:
                extra += ["--mix", "get=1", "--keys", "uniform", "--min-id", "1", "--max-id",
                          "1000"]
            harness_rps, tool_rps, client_cpu, outputs = [], [], [], []
            for k in range(rounds):
                run_name = "validate-%s-%s" % (layout, op)
                if rounds > 1:
                    run_name += "-%d" % (k + 1)
                harness = run_bench(target, plan, out_dir, run_name, extra,
                                    client_cpus=client_cpus)
                tool_out = run_tool(tool, name, op, target, c, d, stack, scratch, client_cpus)
                harness_rps.append(harness["throughput_rps"])
                tool_rps.append(tool_out["parsed"]["throughput_rps"])
                cpu = (harness.get("client_cpu") or {}).get("per_request_us")
                if cpu is not None:
                    client_cpu.append(cpu)
                outputs.append(tool_out)
            median_harness, median_tool, ratio = summarize_rounds(harness_rps, tool_rps)
            r = {
                "target": name,
                "op": op,
                "layout": layout,
                "client_cpus": client_cpus,
                "server_cpus": server_cpus,
                "connections": c,
                "tool": tool,
                "tool_command": outputs[-1]["command"],
                "rounds": rounds,
                "tool_rps": median_tool,
                "tool_rps_rounds": tool_rps,
                "tool_non_2xx": sum(o["parsed"]["non_2xx"] or 0 for o in outputs),
                "harness_rps": median_harness,
                "harness_rps_rounds": harness_rps,
                "harness_client_cpu_us": statistics.median(client_cpu) if client_cpu else None,
                "ratio": ratio,
            }
            results.append(r)
            log("%-15s %-9s %-6s %s %9.0f req/s vs harness %9.0f req/s (median ratio of %d: %s)"
                % (name, op, layout, tool, median_tool or 0, median_harness or 0, rounds,
                   "%.2f" % ratio if ratio else "n/a"))
            with open(os.path.join(out_dir, "raw", "validate-%s-%s-%s-%s.txt" %
                                   (layout, name, op, tool)), "w", encoding="utf-8") as f:
                for k, o in enumerate(outputs):
                    f.write("# round %d of %d\n$ %s\n%s\n" % (k + 1, rounds, o["command"],
                                                              o["output"]))
    finally:
        target.stop()
    return results


def run_tool(tool, name, op, target, c, d, stack, scratch, client_cpus=None):
    token = stack.admin_token
    threads = "2"
    if tool == "wrk":
        url = "http://127.0.0.1:%d" % target.port
        if name == "rest":
            if op == "ping":
                script = None
                url += "/v1/ping"
            else:
                script = wrk_lua_get()
        else:
            url += "/soap"
            script = wrk_lua_soap(op, token)
        cmd = ["wrk", "-t", threads, "-c", str(c), "-d", "%ds" % d, "--latency"]
        if name == "rest":
            cmd += ["-H", "Authorization: Bearer %s" % token]
        if script is not None:
            path = os.path.join(scratch, "%s-%s.lua" % (name, op))
            with open(path, "w", encoding="utf-8") as f:
                f.write(script)
            cmd += ["-s", path]
        cmd.append(url)
        out = subprocess.run(pinned(cmd, client_cpus), capture_output=True, text=True,
                             timeout=d + 60)
        text = out.stdout + out.stderr
        parsed = parse_wrk(text)
    else:
        if op == "ping":
            method, message = "Ping", b""
        else:
            method, message = "GetUser", b"\x08" + varint(500)
        body = os.path.join(scratch, "grpc-%s.bin" % op)
        with open(body, "wb") as f:
            f.write(grpc_frame(message))
        cmd = ["h2load", "-c", str(c), "-m", "1", "-t", threads, "-D", str(d), "-d", body,
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "-H", "authorization: Bearer %s" % token,
               "http://127.0.0.1:%d/polycrud.v1.UserService/%s" % (target.port, method)]
        out = subprocess.run(pinned(cmd, client_cpus), capture_output=True, text=True,
                             timeout=d + 60)
        text = out.stdout + out.stderr
        parsed = parse_h2load(text)
    shown = " ".join(a if token not in a else a.replace(token, "$TOKEN") for a in cmd)
    return {"command": shown, "output": text.replace(token, "$TOKEN"), "parsed": parsed}


# ----------------------------------------------------------- environment ----


def command_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def package_version(package):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                             text=True, timeout=20)
        return out.stdout.strip() or "not installed"
    except OSError:
        return "unknown"


def npm_version(folder, package):
    try:
        with open(os.path.join(folder, "node_modules", package, "package.json"),
                  encoding="utf-8") as f:
            return json.load(f).get("version", "?")
    except OSError:
        return "not installed"


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\(polycrud VERSION ([0-9.]+)", f.read())
    return m.group(1) if m else "unknown"


def environment(plan):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    os_name = "unknown"
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    peers_dir = os.path.join(ROOT, "benchmarks", "peers", "express")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "os": os_name,
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "commit": git + ("+changes" if dirty else ""),
        "versions": {
            "polycrud": project_version(),
            "g++": command_version(["g++", "--version"]),
            "thrift": package_version("libthrift-dev"),
            "grpc": package_version("libgrpc++-dev"),
            "protobuf": package_version("libprotobuf-dev"),
            "gsoap": package_version("libgsoap-dev"),
            "boost": package_version("libboost-dev"),
            "hiredis": package_version("libhiredis-dev"),
            "mysqlcppconn": package_version("libmysqlcppconn-dev"),
            "mariadb": command_version(["mariadbd", "--version"]),
            "redis": command_version(["redis-server", "--version"]),
            "node": command_version(["node", "--version"]),
            "express (web)": npm_version(WEB_DIR, "express"),
            "thrift npm (web)": npm_version(WEB_DIR, "thrift"),
            "express (peer)": npm_version(peers_dir, "express"),
            "ioredis (peer)": npm_version(peers_dir, "ioredis"),
            "mysql2 (peer)": npm_version(peers_dir, "mysql2"),
            "python3": command_version(["/usr/bin/python3", "--version"]),
            "python3-thrift": package_version("python3-thrift"),
            "python3-redis": package_version("python3-redis"),
            "python3-pymysql": package_version("python3-pymysql"),
            "wrk": package_version("wrk"),
            "h2load": package_version("nghttp2-client"),
            "gnuplot": command_version(["gnuplot", "--version"]),
        },
        "plan": plan.as_json(),
        "server_settings": "polycrud-server defaults (Thrift fibers, 2 fiber threads; REST 8 "
                           "threads; gRPC 64 workers; SOAP 8 workers; MySQL pool 16; Redis "
                           "pool 16), log level warn; one target at a time",
    }


# ------------------------------------------------------------------ main ----


def main():
    parser = argparse.ArgumentParser(
        prog="./polycrud bench",
        description="Runs every protocol and peer side by side on the seeded data set and "
        "writes raw results to OUT/raw (see report.py for the report).")
    parser.add_argument("--endpoints", required=True, help="the local stack's endpoints.env")
    parser.add_argument("--out", required=True, help="report folder (created)")
    parser.add_argument("--users", type=int, default=8_000_000,
                        help="ids 1..USERS are drawn (the seeded range)")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                        help="comma-separated subset of: " + ", ".join(DEFAULT_TARGETS))
    parser.add_argument("--quick", action="store_true",
                        help="short runs, two open-loop rates, no batch run")
    parser.add_argument("--warmup-s", type=float, help="warm-up per run (default 2; quick 0.5)")
    parser.add_argument("--duration-s", type=float, help="measured time per run (default 6; "
                        "quick 1.5)")
    parser.add_argument("--connections", type=int, default=16,
                        help="connections of the closed-loop runs (default 16)")
    parser.add_argument("--open-connections", type=int, default=64,
                        help="connections of the open-loop runs (default 64)")
    parser.add_argument("--rates", help="open-loop arrival rates, comma-separated")
    parser.add_argument("--zipf-s", type=float, default=0.99, help="Zipf exponent (0.99)")
    parser.add_argument("--no-validate", action="store_true", help="skip the wrk/h2load check")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()

    plan = Plan(args)
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            parser.error("unknown target %r" % t)
    for binary in (SERVER_BIN, BENCH_BIN):
        if not os.access(binary, os.X_OK):
            sys.exit("polycrud bench: %s is not built" % binary)
    busy = [p for p in PORTS.values() if port_open(p)]
    if busy:
        sys.exit("polycrud bench: ports already in use: %s" % ", ".join(map(str, busy)))

    out_dir = args.out
    os.makedirs(os.path.join(out_dir, "raw"), exist_ok=True)
    state_dir = tempfile.mkdtemp(prefix="polycrud-bench-state-")
    stack = Stack(read_env_file(args.endpoints), os.path.dirname(os.path.abspath(args.endpoints)))
    env = environment(plan)
    env["targets"] = targets
    with open(os.path.join(out_dir, "raw", "environment.json"), "w", encoding="utf-8") as f:
        json.dump(env, f, indent=1)

    total = 1 + sum(plan.runs_per_target(t) for t in targets) + (
        (3 if plan.quick else 6) if plan.validate else 0) + (
        1 if plan.micro else 0)
    progress = Progress(total, enabled=sys.stderr.isatty() and not args.no_progress)
    failures = []
    try:
        if plan.micro and os.access(MICRO_BIN, os.X_OK):
            progress.step("micro-benchmarks")
            micro_args = [MICRO_BIN, "--benchmark_out=" + os.path.join(out_dir, "raw",
                                                                       "micro.json"),
                          "--benchmark_out_format=json"]
            if plan.quick:
                micro_args.append("--benchmark_min_time=0.05")
            subprocess.run(micro_args, check=True, stdout=subprocess.DEVNULL)
            log("micro-benchmarks written to %s" % os.path.join(out_dir, "raw", "micro.json"))
            progress.advance()
        elif plan.micro:
            log("micro-benchmarks skipped: %s is not built" % MICRO_BIN)
            progress.advance()

        # One cache state for every target: flushed once, then warmed through
        # Thrift with batches drawn from the Zipf distribution the mixes use,
        # so the hit ratio is near its plateau before the first target runs.
        progress.step("warming the cache")
        stack.redis("FLUSHALL")
        warm = Target("thrift", TARGETS["thrift"], stack, state_dir)
        try:
            warm.start()
            subprocess.run([BENCH_BIN, *warm.bench_args(), "--mode", "closed", "--connections",
                            "4", "--mix", "batch_get=1", "--batch-size", "1000", "--keys", "zipf",
                            "--zipf-s", str(plan.zipf_s), "--min-id", "1", "--max-id",
                            str(plan.users), "--warmup-s", "0", "--duration-s",
                            str(plan.cache_warm_s)], check=True, capture_output=True)
        finally:
            warm.stop()
        log("cache warmed for %d s: %s keys" % (plan.cache_warm_s, stack.redis("DBSIZE")))
        progress.advance()

        for name in targets:
            target = Target(name, TARGETS[name], stack, state_dir)
            try:
                progress.step("settling MariaDB before %s" % name)
                waited = stack.settle()
                if waited > 1:
                    log("%-15s MariaDB flushed earlier writes in %.1f s" % (name, waited))
                progress.step("starting %s" % name)
                target.start()
                bench_target(target, plan, out_dir, progress)
            except (RuntimeError, subprocess.CalledProcessError) as e:
                failures.append("%s: %s" % (name, e))
                log("polycrud bench: %s failed: %s" % (name, e))
            finally:
                target.stop()

        if plan.validate:
            try:
                validate(stack, plan, out_dir, progress)
            except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                failures.append("validation: %s" % e)
                log("polycrud bench: validation failed: %s" % e)
    finally:
        progress.finish()
        with open(os.path.join(out_dir, "raw", "failures.json"), "w", encoding="utf-8") as f:
            json.dump(failures, f, indent=1)
        for log_name in os.listdir(state_dir):
            shutil.copy(os.path.join(state_dir, log_name), os.path.join(out_dir, "raw", log_name))
        shutil.rmtree(state_dir, ignore_errors=True)
    if failures:
        log("polycrud bench: %d target(s) failed; the report marks them" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
