"""Snapshot images built on demand (9757e6e) on real clusters.

- TestImageAfterWholeClusterRestart: after a restart no node holds an image
  (take_snapshot() records metadata only, open() builds none); a follower
  that fell behind the compacted log still gets one, built by the leader at
  that moment, and installs every acknowledged member. The whole cluster is
  SIGKILLed right after the acknowledgements, so the commit index, written
  without an fsync (5bdcc83), may be lost too.
- TestSnapshotTransferUnderLoad: a follower that needs a snapshot while
  writes continue catches up. Every snapshot used to drop the image in
  transfer, which then started over at offset 0 with a new image; a transfer
  longer than the writes between two snapshots never finished while the load
  lasted (found by a breaker run: 60 s at applied index 2, 48 images built).
  The leader now defers snapshots while a follower is in snapshot state
  (Server::Impl::maybe_snapshot). Timing is shortened with the test-only
  --test-snapshot-chunk-delay-ms and a low --snapshot-entries.
"""

import threading
import time
import unittest
import urllib.request

from harness import E, ClusterTestCase, RespError, until


def metric(node, name, timeout=5 * E):
    """A counter or gauge from node's /metrics (admin listener), as a float.
    Polled: a node that just started publishes its metrics a moment later."""

    def read():
        with urllib.request.urlopen(f"http://{node.host}:{node.admin_port}/metrics",
                                    timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return (float(line.split()[1]),)
        return None

    return until(read, timeout, what=f"{name} in node {node.id}'s /metrics")[0]


def command(node, *args, timeout=10.0):
    try:
        with node.raw(timeout=timeout) as c:
            return c.command(*args)
    except OSError as e:
        return e


def members(node, key):
    reply = command(node, "SMEMBERS", key, timeout=60.0)
    if isinstance(reply, (RespError, OSError)):
        raise AssertionError(f"SMEMBERS {key} on node {node.id}: {reply!r}")
    return {m.decode() for m in reply}


def leader_of(cluster):
    return cluster.wait_for_leader(among=[n for n in cluster.nodes if n.alive()])


def load(test, cluster, key, prefix, count, per_sadd=20):
    """SADDs `count` fresh members in commands of `per_sadd` through the
    leader (one log entry each); returns them (all acknowledged)."""
    acked = set()
    leader = leader_of(cluster)
    with leader.raw(timeout=60) as c:
        for i in range(0, count, per_sadd):
            chunk = [f"{prefix}{j:08d}-{'p' * 40}" for j in range(i, min(count, i + per_sadd))]
            reply = c.command("SADD", key, *chunk)
            test.assertEqual(reply, len(chunk), f"SADD via leader {leader.id}")
            acked.update(chunk)
    return acked


class TestImageAfterWholeClusterRestart(ClusterTestCase):
    CTEST_PER_METHOD = True
    CTEST_TIMEOUT = 150

    def test_follower_behind_a_restarted_cluster_gets_an_image_built_on_demand(self):
        c = self.new_cluster(3, extra_args=["--snapshot-entries", "500"])
        leader = c.wait_for_leader()
        behind = c.followers(leader)[0]
        behind.kill()
        acked = load(self, c, "k", "a", 40000)  # 2,000 entries: the log is compacted
        first = int(leader.info()["first_log_index"])
        last_behind = 2
        self.assertGreater(first, last_behind + 1, "the log was not compacted")
        c.crash_all()  # right after the acknowledgements (commit index unsynced)
        for n in c.nodes:
            if n is not behind:
                n.start()
        c.wait_for_started([n for n in c.nodes if n is not behind])
        leader = leader_of(c)
        self.assertEqual(metric(leader, "cset_snapshot_images_built_total"), 0,
                         "an image was built at start-up")
        acked |= load(self, c, "k", "b", 2000)
        behind.start()
        c.wait_for_started([behind])
        until(lambda: metric(behind, "cset_snapshots_installed_total") >= 1, 10 * E,
              what=f"node {behind.id} to install a snapshot")
        target = int(leader_of(c).info()["commit_index"])
        until(lambda: int(behind.info()["applied_index"]) >= target, 10 * E,
              what=f"node {behind.id} to apply index {target}")
        self.assertGreaterEqual(metric(leader_of(c), "cset_snapshot_images_built_total"), 1)
        for n in c.nodes:
            got = members(n, "k")
            self.assertEqual(len(acked - got), 0,
                             f"node {n.id} misses {len(acked - got)} acknowledged members, "
                             f"e.g. {sorted(acked - got)[:3]}")
            self.assertEqual(command(n, "SCARD", "k"), len(acked), f"SCARD on node {n.id}")


class TestSnapshotTransferUnderLoad(ClusterTestCase):
    CTEST_PER_METHOD = True
    CTEST_TIMEOUT = 240

    LOAD_SECONDS = 60
    WRITERS = 8

    def test_follower_needing_a_snapshot_catches_up_while_writes_continue(self):
        c = self.new_cluster(3, extra_args=["--snapshot-entries", "100",
                                            "--test-snapshot-chunk-delay-ms", "1000"])
        leader = c.wait_for_leader()
        behind = c.followers(leader)[0]
        behind.kill()
        load(self, c, "k", "a", 60000)  # ~5 MiB image: five chunks, ~4 s to send
        others = [n for n in c.nodes if n is not behind]
        stop = threading.Event()
        acked = [0]

        def writer(w):
            i = 0
            while not stop.is_set():
                reply = command(others[i % 2], "SADD", "w", f"{w}-{i}", timeout=5)
                if isinstance(reply, int):
                    acked[0] += 1
                i += 1

        threads = [threading.Thread(target=writer, args=(w,), daemon=True)
                   for w in range(self.WRITERS)]
        for t in threads:
            t.start()
        try:
            behind.start()
            c.wait_for_started([behind])
            t0 = time.monotonic()
            installed = False
            while time.monotonic() - t0 < self.LOAD_SECONDS:
                if metric(behind, "cset_snapshots_installed_total") >= 1:
                    installed = True
                    break
                time.sleep(1)
            leader = leader_of(c)
            report = (f"after {time.monotonic() - t0:.0f} s of writes ({acked[0]} acknowledged): "
                      f"node {behind.id} applied_index {behind.info()['applied_index']}, leader "
                      f"commit_index {leader.info()['commit_index']}, images built "
                      f"{metric(leader, 'cset_snapshot_images_built_total'):.0f}, snapshots "
                      f"taken {metric(leader, 'cset_snapshots_taken_total'):.0f}")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertTrue(installed, "the follower never got a whole snapshot while the writes "
                                   "went on (a new snapshot drops the image in transfer): "
                                   + report)


if __name__ == "__main__":
    unittest.main()
