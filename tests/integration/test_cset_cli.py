"""The cset CLI (SPEC.md "cset") against a real 3-node cluster: answers,
exit codes (0 success, 1 negative, 2 usage, 3 unreachable/no quorum/timeout)
and endpoint failover. NOQUORUM's exit code 3 is checked in test_faults.py.
"""

import json
import socket
import subprocess
import time
import unittest

from harness import ClusterTestCase, binary, free_ports

MAX_REPLY_MEMBERS = 50


class CsetCliTest(ClusterTestCase):
    CTEST_TIMEOUT = 120

    @classmethod
    def setUpClass(cls):
        cls.cset_binary = binary("CSET", "the cset CLI")
        cls.cluster = cls.start_shared_cluster(
            3, extra_args=["--max-reply-members", str(MAX_REPLY_MEMBERS)])
        cls.nodes = cls.cluster.nodes

    def cset(self, *args, endpoints=None, timeout=60):
        endpoints = endpoints or self.cluster.endpoints()
        return subprocess.run([self.cset_path(), "-e", endpoints] + list(args),
                              capture_output=True, timeout=timeout)

    def cset_path(self):
        return type(self).cset_binary

    def assertExit(self, out, code):
        self.assertEqual(out.returncode, code,
                         f"stdout {out.stdout!r} stderr {out.stderr!r}")

    def test_add_has_rem_size_members(self):
        self.assertExit(self.cset("add", "cli:k", "a"), 0)
        out = self.cset("add", "cli:k", "a")
        self.assertExit(out, 1)
        self.assertIn(b"already present: a", out.stderr)
        self.assertExit(self.cset("add", "cli:k", "b", "c"), 0)
        out = self.cset("add", "cli:k", "c", "d")
        self.assertExit(out, 1)
        self.assertIn(b"already present: c", out.stderr)
        self.assertNotIn(b"already present: d", out.stderr)
        out = self.cset("has", "cli:k", "d")
        self.assertExit(out, 0)
        self.assertEqual(out.stdout, b"true\n")
        out = self.cset("has", "cli:k", "zz")
        self.assertExit(out, 1)
        self.assertEqual(out.stdout, b"false\n")
        out = self.cset("size", "cli:k")
        self.assertExit(out, 0)
        self.assertEqual(out.stdout, b"4\n")
        out = self.cset("members", "cli:k")
        self.assertExit(out, 0)
        self.assertEqual(sorted(out.stdout.splitlines()), [b"a", b"b", b"c", b"d"])
        self.assertExit(self.cset("rem", "cli:k", "a", "zz"), 0)
        self.assertExit(self.cset("has", "cli:k", "a"), 1)
        self.assertEqual(self.cset("size", "cli:k").stdout, b"3\n")
        for node in self.nodes:
            self.assertEqual(node.client().smembers("cli:k"), {b"b", b"c", b"d"})

    def test_members_are_raw_bytes(self):
        self.nodes[0].client().sadd("cli:raw", b"h\xc3\xa9llo w\xc3\xb6rld", b"tab\there",
                                    b"\xff\xfe")
        out = self.cset("members", "cli:raw")
        self.assertExit(out, 0)
        self.assertEqual(sorted(out.stdout.splitlines()),
                         sorted([b"h\xc3\xa9llo w\xc3\xb6rld", b"tab\there", b"\xff\xfe"]))

    def test_members_of_a_set_over_max_reply_members(self):
        self.nodes[0].client().sadd("cli:big", *[f"m{i}" for i in range(120)])
        out = self.cset("members", "cli:big")
        self.assertExit(out, 0)
        self.assertEqual(set(out.stdout.splitlines()), {f"m{i}".encode() for i in range(120)})
        self.assertEqual(len(out.stdout.splitlines()), 120)

    def test_empty_set(self):
        out = self.cset("members", "cli:none")
        self.assertExit(out, 0)
        self.assertEqual(out.stdout, b"")
        self.assertEqual(self.cset("size", "cli:none").stdout, b"0\n")

    def test_status(self):
        out = self.cset("status")
        self.assertExit(out, 0)
        lines = out.stdout.decode().splitlines()
        self.assertEqual(len(lines), 4, out.stdout)  # a header and one row per node
        self.assertIn("ID", lines[0])
        rows = [line.split() for line in lines[1:]]
        self.assertEqual(sorted(row[0] for row in rows), ["1", "2", "3"])
        for node in self.nodes:
            row = [r for r in rows if r[0] == str(node.id)][0]
            self.assertIn(f"127.0.0.1:{node.client_port}", row)
            self.assertIn(f"127.0.0.1:{node.peer_port}", row)
            self.assertIn("voter", row)
        states = [r[4] for r in rows]
        self.assertEqual(states.count("leader"), 1, lines)
        self.assertEqual(states.count("follower"), 2, lines)
        for row in rows:
            self.assertTrue(all(field.isdigit() for field in row[5:8]), row)

    def test_usage_errors_exit_2(self):
        bad_endpoints = ("[]:6381", "[::1:6381", " 127.0.0.1:6381", "::1:6381", "host:0",
                         "host:65536", "host:", ":6381", ",")
        for args in ([], ["add", "cli:u"], ["has", "cli:u"], ["frobnicate"], ["node"],
                     ["--timeout", "0", "size", "k"], ["node", "promote", "x"],
                     *(["-e", e, "size", "k"] for e in bad_endpoints)):
            out = subprocess.run([self.cset_path()] + args, capture_output=True, timeout=30)
            self.assertExit(out, 2)
            self.assertLess(len(out.stderr), 300, f"{args}: a short message, not a manual")
        out = subprocess.run([self.cset_path(), "frobnicate"], capture_output=True, timeout=30)
        self.assertIn(b"unknown command 'frobnicate'", out.stderr)
        out = subprocess.run([self.cset_path(), "--timeout", "0", "size", "k"],
                             capture_output=True, timeout=30)
        self.assertIn(b"[1, 3600000]", out.stderr)
        for mix in ("nope=1", "fresh=0", "1:2:3:4", "fresh=x"):
            out = subprocess.run([self.cset_path(), "bench", "--mix", mix], capture_output=True,
                                 timeout=30)
            self.assertExit(out, 2)
            self.assertIn(b"--mix", out.stderr)
        out = subprocess.run([self.cset_path(), "--help"], capture_output=True, timeout=30)
        self.assertExit(out, 0)
        self.assertIn(b"Exit codes", out.stdout)

    def test_bench_counts_requests_and_writes_fresh_members(self):
        key_prefix = "cli:bench"
        out = subprocess.run([self.cset_path(), "-e", self.cluster.endpoints(), "bench", "--clients", "4",
                              "--pipeline", "4", "--requests", "400", "--warmup", "0.2",
                              "--mix", "fresh=1", "--key-prefix", key_prefix, "--json"],
                             capture_output=True, timeout=120)
        self.assertExit(out, 0)
        report = json.loads(out.stdout)
        self.assertEqual(report["requests"], 400, report)
        self.assertEqual(report["errors"], 0, report)
        self.assertGreater(report["ops_per_sec"], 0, report)
        self.assertLessEqual(report["p50_ms"], report["p99_ms"])
        self.assertLessEqual(report["p99_ms"], report["max_ms"])
        # Every measured request and the warm-up's added one fresh member.
        size = self.cset("size", f"{key_prefix}:0")
        self.assertExit(size, 0)
        self.assertGreaterEqual(int(size.stdout), 400)
        # A mix of reads and bounded writes, text report, through every endpoint.
        out = subprocess.run([self.cset_path(), "-e", self.cluster.endpoints(), "bench", "-c", "6",
                              "-t", "1", "--warmup", "0.2", "--mix", "add=1,rem=1,has=2,members=1",
                              "--members", "50", "--all-endpoints"],
                             capture_output=True, timeout=120)
        self.assertExit(out, 0)
        self.assertRegex(out.stdout, rb"throughput [0-9.]+ ops/s")
        self.assertRegex(out.stdout, rb"errors 0\n")
        # Nothing listening: exit 3.
        out = subprocess.run([self.cset_path(), "-e", "127.0.0.1:1", "bench", "-n", "5"],
                             capture_output=True, timeout=60)
        self.assertExit(out, 3)

    def test_silent_first_endpoint_does_not_use_up_the_timeout(self):
        # An endpoint that accepts connections and never answers (a paused
        # node, a lost reply) gets a share of --timeout, then the next one is
        # tried; later commands of the same run start with the one that answered.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        try:
            port = silent.getsockname()[1]
            endpoints = f"127.0.0.1:{port},{self.cluster.endpoints()}"
            t0 = time.monotonic()
            out = self.cset("--timeout", "8000", "add", "cli:silent", "m1", endpoints=endpoints)
            took = time.monotonic() - t0
            self.assertExit(out, 0)
            self.assertIn(b"added: m1", out.stdout)
            self.assertLess(took, 7.5, f"took {took:.1f} s: the silent endpoint used the budget")
            out = self.cset("--timeout", "8000", "has", "cli:silent", "m1", endpoints=endpoints)
            self.assertExit(out, 0)
        finally:
            silent.close()

    def test_toobig_member(self):
        out = self.cset("add", "cli:big-member", "x" * (64 * 1024 + 1))
        self.assertExit(out, 2)
        self.assertIn(b"TOOBIG", out.stderr)

    def test_failover_when_the_first_endpoint_is_down(self):
        dead = free_ports(1)[0]  # nothing listens there
        endpoints = f"127.0.0.1:{dead},{self.cluster.endpoints()}"
        self.assertExit(self.cset("add", "cli:fo", "x", endpoints=endpoints), 0)
        out = self.cset("has", "cli:fo", "x", endpoints=endpoints)
        self.assertExit(out, 0)
        self.assertEqual(out.stdout, b"true\n")

    def test_unreachable_exit_3(self):
        dead = free_ports(2)
        out = self.cset("size", "k", endpoints=f"127.0.0.1:{dead[0]},127.0.0.1:{dead[1]}")
        self.assertExit(out, 3)
        self.assertIn(b"UNREACHABLE", out.stderr)

    def test_zz_failover_when_a_node_is_killed(self):
        victim = self.nodes[0]
        victim.kill()
        try:
            self.cluster.wait_for_leader(among=self.nodes[1:])
            self.assertExit(self.cset("add", "cli:killed", "y"), 0)
            out = self.cset("has", "cli:killed", "y")
            self.assertExit(out, 0)
            out = self.cset("status")
            self.assertExit(out, 0)
            self.assertIn(b"unreachable", out.stdout)
        finally:
            self.cluster.restart(victim.id)
        self.cluster.wait_for_leader()


if __name__ == "__main__":
    unittest.main()
