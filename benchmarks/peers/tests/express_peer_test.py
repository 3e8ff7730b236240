#!/usr/bin/python3
"""The Express REST benchmark peer (benchmarks/peers/express) against the test
stack, through a plain HTTP/1.1 keep-alive client (Python's http.client): the
routes of API.md with ETag/If-Match and problem documents, its Redis entries,
and that polycrud-server and the peer read each other's cache entries."""

import http.client
import json
import os
import random
import sys
import unittest

import peer_support
from peer_support import ADMIN, READER, expected_entry
from polycrud.ttypes import NotFound, UserDraft, UserPatch

EXPRESS_DIR = os.path.join(peer_support.PEERS, "express")
STACK = None


def setUpModule():  # pylint: disable=invalid-name
    global STACK  # pylint: disable=global-statement
    if not os.path.isdir(os.path.join(EXPRESS_DIR, "node_modules")):
        raise RuntimeError("benchmarks/peers/express/node_modules is missing: run "
                           "'./polycrud setup' or 'benchmarks/peers/peer.sh install'")
    STACK = peer_support.Stack("express")
    try:
        STACK.start()
    except BaseException:
        STACK.stop()
        raise


def tearDownModule():  # pylint: disable=invalid-name
    STACK.stop()


def unique(prefix):
    return "%s_%d" % (prefix, random.randrange(10**9))


class Response:
    def __init__(self, r):
        self.status = r.status
        self.headers = r.headers
        raw = r.read()
        self.body = json.loads(raw) if raw else None


