"""Client sessions (docs/sessions.md; issue 9) against a real 3-node cluster:
a write whose reply is lost is retried on another node with the same
(session, sequence) and answered with the first attempt's answer, never
applied twice; a retry after the session expired is refused (SESSIONEXPIRED)
and not applied.

The lost reply is made by a small TCP proxy in front of node A: it forwards
every request, but for the first CSET.SEQ it sees it reads the node's reply
(so the write was applied), keeps it, and closes the client's connection
instead of passing it on. `cset -e PROXY,B ...` then retries on node B.
"""

import socket
import subprocess
import threading
import time
import unittest

from harness import ClusterTestCase, RawClient, RespError, binary, encode, until


class ReplyDroppingProxy:
    """Forwards loopback connections to `target_port`; drops the reply of the
    first request that contains `trigger` (closing the client connection after
    `hold_s` seconds). `on_drop(reply_bytes)` runs once that reply is in."""

    def __init__(self, target_port, hold_s=0.0, on_drop=None, trigger=b"CSET.SEQ"):
        self.target_port = target_port
        self.trigger = trigger
        self.hold_s = hold_s
        self.on_drop = on_drop
        self.dropped_reply = None
        self.dropped = threading.Event()
        self._lock = threading.Lock()
        self._armed = True
        self._closing = False
        self._sockets = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self):
        self._closing = True
        for s in [self.listener] + self._sockets:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            self._sockets += [client, upstream]
            state = {"drop": False}
            threading.Thread(target=self._requests, args=(client, upstream, state),
                             daemon=True).start()
            threading.Thread(target=self._replies, args=(client, upstream, state),
                             daemon=True).start()

    def _requests(self, client, upstream, state):
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                with self._lock:
                    if self._armed and self.trigger in data:
                        self._armed = False
                        state["drop"] = True
                upstream.sendall(data)
        except OSError:
            pass

    def _replies(self, client, upstream, state):
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if state["drop"]:
                    # The whole answer to the pipeline (read until it pauses).
                    upstream.settimeout(0.5)
                    try:
                        while True:
                            more = upstream.recv(65536)
                            if not more:
                                break
                            data += more
                    except socket.timeout:
                        pass
                    self.dropped_reply = data
                    if self.on_drop:
                        self.on_drop(data)
                    self.dropped.set()
                    time.sleep(self.hold_s)
                    break
                client.sendall(data)
        except OSError:
            pass
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def raw_exchange(port, *args, timeout=10.0):
    """Sends one command on a fresh connection; returns the reply's exact bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(encode(*args))
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


class SessionsTest(ClusterTestCase):
    CTEST_TIMEOUT = 180

    @classmethod
    def setUpClass(cls):
        cls.cset_binary = binary("CSET", "the cset CLI")
        cls.cluster = cls.start_shared_cluster(3)

    def setUp(self):
        leader = self.cluster.wait_for_leader()
        followers = self.cluster.followers(leader)
        # A and B are followers: the write and its retry are both forwarded,
        # so the session fields travel in the forward frames too.
        self.a, self.b = followers[0], followers[1]
        self.leader = leader

    def proxy(self, **kwargs):
        p = ReplyDroppingProxy(self.a.client_port, **kwargs)
        self.addCleanup(p.close)
        return p

    def cset(self, proxy, *args, extra=(), timeout=60):
        endpoints = f"127.0.0.1:{proxy.port},127.0.0.1:{self.b.client_port}"
        return subprocess.run([type(self).cset_binary, "-e", endpoints, *extra, *args],
                              capture_output=True, timeout=timeout)

    def assertExit(self, out, code):
        self.assertEqual(out.returncode, code, f"stdout {out.stdout!r} stderr {out.stderr!r}")

    def members_everywhere(self, key):
        """SMEMBERS key on every node, once they all agree."""
        def agreed():
            views = [n.client().smembers(key) for n in self.cluster.nodes]
            return (views[0],) if all(v == views[0] for v in views) else None
        return until(agreed, 10, what=f"every node agreeing on {key}")[0]

    def test_add_whose_reply_was_lost_reports_added(self):
        proxy = self.proxy()
        out = self.cset(proxy, "add", "s:lost", "m")
        self.assertTrue(proxy.dropped.is_set(), "the proxy never saw the session write")
        # The first attempt (through A) applied the add; its reply was lost.
        self.assertEqual(proxy.dropped_reply, b"+OK\r\n")
        self.assertExit(out, 0)
        self.assertIn(b"added: m", out.stdout)
        self.assertNotIn(b"already present", out.stderr)
        self.assertEqual(self.members_everywhere("s:lost"), {b"m"})

    def test_add_of_a_present_member_whose_reply_was_lost_reports_present(self):
        self.leader.client().sadd("s:present", "m")
        proxy = self.proxy()
        out = self.cset(proxy, "add", "s:present", "m")
        self.assertTrue(proxy.dropped.is_set())
        self.assertEqual(proxy.dropped_reply, b"-EXISTS member already present\r\n")
        self.assertExit(out, 1)
        self.assertIn(b"already present: m", out.stderr)
        self.assertEqual(self.members_everywhere("s:present"), {b"m"})

    def test_lost_reply_of_a_multi_member_add_and_a_rem(self):
        self.leader.client().sadd("s:multi", "old")
        proxy = self.proxy()
        out = self.cset(proxy, "add", "s:multi", "old", "n1", "n2")
        # SMISMEMBER's answer, then SADD's.
        self.assertEqual(proxy.dropped_reply, b"*3\r\n:1\r\n:0\r\n:0\r\n:2\r\n")
        # The retry's count is the original's: one member was present.
        self.assertExit(out, 1)
        self.assertEqual(self.members_everywhere("s:multi"), {b"old", b"n1", b"n2"})
        # Someone re-adds n1 after the lost rem: the retry must not remove it.
        proxy = self.proxy(on_drop=lambda _reply: self.b.client().sadd("s:multi", "n1"))
        out = self.cset(proxy, "rem", "s:multi", "n1")
        self.assertEqual(proxy.dropped_reply, b":1\r\n")
        self.assertExit(out, 0)
        self.assertEqual(self.members_everywhere("s:multi"), {b"old", b"n1", b"n2"})

    def test_retry_after_the_session_expired_is_refused_and_not_applied(self):
        # The proxy holds the lost reply for 2.5 s; the session lasts 1 s, so
        # the retry on B comes after it expired. Meanwhile another client
        # removes m: a retry that applied again would bring it back.
        def remove_meanwhile(_reply):
            self.b.client().srem("s:expired", "m")

        proxy = self.proxy(hold_s=2.5, on_drop=remove_meanwhile)
        out = self.cset(proxy, "add", "s:expired", "m",
                        extra=["--session-timeout", "1000", "--timeout", "20000"])
        self.assertEqual(proxy.dropped_reply, b"+OK\r\n")
        self.assertExit(out, 3)
        self.assertIn(b"SESSIONEXPIRED", out.stderr)
        self.assertEqual(self.members_everywhere("s:expired"), set())

    def test_retried_replies_are_byte_identical_on_every_node(self):
        ports = [n.client_port for n in self.cluster.nodes]
        with RawClient(ports[0]) as c:
            session = c.command("CSET.SESSION")
        self.assertIsInstance(session, int)
        self.assertGreater(session, 0)
        first = raw_exchange(ports[0], "CSET.SEQ", session, 1, 1, "CSET.ADD", "s:bytes", "x")
        self.assertEqual(first, b"+OK\r\n")
        for port in ports:
            self.assertEqual(raw_exchange(port, "CSET.SEQ", session, 1, 1, "CSET.ADD", "s:bytes",
                                          "x"), first)
        # A true duplicate (a new sequence number) is still refused.
        dup = raw_exchange(ports[1], "CSET.SEQ", session, 2, 2, "CSET.ADD", "s:bytes", "x")
        self.assertEqual(dup, b"-EXISTS member already present\r\n")
        self.assertEqual(raw_exchange(ports[2], "CSET.SEQ", session, 2, 2, "CSET.ADD", "s:bytes",
                                      "x"), dup)
        sadd = raw_exchange(ports[2], "CSET.SEQ", session, 3, 3, "SADD", "s:bytes", "x", "y", "z")
        self.assertEqual(sadd, b":2\r\n")
        self.assertEqual(raw_exchange(ports[0], "CSET.SEQ", session, 3, 3, "SADD", "s:bytes", "x",
                                      "y", "z"), sadd)
        # Once acknowledged (lowest_unacked 5), request 3's result is gone.
        self.assertEqual(raw_exchange(ports[0], "CSET.SEQ", session, 5, 5, "DEL", "s:none"),
                         b":0\r\n")
        late = raw_exchange(ports[1], "CSET.SEQ", session, 3, 3, "SADD", "s:bytes", "x", "y", "z")
        self.assertTrue(late.startswith(b"-ERR "), late)
        self.assertEqual(self.members_everywhere("s:bytes"), {b"x", b"y", b"z"})

    def test_protocol_errors(self):
        port = self.a.client_port
        with RawClient(port) as c:
            session = c.command("CSET.SESSION", "TIMEOUT", "60000")
            self.assertIsInstance(session, int)
            unknown = c.command("CSET.SEQ", 999999999, 1, 1, "SADD", "s:err", "a")
            self.assertIsInstance(unknown, RespError)
            self.assertEqual(unknown.word, "SESSIONEXPIRED")
            for args in (["CSET.SEQ", session, 1, 1, "SISMEMBER", "s:err", "a"],
                         ["CSET.SEQ", session, 1, 1, "CSET.SEQ", session, 1, 1, "SADD", "k", "a"],
                         ["CSET.SEQ", session, 1, 2, "SADD", "s:err", "a"],
                         ["CSET.SEQ", 0, 1, 1, "SADD", "s:err", "a"],
                         ["CSET.SEQ", session, -1, 0, "SADD", "s:err", "a"],
                         ["CSET.SEQ", session, 1, 1, "SADD", "s:err"],
                         ["CSET.SESSION", "TIMEOUT", "0"],
                         ["CSET.SESSION", "TIMEOUT"]):
                reply = c.command(*args)
                self.assertIsInstance(reply, RespError, args)
                self.assertEqual(reply.word, "ERR", args)
            # A command CSET.SEQ does not wrap is named as such, whatever its
            # arity (PING alone was once refused as CSET.SEQ's wrong arity).
            for inner in (["PING"], ["SISMEMBER", "s:err", "a"]):
                reply = c.command("CSET.SEQ", session, 1, 1, *inner)
                self.assertIn("wraps only", str(reply), inner)
            self.assertEqual(c.command("SMEMBERS", "s:err"), [])
            # A sequence reused for another request is refused.
            self.assertEqual(c.command("CSET.SEQ", session, 1, 1, "SADD", "s:err", "a"), 1)
            reused = c.command("CSET.SEQ", session, 1, 1, "SADD", "s:err", "b")
            self.assertIsInstance(reused, RespError)
            self.assertEqual(reused.word, "ERR")
            self.assertEqual(c.command("SMEMBERS", "s:err"), [b"a"])


if __name__ == "__main__":
    unittest.main()
