#!/usr/bin/python3
"""Benchmark peer: the user directory as a plain Python Thrift service.

The same contract as polycrud-server's Thrift face (idl/polycrud.thrift,
framed transport, binary protocol) and the same cache-aside on the same Redis
and MariaDB, written the way a Python team would: Debian's python3-thrift
(TThreadPoolServer, or TProcessPoolServer with --server processpool, and the
C-accelerated binary protocol), redis-py with a bounded connection pool and a
registered Lua script, and PyMySQL behind a bounded connection pool.

The Redis entries are polycrud's own (cache/redis/redis_user_cache.cc):
  user:<id> = U|<version>|<id>|<created>|<updated>|<ulen>|<elen>|<username><email><full_name>
            | D|<version>|   (tombstone after a delete)
            | N|0|           (negative entry: the id does not exist)
with byte lengths, filled by the same conditional script, so this service and
polycrud-server can share one Redis. Python code for the IDL is generated at
start-up with the thrift compiler unless --thrift-py-dir names a generated tree.

TThreadPoolServer is the default: it is what python3-thrift services usually
run, and on the 2-core reference machine it matched or beat TProcessPoolServer
(32 worker processes, each with its own pools) on cached getUser at 16
connections (about 9,500/s against 7,400-9,400/s): the CPU the GIL leaves
unused is taken by Redis, MariaDB and the load generator on the same cores.
"""

import argparse
import atexit
import hashlib
import hmac
import importlib.util
import io
import logging
import os
import queue
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pymysql
import redis
from thrift.Thrift import TException

LOG = logging.getLogger("peer-python-thrift")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEFAULT_IDL = os.path.join(ROOT, "idl", "polycrud.thrift")
SERVER_NAME = "polycrud-python-peer 0.1.0"

# polycrud's fill script (cache/redis/put_if_newer.lua), read from the one
# file polycrud-server embeds, so the SHA-1 and hence EVALSHA are shared.
FILL_SCRIPT_PATH = os.path.join(ROOT, "cache", "redis", "put_if_newer.lua")
with open(FILL_SCRIPT_PATH, encoding="utf-8") as _script:
    FILL_SCRIPT = _script.read()

USER_COLUMNS = "id, username, email, full_name, version, created_at_ms, updated_at_ms"
SELECT_BY_ID = "SELECT " + USER_COLUMNS + " FROM users WHERE id = %s"
LIST_AFTER = "SELECT " + USER_COLUMNS + " FROM users WHERE id > %s ORDER BY id LIMIT %s"
INSERT = ("INSERT INTO users (username, email, full_name, version, created_at_ms, updated_at_ms) "
          "VALUES (%s, %s, %s, 1, %s, %s)")
UPDATE = ("UPDATE users SET email = COALESCE(%s, email), full_name = COALESCE(%s, full_name), "
          "version = version + 1, updated_at_ms = %s WHERE id = %s AND (%s = 0 OR version = %s)")
DELETE = "DELETE FROM users WHERE id = %s RETURNING version"

MAX_BATCH_IDS = 1000
# Bounds of the wire, as polycrud-server's.
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_STRING_BYTES = 64 * 1024
MAX_CONTAINER_ITEMS = 100_000
SEND_TIMEOUT_S = 10
MAX_PAGE_LIMIT = 1000
DEFAULT_PAGE_LIMIT = 100

# MySQL error numbers: duplicate key, lost/refused connections, lock waits.
ER_DUP_ENTRY = 1062
MYSQL_CONNECTION_ERRORS = {1053, 1927, 2002, 2003, 2005, 2006, 2013, 2026, 2055}
MYSQL_BUSY_ERRORS = {1205, 1213}

USERNAME_RE = re.compile(r"[a-z0-9_.-]{3,32}\Z")
# C0, DEL, C1, U+2028/U+2029 (controls) and the Zs space separators, as in
# core/validation.cc.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SPACE_RE = re.compile("[\x20\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]")


