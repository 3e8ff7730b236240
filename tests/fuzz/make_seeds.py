#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Thrift seeds are real framed calls made with Debian's python3-thrift and the
Python code generated from idl/polycrud.thrift and idl/status.thrift
(build/idl/gen-py, made by the normal build), plain and multiplexed; SOAP, REST and validation seeds are written out here. Usage:
  tests/fuzz/make_seeds.py [BUILD_DIR]     (default: build)
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build")
sys.path.insert(0, os.path.join(build, "idl", "gen-py"))

from thrift.protocol import TBinaryProtocol, TCompactProtocol, TMultiplexedProtocol  # noqa: E402
from thrift.transport import TTransport  # noqa: E402
from polycrud import UserService  # noqa: E402
from polycrud.ttypes import UserDraft, UserPatch  # noqa: E402
from polycrud_status import StatusService  # noqa: E402

ADMIN = "fuzz-admin-token"
READER = "fuzz-reader-token"


def write(target, name, data):
    folder = os.path.join(here, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


class Capture(TTransport.TTransportBase):
    """A transport that keeps what a client writes and answers nothing."""

    def __init__(self):
        self.data = b""

    def isOpen(self):
        return True

    def write(self, buf):
        self.data += buf

    def flush(self):
        pass


def thrift_calls(factory):
    """name -> the framed bytes of one or more calls."""
    def one(send, service=None):
        capture = Capture()
        framed = TTransport.TFramedTransport(capture)
        protocol = factory.getProtocol(framed)
        if service is None:
            client = UserService.Client(protocol)
        else:
            module = {"UserService": UserService, "StatusService": StatusService,
                      "NoSuchService": StatusService}[service]
            client = module.Client(TMultiplexedProtocol.TMultiplexedProtocol(protocol, service))
        send(client)
        return capture.data

    calls = {
        "ping": lambda c: c.send_ping(),
        "create": lambda c: c.send_createUser(
            ADMIN, UserDraft(username="zed", email="zed@example.com", full_name="Zed Ö 😀")),
        "create_bad": lambda c: c.send_createUser(
            ADMIN, UserDraft(username="Not Valid", email="nope", full_name="")),
        "get": lambda c: c.send_getUser(READER, 1),
        "get_no_token": lambda c: c.send_getUser("", 2),
        "batch": lambda c: c.send_batchGetUsers(READER, [1, 2, 3, 999]),
        "update": lambda c: c.send_updateUser(
            ADMIN, 2, UserPatch(full_name="Bob B", expected_version=1)),
        "delete": lambda c: c.send_deleteUser(ADMIN, 3),
        "list": lambda c: c.send_listUsers(READER, 0, 2),
    }
    out = {name: one(send) for name, send in calls.items()}
    out["mux_user_get"] = one(lambda c: c.send_getUser(READER, 1), "UserService")
    out["mux_status"] = one(lambda c: c.send_getStatus(), "StatusService")
    out["mux_counter"] = one(lambda c: c.send_getCounter("polycrud_up"), "StatusService")
    out["mux_counters"] = one(lambda c: c.send_getCounters(), "StatusService")
    out["mux_unknown_service"] = one(lambda c: c.send_getName(), "NoSuchService")
    out["pipelined"] = out["ping"] + out["get"] + out["list"]
    return out


for name, data in thrift_calls(TBinaryProtocol.TBinaryProtocolFactory()).items():
    write("thrift_binary_fuzzer", name, data)
for name, data in thrift_calls(TCompactProtocol.TCompactProtocolFactory()).items():
    write("thrift_compact_fuzzer", name, data)


def envelope(body):
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:pc="urn:polycrud:v1"><SOAP-ENV:Body>' + body +
            '</SOAP-ENV:Body></SOAP-ENV:Envelope>')


soap = {
    "ping": "<pc:Ping/>",
    "create": "<pc:CreateUser><pc:username>zed</pc:username><pc:email>zed@example.com"
              "</pc:email><pc:full_name>Z&amp;d &#x1F600;</pc:full_name></pc:CreateUser>",
    "get": "<pc:GetUser><pc:id>1</pc:id></pc:GetUser>",
    "get_bad_id": "<pc:GetUser><pc:id>abc</pc:id></pc:GetUser>",
    "batch": "<pc:BatchGetUsers><pc:ids>1</pc:ids><pc:ids>2</pc:ids><pc:ids>77</pc:ids>"
             "</pc:BatchGetUsers>",
    "update": "<pc:UpdateUser><pc:id>2</pc:id><pc:full_name>B</pc:full_name>"
              "<pc:expected_version>1</pc:expected_version></pc:UpdateUser>",
    "delete": "<pc:DeleteUser><pc:id>3</pc:id></pc:DeleteUser>",
    "list": "<pc:ListUsers><pc:after_id>0</pc:after_id><pc:limit>2</pc:limit></pc:ListUsers>",
}
for name, body in soap.items():
    write("soap_fuzzer", name, envelope(body))
write("soap_fuzzer", "not_an_envelope", '<?xml version="1.0"?><a><b></a>')
write("soap_fuzzer", "soap12",
      '<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
      'xmlns:pc="urn:polycrud:v1"><env:Body><pc:Ping/></env:Body></env:Envelope>')


def http(method, target, body="", token=ADMIN, extra=""):
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n"
    return head + extra + "\r\n" + body


rest = {
    "create": http("POST", "/v1/users",
                   '{"username":"zed","email":"zed@example.com","full_name":"Z \\u00f6"}'),
    "get": http("GET", "/v1/users/1", token=READER, extra="X-Request-Id: fuzz-1\r\n"),
    "head": http("HEAD", "/v1/users/1", token=READER),
    "batch": http("POST", "/v1/users:batchGet", '{"ids":[1,2,3,99]}', token=READER),
    "patch": http("PATCH", "/v1/users/2", '{"full_name":"B"}', extra='If-Match: "1"\r\n'),
    "delete": http("DELETE", "/v1/users/3"),
    "list": http("GET", "/v1/users?after_id=0&limit=2", token=READER),
    "healthz": http("GET", "/healthz", token=""),
    "readyz": http("GET", "/readyz", token=""),
    "metrics": http("GET", "/metrics", token=""),
    # A finding once: a number past a double's range answered 500.
    "number_out_of_range": http("POST", "/v1/users", '{"username":5555552E7777777}'),
    "chunked": "POST /v1/users HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " + ADMIN +
               "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
}
for name, request in rest.items():
    write("rest_fuzzer", name, request)
write("rest_fuzzer", "pipelined", rest["get"] + rest["list"] + rest["healthz"])

validation = {
    "username": "ada_lovelace.1-x",
    "email": "ada@example.com",
    "full_name": "Zoë \"Q\" 😀",
    "bad_utf8": b"\xc3\x28\xed\xa0\x80\xf4\x90\x80\x80",
    "overlong": b"\xc0\xaf\xe0\x80\xaf",
    "sql": "x'; DROP TABLE users; --",
}
for name, text in validation.items():
    write("validation_fuzzer", name, text)
