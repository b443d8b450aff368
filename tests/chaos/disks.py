"""Small per-node file systems for the chaos runs: a disk that can be filled.

Every csetd data directory of a chaos run is its own size-limited tmpfs
(DISK_SIZE, 64 MiB), mounted before the node's first start, the way
tests/integration/test_nospace.py mounts its disks. Nodes run with a 1 MiB
write buffer, so a WAL has little room reserved in advance: once a ballast
file has taken the free space, appends to the WAL fail with ENOSPC within
about 1 MiB and the node reports it (INFO raft `storage_failed:1`, `NOSPACE`
to clients).

Cleanup, so that no mount outlives its run or leaks into the next one:
  - Disks.unmount_all() is called from the run's `finally`;
  - an atexit hook unmounts whatever a Disks of this process still holds;
  - a run killed outright (SIGKILL at a ctest timeout) leaves its mounts
    behind; the next Disks() finds them (tmpfs mounts at
    <tmp>/cset-integ-chaos-*/nN/data) and removes those whose owner, named in the
    run folder's OWNER_FILE, is no longer a live process.
Unmounting is lazy (MNT_DETACH): it never fails because a node still has
files open; the memory is freed when the last user is gone.

Needs root (CAP_SYS_ADMIN) to mount; without it mount() raises, the run
fails, it never skips.
"""

import atexit
import ctypes
import os
import re
import shutil

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_MNT_DETACH = 2

# Every node runs with --write-buffer-mb WRITE_BUFFER_MB, so a WAL preallocates
# only 1.1 MiB (RocksDB reserves 1.1 x the write buffer with fallocate, and a
# ballast cannot take space a WAL already reserved): once the ballast has
# taken the free space, appends fail within that much WAL, a second or two.
# 64 MiB holds a 300 s release run at full speed (about 350,000 operations on
# 5 nodes filled 16.6 MiB, mostly the sets of the rotated keys).
WRITE_BUFFER_MB = 1
DISK_SIZE = "64m"
DISK_BYTES = 64 << 20
# A disk fuller than this without a ballast fails the run: it outgrew its
# disk (a natural NOSPACE would blur every later check).
DISK_FULL_WARNING = 0.9
OWNER_FILE = "chaos-owner.pid"
BALLAST = "chaos-ballast"
_ROOT_RE = re.compile(r"^(/.*/cset-integ-chaos-[^/]+)/n\d+/data$")

_live = []  # Disks not yet cleaned up, for the atexit hook


def _mounts():
    """(mount point, fs type) of every mount this process sees."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            words = line.split()
            if len(words) >= 3:
                # /proc/mounts escapes spaces and the like as octal (\040).
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), words[1])
                out.append((point, words[2]))
    return out


def _owner_alive(root):
    """True when root's OWNER_FILE names a live chaos run process."""
    try:
        with open(os.path.join(root, OWNER_FILE)) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"chaos" in f.read()
    except (OSError, ValueError):
        return False


def remove_stale():
    """Unmounts the tmpfs mounts of chaos runs whose process is gone, and
    removes their folders. Returns the mount points removed."""
    removed = []
    roots = set()
    for point, fstype in _mounts():
        m = _ROOT_RE.match(point)
        if fstype != "tmpfs" or not m or _owner_alive(m.group(1)):
            continue
        _libc.umount2(point.encode(), _MNT_DETACH)
        removed.append(point)
        roots.add(m.group(1))
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)
    return removed


class Disks:
    """The mounts of one run: mount(path) before a node's first start,
    unmount(path) when the node is retired, unmount_all() at the end.
    Marks `root` (the cluster's folder) as owned by this process."""

    def __init__(self, root, size=DISK_SIZE):
        self.root = root
        self.size = size
        self.mounted = []
        self.stale_removed = remove_stale()
        with open(os.path.join(root, OWNER_FILE), "w") as f:
            f.write(f"{os.getpid()}\n")
        _live.append(self)

    def mount(self, path):
        """A fresh tmpfs of `size` at path (created if needed); no-op when
        this Disks already mounted it. Raises OSError when mount fails."""
        if path in self.mounted:
            return
        os.makedirs(path, exist_ok=True)
        if _libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0,
                       f"size={self.size},mode=0755".encode()) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot mount a {self.size} tmpfs at {path} (chaos runs need "
                          f"root / CAP_SYS_ADMIN): {os.strerror(err)}")
        self.mounted.append(path)

    def unmount(self, path):
        if path in self.mounted:
            _libc.umount2(path.encode(), _MNT_DETACH)
            self.mounted.remove(path)

    def unmount_all(self):
        for path in list(self.mounted):
            self.unmount(path)
        if self in _live:
            _live.remove(self)

    def leftovers(self):
        """Mount points of this run still mounted (to check the cleanup)."""
        return [p for p, _ in _mounts() if p.startswith(self.root + "/")]


def fill(data_dir, top_up=False):
    """Writes a ballast file into data_dir until its file system is full;
    returns (path, bytes written). With top_up, appends to the ballast
    already there: space the node released meanwhile (RocksDB reopening
    after the error frees its WAL's preallocated tail) is taken again, so
    the disk stays full for the whole fault."""
    path = os.path.join(data_dir, BALLAST)
    chunk = b"b" * (64 << 10)
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if top_up else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    try:
        while True:
            try:
                n = os.write(fd, chunk)
            except OSError:
                break
            written += n
            if n < len(chunk):
                break
    finally:
        os.close(fd)
    return path, written


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def wipe(data_dir):
    """Deletes everything in data_dir (the mount point itself stays): the
    node's data directory as a lost disk leaves it. Returns the names removed."""
    names = sorted(os.listdir(data_dir))
    for name in names:
        p = os.path.join(data_dir, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    return names


def _unmount_everything():
    for d in list(_live):
        d.unmount_all()


atexit.register(_unmount_everything)