def env(name, default):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark peer: the polycrud Thrift contract as a Python "
        "(python3-thrift, redis-py, PyMySQL) cache-aside service. Every option "
        "defaults to the environment variable named in its help.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bind", default=env("PEER_BIND", "127.0.0.1"), help="address (PEER_BIND)")
    p.add_argument("--port", type=int, default=int(env("PEER_PORT", "9190")), help="port (PEER_PORT)")
    p.add_argument("--server", choices=("threadpool", "processpool"),
                   default=env("PEER_THRIFT_SERVER", "threadpool"),
                   help="TThreadPoolServer or TProcessPoolServer (PEER_THRIFT_SERVER)")
    p.add_argument("--threads", type=int, default=int(env("PEER_THREADS", "128")),
                   help="threadpool: worker threads, one per open connection (PEER_THREADS)")
    p.add_argument("--processes", type=int, default=int(env("PEER_PROCESSES", "32")),
                   help="processpool: worker processes, one per open connection (PEER_PROCESSES)")
    p.add_argument("--idle-timeout-s", type=int, default=int(env("PEER_IDLE_TIMEOUT_S", "30")),
                   help="close a connection that sends nothing for this long (PEER_IDLE_TIMEOUT_S)")
    p.add_argument("--mysql-host", default=env("POLYCRUD_MYSQL_HOST", "127.0.0.1"),
                   help="(POLYCRUD_MYSQL_HOST)")
    p.add_argument("--mysql-port", type=int, default=int(env("POLYCRUD_MYSQL_PORT", "3306")),
                   help="(POLYCRUD_MYSQL_PORT)")
    p.add_argument("--mysql-user", default=env("POLYCRUD_MYSQL_USER", "polycrud"),
                   help="(POLYCRUD_MYSQL_USER)")
    p.add_argument("--mysql-password", default=env("POLYCRUD_MYSQL_PASSWORD", ""),
                   help="(POLYCRUD_MYSQL_PASSWORD)")
    p.add_argument("--mysql-database", default=env("POLYCRUD_MYSQL_DATABASE", "polycrud"),
                   help="(POLYCRUD_MYSQL_DATABASE)")
    p.add_argument("--mysql-pool-size", type=int, default=int(env("PEER_MYSQL_POOL_SIZE", "16")),
                   help="MySQL connections per process at most (PEER_MYSQL_POOL_SIZE)")
    p.add_argument("--redis-host", default=env("POLYCRUD_REDIS_HOST", "127.0.0.1"),
                   help="(POLYCRUD_REDIS_HOST)")
    p.add_argument("--redis-port", type=int, default=int(env("POLYCRUD_REDIS_PORT", "6379")),
                   help="(POLYCRUD_REDIS_PORT)")
    p.add_argument("--redis-user", default=env("POLYCRUD_REDIS_USER", ""),
                   help="Redis ACL user (POLYCRUD_REDIS_USER)")
    p.add_argument("--redis-password", default=env("POLYCRUD_REDIS_PASSWORD", ""),
                   help="(POLYCRUD_REDIS_PASSWORD; prefer the environment)")
    p.add_argument("--redis-pool-size", type=int, default=int(env("PEER_REDIS_POOL_SIZE", "128")),
                   help="Redis connections per process at most (PEER_REDIS_POOL_SIZE)")
    p.add_argument("--cache-ttl-s", type=int, default=int(env("PEER_CACHE_TTL_S", "3600")),
                   help="TTL of a cached user, jittered by 10%% (PEER_CACHE_TTL_S)")
    p.add_argument("--admin-token-sha256", default=env("POLYCRUD_ADMIN_TOKEN_SHA256", ""),
                   help="comma-separated SHA-256 hex of admin tokens (POLYCRUD_ADMIN_TOKEN_SHA256)")
    p.add_argument("--reader-token-sha256", default=env("POLYCRUD_READER_TOKEN_SHA256", ""),
                   help="comma-separated SHA-256 hex of reader tokens (POLYCRUD_READER_TOKEN_SHA256)")
    p.add_argument("--thrift-py-dir", default=env("PEER_THRIFT_PY_DIR", ""),
                   help="a tree generated by 'thrift --gen py' (PEER_THRIFT_PY_DIR); "
                   "empty: generate from --idl into a temporary folder")
    p.add_argument("--idl", default=env("PEER_IDL", DEFAULT_IDL), help="(PEER_IDL)")
    args = p.parse_args(argv)
    for name in ("port", "threads", "idle_timeout_s", "processes", "mysql_pool_size", "redis_pool_size", "cache_ttl_s"):
        if getattr(args, name) < 1:
            p.error("--%s must be >= 1" % name.replace("_", "-"))
    if args.port > 65535:
        p.error("--port must be <= 65535")
    return args