class ExpressPeerTest(unittest.TestCase):
    def setUp(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", STACK.peer_port, timeout=10)
        self.polycrud, self.polycrud_transport = STACK.polycrud_client()

    def tearDown(self):
        self.conn.close()
        self.polycrud_transport.close()

    def call(self, method, path, body=None, token=ADMIN, headers=None):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=data, headers=h)
        return Response(self.conn.getresponse())

    def assert_problem(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r.body)
        self.assertTrue(r.headers["Content-Type"].startswith("application/problem+json"))
        self.assertEqual((r.body["status"], r.body["code"]), (status, code))
        self.assertIn("detail", r.body)
        self.assertIn("title", r.body)
        if field is not None:
            self.assertEqual(r.body.get("field"), field)

    def entry(self, u):
        return expected_entry(u["id"], u["username"], u["email"], u["full_name"], u["version"],
                              u["created_at_ms"], u["updated_at_ms"])

    def test_ping_keep_alive_and_process(self):
        for _ in range(3):  # one connection, several requests
            r = self.call("GET", "/v1/ping", token=None)
            self.assertEqual(r.status, 200)
            self.assertIn("express", r.body["server"])
        pid = STACK.peer_pid()
        self.assertIsNotNone(pid)
        with open("/proc/%s/comm" % pid, encoding="utf-8") as f:
            self.assertEqual(f.read().strip(), "node")

    def test_crud_round_and_cache_entries(self):
        name = unique("expeer")
        full_name = "Ünïcödé 😀 \"quoted\" '; DROP TABLE users; --"
        r = self.call("POST", "/v1/users",
                      {"username": name, "email": name + "@Example.com", "full_name": full_name})
        self.assertEqual(r.status, 201, r.body)
        created = r.body
        uid = created["id"]
        self.assertEqual(r.headers["Location"], "/v1/users/%d" % uid)
        self.assertEqual(r.headers["ETag"], '"1"')
        self.assertEqual((created["version"], created["full_name"]), (1, full_name))
        self.assertEqual(STACK.cached(uid), self.entry(created))

        STACK.redis.delete("user:%d" % uid)
        r = self.call("GET", "/v1/users/%d" % uid, token=READER)  # miss, then fill
        self.assertEqual((r.status, r.body, r.headers["ETag"]), (200, created, '"1"'))
        self.assertEqual(STACK.cached(uid), self.entry(created))

        r = self.call("PATCH", "/v1/users/%d" % uid, {"full_name": "X"},
                      headers={"If-Match": '"7"'})
        self.assert_problem(r, 409, "CONFLICT")
        r = self.call("PATCH", "/v1/users/%d" % uid, {"full_name": "Renamed"},
                      headers={"If-Match": '"1"'})
        self.assertEqual(r.status, 200, r.body)
        updated = r.body
        self.assertEqual((updated["version"], updated["full_name"], updated["email"]),
                         (2, "Renamed", created["email"]))
        self.assertEqual(r.headers["ETag"], '"2"')
        self.assertEqual(STACK.cached(uid), self.entry(updated))
        r = self.call("GET", "/v1/users/%d" % uid, token=READER)
        self.assertEqual(r.body, updated)

        r = self.call("GET", "/v1/users?after_id=%d&limit=1" % (uid - 1), token=READER)
        self.assertEqual(r.status, 200)
        self.assertEqual([u["id"] for u in r.body["users"]], [uid])
        STACK.redis.delete("user:%d" % uid)
        r = self.call("POST", "/v1/users:batchGet", {"ids": [uid, 10**12, uid]}, token=READER)
        self.assertEqual((r.status, r.body), (200, {"users": [updated, updated]}))
        self.assertEqual(STACK.cached(uid), self.entry(updated))  # batch fill

        r = self.call("DELETE", "/v1/users/%d" % uid)
        self.assertEqual(r.status, 204)
        self.assertEqual(STACK.cached(uid), b"D|2|")
        self.assert_problem(self.call("GET", "/v1/users/%d" % uid, token=READER), 404, "NOT_FOUND")
        self.assert_problem(self.call("DELETE", "/v1/users/%d" % uid), 404, "NOT_FOUND")
        self.assert_problem(self.call("PATCH", "/v1/users/%d" % uid, {"full_name": "Y"}),
                            404, "NOT_FOUND")

        absent = 10**12 + random.randrange(10**6)
        self.assert_problem(self.call("GET", "/v1/users/%d" % absent, token=READER),
                            404, "NOT_FOUND")
        self.assertEqual(STACK.cached(absent), b"N|0|")

    def test_undecodable_entry_is_a_miss_and_gets_replaced(self):
        name = unique("exbad")
        created = self.call("POST", "/v1/users", {"username": name, "email": name + "@example.com",
                                                  "full_name": "B"}).body
        uid = created["id"]
        for garbage in (b"U|x|", b"U|0|%d|1|1|99|99|short" % uid, b"?"):
            STACK.redis.set("user:%d" % uid, garbage)
            r = self.call("GET", "/v1/users/%d" % uid, token=READER)
            self.assertEqual((r.status, r.body), (200, created))
            self.assertEqual(STACK.cached(uid), self.entry(created))

    def test_list_pages(self):
        ids = []
        for _ in range(3):
            n = unique("exlist")
            ids.append(self.call("POST", "/v1/users", {"username": n, "email": n + "@example.com",
                                                       "full_name": "L"}).body["id"])
        r = self.call("GET", "/v1/users?after_id=%d&limit=2" % (ids[0] - 1), token=READER)
        self.assertEqual([u["id"] for u in r.body["users"]], ids[:2])
        self.assertEqual(r.body["next_after_id"], ids[1])
        r = self.call("GET", "/v1/users", token=READER)
        self.assertEqual(r.status, 200)
        self.assertLessEqual(len(r.body["users"]), 100)

    def test_errors(self):
        for body, field in [
                ({"username": "UPPER", "email": "a@b.c", "full_name": "X"}, "username"),
                ({"username": "okname", "email": "no-at-sign", "full_name": "X"}, "email"),
                ({"username": "okname", "email": "a@b.c", "full_name": ""}, "full_name"),
                ({"username": "okname", "email": "a@b.c", "full_name": "x" * 129}, "full_name"),
                ({"username": 7, "email": "a@b.c", "full_name": "X"}, "username")]:
            self.assert_problem(self.call("POST", "/v1/users", body), 400, "INVALID_ARGUMENT",
                                field)
        self.assert_problem(self.call("POST", "/v1/users", b"{not json"), 400, "INVALID_ARGUMENT")
        big = json.dumps({"username": "x" * (1024 * 1024)}).encode()
        self.assertEqual(self.call("POST", "/v1/users", big).status, 413)
        self.assertEqual(self.call("POST", "/v1/users", b"x=1", headers={
            "Content-Type": "application/x-www-form-urlencoded"}).status, 415)
        self.assert_problem(self.call("GET", "/v1/users/abc", token=READER), 400,
                            "INVALID_ARGUMENT", "id")
        self.assert_problem(self.call("GET", "/v1/users/0", token=READER), 400,
                            "INVALID_ARGUMENT", "id")
        self.assert_problem(self.call("POST", "/v1/users:batchGet", {"ids": []}, token=READER),
                            400, "INVALID_ARGUMENT", "ids")
        self.assert_problem(self.call("GET", "/v1/users?limit=1001", token=READER), 400,
                            "INVALID_ARGUMENT", "limit")
        self.assert_problem(self.call("PATCH", "/v1/users/1", {"full_name": "X"},
                                      headers={"If-Match": "3"}), 400, "INVALID_ARGUMENT",
                            "If-Match")
        r = self.call("GET", "/v1/users/1", token=None)
        self.assert_problem(r, 401, "UNAUTHENTICATED")
        self.assertEqual(r.headers["WWW-Authenticate"], "Bearer")
        self.assert_problem(self.call("GET", "/v1/users/1", token="wrong-token"), 401,
                            "UNAUTHENTICATED")
        self.assert_problem(self.call("DELETE", "/v1/users/1", token=READER), 403,
                            "PERMISSION_DENIED")
        self.assert_problem(self.call("GET", "/v1/nothing", token=READER), 404, "NOT_FOUND")
        r = self.call("PUT", "/v1/users/1", {"full_name": "X"})
        self.assertEqual(r.status, 405)
        self.assertIn("PATCH", r.headers["Allow"])
        name = unique("exdup")
        self.assertEqual(self.call("POST", "/v1/users", {
            "username": name, "email": name + "@example.com", "full_name": "X"}).status, 201)
        r = self.call("POST", "/v1/users", {"username": name, "email": "o" + name + "@example.com",
                                            "full_name": "X"})
        self.assert_problem(r, 409, "CONFLICT")
        self.assertIn("username", r.body["detail"])
        r = self.call("POST", "/v1/users", {"username": name + "x",
                                            "email": name.upper() + "@EXAMPLE.com",
                                            "full_name": "X"})
        self.assert_problem(r, 409, "CONFLICT")
        self.assertIn("email", r.body["detail"])

    def test_polycrud_server_reads_what_the_peer_cached(self):
        name = unique("exshare")
        created = self.call("POST", "/v1/users", {"username": name, "email": name + "@example.com",
                                                  "full_name": "Zoë 😀"}).body
        uid = created["id"]
        STACK.redis.delete("user:%d" % uid)
        self.assertEqual(self.call("GET", "/v1/users/%d" % uid, token=READER).status, 200)
        STACK.change_row_behind_backs(uid, "changed in MariaDB only")
        got = self.polycrud.getUser(READER, uid)
        self.assertEqual({k: getattr(got, k) for k in created}, created)
        self.assertEqual(self.call("DELETE", "/v1/users/%d" % uid).status, 204)  # tombstone
        with self.assertRaises(NotFound):
            self.polycrud.getUser(READER, uid)

    def test_peer_reads_what_polycrud_server_cached(self):
        name = unique("exshare")
        created = self.polycrud.createUser(ADMIN, UserDraft(name, name + "@example.com", "Åsa"))
        updated = self.polycrud.updateUser(ADMIN, created.id,
                                           UserPatch(full_name="Åsa 😀 Ünï", expected_version=1))
        STACK.change_row_behind_backs(created.id, "changed in MariaDB only")
        r = self.call("GET", "/v1/users/%d" % created.id, token=READER)
        self.assertEqual(r.body, {k: getattr(updated, k) for k in r.body})
        self.assertEqual(r.body["full_name"], "Åsa 😀 Ünï")
        self.polycrud.deleteUser(ADMIN, created.id)
        self.assert_problem(self.call("GET", "/v1/users/%d" % created.id, token=READER),
                            404, "NOT_FOUND")

    def test_fills_with_the_projects_fill_script(self):
        """The peer's fills run cache/redis/put_if_newer.lua: once Redis has
        forgotten every script, a fill by the peer loads exactly that one."""
        name = unique("exscript")
        created = self.call("POST", "/v1/users", {"username": name, "email": name + "@example.com",
                                                  "full_name": "Script"}).body
        STACK.redis.script_flush()
        STACK.redis.delete("user:%d" % created["id"])
        self.assertEqual(STACK.redis.script_exists(peer_support.fill_script_sha()), [False])
        self.assertEqual(self.call("GET", "/v1/users/%d" % created["id"], token=READER).status, 200)
        self.assertEqual(STACK.redis.script_exists(peer_support.fill_script_sha()), [True])

if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    if not result.wasSuccessful() and STACK is not None:
        sys.stderr.write("--- peer log ---\n" + STACK.peer_log()[-4000:])
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
