#!/usr/bin/python3
"""Unit tests of the benchmark harness (benchmarks/harness/): the report's
ratios, verdicts, tables and charts from a synthetic set of raw results, and
the parsers and request builders of the wrk/h2load validation."""

import csv
import json
import os
import shutil
import sys
import tempfile
import unittest

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "benchmarks",
                       "harness")
sys.path.insert(0, HARNESS)

import report  # noqa: E402
import run  # noqa: E402


def result(target, run_name, rps, p50, p99, mode="closed", sustained=None, sent=100, received=150,
           cpu_us=40.0, hits=None, duration=8.0, errors=None):
    """One polycrud-bench result document, as the harness stores it."""
    doc = {
        "target": target,
        "run": run_name,
        "label": "%s/%s" % (target, run_name),
        "protocol": target,
        "mode": mode,
        "target_rate": int(run_name[5:]) if run_name.startswith("open-") else 0,
        "sustained": sustained,
        "connections": 16,
        "duration_s": duration,
        "requests": int(rps * duration),
        "window_completions": int(rps * duration),
        "throughput_rps": rps,
        "latency_ms": {"p50": p50, "p90": p50 * 1.5, "p99": p99, "p999": p99 * 2,
                       "max": p99 * 3, "mean": p50 * 1.1},
        "errors": errors or {},
        "error_count": sum((errors or {}).values()),
        "bytes_sent_per_request": sent,
        "bytes_received_per_request": received,
        "cache": None if hits is None else {"hits": hits, "misses": 100 - hits,
                                           "hit_ratio": hits / 100.0, "source": "metrics"},
        "server_cpu": {"seconds": cpu_us * rps * duration / 1e6, "per_request_us": cpu_us},
        "client_cpu": {"seconds": 1.0, "per_request_us": 10.0},
    }
    return doc


