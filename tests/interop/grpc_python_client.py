#!/usr/bin/python3
"""Interop: a Python client generated from proto/polycrud/v1/user_service.proto
with Debian's protoc, grpc_python_plugin, python3-grpcio and python3-protobuf
does a CRUD round and checks the error mapping against a real
polycrud-server (started here, on the test stack's MariaDB and Redis)."""

import random
import sys
import unittest

import grpc

from polycrud.v1 import user_service_pb2 as pb
from polycrud.v1 import user_service_pb2_grpc as pb_grpc

from polycrud_test_support import free_port, start_server

ADMIN = "interop-admin-token"
READER = "interop-reader-token"
TIMEOUT_S = 10


def auth(token):
    return (("authorization", "Bearer " + token),)


class GrpcPythonInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.server = start_server("grpc", cls.port, ADMIN, READER)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port)
        try:
            grpc.channel_ready_future(cls.channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            cls.server.kill()
            raise RuntimeError("server did not start: " + cls.server.stderr.read().decode())
        cls.stub = pb_grpc.UserServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.terminate()
        cls.server.wait(timeout=30)

    def assertCode(self, code, call, *args, **kwargs):
        """Runs call and checks it fails with the gRPC status `code`; returns the error."""
        with self.assertRaises(grpc.RpcError) as ctx:
            call(*args, timeout=TIMEOUT_S, **kwargs)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        return ctx.exception

    def test_crud_round(self):
        pong = self.stub.Ping(pb.PingRequest(), timeout=TIMEOUT_S)
        self.assertTrue(pong.server.startswith("polycrud "), pong.server)

        name = "pygrpc_%d" % random.randrange(10**9)
        full_name = "Ünïcödé 😀 \"quoted\" '; DROP TABLE users; --"
        created = self.stub.CreateUser(
            pb.CreateUserRequest(username=name, email=name + "@example.com", full_name=full_name),
            metadata=auth(ADMIN), timeout=TIMEOUT_S).user
        self.assertGreater(created.id, 0)
        self.assertEqual(created.version, 1)
        self.assertEqual(created.full_name, full_name)

        got = self.stub.GetUser(pb.GetUserRequest(id=created.id), metadata=auth(READER),
                                timeout=TIMEOUT_S).user
        self.assertEqual(got, created)

        updated = self.stub.UpdateUser(
            pb.UpdateUserRequest(id=created.id, full_name="Renamed", expected_version=1),
            metadata=auth(ADMIN), timeout=TIMEOUT_S).user
        self.assertEqual(updated.version, 2)
        self.assertEqual(updated.full_name, "Renamed")
        self.assertEqual(updated.email, created.email)  # unset optional field kept

        page = self.stub.ListUsers(pb.ListUsersRequest(after_id=created.id - 1, limit=1),
                                   metadata=auth(READER), timeout=TIMEOUT_S)
        self.assertEqual([u.id for u in page.users], [created.id])

        batch = self.stub.BatchGetUsers(pb.BatchGetUsersRequest(ids=[created.id, 10**12]),
                                        metadata=auth(READER), timeout=TIMEOUT_S)
        self.assertEqual([u.id for u in batch.users], [created.id])

        self.stub.DeleteUser(pb.DeleteUserRequest(id=created.id), metadata=auth(ADMIN),
                             timeout=TIMEOUT_S)
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.stub.GetUser,
                        pb.GetUserRequest(id=created.id), metadata=auth(READER))

    def test_error_mapping(self):
        err = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.CreateUser,
                              pb.CreateUserRequest(username="UPPER", email="a@b.c", full_name="X"),
                              metadata=auth(ADMIN))
        self.assertIn(("polycrud-field", "username"), err.trailing_metadata())
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, self.stub.GetUser,
                        pb.GetUserRequest(id=1))
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, self.stub.GetUser,
                        pb.GetUserRequest(id=1), metadata=auth("nope"))
        self.assertCode(grpc.StatusCode.PERMISSION_DENIED, self.stub.DeleteUser,
                        pb.DeleteUserRequest(id=1), metadata=auth(READER))
        name = "pygrpc_%d" % random.randrange(10**9)
        u = self.stub.CreateUser(
            pb.CreateUserRequest(username=name, email=name + "@example.com", full_name="X"),
            metadata=auth(ADMIN), timeout=TIMEOUT_S).user
        self.assertCode(grpc.StatusCode.ALREADY_EXISTS, self.stub.CreateUser,
                        pb.CreateUserRequest(username=name, email="other-" + name + "@example.com",
                                             full_name="X"),
                        metadata=auth(ADMIN))
        self.assertCode(grpc.StatusCode.ABORTED, self.stub.UpdateUser,
                        pb.UpdateUserRequest(id=u.id, full_name="Y", expected_version=99),
                        metadata=auth(ADMIN))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.stub.DeleteUser,
                        pb.DeleteUserRequest(id=10**12), metadata=auth(ADMIN))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
