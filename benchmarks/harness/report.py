#!/usr/bin/python3
"""Turns the raw results of a benchmark run (OUT/raw/*.json) into a report.

Writes OUT/results.csv (one row per load-generator run), OUT/micro.csv,
OUT/charts/*.png (rendered by gnuplot) and OUT/REPORT.md, which explains the
figures: which protocol wins on what, by what ratio, and why. A hand-written
OUT/analysis.md, when present, is included under "Analysis". Re-running it on
the same folder rewrites everything but raw/ and analysis.md.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Display order and names.
TARGET_ORDER = ["thrift", "thrift-compact", "thrift-near", "grpc", "soap", "rest", "web", "python-thrift",
                "express"]
TARGET_NAMES = {
    "thrift": "Thrift (binary)",
    "thrift-compact": "Thrift (compact)",
    "thrift-near": "Thrift + near cache",
    "grpc": "gRPC",
    "soap": "SOAP",
    "rest": "REST",
    "web": "Web gateway (Express -> Thrift)",
    "python-thrift": "Python Thrift peer",
    "express": "Express REST peer",
}
SHORT_NAMES = {
    "thrift": "Thrift",
    "thrift-compact": "Thrift compact",
    "thrift-near": "Thrift near",
    "grpc": "gRPC",
    "soap": "SOAP",
    "rest": "REST",
    "web": "Web gateway",
    "python-thrift": "Python peer",
    "express": "Express peer",
}
ENCODING_ORDER = ["thrift_binary", "thrift_compact", "protobuf", "json", "soap_xml"]
ENCODING_NAMES = {
    "thrift_binary": "Thrift binary",
    "thrift_compact": "Thrift compact",
    "protobuf": "Protobuf",
    "json": "JSON (REST)",
    "soap_xml": "SOAP XML",
}
MESSAGE_NAMES = {
    "user": "one User",
    "list_100": "100-user page",
    "batch_request_1000": "1000-id batch request",
    "batch_response_1000": "1000-user batch response",
}

OPEN_LOOP_TARGET_RATE = 17000
P99_TARGET_MS = 10.0


def load_runs(raw):
    runs = {}
    for name in sorted(os.listdir(raw)):
        if not name.endswith(".json") or "--" not in name:
            continue
        with open(os.path.join(raw, name), encoding="utf-8") as f:
            doc = json.load(f)
        runs[(doc["target"], doc["run"])] = doc
    return runs


def load_json(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def fmt_int(x):
    return "-" if x is None else "{:,.0f}".format(x)


def fmt_ms(x):
    if x is None:
        return "-"
    return "%.2f" % x if x < 100 else "{:,.0f}".format(x)


def fmt_ratio(x):
    return "-" if x is None else "%.2f" % x


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rps(runs, target, run):
    doc = runs.get((target, run))
    return doc["throughput_rps"] if doc else None


def p(runs, target, run, key="p99"):
    doc = runs.get((target, run))
    return doc["latency_ms"][key] if doc else None


def per_request_bytes(doc):
    if not doc:
        return None
    return (doc.get("bytes_sent_per_request") or 0) + (doc.get("bytes_received_per_request") or 0)


def server_cpu_us(doc):
    if not doc or not doc.get("server_cpu"):
        return None
    return doc["server_cpu"].get("per_request_us")


def hit_ratio(doc):
    if not doc or not doc.get("cache"):
        return None
    return doc["cache"].get("hit_ratio")


def achieved(doc):
    """Calls completed in the measured window per second (any arrival time)."""
    done = doc.get("window_completions", doc.get("requests"))
    return done / doc["duration_s"] if doc.get("duration_s") else None


def open_rates(runs, target):
    rates = []
    for (t, run), doc in runs.items():
        if t == target and run.startswith("open-"):
            rates.append((int(run[5:]), doc))
    return sorted(rates, key=lambda x: x[0])


def highest_sustained(runs, target):
    best = None
    for rate, doc in open_rates(runs, target):
        if doc.get("sustained"):
            best = (rate, doc)
    return best


# ---------------------------------------------------------------- micro ----


def load_micro(raw):
    """{(direction, encoding, message): {"ns": .., "bytes": ..}} from Google Benchmark JSON."""
    doc = load_json(os.path.join(raw, "micro.json"), None)
    if not doc:
        return {}, None
    out = {}
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        name = b.get("run_name") or b.get("name", "")
        m = re.match(r"^(?:BM_)?(encode|decode|Encode|Decode)/([a-z_]+)/([a-z0-9_]+)", name)
        if not m:
            continue
        direction, encoding, message = m.group(1).lower(), m.group(2), m.group(3)
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}.get(b.get("time_unit", "ns"), 1)
        out[(direction, encoding, message)] = {
            "ns": b.get("real_time", 0) * scale,
            "bytes": b.get("bytes"),
        }
    return out, doc.get("context")


# --------------------------------------------------------------- charts ----


def gnuplot(script, charts_dir):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, cwd=charts_dir,
                       capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", "") or str(e)
        sys.stderr.write("report.py: gnuplot failed: %s\n" % err[-2000:])
        return False


STYLE = """set terminal pngcairo size 1100,560 enhanced font 'DejaVu Sans,11'
set border 3
set tics nomirror
set grid ytics lc rgb '#dddddd'
set key top right
"""


def write_data(path, header, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# " + "\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join('"%s"' % c if isinstance(c, str) else
                              ("NaN" if c is None else repr(c)) for c in row) + "\n")


COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"]
RUN_TITLES = {"ping": "Ping", "get": "GetUser (cache hit)",
              "mix": "get=95,update=4,create=1 (Zipf)"}


def chart_bars(name, title, ylabel, targets, series, charts, extra=""):
    """A clustered bar chart: one cluster per target, one bar per (title, value-of) series."""
    rows = [[SHORT_NAMES[t]] + [value(t) for _, value in series] for t in targets]
    write_data(os.path.join(charts, name + ".dat"), ["target"] + [s[0] for s in series], rows)
    plot = ", \\\n     ".join("'%s.dat' using %d%s title '%s' lc rgb '%s'" % (
        name, i + 2, ":xtic(1)" if i == 0 else "", label, COLORS[i])
                                for i, (label, _) in enumerate(series))
    return gnuplot(STYLE + """set output '%s.png'