def load_generated_code(args):
    """Imports the modules generated from the IDL; returns (UserService, ttypes)."""
    gen_dir = args.thrift_py_dir
    if not gen_dir:
        gen_dir = tempfile.mkdtemp(prefix="polycrud-py-peer-")
        atexit.register(shutil.rmtree, gen_dir, True)
        thrift = shutil.which("thrift")
        if thrift is None:
            raise SystemExit("error: the thrift compiler is not installed (Debian thrift-compiler)")
        done = subprocess.run([thrift, "--gen", "py", "-out", gen_dir, args.idl],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit("error: thrift --gen py failed: " + done.stderr.strip())
    if not os.path.isfile(os.path.join(gen_dir, "polycrud", "UserService.py")):
        raise SystemExit("error: %s holds no generated polycrud/UserService.py" % gen_dir)
    sys.path.insert(0, gen_dir)
    from polycrud import UserService, ttypes  # pylint: disable=import-outside-toplevel
    return UserService, ttypes


def parse_hashes(text, role):
    digests = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            digest = bytes.fromhex(item)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise SystemExit("error: a %s token hash must be 64 hex digits (SHA-256)" % role)
        digests.append(digest)
    return digests


class MysqlPool:
    """A bounded pool of PyMySQL connections (autocommit), opened lazily."""

    def __init__(self, size, **connect_args):
        self._idle = queue.LifoQueue(maxsize=size)
        self._slots = threading.BoundedSemaphore(size)
        self._connect_args = connect_args

    def acquire(self, timeout=5.0):
        if not self._slots.acquire(timeout=timeout):
            return None
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            return pymysql.connect(**self._connect_args)
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn, broken=False):
        if broken:
            try:
                conn.close()
            except Exception:  # pylint: disable=broad-except
                pass
        else:
            self._idle.put_nowait(conn)
        self._slots.release()


