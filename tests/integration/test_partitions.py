"""The original design's partition scenarios on real processes (issue 6,
"What it must show", first bullet). Each csetd runs in its own network
namespace on one bridge (netns.py); a partition is a set of iptables DROP
rules inside the namespaces between the two sides' addresses, healed by
removing them. The test process reaches every node from the root namespace
all the time, so it can see the cut-off side refuse.

Each test: start the cluster, (place the leader), write through every node,
cut, then
  - write through every node at once: a node on a side that must halt
    answers NOQUORUM or TIMEOUT within the write timeout (plus SLACK);
  - on the side that must continue, a write is acknowledged within 5 E of
    the cut, and then through every node of that side;
  - once more (steady state) every node of a halted side refuses a write
    and a linearizable read;
heal, then every node answers writes, converges (SMEMBERS identical on every
node, each a linearizable read, and applied_index equal), every acknowledged
write is present and no write answered NOQUORUM is (a TIMEOUT one may be).

Timing: --election-timeout-ms 1000 --heartbeat-ms 100 --write-timeout 2000
(harness.py), E = 2 s. Needs root and `ip`/`iptables` (Debian: iproute2,
iptables); without them every test fails with the reason, never skips.
"""

import itertools
import socket
import sys
import threading
import time

import redis

import netns
from harness import E, ClusterTestCase, RespError, until

KEY = "p:set"
SLACK = 2.0  # seconds allowed beyond the write timeout for a refusal to arrive
REFUSALS = ("noquorum", "timeout")
PROBE_EVERY = 0.2  # seconds between writes probing the continuing side after a cut


class Writes:
    """Every SADD the test sends (one new member each) and its outcome:
    acked (:1), noquorum, timeout, or other (anything else, e.g. no reply:
    outcome unknown). Thread-safe."""

    def __init__(self, write_timeout_s):
        self.write_timeout_s = write_timeout_s
        self.lock = threading.Lock()
        self.seq = itertools.count(1)
        self.log = []  # (phase, node id, member, kind, reply, seconds)
        self.phase = "start"

    def write(self, node):
        """One SADD through `node`; returns (kind, reply, seconds)."""
        with self.lock:
            member = f"m{next(self.seq)}-via{node.id}-{self.phase}"
        t0 = time.monotonic()
        try:
            with node.raw(timeout=self.write_timeout_s + 10) as c:
                reply = c.command("SADD", KEY, member)
        except (OSError, socket.timeout) as e:
            reply = e
        seconds = time.monotonic() - t0
        if reply == 1 and not isinstance(reply, bool):
            kind = "acked"
        elif isinstance(reply, RespError) and reply.word == "NOQUORUM":
            kind = "noquorum"
        elif isinstance(reply, RespError) and reply.word == "TIMEOUT":
            kind = "timeout"
        else:
            kind = "other"
        with self.lock:
            self.log.append((self.phase, node.id, member, kind, reply, seconds))
        return kind, reply, seconds

    def members(self, kind):
        with self.lock:
            return {m.encode() for (_, _, m, k, _, _) in self.log if k == kind}

    def attempted(self):
        with self.lock:
            return {m.encode() for (_, _, m, _, _, _) in self.log}

    def summary(self):
        with self.lock:
            return "\n".join(f"  [{p}] node {n} {m}: {k} {r!r} ({s:.2f} s)"
                             for (p, n, m, k, r, s) in self.log)


def in_parallel(functions):
    """Runs each function in its own thread; returns their results in order
    (an exception is returned as the result)."""
    results = [None] * len(functions)

    def run(i, f):
        try:
            results[i] = f()
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def read_members(node, timeout):
    """SMEMBERS KEY through node (a linearizable read), as a frozenset."""
    return frozenset(node.client(timeout=timeout).smembers(KEY))