set title '%s'
set ylabel '%s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -20
set yrange [0:*]
%s
plot %s
""" % (name, title, ylabel, extra, plot), charts)


def chart_throughput(runs, targets, charts):
    return chart_bars(
        "throughput", "Closed-loop throughput (16 connections): Ping, cached GetUser, 95/5 Zipf "
        "mix", "requests per second", targets,
        [(RUN_TITLES[r], lambda t, r=r: rps(runs, t, r)) for r in ("ping", "get", "mix")],
        charts, "set format y '%.0s%c'")


def chart_latency(runs, targets, charts, key, filename, title):
    plots = []
    for i, t in enumerate(targets):
        rates = open_rates(runs, t)
        if not rates:
            continue
        dat = "latency-%s-%s.dat" % (key, t)
        write_data(os.path.join(charts, dat), ["rate", key, "sustained"],
                   [[rate, doc["latency_ms"][key], 1 if doc.get("sustained") else 0]
                    for rate, doc in rates])
        plots.append("'%s' using 1:2 with linespoints lw 2 pt %d title '%s'" %
                     (dat, 5 + i, SHORT_NAMES[t]))
    if not plots:
        return False
    return gnuplot(STYLE + """set output '%s'
set title '%s'
set xlabel 'offered load (arrivals per second, open loop)'
set ylabel 'latency from intended send time (ms)'
set logscale y
set logscale x
set key outside right
set arrow from %d, graph 0 to %d, graph 1 nohead dt 2 lc rgb '#999999'
set arrow from graph 0, first %g to graph 1, first %g nohead dt 3 lc rgb '#cc0000'
plot %s
""" % (filename, title, OPEN_LOOP_TARGET_RATE, OPEN_LOOP_TARGET_RATE, P99_TARGET_MS,
       P99_TARGET_MS, ", \\\n     ".join(plots)), charts)


def chart_bytes(runs, targets, charts):
    rows = []
    for t in targets:
        doc = runs.get((t, "get"))
        rows.append([SHORT_NAMES[t], doc.get("bytes_sent_per_request") if doc else None,
                     doc.get("bytes_received_per_request") if doc else None])
    write_data(os.path.join(charts, "bytes.dat"), ["target", "sent", "received"], rows)
    return gnuplot(STYLE + """set output 'bytes_per_request.png'
set title 'Bytes on the wire per cached GetUser (TCP payload, both directions, headers and framing included)'
set ylabel 'bytes per request'
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.7
set xtics rotate by -20
set yrange [0:*]
plot 'bytes.dat' using 2:xtic(1) title 'request (client to server)' lc rgb '#4e79a7', \
     '' using 3 title 'response (server to client)' lc rgb '#e15759'
""", charts)


def chart_cpu(runs, targets, charts):
    return chart_bars(
        "cpu_per_request", "Server CPU time per request (user + system, all server-side "
        "processes of the target)", "CPU microseconds per request", targets,
        [(RUN_TITLES[r], lambda t, r=r: server_cpu_us(runs.get((t, r))))
         for r in ("ping", "get", "mix")], charts)


def chart_micro(micro, charts):
    if not micro:
        return False, False
    messages = [m for m in MESSAGE_NAMES if any(k[2] == m for k in micro)]
    rows_b, rows_t = [], []
    for e in ENCODING_ORDER:
        rows_b.append([ENCODING_NAMES[e]] +
                      [(micro.get(("encode", e, m)) or {}).get("bytes") for m in messages])
        rows_t.append([ENCODING_NAMES[e]] + [
            sum_or_none((micro.get(("encode", e, m)) or {}).get("ns"),
                        (micro.get(("decode", e, m)) or {}).get("ns")) / 1000.0
            if sum_or_none((micro.get(("encode", e, m)) or {}).get("ns"),
                           (micro.get(("decode", e, m)) or {}).get("ns")) is not None else None
            for m in messages])
    write_data(os.path.join(charts, "micro_bytes.dat"), ["encoding"] + messages, rows_b)
    write_data(os.path.join(charts, "micro_time.dat"), ["encoding"] + messages, rows_t)
    plot_b = ", ".join("'micro_bytes.dat' using %d%s title '%s' lc rgb '%s'" %
                       (i + 2, ":xtic(1)" if i == 0 else "", MESSAGE_NAMES[m], COLORS[i])
                       for i, m in enumerate(messages))
    plot_t = plot_b.replace("micro_bytes.dat", "micro_time.dat")
    common = """set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set key top left
