"""Shared pieces of the peer interop tests: a polycrud-server on the same
MariaDB and Redis (it also applies the schema migrations), a peer started and
stopped through peer.sh, and direct Redis and MariaDB handles to look behind
both services' backs. The test stack's settings and free ports come from
tests/support/polycrud_test_support.py."""

import hashlib
import os
import subprocess

import pymysql
import redis
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport

from polycrud import UserService
from polycrud_test_support import free_port, service_env, settings, wait_for_port

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(PEERS))
PEER_SH = os.path.join(PEERS, "peer.sh")

ADMIN = "peer-test-admin-token"
READER = "peer-test-reader-token"


class Stack:
    """polycrud-server (Thrift only) plus one peer, both on the test stack."""

    def __init__(self, peer):
        self.peer = peer
        self.s = settings()
        self.env = service_env(self.s, ADMIN, READER)
        self.state_dir = os.path.join(self.s["POLYCRUD_TEST_SCRATCH"], "peers", peer)
        os.makedirs(self.state_dir, exist_ok=True)
        self.server = None
        self.peer_started = False

    def start(self):
        self.server_port = free_port()
        env = dict(self.env, POLYCRUD_PROTOCOLS="thrift",
                   POLYCRUD_THRIFT_PORT=str(self.server_port))
        # polycrud-server first: it applies the schema migrations.
        self.server = subprocess.Popen([self.s["POLYCRUD_SERVER_BINARY"]], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.server_port, self.server)
        self.peer_port = free_port()
        done = subprocess.run(["bash", PEER_SH, "start", self.peer, self.state_dir,
                               str(self.peer_port)], env=self.env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError("peer.sh start %s failed:\n%s%s" % (self.peer, done.stdout,
                                                                 done.stderr))
        self.peer_started = True
        self.redis = redis.Redis(host="127.0.0.1", port=int(self.s["POLYCRUD_TEST_REDIS_PORT"]),
                                 username="admin",
                                 password=self.s["POLYCRUD_TEST_REDIS_ADMIN_PASSWORD"])
        self.mysql = pymysql.connect(
            host=self.s["POLYCRUD_TEST_MYSQL_HOST"], port=int(self.s["POLYCRUD_TEST_MYSQL_PORT"]),
            user=self.s["POLYCRUD_TEST_MYSQL_USER"], password=self.s["POLYCRUD_TEST_MYSQL_PASSWORD"],
            database=self.s["POLYCRUD_TEST_MYSQL_DATABASE"], charset="utf8mb4", autocommit=True)

    def peer_pid(self):
        done = subprocess.run(["bash", PEER_SH, "pid", self.peer, self.state_dir],
                              capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def stop(self):
        errors = []
        if self.peer_started:
            done = subprocess.run(["bash", PEER_SH, "stop", self.peer, self.state_dir],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                errors.append("peer.sh stop failed: " + done.stderr)
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
        if errors:
            raise RuntimeError("; ".join(errors))

    def peer_log(self):
        try:
            with open(os.path.join(self.state_dir, self.peer + ".log"), encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def polycrud_client(self):
        """A Thrift client of polycrud-server; returns (client, transport)."""
        sock = TSocket.TSocket("127.0.0.1", self.server_port)
        sock.setTimeout(10000)
        transport = TTransport.TFramedTransport(sock)
        transport.open()
        return UserService.Client(TBinaryProtocol.TBinaryProtocol(transport)), transport

    def cached(self, user_id):
        return self.redis.get("user:%d" % user_id)

    def change_row_behind_backs(self, user_id, full_name):
        """Changes a row without a version bump or cache update: a read that
        returns the old name was served from Redis."""
        with self.mysql.cursor() as cur:
            cur.execute("UPDATE users SET full_name = %s WHERE id = %s", (full_name, user_id))


def expected_entry(user_id, username, email, full_name, version, created, updated):
    """polycrud's encoding of a cached user, computed independently."""
    u, e, f = (x.encode("utf-8") for x in (username, email, full_name))
    return (("U|%d|%d|%d|%d|%d|%d|" % (version, user_id, created, updated, len(u), len(e)))
            .encode() + u + e + f)


def fill_script_sha():
    """SHA-1 of the cache protocol's one fill script, cache/redis/put_if_newer.lua,
    which polycrud-server embeds and the peers read: what EVALSHA names."""
    with open(os.path.join(ROOT, "cache", "redis", "put_if_newer.lua"), "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()
