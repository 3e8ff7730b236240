#!/usr/bin/python3
"""Interop: Debian's python3-zeep reads the WSDL served by a real polycrud-server
at /soap?wsdl (no project code on this side), does a CRUD round with the
bearer token in the HTTP Authorization header, and checks that a fault
carries the core code in its <detail>."""

import random
import sys
import unittest

import requests
import zeep
import zeep.exceptions
import zeep.transports

from polycrud_test_support import free_port, start_server

ADMIN = "interop-admin-token"
READER = "interop-reader-token"
NS = "{urn:polycrud:v1}"


def client(port, token):
    """A zeep client built from the served WSDL, sending `token` as a bearer token."""
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + token
    transport = zeep.transports.Transport(session=session, timeout=10, operation_timeout=10)
    c = zeep.Client("http://127.0.0.1:%d/soap?wsdl" % port, transport=transport)
    # The WSDL names the default address; talk to this test's port instead.
    return c.create_service("{urn:polycrud:v1}UserServiceBinding",
                            "http://127.0.0.1:%d/soap" % port)


class SoapZeepInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.server = start_server("soap", cls.port, ADMIN, READER)
        cls.admin = client(cls.port, ADMIN)
        cls.reader = client(cls.port, READER)

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=30)

    def test_crud_round(self):
        self.assertTrue(self.reader.Ping().startswith("polycrud "))
        name = "zeep_%d" % random.randrange(10**9)
        full_name = "Ünïcödé 😀 \"quoted\" <b>&amp;</b> '; DROP TABLE users; --"
        created = self.admin.CreateUser(username=name, email=name + "@example.com",
                                        full_name=full_name)
        self.assertGreater(created.id, 0)
        self.assertEqual(created.version, 1)
        self.assertEqual(created.full_name, full_name)

        got = self.reader.GetUser(id=created.id)
        self.assertEqual(got.username, name)
        self.assertEqual(got.full_name, full_name)
        self.assertEqual(got.version, 1)

        updated = self.admin.UpdateUser(id=created.id, full_name="Renamed", expected_version=1)
        self.assertEqual(updated.version, 2)
        self.assertEqual(updated.full_name, "Renamed")
        self.assertEqual(updated.email, created.email)

        page = self.reader.ListUsers(after_id=created.id - 1, limit=1)
        self.assertEqual([u.id for u in page.users], [created.id])

        batch = self.reader.BatchGetUsers(ids=[created.id, 10**12])
        self.assertEqual([u.id for u in batch], [created.id])

        self.admin.DeleteUser(id=created.id)
        with self.assertRaises(zeep.exceptions.Fault) as ctx:
            self.reader.GetUser(id=created.id)
        self.assertEqual(ctx.exception.detail.find(NS + "code").text, "NOT_FOUND")

    def test_fault_detail_carries_code_and_field(self):
        with self.assertRaises(zeep.exceptions.Fault) as ctx:
            self.admin.CreateUser(username="Not Valid", email="a@b.c", full_name="X")
        fault = ctx.exception
        self.assertIn("Client", fault.code)
        self.assertEqual(fault.detail.find(NS + "code").text, "INVALID_ARGUMENT")
        self.assertEqual(fault.detail.find(NS + "field").text, "username")
        with self.assertRaises(zeep.exceptions.Fault) as ctx:
            self.reader.DeleteUser(id=1)
        self.assertEqual(ctx.exception.detail.find(NS + "code").text, "PERMISSION_DENIED")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