"""
    ok_b = gnuplot(STYLE + common + """set output 'micro_bytes.png'
set title 'Encoded size of one message (bytes on the wire, log scale)'
set ylabel 'bytes'
plot %s
""" % plot_b, charts)
    ok_t = gnuplot(STYLE + common + """set output 'micro_time.png'
set title 'Encode + decode time of one message (microseconds, log scale)'
set ylabel 'microseconds'
plot %s
""" % plot_t, charts)
    return ok_b, ok_t


def sum_or_none(a, b):
    if a is None or b is None:
        return None
    return a + b


# --------------------------------------------------------------- report ----


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def verdict(value, target, higher_is_better=True):
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "missed"


def write_csv(runs, out):
    fields = ["target", "run", "protocol", "mode", "target_rate", "sustained", "connections",
              "requests", "throughput_rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
              "mean_ms", "error_count", "bytes_sent_per_request", "bytes_received_per_request",
              "cache_hit_ratio", "server_cpu_us_per_request", "client_cpu_us_per_request"]
    with open(os.path.join(out, "results.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for (t, run), d in sorted(runs.items(), key=lambda kv: (order(kv[0][0]), kv[0][1])):
            lat = d.get("latency_ms", {})
            w.writerow([t, run, d.get("protocol"), d.get("mode"), d.get("target_rate"),
                        d.get("sustained"), d.get("connections"), d.get("requests"),
                        round(d.get("throughput_rps", 0), 1), lat.get("p50"), lat.get("p90"),
                        lat.get("p99"), lat.get("p999"), lat.get("max"), lat.get("mean"),
                        d.get("error_count"), d.get("bytes_sent_per_request"),
                        d.get("bytes_received_per_request"), hit_ratio(d), server_cpu_us(d),
                        (d.get("client_cpu") or {}).get("per_request_us")])


def write_micro_csv(micro, out):
    with open(os.path.join(out, "micro.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["direction", "encoding", "message", "ns_per_op", "bytes"])
        for (direction, e, m), v in sorted(micro.items()):
            w.writerow([direction, e, m, round(v["ns"], 1), v["bytes"]])


def order(target):
    return TARGET_ORDER.index(target) if target in TARGET_ORDER else len(TARGET_ORDER)



def rounds_text(cases):
    """How the validation cases were run, for the report's text."""
    rounds = max(v.get("rounds", 1) for v in cases)
    if rounds <= 1:
        return "one round per case"
    return ("%d rounds per case, harness then tool in each; the figures are medians "
            "and *harness / tool* the median of the rounds' ratios" % rounds)


def tool_agreement(validation, target, op):
    """Whether the harness's figure of `target`'s `op` agrees (within 15%) with the
    independent tool's in the shared layout, the layout of every run in the report:
    True, False, or None when no tool checked it."""
    cases = [v for v in validation if v["target"] == target and v["op"] == op and
             v.get("layout", "shared") == "shared" and v.get("ratio") is not None]
    if not cases:
        return None
    return all(abs(v["ratio"] - 1) <= 0.15 for v in cases)