class Handler:
    """The UserService methods over Redis and MariaDB."""

    def __init__(self, args, ttypes):
        self.t = ttypes
        self.admin = parse_hashes(args.admin_token_sha256, "admin")
        self.reader = parse_hashes(args.reader_token_sha256, "reader")
        self.user_ttl_ms = args.cache_ttl_s * 1000
        self.negative_ttl_ms = 30_000
        self.tombstone_ttl_ms = 300_000
        self.mysql = MysqlPool(
            args.mysql_pool_size, host=args.mysql_host, port=args.mysql_port,
            user=args.mysql_user, password=args.mysql_password, database=args.mysql_database,
            charset="utf8mb4", autocommit=True, connect_timeout=5, read_timeout=10,
            write_timeout=10)
        self.redis = redis.Redis(connection_pool=redis.BlockingConnectionPool(
            host=args.redis_host, port=args.redis_port, max_connections=args.redis_pool_size,
            username=args.redis_user or None, password=args.redis_password or None,
            timeout=5, socket_timeout=2, socket_connect_timeout=2))
        self.fill_script = self.redis.register_script(FILL_SCRIPT)

    # ------------------------------------------------------------ helpers --

    def authorize(self, token, admin_needed):
        if not token:
            raise self.t.Unauthenticated("a bearer token is required")
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        # Every hash is compared, in constant time, without stopping early.
        is_admin = False
        is_reader = False
        for h in self.admin:
            is_admin |= hmac.compare_digest(h, digest)
        for h in self.reader:
            is_reader |= hmac.compare_digest(h, digest)
        if not (is_admin or is_reader):
            raise self.t.Unauthenticated("the token is not valid")
        if admin_needed and not is_admin:
            raise self.t.PermissionDenied("this operation needs the admin role")

    def invalid(self, message, field):
        return self.t.InvalidArgument(message, field)

    def check_id(self, user_id, field="id"):
        if user_id is None or user_id <= 0:
            raise self.invalid("id must be a positive integer", field)

    def check_email(self, email):
        if not 1 <= len(email.encode("utf-8")) <= 254:
            raise self.invalid("email must be 1-254 bytes", "email")
        if CONTROL_RE.search(email) or SPACE_RE.search(email):
            raise self.invalid("email may not contain spaces or control characters", "email")
        if email.count("@") != 1:
            raise self.invalid("email must contain exactly one '@'", "email")
        if email[0] == "@" or email[-1] == "@":
            raise self.invalid("email needs a local part and a domain", "email")

    def check_full_name(self, full_name):
        if CONTROL_RE.search(full_name):
            raise self.invalid("full_name may not contain control characters", "full_name")
        if not 1 <= len(full_name) <= 128:
            raise self.invalid("full_name must be 1-128 characters", "full_name")

    def jitter(self, ttl_ms):
        return max(1, int(ttl_ms * random.uniform(0.9, 1.1)))

    @staticmethod
    def key(user_id):
        return "user:%d" % user_id

    def encode(self, u):
        username = u.username.encode("utf-8")
        email = u.email.encode("utf-8")
        return b"U|%d|%d|%d|%d|%d|%d|%b%b%b" % (
            u.version, u.id, u.created_at_ms, u.updated_at_ms, len(username), len(email),
            username, email, u.full_name.encode("utf-8"))

    def decode(self, raw):
        """A cached value: a User, False (known absent) or None (miss or unreadable)."""
        if raw is None or len(raw) < 3:
            return None
        if raw[:2] == b"U|":
            parts = raw.split(b"|", 7)
            if len(parts) != 8:
                return None
            try:
                version, uid, created, updated, ulen, elen = (int(x) for x in parts[1:7])
            except ValueError:
                return None
            rest = parts[7]
            if ulen < 0 or elen < 0 or ulen + elen > len(rest):
                return None
            return self.t.User(uid, rest[:ulen].decode("utf-8"),
                               rest[ulen:ulen + elen].decode("utf-8"),
                               rest[ulen + elen:].decode("utf-8"), version, created, updated)
        if raw[:2] in (b"D|", b"N|"):
            return False
        return None

    def user_from_row(self, row):
        return self.t.User(row[0], row[1], row[2], row[3], row[4], row[5], row[6])

    def fill(self, user, client=None):
        return self.fill_script(keys=[self.key(user.id)],
                                args=[user.version, self.encode(user),
                                      self.jitter(self.user_ttl_ms)],
                                client=client)

    def cache_write(self, user_id, user=None, deleted_version=0):
        """After a committed write: the new version, or a tombstone."""
        try:
            if user is not None:
                self.fill(user)
            else:
                self.redis.set(self.key(user_id), b"D|%d|" % deleted_version,
                               px=self.jitter(self.tombstone_ttl_ms))
        except redis.RedisError as e:
            # The row is committed; the cached copy heals by TTL.
            LOG.warning("redis: cache update of user %d failed: %s", user_id, e)

    def mysql_error(self, e):
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        if code == ER_DUP_ENTRY:
            message = str(e.args[1]) if len(e.args) > 1 else ""
            if "uk_users_username" in message:
                return self.t.Conflict("username already exists")
            if "uk_users_email" in message:
                return self.t.Conflict("email already exists")
            return self.t.Conflict("user already exists")
        if code in MYSQL_CONNECTION_ERRORS or isinstance(e, pymysql.err.InterfaceError):
            LOG.warning("mysql: %s", e)
            return self.t.Unavailable("service unavailable, retry later", 1000)
        if code in MYSQL_BUSY_ERRORS:
            LOG.warning("mysql: %s", e)
            return self.t.Unavailable("service unavailable, retry later", 100)
        LOG.error("mysql: %s", e)
        return None  # an internal error: the processor answers TApplicationException

    def db(self, fn, retry=False):
        """Runs fn(cursor) on a pooled connection; maps driver errors to IDL exceptions."""
        for attempt in (0, 1):
            try:
                conn = self.mysql.acquire()
            except pymysql.MySQLError as e:
                LOG.warning("mysql: cannot connect: %s", e)
                raise self.t.Unavailable("service unavailable, retry later", 1000) from e
            if conn is None:
                raise self.t.Unavailable("overloaded, retry later", 100)
            broken = False
            try:
                with conn.cursor() as cur:
                    return fn(cur)
            except pymysql.MySQLError as e:
                code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
                broken = code in MYSQL_CONNECTION_ERRORS or code >= 2000 or isinstance(
                    e, pymysql.err.InterfaceError)
                if broken and retry and attempt == 0:
                    continue  # a pooled connection the server closed: try a fresh one
                mapped = self.mysql_error(e)
                if mapped is None:
                    raise
                raise mapped from e
            except TException:
                raise  # an answer of the contract (NotFound, Conflict): the connection is fine
            except BaseException:
                broken = True
                raise
            finally:
                self.mysql.release(conn, broken)
        raise AssertionError("unreachable")

    def load(self, user_id):
        def select(cur):
            cur.execute(SELECT_BY_ID, (user_id,))
            return cur.fetchone()
        row = self.db(select, retry=True)
        return None if row is None else self.user_from_row(row)

    # ------------------------------------------------------------ methods --

    def ping(self):
        return SERVER_NAME

    def getUser(self, token, user_id):  # pylint: disable=invalid-name
        self.authorize(token, False)
        self.check_id(user_id)
        key = self.key(user_id)
        cache_ok = True
        try:
            cached = self.decode(self.redis.get(key))
        except redis.RedisError as e:
            LOG.warning("redis: GET failed, reading MariaDB: %s", e)
            cached, cache_ok = None, False
        if cached:
            return cached
        if cached is False:
            raise self.t.NotFound("user %d not found" % user_id)
        user = self.load(user_id)
        if cache_ok:
            try:
                if user is not None:
                    self.fill(user)
                else:
                    self.redis.set(key, b"N|0|", px=self.jitter(self.negative_ttl_ms), nx=True)
            except redis.RedisError as e:
                LOG.warning("redis: fill failed: %s", e)
        if user is None:
            raise self.t.NotFound("user %d not found" % user_id)
        return user

    def batchGetUsers(self, token, ids):  # pylint: disable=invalid-name
        self.authorize(token, False)
        if not ids or len(ids) > MAX_BATCH_IDS:
            raise self.invalid("ids must hold 1-1000 ids", "ids")
        if any(i <= 0 for i in ids):
            raise self.invalid("every id must be a positive integer", "ids")
        found = {}
        misses = set()
        cache_ok = True
        try:
            values = self.redis.mget([self.key(i) for i in ids])
        except redis.RedisError as e:
            LOG.warning("redis: MGET failed, reading MariaDB: %s", e)
            values, cache_ok = [None] * len(ids), False
        for user_id, raw in zip(ids, values):
            cached = self.decode(raw)
            if cached:
                found[user_id] = cached
            elif cached is None:
                misses.add(user_id)
        if misses:
            wanted = sorted(misses)

            def select(cur):
                cur.execute("SELECT " + USER_COLUMNS + " FROM users WHERE id IN (" +
                            ",".join(["%s"] * len(wanted)) + ")", wanted)
                return cur.fetchall()
            loaded = [self.user_from_row(r) for r in self.db(select, retry=True)]
            if loaded and cache_ok:
                try:
                    pipe = self.redis.pipeline(transaction=False)
                    for user in loaded:
                        self.fill(user, client=pipe)
                    pipe.execute()
                except redis.RedisError as e:
                    LOG.warning("redis: batch fill failed: %s", e)
            for user in loaded:
                found[user.id] = user
        return [found[i] for i in ids if i in found]

    def createUser(self, token, draft):  # pylint: disable=invalid-name
        self.authorize(token, True)
        if draft is None:
            raise self.invalid("username must be 3-32 characters", "username")
        username = draft.username or ""
        if not 3 <= len(username) <= 32:
            raise self.invalid("username must be 3-32 characters", "username")
        if not USERNAME_RE.match(username):
            raise self.invalid("username may contain only a-z, 0-9, '_', '.' and '-'", "username")
        email = draft.email or ""
        full_name = draft.full_name or ""
        self.check_email(email)
        self.check_full_name(full_name)
        now = int(time.time() * 1000)

        def insert(cur):
            cur.execute(INSERT, (username, email, full_name, now, now))
            return cur.lastrowid
        user_id = self.db(insert)
        user = self.t.User(user_id, username, email, full_name, 1, now, now)
        self.cache_write(user_id, user)  # also replaces a negative entry
        return user

    def updateUser(self, token, user_id, patch):  # pylint: disable=invalid-name
        self.authorize(token, True)
        self.check_id(user_id)
        if patch is None or (patch.email is None and patch.full_name is None):
            raise self.invalid("the update sets no field (email or full_name)", "patch")
        if patch.email is not None:
            self.check_email(patch.email)
        if patch.full_name is not None:
            self.check_full_name(patch.full_name)
        expected = patch.expected_version or 0
        if expected < 0:
            raise self.invalid("expected_version must be >= 0", "expected_version")
        now = int(time.time() * 1000)

        def update(cur):
            conn = cur.connection
            conn.begin()
            try:
                changed = cur.execute(UPDATE, (patch.email, patch.full_name, now, user_id,
                                               expected, expected))
                if changed == 0:
                    cur.execute("SELECT version FROM users WHERE id = %s", (user_id,))
                    row = cur.fetchone()
                    conn.rollback()
                    if row is None:
                        raise self.t.NotFound("user not found")
                    raise self.t.Conflict("version mismatch: current version is %d" % row[0])
                cur.execute(SELECT_BY_ID, (user_id,))
                row = cur.fetchone()
                conn.commit()
                return row
            except pymysql.MySQLError:
                conn.rollback()
                raise
        user = self.user_from_row(self.db(update))
        self.cache_write(user_id, user)
        return user

    def deleteUser(self, token, user_id):  # pylint: disable=invalid-name
        self.authorize(token, True)
        self.check_id(user_id)

        def delete(cur):
            cur.execute(DELETE, (user_id,))
            return cur.fetchone()
        row = self.db(delete)
        if row is None:
            raise self.t.NotFound("user not found")
        self.cache_write(user_id, deleted_version=row[0])

    def listUsers(self, token, after_id, limit):  # pylint: disable=invalid-name
        self.authorize(token, False)
        if after_id is None or after_id < 0:
            raise self.invalid("after_id must be >= 0", "after_id")
        if limit is None or limit < 0 or limit > MAX_PAGE_LIMIT:
            raise self.invalid("limit must be 1-1000", "limit")
        size = limit or DEFAULT_PAGE_LIMIT

        def select(cur):
            cur.execute(LIST_AFTER, (after_id, size + 1))
            return cur.fetchall()
        users = [self.user_from_row(r) for r in self.db(select, retry=True)]
        next_after_id = 0
        if len(users) > size:
            del users[size:]
            next_after_id = users[-1].id
        return self.t.UserPage(users, next_after_id)


