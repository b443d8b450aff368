"""Black-box harness for the integration tests: real csetd processes.

A Cluster starts N csetd nodes on free loopback ports with temporary data
directories, waits for a leader, and kills (SIGKILL), pauses (SIGSTOP),
resumes, stops (SIGTERM) and restarts nodes by PID. Nothing it starts
outlives it:
  - every csetd is started with PR_SET_PDEATHSIG = SIGKILL, so it dies with
    the test process even when that is SIGKILLed (a ctest timeout);
  - Cluster.close() runs from unittest cleanups (try/finally semantics), and
    an atexit hook kills whatever is still running.

Timing (SPEC.md flags, passed explicitly so the tests know them):
  --election-timeout-ms 1000 --heartbeat-ms 100 --write-timeout 2000.
  E, the longest randomized election timeout, is 2 x 1000 ms.

Binaries come from environment variables set by tests/integration/CMakeLists:
  CSETD (required), CSET, HIREDIS_SMOKE. A missing CSETD is an error, never
  a skip: the tests fail loudly until csetd is built.

Loopback only. Python: Debian's /usr/bin/python3 with python3-redis.
"""

import atexit
import ctypes
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import redis

ELECTION_TIMEOUT_MS = 1000
HEARTBEAT_MS = 100
WRITE_TIMEOUT_MS = 2000
E = 2 * ELECTION_TIMEOUT_MS / 1000.0  # seconds: the longest randomized election timeout

# Errors that say "no quorum" or "outcome unknown": the refusals SPEC.md allows
# when a majority is gone.
UNAVAILABLE_WORDS = ("NOQUORUM", "TIMEOUT")

_SANITIZER_PATTERNS = [
    re.compile(rb"ERROR: AddressSanitizer"),
    re.compile(rb"ERROR: LeakSanitizer"),
    re.compile(rb"runtime error: "),  # UBSan
    re.compile(rb"ThreadSanitizer"),
]

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the test process dies, and may
    leave a core file (in its node directory, its working directory) when it
    crashes, for the post-mortem."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def binary(env_name, what):
    """The executable named by env_name; raises (fails the test) when absent."""
    path = os.environ.get(env_name, "")
    if not path:
        raise RuntimeError(
            f"{env_name} is not set: {what} was not built in this build tree "
            f"(the CMake target does not exist yet?). Run the tests through ctest "
            f"after building it.")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{env_name}={path} is not an executable ({what}); build it first")
    return path


def until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value; returns that value.

    Raises AssertionError naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - polled conditions may fail transiently
            last_error = e
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.1f} s waiting for {what}"
                + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval)


# ---- ports ---------------------------------------------------------------------

_used_ports = set()
_rng = random.Random(os.getpid() ^ time.time_ns())


def free_ports(count):
    """`count` distinct loopback ports that are free now, below the ephemeral
    range (so the kernel does not hand them to outgoing connections)."""
    ports = []
    while len(ports) < count:
        port = _rng.randrange(20000, 32000)
        if port in _used_ports or port in ports:
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            sock.close()
        ports.append(port)
    _used_ports.update(ports)
    return ports


# ---- a raw RESP client ---------------------------------------------------------

class RespError(str):
    """An error reply; the text includes its code word ("NOQUORUM ...")."""

    @property
    def word(self):
        return self.split(" ", 1)[0]


class Status(str):
    """A simple-string reply (+OK)."""


class Map(list):
    """A RESP3 map, as a list of (key, value) pairs."""


def encode(*args):
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class RawClient:
    """A byte-exact RESP2/RESP3 client over a plain socket: sends anything,
    parses replies into bytes / int / None / list / Map / Status / RespError."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def command(self, *args):
        self.send(encode(*args))
        return self.read()

    def command_or_close(self, *args):
        """Like command(), but a connection the server closed or reset (while
        sending or before the reply) is returned as a ConnectionError value."""
        try:
            self.send(encode(*args))
        except socket.timeout:
            raise
        except OSError as e:
            try:
                return self.read()  # a reply sent before the close, if any
            except socket.timeout:
                raise
            except OSError:
                return ConnectionError(f"closed while sending: {e!r}")
        try:
            return self.read()
        except socket.timeout:
            raise
        except OSError as e:
            return ConnectionError(f"closed before the reply: {e!r}")

    def pipeline(self, commands):
        self.send(b"".join(encode(*c) for c in commands))
        return [self.read() for _ in commands]

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return Status(rest.decode("utf-8", "replace"))
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if kind in (b":", b"("):
            return int(rest)
        if kind == b"$" or kind == b"=":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"!":
            return RespError(self._exact(int(rest)).decode("utf-8", "replace"))
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if kind == b"%":
            return Map((self.read(), self.read()) for _ in range(int(rest)))
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        raise AssertionError(f"unparseable reply line {line!r}")

    def closed_by_server(self, timeout=5.0):
        """True once the server has closed the connection (reads EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


# ---- nodes and clusters --------------------------------------------------------

_live_nodes = set()


def _kill_everything():
    for node in list(_live_nodes):
        node.kill_quietly()


atexit.register(_kill_everything)


def _exit_on_signal(signum, frame):
    _kill_everything()
    sys.exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _exit_on_signal)


