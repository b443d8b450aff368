"""Hostile input on the client port (SPEC.md: "A malformed request gets an
error and, where the stream cannot be resynced, the connection is closed; it
never takes the node down"). After each attack: every node still runs,
answers, and holds exactly the state it held (a canary set, checked on every
node at the end).
"""

import random
import socket
import threading
import time
import unittest

from harness import ClusterTestCase, RespError, encode, until

MAX_MEMBER_BYTES = 64 * 1024
CANARY = {f"canary-{i}".encode() for i in range(50)}


class HostileInputTest(ClusterTestCase):
    CTEST_TIMEOUT = 240

    @classmethod
    def setUpClass(cls):
        cls.cluster = cls.start_shared_cluster(3)
        cls.nodes = cls.cluster.nodes
        cls.nodes[0].client().sadd("hostile:canary", *CANARY)

    def assert_all_well(self):
        for node in self.nodes:
            self.assertTrue(node.alive(), f"node {node.id} died (log {node.log_path})")
            with node.raw(timeout=10) as c:
                self.assertEqual(c.command("PING"), "PONG", f"node {node.id}")

    def reply_or_close(self, payload, timeout=5.0, node=None):
        """Sends raw bytes; returns the first reply, "closed", or "silent"."""
        node = node or self.nodes[0]
        with node.raw(timeout=timeout) as c:
            try:
                c.send(payload)
                return c.read()
            except socket.timeout:
                return "silent"
            except OSError:
                return "closed"

    # ---- malformed frames -----------------------------------------------------------

    def test_truncated_frames(self):
        frame = encode("SADD", "hostile:trunc", "member-one", "member-two")
        for node in self.nodes:
            for cut in range(1, len(frame)):
                with node.raw(timeout=5) as c:
                    c.send(frame[:cut])
            # A truncated frame left open while another client works.
            with node.raw() as stuck, node.raw() as other:
                stuck.send(frame[:len(frame) // 2])
                self.assertEqual(other.command("SISMEMBER", "hostile:trunc", "member-one"), 0)
        self.assert_all_well()
        for node in self.nodes:
            self.assertEqual(node.client().scard("hostile:trunc"), 0, f"node {node.id}")

    def test_absurd_lengths(self):
        rss_before = [n.rss_kb() for n in self.nodes]
        must_refuse = [b"*1\r\n$99999999999\r\n", b"$99999999999\r\n",
                       b"*3\r\n$4\r\nSADD\r\n$99999999999\r\nabc",
                       b"*1\r\n$9223372036854775808\r\n", b"*1\r\n$-9223372036854775809\r\n",
                       b"*1\r\n$abc\r\n", b"*2\r\n$-7\r\nx\r\n", b"*x\r\n"]
        may_wait = [b"*99999999999\r\n", b"*2147483648\r\n", b"*1048577\r\n",
                    b"*3\r\n$4\r\nSADD\r\n$1\r\nk\r\n$65536\r\nshort"]
        for node in self.nodes:
            for payload in must_refuse:
                outcome = self.reply_or_close(payload, node=node)
                self.assertTrue(outcome == "closed" or isinstance(outcome, RespError),
                                f"{payload!r} on node {node.id}: {outcome!r}")
            for payload in may_wait:
                outcome = self.reply_or_close(payload, timeout=2.0, node=node)
                self.assertTrue(outcome in ("closed", "silent") or isinstance(outcome, RespError),
                                f"{payload!r} on node {node.id}: {outcome!r}")
        self.assert_all_well()
        for node, before in zip(self.nodes, rss_before):
            self.assertLess(node.rss_kb() - before, 100 * 1024,
                            f"node {node.id}'s RSS grew over 100 MB on absurd lengths")

    def test_binary_garbage(self):
        rng = random.Random(20240501)
        for node in self.nodes:
            for i in range(12):
                garbage = bytes(rng.getrandbits(8) for _ in range(16 * 1024))
                if i % 3 == 1:
                    garbage = b"*" + garbage  # looks like RESP at first
                elif i % 3 == 2:
                    garbage = garbage.replace(b"\r", b" ") + b"\r\n"  # inline-looking lines
                with node.raw(timeout=5) as c:
                    try:
                        c.send(garbage)
                        c.closed_by_server(timeout=0.5)
                    except OSError:
                        pass
        self.assert_all_well()

    def test_unknown_commands_and_wrong_arity_flood(self):
        rng = random.Random(7)
        commands = []
        for i in range(1000):
            if i % 2:
                name = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 20)))
                commands.append((b"X" + name, b"arg"))
            else:
                commands.append((rng.choice([b"SADD", b"SREM", b"SISMEMBER", b"SCARD"]),))
        with self.nodes[1].raw(timeout=30) as c:
            replies = c.pipeline(commands)
            for command, reply in zip(commands, replies):
                self.assertErrorWord(reply, "ERR", repr(command))
            self.assertEqual(c.command("PING"), "PONG")
        self.assert_all_well()

    # ---- volume -------------------------------------------------------------------

    def test_10000_pipelined_commands_in_one_write(self):
        # Through a follower: the forwarding path takes the whole batch.
        node = self.cluster.followers(self.cluster.wait_for_leader())[0]
        batch = b"".join(encode("SADD", "hostile:pipe", f"m{i}") for i in range(10000))
        with node.raw(timeout=120) as c:
            c.send(batch)
            replies = [c.read() for _ in range(10000)]
            self.assertEqual(replies, [1] * 10000, f"node {node.id}")
            self.assertEqual(c.command("SCARD", "hostile:pipe"), 10000)
        expected = {f"m{i}".encode() for i in range(10000)}
        for other in self.nodes:
            self.assertEqual(other.client().smembers("hostile:pipe"), expected,
                             f"node {other.id}")
        self.assert_all_well()

    def test_members_at_and_over_the_limit(self):
        at = b"a" * MAX_MEMBER_BYTES
        over = b"o" * (MAX_MEMBER_BYTES + 1)
        with self.nodes[1].raw(timeout=30) as c:
            replies = c.pipeline([("SADD", "hostile:limit", at), ("SADD", "hostile:limit", over),
                                  ("SISMEMBER", "hostile:limit", at),
                                  ("SADD", "hostile:limit", "small"),
                                  ("SADD", "hostile:limit", over, "small-2"),
                                  ("SCARD", "hostile:limit")])
        self.assertEqual(replies[0], 1)
        self.assertErrorWord(replies[1], "TOOBIG", "a member one byte over")
        self.assertEqual(replies[2], 1)
        self.assertEqual(replies[3], 1)
        self.assertErrorWord(replies[4], "TOOBIG", "an SADD holding one member over")
        self.assertEqual(replies[5], 2)
        for node in self.nodes:
            self.assertEqual(node.client().smembers("hostile:limit"), {at, b"small"})

    def test_client_that_never_reads_keeps_memory_bounded(self):
        node = self.nodes[1]
        node.client().sadd("hostile:big", *[f"{i:06d}".encode() + b"x" * 94 for i in range(2000)])
        request = encode("SMEMBERS", "hostile:big")  # ~210 KB of reply each
        requests = 5000                                # ~1 GB of replies if all buffered
        rss_before = node.rss_kb()

        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(20)
        slow.connect(("127.0.0.1", node.client_port))
        sent = [0]

        def flood():
            try:
                for _ in range(requests // 100):
                    slow.sendall(request * 100)
                    sent[0] += 100
            except OSError:
                pass  # the node stopped reading (or dropped us): both are fine

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        try:
            rss_max = rss_before
            deadline = time.monotonic() + 8
            other = node.client(timeout=5)
            i = 0
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                self.assertEqual(other.sadd("hostile:alongside", f"m{i}"), 1)
                self.assertEqual(other.sismember("hostile:alongside", f"m{i}"), 1)
                self.assertLess(time.monotonic() - t0, 3.0, "another client stalled")
                rss_max = max(rss_max, node.rss_kb())
                i += 1
            self.assertGreater(i, 5)
        finally:
            slow.close()
            flooder.join(30)
        growth_mb = (rss_max - rss_before) / 1024
        self.assertLess(growth_mb, 200,
                        f"RSS grew {growth_mb:.0f} MB for a client that never reads "
                        f"({sent[0]} requests sent)")
        self.assert_all_well()

    # ---- last: nothing corrupted ----------------------------------------------------

    def test_zz_state_intact_on_every_node(self):
        self.assert_all_well()
        for node in self.nodes:
            r = node.client()
            self.assertEqual(r.smembers("hostile:canary"), CANARY, f"node {node.id}")
            self.assertEqual(r.sadd("hostile:after", f"n{node.id}"), 1)
        for node in self.nodes:
            self.assertEqual(node.client().scard("hostile:after"), 3)
        until(lambda: len({n.info()["applied_index"] for n in self.nodes}) == 1, 10,
              what="every node to apply the same log")


if __name__ == "__main__":
    unittest.main()