def check_backends(args):
    """Fails early when MariaDB or the users table is missing; warns about Redis."""
    try:
        conn = pymysql.connect(host=args.mysql_host, port=args.mysql_port, user=args.mysql_user,
                               password=args.mysql_password, database=args.mysql_database,
                               connect_timeout=5)
    except pymysql.MySQLError as e:
        raise SystemExit("error: cannot connect to MariaDB at %s:%d: %s"
                         % (args.mysql_host, args.mysql_port, e)) from e
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'users'")
            if cur.fetchone() is None:
                raise SystemExit("error: database %s has no users table: start polycrud-server "
                                 "once (it migrates) or apply storage/mysql/migrations/*.sql"
                                 % args.mysql_database)
    finally:
        conn.close()
    try:
        redis.Redis(host=args.redis_host, port=args.redis_port, socket_timeout=2,
                    username=args.redis_user or None, password=args.redis_password or None,
                    socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        LOG.warning("redis at %s:%d is not reachable (reads will go to MariaDB): %s",
                    args.redis_host, args.redis_port, e)


def main(argv):
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    user_service, ttypes = load_generated_code(args)
    # pylint: disable=import-outside-toplevel
    from thrift.protocol import TBinaryProtocol
    from thrift.server import TProcessPoolServer, TServer
    from thrift.transport import TSocket, TTransport
    # Debian's python3-thrift ships the C extension behind TBinaryProtocolAccelerated.
    accelerated = importlib.util.find_spec("thrift.protocol.fastbinary") is not None
    check_backends(args)
    handler = Handler(args, ttypes)
    if not handler.admin and not handler.reader:
        LOG.warning("no token hashes configured: every call but ping is refused")

    class ServerSocket(TSocket.TServerSocket):
        """TServerSocket whose accepted sockets send without Nagle delay and
        time out when idle (kernel timeouts: no poll() before every read)."""

        def accept(self):
            client = super().accept()
            if client is not None and client.handle is not None:
                handle = client.handle
                handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                handle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                  struct.pack("ll", args.idle_timeout_s, 0))
                handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                  struct.pack("ll", SEND_TIMEOUT_S, 0))
            return client

    class BoundedFramedTransport(TTransport.TFramedTransport):
        """TFramedTransport that refuses frames over MAX_FRAME_BYTES."""

        def readFrame(self):  # pylint: disable=invalid-name
            trans = self._TFramedTransport__trans  # pylint: disable=no-member
            size, = struct.unpack("!i", trans.readAll(4))
            if not 0 < size <= MAX_FRAME_BYTES:
                raise TTransport.TTransportException(
                    TTransport.TTransportException.SIZE_LIMIT, "frame of %d bytes refused" % size)
            self._TFramedTransport__rbuf = io.BytesIO(trans.readAll(size))

    class BoundedFramedTransportFactory:  # pylint: disable=too-few-public-methods
        def getTransport(self, trans):  # pylint: disable=invalid-name
            return BoundedFramedTransport(trans)

    transport = ServerSocket(host=args.bind, port=args.port)
    transport.setBacklog(1024)
    limits = {"string_length_limit": MAX_STRING_BYTES,
              "container_length_limit": MAX_CONTAINER_ITEMS}
    protocol = (TBinaryProtocol.TBinaryProtocolAcceleratedFactory(**limits) if accelerated
                else TBinaryProtocol.TBinaryProtocolFactory(**limits))
    processor = user_service.Processor(handler)
    framed = BoundedFramedTransportFactory()
    if args.server == "threadpool":
        server = TServer.TThreadPoolServer(processor, transport, framed, protocol, daemon=True)
        server.setNumThreads(args.threads)
        workers = "%d threads" % args.threads
    else:
        server = TProcessPoolServer.TProcessPoolServer(processor, transport, framed, protocol)
        server.setNumWorkers(args.processes)
        workers = "%d processes" % args.processes

    parent = os.getpid()

    def on_term(signum, _frame):
        if os.getpid() == parent:
            LOG.info("signal %d: stopping", signum)
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    LOG.info("%s serving %s:%d (%s, %s, framed, %s binary protocol); MariaDB %s:%d/%s "
             "pool %d, Redis %s:%d pool %d (parser %s)", SERVER_NAME, args.bind, args.port,
             args.server, workers, "accelerated" if accelerated else "pure-Python",
             args.mysql_host, args.mysql_port, args.mysql_database, args.mysql_pool_size,
             args.redis_host, args.redis_port, args.redis_pool_size,
             "hiredis" if redis.connection.HIREDIS_AVAILABLE else "Python")
    status = 0
    try:
        server.serve()
    except SystemExit:
        pass
    except OSError as e:  # bind or listen failed
        LOG.error("cannot listen on %s:%d: %s", args.bind, args.port, e)
        status = 1
    finally:
        if os.getpid() == parent:
            if args.server == "processpool":
                for worker in server.workers:
                    worker.terminate()
                for worker in server.workers:
                    worker.join(5)
            transport.close()
            handler.redis.close()
            LOG.info("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
