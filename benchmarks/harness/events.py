#!/usr/bin/python3
"""What change events cost and give (docs/events.md).

Called by `./polycrud bench --events` once the local stack's MariaDB, Redis
and RabbitMQ run and hold the seeded users. It starts three polycrud-servers
of its own on private ports:

  A, B   change events on (--amqp-host: the outbox, one relay, a subscriber),
         the near cache on by default (100,000 entries)
  plain  no change events, no near cache (the default without a broker)

beside the Python Thrift peer of `./polycrud bench` (benchmarks/peers/), and
drives them with build/benchmarks/load/polycrud-bench over Thrift, after
warming the cache as `./polycrud bench` does (batches of Zipf-drawn ids):

  reads     ping and a cached get (1,000 hot ids) on A (near cache, A and B
            running) and on plain: the cached get / ping ratio of each
  writes    updates and creates on A (outbox) and on plain (none): the
            outbox's cost, throughput and p99
  mix       the 95/5 Zipf mix, closed loop, on A, on plain and on the
            Python peer: A / peer is the reference report's mix ratio with
            change events and the near cache
  mix-both  the 95/5 Zipf mix on A and on B at once, open loop at --mix-rate
            each (below saturation): the propagation delay of the events
            from commit to each server's invalidation
            (polycrud_events_propagation_seconds over the run)
  open      the 95/5 mix at a fixed arrival rate on A and on plain: p99

Every comparison runs in rounds whose order is reversed every other round,
so slow drifts of a shared machine cancel out of the ratios; figures are
medians over the rounds. Raw results go to OUT/raw/, the summary to
OUT/results.csv and OUT/REPORT.md.
"""

import argparse
import csv
import datetime
import json
import os
import statistics
import subprocess
import sys
import urllib.request

import run as harness

MIX = harness.MIX
SERVERS = {"A": 29410, "B": 29420, "plain": 29430}  # thrift port; REST = +1


class Server:
    def __init__(self, name, stack, amqp, state_dir):
        self.name = name
        self.thrift = SERVERS[name]
        self.rest = SERVERS[name] + 1
        env = stack.server_environment()
        if amqp:
            env.update({"POLYCRUD_AMQP_HOST": stack.env.get("AMQP_HOST", "127.0.0.1"),
                        "POLYCRUD_AMQP_PORT": stack.env["AMQP_PORT"],
                        "POLYCRUD_AMQP_USER": stack.env["AMQP_USER"],
                        "POLYCRUD_AMQP_PASSWORD": stack.env["AMQP_PASSWORD"],
                        "POLYCRUD_AMQP_VHOST": stack.env["AMQP_VHOST"]})
        log_path = os.path.join(state_dir, "events-%s-server.log" % name)
        args = [harness.SERVER_BIN, "--protocols", "thrift,rest", "--thrift-port",
                str(self.thrift), "--rest-port", str(self.rest)]
        with open(log_path, "ab") as out:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        harness.wait_port(self.thrift, self.process, 60, log_path)
        harness.wait_port(self.rest, self.process, 60, log_path)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.rest, timeout=5) as r:
            return r.read().decode()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def propagation(text):
    """The propagation histogram of a /metrics page: [(upper bound s, cumulative)]."""
    buckets = []
    for line in text.splitlines():
        if line.startswith("polycrud_events_propagation_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le),
                            int(line.rsplit(" ", 1)[1])))
    return buckets


def delta_quantiles(before, after):
    """p50, p99 and the highest bucket reached, in ms, of the events counted
    between two readings of one histogram (upper bounds of their buckets)."""
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = counts[-1][1] if counts else 0
    if total == 0:
        return {"events": 0}
    def quantile(q):
        need = q * total
        for le, cumulative in counts:
            if cumulative >= need:
                return le * 1000
        return float("inf")
    highest = next(le for le, cumulative in counts if cumulative == total) * 1000
    return {"events": total, "p50_ms": quantile(0.5), "p99_ms": quantile(0.99),
            "max_bucket_ms": highest}


