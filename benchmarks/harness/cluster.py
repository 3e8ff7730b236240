#!/usr/bin/python3
"""polycrud one box against the multi-host layout: what each hop costs.

Called by `./polycrud bench --cluster` once the local stack's MariaDB and
Redis run and hold the seeded users, and the multi-host layout of
deploy/cluster/cluster.sh is up and holds the same users. It drives, with
build/benchmarks/load/polycrud-bench through each protocol's real client:

  box      a polycrud-server of its own on the local stack (today's layout)
  lb-2     the layout through HAProxy, both servers (from the client host)
  lb-1     the same with app2 set to maintenance in HAProxy: one server
  direct   app1 straight, no HAProxy (still Redis Cluster and Galera via lb)

each on the same operations, in rounds whose order is reversed every other
round (box, lb-2, lb-1, direct, then back), so slow drifts of a shared
machine cancel out of the ratios; figures are medians over the rounds.
From them: HAProxy's cost (lb-1 against direct), the cost of the cluster's
stores (direct against box: Redis Cluster routing, Galera's causal reads
and certification, the hop to other hosts), and what the second server
gives on two cores (lb-2 against lb-1). Raw results go to OUT/raw/, the
summary to OUT/results.csv and OUT/REPORT.md with a chart.
"""

import argparse
import csv
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import run as harness

LAYOUTS = ["box", "lb-2", "lb-1", "direct"]
MIX = harness.MIX


def read_env(path):
    return harness.read_env_file(path)


class Cluster:
    """The multi-host layout, reached from its client host."""

    def __init__(self, state_dir):
        self.dir = state_dir
        self.env = read_env(os.path.join(state_dir, "endpoints.env"))
        with open(os.path.join(state_dir, "admin-token"), encoding="ascii") as f:
            self.token = f.readline().strip()
        self.netns = self.env["CLIENT_NETNS"]
        lb = self.env["THRIFT_HOST"]
        self.subnet = lb.rsplit(".", 1)[0]

    def host(self, name):
        index = ["lb", "app1", "app2"].index(name)
        return "%s.%d" % (self.subnet, index + 1)

    def server_pids(self, names):
        pids = []
        for name in names:
            with open(os.path.join(self.dir, name, "server.pid"), encoding="ascii") as f:
                pids.append(int(f.read().strip()))
        return pids

    def component_pids(self):
        """Pids of HAProxy, the Redis nodes and the Galera nodes, by component."""
        found = {"haproxy": [], "redis": [], "mariadb": []}
        for root, _, files in os.walk(self.dir):
            for name in files:
                kind = {"haproxy.pid": "haproxy", "redis.pid": "redis",
                        "mysqld.pid": "mariadb"}.get(name)
                if kind is None:
                    continue
                try:
                    with open(os.path.join(root, name), encoding="ascii") as f:
                        found[kind].append(int(f.read().strip()))
                except (OSError, ValueError):
                    pass
        return found

    def haproxy(self, command):
        """One command on HAProxy's admin socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(os.path.join(self.dir, "lb", "haproxy.sock"))
        s.sendall((command + "\n").encode())
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        s.close()
        return out.decode()

    def set_app2(self, state):
        for proxy in ("thrift", "grpc", "soap", "rest"):
            self.haproxy("set server %s/app2 state %s" % (proxy, state))


def cpu_seconds(pid):
    """utime + stime of PID (and its waited-for children), in seconds; 0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def bench(args, out_dir, name, command, components=None):
    """Runs polycrud-bench (COMMAND is its full argv); returns the result document,
    with the CPU each component (name: pids) spent per request over the whole run."""
    path = os.path.join(out_dir, "raw", name + ".json")
    command = command + ["--json", path, "--label", name]
    started = time.monotonic()
    components = components or {}
    before = {k: sum(cpu_seconds(p) for p in pids) for k, pids in components.items()}
    result = subprocess.run(command, capture_output=True, text=True)
    after = {k: sum(cpu_seconds(p) for p in pids) for k, pids in components.items()}
    if result.returncode != 0 or not os.path.exists(path):
        raise RuntimeError("polycrud-bench failed for %s (exit %d):\n%s%s" %
                           (name, result.returncode, result.stdout, result.stderr[-2000:]))
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    doc["wall_s"] = round(time.monotonic() - started, 3)
    # Warm-up and window together: the requests of both, from the rate.
    requests = doc["throughput_rps"] * (args.warmup_s + args.duration_s)
    doc["component_cpu_us_per_request"] = {
        k: round((after[k] - before[k]) * 1e6 / requests, 1) if requests else None
        for k in components}
    return harness.save_result(path, doc, command, args.token_shown, name)


