"""The tested clients of SPEC.md against a real 3-node cluster: redis-py,
redis-cli, hiredis (tests/integration/hiredis_smoke.cc), redis-benchmark;
and the admin HTTP endpoints (/health, /metrics, /status).

One cluster per module run (ctest runs each class on its own).
"""

import json
import re
import subprocess
import threading
import unittest
import urllib.error
import urllib.request

import redis

from harness import ClusterTestCase, binary, until

cluster = None


def setUpModule():
    global cluster
    cluster = ClusterTestCase.start_shared_cluster(3, name="test_clients")


def tearDownModule():
    ClusterTestCase.doClassCleanups()


def leader_and_follower():
    leader = cluster.wait_for_leader()
    return leader, cluster.followers(leader)[0]


def run(args, timeout=60, stdin=None):
    """Runs a client program; returns CompletedProcess (bytes)."""
    return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, check=False)


class RedisPyTest(ClusterTestCase):
    CTEST_TIMEOUT = 120

    def test_basic_commands_on_every_node(self):
        for node in cluster.nodes:
            r = node.client()
            key = f"py:basic:{node.id}"
            self.assertEqual(r.sadd(key, "a", "b"), 2)
            self.assertTrue(r.sismember(key, "a"))
            self.assertEqual(r.smembers(key), {b"a", b"b"})
            self.assertEqual(r.scard(key), 2)
            self.assertEqual(r.srem(key, "a"), 1)
            self.assertEqual(r.execute_command("SMISMEMBER", key, "a", "b"), [0, 1])

    def test_decode_responses(self):
        r = cluster.nodes[1].client(decode_responses=True)
        r.sadd("py:text", "héllo", "wörld")
        self.assertEqual(r.smembers("py:text"), {"héllo", "wörld"})

    def test_non_transactional_pipeline(self):
        r = cluster.nodes[2].client()
        pipe = r.pipeline(transaction=False)
        for i in range(200):
            pipe.sadd("py:pipe", f"m{i}")
            pipe.sismember("py:pipe", f"m{i}")
        replies = pipe.execute()
        self.assertEqual(replies, [1, True] * 200)
        self.assertEqual(r.scard("py:pipe"), 200)

    def test_scan_iterators(self):
        r = cluster.nodes[0].client()
        r.sadd("py:iter", *[f"m{i}" for i in range(300)])
        self.assertEqual(len(set(r.sscan_iter("py:iter", count=25))), 300)
        self.assertIn(b"py:iter", set(r.scan_iter(match="py:it*", count=10)))

    def test_concurrent_clients(self):
        errors = []

        def writer(node, t):
            try:
                r = node.client()
                for i in range(40):
                    r.sadd("py:concurrent", f"t{t}-{i}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=writer, args=(cluster.nodes[t % 3], t))
                   for t in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        for node in cluster.nodes:
            self.assertEqual(node.client().scard("py:concurrent"), 9 * 40)

    def test_connection_pool_info_and_client_name(self):
        pool = redis.ConnectionPool(host="127.0.0.1", port=cluster.nodes[0].client_port,
                                    socket_timeout=10, client_name="pooled")
        r = redis.Redis(connection_pool=pool)
        self.assertEqual(r.client_getname(), "pooled")
        info = r.info("raft")
        self.assertIn(info["role"], ("leader", "follower"))
        self.assertIn("redis_version", r.info("server"))
        pool.disconnect()


class RedisCliTest(ClusterTestCase):
    CTEST_TIMEOUT = 120

    def cli(self, node, *args, stdin=None):
        return run(["redis-cli", "-h", "127.0.0.1", "-p", str(node.client_port)] + list(args),
                   stdin=stdin)

    def test_set_commands(self):
        leader, follower = leader_and_follower()
        p = self.cli(follower, "SADD", "cli:k", "a", "b", "c")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"3\n")
        self.assertEqual(self.cli(leader, "SISMEMBER", "cli:k", "b").stdout, b"1\n")
        self.assertEqual(self.cli(follower, "SISMEMBER", "cli:k", "z").stdout, b"0\n")
        self.assertEqual(sorted(self.cli(leader, "SMEMBERS", "cli:k").stdout.split()),
                         [b"a", b"b", b"c"])
        self.assertEqual(self.cli(follower, "--no-raw", "SCARD", "cli:k").stdout,
                         b"(integer) 3\n")
        self.assertEqual(self.cli(leader, "SREM", "cli:k", "a").stdout, b"1\n")

    def test_errors_are_printed(self):
        node = cluster.nodes[0]
        out = self.cli(node, "CSET.ADD", "cli:strict", "m")
        self.assertEqual(out.stdout, b"OK\n")
        out = self.cli(node, "CSET.ADD", "cli:strict", "m")
        self.assertIn(b"EXISTS", out.stdout + out.stderr)
        out = self.cli(node, "NOSUCHCMD")
        self.assertIn(b"ERR unknown command", out.stdout + out.stderr)

    def test_info_and_ping(self):
        node = cluster.nodes[2]
        self.assertEqual(self.cli(node, "PING").stdout, b"PONG\n")
        out = self.cli(node, "INFO", "raft").stdout.decode()
        self.assertIn("# Raft", out)
        self.assertIn(f"node_id:{node.id}", out)

    def test_commands_from_stdin(self):
        script = b"SADD cli:stdin x y\nSISMEMBER cli:stdin y\nSCARD cli:stdin\nPING\n"
        out = self.cli(cluster.nodes[1], stdin=script)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), [b"2", b"1", b"2", b"PONG"])

    def test_resp3(self):
        node = cluster.nodes[0]
        self.cli(node, "SADD", "cli:resp3", "a")
        out = self.cli(node, "-3", "SMEMBERS", "cli:resp3")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"a\n")

    def test_pipe_mode_mass_insertion(self):
        # --pipe sends the raw protocol then an ECHO to find the end.
        data = b"".join(b"*3\r\n$4\r\nSADD\r\n$8\r\ncli:pipe\r\n$%d\r\n%s\r\n" % (len(m), m)
                        for m in (f"member-{i}".encode() for i in range(1000)))
        out = self.cli(cluster.nodes[1], "--pipe", stdin=data)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn(b"errors: 0, replies: 1000", out.stdout + out.stderr)
        self.assertEqual(cluster.nodes[2].client().scard("cli:pipe"), 1000)

    def test_scan_mode(self):
        r = cluster.nodes[0].client()
        for i in range(15):
            r.sadd(f"cli:scan:{i}", "x")
        out = self.cli(cluster.nodes[2], "--scan", "--pattern", "cli:scan:*")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(set(out.stdout.split()), {f"cli:scan:{i}".encode() for i in range(15)})


