#!/usr/bin/python3
"""Fault injection on real csetd processes, checked for linearizability (issue 7).

A run starts a cluster of 3 or 5 csetd nodes, each in its own network
namespace (tests/integration/netns.py, so partitions are real packet drops),
runs N client threads issuing SADD, SREM, SISMEMBER, SMEMBERS, SCARD and
CSET.ADD through every node, and a nemesis that injects faults on a schedule
drawn from the seed: SIGKILL + restart, SIGSTOP/SIGCONT, partitions
(majority/minority, isolated leader, leader in the minority, bridge, 2/2
with the tie-breaker), leadership transfers, membership changes, a full
disk (every data directory is its own small tmpfs, disks.py) and a wiped
data directory replaced through membership. Every fault heals before the
end; the cluster settles; every key is read through every node; then:

  - the history (docs/history-format.md) is linearizable: the simulator's
    checker, `cset-sim --check-history` (docs/linearizability.md). The final
    reads are in the history, so an acknowledged add missing at the end (or
    an acknowledged remove undone) is a violation there too; "lost" is also
    counted directly from the history;
  - all nodes agree (the final reads and applied_index);
  - each node's RSS (VmRSS) stays under 512 MiB;
  - no node died other than by the nemesis (exit status, sanitizer reports,
    0 after the final SIGTERM);
  - every injected fault was observed to take effect;
  - at least a third of the workload's operations succeeded.

On failure everything is kept in one folder (history, schedule, events,
node logs, checker output, the command to rerun). See docs/chaos.md.

Clients: redis-py Connections with no retries (a retried write would be one
operation answered twice). Outcomes: ok; fail (certainly not applied:
NOQUORUM, NOSPACE, TOOBIG, BUSY, REMOVED, a connection that never opened);
unknown (TIMEOUT, a dropped connection, a client timeout, any other error).
After an unknown outcome the thread continues under a new client id, since
the unknown operation may still take effect after the thread's next one.

Everything is bounded: client loops by time and count, each operation by its
socket timeout, each nemesis step by its own timeout, the whole run by an
alarm. Binaries: CSETD and CSET_SIM (environment).
"""

import argparse
import json
import os
import random
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

import redis
from redis.connection import Connection

import disks
import harness
import netns
from harness import E, Node, RespError, free_ports, until

RSS_LIMIT_KB = 512 * 1024
# Memory growth: a process' largest "own" memory after its first RSS_BASELINE_S
# seconds must stay within RSS_GROWTH_LIMIT of its largest before, checked for
# processes that lived at least RSS_GROWTH_MIN_AGE_S. Own memory = RSS minus the
# largest memory RocksDB has held by design so far (memtables, block cache,
# table readers: INFO memory), sampled every 5 s: those fill towards their
# configured bounds for minutes (16 MiB write buffers, a 64 MiB cache) and are
# not leaks, while a leak grows beyond them. The baseline spans two minutes,
# not one: the Raft log up to a snapshot, ASan's quarantine and a follower
# becoming leader (its replication buffers) fill up in that time.
RSS_BASELINE_S = 120.0
RSS_GROWTH_LIMIT = 0.05
RSS_GROWTH_MIN_AGE_S = 240.0
OP_TIMEOUT = harness.WRITE_TIMEOUT_MS / 1000.0 + 1.0  # client timeout: write timeout + 1 s
PROBE_PAD_BYTES = 16 * 1024  # the disk nemesis' probe members (see do_disk)
CONNECT_TIMEOUT = 1.0
STALL_ABORT_MS = 20000  # a node whose event loop stops this long aborts (stall_abort_args)
OPS_PER_KEY = 60  # a key is retired after this many operations
ACTIVE_KEYS = 4
MEMBERS = ["a", "b", "c", "d", "e"]
MAX_OPS_PER_CLIENT = 200_000
ADMIN_TIMEOUT = harness.WRITE_TIMEOUT_MS / 1000.0 + 5.0
FAIL_WORDS = ("NOQUORUM", "NOSPACE", "TOOBIG", "BUSY", "REMOVED")
# A write refused or unanswered by a node without a quorum: its error word, or
# the client's own timeout (socket.timeout is TimeoutError since Python 3.10).
REFUSED_WORDS = ("NOQUORUM", "TIMEOUT", "TimeoutError", "timeout")
ALL_NEMESES = ("kill", "pause", "partition", "transfer", "membership", "disk", "wipe")


def now_us():
    return time.monotonic_ns() // 1000


# ---- the cluster ---------------------------------------------------------------

class ChaosNode(Node):
    """A harness Node whose --initial-cluster is fixed at creation (nodes added
    later do not change it), or that starts with --join (a replacement). Its
    data directory is its own small tmpfs (disks.py), mounted at its first
    start."""

    def __init__(self, *args, initial=None, join=False, slot=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial = initial
        self.join = join
        self.slot = slot
        self.retired = False  # removed from the cluster and stopped

    def args(self):
        # A small write buffer keeps RocksDB's WAL preallocation (1.1x it) small,
        # so a ballast filling the disk stops writes within a second or two
        # (the disk nemesis) instead of after the preallocated space is used.
        a = super().args() + ["--write-buffer-mb", str(disks.WRITE_BUFFER_MB)]
        i = a.index("--initial-cluster")
        if self.join:
            del a[i:i + 2]
            a.append("--join")
        else:
            a[i + 1] = self.initial
        return a

    def start(self):
        self.cluster.disks.mount(self.data_dir)
        super().start()


class ChaosCluster(harness.Cluster):
    """Nodes in slots 1..size; slot s is network namespace s (address 10.A.B.s).
    A replacement node takes a new id (ids stay dense: nodes[id - 1]) in the
    slot of the node it replaces."""

    def __init__(self, size, net, extra_args=()):
        super().__init__(size=size, extra_args=extra_args, name="chaos",
                         hosts=net.addresses(), wrappers=net.wrappers())
        self.net = net
        initial = self.initial_cluster()
        self.nodes = [ChaosNode(self, n.id, n.client_port, n.peer_port, n.admin_port,
                                host=n.host, wrapper=n.wrapper, initial=initial, slot=n.id)
                      for n in self.nodes]
        self.slots = {n.id: n for n in self.nodes}  # slot -> current node
        # Each node's data directory on its own small file system; mounted at
        # a node's first start, unmounted when it is retired or the run ends.
        self.disks = disks.Disks(self.root)

    def current(self):
        return [self.slots[s] for s in sorted(self.slots)]

    def add_replacement(self, slot):
        client, peer, admin = free_ports(3)
        node = ChaosNode(self, len(self.nodes) + 1, client, peer, admin,
                         host=self.net.address(slot), wrapper=self.net.wrapper(slot),
                         join=True, slot=slot)
        self.nodes.append(node)
        return node


def command(node, *args, timeout=ADMIN_TIMEOUT):
    with node.raw(timeout=timeout) as c:
        return c.command(*args)


def info_or_none(node, timeout=0.5):
    try:
        return node.info(timeout=timeout)
    except Exception:  # noqa: BLE001 - a down or paused node
        return None


def find_leader(cluster, timeout):
    """The current node every reachable current node names leader, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = {n.id: info_or_none(n) for n in cluster.current() if n.alive() and not n.paused}
        leaders = [i for i, inf in infos.items() if inf and inf.get("role") == "leader"]
        if len(leaders) == 1:
            return cluster.node(leaders[0])
        time.sleep(0.1)
    return None


# ---- history -------------------------------------------------------------------

class History:
    """Thread-safe list of operations (dicts in the JSONL format, plus extra
    fields `node` and `error` the checker ignores)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.next_client = 0
        self.unexpected = []  # (op, reply) pairs of replies of a wrong shape

    def new_client(self):
        with self.lock:
            self.next_client += 1
            return self.next_client

    def record(self, op):
        with self.lock:
            self.ops.append(op)

    def counts(self, ops=None):
        ops = self.ops if ops is None else ops
        c = {"ok": 0, "fail": 0, "unknown": 0}
        for op in ops:
            c[op["outcome"]] += 1
        return c

    def write(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op, separators=(",", ":")) + "\n")


class Keys:
    """ACTIVE_KEYS keys in use; each retired after OPS_PER_KEY operations and
    replaced by a fresh one, so each key's history stays small."""

    def __init__(self, prefix):
        self.lock = threading.Lock()
        self.prefix = prefix
        self.all = []
        self.active = [self._fresh() for _ in range(ACTIVE_KEYS)]
        self.used = {}

    def _fresh(self):
        key = f"{self.prefix}{len(self.all)}"
        self.all.append(key)
        return key

    def pick(self, rng):
        with self.lock:
            i = rng.randrange(len(self.active))
            key = self.active[i]
            self.used[key] = self.used.get(key, 0) + 1
            if self.used[key] >= OPS_PER_KEY:
                self.active[i] = self._fresh()
            return key


