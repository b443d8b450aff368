"""Network namespaces for the partition tests: one namespace per node, joined
by a bridge, with links that can be cut and healed.

Layout of a Network of N nodes (K is a per-process counter, P our PID):

    root namespace                hub namespace csnet-P-K-hub
    csnPxK 10.A.B.250/24  <-veth->  c ─┐
                                       br0 (bridge)
    node namespace csnet-P-K-nI        │
    eth0 10.A.B.I/24      <-veth->  nI ┘

Every node runs in its own namespace with one address, 10.A.B.I (I = node
id, 1..N); the test process reaches every node from the root namespace
through the bridge (10.A.B.250). The /24 is chosen free of every address and
route the root namespace already has, under a lock file, so parallel runs
never share one. Nothing is routed outside the machine: no default route, no
NAT, no forwarding is enabled; the only route is the directly connected /24.

Partitions are cut with iptables DROP rules in each node namespace's INPUT
chain (its own chain CSET_PARTITION), dropping packets from the nodes on the
other side: a silent cut both ways, as a failed switch port would be. The
test client's address is never dropped, so a cut-off node can still be
asked (and be seen to refuse). heal() flushes the rules.

Cleanup: destroy() removes the namespaces and the root veth (deleting a
namespace deletes its veth ends and their peers); it is idempotent, called
from unittest cleanups and, for anything still left, from an atexit hook.
Leftovers of an earlier run that died without cleaning up (SIGKILL at a
ctest timeout) are recognised by the PID in their names and removed by
remove_stale() when a new Network is created.

A machine where namespaces cannot be made (no `ip` or `iptables`, no
CAP_NET_ADMIN) raises NetnsUnavailable with the command and its error: the
tests fail loudly, never skip. Root is required (ip netns).
"""

import atexit
import fcntl
import ipaddress
import itertools
import os
import re
import shutil
import subprocess

CLIENT_HOST = 250  # the root namespace's address in every network: 10.A.B.250
_CHAIN = "CSET_PARTITION"
_NS_RE = re.compile(r"^csnet-(\d+)-\d+-")
_LINK_RE = re.compile(r"^csn(\d+)x\d+$")
_LOCK_PATH = "/tmp/cset-netns.lock"

_counter = itertools.count(1)
_live = []  # Networks not yet destroyed, for the atexit hook


class NetnsUnavailable(RuntimeError):
    """Namespaces, veths, the bridge or iptables cannot be set up here."""


def _run(args, check=True, timeout=20):
    """Runs a command; returns CompletedProcess. Raises NetnsUnavailable on
    failure when check (naming the command and its stderr)."""
    try:
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except FileNotFoundError as e:
        raise NetnsUnavailable(f"{args[0]} not found: {e}") from e
    if check and proc.returncode != 0:
        raise NetnsUnavailable(
            f"`{' '.join(args)}` failed with exit {proc.returncode}: "
            f"{proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc


def _pid_alive(pid):
    return os.path.exists(f"/proc/{pid}")


def remove_stale():
    """Removes namespaces and root veths named by a previous run whose process
    is gone. Never touches names of a live process (a parallel run)."""
    listing = _run(["ip", "netns", "list"], check=False).stdout.decode()
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NS_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _run(["ip", "netns", "delete", name], check=False)
    links = _run(["ip", "-o", "link", "show"], check=False).stdout.decode()
    for line in links.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = _LINK_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _run(["ip", "link", "delete", name], check=False)


def _used_networks():
    """IPv4 networks the root namespace has addresses or routes in."""
    used = []
    out = _run(["ip", "-4", "-o", "addr", "show"]).stdout.decode()
    for m in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+/\d+)", out):
        used.append(ipaddress.ip_network(m.group(1), strict=False))
    out = _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout.decode()
    for line in out.splitlines():
        words = line.split()
        if not words:
            continue
        dest = words[1] if words[0] in ("local", "broadcast", "unicast") and len(words) > 1 \
            else words[0]
        if dest == "default":
            continue  # the default route covers everything; it does not claim a subnet
        try:
            used.append(ipaddress.ip_network(dest, strict=False))
        except ValueError:
            pass
    return used


