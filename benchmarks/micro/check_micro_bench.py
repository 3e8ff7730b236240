#!/usr/bin/python3
"""Smoke test of polycrud-micro-bench (CTest label `unit`; not a timing test).

Runs the binary once with a tiny --benchmark_min_time and Google Benchmark's
JSON reporter, and --dump_wire to get every encoded message, then checks:

* structure: exactly one BM_Encode and one BM_Decode per encoding x message,
  none failed, every one with a positive "bytes" counter and bytes_per_second;
  encode and decode of one encoding and message report the same bytes;
* the dumped files have exactly the reported size, and independent decoders
  read them: Python's json, python3-protobuf with the messages generated from
  proto/ (after checking the 5-byte gRPC prefix), python3-thrift with the
  code generated from idl/ (after checking the 4-byte frame length), and
  xml.etree for the SOAP envelope; all five encodings must carry the same
  content, with the expected counts (1 user, 100 users, 1000 ids, 1000 users);
* byte orderings that must hold: Thrift compact < Thrift binary, Protobuf <
  JSON < SOAP XML for every message; user < list_100 < batch_response_1000
  for every encoding, and 1000 users about 10x 100 users; Thrift binary's
  1000-id request holds at least 8 bytes per id.

Exit status 0 when everything holds, 1 otherwise (each failure on stderr).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ENCODINGS = ["thrift_binary", "thrift_compact", "protobuf", "json", "soap_xml"]
MESSAGES = ["user", "list_100", "batch_request_1000", "batch_response_1000"]
DIRECTIONS = ["Encode", "Decode"]
USER_FIELDS = ["id", "username", "email", "full_name", "version", "created_at_ms", "updated_at_ms"]
EXPECTED_COUNT = {"user": 1, "list_100": 100, "batch_request_1000": 1000, "batch_response_1000": 1000}
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PC = "urn:polycrud:v1"
SOAP_ELEMENT = {
    "user": "GetUserResponse",
    "list_100": "ListUsersResponse",
    "batch_request_1000": "BatchGetUsers",
    "batch_response_1000": "BatchGetUsersResponse",
}
THRIFT_METHOD = {
    "user": "getUser",
    "list_100": "listUsers",
    "batch_request_1000": "batchGetUsers",
    "batch_response_1000": "batchGetUsers",
}


class Checker:
    def __init__(self):
        self.failures = []

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
        return condition


def content(users=None, ids=None, next_after_id=None):
    """A message's content, comparable across encodings."""
    return {
        "users": [tuple(u[f] for f in USER_FIELDS) for u in users] if users is not None else None,
        "ids": list(ids) if ids is not None else None,
        "next_after_id": next_after_id,
    }


def decode_json(message, data):
    body = json.loads(data.decode("utf-8"))
    if message == "user":
        return content(users=[body])
    if message == "list_100":
        return content(users=body["users"], next_after_id=body["next_after_id"])
    if message == "batch_request_1000":
        return content(ids=body["ids"])
    return content(users=body["users"])


def proto_user(u):
    return {f: getattr(u, f) for f in USER_FIELDS}


def decode_protobuf(pb2, message, data):
    if data[0] != 0 or int.from_bytes(data[1:5], "big") != len(data) - 5:
        raise ValueError("bad gRPC length prefix")
    payload = data[5:]
    if message == "user":
        m = pb2.GetUserResponse.FromString(payload)
        return content(users=[proto_user(m.user)])
    if message == "list_100":
        m = pb2.ListUsersResponse.FromString(payload)
        return content(users=[proto_user(u) for u in m.users], next_after_id=m.next_after_id)
    if message == "batch_request_1000":
        return content(ids=pb2.BatchGetUsersRequest.FromString(payload).ids)
    m = pb2.BatchGetUsersResponse.FromString(payload)
    return content(users=[proto_user(u) for u in m.users])


def thrift_user(u):
    return {f: getattr(u, f) for f in USER_FIELDS}