def make_op(rng, key):
    """(history fields, command) for one random operation on key."""
    r = rng.random()
    if r < 0.25:
        ms = rng.sample(MEMBERS, rng.choice((1, 1, 2)))
        return {"op": "add", "key": key, "members": ms}, ["SADD", key, *ms]
    if r < 0.45:
        ms = rng.sample(MEMBERS, rng.choice((1, 1, 2)))
        return {"op": "rem", "key": key, "members": ms}, ["SREM", key, *ms]
    if r < 0.60:
        m = rng.choice(MEMBERS)
        return {"op": "add_strict", "key": key, "member": m}, ["CSET.ADD", key, m]
    if r < 0.75:
        m = rng.choice(MEMBERS)
        return {"op": "contains", "key": key, "member": m}, ["SISMEMBER", key, m]
    if r < 0.90:
        return {"op": "members", "key": key}, ["SMEMBERS", key]
    return {"op": "size", "key": key}, ["SCARD", key]


def interpret(kind, reply):
    """(outcome, result) of a reply that is not an exception; None when the
    reply has the wrong shape for the command."""
    if kind in ("add", "rem", "size"):
        if isinstance(reply, int):
            return "ok", reply
    elif kind == "contains":
        if reply in (0, 1):
            return "ok", reply == 1
    elif kind == "members":
        if isinstance(reply, list) and all(isinstance(m, bytes) for m in reply):
            return "ok", sorted(m.decode() for m in reply)
    elif kind == "add_strict":
        if reply in (b"OK", "OK"):
            return "ok", "ok"
    return None


def error_outcome(kind, error):
    """(outcome, result) of an error reply (redis-py strips a leading "ERR ")."""
    text = str(error)
    word = text.split(" ", 1)[0]
    if kind == "add_strict" and word == "EXISTS":
        return "ok", "exists"
    if word in FAIL_WORDS:
        return "fail", None
    return "unknown", None  # TIMEOUT, or anything not known to be harmless


class Caller:
    """One thread's connections, one per node, opened lazily; never retries."""

    def __init__(self):
        self.conns = {}

    def drop(self, node):
        conn = self.conns.pop(node.id, None)
        if conn is not None:
            conn.disconnect()

    def close(self):
        for conn in self.conns.values():
            conn.disconnect()
        self.conns = {}

    def call(self, node, kind, cmd):
        """(outcome, result, error text) of one command through node."""
        conn = self.conns.get(node.id)
        if conn is not None and conn._sock is not None:
            # A reply-less connection that is readable was closed by the server
            # (a restart): reconnect before sending, so nothing is lost.
            try:
                readable, _, _ = select.select([conn._sock], [], [], 0)
            except (OSError, ValueError):
                readable = [True]
            if readable:
                self.drop(node)
                conn = None
        if conn is None or conn._sock is None:
            conn = Connection(host=node.host, port=node.client_port, socket_timeout=OP_TIMEOUT,
                              socket_connect_timeout=CONNECT_TIMEOUT, retry_on_timeout=False)
            try:
                conn.connect()
            except (redis.RedisError, OSError) as e:
                conn.disconnect()
                return "fail", None, f"connect: {e}"
            self.conns[node.id] = conn
        try:
            conn.send_command(*cmd)
            reply = conn.read_response()
        except redis.ResponseError as e:
            outcome, result = error_outcome(kind, e)
            return outcome, result, str(e)
        except (redis.RedisError, OSError) as e:
            self.drop(node)
            return "unknown", None, f"{type(e).__name__}: {e}"
        parsed = interpret(kind, reply)
        if parsed is None:
            return "unknown", None, f"unexpected reply {reply!r}"
        return parsed[0], parsed[1], None


class Client(threading.Thread):
    """One client thread: random operations through random nodes until the
    deadline, `stop`, or MAX_OPS_PER_CLIENT; each recorded in the history."""

    def __init__(self, index, cluster, history, keys, seed, deadline, stop):
        super().__init__(name=f"client-{index}", daemon=True)
        self.cluster = cluster
        self.history = history
        self.keys = keys
        self.rng = random.Random(seed * 1000003 + index)
        self.deadline = deadline
        self.stop = stop
        self.count = 0

    def run(self):
        caller = Caller()
        client = self.history.new_client()
        try:
            while (not self.stop.is_set() and time.monotonic() < self.deadline
                   and self.count < MAX_OPS_PER_CLIENT):
                slots = sorted(self.cluster.slots)
                node = self.cluster.slots[self.rng.choice(slots)]
                fields, cmd = make_op(self.rng, self.keys.pick(self.rng))
                invoke = now_us()
                outcome, result, error = caller.call(node, fields["op"], cmd)
                complete = now_us()
                op = {"client": client, **fields, "invoke": invoke, "complete": complete,
                      "outcome": outcome}
                if outcome == "ok":
                    op["result"] = result
                op["node"] = node.id
                if error:
                    op["error"] = error
                    if error.startswith("unexpected reply"):
                        self.history.unexpected.append((op, error))
                self.history.record(op)
                self.count += 1
                if outcome == "unknown":
                    client = self.history.new_client()
                elif outcome == "fail":
                    time.sleep(0.02)  # a refused request: do not spin
        finally:
            caller.close()


# ---- the nemesis -----------------------------------------------------------------

def partition_modes(size):
    """The partition shapes a run of `size` nodes draws from, and the ones it
    cannot run (shape -> why), recorded in schedule.json."""
    modes = ["majority-minority", "isolated-leader", "bridge"]
    not_applicable = {}
    if size >= 5:
        modes += ["leader-in-minority", "tiebreak-2-2"]
    else:
        not_applicable["tiebreak-2-2"] = (
            "a 2/2 split needs 4 voters (the tie-breaker weighs only when the number of voters "
            "is even and at least 4); a 3-node run has 3, and removing one leaves 2, which "
            "halts on both sides of any split")
    return modes, not_applicable


def stall_abort_args():
    """--test-abort-on-stall-ms for a test build of csetd (CSET_TEST_HOOKS):
    a node whose event loop stops running aborts, leaving a core file where
    core dumps are enabled (the folder keeps it as nodeN.core), so a hang is
    seen from the inside. A stall shorter than that is still logged by the
    node and fails the run (the end checks)."""
    out = subprocess.run([harness.binary("CSETD", "the node server csetd"), "--help"],
                         capture_output=True, text=True, timeout=30).stdout
    return ["--test-abort-on-stall-ms", str(STALL_ABORT_MS)] \
        if "--test-abort-on-stall-ms" in out else []


def draw_schedule(rng, kinds, seconds, size):
    """The faults, in order: each a dict with kind, its parameters (targets as
    "leader" or a random fraction resolved at run time), duration and the gap
    after it. More than fills `seconds`; the run skips what no longer fits.
    The first len(kinds) faults are every kind once (in a drawn order), and
    the partitions go through every shape once before repeating one, so
    that a short run covers what it was asked for."""
    schedule = []
    t = 0.0
    modes, _ = partition_modes(size)
    mode_cycle = []
    first_round = rng.sample(list(kinds), len(kinds))
    while t < 2 * seconds and len(schedule) < 1000:  # more than fits: the rest is not run
        kind = first_round.pop(0) if first_round else rng.choice(kinds)
        f = {"kind": kind, "gap": round(rng.uniform(1.0, 2.5), 2)}
        if kind in ("kill", "pause"):
            f["target"] = "leader" if rng.random() < 0.4 else round(rng.random(), 4)
            f["duration"] = round(rng.uniform(1.5, 4.0) if kind == "kill"
                                  else rng.uniform(2.5, 4.5), 2)  # pause > E = 2 s
        elif kind == "partition":
            if not mode_cycle:
                mode_cycle = rng.sample(modes, len(modes))
            f["mode"] = mode_cycle.pop(0)
            f["pick"] = round(rng.random(), 4)
            f["duration"] = round(rng.uniform(3.0, 6.0), 2)
        elif kind == "transfer":
            f["pick"] = round(rng.random(), 4)
            f["duration"] = 0.0
        elif kind in ("membership", "wipe"):
            f["target"] = "leader" if rng.random() < 0.3 else round(rng.random(), 4)
            f["duration"] = 0.0
        elif kind == "disk":
            f["target"] = "leader" if rng.random() < 0.4 else round(rng.random(), 4)
            f["duration"] = round(rng.uniform(2.0, 4.0), 2)  # held once observed
        schedule.append(f)
        t += f["duration"] + f["gap"] + expected_extra(f)
    return schedule