def _choose_subnet(pid, seq):
    """A 10.A.B.0/24 overlapping nothing the root namespace has (A in 200..249)."""
    used = _used_networks()
    start = (pid * 31 + seq * 7) % (50 * 256)
    for step in range(50 * 256):
        k = (start + step) % (50 * 256)
        net = ipaddress.ip_network(f"10.{200 + k // 256}.{k % 256}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise NetnsUnavailable("no free 10.200-249.x.0/24 subnet in the root namespace")


class Network:
    """N node namespaces on one bridge; see the module comment.

    Not thread-safe: call from the test's thread.
    """

    def __init__(self, size):
        for tool in ("ip", "iptables"):
            if shutil.which(tool) is None:
                raise NetnsUnavailable(f"`{tool}` is not installed (Debian: iproute2, iptables); "
                                       f"the partition tests need network namespaces")
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (ip netns add); "
                                   f"running as uid {os.geteuid()}")
        self.size = size
        self.pid = os.getpid()
        self.seq = next(_counter)
        self.prefix = f"csnet-{self.pid}-{self.seq}"
        self.hub = f"{self.prefix}-hub"
        self.root_link = f"csn{self.pid}x{self.seq}"
        self.subnet = None
        self.cut = []  # the groups of the current partition, [] when whole
        self._namespaces = []
        self._destroyed = False
        _live.append(self)

    # -- names and addresses --

    def namespace(self, node_id):
        return f"{self.prefix}-n{node_id}"

    def address(self, node_id):
        """The node's IPv4 address (str), 10.A.B.<node_id>."""
        return str(self.subnet.network_address + node_id)

    def client_address(self):
        return str(self.subnet.network_address + CLIENT_HOST)

    def addresses(self):
        """Per node id 1..size, in order: its address."""
        return [self.address(i) for i in range(1, self.size + 1)]

    def wrapper(self, node_id):
        """The command prefix that runs a program inside the node's namespace."""
        return ["ip", "netns", "exec", self.namespace(node_id)]

    def wrappers(self):
        return [self.wrapper(i) for i in range(1, self.size + 1)]

    # -- lifecycle --

    def create(self):
        """Builds the namespaces, bridge and veths; on any failure removes
        what it made and raises NetnsUnavailable."""
        assert 1 <= self.size < CLIENT_HOST
        try:
            remove_stale()
            self._add_namespace(self.hub)
            hub = ["ip", "-n", self.hub]
            _run(hub + ["link", "add", "br0", "type", "bridge"])
            _run(hub + ["link", "set", "br0", "up"])
            _run(hub + ["link", "set", "lo", "up"])
            for i in range(1, self.size + 1):
                ns = self.namespace(i)
                self._add_namespace(ns)
                _run(hub + ["link", "add", f"n{i}", "type", "veth", "peer", "name", "eth0",
                            "netns", ns])
                _run(hub + ["link", "set", f"n{i}", "master", "br0", "up"])
            # The subnet is chosen and claimed (the root address added) under a
            # lock, so two runs never pick the same one.
            with open(_LOCK_PATH, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.subnet = _choose_subnet(self.pid, self.seq)
                _run(["ip", "link", "add", self.root_link, "type", "veth", "peer", "name", "c",
                      "netns", self.hub])
                _run(["ip", "addr", "add", f"{self.client_address()}/24", "dev",
                      self.root_link])
                _run(["ip", "link", "set", self.root_link, "up"])
            _run(hub + ["link", "set", "c", "master", "br0", "up"])
            for i in range(1, self.size + 1):
                ns = ["ip", "-n", self.namespace(i)]
                _run(ns + ["link", "set", "lo", "up"])
                _run(ns + ["addr", "add", f"{self.address(i)}/24", "dev", "eth0"])
                _run(ns + ["link", "set", "eth0", "up"])
                self._iptables(i, "-N", _CHAIN)
                self._iptables(i, "-I", "INPUT", "-j", _CHAIN)
        except BaseException:
            self.destroy()
            raise
        return self

    def _add_namespace(self, name):
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)

    def destroy(self):
        """Removes every namespace and the root veth. Idempotent; never raises
        (best effort: it runs in cleanups and at exit)."""
        if self._destroyed:
            return
        self._destroyed = True
        _run(["ip", "link", "delete", self.root_link], check=False)
        for name in reversed(self._namespaces):
            _run(["ip", "netns", "delete", name], check=False)
        self._namespaces = []
        if self in _live:
            _live.remove(self)

    def leftovers(self):
        """Names of this network still present (for tests of the cleanup)."""
        names = _run(["ip", "netns", "list"], check=False).stdout.decode()
        left = [line.split()[0] for line in names.splitlines()
                if line.split() and line.split()[0].startswith(self.prefix + "-")]
        links = _run(["ip", "-o", "link", "show"], check=False).stdout.decode()
        if re.search(rf"^\d+: {re.escape(self.root_link)}[@:]", links, re.M):
            left.append(self.root_link)
        return left

    # -- partitions --

    def _iptables(self, node_id, *args):
        return _run(["ip", "netns", "exec", self.namespace(node_id), "iptables", "-w",
                     *args])

    def partition(self, groups):
        """Cuts the network into `groups` (lists of node ids covering every
        node): a node receives nothing from nodes outside its group. The test
        client (root namespace) still reaches every node."""
        ids = sorted(i for g in groups for i in g)
        assert ids == list(range(1, self.size + 1)), f"groups {groups} must cover 1..{self.size}"
        self.heal()
        for group in groups:
            others = [self.address(j) for j in ids if j not in group]
            if not others:
                continue
            for i in group:
                self._iptables(i, "-A", _CHAIN, "-s", ",".join(others), "-j", "DROP")
        self.cut = [sorted(g) for g in groups]

    def cut_links(self, pairs):
        """Cuts only the links between the given pairs of node ids (both
        ways), every other link stays up: shapes that groups cannot express,
        such as a bridge (a node that sees both sides of a cut). The test
        client still reaches every node. `cut` then lists the pairs."""
        self.heal()
        drop = {}
        for a, b in pairs:
            assert a != b and 1 <= a <= self.size and 1 <= b <= self.size, f"bad pair {a, b}"
            drop.setdefault(a, set()).add(b)
            drop.setdefault(b, set()).add(a)
        for i, others in sorted(drop.items()):
            self._iptables(i, "-A", _CHAIN, "-s", ",".join(self.address(j) for j in sorted(others)),
                           "-j", "DROP")
        self.cut = [sorted(p) for p in pairs]

    def heal(self):
        """Removes every partition rule."""
        for i in range(1, self.size + 1):
            self._iptables(i, "-F", _CHAIN)
        self.cut = []

    def rules(self, node_id):
        """The partition chain of one node, as iptables -S prints it."""
        return self._iptables(node_id, "-S", _CHAIN).stdout.decode()


def _destroy_all():
    for net in list(_live):
        net.destroy()


atexit.register(_destroy_all)
