"""What the Python tests share: the test stack's settings, free ports, and
polycrud-server started on the test stack's MariaDB and Redis."""

import hashlib
import os
import random
import socket
import subprocess
import time


def settings():
    """The test stack's settings (tests/CMakeLists.txt); the environment overrides each."""
    values = {}
    with open(os.environ["POLYCRUD_TEST_SETTINGS_FILE"], encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                values[key] = os.environ.get(key) or value
    return values


def free_port():
    """A port on 127.0.0.1 that was free a moment ago, below the ephemeral range:
    a port bind() to 0 hands out could be taken by any outgoing connection
    before the server binds it (tests/support/server_process.cc does the same)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
        ephemeral_low = int(f.read().split()[0])
    for _ in range(1000):
        port = random.randrange(max(1024, ephemeral_low - 16384), ephemeral_low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below the ephemeral range")


def wait_for_port(port, proc, timeout_s=30):
    """Waits until something listens on `port`; fails early if `proc` exits."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("server exited: " + proc.stderr.read().decode(errors="replace"))
            time.sleep(0.05)
    raise RuntimeError("port %d did not open within %d s" % (port, timeout_s))


def service_env(s, admin_token, reader_token):
    """polycrud-server's (and the peers') configuration for the test stack."""
    env = dict(os.environ)
    env.update({
        "POLYCRUD_MYSQL_HOST": s["POLYCRUD_TEST_MYSQL_HOST"],
        "POLYCRUD_MYSQL_PORT": s["POLYCRUD_TEST_MYSQL_PORT"],
        "POLYCRUD_MYSQL_USER": s["POLYCRUD_TEST_MYSQL_USER"],
        "POLYCRUD_MYSQL_PASSWORD": s["POLYCRUD_TEST_MYSQL_PASSWORD"],
        "POLYCRUD_MYSQL_DATABASE": s["POLYCRUD_TEST_MYSQL_DATABASE"],
        "POLYCRUD_REDIS_HOST": "127.0.0.1",
        "POLYCRUD_REDIS_PORT": s["POLYCRUD_TEST_REDIS_PORT"],
        "POLYCRUD_REDIS_USER": s["POLYCRUD_TEST_REDIS_USER"],
        "POLYCRUD_REDIS_PASSWORD": s["POLYCRUD_TEST_REDIS_PASSWORD"],
        "POLYCRUD_ADMIN_TOKEN_SHA256": hashlib.sha256(admin_token.encode()).hexdigest(),
        "POLYCRUD_READER_TOKEN_SHA256": hashlib.sha256(reader_token.encode()).hexdigest(),
    })
    return env


def start_server(protocol, port, admin_token, reader_token):
    """polycrud-server with only the `protocol` face (the others' default ports
    may be taken) on `port`, once it listens; the caller terminates it."""
    return start_faces({protocol: port}, admin_token, reader_token)


def start_faces(ports, admin_token, reader_token, extra_env=None):
    """polycrud-server serving the faces of `ports` ({"thrift": 9090, ...}),
    once every one listens, with `extra_env` added to its environment; the
    caller terminates it."""
    s = settings()
    env = service_env(s, admin_token, reader_token)
    env["POLYCRUD_PROTOCOLS"] = ",".join(ports)
    for protocol, port in ports.items():
        env["POLYCRUD_%s_PORT" % protocol.upper()] = str(port)
    env.update(extra_env or {})
    server = subprocess.Popen([s["POLYCRUD_SERVER_BINARY"]], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for port in ports.values():
            wait_for_port(port, server)
    except RuntimeError:
        server.kill()
        raise
    return server


def make_certificates(directory):
    """deploy/local/tls.sh's CA, server and client certificates in `directory`."""
    subprocess.run([settings()["POLYCRUD_TLS_SCRIPT"], directory], check=True,
                   stdout=subprocess.DEVNULL)
    return {name: os.path.join(directory, name) for name in
            ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}
