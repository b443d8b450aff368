"""csetd's flag and config checks (SPEC.md "csetd": exit 2 on bad flags or
config, with a message naming the flag). No cluster: each case starts csetd
with one bad value and expects it to refuse at once, before touching the data
directory.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import binary, free_ports, until

BASE = ["--id", "1", "--peer-listen", "127.0.0.1:1", "--client-listen", "127.0.0.1:2",
        "--initial-cluster", "1=127.0.0.1:1"]


class CsetdFlagsTest(unittest.TestCase):
    CTEST_TIMEOUT = 60

    def run_csetd(self, *args, config=None):
        with tempfile.TemporaryDirectory(prefix="cset-flags-") as tmp:
            data_dir = os.path.join(tmp, "data")
            argv = [binary("CSETD", "csetd"), "--data-dir", data_dir]
            if config is not None:
                path = os.path.join(tmp, "csetd.toml")
                with open(path, "w") as f:
                    f.write(config)
                argv += ["--config", path]
            p = subprocess.run(argv + list(args), capture_output=True, timeout=20)
            # Refused before the data directory was created: nothing to clean up.
            self.assertFalse(os.path.exists(data_dir), f"{args}: created {data_dir}")
            return p.returncode, p.stderr.decode(errors="replace")

    def assertRefused(self, args, mentions, config=None):
        rc, err = self.run_csetd(*args, config=config)
        self.assertEqual(rc, 2, f"{args}: exit {rc}, stderr {err!r}")
        self.assertIn(mentions, err, f"{args}: stderr {err!r}")

    def test_negative_numbers_are_refused(self):
        for flag in ("--write-timeout", "--max-member-bytes", "--heartbeat-ms", "--id"):
            self.assertRefused(BASE + [flag, "-5"], flag)
            self.assertRefused(BASE + [f"{flag}=-5"], flag)

    def test_overflow_is_refused_not_clamped(self):
        for flag in ("--max-member-bytes", "--write-timeout", "--snapshot-entries"):
            self.assertRefused(BASE + [flag, "99999999999999999999"], flag)
            self.assertRefused(BASE + [flag, "18446744073709551615"], flag)

    def test_out_of_range_values_name_the_range(self):
        self.assertRefused(BASE + ["--write-timeout", "0"], "--write-timeout 0 is out of range")
        self.assertRefused(BASE + ["--max-request-bytes", str(1 << 40)], "--max-request-bytes")
        self.assertRefused(BASE + ["--max-member-bytes", "2000000"], "--max-request-bytes")
        self.assertRefused(BASE + ["--heartbeat-ms", "2000"], "--election-timeout-ms")
        self.assertRefused(BASE + ["--write-timeout", "12abc"], "--write-timeout")

    def test_initial_cluster_duplicates_are_refused(self):
        base = BASE[:-2]
        self.assertRefused(base + ["--initial-cluster", "1=127.0.0.1:1,1=127.0.0.1:3"],
                           "id 1 is listed twice")
        self.assertRefused(base + ["--initial-cluster", "1=127.0.0.1:1,2=127.0.0.1:1"],
                           "address 127.0.0.1:1 is listed twice")

    def test_config_file_values_are_checked_too(self):
        self.assertRefused(BASE, "--write-timeout", config="write-timeout = 0\n")
        self.assertRefused(BASE, "must not be negative", config="max-member-bytes = -1\n")
        # id = 0 in the file is out of range, as --id 0 is (it used to say "--id is required").
        no_id = [a for i, a in enumerate(BASE) if a != "--id" and (i == 0 or BASE[i - 1] != "--id")]
        self.assertRefused(no_id, "id must be 1..2^63-1 (got 0)", config="id = 0\n")

    def test_config_file_unknown_keys_and_wrong_types_are_refused(self):
        # A typo in a key used to be ignored silently, the default kept.
        self.assertRefused(BASE, "unknown key 'writetimeout'", config="writetimeout = 3000\n")
        self.assertRefused(BASE, "unknown key 'force-new-cluster'",
                           config="force-new-cluster = true\n")
        self.assertRefused(BASE, "write-timeout must be an integer",
                           config='write-timeout = "3000"\n')
        self.assertRefused(BASE, "data-dir must be a string", config="data-dir = 5\n")
        self.assertRefused(BASE, "join must be true or false", config='join = "yes"\n')
        # A flag on the command line still wins over a good key in the file.
        self.assertRefused(BASE + ["--write-timeout", "0"], "--write-timeout",
                           config="write-timeout = 3000\n")

    def test_a_failed_start_leaves_no_data_directory_it_created(self):
        # A port in use is found after the data directory was initialized
        # from the flags; kept, it would make the next start ignore a
        # corrected --initial-cluster. One that held data is never touched.
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            with tempfile.TemporaryDirectory(prefix="cset-failed-start-") as tmp:
                for name, flags in (
                        ("peer", ["--peer-listen", f"127.0.0.1:{port}", "--client-listen",
                                  "127.0.0.1:0", "--initial-cluster", f"1=127.0.0.1:{port}"]),
                        ("client", ["--peer-listen", "127.0.0.1:0", "--client-listen",
                                    f"127.0.0.1:{port}", "--initial-cluster", "1=127.0.0.1:1"])):
                    data_dir = os.path.join(tmp, name)
                    p = subprocess.run([binary("CSETD", "csetd"), "--id", "1", "--data-dir",
                                        data_dir] + flags, capture_output=True, timeout=20)
                    self.assertEqual(p.returncode, 2, p.stderr)
                    self.assertIn(b"Address already in use", p.stderr)
                    self.assertFalse(os.path.exists(data_dir), f"{name}: {data_dir} was left")
                # An empty directory given by the operator stays, empty.
                empty = os.path.join(tmp, "empty")
                os.mkdir(empty)
                p = subprocess.run([binary("CSETD", "csetd"), "--id", "1", "--data-dir", empty,
                                    "--peer-listen", f"127.0.0.1:{port}", "--client-listen",
                                    "127.0.0.1:0", "--initial-cluster", f"1=127.0.0.1:{port}"],
                                   capture_output=True, timeout=20)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(os.listdir(empty), [])
        finally:
            busy.close()

    def test_config_file_log_values_and_a_directory_are_refused(self):
        self.assertRefused(BASE, "log-level 'bogus'", config='log-level = "bogus"\n')
        self.assertRefused(BASE, "log-format 'xml'", config='log-format = "xml"\n')
        with tempfile.TemporaryDirectory(prefix="cset-config-dir-") as tmp:
            self.assertRefused(BASE + ["--config", tmp], "is a directory")

    def test_a_failed_start_keeps_a_dangling_symlink(self):
        # /var/lib/cset/n1 -> a disk not mounted: the start fails, and the
        # operator's symlink stays (deleting it made the next start create a
        # new empty node on the wrong disk).
        with tempfile.TemporaryDirectory(prefix="cset-symlink-") as tmp:
            link = os.path.join(tmp, "n1")
            os.symlink(os.path.join(tmp, "unmounted", "cset"), link)
            p = subprocess.run([binary("CSETD", "csetd"), "--id", "1", "--data-dir", link] +
                               BASE[2:], capture_output=True, timeout=20)
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertTrue(os.path.islink(link), "the symlink was deleted")

    def test_json_log_lines_are_json_whatever_the_message_holds(self):
        # --log-format json: a message quoting a path with '"' and '\\' must
        # stay one valid JSON object per line (it was pasted in unescaped).
        with tempfile.TemporaryDirectory(prefix="cset-json-") as tmp:
            data_dir = os.path.join(tmp, 'a"b\\c\udcff')  # \udcff: the byte 0xff
            peer, client = free_ports(2)
            args = ["--data-dir", data_dir, "--peer-listen", f"127.0.0.1:{peer}",
                    "--client-listen", f"127.0.0.1:{client}"]
            first = subprocess.Popen([binary("CSETD", "csetd"), "--id", "1", "--initial-cluster",
                                      f"1=127.0.0.1:{peer}"] + args,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                until(lambda: os.path.exists(os.path.join(data_dir, "CURRENT")), 20,
                      what="the first node to create its data directory")
                time.sleep(0.5)
            finally:
                first.send_signal(signal.SIGTERM)
                self.assertEqual(first.wait(timeout=20), 0)
            # The same directory under another id: exit 3, the path in the message.
            p = subprocess.run([binary("CSETD", "csetd"), "--id", "2", "--log-format", "json",
                                "--initial-cluster", f"2=127.0.0.1:{peer}"] + args,
                               capture_output=True, timeout=20)
            self.assertEqual(p.returncode, 3, p.stderr)
            # Every line is JSON (no plain-text copy), and valid UTF-8.
            lines = p.stderr.decode("utf-8").splitlines()
            self.assertTrue(lines, p.stderr)
            for line in lines:
                record = json.loads(line)
                self.assertEqual(record["node"], 2)
                self.assertEqual(record["level"], "error")
                self.assertIn(data_dir.replace("\udcff", "\ufffd"), record["msg"])

    def test_help_shows_defaults(self):
        p = subprocess.run([binary("CSETD", "csetd"), "--help"], capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        self.assertIn("5000", out)  # --write-timeout's default
        self.assertIn("65536", out)  # --max-member-bytes's default


if __name__ == "__main__":
    unittest.main()