def bench(stack, out_dir, name, port, extra, duration_s, warmup_s):
    path = os.path.join(out_dir, "raw", name + ".json")
    args = [harness.BENCH_BIN, "--protocol", "thrift", "--port", str(port), "--token",
            stack.admin_token, "--warmup-s", str(warmup_s), "--duration-s", str(duration_s),
            "--json", path, "--label", name, *extra]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("polycrud-bench failed for %s:\n%s%s" % (name, result.stdout,
                                                                     result.stderr[-2000:]))
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return harness.save_result(path, doc, args, stack.admin_token, name)


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", required=True, help=".polycrud/endpoints.env")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--users", type=int, default=8_000_000, help="seeded ids 1..N")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=5)
    parser.add_argument("--warmup-s", type=float, default=1)
    parser.add_argument("--rate", type=int, default=17000, help="open-loop arrivals/s")
    parser.add_argument("--mix-rate", type=int, default=5000,
                        help="arrivals/s on each of A and B while the propagation is measured")
    parser.add_argument("--warm-s", type=float, default=30,
                        help="seconds of warming the cache before the rounds")
    parser.add_argument("--quick", action="store_true", help="one short round")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration_s, args.warmup_s, args.warm_s = 1, 1.5, 0.5, 3

    endpoints = harness.read_env_file(args.endpoints)
    state_dir = os.path.dirname(os.path.abspath(args.endpoints))
    for key in ("AMQP_PORT", "AMQP_USER", "AMQP_PASSWORD", "AMQP_VHOST"):
        if key not in endpoints:
            sys.exit("%s has no %s: start the stack with ./polycrud up" % (args.endpoints, key))
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    stack = harness.Stack(endpoints, state_dir)
    servers = {}
    results = []
    peer = harness.Target("python-thrift", harness.TARGETS["python-thrift"], stack, state_dir)
    try:
        servers["A"] = Server("A", stack, True, state_dir)
        servers["B"] = Server("B", stack, True, state_dir)
        servers["plain"] = Server("plain", stack, False, state_dir)
        peer.start()
        ports = {name: server.thrift for name, server in servers.items()}
        ports["peer"] = peer.port
        keys = ["--keys", "zipf", "--zipf-s", "0.99", "--min-id", "1", "--max-id",
                str(args.users)]
        closed = ["--mode", "closed", "--connections", "16"]
        harness.log("warming the cache for %.0f s" % args.warm_s)
        stack.redis("FLUSHALL")
        subprocess.run([harness.BENCH_BIN, "--protocol", "thrift", "--port", str(ports["plain"]),
                        "--token", stack.admin_token, "--mode", "closed", "--connections", "4",
                        "--mix", "batch_get=1", "--batch-size", "1000", *keys, "--warmup-s", "0",
                        "--duration-s", str(args.warm_s)], check=True, capture_output=True)
        cases = {
            "ping": closed + ["--mix", "ping=1"],
            "get": closed + ["--mix", "get=1", "--keys", "uniform", "--min-id", "1",
                             "--max-id", "1000"],
            "update": closed + ["--mix", "update=1", "--keys", "uniform", "--min-id", "1",
                                "--max-id", str(args.users)],
            "create": closed + ["--mix", "create=1"],
            "mix": closed + ["--mix", MIX, *keys],
            "open": ["--mode", "open", "--connections", "64", "--rate", str(args.rate),
                     "--mix", MIX, *keys],
        }
        runs = {}
        for r in range(args.rounds):
            order = ["A", "plain", "peer"] if r % 2 == 0 else ["peer", "plain", "A"]
            for case, extra in cases.items():
                for name in order:
                    if name == "peer" and case != "mix":
                        continue
                    doc = bench(stack, args.out, "%s-%s-r%d" % (name, case, r + 1),
                                ports[name], extra, args.duration_s, args.warmup_s)
                    runs.setdefault((name, case), []).append(doc)
            # The mix on both event servers at once: propagation between them.
            before = {n: propagation(servers[n].metrics()) for n in ("A", "B")}
            procs = []
            for n in ("A", "B"):
                path = os.path.join(args.out, "raw", "%s-mix2-r%d.json" % (n, r + 1))
                procs.append((n, path, subprocess.Popen(
                    [harness.BENCH_BIN, "--protocol", "thrift", "--port",
                     str(servers[n].thrift), "--token", stack.admin_token, "--warmup-s",
                     str(args.warmup_s), "--duration-s", str(args.duration_s), "--json", path,
                     "--mode", "open", "--rate", str(args.mix_rate), "--connections", "32",
                     "--mix", MIX, *keys],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
            for n, path, p in procs:
                p.wait()
                with open(path, encoding="utf-8") as f:
                    runs.setdefault((n, "mix-both"), []).append(json.load(f))
            for n in ("A", "B"):
                q = delta_quantiles(before[n], propagation(servers[n].metrics()))
                q["server"] = n
                q["round"] = r + 1
                runs.setdefault(("propagation", n), []).append(q)
                harness.log("propagation to %s: %s" % (n, q))

        def rps(name, case):
            return median([d["throughput_rps"] for d in runs[(name, case)]])

        def p99(name, case):
            return median([d["latency_ms"]["p99"] for d in runs[(name, case)]])

        for name in ("A", "plain"):
            for case in cases:
                results.append({"server": name, "case": case, "rps": rps(name, case),
                                "p99_ms": p99(name, case)})
        results.append({"server": "peer", "case": "mix", "rps": rps("peer", "mix"),
                        "p99_ms": p99("peer", "mix")})
        for n in ("A", "B"):
            results.append({"server": n, "case": "mix-both", "rps": rps(n, "mix-both"),
                            "p99_ms": p99(n, "mix-both")})
        prop = [q for n in ("A", "B") for q in runs[("propagation", n)]]
        write_report(args, results, prop)
    finally:
        peer.stop()
        for server in servers.values():
            server.stop()


def write_report(args, results, prop):
    with open(os.path.join(args.out, "results.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["server", "case", "rps", "p99_ms"])
        w.writeheader()
        for row in results:
            w.writerow(row)
    with open(os.path.join(args.out, "raw", "propagation.json"), "w", encoding="utf-8") as f:
        json.dump(prop, f, indent=1)
    by = {(r["server"], r["case"]): r for r in results}

    def ratio(a, b):
        return a / b if b else float("nan")

    lines = [
        "# Change events: what they cost and give",
        "",
        "Generated by `./polycrud bench --events` (benchmarks/harness/events.py) on %s, "
        "%d users, %d round(s) of %.1f s per case, medians over the rounds." % (
            datetime.date.today().isoformat(), args.users, args.rounds, args.duration_s),
        "Servers: A and B with change events and the near cache (100,000 entries), "
        "plain without either, and the Python Thrift peer (mix only); Thrift binary, "
        "16 connections closed loop.",
        "",
        "| case | A (events, near cache) req/s | p99 ms | plain req/s | p99 ms | A / plain |",
        "|---|---|---|---|---|---|",
    ]
    for case in ("ping", "get", "update", "create", "mix", "open"):
        a, p = by[("A", case)], by[("plain", case)]
        lines.append("| %s | %.0f | %.2f | %.0f | %.2f | %.2f |" % (
            case, a["rps"], a["p99_ms"], p["rps"], p["p99_ms"], ratio(a["rps"], p["rps"])))
    lines += [
        "",
        "- cached get / ping: A %.2f, plain %.2f" % (
            ratio(by[("A", "get")]["rps"], by[("A", "ping")]["rps"]),
            ratio(by[("plain", "get")]["rps"], by[("plain", "ping")]["rps"])),
        "- the 95/5 mix, closed loop (16 connections): A %.1fx the Python Thrift peer "
        "(%.0f req/s, p99 %.2f ms), plain %.1fx" % (
            ratio(by[("A", "mix")]["rps"], by[("peer", "mix")]["rps"]),
            by[("peer", "mix")]["rps"], by[("peer", "mix")]["p99_ms"],
            ratio(by[("plain", "mix")]["rps"], by[("peer", "mix")]["rps"])),
        "- the outbox's write cost: updates %.2fx, creates %.2fx of plain's throughput" % (
            ratio(by[("A", "update")]["rps"], by[("plain", "update")]["rps"]),
            ratio(by[("A", "create")]["rps"], by[("plain", "create")]["rps"])),
        "- open loop at %d arrivals/s (95/5 mix): p99 %.2f ms on A, %.2f ms on plain" % (
            args.rate, by[("A", "open")]["p99_ms"], by[("plain", "open")]["p99_ms"]),
        "- the mix on A and B at once, %d arrivals/s each (open loop): %.0f + %.0f req/s, "
        "p99 %.2f and %.2f ms" % (
            args.mix_rate, by[("A", "mix-both")]["rps"], by[("B", "mix-both")]["rps"],
            by[("A", "mix-both")]["p99_ms"], by[("B", "mix-both")]["p99_ms"]),
        "",
        "Propagation of the events from commit (the event's occurred_at_ms, MariaDB's clock) "
        "to each server's near-cache invalidation, during the mix on both (upper bounds of "
        "the histogram's buckets; each server sees the events of both):",
        "",
        "| server | round | events | p50 ms | p99 ms | highest bucket ms |",
        "|---|---|---|---|---|---|",
    ]
    for q in prop:
        if q.get("events", 0) == 0:
            lines.append("| %s | %d | 0 | | | |" % (q["server"], q["round"]))
            continue
        lines.append("| %s | %d | %d | %g | %g | %g |" % (
            q["server"], q["round"], q["events"], q["p50_ms"], q["p99_ms"], q["max_bucket_ms"]))
    lines.append("")
    with open(os.path.join(args.out, "REPORT.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
