#!/usr/bin/python3
"""Interop over TLS: each face of a real polycrud-server started with
certificates from deploy/local/tls.sh, driven by a client the project did
not write, trusting only the generated CA: python3-thrift's TSSLSocket,
python3-grpcio's secure channel, python3-zeep over requests, and curl. Then
mutual TLS: a second server requires a client certificate of that CA, and
each client is refused without one (or with one of another CA) and served
with one."""

import os
import random
import ssl
import subprocess
import sys
import tempfile
import unittest

import grpc
import requests
import zeep
import zeep.transports
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TSSLSocket, TTransport

import polycrud
from polycrud import UserService
from polycrud.ttypes import UserDraft

# The Thrift and gRPC code generators both make a package "polycrud" (in
# two directories of PYTHONPATH): the gRPC one's polycrud/v1 joins the first.
polycrud.__path__.extend(os.path.join(entry, "polycrud") for entry in sys.path
                         if os.path.isdir(os.path.join(entry, "polycrud", "v1")))
from polycrud.v1 import user_service_pb2 as pb  # noqa: E402
from polycrud.v1 import user_service_pb2_grpc as pb_grpc  # noqa: E402

from polycrud_test_support import free_port, make_certificates, start_faces

ADMIN = "interop-admin-token"
READER = "interop-reader-token"
FACES = ("thrift", "grpc", "soap", "rest")


def tls_env(certs, mutual):
    env = {"POLYCRUD_TLS_CERT": certs["server.pem"], "POLYCRUD_TLS_KEY": certs["server.key"]}
    if mutual:
        env["POLYCRUD_TLS_CLIENT_CA"] = certs["ca.pem"]
    return env