def decode_thrift(compact, message, data):
    from thrift.protocol import TBinaryProtocol, TCompactProtocol
    from thrift.Thrift import TMessageType
    from thrift.transport import TTransport

    from polycrud import UserService

    if int.from_bytes(data[0:4], "big") != len(data) - 4:
        raise ValueError("bad Thrift frame length")
    transport = TTransport.TMemoryBuffer(data[4:])
    protocol = (TCompactProtocol.TCompactProtocol if compact else TBinaryProtocol.TBinaryProtocol)(
        transport)
    name, mtype, _ = protocol.readMessageBegin()
    request = message == "batch_request_1000"
    if name != THRIFT_METHOD[message] or mtype != (TMessageType.CALL if request else TMessageType.REPLY):
        raise ValueError("unexpected Thrift message %r type %r" % (name, mtype))
    if message == "user":
        result = UserService.getUser_result()
        result.read(protocol)
        return content(users=[thrift_user(result.success)])
    if message == "list_100":
        result = UserService.listUsers_result()
        result.read(protocol)
        return content(users=[thrift_user(u) for u in result.success.users],
                       next_after_id=result.success.next_after_id)
    if message == "batch_request_1000":
        args = UserService.batchGetUsers_args()
        args.read(protocol)
        if len(args.token) != 64:
            raise ValueError("the Thrift call carries no 64-character token")
        return content(ids=args.ids)
    result = UserService.batchGetUsers_result()
    result.read(protocol)
    return content(users=[thrift_user(u) for u in result.success])


def soap_user(element):
    user = {}
    for f in USER_FIELDS:
        text = element.findtext("{%s}%s" % (PC, f))
        if text is None:
            raise ValueError("SOAP user without <pc:%s>" % f)
        user[f] = text if f in ("username", "email", "full_name") else int(text)
    return user


def decode_soap(message, data):
    envelope = ET.fromstring(data)
    if envelope.tag != "{%s}Envelope" % SOAP_ENV:
        raise ValueError("not a SOAP 1.1 envelope: %s" % envelope.tag)
    body = envelope.find("{%s}Body" % SOAP_ENV)
    if body is None or len(body) != 1 or body[0].tag != "{%s}%s" % (PC, SOAP_ELEMENT[message]):
        raise ValueError("the SOAP Body does not hold exactly one pc:%s" % SOAP_ELEMENT[message])
    payload = body[0]
    if message == "user":
        return content(users=[soap_user(payload.find("{%s}user" % PC))])
    if message == "list_100":
        return content(users=[soap_user(u) for u in payload.findall("{%s}users" % PC)],
                       next_after_id=int(payload.findtext("{%s}next_after_id" % PC)))
    if message == "batch_request_1000":
        return content(ids=[int(i.text) for i in payload.findall("{%s}ids" % PC)])
    return content(users=[soap_user(u) for u in payload.findall("{%s}users" % PC)])


def run_benchmark(binary, dump_dir, checker):
    cmd = [binary, "--benchmark_min_time=0.001", "--benchmark_format=json",
           "--dump_wire=" + dump_dir]
    proc = subprocess.run(cmd, capture_output=True, timeout=600)
    if not checker.check(proc.returncode == 0, "%s exited %d: %s" % (
            " ".join(cmd), proc.returncode, proc.stderr.decode(errors="replace").strip())):
        return None
    return json.loads(proc.stdout)


def check_flags(binary, checker):
    proc = subprocess.run([binary, "--help"], capture_output=True, timeout=60)
    checker.check(proc.returncode == 0 and b"BM_Encode/<encoding>/<message>" in proc.stdout,
                  "--help does not exit 0 with the naming scheme")
    proc = subprocess.run([binary, "--no_such_flag"], capture_output=True, timeout=60)
    checker.check(proc.returncode != 0, "an unknown flag is accepted")


def check_report(report, checker):
    """Returns {(encoding, message): bytes} from the benchmark JSON."""
    runs = {}
    for b in report.get("benchmarks", []):
        runs.setdefault(b["name"], []).append(b)
    expected = {"BM_%s/%s/%s" % (d, e, m) for d in DIRECTIONS for e in ENCODINGS for m in MESSAGES}
    checker.check(set(runs) == expected, "benchmark names differ: missing %s, unexpected %s" % (
        sorted(expected - set(runs)), sorted(set(runs) - expected)))
    sizes = {}
    for name in sorted(expected & set(runs)):
        checker.check(len(runs[name]) == 1, "%s reported %d times" % (name, len(runs[name])))
        run = runs[name][0]
        if not checker.check(not run.get("error_occurred"), "%s failed: %s" % (
                name, run.get("error_message"))):
            continue
        checker.check(run.get("iterations", 0) >= 1, "%s ran no iteration" % name)
        checker.check(run.get("real_time", 0) > 0, "%s has no time" % name)
        size = run.get("bytes", 0)
        checker.check(size > 0 and size == int(size), "%s: bytes %r" % (name, size))
        checker.check(run.get("bytes_per_second", 0) > 0, "%s: no bytes_per_second" % name)
        _, encoding, message = name[len("BM_"):].split("/")
        key = (encoding, message)
        if key in sizes:
            checker.check(sizes[key] == size, "%s/%s: encode reports %s bytes, decode %s" % (
                encoding, message, sizes[key], size))
        sizes[key] = int(size)
    return sizes


