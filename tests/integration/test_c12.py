"""Field case C12 (/work/shared/cases.md, rqlite/rqlite#130: binary members
mangled): members and keys that are empty, hold NUL, CR LF, RESP-looking
bytes, invalid UTF-8, numbers that differ only in spelling, and sizes at and
one byte over the limits. Each add answers 1 then 0; SMEMBERS returns the
bytes exactly, distinct strings stay distinct; identical on every node after
a snapshot (--snapshot-entries 32), a full restart and a leader failover.
"""

import time
import unittest

import redis

from harness import E, ClusterTestCase, until

MAX_KEY_BYTES = 4096
MAX_MEMBER_BYTES = 64 * 1024

MEMBERS = [b"", b"\x00", b"a\x00b", b"\r\n", b"*1\r\n$3\r\nfoo", b"\xff\xfe", b"1", b"01",
           b"1.0", b"L" * MAX_MEMBER_BYTES]
KEYS = [b"c12", b"", b"\x00", b"a\x00b", b"\r\n", b"*1\r\n$3\r\nfoo", b"\xff\xfe", b"1", b"01",
        b"1.0", b"K" * MAX_KEY_BYTES]
# Near misses: none of these was ever added.
ABSENT = [b"1.00", b"001", b"\x00\x00", b"a", b"ab", b"a\x00", b"\n", b"\r", b"*1\r\n$3\r\nfo",
          b"\xff", b"L" * (MAX_MEMBER_BYTES - 1)]


class BinaryMembersTest(ClusterTestCase):
    CTEST_PER_METHOD = True
    CTEST_TIMEOUT = 180

    def check_node(self, node, timeout=10 * E):
        """Every key and member exact on `node`; retries only until its first
        successful answer (a linearizable read must then be complete)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = node.client(timeout=5)
                r.ping()
                snapshot = {key: r.smembers(key) for key in KEYS}
                break
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for key, members in snapshot.items():
            self.assertEqual(members, set(MEMBERS), f"node {node.id}, key {key[:20]!r}")
            self.assertEqual(r.scard(key), len(MEMBERS))
            self.assertEqual(r.execute_command("SMISMEMBER", key, *MEMBERS), [1] * len(MEMBERS))
            self.assertEqual(r.execute_command("SMISMEMBER", key, *ABSENT), [0] * len(ABSENT),
                             f"node {node.id}, key {key[:20]!r}: a near miss is present")
        self.assertEqual(r.exists(*KEYS), len(KEYS))
        self.assertEqual(r.exists(b"\x00\x00", b"c1", b"K" * (MAX_KEY_BYTES - 1)), 0)
        self.assertEqual(set(r.scan_iter(count=5)), set(KEYS), f"node {node.id}: SCAN")

    def check_all(self, nodes):
        for node in nodes:
            self.check_node(node)

    def test_C12_binary_members(self):
        cluster = self.new_cluster(3, extra_args=["--snapshot-entries", "32"])
        nodes = cluster.nodes
        i = 0
        for key in KEYS:
            for member in MEMBERS:
                first = nodes[i % 3].client().sadd(key, member)
                second = nodes[(i + 1) % 3].client().sadd(key, member)
                self.assertEqual((first, second), (1, 0), f"{key[:20]!r} / {member[:20]!r}")
                i += 1
        r = nodes[0].client()
        with self.assertRaises(redis.ResponseError) as cm:
            r.sadd(b"c12", b"L" * (MAX_MEMBER_BYTES + 1))
        self.assertTrue(str(cm.exception).startswith("TOOBIG"), str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            r.sadd(b"K" * (MAX_KEY_BYTES + 1), b"m")
        self.assertTrue(str(cm.exception).startswith("TOOBIG"), str(cm.exception))
        self.check_all(nodes)
        # 220 writes with --snapshot-entries 32: every node has taken a snapshot
        # (INFO raft's snapshot_index, where the node reports it).
        for node in nodes:
            if "snapshot_index" in node.info():
                until(lambda node=node: int(node.info()["snapshot_index"]) > 0, 10,
                      what=f"a snapshot on node {node.id}")

        # A full restart (clean, SIGTERM): everything comes back from disk.
        for node in nodes:
            self.assertEqual(node.terminate(), 0)
        for node in nodes:
            node.start()
        cluster.wait_for_started()
        old = cluster.wait_for_leader()
        self.check_all(nodes)

        # A leader failover.
        old.kill()
        survivors = cluster.followers(old)
        cluster.wait_for_leader(among=survivors)
        self.check_all(survivors)
        cluster.restart(old.id)
        cluster.wait_for_leader()
        self.check_all(nodes)


if __name__ == "__main__":
    unittest.main()