def _node_environment():
    """csetd's environment: ours, with a small ASan quarantine (when csetd is
    built with ASan) so its RSS reflects live memory in the memory tests."""
    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in asan:
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=32"
    return env


class Node:
    """One csetd process (restartable) with its ports, data dir and log."""

    def __init__(self, cluster, node_id, client_port, peer_port, admin_port, host="127.0.0.1",
                 wrapper=()):
        self.cluster = cluster
        self.id = node_id
        # The address it listens on and is reached at, and the command prefix
        # it runs under (e.g. ["ip", "netns", "exec", NS]: netns.py).
        self.host = host
        self.wrapper = list(wrapper)
        self.client_port = client_port
        self.peer_port = peer_port
        self.admin_port = admin_port
        self.data_dir = os.path.join(cluster.root, f"n{node_id}", "data")
        self.log_path = os.path.join(cluster.root, f"n{node_id}", "log")
        self.proc = None
        self.paused = False
        self.exit_codes = []  # (how it was stopped, exit code) per incarnation

    def __repr__(self):
        return f"<node {self.id} client={self.client_port} pid={self.pid}>"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def args(self):
        c = self.cluster
        return [c.csetd, "--id", str(self.id), "--data-dir", self.data_dir,
                "--peer-listen", f"{self.host}:{self.peer_port}",
                "--client-listen", f"{self.host}:{self.client_port}",
                "--admin-listen", f"{self.host}:{self.admin_port}",
                "--initial-cluster", c.initial_cluster(),
                "--election-timeout-ms", str(c.election_timeout_ms),
                "--heartbeat-ms", str(c.heartbeat_ms),
                "--write-timeout", str(c.write_timeout_ms)] + \
            (["--requirepass", c.password] if c.password is not None else []) + \
            list(c.extra_args)

    def start(self):
        assert not self.alive(), f"node {self.id} already runs"
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(b"--- start %s\n" % " ".join(self.wrapper + self.args()).encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.wrapper + self.args(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, close_fds=True,
                env=_node_environment(), cwd=os.path.dirname(self.log_path))
        self.paused = False
        _live_nodes.add(self)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _reaped(self, how):
        _live_nodes.discard(self)
        self.exit_codes.append((how, self.proc.returncode))
        self.paused = False

    def kill(self, sig=signal.SIGKILL):
        """Sends `sig` (default SIGKILL, a crash) and waits until it is gone."""
        assert self.alive(), f"node {self.id} is not running"
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)
        self._reaped(signal.Signals(sig).name)

    def terminate(self, timeout=15.0):
        """SIGTERM and wait; returns the exit code (SIGKILL after `timeout`,
        then the code is None)."""
        assert self.alive(), f"node {self.id} is not running"
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self._reaped("SIGTERM-then-SIGKILL")
            return None
        self._reaped("SIGTERM")
        return code

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        _live_nodes.discard(self)

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    # -- clients --

    def client(self, timeout=10.0, **kwargs):
        """A redis-py client (RESP2) of this node (authenticated if needed)."""
        if self.cluster.password is not None:
            kwargs.setdefault("password", self.cluster.password)
        return redis.Redis(host=self.host, port=self.client_port, socket_timeout=timeout,
                           socket_connect_timeout=timeout, **kwargs)

    def raw(self, timeout=10.0, auth=True):
        """A RawClient of this node, authenticated first when the cluster has
        a password (unless auth=False)."""
        c = RawClient(self.client_port, timeout=timeout, host=self.host)
        if auth and self.cluster.password is not None:
            reply = c.command("AUTH", self.cluster.password)
            if reply != "OK":
                c.close()
                raise AssertionError(f"AUTH on node {self.id}: {reply!r}")
        return c

    def info(self, section="raft", timeout=1.0):
        """INFO <section> as a dict of str → str; raises on any failure."""
        with self.raw(timeout=timeout) as c:
            reply = c.command("INFO", section)
        if isinstance(reply, RespError):
            raise AssertionError(f"INFO {section} on node {self.id}: {reply}")
        fields = {}
        for line in reply.decode("utf-8", "replace").splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
        return fields

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""