def build_report(out):
    raw = os.path.join(out, "raw")
    runs = load_runs(raw)
    env = load_json(os.path.join(raw, "environment.json"), {})
    validation = load_json(os.path.join(raw, "validation.json"), [])
    failures = load_json(os.path.join(raw, "failures.json"), [])
    micro, micro_context = load_micro(raw)
    targets = [t for t in TARGET_ORDER if any(k[0] == t for k in runs)]
    charts = os.path.join(out, "charts")
    os.makedirs(charts, exist_ok=True)

    write_csv(runs, out)
    write_micro_csv(micro, out)
    have = {
        "throughput": chart_throughput(runs, targets, charts),
        "p99": chart_latency(runs, targets, charts, "p99", "latency_p99_vs_load.png",
                             'p99 latency against offered load (get=95,update=4,create=1, Zipf)'),
        "p50": chart_latency(runs, targets, charts, "p50", "latency_p50_vs_load.png",
                             'Median latency against offered load (same mix)'),
        "bytes": chart_bytes(runs, targets, charts),
        "cpu": chart_cpu(runs, targets, charts),
    }
    have["micro_bytes"], have["micro_time"] = chart_micro(micro, charts)
    for name in os.listdir(charts):
        if name.endswith(".dat"):
            os.remove(os.path.join(charts, name))

    md = []
    plan = env.get("plan", {})
    md.append("# polycrud protocol comparison: %s on %s\n" % (env.get("date", "?")[:10],
                                                              env.get("host", "?")))
    md.append("Thrift, gRPC, SOAP and REST faces of one polycrud server, the Express web "
              "gateway in front of Thrift, and two peers (a Python Thrift service and an "
              "Express REST service doing the same cache-aside), each measured alone on the "
              "same %s-core machine, the same MariaDB with %s users and the same Redis, in one "
              "run. Every figure below comes from `raw/` in this folder; `results.csv` has one "
              "row per run.\n" % (env.get("cores", "?"), "{:,}".format(plan.get("users", 0))))
    if have["throughput"]:
        md.append("![Closed-loop throughput per protocol](charts/throughput.png)\n")
    if failures:
        md.append("**Failed in this run:** " + "; ".join(f.splitlines()[0] for f in failures) +
                  "\n")

    # Headline ratios.
    thrift_ping, thrift_get = rps(runs, "thrift", "ping"), rps(runs, "thrift", "get")
    md.append("## Headline\n")
    bullets = []
    if thrift_ping and thrift_get:
        bullets.append("Thrift `getUser` on a cache hit runs at **%.0f%%** of Thrift `ping` "
                       "(%s vs %s requests/s)." % (100 * thrift_get / thrift_ping,
                                                  fmt_int(thrift_get), fmt_int(thrift_ping)))
    # A figure goes into the headline only if the harness's client agrees with
    # the independent tool on it (where one checked it).
    disagree = lambda t, op: tool_agreement(validation, t, op) is False
    left_out = []
    for t in ["thrift-compact", "thrift-near", "grpc", "rest", "soap", "web"]:
        r = ratio(rps(runs, t, "get"), thrift_get)
        if r is not None and disagree(t, "get"):
            left_out.append("%s `GetUser`" % TARGET_NAMES[t])
        elif r is not None:
            bullets.append("%s `GetUser`: **%.2fx** Thrift's throughput (%s requests/s), p99 "
                           "%s ms vs %s ms." % (TARGET_NAMES[t], r, fmt_int(rps(runs, t, "get")),
                                                fmt_ms(p(runs, t, "get")),
                                                fmt_ms(p(runs, "thrift", "get"))))
    for ours, peer in (("thrift", "python-thrift"), ("rest", "express")):
        for run in ("get", "mix"):
            r = ratio(rps(runs, ours, run), rps(runs, peer, run))
            if r is not None and disagree(ours, run):
                left_out.append("polycrud %s vs the %s (%s)" % (SHORT_NAMES[ours],
                                                                TARGET_NAMES[peer], run))
            elif r is not None:
                bullets.append("polycrud %s vs the %s, %s: **%.1fx** the throughput, p99 %s ms "
                               "vs %s ms." % (SHORT_NAMES[ours], TARGET_NAMES[peer],
                                              "cached GetUser" if run == "get" else
                                              "95/5 Zipf mix", r, fmt_ms(p(runs, ours, run)),
                                              fmt_ms(p(runs, peer, run))))
    doc17 = runs.get(("thrift", "open-%d" % OPEN_LOOP_TARGET_RATE))
    if doc17:
        bullets.append("95/5 Zipf mix over %s users at %s arrivals/s, open loop, Thrift: p99 "
                       "**%s ms**, %s." % ("{:,}".format(plan.get("users", 0)),
                                          "{:,}".format(OPEN_LOOP_TARGET_RATE),
                                          fmt_ms(doc17["latency_ms"]["p99"]),
                                          "sustained" if doc17.get("sustained") else
                                          "not sustained"))
    if left_out:
        bullets.append("Left out of this headline: %s. On these, the harness's client and the "
                       "independent tool disagree by more than 15%% in the shared layout (see "
                       "\"The harness checked against independent tools\"), so the figure "
                       "may measure the client rather than the server." % ", ".join(left_out))
    md.append("\n".join("- " + b for b in bullets) + "\n")

    # Targets.
    md.append("## Targets\n")
    rows = []
    r = ratio(thrift_get, thrift_ping)
    rows.append(["Thrift getUser (hit) >= 60% of Thrift ping", "%s" % (
        "%.0f%%" % (100 * r) if r else "-"), verdict(r, 0.6)])
    near = ratio(rps(runs, "thrift-near", "get"), thrift_ping)
    if near is not None:
        rows.append(["... with the near cache (`--near-cache-entries`, single instance), "
                     "against the same Thrift ping", "%.0f%%" % (100 * near), verdict(near, 0.6)])
    for ours, peer, need in (("thrift", "python-thrift", 5.0), ("rest", "express", 3.0)):
        for run in ("get", "mix"):
            r = ratio(rps(runs, ours, run), rps(runs, peer, run))
            pr_ours, pr_peer = p(runs, ours, run), p(runs, peer, run)
            lower = (pr_ours is not None and pr_peer is not None and pr_ours < pr_peer)
            rows.append(["polycrud %s >= %gx %s (%s), lower p99" % (
                SHORT_NAMES[ours], need, SHORT_NAMES[peer], run), "%s, p99 %s vs %s ms" % (
                    "%.1fx" % r if r else "-", fmt_ms(pr_ours), fmt_ms(pr_peer)),
                "met" if (r is not None and r >= need and lower) else
                ("not measured" if r is None else "missed")])
    if doc17:
        met = doc17.get("sustained") and doc17["latency_ms"]["p99"] < P99_TARGET_MS
        rows.append(["95/5 Zipf mix over 8M users at 17,000/s, p99 < 10 ms (Thrift)",
                     "p99 %s ms, %s req/s achieved%s" % (
                         fmt_ms(doc17["latency_ms"]["p99"]), fmt_int(doc17["throughput_rps"]),
                         "" if doc17.get("sustained") else " (not sustained)"),
                     "met" if met else "missed"])
    else:
        best = highest_sustained(runs, "thrift")
        rows.append(["95/5 Zipf mix over 8M users at 17,000/s, p99 < 10 ms (Thrift)",
                     "highest sustained rate: %s" % ("%s/s (p99 %s ms)" % (
                         fmt_int(best[0]), fmt_ms(best[1]["latency_ms"]["p99"])) if best else
                                                      "none"), "missed"])
    search_p99 = p(runs, "thrift", "search")
    if search_p99 is not None:
        rows.append(["SearchUsers p99 < 10 ms on the %s-user table (Thrift, 2 connections)" %
                     "{:,}".format(plan.get("users", 0)), "p99 %s ms, %s searches/s" % (
                         fmt_ms(search_p99), fmt_int(rps(runs, "thrift", "search"))),
                     "met" if search_p99 < 10 else "missed"])
    md.append(table(["target", "measured", "verdict"], rows))
    md.append("Where a target is missed, see *Analysis* below for what limits it.\n")

    # Closed-loop results.
    md.append("## Closed loop: saturation\n")
    md.append("%d connections (batch: 4) on 2 load-generator threads (fibers, one "
              "epoll wait per thread for all its connections), %s s warm-up, %s s measured "
              "per run. *get*: "
              "GetUser over ids 1-1000, all cache hits after warm-up; *mix*: "
              "get=95,update=4,create=1 with Zipf(s=%s) ids over the %s seeded users; "
              "*batch*: BatchGetUsers of 1000 Zipf ids.\n" % (
                  plan.get("connections", 16), plan.get("warmup_s"), plan.get("duration_s"),
                  plan.get("zipf_s"), "{:,}".format(plan.get("users", 0))))
    rows = []
    for t in targets:
        get = runs.get((t, "get"))
        rows.append([TARGET_NAMES[t], fmt_int(rps(runs, t, "ping")), fmt_ms(p(runs, t, "ping")),
                     fmt_int(rps(runs, t, "get")), fmt_ms(p(runs, t, "get")),
                     fmt_ratio(ratio(rps(runs, t, "get"), rps(runs, t, "ping"))),
                     fmt_int(rps(runs, t, "mix")), fmt_ms(p(runs, t, "mix")),
                     "-" if hit_ratio(runs.get((t, "mix"))) is None else
                     "%.1f%%" % (100 * hit_ratio(runs.get((t, "mix")))),
                     fmt_int(rps(runs, t, "batch")), fmt_ms(p(runs, t, "batch")),
                     fmt_int(per_request_bytes(get)), fmt_int(server_cpu_us(get))])
    md.append(table(["target", "ping/s", "ping p99 ms", "get/s", "get p99 ms", "get/ping",
                     "mix/s", "mix p99 ms", "mix hit ratio", "batch/s", "batch p99 ms",
                     "bytes/get", "server CPU us/get"], rows))
    errors = [(t, run, d["errors"]) for (t, run), d in runs.items() if d.get("error_count")]
    if errors:
        md.append("Error answers seen (counted, latency included): " + "; ".join(
            "%s/%s %s" % (t, run, ", ".join("%s %d" % kv for kv in e.items()))
            for t, run, e in sorted(errors)) + ".\n")
    if have["cpu"]:
        md.append("![Server CPU per request](charts/cpu_per_request.png)\n")
    if have["bytes"]:
        md.append("![Bytes per request](charts/bytes_per_request.png)\n")

    # Search.
    searched = [t for t in targets if (t, "search") in runs]
    if searched:
        md.append("## Search\n")
        md.append("SearchUsers, closed loop, %d connections (a search's own latency, not a "
                  "queue at saturation): each search is for \"user\" and the "
                  "first 6 of a random seeded username's 8 digits, so 100 of the %s users share "
                  "the prefix and a page of 20 comes back (a range on each unique index of "
                  "MariaDB, never the cache; [search.md](../../docs/search.md)).\n" % (
                      runs[(searched[0], "search")].get("connections", 2),
                      "{:,}".format(plan.get("users", 0))))
        md.append(table(["target", "searches/s", "p50 ms", "p99 ms", "errors"], [
            [TARGET_NAMES[t], fmt_int(rps(runs, t, "search")), fmt_ms(p(runs, t, "search", "p50")),
             fmt_ms(p(runs, t, "search")), str(runs[(t, "search")].get("error_count", 0))]
            for t in searched]))

    # Open loop.
    md.append("## Open loop: latency against offered load\n")
    md.append("Arrivals at fixed intervals, %d connections; latency counts from each request's "
              "intended send time, so a server that falls behind is charged for the queue "
              "(no coordinated omission). A rate is *sustained* when the run completed at least "
              "99%% of its arrivals within the window. The sweep of a target stops after its "
              "first unsustained rate.\n" % plan.get("open_connections", 64))
    if have["p99"]:
        md.append("![p99 against offered load](charts/latency_p99_vs_load.png)\n")
    rates = sorted({int(run[5:]) for (_, run) in runs if run.startswith("open-")})
    rows = []
    for t in targets:
        row = [TARGET_NAMES[t]]
        for rate in rates:
            d = runs.get((t, "open-%d" % rate))
            if not d:
                row.append("-")
            else:
                row.append("%s / %s%s" % (fmt_ms(d["latency_ms"]["p50"]),
                                          fmt_ms(d["latency_ms"]["p99"]),
                                          "" if d.get("sustained") else
                                          " (not sustained: %s/s done)" % fmt_int(achieved(d))))
        rows.append(row)
    if rates:
        md.append("p50 / p99 in ms at each offered rate (arrivals per second):\n\n")
        md.append(table(["target"] + ["{:,}".format(r) for r in rates], rows))
    if have["p50"]:
        md.append("![p50 against offered load](charts/latency_p50_vs_load.png)\n")

    # Micro.
    if micro:
        md.append("## Micro-benchmarks: encoding cost and size\n")
        md.append("Google Benchmark, one core, the project's real encoders (`raw/micro.json`). "
                  "Bytes are one message as it crosses the wire; time is encode + decode.\n")
        rows = []
        for e in ENCODING_ORDER:
            row = [ENCODING_NAMES[e]]
            for m in MESSAGE_NAMES:
                enc, dec = micro.get(("encode", e, m)), micro.get(("decode", e, m))
                if not enc or not dec:
                    row.append("-")
                    continue
                row.append("%s B, %s us" % (fmt_int(enc["bytes"]),
                                            "%.2f" % ((enc["ns"] + dec["ns"]) / 1000.0)))
            rows.append(row)
        md.append(table(["encoding"] + [MESSAGE_NAMES[m] for m in MESSAGE_NAMES], rows))
        if have["micro_bytes"]:
            md.append("![Encoded size](charts/micro_bytes.png)\n")
        if have["micro_time"]:
            md.append("![Encode + decode time](charts/micro_time.png)\n")

    md.append(claims_section(runs, micro))
    md.append(why_section(runs, micro))

    # Validation.
    md.append("## The harness checked against independent tools\n")

    if validation:
        md.append("The same requests at the same concurrency, measured by `polycrud-bench` and "
                  "by a tool nobody here wrote (`wrk` for HTTP/1.1, `h2load` for gRPC over "
                  "HTTP/2), one right after the other (%s), with the same number of threads "
                  "(each of the harness's threads runs its connections' clients as fibers "
                  "and waits for all of them in one epoll call, as `wrk` and `h2load` do), "
                  "in two layouts. *shared*: as in every "
                  "run above, all processes share every core, so each tool's own CPU cost per "
                  "request competes with the server's: `wrk` and `h2load` parse nothing, "
                  "while the harness encodes and decodes every call with the protocol's real "
                  "client library (its cost per request is in the last column). *pinned*: the load "
                  "generator on CPU 0, the server, Redis and MariaDB on the others, so both "
                  "tools measure the server rather than themselves; this is the check that "
                  "the harness measures what the tools measure. (h2load counts HTTP statuses "
                  "only, not grpc-status; raw outputs in `raw/validate-*.txt`.)\n"
                  % rounds_text(validation))
        rows = []
        for v in validation:
            r = v.get("ratio")
            rows.append([v["target"], v["op"], v.get("layout", "shared"), v["connections"],
                         v["tool"], fmt_int(v["tool_rps"]), fmt_int(v["harness_rps"]),
                         fmt_ratio(r), "-" if r is None else
                         ("yes" if abs(r - 1) <= 0.15 else "no"),
                         fmt_int(v.get("harness_client_cpu_us"))])
        md.append(table(["face", "op", "layout", "connections", "tool", "tool req/s",
                         "harness req/s", "harness / tool", "within 15%",
                         "harness client CPU us/req"], rows))
    else:
        md.append("Not run in this report (`--no-validate`).\n")

    analysis = os.path.join(out, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis, encoding="utf-8") as f:
            md.append("## Analysis\n")
            md.append(f.read().strip() + "\n")

    # Environment.
    md.append("## Machine, versions and settings\n")
    md.append(table(["", ""], [
        ["machine", "%s, %s cores, %s GiB, %s, kernel %s" % (env.get("cpu"), env.get("cores"),
                                                             env.get("memory_gib"),
                                                             env.get("os"), env.get("kernel"))],
        ["commit", env.get("commit")],
        ["plan", ", ".join("%s=%s" % kv for kv in plan.items())],
        ["servers", env.get("server_settings", "")],
    ]))
    versions = env.get("versions", {})
    md.append(table(["component", "version"], [[k, v] for k, v in versions.items()]))
    md.append("Everything (MariaDB, Redis, the server under test and the load generator) "
              "shares the machine's cores; each target runs alone. Commands of every run are "
              "in `raw/*.json` (`command`).\n")
    md.append("Reproduce: `./polycrud bench` (full) or `./polycrud bench --quick`.\n")

    with open(os.path.join(out, "REPORT.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))


def why_section(runs, micro):
    """Plain-word reasons, each backed by a figure of this run."""
    md = ["## Why\n"]
    points = []
    user = {e: micro.get(("encode", e, "user")) for e in ENCODING_ORDER}
    user_dec = {e: micro.get(("decode", e, "user")) for e in ENCODING_ORDER}
    if all(user.values()) and all(user_dec.values()):
        tb = user["thrift_binary"]
        cost = {e: user[e]["ns"] + user_dec[e]["ns"] for e in ENCODING_ORDER}
        points.append(
            "**Payload size.** One User is %s bytes in Thrift compact, %s in Thrift binary, %s "
            "in Protobuf, %s as the REST JSON body and %s as a SOAP envelope: SOAP carries "
            "%.1fx the bytes of Thrift binary for the same record, JSON %.1fx. Field names and "
            "closing tags travel with every JSON and XML message; Thrift and Protobuf send "
            "numeric field ids." % (fmt_int(user["thrift_compact"]["bytes"]), fmt_int(tb["bytes"]),
                                    fmt_int(user["protobuf"]["bytes"]),
                                    fmt_int(user["json"]["bytes"]),
                                    fmt_int(user["soap_xml"]["bytes"]),
                                    user["soap_xml"]["bytes"] / tb["bytes"],
                                    user["json"]["bytes"] / tb["bytes"]))
        points.append(
            "**Parsing cost.** Encoding plus decoding one User takes %.2f us in Thrift binary, "
            "%.2f us in Protobuf, %.2f us in JSON and %.2f us in SOAP XML on one core: text "
            "formats are %.0fx (JSON) and %.0fx (SOAP) the CPU of Thrift binary, because every "
            "number is printed and parsed as text and every name is matched as a string." % (
                cost["thrift_binary"] / 1000, cost["protobuf"] / 1000, cost["json"] / 1000,
                cost["soap_xml"] / 1000, cost["json"] / cost["thrift_binary"],
                cost["soap_xml"] / cost["thrift_binary"]))
    wire = {t: per_request_bytes(runs.get((t, "get"))) for t in ("thrift", "grpc", "rest", "soap")}
    cpu = {t: server_cpu_us(runs.get((t, "get"))) for t in ("thrift", "grpc", "rest", "soap")}
    if all(wire.values()) and all(cpu.values()):
        points.append(
            "**On the wire, whole calls.** A cached GetUser call moves %s bytes over TCP in "
            "Thrift, %s in gRPC, %s in REST and %s in SOAP (both directions, with HTTP "
            "headers, HTTP/2 frames and Thrift frames), and costs the server %s, %s, %s and %s "
            "us of CPU. HTTP/1.1 headers cost REST and SOAP bytes and parsing on every call; "
            "Thrift's framed binary protocol has a 4-byte frame header and a short message "
            "header." % (fmt_int(wire["thrift"]), fmt_int(wire["grpc"]), fmt_int(wire["rest"]),
                         fmt_int(wire["soap"]), fmt_int(cpu["thrift"]), fmt_int(cpu["grpc"]),
                         fmt_int(cpu["rest"]), fmt_int(cpu["soap"])))
    ping = {t: rps(runs, t, "ping") for t in ("thrift", "grpc", "rest", "soap")}
    if all(ping.values()):
        points.append(
            "**Connection model.** Ping, which does no I/O behind the face, shows the cost of "
            "each stack alone: Thrift %s/s (2 threads, each running its connections as "
            "fibers over one epoll, so a call costs a read and a write but no thread "
            "switch), REST %s/s (Boost.Beast, 8 event-loop threads), SOAP %s/s "
            "(gSOAP, one worker thread per keep-alive connection), gRPC %s/s (HTTP/2 with "
            "its own completion-queue threads and a hand-off to workers for calls that reach "
            "Redis or MariaDB)." % tuple(fmt_int(ping[t]) for t in ("thrift", "rest", "soap",
                                                                     "grpc")))
    mix = {t: rps(runs, t, "mix") for t in ("thrift", "python-thrift", "rest", "express")}
    if mix["thrift"] and mix["python-thrift"]:
        get_ratio = ratio(rps(runs, "thrift", "get"), rps(runs, "python-thrift", "get"))
        mix_ratio = ratio(mix["thrift"], mix["python-thrift"])
        text = ("**Runtime.** The Python peer speaks the same Thrift wire protocol to the same "
                "Redis and MariaDB with the same cache format, so what separates it from "
                "polycrud is the runtime: CPU per cached get %s us against %s us, %.1fx the "
                "throughput on cached gets" % (
                    fmt_int(server_cpu_us(runs.get(("python-thrift", "get")))),
                    fmt_int(server_cpu_us(runs.get(("thrift", "get")))), get_ratio or 0))
        if mix_ratio is not None and mix_ratio < 2:
            text += (", but only %.1fx in the mix, where both wait mostly on the same MariaDB "
                     "(writes and cache misses)." % mix_ratio)
        else:
            text += " and %.1fx in the mix." % (mix_ratio or 0)
        points.append(text)
    web = rps(runs, "web", "get")
    if web and rps(runs, "rest", "get"):
        points.append(
            "**The gateway hop.** The Express gateway in front of Thrift serves %s cached "
            "gets/s against %s/s for the C++ REST face on the same server: every call crosses "
            "one more process and one more protocol, and a single Node.js event loop does the "
            "HTTP, JSON and Thrift work (CPU per get %s us, both processes)." % (
                fmt_int(web), fmt_int(rps(runs, "rest", "get")),
                fmt_int(server_cpu_us(runs.get(("web", "get"))))))
    if not points:
        return ""
    md.append("\n".join("- " + x for x in points) + "\n")
    return "\n".join(md)


def claims_section(runs, micro):
    """The classic comparison's measurable claims, each with a verdict from our figures."""
    md = ["## The classic comparison, checked\n",
          "\"Microservice Showdown: REST vs SOAP vs Apache Thrift\" (Nordic APIs, 2015) argues "
          "qualitatively, with no published measurements; the rating table quoted with it rates "
          "Thrift fastest, simplest and most scalable, SOAP slowest and heaviest, REST in "
          "between. Our figures for each claim that can be measured:\n"]
    rows = []
    get = {t: rps(runs, t, "get") for t in ("thrift", "rest", "soap", "grpc")}
    if all(get[t] for t in ("thrift", "rest", "soap")):
        order_ = sorted(("thrift", "rest", "soap"), key=lambda t: -get[t])
        holds = order_ == ["thrift", "rest", "soap"]
        rows.append(["Speed: Thrift fastest, SOAP slowest, REST in between (cached GetUser "
                     "throughput)", "Thrift %s, REST %s, SOAP %s req/s (REST %.2fx, SOAP %.2fx "
                     "Thrift)" % (fmt_int(get["thrift"]), fmt_int(get["rest"]),
                                  fmt_int(get["soap"]), get["rest"] / get["thrift"],
                                  get["soap"] / get["thrift"]),
                     "holds" if holds else "does not hold: order is " + " > ".join(
                         SHORT_NAMES[t] for t in order_)])
    lat = {t: p(runs, t, "get") for t in ("thrift", "rest", "soap")}
    if all(lat.values()):
        holds = lat["thrift"] <= lat["rest"] <= lat["soap"]
        rows.append(["Speed: latency (p99 of cached GetUser)", "Thrift %s, REST %s, SOAP %s ms"
                     % (fmt_ms(lat["thrift"]), fmt_ms(lat["rest"]), fmt_ms(lat["soap"])),
                     "holds" if holds else "partly: order differs"])
    if micro:
        sizes = {e: (micro.get(("encode", e, "user")) or {}).get("bytes")
                 for e in ("thrift_binary", "thrift_compact", "json", "soap_xml")}
        if all(sizes.values()):
            holds = sizes["soap_xml"] > sizes["json"] > min(sizes["thrift_binary"],
                                                            sizes["thrift_compact"])
            rows.append(["Payload: SOAP heaviest, Thrift lightest (one User encoded)",
                         "Thrift compact %s B, binary %s B, JSON %s B, SOAP %s B (SOAP %.1fx "
                         "Thrift binary)" % (fmt_int(sizes["thrift_compact"]),
                                            fmt_int(sizes["thrift_binary"]),
                                            fmt_int(sizes["json"]), fmt_int(sizes["soap_xml"]),
                                            sizes["soap_xml"] / sizes["thrift_binary"]),
                         "holds" if holds else "does not hold"])
    wire = {t: per_request_bytes(runs.get((t, "get"))) for t in ("thrift", "rest", "soap")}
    if all(wire.values()):
        holds = wire["thrift"] < wire["rest"] < wire["soap"]
        rows.append(["Payload on the wire per GetUser call (headers and framing included)",
                     "Thrift %s B, REST %s B, SOAP %s B" % (fmt_int(wire["thrift"]),
                                                           fmt_int(wire["rest"]),
                                                           fmt_int(wire["soap"])),
                     "holds" if holds else "does not hold: order differs"])
    cpu = {t: server_cpu_us(runs.get((t, "get"))) for t in ("thrift", "rest", "soap")}
    if all(cpu.values()):
        holds = cpu["thrift"] < cpu["rest"] < cpu["soap"]
        rows.append(["Heaviness: server CPU per cached GetUser", "Thrift %s, REST %s, SOAP %s us"
                     % (fmt_int(cpu["thrift"]), fmt_int(cpu["rest"]), fmt_int(cpu["soap"])),
                     "holds" if holds else "does not hold: order differs"])
    scal = {}
    for t in ("thrift", "rest", "soap"):
        best = highest_sustained(runs, t)
        scal[t] = best
    if any(scal.values()):
        desc = ", ".join("%s %s" % (SHORT_NAMES[t], ("%s/s (p99 %s ms)" % (
            fmt_int(b[0]), fmt_ms(b[1]["latency_ms"]["p99"]))) if b else "none")
                         for t, b in scal.items())
        best_rate = {t: (b[0] if b else 0) for t, b in scal.items()}
        holds = best_rate["thrift"] >= max(best_rate["rest"], best_rate["soap"])
        rows.append(["Scalability under load: highest sustained open-loop rate of the 95/5 mix",
                     desc, "holds" if holds else "does not hold"])
    batch = {t: rps(runs, t, "batch") for t in ("thrift", "rest", "soap")}
    if all(batch.values()):
        order_ = sorted(batch, key=lambda t: -batch[t])
        rows.append(["Large data: BatchGetUsers of 1000 users", "Thrift %s, REST %s, SOAP %s "
                     "batches/s (%s, %s, %s users/s)" % (
                         fmt_int(batch["thrift"]), fmt_int(batch["rest"]), fmt_int(batch["soap"]),
                         fmt_int(batch["thrift"] * 1000), fmt_int(batch["rest"] * 1000),
                         fmt_int(batch["soap"] * 1000)),
                     "holds" if order_ == ["thrift", "rest", "soap"] else
                     "does not hold: order is " + " > ".join(SHORT_NAMES[t] for t in order_)])
    rows.append(["Simplicity", "not a quantity: the three contracts are `idl/polycrud.thrift`, "
                 "`openapi/polycrud.yaml` and `wsdl/polycrud.wsdl`, compare them side by side",
                 "not measured"])
    md.append(table(["claim", "our figures", "verdict"], rows))
    return "\n".join(md)


def main():
    parser = argparse.ArgumentParser(description="Writes REPORT.md, results.csv and charts/ "
                                     "from the raw results of ./polycrud bench.")
    parser.add_argument("out", help="the report folder (with raw/ inside)")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(args.out, "raw")):
        sys.exit("report.py: %s has no raw/ folder" % args.out)
    build_report(args.out)
    print(os.path.join(args.out, "REPORT.md"))


if __name__ == "__main__":
    sys.exit(main())