class ReportTest(unittest.TestCase):

    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="harness-test-")
        raw = os.path.join(self.out, "raw")
        os.makedirs(raw)
        docs = [
            # Thrift: get at 70% of ping; 17,000/s sustained with p99 5 ms.
            result("thrift", "ping", 100000, 0.1, 0.5),
            result("thrift", "get", 70000, 0.2, 1.0, sent=120, received=160, cpu_us=20),
            result("thrift", "mix", 30000, 0.5, 4.0, hits=97),
            result("thrift", "batch", 400, 9.0, 20.0),
            result("thrift", "search", 4000, 0.5, 1.7),
            result("thrift", "open-10000", 10000, 0.3, 2.0, mode="open", sustained=True),
            result("thrift", "open-17000", 17000, 0.4, 5.0, mode="open", sustained=True),
            # REST slower than Thrift, faster than SOAP.
            result("rest", "ping", 50000, 0.3, 1.5),
            result("rest", "get", 30000, 0.5, 3.0, sent=200, received=400, cpu_us=50),
            result("rest", "mix", 20000, 0.8, 6.0, hits=96),
            result("rest", "batch", 100, 40.0, 80.0),
            result("rest", "search", 2000, 1.5, 12.0),
            result("rest", "open-10000", 10000, 0.5, 4.0, mode="open", sustained=True),
            result("rest", "open-17000", 9000, 900.0, 2000.0, mode="open", sustained=False),
            result("soap", "ping", 30000, 0.5, 2.0),
            result("soap", "get", 15000, 1.0, 6.0, sent=900, received=1100, cpu_us=120),
            result("soap", "mix", 10000, 1.5, 9.0, hits=95,
                   errors={"UNAVAILABLE": 3}),
            result("soap", "batch", 50, 80.0, 160.0),
            result("soap", "open-10000", 8000, 800.0, 1500.0, mode="open", sustained=False),
            # Peers: Python at 1/7 of Thrift's get (met), Express at 1/2 of REST's (missed).
            result("python-thrift", "ping", 25000, 0.4, 3.0),
            result("python-thrift", "get", 10000, 1.5, 9.0),
            result("python-thrift", "mix", 5000, 2.0, 20.0),
            result("express", "ping", 20000, 0.8, 5.0),
            result("express", "get", 15000, 1.0, 2.0),
            result("express", "mix", 8000, 1.5, 10.0),
        ]
        for doc in docs:
            with open(os.path.join(raw, "%s--%s.json" % (doc["target"], doc["run"])), "w") as f:
                json.dump(doc, f)
        with open(os.path.join(raw, "environment.json"), "w") as f:
            json.dump({"date": "2026-12-01T00:00:00+00:00", "host": "testhost", "cores": 2,
                       "plan": {"users": 8000000, "connections": 16, "open_connections": 64,
                                "warmup_s": 2, "duration_s": 8, "zipf_s": 0.99},
                       "versions": {"thrift": "0.17.0"}}, f)
        with open(os.path.join(raw, "validation.json"), "w") as f:
            json.dump([{"target": "rest", "op": "get", "layout": "pinned", "connections": 16,
                        "tool": "wrk", "harness_client_cpu_us": 30.0,
                        "tool_command": "wrk ...", "tool_rps": 32000.0, "tool_non_2xx": 0,
                        "harness_rps": 30000.0, "ratio": 30000.0 / 32000.0},
                       {"target": "grpc", "op": "ping", "layout": "shared", "connections": 16,
                        "tool": "h2load", "harness_client_cpu_us": 60.0,
                        "tool_command": "h2load ...", "tool_rps": 20000.0, "tool_non_2xx": 0,
                        "harness_rps": 30000.0, "ratio": 1.5},
                       {"target": "soap", "op": "get", "layout": "shared", "connections": 16,
                        "tool": "wrk", "harness_client_cpu_us": 90.0,
                        "tool_command": "wrk ...", "tool_rps": 25000.0, "tool_non_2xx": 0,
                        "harness_rps": 15000.0, "ratio": 0.6}], f)
        micro = []
        for encoding, size, ns in (("thrift_binary", 144, 300.0), ("thrift_compact", 97, 320.0),
                                   ("protobuf", 85, 200.0), ("json", 177, 3000.0),
                                   ("soap_xml", 720, 15000.0)):
            for direction in ("Encode", "Decode"):
                micro.append({"name": "BM_%s/%s/user" % (direction, encoding),
                              "run_name": "BM_%s/%s/user" % (direction, encoding),
                              "run_type": "iteration", "real_time": ns, "cpu_time": ns,
                              "time_unit": "ns", "bytes": size})
        with open(os.path.join(raw, "micro.json"), "w") as f:
            json.dump({"context": {}, "benchmarks": micro}, f)
        report.build_report(self.out)
        with open(os.path.join(self.out, "REPORT.md"), encoding="utf-8") as f:
            self.md = f.read()

    def tearDown(self):
        shutil.rmtree(self.out, ignore_errors=True)

    def row(self, first_cell, section=None):
        md = self.md if section is None else self.md[self.md.index(section):]
        for line in md.splitlines():
            if line.startswith("| " + first_cell + " |"):
                return [c.strip() for c in line.strip("|").split("|")]
        self.fail("no table row starting with %r in REPORT.md" % first_cell)

    def test_targets_get_ratios_and_verdicts(self):
        self.assertEqual(self.row("Thrift getUser (hit) >= 60% of Thrift ping")[1:], ["70%", "met"])
        python_get = self.row("polycrud Thrift >= 5x Python peer (get), lower p99")
        self.assertEqual(python_get[1], "7.0x, p99 1.00 vs 9.00 ms")
        self.assertEqual(python_get[2], "met")
        express_get = self.row("polycrud REST >= 3x Express peer (get), lower p99")
        self.assertEqual(express_get[1], "2.0x, p99 3.00 vs 2.00 ms")
        self.assertEqual(express_get[2], "missed")
        open_row = self.row("95/5 Zipf mix over 8M users at 17,000/s, p99 < 10 ms (Thrift)")
        self.assertEqual(open_row[2], "met")

    def test_closed_loop_table(self):
        thrift = self.row("Thrift (binary)")
        # ping/s, ping p99, get/s, get p99, get/ping, mix/s, mix p99, hit, batch/s, batch p99,
        # bytes/get, CPU/get
        self.assertEqual(thrift[1:], ["100,000", "0.50", "70,000", "1.00", "0.70", "30,000",
                                      "4.00", "97.0%", "400", "20.00", "280", "20"])

    def test_search_table_and_target(self):
        thrift = self.row("Thrift (binary)", section="## Search")
        self.assertEqual(thrift[1:], ["4,000", "0.50", "1.70", "0"])
        rest = self.row("REST", section="## Search")
        self.assertEqual(rest[1:], ["2,000", "1.50", "12.00", "0"])
        start = self.md.index("## Search")
        section = self.md[start:self.md.index("\n## ", start + 1)]
        self.assertNotIn("| SOAP |", section)  # it ran no search
        targets = self.md[self.md.index("## Targets"):]
        line = next(l for l in targets.splitlines() if l.startswith("| SearchUsers p99 < 10 ms"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        self.assertEqual(cells[1:], ["p99 1.70 ms, 4,000 searches/s", "met"])

    def test_open_loop_table_marks_unsustained_rates(self):
        rest = self.row("REST", section="## Open loop")
        self.assertEqual(rest[1], "0.50 / 4.00")
        self.assertIn("not sustained: 9,000/s done", rest[2])
        soap = self.row("SOAP", section="## Open loop")
        self.assertIn("not sustained", soap[1])
        self.assertEqual(soap[2], "-")

    def test_claims_are_checked_against_the_figures(self):
        speed = self.row("Speed: Thrift fastest, SOAP slowest, REST in between (cached GetUser "
                         "throughput)")
        self.assertEqual(speed[2], "holds")
        self.assertIn("REST 0.43x, SOAP 0.21x", speed[1])
        wire = self.row("Payload on the wire per GetUser call (headers and framing included)")
        self.assertEqual(wire[1:], ["Thrift 280 B, REST 600 B, SOAP 2,000 B", "holds"])
        scal = self.row("Scalability under load: highest sustained open-loop rate of the 95/5 mix")
        self.assertEqual(scal[2], "holds")
        self.assertIn("SOAP none", scal[1])
        batch = self.row("Large data: BatchGetUsers of 1000 users")
        self.assertEqual(batch[2], "holds")

    def test_validation_flags_disagreement_beyond_15_percent(self):
        section = "## The harness checked"
        self.assertEqual(self.row("rest", section)[1:], ["get", "pinned", "16", "wrk", "32,000",
                                                         "30,000", "0.94", "yes", "30"])
        self.assertEqual(self.row("grpc", section)[-2], "no")

    def test_headline_leaves_out_figures_the_independent_tool_disagrees_with(self):
        headline = self.md[self.md.index("## Headline"):self.md.index("## Targets")]
        # SOAP's get: the harness read 0.6x what wrk read (shared layout): left out.
        self.assertNotIn("SOAP `GetUser`: **", headline)
        self.assertIn("Left out of this headline: SOAP `GetUser`.", headline)
        # REST's get was checked in the pinned layout only, and agreed: kept.
        self.assertIn("REST `GetUser`: **0.43x**", headline)
        self.assertEqual(report.tool_agreement([], "rest", "get"), None)
        self.assertFalse(report.tool_agreement(
            [{"target": "grpc", "op": "get", "ratio": 1.2}], "grpc", "get"))
        self.assertTrue(report.tool_agreement(
            [{"target": "grpc", "op": "get", "layout": "shared", "ratio": 0.9},
             {"target": "grpc", "op": "get", "layout": "pinned", "ratio": 0.5}], "grpc", "get"))

    def test_validation_says_how_many_rounds(self):
        self.assertIn("one right after the other (one round per case)", self.md)
        self.assertIn("3 rounds per case", report.rounds_text([{"rounds": 3}, {}]))

    def test_why_section_explains_with_figures(self):
        why = self.md[self.md.index("## Why"):]
        self.assertIn("SOAP carries 5.0x the bytes of Thrift binary", why)
        self.assertIn("text formats are 10x (JSON) and 50x (SOAP) the CPU of Thrift binary", why)
        self.assertIn("7.0x the throughput on cached gets and 6.0x in the mix", why)
        micro = self.row("Thrift binary", section="## Micro-benchmarks")
        self.assertEqual(micro[1], "144 B, 0.60 us")

    def test_errors_are_reported(self):
        self.assertIn("soap/mix UNAVAILABLE 3", self.md)

    def test_csv_has_one_row_per_run(self):
        with open(os.path.join(self.out, "results.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 25)
        thrift_get = [r for r in rows if r["target"] == "thrift" and r["run"] == "get"][0]
        self.assertEqual(float(thrift_get["throughput_rps"]), 70000.0)

    def test_charts_are_rendered(self):
        for name in ("throughput.png", "latency_p99_vs_load.png", "bytes_per_request.png",
                     "cpu_per_request.png"):
            path = os.path.join(self.out, "charts", name)
            self.assertTrue(os.path.exists(path), name)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
            self.assertIn("charts/" + name, self.md)


class ValidationToolsTest(unittest.TestCase):

    def test_parse_wrk(self):
        text = ("Running 8s test @ http://127.0.0.1:29081/v1/ping\n"
                "  2 threads and 16 connections\n"
                "    Latency   310.52us  120.00us   5.00ms   90.00%\n"
                "  400000 requests in 8.00s, 60.00MB read\n"
                "  Non-2xx or 3xx responses: 12\n"
                "Requests/sec:  50000.25\n")
        parsed = run.parse_wrk(text)
        self.assertEqual(parsed["throughput_rps"], 50000.25)
        self.assertEqual(parsed["non_2xx"], 12)
        self.assertEqual(parsed["mean_latency"], "310.52us")

    def test_rounds_are_summarized_by_medians_of_pairs(self):
        harness, tool, ratio = run.summarize_rounds([900.0, 1200.0, 1000.0],
                                                    [1000.0, 1000.0, 1250.0])
        self.assertEqual(harness, 1000.0)
        self.assertEqual(tool, 1000.0)
        # Pair ratios 0.9, 1.2 and 0.8: their median, not 1000 / 1000.
        self.assertAlmostEqual(ratio, 0.9)
        # A tool run that gave no figure gives no ratio.
        self.assertEqual(run.summarize_rounds([1000.0, 500.0], [None, 1000.0]),
                         (750.0, 1000.0, 0.5))
        self.assertEqual(run.summarize_rounds([1000.0], [None]), (1000.0, None, None))

    def test_parse_h2load(self):
        text = ("finished in 8.00s, 41234.50 req/s, 3.00MB/s\n"
                "requests: 329876 total, 329876 started, 329876 done, 329876 succeeded\n"
                "status codes: 329870 2xx, 0 3xx, 4 4xx, 2 5xx\n")
        parsed = run.parse_h2load(text)
        self.assertEqual(parsed["throughput_rps"], 41234.5)
        self.assertEqual(parsed["non_2xx"], 6)

    def test_grpc_frame_of_get_user_request(self):
        # GetUserRequest{id = 300}: field 1 varint, 300 = 0xac 0x02.
        self.assertEqual(run.varint(300), b"\xac\x02")
        self.assertEqual(run.grpc_frame(b"\x08" + run.varint(300)),
                         b"\x00\x00\x00\x00\x03\x08\xac\x02")

    def test_soap_request_is_a_get_user_envelope(self):
        script = run.wrk_lua_soap("get", "tok")
        self.assertIn('wrk.headers["Authorization"] = "Bearer tok"', script)
        self.assertIn("<pc:GetUser><pc:id>]] .. ((n * 7919) % 1000 + 1) .. "
                      "[[</pc:id></pc:GetUser>", script)
        self.assertIn('xmlns:pc="urn:polycrud:v1"', script)


if __name__ == "__main__":
    unittest.main()