class Cluster:
    """N csetd nodes (ids 1..N) on loopback; see the module comment."""

    def __init__(self, size=3, extra_args=(), election_timeout_ms=ELECTION_TIMEOUT_MS,
                 heartbeat_ms=HEARTBEAT_MS, write_timeout_ms=WRITE_TIMEOUT_MS, name="cluster",
                 password=None, hosts=None, wrappers=None):
        """hosts / wrappers: per node (ids 1..size, in order) its address
        (default 127.0.0.1) and command prefix (default none), e.g. from
        netns.Network.addresses() / wrappers()."""
        self.csetd = binary("CSETD", "the node server csetd")
        self.password = password
        self.size = size
        self.extra_args = list(extra_args)
        self.election_timeout_ms = election_timeout_ms
        self.heartbeat_ms = heartbeat_ms
        self.write_timeout_ms = write_timeout_ms
        self.root = tempfile.mkdtemp(prefix=f"cset-integ-{name}-")
        ports = free_ports(3 * size)
        hosts = hosts or ["127.0.0.1"] * size
        wrappers = wrappers or [()] * size
        self.nodes = [Node(self, i + 1, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2],
                           host=hosts[i], wrapper=wrappers[i]) for i in range(size)]
        self.closed = False

    # -- lifecycle --

    def initial_cluster(self):
        return ",".join(f"{n.id}={n.host}:{n.peer_port}" for n in self.nodes)

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def running(self):
        return [n for n in self.nodes if n.alive()]

    def start(self, leader_timeout=None):
        """Starts every node and waits for a leader; on failure kills them all."""
        try:
            for n in self.nodes:
                n.start()
            self.wait_for_started()
            return self.wait_for_leader(timeout=leader_timeout)
        except BaseException:
            self.dump_logs()
            self.kill_all()
            raise

    def wait_for_started(self, nodes=None, timeout=30.0):
        """Waits until each node answers PING on its client port."""
        for n in nodes or self.nodes:
            def answers(n=n):
                if not n.alive():
                    raise AssertionError(f"node {n.id} exited with {n.proc.returncode} at start; "
                                         f"log {n.log_path}")
                with n.raw(timeout=1.0) as c:
                    return c.command("PING") == "PONG"
            until(answers, timeout, what=f"node {n.id} to answer PING")

    def restart(self, node_id):
        n = self.node(node_id)
        n.start()
        self.wait_for_started([n])
        return n

    def crash_all(self):
        """SIGKILL to every running node at once (a power cut), then reap."""
        running = self.running()
        for n in running:
            n.proc.kill()
        for n in running:
            n.proc.wait(timeout=10)
            n._reaped("SIGKILL")

    def kill_all(self):
        for n in self.nodes:
            n.kill_quietly()

    def close(self, graceful=True):
        """Stops every node (SIGTERM, or SIGKILL when not graceful) and returns
        the problems found: a node that did not exit 0 after SIGTERM, or a
        sanitizer report in any log. Idempotent."""
        problems = []
        if self.closed:
            return problems
        self.closed = True
        for n in self.nodes:
            if not n.alive():
                continue
            if graceful:
                code = n.terminate()
                if code != 0:
                    problems.append(f"node {n.id} exited with {code} after SIGTERM (SPEC: 0)")
            else:
                n.kill_quietly()
        problems += self.sanitizer_reports()
        return problems

    def sanitizer_reports(self):
        problems = []
        for n in self.nodes:
            text = n.log_text()
            for pattern in _SANITIZER_PATTERNS:
                m = pattern.search(text)
                if m:
                    start = max(0, m.start() - 200)
                    problems.append(f"node {n.id}: sanitizer report in {n.log_path}: "
                                    f"{text[start:m.start() + 800].decode('utf-8', 'replace')}")
                    break
        return problems

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def dump_logs(self, lines=40):
        for n in self.nodes:
            tail = n.log_text().splitlines()[-lines:]
            sys.stderr.write(f"\n----- node {n.id} log ({n.log_path}), last {len(tail)} lines\n")
            sys.stderr.write(b"\n".join(tail).decode("utf-8", "replace") + "\n")

    # -- leadership --

    def wait_for_leader(self, timeout=None, among=None):
        """The Node that leads once it says so and every running, unpaused node
        in `among` (default: all) names it as leader_id. Default timeout: 10 E."""
        timeout = timeout if timeout is not None else 10 * E

        def agreed_leader():
            candidates = [n for n in (among or self.nodes) if n.alive() and not n.paused]
            infos = {n.id: n.info() for n in candidates}
            leaders = [nid for nid, info in infos.items() if info.get("role") == "leader"]
            if len(leaders) != 1:
                return None
            leader = leaders[0]
            if all(info.get("leader_id") == str(leader) for info in infos.values()):
                return self.node(leader)
            return None

        return until(agreed_leader, timeout, interval=0.05, what="an agreed leader")

    def followers(self, leader):
        return [n for n in self.nodes if n is not leader]

    def endpoints(self, nodes=None):
        return ",".join(f"{n.host}:{n.client_port}" for n in nodes or self.nodes)