def expected_extra(f):
    """Seconds a fault takes beyond its duration (observation, restarts,
    membership changes): a fault starts only if this much time is left."""
    if f["kind"] == "partition" and f.get("mode") == "tiebreak-2-2":
        return 14.0  # remove a voter, observe both halves, add a replacement
    return {"membership": 5.0, "wipe": 9.0, "transfer": 2.0, "disk": 4.0}.get(f["kind"], 1.0)


class Nemesis:
    """Runs the schedule from the main thread: one fault at a time, each held
    for its duration, healed, and checked to have taken effect."""

    def __init__(self, run, schedule):
        self.run = run
        self.cluster = run.cluster
        self.net = run.net
        self.schedule = schedule
        self.events = []  # every step, with time (s since start) and details
        self.faults = []  # per injected fault: kind, observed, evidence
        self.down = set()  # node ids down or stopped on purpose right now (or retired)
        self.ballasts = {}  # node id -> ballast file filling its disk right now
        self.probe_key = f"probe{run.args.seed}"  # the nemesis' own writes; not in the history
        self.probes = 0

    def log(self, **event):
        event["t"] = round(time.monotonic() - self.run.t0, 3)
        self.events.append(event)
        if self.run.verbose:
            print(f"  nemesis {event}", flush=True)

    def pick_node(self, target):
        nodes = [n for n in self.cluster.current() if n.alive()]
        if target == "leader":
            leader = find_leader(self.cluster, 3.0)
            if leader is not None:
                return leader, "leader"
            target = 0.5
        return nodes[int(target * len(nodes)) % len(nodes)], "random"

    def execute(self, deadline):
        for i, fault in enumerate(self.schedule):
            expected = fault["duration"] + expected_extra(fault)
            if time.monotonic() + expected > deadline:
                self.log(step=i, kind=fault["kind"], action="not run (time is up)")
                continue
            getattr(self, "do_" + fault["kind"])(i, fault)
            self.run.sleep_until(min(deadline, time.monotonic() + fault["gap"]))

    def record(self, i, kind, observed, evidence):
        self.faults.append({"step": i, "kind": kind, "observed": observed, "evidence": evidence})
        self.log(step=i, kind=kind, action="observed" if observed else "NOT OBSERVED",
                 evidence=evidence)

    # -- kill --

    def do_kill(self, i, f):
        node, how = self.pick_node(f["target"])
        self.down.add(node.id)
        node.kill()
        self.log(step=i, kind="kill", action="SIGKILL", node=node.id, chosen=how)
        try:
            with node.raw(timeout=1.0):
                refused = False
        except OSError as e:
            refused = f"connect refused: {e.__class__.__name__}"
        self.record(i, "kill", bool(refused),
                    refused or "the killed node still accepted a connection")
        self.run.sleep_until(time.monotonic() + f["duration"])
        self.restart(i, node)

    def restart(self, i, node):
        try:
            node.start()
            self.cluster.wait_for_started([node], timeout=30.0)
            self.log(step=i, kind="restart", node=node.id, pid=node.pid)
        except Exception as e:  # noqa: BLE001 - reported as a problem
            self.run.problems.append(f"node {node.id} did not restart: {e}")
        finally:
            self.down.discard(node.id)

    # -- pause --

    def do_pause(self, i, f):
        node, how = self.pick_node(f["target"])
        self.down.add(node.id)
        node.pause()
        self.log(step=i, kind="pause", action="SIGSTOP", node=node.id, chosen=how)
        try:
            with node.raw(timeout=0.5) as c:
                reply = c.command("PING")
            evidence, observed = f"a paused node answered PING: {reply!r}", False
        except OSError as e:
            evidence, observed = f"PING unanswered: {e.__class__.__name__}", True
        self.record(i, "pause", observed, evidence)
        self.run.sleep_until(time.monotonic() + f["duration"])
        node.resume()
        self.down.discard(node.id)
        self.log(step=i, kind="resume", action="SIGCONT", node=node.id)

    # -- probes: writes outside the history --

    def probe(self, node, timeout=OP_TIMEOUT, pad_bytes=0):
        """SADD of a fresh member to the probe key (never in the history, so
        it cannot disturb the checker: keys are independent objects) through
        node, padded to pad_bytes more. Returns the reply, or the exception."""
        self.probes += 1
        member = f"p{self.probes}" + "x" * pad_bytes
        try:
            return command(node, "SADD", self.probe_key, member, timeout=timeout)
        except OSError as e:
            return e

    @staticmethod
    def word(reply):
        """The outcome word of a probe's reply: OK, an error word, or the
        exception's class name."""
        if isinstance(reply, int) and not isinstance(reply, bool):
            return "OK"
        if isinstance(reply, RespError):
            return reply.word
        return type(reply).__name__

    def history_since(self, t_us, nodes, kinds=("add", "rem", "add_strict")):
        """Workload operations of `kinds` through `nodes` (ids) invoked at or
        after t_us, completed so far."""
        with self.run.history.lock:
            ops = list(self.run.history.ops)
        return [op for op in ops if op["node"] in nodes and op["invoke"] >= t_us
                and op["op"] in kinds and not op.get("final")]

    # -- partition --

    def do_partition(self, i, f):
        if f["mode"] == "tiebreak-2-2":
            return self.do_tiebreak(i, f)
        slots = sorted(self.cluster.slots)
        n = len(slots)
        leader = find_leader(self.cluster, 3.0) \
            if f["mode"] in ("isolated-leader", "leader-in-minority") else None
        rng = random.Random(int(f["pick"] * 1e6))
        pairs = None
        if f["mode"] == "bridge":
            # Two halves that cannot see each other and one node (the bridge)
            # that sees both: a cut that is not transitive.
            order = rng.sample(slots, n)
            bridge, rest = order[0], order[1:]
            a, b = sorted(rest[:len(rest) // 2]), sorted(rest[len(rest) // 2:])
            pairs = [(x, y) for x in a for y in b]
            groups = [a, [bridge], b]
            mode = "bridge"
        elif leader is None:
            minority = rng.sample(slots, (n - 1) // 2)
            mode = "majority-minority"
        elif f["mode"] == "isolated-leader":
            minority = [leader.slot]
            mode = f["mode"]
        else:
            minority = [leader.slot] + rng.sample([s for s in slots if s != leader.slot],
                                                  (n - 1) // 2 - 1)
            mode = f["mode"]
        before = {s: self.drops(s) for s in slots}
        if pairs is None:
            majority = [s for s in slots if s not in minority]
            groups = [sorted(minority), sorted(majority)]
            self.net.partition(groups)
            cut_slots = slots
        else:
            self.net.cut_links(pairs)
            cut_slots = sorted(set(x for p in pairs for x in p))
        self.log(step=i, kind="partition", mode=mode, groups=groups,
                 nodes=[[self.cluster.slots[s].id for s in g] for g in groups],
                 cut_links=pairs, leader=leader.id if leader else None)
        bridge_links, bridge_open = "", {}
        if mode == "bridge":
            # The bridge sees both halves: a TCP connection from each node to
            # the bridge's peer port opens.
            bridge_open = self.knock([(x, groups[1][0]) for x in a + b])
            bridge_links = (f"; connections to the bridge (slot {groups[1][0]}) opened: "
                            f"{bridge_open}")
        self.run.sleep_until(time.monotonic() + f["duration"])
        dropped = {s: self.drops(s) - before[s] for s in slots}
        knocked = ""
        if any(dropped[s] == 0 for s in cut_slots):
            # No Raft traffic crossed some cut link (e.g. two followers of a
            # leader that is the bridge never talk): knock across every cut
            # link, so its rules are seen to drop.
            cross = pairs or [(x, y) for x in groups[0] for y in groups[1]]
            opened = self.knock(cross + [(y, x) for x, y in cross])
            dropped = {s: self.drops(s) - before[s] for s in slots}
            knocked = f"; knocked across the cut links: opened {opened}"
        self.net.heal()
        self.log(step=i, kind="heal", dropped_packets=dropped)
        # Every node with a cut link dropped packets (a bridge node has none).
        observed = all(dropped[s] > 0 for s in cut_slots)
        observed = observed and all(bridge_open.values())
        self.record(i, "partition", observed,
                    f"{mode}: packets dropped per slot {dropped}"
                    + (f" (slot {groups[1][0]} is the bridge, it has no rules)"
                       if mode == "bridge" else "") + bridge_links + knocked)

    def knock(self, links, timeout=1.0):
        """For each (from slot, to slot): whether a TCP connection from the
        first's namespace to the second's node's peer port opened within
        `timeout`, all links at once. Across a cut link the SYN is dropped
        (and counted by the target's rules)."""
        procs = []
        for x, y in links:
            target = self.cluster.slots[y]
            cmd = self.net.wrapper(x) + [
                "timeout", str(timeout), "bash", "-c",
                f"exec 3<>/dev/tcp/{target.host}/{target.peer_port}"]
            procs.append(((x, y), subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL)))
        result = {}
        for link, proc in procs:
            try:
                result[f"{link[0]}->{link[1]}"] = proc.wait(timeout=timeout + 10) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                result[f"{link[0]}->{link[1]}"] = False
        return result

    def do_tiebreak(self, i, f):
        """2/2 split of 4 voters: exactly the half holding the tie-breaker
        (INFO tiebreaker_id, weight 2 of 5) keeps accepting writes. A 5-voter
        cluster first loses one voter (CSET.NODE REMOVE), and gets a
        replacement (new id, --join, ADD, PROMOTE) after the heal."""
        rng = random.Random(int(f["pick"] * 1e6))
        leader = find_leader(self.cluster, 5.0)
        info = info_or_none(leader, 1.0) if leader else None
        if info is None:
            self.record(i, "partition", False, "tiebreak-2-2: no leader within 5 s")
            return
        voters = int(info.get("voters", 0))
        removed = None
        if voters == 5:
            candidates = [n for n in self.cluster.current() if n is not leader and n.alive()]
            victim = candidates[rng.randrange(len(candidates))]
            reply = self.admin(("CSET.NODE", "REMOVE", str(victim.id)), avoid=victim)
            self.log(step=i, kind="partition", mode="tiebreak-2-2", action="remove",
                     node=victim.id, reply=repr(reply))
            if reply != "OK":
                self.record(i, "partition", False,
                            f"tiebreak-2-2: CSET.NODE REMOVE {victim.id}: {reply!r}")
                return
            self.retire(i, "partition", victim)
            removed = victim
        elif voters != 4:
            self.record(i, "partition", False,
                        f"tiebreak-2-2 needs 4 or 5 voters; the leader reports {voters}")
            return

        def four_voters():
            lead = find_leader(self.cluster, 1.0)
            inf = info_or_none(lead, 1.0) if lead else None
            if inf and inf.get("voters") == "4" and inf.get("joint") == "0":
                return inf
            return None
        try:
            info = until(four_voters, 10.0, what="a leader reporting 4 voters")
        except AssertionError as e:
            self.record(i, "partition", False, f"tiebreak-2-2: {e}")
            return
        tb_id = int(info["tiebreaker_id"])
        live = [n for n in self.cluster.current() if n.alive() and not n.retired]
        tb = next((n for n in live if n.id == tb_id), None)
        if tb is None or len(live) != 4:
            self.record(i, "partition", False,
                        f"tiebreak-2-2: tiebreaker_id {tb_id} is not one of the 4 live "
                        f"voters {[n.id for n in live]}")
            return
        others = [n for n in live if n is not tb]
        partner = others[rng.randrange(len(others))]
        with_tb = [tb, partner]
        without = [n for n in others if n is not partner]
        spare = [s for s in self.cluster.slots if s not in {n.slot for n in live}]
        groups = [sorted([n.slot for n in with_tb] + spare), sorted(n.slot for n in without)]
        slots = sorted(self.cluster.slots)
        before = {s: self.drops(s) for s in slots}
        self.net.partition(groups)
        # Operations invoked from now on cannot cross the cut (the rules go in
        # one namespace after another; before the last, some links still work).
        t_cut = now_us()
        t0 = time.monotonic()
        self.log(step=i, kind="partition", mode="tiebreak-2-2", groups=groups,
                 with_tiebreaker=[n.id for n in with_tb], without=[n.id for n in without],
                 tiebreaker_id=tb_id, leader=leader.id)
        # The half without the tie-breaker (weight 2 of 5) must refuse every
        # write: NOQUORUM, or TIMEOUT at the write deadline. One acknowledged
        # there would be a split brain.
        refused = {}
        for n in without:
            reply = self.probe(n)
            refused[n.id] = self.word(reply)
        # The half with the tie-breaker (weight 3 of 5) accepts writes, after
        # an election if the leader was on the other side.
        accepted = None
        tries = []
        deadline = time.monotonic() + 6 * E
        k = 0
        while accepted is None and time.monotonic() < deadline:
            n = with_tb[k % 2]
            k += 1
            w = self.word(self.probe(n))
            tries.append(f"{n.id}:{w}")
            if w == "OK":
                accepted = n.id
            else:
                time.sleep(0.2)
        # And once more through the other half, now that the tie-breaker's
        # half has a leader of its own.
        for n in without:
            refused[n.id] = refused[n.id] + "," + self.word(self.probe(n))
        self.run.sleep_until(t0 + f["duration"])
        without_ids = {n.id for n in without}
        acked_without = [op for op in self.history_since(t_cut, without_ids)
                         if op["outcome"] == "ok"]
        acked_with = [op for op in self.history_since(t_cut, {n.id for n in with_tb})
                      if op["outcome"] == "ok"]
        dropped = {s: self.drops(s) - before[s] for s in slots}
        self.net.heal()
        self.log(step=i, kind="heal", dropped_packets=dropped,
                 probes_with_tiebreaker=tries, probes_without=refused,
                 workload_writes_ok_with=len(acked_with),
                 workload_writes_ok_without=len(acked_without))
        bad = [f"{nid}:{w}" for nid, w in refused.items()
               if any(x not in REFUSED_WORDS for x in w.split(","))]
        if acked_without or any("OK" in w.split(",") for w in refused.values()):
            self.run.problems.append(
                f"tiebreak-2-2 (step {i}): the half without the tie-breaker "
                f"{sorted(without_ids)} acknowledged writes while cut off: probes {refused}, "
                f"workload {[(op['op'], op['key'], op['invoke']) for op in acked_without][:5]}")
        observed = (accepted is not None and not bad and not acked_without
                    and all(dropped[n.slot] > 0 for n in live))
        evidence = (f"tiebreaker {tb_id}; with it {[n.id for n in with_tb]} accepted a write "
                    f"through {accepted} (probes {tries}, workload writes ok {len(acked_with)}); "
                    f"without it {sorted(without_ids)} answered {refused} (workload writes ok "
                    f"{len(acked_without)}); dropped {dropped}")
        if removed is not None:
            ok, how = self.replace(i, "partition", removed.slot)
            evidence += f"; back to 5 voters: {how}"
            observed = observed and ok
        self.record(i, "partition", observed, evidence)

    def drops(self, slot):
        """Packets dropped so far by the partition chain of slot's namespace."""
        out = subprocess.run(["ip", "netns", "exec", self.net.namespace(slot), "iptables", "-w",
                              "-L", "CSET_PARTITION", "-v", "-x", "-n"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=20,
                             check=False).stdout.decode()
        total = 0
        for line in out.splitlines():
            words = line.split()
            if len(words) > 2 and words[2] == "DROP":
                total += int(words[0])
        return total

    # -- leadership transfer --

    def do_transfer(self, i, f):
        leader = find_leader(self.cluster, 5.0)
        if leader is None:
            self.record(i, "transfer", False, "no leader to transfer from within 5 s")
            return
        others = [n for n in self.cluster.current() if n is not leader]
        target = others[int(f["pick"] * len(others)) % len(others)]
        replies = []
        for _ in range(3):
            try:
                reply = command(leader, "CSET.LEADER", "TRANSFER", str(target.id))
            except OSError as e:
                reply = e
            replies.append(repr(reply))
            if not isinstance(reply, (RespError, Exception)):
                break
            time.sleep(0.5)
        self.log(step=i, kind="transfer", source=leader.id, target=target.id, replies=replies)
        try:
            until(lambda: (info_or_none(target) or {}).get("role") == "leader", 5.0,
                  what=f"node {target.id} to lead")
            self.record(i, "transfer", True, f"node {target.id} leads ({replies[-1]})")
        except AssertionError as e:
            self.record(i, "transfer", False, f"{e}; replies {replies}")

    # -- membership: remove a node, replace it under a new id with --join --

    def admin(self, args, avoid, timeout=20.0):
        """A membership command, sent to the leader (else another node) until
        it answers OK or `timeout` seconds pass; returns the last reply."""
        reply = None
        deadline = time.monotonic() + timeout
        k = 0
        while time.monotonic() < deadline:
            leader = find_leader(self.cluster, 2.0)
            others = [n for n in self.cluster.current()
                      if n is not avoid and n.alive() and not n.retired]
            via = leader if leader is not None else others[k % len(others)]
            k += 1
            try:
                reply = command(via, *args)
            except OSError as e:
                reply = e
            if reply == "OK":
                break
            time.sleep(0.5)
        return reply

    def retire(self, i, kind, old):
        """Stops a node that is out of the cluster (SIGTERM, exit 0 expected)
        and unmounts its disk; it stays in its slot until a replacement
        takes the slot."""
        self.down.add(old.id)
        old.retired = True
        if old.alive():
            code = old.terminate()
            self.log(step=i, kind=kind, action="stopped the removed node", node=old.id,
                     exit=code)
            if code != 0:
                self.run.problems.append(f"removed node {old.id} exited with {code} after "
                                         f"SIGTERM")
        self.cluster.disks.unmount(old.data_dir)

    def replace(self, i, kind, slot):
        """A new node (new id, empty, --join) in slot: CSET.NODE ADD (learner),
        catch up, CSET.NODE PROMOTE. Returns (ok, evidence): ok when
        CSET.NODES lists it as a voter and the slot's old node no more."""
        old = self.cluster.slots[slot]
        new = self.cluster.add_replacement(slot)
        try:
            new.start()
            self.cluster.wait_for_started([new], timeout=30.0)
        except Exception as e:  # noqa: BLE001
            return False, f"replacement node {new.id} did not start: {e}"
        self.cluster.slots[slot] = new
        steps = [("CSET.NODE", "ADD", str(new.id), f"{new.host}:{new.peer_port}"),
                 ("CSET.NODE", "PROMOTE", str(new.id))]
        for step in steps:
            reply = self.admin(step, avoid=new)
            self.log(step=i, kind=kind, action=" ".join(step), reply=repr(reply))
            if reply != "OK":
                return False, f"{' '.join(step)}: {reply!r}"
            if step[1] == "ADD":
                # Let the learner catch up before promoting it.
                leader = find_leader(self.cluster, 5.0)
                target = int((info_or_none(leader) or {}).get("commit_index", 0)) if leader else 0
                try:
                    until(lambda: int((info_or_none(new) or {}).get("applied_index", -1))
                          >= target, 15.0, what=f"node {new.id} to catch up")
                except AssertionError as e:
                    self.log(step=i, kind=kind, action="catch-up", error=str(e))
        try:
            view = command(find_leader(self.cluster, 5.0) or new, "CSET.NODES", timeout=3)
        except OSError as e:
            view = e
        roles = {}
        if isinstance(view, list):
            for entry in view:
                pairs = list(entry) if isinstance(entry, harness.Map) else list(
                    zip(entry[0::2], entry[1::2]))
                d = {k.decode(): v for k, v in pairs}
                roles[int(d["id"])] = d["role"].decode() if isinstance(d["role"], bytes) \
                    else d["role"]
        ok = roles.get(new.id) == "voter" and old.id not in roles
        return ok, f"removed {old.id}, added {new.id} in slot {slot}; roles {roles or view!r}"

    def do_membership(self, i, f):
        old, how = self.pick_node(f["target"])
        reply = self.admin(("CSET.NODE", "REMOVE", str(old.id)), avoid=old)
        self.log(step=i, kind="membership", action="remove", node=old.id, chosen=how,
                 reply=repr(reply))
        if reply != "OK":
            self.record(i, "membership", False, f"CSET.NODE REMOVE {old.id}: {reply!r}")
            return
        self.retire(i, "membership", old)
        ok, evidence = self.replace(i, "membership", old.slot)
        self.record(i, "membership", ok, evidence)

    # -- wipe: a node loses its data directory, and is replaced --

    def do_wipe(self, i, f):
        """SIGKILL a node, delete everything in its data directory, restart it
        with the same id: its peers must refuse it ("data lost: node N" in a
        peer's log). Then it is replaced as an operator would
        (docs/operations.md): stopped, CSET.NODE REMOVE, a new node with a new
        id and --join, ADD, PROMOTE."""
        old, how = self.pick_node(f["target"])
        peers = [n for n in self.cluster.current() if n is not old and n.alive()]
        marks = {n.id: len(n.log_text()) for n in peers}
        self.down.add(old.id)
        old.kill()
        removed = disks.wipe(old.data_dir)
        self.log(step=i, kind="wipe", action="SIGKILL, data directory wiped", node=old.id,
                 chosen=how, removed=removed)
        try:
            old.start()
            self.cluster.wait_for_started([old], timeout=30.0)
        except Exception as e:  # noqa: BLE001
            self.record(i, "wipe", False, f"node {old.id} did not start on a wiped directory: {e}")
            return
        self.log(step=i, kind="wipe", action="restarted with the same id", node=old.id,
                 pid=old.pid)
        phrase = b"data lost: node %d" % old.id

        def refusing():
            return [n.id for n in peers if phrase in n.log_text()[marks[n.id]:]]
        try:
            refused_by = until(refusing, 4 * E, interval=0.1,
                               what=f"a peer to log {phrase.decode()!r}")
            refused = f"refused by {refused_by} ({phrase.decode()!r} in their logs)"
        except AssertionError as e:
            refused_by, refused = [], str(e)
        self.log(step=i, kind="wipe", action="refused" if refused_by else "NOT REFUSED",
                 evidence=refused)
        self.retire(i, "wipe", old)
        reply = self.admin(("CSET.NODE", "REMOVE", str(old.id)), avoid=old)
        self.log(step=i, kind="wipe", action="remove", node=old.id, reply=repr(reply))
        if reply != "OK":
            self.record(i, "wipe", False, f"{refused}; CSET.NODE REMOVE {old.id}: {reply!r}")
            return
        ok, evidence = self.replace(i, "wipe", old.slot)
        self.record(i, "wipe", bool(refused_by) and ok, f"{refused}; {evidence}")

    # -- disk: a node's disk fills up, then is freed --

    def do_disk(self, i, f):
        """Fills the node's file system with a ballast file. Observed when the
        node reports it cannot persist (INFO raft storage_failed:1) and a
        write through it answers NOSPACE (a probe, or the workload's). Held
        for the duration; then the ballast is removed and the node must
        recover by itself: storage_failed:0 and a write through it succeeds."""
        node, how = self.pick_node(f["target"])
        mark = len(node.log_text())
        t_fill = now_us()
        self.ballasts[node.id] = os.path.join(node.data_dir, disks.BALLAST)
        path, written = disks.fill(node.data_dir)
        self.log(step=i, kind="disk", action="filled", node=node.id, chosen=how,
                 ballast_bytes=written, free_bytes=disks.free_bytes(node.data_dir))
        t0 = time.monotonic()
        failed_after = None
        probes = []
        deadline = t0 + 20.0
        while time.monotonic() < deadline:
            inf = info_or_none(node, 1.0)
            if inf and inf.get("storage_failed") == "1":
                failed_after = round(time.monotonic() - t0, 2)
                break
            # A follower learns that its disk is full at its next append (the
            # workload's writes bring them); a write through it helps. Its
            # WAL has room reserved in advance (about 1.1 write buffers): a
            # slow node's workload share can fit there for the whole hold,
            # so the probes are large (16 KiB) and fill it within seconds.
            probes.append(self.word(self.probe(node, pad_bytes=PROBE_PAD_BYTES)))
            disks.fill(node.data_dir, top_up=True)
            time.sleep(0.1)
        nospace_probe = None
        if failed_after is not None:
            for _ in range(3):
                disks.fill(node.data_dir, top_up=True)
                w = self.word(self.probe(node))
                probes.append(w)
                if w == "NOSPACE":
                    nospace_probe = w
                    break
                time.sleep(0.3)
        while time.monotonic() < t0 + f["duration"]:
            disks.fill(node.data_dir, top_up=True)
            time.sleep(0.2)
        nospace_ops = [op for op in self.history_since(t_fill, {node.id})
                       if op.get("error", "").startswith("NOSPACE")]
        logged = b"cannot persist" in node.log_text()[mark:]
        evidence = (f"node {node.id}: storage_failed:1 after "
                    f"{failed_after if failed_after is not None else 'never (20 s)'} s; "
                    f"probe writes {probes}; workload NOSPACE answers {len(nospace_ops)}; "
                    f"'cannot persist' logged: {logged}")
        observed = failed_after is not None and (nospace_probe is not None or bool(nospace_ops))
        # Free the disk; the node recovers by itself (docs/storage.md).
        os.remove(path)
        del self.ballasts[node.id]
        t1 = time.monotonic()
        self.log(step=i, kind="disk", action="freed", node=node.id,
                 free_bytes=disks.free_bytes(node.data_dir))
        recovered = None
        after = []
        while time.monotonic() < t1 + 30.0:
            inf = info_or_none(node, 1.0)
            if inf and inf.get("storage_failed") == "0":
                w = self.word(self.probe(node))
                after.append(w)
                if w == "OK":
                    recovered = round(time.monotonic() - t1, 2)
                    break
            time.sleep(0.2)
        self.log(step=i, kind="disk", action="recovered" if recovered is not None
                 else "NOT RECOVERED", node=node.id, seconds=recovered, probes=after[-5:])
        if recovered is None:
            self.run.problems.append(
                f"node {node.id} did not recover within 30 s after its disk was freed "
                f"(step {i}); probes {after[-5:]}")
        self.record(i, "disk", observed, evidence + (
            f"; recovered {recovered} s after the ballast was removed"
            if recovered is not None else "; NOT recovered"))

    # -- healing --

    def heal_all(self):
        self.net.heal()
        for node_id, path in list(self.ballasts.items()):
            try:
                os.remove(path)
            except OSError:
                pass
            del self.ballasts[node_id]
            self.log(kind="heal", action="ballast removed", node=node_id)
        for n in self.cluster.current():
            if n.alive() and n.paused:
                n.resume()
                self.log(kind="heal", action="SIGCONT", node=n.id)
            if not n.alive() and not n.retired:
                self.restart(None, n)


# ---- a run -----------------------------------------------------------------------

class Run:
    """The state of one run shared by the nemesis, the monitor and the checks."""

    def __init__(self, args):
        self.args = args
        self.verbose = args.verbose
        self.problems = []
        self.t0 = time.monotonic()
        self.cluster = None
        self.net = None
        self.rss_max_kb = {}
        self.rss_baseline_kb = {}  # (id, pid) -> largest RSS in its first RSS_BASELINE_S
        self.rss_last_kb = {}  # (id, pid) -> largest RSS after that
        self.rss_first_seen = {}  # (id, pid) -> when the monitor first saw it
        self.by_design_max_kb = {}  # (id, pid) -> most RocksDB held by design (INFO memory)
        self.rss_age_s = {}  # (id, pid) -> its age at its last sample
        self.rss_log = []  # samples every 5 s per node, written to rss.jsonl
        self.rss_next_log = {}
        self.unexpected_deaths = []
        self.history = None  # the run's History, for the nemesis' evidence
        self.disk_max_used_kb = {}  # node id -> most of its disk used, no ballast in it
        self.disk_outgrown = set()  # node ids whose disk filled up by itself

    def sleep_until(self, when):
        while time.monotonic() < when:
            time.sleep(min(0.1, max(0.0, when - time.monotonic())))

    def own_memory_kb(self, node, rss_kb):
        """RSS minus the most RocksDB has held by design in this process so
        far (INFO memory); None when the node does not answer (paused, cut off
        from this namespace, busy)."""
        try:
            m = node.info("memory", timeout=0.5)
            by_design = (int(m["rocksdb_memtable_bytes"]) + int(m["rocksdb_block_cache_bytes"])
                         + int(m["rocksdb_table_readers_bytes"])) // 1024
        except Exception:  # noqa: BLE001 - a paused or unreachable node
            return None
        key = (node.id, node.pid)
        self.by_design_max_kb[key] = max(self.by_design_max_kb.get(key, 0), by_design)
        return max(0, rss_kb - self.by_design_max_kb[key])

    def track_growth(self, incarnation, own_kb):
        """Growth after a process' first minutes (a restart starts over):
        baseline = its largest own memory in its first RSS_BASELINE_S, then its
        largest after that."""
        first = self.rss_first_seen.setdefault(incarnation, time.monotonic())
        age = time.monotonic() - first
        if age < RSS_BASELINE_S:
            self.rss_baseline_kb[incarnation] = max(self.rss_baseline_kb.get(incarnation, 0),
                                                    own_kb)
        else:
            self.rss_last_kb[incarnation] = max(self.rss_last_kb.get(incarnation, 0), own_kb)
            self.rss_age_s[incarnation] = age

    def monitor(self, stop, nemesis):
        """Every 0.5 s: RSS of each node; a node that died not by the nemesis."""
        while not stop.wait(0.5):
            for n in list(self.cluster.nodes):
                if n.proc is None:
                    continue
                code = n.proc.poll()
                if code is None:
                    try:
                        kb = n.rss_kb()
                    except (OSError, AssertionError, TypeError):
                        continue
                    self.rss_max_kb[n.id] = max(self.rss_max_kb.get(n.id, 0), kb)
                    t = time.monotonic() - self.t0
                    if t >= self.rss_next_log.get(n.id, 0.0):  # a timeline, every 5 s
                        sample = {"t": round(t, 1), "node": n.id, "pid": n.pid, "rss_kib": kb}
                        own = self.own_memory_kb(n, kb)
                        if own is not None:
                            sample["own_kib"] = own
                            self.track_growth((n.id, n.pid), own)
                        try:  # the data disk's use (a ballast included, if any)
                            if not os.path.ismount(n.data_dir):
                                raise OSError(f"{n.data_dir} is not mounted")
                            st = os.statvfs(n.data_dir)
                            used = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
                            sample["disk_used_kib"] = used
                            if n.id not in nemesis.ballasts:
                                self.disk_max_used_kb[n.id] = max(
                                    self.disk_max_used_kb.get(n.id, 0), used)
                                if (used * 1024 > disks.DISK_FULL_WARNING * disks.DISK_BYTES
                                        and n.id not in self.disk_outgrown):
                                    self.disk_outgrown.add(n.id)
                                    self.problems.append(
                                        f"node {n.id}'s data disk is {used} KiB full with no "
                                        f"ballast in it (of {disks.DISK_SIZE}): the run outgrew "
                                        f"its disks (docs/chaos.md, 'The disks'); run shorter")
                        except OSError:
                            pass
                        self.rss_log.append(sample)
                        self.rss_next_log[n.id] = t + 5.0
                elif n.id not in nemesis.down and (n.id, n.pid) not in self.unexpected_deaths:
                    self.unexpected_deaths.append((n.id, n.pid))
                    self.problems.append(f"node {n.id} (pid {n.pid}) exited with {code} "
                                         f"while nobody stopped it")

    def record_end_state(self, path):
        """Each running node's INFO raft and CSET.NODES as it answers them once
        the workload is over (kept in the folder: the state a liveness
        failure ended in)."""
        with open(path, "w") as f:
            for n in self.cluster.nodes:
                f.write(f"== node {n.id} ({'running' if n.alive() else 'not running'})\n")
                if not n.alive():
                    continue
                for args in (("INFO", "raft"), ("CSET.NODES",)):
                    try:
                        reply = command(n, *args, timeout=2.0)
                    except OSError as e:
                        reply = e
                    if isinstance(reply, bytes):
                        reply = reply.decode("utf-8", "replace")
                    f.write(f"-- {' '.join(args)}\n{reply}\n")

    def final_reads(self, history, keys):
        """SMEMBERS of every key through every current node (recorded); the
        results per key and node."""
        seen = {}
        caller = Caller()
        # A node that fails five reads in a row is not asked again (every
        # key ever used is read: thousands, each attempt up to OP_TIMEOUT),
        # so a cluster left without a leader fails the run in seconds
        # instead of reading for hours; the problem names the first key.
        broken = set()
        try:
            for key in keys.all:
                for node in self.cluster.current():
                    if node.id in broken:
                        continue
                    for _attempt in range(5):
                        client = history.new_client()
                        invoke = now_us()
                        outcome, result, error = caller.call(node, "members", ["SMEMBERS", key])
                        op = {"client": client, "op": "members", "key": key, "invoke": invoke,
                              "complete": now_us(), "outcome": outcome, "node": node.id,
                              "final": True}
                        if outcome == "ok":
                            op["result"] = result
                        if error:
                            op["error"] = error
                        history.record(op)
                        if outcome == "ok":
                            seen.setdefault(key, {})[node.id] = result
                            break
                        time.sleep(0.2)
                    else:
                        broken.add(node.id)
                        self.problems.append(f"final read of {key} through node {node.id} "
                                             f"failed 5 times; later keys were not read "
                                             f"through it")
        finally:
            caller.close()
        return seen


def lost_writes(ops, final):
    """Acknowledged adds absent at the end, and acknowledged removes undone,
    with no later-invoked (or concurrent) write that could explain it."""
    lost = []
    by_atom = {}
    for op in ops:
        if op.get("final") or op["outcome"] == "fail" or op["op"] not in (
                "add", "rem", "add_strict"):
            continue
        members = op.get("members") or [op["member"]]
        for m in members:
            by_atom.setdefault((op["key"], m), []).append(op)
    for (key, m), writes in by_atom.items():
        if key not in final:
            continue
        present = {m in members for members in final[key].values()}
        if len(present) != 1:
            continue  # disagreement: reported separately
        present = present.pop()
        for w in writes:
            if w["outcome"] != "ok":
                continue
            adds = w["op"] in ("add", "add_strict")
            if adds == present:
                continue
            later = [o for o in writes if o is not w and (o["op"] != "rem") != adds
                     and (o["outcome"] == "unknown" or o["complete"] >= w["invoke"])]
            if not later:
                lost.append(f"{w['op']} {key} {m} acknowledged at {w['complete']} "
                            f"but {'absent' if adds else 'present'} at the end")
    return lost


def run_chaos(args):
    """One run; returns a dict with the verdict, counts and problems."""
    csetd = harness.binary("CSETD", "the node server csetd")
    checker = harness.binary("CSET_SIM", "the simulator cset-sim (its --check-history)")
    kinds = [k.strip() for k in args.nemesis.split(",") if k.strip()]
    rng = random.Random(args.seed)
    schedule = draw_schedule(rng, kinds, args.time, args.nodes) if kinds else []
    out = args.out or os.path.join("/tmp", f"cset-chaos-{args.seed}-{os.getpid()}")
    os.makedirs(out, exist_ok=True)
    rerun = (f"CSETD={csetd} CSET_SIM={checker} ./scripts/chaos --nodes {args.nodes} "
             f"--time {args.time:g} --clients {args.clients} "
             f"--nemesis {shlex.quote(args.nemesis)} --seed {args.seed} "
             f"--settle {args.settle:g} --snapshot-entries {args.snapshot_entries}"
             + "".join(f" --csetd-arg={shlex.quote(a)}" for a in args.csetd_arg)
             + (" --expect-violation" if args.expect_violation else ""))
    with open(os.path.join(out, "rerun.txt"), "w") as f:
        f.write(rerun + "\n")
    with open(os.path.join(out, "schedule.json"), "w") as f:
        modes, not_applicable = partition_modes(args.nodes)
        json.dump({"seed": args.seed, "nodes": args.nodes, "time": args.time,
                   "clients": args.clients, "nemesis": kinds,
                   "partition_modes": modes if "partition" in kinds else [],
                   "not_applicable": not_applicable if "partition" in kinds else {},
                   "faults": schedule}, f, indent=1)

    run = Run(args)
    history = History()
    run.history = history
    keys = Keys(f"s{args.seed}:")
    verdict = None
    checker_output = ""
    final = {}
    nemesis = None
    stop = threading.Event()  # ends the clients and the monitor
    try:
        run.net = netns.Network(args.nodes).create()
        run.cluster = ChaosCluster(
            args.nodes, run.net,
            extra_args=["--snapshot-entries", str(args.snapshot_entries)] + stall_abort_args()
            + args.csetd_arg)
        print(f"chaos: seed {args.seed}, {args.nodes} nodes, {args.clients} clients, "
              f"{args.time:g} s, nemesis {','.join(kinds) or 'none'}; files in {out}",
              flush=True)
        if run.cluster.disks.stale_removed:
            print(f"chaos: removed the mounts of an earlier run that died: "
                  f"{run.cluster.disks.stale_removed}", flush=True)
        run.cluster.start()
        run.t0 = time.monotonic()
        nemesis = Nemesis(run, schedule)
        monitor = threading.Thread(target=run.monitor, args=(stop, nemesis), daemon=True)
        monitor.start()
        workload_end = run.t0 + args.time + args.settle
        clients = [Client(i, run.cluster, history, keys, args.seed, workload_end, stop)
                   for i in range(args.clients)]
        for c in clients:
            c.start()
        run.sleep_until(run.t0 + 1.0)  # warm up without faults
        nemesis.execute(run.t0 + args.time)
        nemesis.heal_all()
        nemesis.log(action="all healed; settling")
        leader = find_leader(run.cluster, 10 * E)
        if leader is None:
            run.problems.append(f"no leader within {10 * E:.0f} s after healing")
        run.sleep_until(max(workload_end, time.monotonic() + 1.0))
        stop.set()
        for c in clients:
            c.join(timeout=OP_TIMEOUT + 10)
            if c.is_alive():
                run.problems.append(f"{c.name} did not stop")
        workload_ops = list(history.ops)
        # Convergence: every node reaches the same applied index.
        try:
            until(lambda: len({(info_or_none(n, 1.0) or {}).get("applied_index")
                               for n in run.cluster.current()} - {None}) == 1
                  and all(info_or_none(n, 1.0) for n in run.cluster.current()),
                  10 * E, what="every node to reach the same applied_index")
        except AssertionError as e:
            run.problems.append(str(e))
        run.record_end_state(os.path.join(out, "end-state.txt"))
        final = run.final_reads(history, keys)
        for key, per_node in final.items():
            if len({tuple(v) for v in per_node.values()}) > 1:
                run.problems.append(f"nodes disagree on {key}: {per_node}")
        for n in run.cluster.current():
            if not n.alive():
                run.problems.append(f"node {n.id} is not running at the end (exit "
                                    f"{n.proc.returncode if n.proc else None})")
        monitor.join(timeout=5)
        history.write(os.path.join(out, "history.jsonl"))
        try:
            proc = subprocess.run([checker, "--check-history", os.path.join(out, "history.jsonl")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=args.check_timeout)
            checker_output = proc.stdout.decode("utf-8", "replace")
            verdict = {0: "linearizable", 1: "NOT LINEARIZABLE", 2: "INVALID HISTORY"}.get(
                proc.returncode, f"checker exit {proc.returncode}")
        except subprocess.TimeoutExpired:
            verdict = f"checker timed out after {args.check_timeout} s"
        with open(os.path.join(out, "checker.txt"), "w") as f:
            f.write(f"verdict: {verdict}\n{checker_output}")
        if verdict != "linearizable":
            run.problems.append(f"history {verdict}: {checker_output.strip()[:3000]}")
    except Exception as e:  # noqa: BLE001 - every failure is reported with the folder
        import traceback
        run.problems.append(f"run aborted: {e!r}\n{traceback.format_exc()}")
    finally:
        stop.set()
        if run.cluster is not None:
            run.problems += run.cluster.close(graceful=True)
            for n in run.cluster.nodes:
                stalls = [line for line in n.log_text().splitlines()
                          if b"event loop: stalled" in line]
                if stalls:
                    run.problems.append(f"node {n.id}'s event loop stalled "
                                        f"({len(stalls)} times): "
                                        f"{stalls[0].decode('utf-8', 'replace')}")
            for n in run.cluster.nodes:
                for how, code in n.exit_codes:
                    if how == "SIGKILL" and code != -signal.SIGKILL:
                        run.problems.append(f"node {n.id} exited with {code} before the "
                                            f"nemesis' SIGKILL landed")
            run.cluster.disks.unmount_all()
            left = run.cluster.disks.leftovers()
            if left:
                run.problems.append(f"mounts left after the run: {left}")
        if run.net is not None:
            run.net.destroy()
    if not history.ops or "history.jsonl" not in os.listdir(out):
        history.write(os.path.join(out, "history.jsonl"))

    workload = [op for op in history.ops if not op.get("final")]
    counts = history.counts(workload)
    lost = lost_writes(history.ops, final)
    run.problems += [f"lost: {x}" for x in lost]
    if history.unexpected:
        run.problems.append(f"{len(history.unexpected)} replies of a wrong shape, e.g. "
                            f"{history.unexpected[0][1]}")
    if len(workload) == 0 or counts["ok"] * 3 < len(workload):
        run.problems.append(f"only {counts['ok']} of {len(workload)} operations succeeded "
                            f"(need a third)")
    for node_id, kb in sorted(run.rss_max_kb.items()):
        if kb >= RSS_LIMIT_KB:
            run.problems.append(f"node {node_id} RSS {kb} KiB >= {RSS_LIMIT_KB} KiB")
    for incarnation, age in sorted(run.rss_age_s.items()):
        base, last = run.rss_baseline_kb.get(incarnation, 0), run.rss_last_kb[incarnation]
        if age >= RSS_GROWTH_MIN_AGE_S and last > base * (1 + RSS_GROWTH_LIMIT):
            run.problems.append(
                f"node {incarnation[0]} (pid {incarnation[1]}) own memory (RSS less RocksDB's "
                f"memtables, block cache and table readers) grew from {base} KiB (largest in "
                f"its first {RSS_BASELINE_S:.0f} s) to {last} KiB (> 5%)")
    if nemesis is not None:
        for fault in nemesis.faults:
            if not fault["observed"]:
                run.problems.append(f"fault {fault['step']} ({fault['kind']}) not observed: "
                                    f"{fault['evidence']}")
        with open(os.path.join(out, "nemesis.jsonl"), "w") as f:
            for ev in nemesis.events:
                f.write(json.dumps(ev) + "\n")
    injected = {}
    for fault in (nemesis.faults if nemesis else []):
        injected[fault["kind"]] = injected.get(fault["kind"], 0) + 1
    elapsed = time.monotonic() - run.t0
    summary = {
        "seed": args.seed, "ops": len(history.ops), "workload_ops": len(workload),
        "counts": counts, "verdict": verdict, "lost": len(lost), "faults": injected,
        "rss_max_kib": run.rss_max_kb, "disk_max_used_kib": run.disk_max_used_kb,
        "seconds": round(elapsed, 1), "problems": run.problems,
        "dir": out, "rerun": rerun, "checker_output": checker_output,
    }
    with open(os.path.join(out, "rss.jsonl"), "w") as f:
        for sample in run.rss_log:
            f.write(json.dumps(sample) + "\n")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if run.problems:
        # Keep one folder: node logs next to the history.
        if run.cluster is not None:
            for n in run.cluster.nodes:
                if os.path.exists(n.log_path):
                    shutil.copy(n.log_path, os.path.join(out, f"node{n.id}.log"))
                core = os.path.join(os.path.dirname(n.log_path), "core")
                if os.path.exists(core):  # a crash's core file (harness.py)
                    shutil.copy(core, os.path.join(out, f"node{n.id}.core"))
            run.cluster.remove()
    else:
        if run.cluster is not None:
            run.cluster.remove()
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return summary


def report_line(s):
    c = s["counts"]
    return (f"chaos: {s['workload_ops']} ops (ok {c['ok']}, failed {c['fail']}, "
            f"unknown {c['unknown']}), {s['verdict'] or 'not checked'}, {s['lost']} lost")


NEMESIS_HELP = """\
nemeses (--nemesis; each fault must be observed to take effect, else the run fails):
  kill        SIGKILL a node (the leader or a random one), 1.5-4 s down, restart it
              with its data. Evidence: its client port refuses connections.
  pause       SIGSTOP a node for 2.5-4.5 s (> the 2 s election timeout), SIGCONT.
              Evidence: PING gets no answer within 0.5 s.
  partition   3-6 s, one shape per fault, each shape once before any repeats:
                majority-minority   a random minority cut from the majority
                isolated-leader     the leader alone
                leader-in-minority  (5 nodes) the leader with one other node
                bridge              two halves that cannot see each other and one
                                    node that sees both (3 nodes: the middle one)
                tiebreak-2-2        (5 nodes only; not drawn in 3-node runs, noted in
                                    schedule.json) one voter removed, the 4 voters
                                    split 2/2, healed, a replacement added back
              Evidence: every node with a cut link dropped packets (iptables
              counters; if no Raft traffic crossed a cut link, a TCP connection is
              tried across each, both ways); bridge also: a TCP connection from
              every other node to the bridge opens; tiebreak-2-2 also: a write through the half holding the
              tie-breaker (INFO tiebreaker_id) succeeds, every write through the
              other half answers NOQUORUM/TIMEOUT (an acknowledged one is reported
              as a split brain), and the cluster is back to 5 voters.
  transfer    CSET.LEADER TRANSFER to a random other node.
              Evidence: the target reports role:leader.
  membership  CSET.NODE REMOVE a node, stop it, start an empty node with a new id and
              --join in its namespace, CSET.NODE ADD (learner), catch up, PROMOTE.
              Evidence: CSET.NODES lists the new id as voter and not the old one.
  disk        fill a node's data disk (its own 64 MiB tmpfs) with a ballast file,
              hold 2-4 s, remove the ballast. Evidence: INFO storage_failed:1 and a
              write through the node answers NOSPACE (a probe or the workload's);
              after the ballast is removed the node must recover by itself
              (storage_failed:0 and a write through it succeeds within 30 s).
  wipe        SIGKILL a node, delete its data directory's contents, restart it with
              the same id. Evidence: a peer logs "data lost: node N"; then it is
              replaced as membership does (REMOVE, new id with --join, ADD, PROMOTE)
              and CSET.NODES lists the new id as voter and not the old one.
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="chaos", description="Fault injection on real csetd processes, checked for "
        "linearizability (docs/chaos.md).", epilog=NEMESIS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    p.add_argument("--time", type=float, default=60.0, help="seconds of faults (default 60)")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--nemesis", default="kill,pause,partition,transfer",
                   help=f"comma-separated subset of {','.join(ALL_NEMESES)} ('' for none)")
    p.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds the workload keeps running after every fault healed")
    p.add_argument("--out", default=None, help="folder for the run's files "
                   "(default /tmp/cset-chaos-SEED-PID; removed on success unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the folder on success too")
    p.add_argument("--check-timeout", type=float, default=300.0)
    p.add_argument("--snapshot-entries", type=int, default=1000,
                   help="csetd --snapshot-entries: small, so snapshots (and InstallSnapshot to "
                   "restarted and new nodes) happen during the run and memory reaches a "
                   "steady state (default 1000)")
    p.add_argument("--csetd-arg", action="append", default=[],
                   help="extra csetd flag (repeatable), e.g. --csetd-arg=--unsafe-local-reads")
    p.add_argument("--expect-violation", action="store_true",
                   help="exit 0 only if the checker finds the history NOT linearizable "
                   "(for runs with a deliberately unsafe --csetd-arg)")
    p.add_argument("--verbose", "-v", action="store_true", help="print every nemesis step")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if args.time <= 0 or args.clients < 1:
        p.error("--time must be > 0 and --clients >= 1")
    for k in args.nemesis.split(","):
        if k.strip() and k.strip() not in ALL_NEMESES:
            p.error(f"unknown nemesis {k.strip()!r} (known: {', '.join(ALL_NEMESES)})")
    return args


def _alarm(signum, frame):
    raise TimeoutError("the chaos run exceeded its time budget")


def main(argv=None):
    args = parse_args(argv)
    budget = int(args.time + args.settle + 120 + 2 * args.check_timeout)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(budget)
    try:
        s = run_chaos(args)
    finally:
        signal.alarm(0)
    print(f"chaos: seed {s['seed']}, {s['seconds']} s, faults {s['faults']}, "
          f"max RSS KiB {s['rss_max_kib']}, max disk use KiB {s['disk_max_used_kib']}")
    caught = args.expect_violation and s["verdict"] == "NOT LINEARIZABLE"
    if s["problems"]:
        print("chaos: problems (expected: the unsafe run was to be flagged):" if caught
              else "chaos: FAILED:")
        for p in s["problems"]:
            print("  - " + p)
        if caught and not args.keep:
            # An expected violation is a success: its folder goes as a passing
            # run's does (the cluster's own folder and mounts are gone already).
            shutil.rmtree(s["dir"], ignore_errors=True)
            print(f"chaos: removed {s['dir']} (an expected violation is a success; "
                  f"--keep keeps it)")
        else:
            print(f"chaos: files kept in {s['dir']}; rerun: {s['rerun']}")
    if args.expect_violation:
        if caught:
            why = " -- the checker flagged the unsafe run, as expected"
        elif s["verdict"] is None:
            why = " -- FAILED: the run did not get as far as the checker (problems above)"
        else:
            why = " -- FAILED: the checker did not flag the unsafe run"
        print(report_line(s) + why)
        return 0 if caught else 1
    print(report_line(s) + ("" if not s["problems"] else " -- FAILED"))
    return 0 if not s["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