class HiredisTest(ClusterTestCase):
    CTEST_TIMEOUT = 120

    def test_hiredis_smoke_on_leader_and_follower(self):
        smoke = binary("HIREDIS_SMOKE", "tests/integration/hiredis_smoke")
        leader, follower = leader_and_follower()
        for node, key in ((leader, "hiredis:leader"), (follower, "hiredis:follower")):
            out = run([smoke, "127.0.0.1", str(node.client_port), key], timeout=60)
            self.assertEqual(out.returncode, 0,
                             f"node {node.id}: {out.stdout.decode()} {out.stderr.decode()}")
        for node in cluster.nodes:
            self.assertEqual(node.client().scard("hiredis:follower"), 504)


class BenchmarkTest(ClusterTestCase):
    CTEST_TIMEOUT = 180

    def bench(self, node, *args):
        out = run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(node.client_port), "-q"] +
                  list(args), timeout=120)
        text = (out.stdout + out.stderr).decode("utf-8", "replace")
        self.assertEqual(out.returncode, 0, text)
        self.assertNotIn("Error", text)
        self.assertNotIn("WARNING", text)
        self.assertRegex(text, r"requests per second")
        return text

    def test_sadd(self):
        leader, follower = leader_and_follower()
        for node in (leader, follower):
            self.bench(node, "-t", "sadd", "-n", "2000", "-c", "10")
        self.assertGreaterEqual(leader.client().scard("myset"), 1)

    def test_sadd_random_members_pipelined(self):
        leader, follower = leader_and_follower()
        self.bench(follower, "-t", "sadd", "-n", "2000", "-c", "10", "-r", "100000", "-P", "8")
        self.assertGreater(leader.client().scard("myset"), 100)

    def test_sismember(self):
        leader, follower = leader_and_follower()
        leader.client().sadd("key", "member")
        for node in (leader, follower):
            self.bench(node, "-n", "2000", "-c", "10", "sismember", "key", "member")


class AdminHttpTest(ClusterTestCase):
    CTEST_TIMEOUT = 60

    def get(self, node, path):
        url = f"http://127.0.0.1:{node.admin_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def test_health(self):
        for node in cluster.nodes:
            until(lambda node=node: self.get(node, "/health")[0] == 200, 10,
                  what=f"/health of node {node.id} to answer 200")

    def test_metrics_are_prometheus_text(self):
        sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)( -?\d+)?$")
        for node in cluster.nodes:
            status, body = self.get(node, "/metrics")
            self.assertEqual(status, 200)
            lines = [line for line in body.splitlines() if line and not line.startswith("#")]
            self.assertGreater(len(lines), 5, body)
            for line in lines:
                m = sample.match(line)
                self.assertIsNotNone(m, f"not a Prometheus sample: {line!r}")
                float(m.group(3))  # a number, NaN or +Inf
            for word in ("term", "commit", "applied"):
                self.assertIn(word, body, f"a {word} metric on node {node.id}")

    def test_errors_are_counted_by_code(self):
        # cset_errors_total counts every error reply by its code word: the
        # state machine's (EXISTS), the parser's (ERR) and the limits'
        # (TOOBIG) too, not only NOQUORUM.
        node = cluster.nodes[0]

        def counts():
            _, body = self.get(node, "/metrics")
            return {m.group(1): int(m.group(2)) for m in
                    re.finditer(r'^cset_errors_total\{code="([A-Z]+)"\} (\d+)$', body, re.M)}

        before = counts()
        with node.raw() as c:
            self.assertEqual(c.command("CSET.ADD", "errors:k", "m"), "OK")
            for _ in range(2):
                self.assertTrue(c.command("CSET.ADD", "errors:k", "m").startswith("EXISTS"))
            self.assertTrue(c.command("NO-SUCH-COMMAND").startswith("ERR"))
            self.assertTrue(c.command("SADD", "errors:k", "x" * 70000).startswith("TOOBIG"))
        want = {"EXISTS": 2, "ERR": 1, "TOOBIG": 1}
        until(lambda: all(counts().get(k, 0) - before.get(k, 0) == n for k, n in want.items()),
              5, what=f"cset_errors_total to count {want} (before {before}, now {counts()})")

    def test_status_is_json(self):
        for node in cluster.nodes:
            status, body = self.get(node, "/status")
            self.assertEqual(status, 200)
            self.assertIsInstance(json.loads(body), dict)

    def test_unknown_path(self):
        status, _ = self.get(cluster.nodes[0], "/no-such-page")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