# ---- unittest glue -------------------------------------------------------------

class ClusterTestCase(unittest.TestCase):
    """Base class: clusters a test starts are closed (SIGTERM, checked) when it
    ends, their logs printed if it failed, and their directories removed if it
    passed. Class-wide clusters: start_shared_cluster() in setUpClass."""

    _class_failed = False
    _any_failed = False  # in this process: module-wide clusters dump their logs

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self._clusters = []
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            if failed:
                type(self)._class_failed = True
                ClusterTestCase._any_failed = True
            for cluster in self._clusters:
                cluster.kill_all()
                if failed:
                    cluster.dump_logs()
                    sys.stderr.write(f"(cluster files kept in {cluster.root})\n")
                else:
                    cluster.remove()

    def new_cluster(self, size=3, start=True, **kwargs):
        """A cluster for this test alone, closed (and checked) when it ends."""
        cluster = Cluster(size=size, name=self._testMethodName, **kwargs)
        self._clusters.append(cluster)
        self.addCleanup(self._close_checked, cluster)
        if start:
            cluster.start()
        return cluster

    def _close_checked(self, cluster):
        problems = cluster.close(graceful=True)
        if problems:
            raise AssertionError("\n".join(problems))

    @classmethod
    def start_shared_cluster(cls, size=3, **kwargs):
        """A cluster for every test of the class (call from setUpClass), or of
        the module (ClusterTestCase.start_shared_cluster from setUpModule, and
        ClusterTestCase.doClassCleanups() from tearDownModule)."""
        kwargs.setdefault("name", cls.__name__)
        cluster = Cluster(size=size, **kwargs)
        cls.addClassCleanup(cls._close_shared, cluster)
        cluster.start()
        return cluster

    @classmethod
    def _close_shared(cls, cluster):
        problems = cluster.close(graceful=True)
        if cls._class_failed or ClusterTestCase._any_failed or problems:
            cluster.dump_logs()
            sys.stderr.write(f"(cluster files kept in {cluster.root})\n")
        else:
            cluster.remove()
        if problems:
            raise AssertionError("\n".join(problems))

    # -- assertions --

    def assertUnavailable(self, reply_or_exc, what=""):
        """reply_or_exc is an error whose code word is NOQUORUM or TIMEOUT."""
        text = str(reply_or_exc)
        word = text.split(" ", 1)[0]
        self.assertIn(word, UNAVAILABLE_WORDS, f"{what}: expected NOQUORUM or TIMEOUT, got {text!r}")

    def assertErrorWord(self, reply, word, what=""):
        self.assertIsInstance(reply, RespError, f"{what}: expected a {word} error, got {reply!r}")
        self.assertEqual(reply.word, word, f"{what}: got {reply!r}")


def first_read(node, key, timeout=10 * E):
    """SMEMBERS key on node: its first successful answer (errors are retried)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return node.client(timeout=3).smembers(key)
        except (redis.RedisError, OSError) as e:
            last = e
            time.sleep(0.05)
    raise AssertionError(f"no successful SMEMBERS {key} on node {node.id} within {timeout} s "
                         f"(last error: {last!r})")


def metric(node, name):
    """A counter or gauge from node's /metrics (admin listener), as a float;
    None when the node does not export it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics",
                                timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None