def operations(users):
    """(name, protocol, polycrud-bench arguments) of every measured operation."""
    zipf = ["--keys", "zipf", "--zipf-s", "0.99", "--min-id", "1", "--max-id", str(users)]
    hot = ["--keys", "uniform", "--min-id", "1", "--max-id", "1000"]
    closed = ["--mode", "closed", "--connections", "16"]
    return [
        ("thrift-ping", "thrift", closed + ["--mix", "ping=1"]),
        ("thrift-get", "thrift", closed + ["--mix", "get=1"] + hot),
        ("thrift-mix", "thrift", closed + ["--mix", MIX] + zipf),
        ("thrift-update", "thrift", closed + ["--mix", "update=1"] + zipf),
        ("rest-get", "rest", closed + ["--mix", "get=1"] + hot),
        ("rest-mix", "rest", closed + ["--mix", MIX] + zipf),
        ("thrift-mix-open-1000", "thrift",
         ["--mode", "open", "--rate", "1000", "--connections", "32", "--mix", MIX] + zipf),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", required=True, help="the local stack's endpoints.env")
    parser.add_argument("--cluster-dir", required=True, help="the layout's state folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup-s", type=float, default=1)
    parser.add_argument("--duration-s", type=float, default=4)
    parser.add_argument("--quick", action="store_true", help="1 round of 1.5 s runs")
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite REPORT.md and the chart from OUT/results.csv")
    args = parser.parse_args()
    if args.report_only:
        return rewrite_report(args)
    if args.quick:
        args.rounds, args.warmup_s, args.duration_s = 1, 0.5, 1.5
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)

    state_dir = os.path.dirname(os.path.abspath(args.endpoints))
    stack = harness.Stack(read_env(args.endpoints), state_dir)
    cluster = Cluster(args.cluster_dir)
    args.token_shown = None
    box = harness.Target("box", {"kind": "polycrud", "faces": ["thrift", "grpc", "soap"],
                                 "client": "thrift", "port": "thrift"}, stack, state_dir)
    box.start()
    results = []
    try:
        def command(layout, protocol):
            port = {"thrift": 9090, "rest": 8081}[protocol]
            timing = ["--warmup-s", str(args.warmup_s), "--duration-s", str(args.duration_s)]
            if layout == "box":
                args.token_shown = stack.admin_token
                return [harness.BENCH_BIN, "--protocol", protocol, "--port",
                        str(harness.PORTS[protocol]), "--token", stack.admin_token,
                        "--server-pid", ",".join(str(p) for p in box.pids)] + timing
            args.token_shown = cluster.token
            host = cluster.host("app1" if layout == "direct" else "lb")
            servers = ["app1", "app2"] if layout == "lb-2" else ["app1"]
            return ["ip", "netns", "exec", cluster.netns, harness.BENCH_BIN, "--protocol",
                    protocol, "--host", host, "--port", str(port), "--token", cluster.token,
                    "--server-pid", ",".join(str(p) for p in cluster.server_pids(servers))
                    ] + timing

        store_pids = stack.store_pids()  # the local stack's Redis, then MariaDB
        box_components = {"redis": store_pids[:1], "mariadb": store_pids[1:]}
        cluster_components = cluster.component_pids()
        # Caches warmed the same way on both (not measured).
        for layout in ("box", "lb-2"):
            protocol_args = command(layout, "thrift")
            subprocess.run(protocol_args + ["--mode", "closed", "--connections", "16", "--mix",
                                            "get=1", "--keys", "zipf", "--zipf-s", "0.99",
                                            "--min-id", "1", "--max-id", str(args.users),
                                            "--warmup-s", "0", "--duration-s",
                                            "2" if args.quick else "20"],
                           check=True, capture_output=True)
        for round_number in range(1, args.rounds + 1):
            order = LAYOUTS if round_number % 2 else list(reversed(LAYOUTS))
            for op_name, protocol, extra in operations(args.users):
                for layout in order:
                    cluster.set_app2("maint" if layout == "lb-1" else "ready")
                    # The cluster's HAProxy applies the state at once; give
                    # lingering connections of the previous run a moment.
                    time.sleep(0.3)
                    name = "%s--%s--%d" % (op_name, layout, round_number)
                    components = box_components if layout == "box" else cluster_components
                    doc = bench(args, args.out, name, command(layout, protocol) + extra,
                                components)
                    doc.update({"op": op_name, "layout": layout, "round": round_number})
                    results.append(doc)
    finally:
        cluster.set_app2("ready")
        box.stop()
    sizes = measure_sizes(stack)
    write_results(args, results, sizes)
    return 0