class PartitionTest(ClusterTestCase):
    CTEST_PER_METHOD = True
    CTEST_TIMEOUT = 120

    # -- the scenario ----------------------------------------------------------

    def scenario(self, size, groups, continuing, quorum=None, leader=None):
        """Runs one partition scenario (module comment). groups: lists of node
        ids; continuing: the group that must keep writing, or None (all halt);
        quorum: the --quorum flag, or None (the default, tiebreak); leader:
        the node to place the leadership on before the cut (CSET.LEADER
        TRANSFER sent to the current leader), or None (wherever it is)."""
        t_start = time.monotonic()
        try:
            net = netns.Network(size).create()
        except netns.NetnsUnavailable as e:
            self.fail(f"network namespaces are unavailable, so the partition scenarios cannot "
                      f"run: {e}")
        self.addCleanup(self._destroy_network, net)
        extra = ["--quorum", quorum] if quorum else []
        cluster = self.new_cluster(size, hosts=net.addresses(), wrappers=net.wrappers(),
                                   extra_args=extra)
        writes = Writes(cluster.write_timeout_ms / 1000.0)
        try:
            self._run_scenario(net, cluster, writes, groups, continuing, quorum, leader,
                               t_start)
        except BaseException:
            self._report(net, cluster, writes)
            raise

    def _run_scenario(self, net, cluster, writes, groups, continuing, quorum, leader, t_start):
        write_timeout_s = cluster.write_timeout_ms / 1000.0
        first = cluster.wait_for_leader()
        info = first.info()
        expected_mode = quorum or "tiebreak"
        self.assertEqual(info.get("quorum"), expected_mode, f"INFO raft of node {first.id}")
        if expected_mode == "tiebreak":
            self.assertEqual(info.get("tiebreaker_id"), "1", f"INFO raft of node {first.id}")
        if leader is not None:
            self.place_leader(cluster, leader)
        before = cluster.wait_for_leader()
        if leader is not None:
            self.assertEqual(before.id, leader, "the leader moved before the cut")
        t_ready = time.monotonic()

        writes.phase = "before"
        for n in cluster.nodes:
            kind, reply, _ = writes.write(n)
            self.assertEqual(kind, "acked", f"write through node {n.id} before the cut: {reply!r}")

        # -- cut --
        net.partition(groups)
        t_cut = time.monotonic()
        halted = [cluster.node(i) for g in groups if sorted(g) != sorted(continuing or [])
                  for i in g]
        side = [cluster.node(i) for i in continuing] if continuing else []

        # Every node at once, right after the cut; meanwhile the continuing
        # side is probed until a write is acknowledged.
        writes.phase = "cut"
        first_ack = [None]

        def probe():
            # A new write through the next node of the side every PROBE_EVERY
            # seconds (each in its own thread: a write forwarded to a cut-off
            # leader blocks for the write timeout) until one is acknowledged
            # or 5 E have passed; first_ack = (seconds after the cut, node).
            deadline = t_cut + 5 * E
            lock = threading.Lock()
            threads = []

            def attempt(n):
                kind, _, _ = writes.write(n)
                if kind == "acked":
                    with lock:
                        if first_ack[0] is None:
                            first_ack[0] = (time.monotonic() - t_cut, n.id)

            for k in itertools.count():
                with lock:
                    if first_ack[0] is not None:
                        break
                if time.monotonic() >= deadline:
                    break
                t = threading.Thread(target=attempt, args=(side[k % len(side)],))
                t.start()
                threads.append(t)
                time.sleep(PROBE_EVERY)
            for t in threads:
                t.join()

        jobs = [lambda n=n: writes.write(n) for n in cluster.nodes]
        if side:
            jobs.append(probe)
        results = in_parallel(jobs)
        for n, result in zip(cluster.nodes, results):
            if isinstance(result, BaseException):
                raise result
            kind, reply, seconds = result
            if n in halted:
                self.assertIn(kind, REFUSALS,
                              f"node {n.id} (cut off, side {self._side(groups, n.id)}) answered a "
                              f"write right after the cut with {reply!r}")
                self.assertLessEqual(seconds, write_timeout_s + SLACK,
                                     f"node {n.id}: refusal after {seconds:.2f} s")
        if side:
            self.assertIsNotNone(first_ack[0],
                                 f"side {continuing} acknowledged no write within 5 E "
                                 f"({5 * E:.0f} s) of the cut")
            new_leader = cluster.wait_for_leader(among=side, timeout=5 * E)
            self.assertIn(new_leader.id, continuing, "the continuing side's leader")
            for n in side:
                def acked(n=n):
                    return writes.write(n)[0] == "acked"
                until(acked, 3 * E, interval=0.05,
                      what=f"a write acknowledged through node {n.id} on the continuing side")
        t_continuing = time.monotonic()

        # Steady state: every halted node refuses a write and a read.
        writes.phase = "steady"
        time.sleep(max(0.0, t_cut + E - time.monotonic()))

        def refused_read(n):
            t0 = time.monotonic()
            try:
                reply = sorted(read_members(n, write_timeout_s + 10))
            except redis.ResponseError as e:
                reply = RespError(str(e))
            except (redis.RedisError, OSError) as e:
                reply = e
            return reply, time.monotonic() - t0

        jobs = [lambda n=n: writes.write(n) for n in halted] + \
               [lambda n=n: refused_read(n) for n in halted]
        results = in_parallel(jobs)
        for n, result in zip(halted, results[:len(halted)]):
            if isinstance(result, BaseException):
                raise result
            kind, reply, seconds = result
            self.assertIn(kind, REFUSALS, f"node {n.id} (cut off) answered a write {E} s after "
                                          f"the cut with {reply!r}")
            self.assertLessEqual(seconds, write_timeout_s + SLACK,
                                 f"node {n.id}: refusal after {seconds:.2f} s")
        for n, result in zip(halted, results[len(halted):]):
            if isinstance(result, BaseException):
                raise result
            reply, seconds = result
            self.assertIsInstance(reply, RespError,
                                  f"node {n.id} (cut off) answered a linearizable read: "
                                  f"{reply!r}")
            self.assertIn(reply.word, ("NOQUORUM", "TIMEOUT"),
                          f"node {n.id}: read refused with {reply!r}")
            self.assertLessEqual(seconds, write_timeout_s + SLACK,
                                 f"node {n.id}: read refusal after {seconds:.2f} s")
        t_steady = time.monotonic()

        # -- heal --
        net.heal()
        t_heal = time.monotonic()
        writes.phase = "healed"
        cluster.wait_for_leader(timeout=10 * E)
        for n in cluster.nodes:
            def acked(n=n):
                return writes.write(n)[0] == "acked"
            until(acked, 5 * E, interval=0.05,
                  what=f"a write acknowledged through node {n.id} after healing")

        def converged():
            applied = {n.id: n.info().get("applied_index") for n in cluster.nodes}
            if len(set(applied.values())) != 1:
                return None
            sets = {n.id: read_members(n, 10) for n in cluster.nodes}
            if len(set(sets.values())) != 1:
                return None
            again = {n.id: n.info().get("applied_index") for n in cluster.nodes}
            if again != applied:
                return None
            return sets[1], applied[1]

        final, applied = until(converged, 10 * E, interval=0.1,
                               what="every node to converge (SMEMBERS and applied_index equal)")
        t_converged = time.monotonic()

        acked = writes.members("acked")
        noquorum = writes.members("noquorum")
        self.assertEqual(acked - final, set(), "acknowledged writes missing after healing")
        self.assertEqual(noquorum & final, set(), "writes answered NOQUORUM are present")
        self.assertEqual(final - writes.attempted(), set(), "members nobody wrote are present")
        sys.stderr.write(
            f"\n[{self.id()}] leader before the cut: {before.id}; "
            f"start {t_ready - t_start:.1f} s, first ack after the cut "
            f"{(first_ack[0][0] if first_ack[0] else float('nan')):.2f} s"
            f"{f' (via node {first_ack[0][1]})' if first_ack[0] else ''}, "
            f"cut→continuing {t_continuing - t_cut:.1f} s, steady checks "
            f"{t_steady - t_continuing:.1f} s, heal→converged {t_converged - t_heal:.1f} s; "
            f"writes: {len(acked)} acked, {len(noquorum)} NOQUORUM, "
            f"{len(writes.members('timeout'))} TIMEOUT ({len(writes.members('timeout') & final)} "
            f"present), {len(writes.members('other'))} other; applied_index {applied}; "
            f"total {time.monotonic() - t_start:.1f} s\n")

    # -- helpers ---------------------------------------------------------------

    def place_leader(self, cluster, target):
        """Makes node `target` the leader: CSET.LEADER TRANSFER sent to the
        current leader (answers once the target leads)."""
        leader = cluster.wait_for_leader()
        if leader.id != target:
            with leader.raw(timeout=5 * E) as c:
                reply = c.command("CSET.LEADER", "TRANSFER", str(target))
            self.assertEqual(reply, "OK", f"CSET.LEADER TRANSFER {target} sent to node "
                                          f"{leader.id}")
        self.assertEqual(cluster.wait_for_leader().id, target, "leader after the transfer")

    @staticmethod
    def _side(groups, node_id):
        return next(g for g in groups if node_id in g)

    def _destroy_network(self, net):
        net.destroy()
        left = net.leftovers()
        if left:
            raise AssertionError(f"network namespaces/links left after destroy: {left}")

    def _report(self, net, cluster, writes):
        """On failure: INFO raft of every node, the partition rules, every write."""
        sys.stderr.write(f"\n===== {self.id()} failed; cut {net.cut}\n")
        for n in cluster.nodes:
            try:
                info = n.info(timeout=3.0)
                text = " ".join(f"{k}={v}" for k, v in info.items())
            except Exception as e:  # noqa: BLE001 - a report, best effort
                text = f"(INFO failed: {e!r})"
            sys.stderr.write(f"node {n.id} {n.host}: {text}\n")
            if net.cut:
                try:
                    sys.stderr.write("  " + net.rules(n.id).replace("\n", "\n  ") + "\n")
                except netns.NetnsUnavailable as e:
                    sys.stderr.write(f"  (rules: {e})\n")
        sys.stderr.write("writes:\n" + writes.summary() + "\n")

    # -- the scenarios ------------------------------------------------------------

    def test_2_nodes_split_1_1_both_refuse(self):
        self.scenario(2, [[1], [2]], continuing=None)

    def test_3_nodes_split_2_1_pair_continues(self):
        # The leader is the one cut off: the pair must elect a new one.
        self.scenario(3, [[1, 2], [3]], continuing=[1, 2], leader=3)

    def test_4_nodes_tiebreak_split_2_2_leader_on_tiebreaker_side(self):
        self.scenario(4, [[1, 2], [3, 4]], continuing=[1, 2], leader=2)

    def test_4_nodes_tiebreak_split_2_2_leader_on_other_side(self):
        self.scenario(4, [[1, 2], [3, 4]], continuing=[1, 2], leader=4)

    def test_4_nodes_majority_split_2_2_both_refuse(self):
        self.scenario(4, [[1, 2], [3, 4]], continuing=None, quorum="majority")

    def test_5_nodes_split_2_3_three_continue(self):
        # The leader (and the lowest id, which weighs nothing extra with an
        # odd number of voters) is on the two's side.
        self.scenario(5, [[1, 2], [3, 4, 5]], continuing=[3, 4, 5], leader=1)


if __name__ == "__main__":
    import unittest
    unittest.main()