def check_wire(dump_dir, sizes, pb2, checker):
    for message in MESSAGES:
        decoded = {}
        for encoding in ENCODINGS:
            path = os.path.join(dump_dir, "%s.%s.bin" % (encoding, message))
            if not checker.check(os.path.exists(path), "no wire dump %s" % path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            checker.check(len(data) == sizes.get((encoding, message)), "%s/%s: %d bytes on file, %s reported" % (
                encoding, message, len(data), sizes.get((encoding, message))))
            try:
                if encoding == "json":
                    decoded[encoding] = decode_json(message, data)
                elif encoding == "protobuf":
                    decoded[encoding] = decode_protobuf(pb2, message, data)
                elif encoding == "soap_xml":
                    decoded[encoding] = decode_soap(message, data)
                else:
                    decoded[encoding] = decode_thrift(encoding == "thrift_compact", message, data)
            except Exception as e:  # any decoder's error is a failure of this check
                checker.check(False, "%s/%s: independent decoder failed: %r" % (encoding, message, e))
        if "json" not in decoded:
            continue
        reference = decoded["json"]
        for encoding, value in decoded.items():
            checker.check(value == reference, "%s/%s decodes to other content than json/%s" % (
                encoding, message, message))
        items = reference["ids"] if message == "batch_request_1000" else reference["users"]
        checker.check(items is not None and len(items) == EXPECTED_COUNT[message],
                      "%s: %s items, expected %d" % (message, None if items is None else len(items),
                                                     EXPECTED_COUNT[message]))
        if reference["users"]:
            ids = [u[0] for u in reference["users"]]
            checker.check(len(set(ids)) == len(ids), "%s: duplicate user ids" % message)
            checker.check(all(any(ord(c) > 127 for c in u[3]) for u in reference["users"]),
                          "%s: a full name without an accented letter" % message)
            checker.check(all(len(u[1]) == 12 and len(u[2].encode()) == 25 for u in reference["users"]),
                          "%s: usernames not 12 characters or e-mails not 25 bytes" % message)
        if message == "list_100":
            checker.check(reference["next_after_id"] == reference["users"][-1][0],
                          "list_100: next_after_id is not the last user's id")


def check_orderings(sizes, checker):
    def size(encoding, message):
        return sizes.get((encoding, message), 0)

    for m in MESSAGES:
        for smaller, larger in [("thrift_compact", "thrift_binary"), ("protobuf", "json"),
                                ("json", "soap_xml")]:
            checker.check(0 < size(smaller, m) < size(larger, m), "%s: %s (%d bytes) not < %s (%d)" % (
                m, smaller, size(smaller, m), larger, size(larger, m)))
    for e in ENCODINGS:
        checker.check(0 < size(e, "user") < size(e, "list_100") < size(e, "batch_response_1000"),
                      "%s: sizes do not grow user < list_100 < batch_response_1000" % e)
        if size(e, "list_100"):
            ratio = size(e, "batch_response_1000") / size(e, "list_100")
            checker.check(9.0 <= ratio <= 11.0, "%s: 1000 users are %.2fx 100 users" % (e, ratio))
    checker.check(size("thrift_binary", "batch_request_1000") >= 8 * 1000,
                  "thrift_binary/batch_request_1000 holds fewer than 8 bytes per i64 id")


def load_pb2(proto_py):
    path = os.path.join(proto_py, "polycrud", "v1", "user_service_pb2.py")
    spec = importlib.util.spec_from_file_location("user_service_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True, help="path of polycrud-micro-bench")
    parser.add_argument("--thrift-py", required=True,
                        help="folder of the Python code generated from idl/polycrud.thrift")
    parser.add_argument("--proto-py", required=True,
                        help="folder of the Python code generated from proto/")
    args = parser.parse_args()

    sys.path.insert(0, args.thrift_py)
    pb2 = load_pb2(args.proto_py)
    checker = Checker()
    check_flags(args.binary, checker)
    with tempfile.TemporaryDirectory(prefix="polycrud-micro-") as dump_dir:
        report = run_benchmark(args.binary, dump_dir, checker)
        if report is not None:
            sizes = check_report(report, checker)
            check_wire(dump_dir, sizes, pb2, checker)
            check_orderings(sizes, checker)
    for failure in checker.failures:
        print("FAIL: " + failure, file=sys.stderr)
    if checker.failures:
        return 1
    print("ok: %d benchmarks, %d encodings x %d messages decoded independently" % (
        len(ENCODINGS) * len(MESSAGES) * len(DIRECTIONS), len(ENCODINGS), len(MESSAGES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