def measure_sizes(stack):
    """Bytes per user in the local stack's Redis (every cached entry) and MariaDB."""
    memory = dict(line.split(":", 1) for line in stack.redis("INFO", "memory").splitlines()
                  if ":" in line)
    keys = int(stack.redis("DBSIZE"))
    data, index, rows = (int(x) for x in stack.mariadb(
        "SELECT data_length, index_length, (SELECT COUNT(*) FROM polycrud.users) "
        "FROM information_schema.TABLES WHERE table_schema = 'polycrud' "
        "AND table_name = 'users'").split())
    return {
        "redis_keys": keys,
        "redis_used_memory": int(memory["used_memory"]),
        "redis_bytes_per_key": round(int(memory["used_memory"]) / keys, 1) if keys else None,
        "mariadb_rows": rows,
        "mariadb_data_bytes": data,
        "mariadb_index_bytes": index,
        "mariadb_bytes_per_row": round((data + index) / rows, 1) if rows else None,
    }


def write_results(args, results, sizes):
    rows = []
    for op_name, _, _ in operations(args.users):
        for layout in LAYOUTS:
            docs = [d for d in results if d["op"] == op_name and d["layout"] == layout]
            if not docs:
                continue
            cpu = [d["server_cpu"]["per_request_us"] for d in docs if d.get("server_cpu")]
            rows.append({
                "op": op_name,
                "layout": layout,
                "rounds": len(docs),
                "throughput_rps": statistics.median(d["throughput_rps"] for d in docs),
                "p50_ms": statistics.median(d["latency_ms"]["p50"] for d in docs),
                "p99_ms": statistics.median(d["latency_ms"]["p99"] for d in docs),
                "errors": sum(d.get("error_count", 0) for d in docs),
                "server_cpu_us_per_request": statistics.median(cpu) if cpu else "",
            })
            for component in ("haproxy", "redis", "mariadb"):
                values = [d["component_cpu_us_per_request"].get(component) for d in docs
                          if d.get("component_cpu_us_per_request", {}).get(component) is not None]
                rows[-1][component + "_cpu_us_per_request"] = (
                    statistics.median(values) if values else "")
    with open(os.path.join(args.out, "results.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(args.out, "run.json"), "w", encoding="utf-8") as f:
        json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                   "users": args.users, "rounds": args.rounds, "warmup_s": args.warmup_s,
                   "duration_s": args.duration_s, "host": os.uname().nodename,
                   "cpus": os.cpu_count(), "sizes": sizes}, f, indent=1)
    write_report(args, rows, sizes)
    harness.log("results: %s" % os.path.join(args.out, "results.csv"))


