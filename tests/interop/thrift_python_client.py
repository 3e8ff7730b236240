#!/usr/bin/python3
"""Interop: a Python client generated from idl/polycrud.thrift with Debian's
python3-thrift does a CRUD round and checks the error mapping against a real
polycrud-server (started here, on the test stack's MariaDB and Redis); a
client of idl/status.thrift reads the status service over Thrift's
multiplexed protocol, as monitoring tools do, beside UserService on the same
connection."""

import random
import sys
import unittest

from thrift.protocol import TBinaryProtocol, TMultiplexedProtocol
from thrift.transport import TSocket, TTransport

from polycrud import UserService
from polycrud_status import StatusService
from polycrud_status.ttypes import ServiceStatus
from polycrud.ttypes import (Conflict, InvalidArgument, NotFound, PermissionDenied,
                             Unauthenticated, UserDraft, UserPatch)

from polycrud_test_support import free_port, start_server

ADMIN = "interop-admin-token"
READER = "interop-reader-token"


class ThriftPythonInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.server = start_server("thrift", cls.port, ADMIN, READER)

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=30)

    def setUp(self):
        sock = TSocket.TSocket("127.0.0.1", self.port)
        sock.setTimeout(10000)
        self.transport = TTransport.TFramedTransport(sock)
        self.client = UserService.Client(TBinaryProtocol.TBinaryProtocol(self.transport))
        self.transport.open()

    def tearDown(self):
        self.transport.close()

    def test_crud_round(self):
        name = "py_%d" % random.randrange(10**9)
        full_name = "Ünïcödé 😀 \"quoted\" '; DROP TABLE users; --"
        created = self.client.createUser(ADMIN, UserDraft(name, name + "@example.com", full_name))
        self.assertGreater(created.id, 0)
        self.assertEqual(created.version, 1)
        self.assertEqual(created.full_name, full_name)

        got = self.client.getUser(READER, created.id)
        self.assertEqual(got, created)

        updated = self.client.updateUser(ADMIN, created.id,
                                         UserPatch(full_name="Renamed", expected_version=1))
        self.assertEqual(updated.version, 2)
        self.assertEqual(updated.full_name, "Renamed")
        self.assertEqual(updated.email, created.email)

        page = self.client.listUsers(READER, created.id - 1, 1)
        self.assertEqual([u.id for u in page.users], [created.id])

        batch = self.client.batchGetUsers(READER, [created.id, 10**12])
        self.assertEqual([u.id for u in batch], [created.id])

        self.client.deleteUser(ADMIN, created.id)
        with self.assertRaises(NotFound):
            self.client.getUser(READER, created.id)

    def test_error_mapping(self):
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.createUser(ADMIN, UserDraft("UPPER", "a@b.c", "X"))
        self.assertEqual(ctx.exception.field, "username")
        with self.assertRaises(Unauthenticated):
            self.client.getUser("nope", 1)
        with self.assertRaises(PermissionDenied):
            self.client.deleteUser(READER, 1)
        name = "py_%d" % random.randrange(10**9)
        u = self.client.createUser(ADMIN, UserDraft(name, name + "@example.com", "X"))
        with self.assertRaises(Conflict):
            self.client.createUser(ADMIN, UserDraft(name, "other-" + name + "@example.com", "X"))
        with self.assertRaises(Conflict):
            self.client.updateUser(ADMIN, u.id, UserPatch(full_name="Y", expected_version=99))

    def test_status_service_beside_user_service(self):
        protocol = TBinaryProtocol.TBinaryProtocol(self.transport)
        status = StatusService.Client(
            TMultiplexedProtocol.TMultiplexedProtocol(protocol, "StatusService"))
        users = UserService.Client(
            TMultiplexedProtocol.TMultiplexedProtocol(protocol, "UserService"))
        self.assertEqual(status.getName(), "polycrud-server")
        self.assertEqual(self.client.ping(), "polycrud " + status.getVersion())
        self.assertEqual(status.getStatus(), ServiceStatus.ALIVE)
        self.assertEqual(status.getStatusDetails(), "mysql up, redis up")
        self.assertGreater(status.aliveSince(), 1_700_000_000)
        key = 'polycrud_requests_total{protocol="thrift",operation="get_user"}'
        before = status.getCounters()[key]
        with self.assertRaises(NotFound):
            users.getUser(READER, 10**12)
        self.assertEqual(status.getCounter(key), before + 1)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
