#!/usr/bin/python3
"""The Python Thrift benchmark peer (benchmarks/peers/python_thrift) against
the test stack, through a Thrift client generated from idl/polycrud.thrift:
CRUD, the contract's exceptions, its Redis entries, and that polycrud-server
and the peer read each other's cache entries."""

import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport

import peer_support
from peer_support import ADMIN, READER, expected_entry
from polycrud import UserService
from polycrud.ttypes import (Conflict, InvalidArgument, NotFound, PermissionDenied,
                             Unauthenticated, UserDraft, UserPatch)

STACK = None


def setUpModule():  # pylint: disable=invalid-name
    global STACK  # pylint: disable=global-statement
    STACK = peer_support.Stack("python-thrift")
    try:
        STACK.start()
    except BaseException:
        STACK.stop()
        raise


def tearDownModule():  # pylint: disable=invalid-name
    STACK.stop()


def unique(prefix):
    return "%s_%d" % (prefix, random.randrange(10**9))


class PythonThriftPeerTest(unittest.TestCase):
    def setUp(self):
        sock = TSocket.TSocket("127.0.0.1", STACK.peer_port)
        sock.setTimeout(10000)
        self.transport = TTransport.TFramedTransport(sock)
        self.client = UserService.Client(TBinaryProtocol.TBinaryProtocol(self.transport))
        self.transport.open()
        self.polycrud, self.polycrud_transport = STACK.polycrud_client()

    def tearDown(self):
        self.transport.close()
        self.polycrud_transport.close()

    def entry(self, u):
        return expected_entry(u.id, u.username, u.email, u.full_name, u.version,
                              u.created_at_ms, u.updated_at_ms)

    def test_ping_and_process(self):
        self.assertIn("python", self.client.ping())
        pid = STACK.peer_pid()
        self.assertIsNotNone(pid)
        with open("/proc/%s/comm" % pid, encoding="utf-8") as f:
            self.assertEqual(f.read().strip(), "python3")

    def test_crud_round_and_cache_entries(self):
        name = unique("pypeer")
        full_name = "Ünïcödé 😀 \"quoted\" '; DROP TABLE users; --"
        created = self.client.createUser(ADMIN, UserDraft(name, name + "@Example.com", full_name))
        self.assertGreater(created.id, 0)
        self.assertEqual((created.version, created.username, created.full_name),
                         (1, name, full_name))
        self.assertEqual(STACK.cached(created.id), self.entry(created))

        STACK.redis.delete("user:%d" % created.id)
        self.assertEqual(self.client.getUser(READER, created.id), created)  # miss, then fill
        self.assertEqual(STACK.cached(created.id), self.entry(created))

        with self.assertRaises(Conflict):
            self.client.updateUser(ADMIN, created.id, UserPatch(full_name="X", expected_version=7))
        updated = self.client.updateUser(ADMIN, created.id,
                                         UserPatch(full_name="Renamed", expected_version=1))
        self.assertEqual((updated.version, updated.full_name, updated.email),
                         (2, "Renamed", created.email))
        self.assertEqual(STACK.cached(created.id), self.entry(updated))
        self.assertEqual(self.client.getUser(READER, created.id), updated)
        unconditional = self.client.updateUser(ADMIN, created.id,
                                               UserPatch(email="new-" + name + "@example.com"))
        self.assertEqual((unconditional.version, unconditional.full_name), (3, "Renamed"))

        page = self.client.listUsers(READER, created.id - 1, 1)
        self.assertEqual([u.id for u in page.users], [created.id])
        STACK.redis.delete("user:%d" % created.id)
        batch = self.client.batchGetUsers(READER, [created.id, 10**12, created.id])
        self.assertEqual(batch, [unconditional, unconditional])
        self.assertEqual(STACK.cached(created.id), self.entry(unconditional))  # batch fill

        self.client.deleteUser(ADMIN, created.id)
        self.assertEqual(STACK.cached(created.id), b"D|3|")
        with self.assertRaises(NotFound):
            self.client.getUser(READER, created.id)
        with self.assertRaises(NotFound):
            self.client.deleteUser(ADMIN, created.id)
        with self.assertRaises(NotFound):
            self.client.updateUser(ADMIN, created.id, UserPatch(full_name="Y"))

        absent = 10**12 + random.randrange(10**6)
        with self.assertRaises(NotFound):
            self.client.getUser(READER, absent)
        self.assertEqual(STACK.cached(absent), b"N|0|")

    def test_undecodable_entry_is_a_miss_and_gets_replaced(self):
        name = unique("pybad")
        created = self.client.createUser(ADMIN, UserDraft(name, name + "@example.com", "B"))
        for garbage in (b"U|x|", b"U|0|%d|1|1|99|99|short" % created.id, b"?"):
            STACK.redis.set("user:%d" % created.id, garbage)
            self.assertEqual(self.client.getUser(READER, created.id), created)
            self.assertEqual(STACK.cached(created.id), self.entry(created))

    def test_list_pages_to_the_end(self):
        ids = [self.client.createUser(ADMIN, UserDraft(n, n + "@example.com", "L")).id
               for n in (unique("pylist") for _ in range(3))]
        page = self.client.listUsers(READER, ids[0] - 1, 2)
        self.assertEqual([u.id for u in page.users], ids[:2])
        self.assertEqual(page.next_after_id, ids[1])
        last = self.client.listUsers(READER, 0, 0)  # 0 = the default page size
        self.assertLessEqual(len(last.users), 100)

    def test_errors(self):
        cases = [
            (UserDraft("UPPER", "a@b.c", "X"), "username"),
            (UserDraft("ab", "a@b.c", "X"), "username"),
            (UserDraft("okname", "no-at-sign", "X"), "email"),
            (UserDraft("okname", "a b@c.d", "X"), "email"),
            (UserDraft("okname", "a@b.c", ""), "full_name"),
            (UserDraft(None, "a@b.c", "X"), "username"),  # fields left unset on the wire
            (UserDraft("okname", None, "X"), "email"),
            (UserDraft("okname", "a@b.c", None), "full_name"),
            (UserDraft("okname", "a@b.c", "x" * 129), "full_name"),
            (UserDraft("okname", "a@b.c", "tab\there"), "full_name"),
        ]
        for draft, field in cases:
            with self.assertRaises(InvalidArgument, msg=repr(draft)) as ctx:
                self.client.createUser(ADMIN, draft)
            self.assertEqual(ctx.exception.field, field)
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.getUser(READER, 0)
        self.assertEqual(ctx.exception.field, "id")
        with self.assertRaises(InvalidArgument):
            self.client.batchGetUsers(READER, [])
        with self.assertRaises(InvalidArgument):
            self.client.listUsers(READER, 0, 1001)
        with self.assertRaises(InvalidArgument):
            self.client.updateUser(ADMIN, 1, UserPatch())
        for token in ("", "wrong-token"):
            with self.assertRaises(Unauthenticated):
                self.client.getUser(token, 1)
        with self.assertRaises(PermissionDenied):
            self.client.deleteUser(READER, 1)
        with self.assertRaises(PermissionDenied):
            self.client.createUser(READER, UserDraft("okname", "a@b.c", "X"))
        name = unique("pydup")
        self.client.createUser(ADMIN, UserDraft(name, name + "@example.com", "X"))
        with self.assertRaises(Conflict) as ctx:
            self.client.createUser(ADMIN, UserDraft(name, "other-" + name + "@example.com", "X"))
        self.assertIn("username", ctx.exception.message)
        with self.assertRaises(Conflict) as ctx:  # e-mail uniqueness ignores case
            self.client.createUser(ADMIN, UserDraft(name + "x", name.upper() + "@EXAMPLE.com", "X"))
        self.assertIn("email", ctx.exception.message)

    def test_polycrud_server_reads_what_the_peer_cached(self):
        name = unique("pyshare")
        created = self.client.createUser(ADMIN, UserDraft(name, name + "@example.com", "Zoë 😀"))
        STACK.redis.delete("user:%d" % created.id)
        self.client.getUser(READER, created.id)  # the peer fills user:<id>
        STACK.change_row_behind_backs(created.id, "changed in MariaDB only")
        self.assertEqual(self.polycrud.getUser(READER, created.id), created)
        self.assertEqual(self.polycrud.batchGetUsers(READER, [created.id]), [created])

        self.client.deleteUser(ADMIN, created.id)  # the peer's tombstone
        with self.assertRaises(NotFound):
            self.polycrud.getUser(READER, created.id)

    def test_peer_reads_what_polycrud_server_cached(self):
        name = unique("pyshare")
        created = self.polycrud.createUser(ADMIN, UserDraft(name, name + "@example.com", "Åsa"))
        updated = self.polycrud.updateUser(ADMIN, created.id,
                                           UserPatch(full_name="Åsa 😀 Ünï", expected_version=1))
        STACK.change_row_behind_backs(created.id, "changed in MariaDB only")
        self.assertEqual(self.client.getUser(READER, created.id), updated)
        self.polycrud.deleteUser(ADMIN, created.id)
        with self.assertRaises(NotFound):
            self.client.getUser(READER, created.id)
        self.assertEqual(self.client.batchGetUsers(READER, [created.id]), [])

    def test_oversized_frame_closes_the_connection(self):
        with socket.create_connection(("127.0.0.1", STACK.peer_port), timeout=10) as s:
            s.sendall(struct.pack("!i", 64 * 1024 * 1024) + b"\x80\x01\x00\x01")
            try:
                answer = s.recv(1)
            except ConnectionResetError:
                answer = b""
            self.assertEqual(answer, b"")  # closed without an answer
        self.assertEqual(self.client.ping(), self.client.ping())  # the server still serves

    def test_peer_sh_signals_only_its_peer(self):
        state = tempfile.mkdtemp(prefix="peer-sh-test-")
        stranger = subprocess.Popen(["sleep", "60"])
        try:
            with open(os.path.join(state, "python-thrift.pid"), "w", encoding="utf-8") as f:
                f.write("%d\n" % stranger.pid)
            pid = subprocess.run(["bash", peer_support.PEER_SH, "pid", "python-thrift", state],
                                 capture_output=True, text=True, check=False)
            self.assertEqual(pid.returncode, 3)
            stop = subprocess.run(["bash", peer_support.PEER_SH, "stop", "python-thrift", state],
                                  capture_output=True, text=True, check=False)
            self.assertEqual(stop.returncode, 0, stop.stderr)
            self.assertIn("not touching it", stop.stderr)
            self.assertIsNone(stranger.poll())  # still running
        finally:
            stranger.kill()
            stranger.wait()
            shutil.rmtree(state, ignore_errors=True)

    def test_fills_with_the_projects_fill_script(self):
        """The peer's fills run cache/redis/put_if_newer.lua: once Redis has
        forgotten every script, a fill by the peer loads exactly that one."""
        name = unique("pyscript")
        created = self.polycrud.createUser(ADMIN, UserDraft(name, name + "@example.com", "Script"))
        STACK.redis.script_flush()
        STACK.redis.delete("user:%d" % created.id)
        self.assertEqual(STACK.redis.script_exists(peer_support.fill_script_sha()), [False])
        self.assertEqual(self.client.getUser(READER, created.id), created)
        self.assertEqual(STACK.redis.script_exists(peer_support.fill_script_sha()), [True])

if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    if not result.wasSuccessful():
        sys.stderr.write("--- peer log ---\n" + STACK.peer_log()[-4000:] if STACK else "")
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