def rewrite_report(args):
    with open(os.path.join(args.out, "run.json"), encoding="utf-8") as f:
        run_info = json.load(f)
    args.rounds, args.warmup_s = run_info["rounds"], run_info["warmup_s"]
    args.duration_s, args.users = run_info["duration_s"], run_info["users"]
    rows = []
    with open(os.path.join(args.out, "results.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key not in ("op", "layout") and value != "":
                    row[key] = float(value)
            rows.append(row)
    write_report(args, rows, run_info["sizes"])
    return 0


def write_report(args, rows, sizes):
    """REPORT.md: the medians, the ratios that say what each hop costs, a chart."""
    by = {(r["op"], r["layout"]): r for r in rows}

    def ratio(op, a, b, key="throughput_rps"):
        if (op, a) not in by or (op, b) not in by or not by[(op, b)][key]:
            return None
        return by[(op, a)][key] / by[(op, b)][key]

    lines = ["# One box against the multi-host layout", "",
             "%d users, %d rounds of %.1f s runs (warm-up %.1f s) in alternating order; "
             "medians. Layouts: `box` a server on the local stack; `lb-2` through HAProxy to "
             "both servers; `lb-1` through HAProxy to app1 only; `direct` app1 without "
             "HAProxy. All on one machine with %d cores." % (
                 args.users, args.rounds, args.duration_s, args.warmup_s, os.cpu_count()), "",
             "| operation | layout | req/s | p50 ms | p99 ms | errors | CPU us/req: servers | "
             "HAProxy | Redis | MariaDB |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def us(value):
        return "-" if value in ("", None) else "%.0f" % value

    for r in rows:
        lines.append("| %s | %s | %.0f | %.2f | %.2f | %d | %s | %s | %s | %s |" % (
            r["op"], r["layout"], r["throughput_rps"], r["p50_ms"], r["p99_ms"], r["errors"],
            us(r["server_cpu_us_per_request"]), us(r.get("haproxy_cpu_us_per_request")),
            us(r.get("redis_cpu_us_per_request")), us(r.get("mariadb_cpu_us_per_request"))))
    lines += ["", "| operation | HAProxy: lb-1 / direct | stores: direct / box | "
              "second server: lb-2 / lb-1 | whole: lb-2 / box |", "|---|---|---|---|---|"]
    for op_name, _, _ in operations(args.users):
        cells = [ratio(op_name, "lb-1", "direct"), ratio(op_name, "direct", "box"),
                 ratio(op_name, "lb-2", "lb-1"), ratio(op_name, "lb-2", "box")]
        lines.append("| %s | %s |" % (op_name, " | ".join(
            "-" if c is None else "%.2f" % c for c in cells)))
    lines += ["", "Throughput ratios; an open-loop run has its rate fixed, so compare its "
              "latencies instead.", "",
              "Sizes on the local stack: %s bytes of Redis memory per cached user (%s keys), "
              "%s bytes of InnoDB data and indexes per user row (%s rows)." % (
                  sizes.get("redis_bytes_per_key"), sizes.get("redis_keys"),
                  sizes.get("mariadb_bytes_per_row"), sizes.get("mariadb_rows")), "",
              "![Throughput per layout, relative to box](throughput.png)", ""]
    with open(os.path.join(args.out, "REPORT.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    # The chart: each closed-loop operation's throughput relative to box.
    data = os.path.join(args.out, "throughput.dat")
    with open(data, "w", encoding="utf-8") as f:
        f.write("# op " + " ".join(LAYOUTS) + "\n")
        for op_name, _, extra in operations(args.users):
            if "open" in extra:
                continue
            values = [ratio(op_name, layout, "box") for layout in LAYOUTS]
            f.write(op_name + " " + " ".join("%.3f" % (v or 0) for v in values) + "\n")
    script = ("set terminal pngcairo size 900,420 font 'DejaVu Sans,10'\n"
              "set output '%s'\nset style data histogram\nset style histogram cluster gap 1\n"
              "set style fill solid 0.8 border -1\nset ylabel 'throughput relative to box'\n"
              "set yrange [0:1.2]\nset key top right\nset grid ytics\n"
              "plot '%s' using 2:xtic(1) title 'box', '' using 3 title 'lb-2', "
              "'' using 4 title 'lb-1', '' using 5 title 'direct'\n" % (
                  os.path.join(args.out, "throughput.png"), data))
    subprocess.run(["gnuplot"], input=script, text=True, check=False)


if __name__ == "__main__":
    sys.exit(main())