def thrift_client(port, ca, cert=None, key=None):
    """A connected python3-thrift client over TSSLSocket (transport, client)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    sock = TSSLSocket.TSSLSocket("localhost", port, ssl_context=context,
                                 server_hostname="localhost")
    sock.setTimeout(10000)
    transport = TTransport.TFramedTransport(sock)
    transport.open()
    return transport, UserService.Client(TBinaryProtocol.TBinaryProtocol(transport))


def thrift_ping(port, ca, cert=None, key=None):
    transport, client = thrift_client(port, ca, cert, key)
    try:
        return client.ping()
    finally:
        transport.close()


def grpc_ping(port, ca, cert=None, key=None):
    def read(path):
        with open(path, "rb") as f:
            return f.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key) if key else None,
        certificate_chain=read(cert) if cert else None)
    with grpc.secure_channel("localhost:%d" % port, credentials) as channel:
        stub = pb_grpc.UserServiceStub(channel)
        return stub.Ping(pb.PingRequest(), timeout=10).server


def soap_service(port, ca, cert=None, key=None):
    session = requests.Session()
    # Else REQUESTS_CA_BUNDLE in the environment would win over `verify`.
    session.trust_env = False
    session.verify = ca
    if cert:
        session.cert = (cert, key)
    session.headers["Authorization"] = "Bearer " + ADMIN
    transport = zeep.transports.Transport(session=session, timeout=10, operation_timeout=10)
    client = zeep.Client("https://localhost:%d/soap?wsdl" % port, transport=transport)
    return client.create_service("{urn:polycrud:v1}UserServiceBinding",
                                 "https://localhost:%d/soap" % port)


def curl(url, *options):
    """curl's exit code and body for `url`."""
    done = subprocess.run(["curl", "-sS", "--max-time", "10", *options, url],
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


class TlsInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.certs = make_certificates(os.path.join(cls.dir.name, "tls"))
        cls.other = make_certificates(os.path.join(cls.dir.name, "other"))
        cls.ports = {face: free_port() for face in FACES}
        cls.server = start_faces(cls.ports, ADMIN, READER, tls_env(cls.certs, mutual=False))
        cls.mutual_ports = {face: free_port() for face in FACES}
        cls.mutual = start_faces(cls.mutual_ports, ADMIN, READER,
                                 tls_env(cls.certs, mutual=True))

    @classmethod
    def tearDownClass(cls):
        for server in (cls.server, cls.mutual):
            server.terminate()
            server.wait(timeout=30)
        cls.dir.cleanup()

    def test_thrift_over_tls(self):
        ca = self.certs["ca.pem"]
        transport, client = thrift_client(self.ports["thrift"], ca)
        try:
            name = "tls_%d" % random.randrange(10**9)
            created = client.createUser(ADMIN, UserDraft(name, name + "@example.com", "T L S"))
            self.assertEqual(client.getUser(ADMIN, created.id), created)
        finally:
            transport.close()
        # Cleartext on the TLS port gets no answer.
        plain = TTransport.TFramedTransport(TSocket.TSocket("127.0.0.1", self.ports["thrift"]))
        plain.open()
        with self.assertRaises(TTransport.TTransportException):
            UserService.Client(TBinaryProtocol.TBinaryProtocol(plain)).ping()
        plain.close()
        # A client that trusts another CA refuses the server (python3-thrift
        # reports the failed handshake as a connection that could not open).
        with self.assertRaises(TTransport.TTransportException):
            thrift_ping(self.ports["thrift"], self.other["ca.pem"])

    def test_grpc_over_tls(self):
        self.assertTrue(grpc_ping(self.ports["grpc"], self.certs["ca.pem"]).startswith("polycrud"))
        with grpc.insecure_channel("127.0.0.1:%d" % self.ports["grpc"]) as channel:
            with self.assertRaises(grpc.RpcError) as refused:
                pb_grpc.UserServiceStub(channel).Ping(pb.PingRequest(), timeout=5)
            self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAVAILABLE)
        with self.assertRaises(grpc.RpcError):
            grpc_ping(self.ports["grpc"], self.other["ca.pem"])

    def test_soap_over_tls(self):
        service = soap_service(self.ports["soap"], self.certs["ca.pem"])
        self.assertTrue(service.Ping().startswith("polycrud "))
        name = "tls_%d" % random.randrange(10**9)
        created = service.CreateUser(username=name, email=name + "@example.com", full_name="S")
        self.assertEqual(service.GetUser(id=created.id).username, name)
        with self.assertRaises(requests.exceptions.SSLError):
            soap_service(self.ports["soap"], self.other["ca.pem"]).Ping()

    def test_rest_over_tls(self):
        base = "https://localhost:%d" % self.ports["rest"]
        code, body = curl(base + "/v1/ping", "--cacert", self.certs["ca.pem"])
        self.assertEqual(code, 0, body)
        self.assertIn("polycrud", body)
        code, _ = curl(base + "/v1/users/1", "--cacert", self.certs["ca.pem"],
                       "-H", "Authorization: Bearer " + ADMIN, "-o", "/dev/null",
                       "-w", "%{http_code}")
        self.assertEqual(code, 0)
        # Untrusted: curl's "peer certificate" failure (60); cleartext: no HTTP answer.
        code, _ = curl(base + "/v1/ping", "--cacert", self.other["ca.pem"])
        self.assertEqual(code, 60)
        code, body = curl("http://127.0.0.1:%d/v1/ping" % self.ports["rest"])
        self.assertNotEqual(code, 0)
        self.assertNotIn("polycrud", body)

    def test_mutual_tls_refuses_clients_without_a_certificate_of_the_ca(self):
        ca = self.certs["ca.pem"]
        mine = (self.certs["client.pem"], self.certs["client.key"])
        theirs = (self.other["client.pem"], self.other["client.key"])
        ports = self.mutual_ports
        # Thrift: TLS 1.3 may finish the client's handshake before the server
        # checks the certificate, so the refusal shows on the handshake or
        # on the first call.
        for cert in ((None, None), theirs):
            with self.assertRaises((ssl.SSLError, TTransport.TTransportException, OSError)):
                thrift_ping(ports["thrift"], ca, *cert)
        self.assertTrue(thrift_ping(ports["thrift"], ca, *mine).startswith("polycrud"))
        for cert in ((None, None), theirs):
            with self.assertRaises(grpc.RpcError):
                grpc_ping(ports["grpc"], ca, *cert)
        self.assertTrue(grpc_ping(ports["grpc"], ca, *mine).startswith("polycrud"))
        for cert in ((None, None), theirs):
            with self.assertRaises((requests.exceptions.SSLError,
                                    requests.exceptions.ConnectionError)):
                soap_service(ports["soap"], ca, *cert).Ping()
        self.assertTrue(soap_service(ports["soap"], ca, *mine).Ping().startswith("polycrud"))
        url = "https://localhost:%d/v1/ping" % ports["rest"]
        for cert in ((), ("--cert", theirs[0], "--key", theirs[1])):
            code, body = curl(url, "--cacert", ca, *cert)
            self.assertNotEqual(code, 0, body)
        code, body = curl(url, "--cacert", ca, "--cert", mine[0], "--key", mine[1])
        self.assertEqual(code, 0, body)
        self.assertIn("polycrud", body)


if __name__ == "__main__":
    sys.exit(unittest.main())
