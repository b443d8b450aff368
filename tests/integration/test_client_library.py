"""The client library cset::Client (include/cset/client.h; issue 9) against a
real 3-node cluster, through cset-client-driver (tests/client/client_driver.cc:
one Client, the calls named on its command line, one JSON line per call).

Checked: add answers added then already_present; a session write whose reply
is lost (a proxy in front of node A reads the node's reply and closes the
client's connection) is retried on the next endpoint with the same (session,
sequence) and reports the first attempt's answer, applied once; a true
duplicate is still refused; failover past a dead and a silent (SIGSTOPped)
first endpoint; pipelined replies come back one per command, in order; a
plain (non-session) write whose reply is lost is never re-sent and fails with
the outcome unknown; errors carry the SPEC.md code words; an expired session
is replaced on a request's first attempt.

The driver is CSET_CLIENT_DRIVER (set by tests/integration/CMakeLists.txt), or
found next to cset (CSET, tools/).
"""

import json
import os
import socket
import subprocess
import threading
import unittest

from harness import ClusterTestCase, binary, free_ports, until
from test_sessions import ReplyDroppingProxy

MAX_MEMBER_BYTES = 64 * 1024


def driver_binary():
    path = os.environ.get("CSET_CLIENT_DRIVER") or os.path.join(
        os.path.dirname(binary("CSET", "the cset CLI")), "cset-client-driver")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is not an executable: build the cset-client-driver target")
    return path


class ClientLibraryTest(ClusterTestCase):
    CTEST_TIMEOUT = 240

    @classmethod
    def setUpClass(cls):
        cls.driver = driver_binary()
        cls.cluster = cls.start_shared_cluster(3)

    def setUp(self):
        self.leader = self.cluster.wait_for_leader()
        # A and B are followers: writes and their retries are forwarded.
        self.a, self.b = self.cluster.followers(self.leader)

    def proxy(self, trigger=b"CSET.SEQ", **kwargs):
        p = ReplyDroppingProxy(self.a.client_port, trigger=trigger, **kwargs)
        self.addCleanup(p.close)
        return p

    def run_calls(self, endpoints, *calls, options=(), timeout_ms=20000):
        """Runs the calls (each a list of words) on one Client; their results."""
        argv = [self.driver, "--endpoints", endpoints, "--timeout", str(timeout_ms), *options,
                "--"]
        for i, call in enumerate(calls):
            argv += ([";"] if i else []) + list(call)
        out = subprocess.run(argv, capture_output=True, timeout=120)
        self.assertEqual(out.returncode, 0, f"stdout {out.stdout!r} stderr {out.stderr!r}")
        results = [json.loads(line) for line in out.stdout.decode().splitlines()]
        expected = len([c for c in calls if c[0] != "sleep"])
        self.assertEqual(len(results), expected, out.stdout)
        return results

    def endpoint(self, node_or_port):
        port = node_or_port if isinstance(node_or_port, int) else node_or_port.client_port
        return f"127.0.0.1:{port}"

    def members_everywhere(self, key):
        def agreed():
            views = [n.client().smembers(key) for n in self.cluster.nodes]
            return (views[0],) if all(v == views[0] for v in views) else None
        return until(agreed, 10, what=f"every node agreeing on {key}")[0]

    def assertOk(self, result, value):
        self.assertTrue(result["ok"], result)
        self.assertEqual(result["value"], value, result)

    def assertFailed(self, result, word, unknown):
        self.assertFalse(result["ok"], result)
        self.assertEqual(result["word"], word, result)
        self.assertEqual(result["unknown"], unknown, result)

    # ---- the verbs ----

    def test_add_then_already_present_and_the_other_verbs(self):
        r = self.run_calls(self.cluster.endpoints(),
                           ["add", "lib:k", "m"], ["add", "lib:k", "m"],
                           ["contains", "lib:k", "m"], ["sadd", "lib:k", "m", "n", "o"],
                           ["size", "lib:k"], ["members", "lib:k"],
                           ["rem", "lib:k", "m"], ["rem", "lib:k", "m"],
                           ["contains", "lib:k", "m"], ["size", "lib:k"])
        self.assertOk(r[0], "added")
        self.assertOk(r[1], "already_present")
        self.assertOk(r[2], True)
        self.assertOk(r[3], 2)
        self.assertOk(r[4], 3)
        self.assertEqual(sorted(r[5]["value"]), ["m", "n", "o"])
        self.assertOk(r[6], True)
        self.assertOk(r[7], False)
        self.assertOk(r[8], False)
        self.assertOk(r[9], 2)
        # Every write ran in one session, opened by the first.
        sessions = {x["session"] for x in r}
        self.assertEqual(len(sessions), 1, r)
        self.assertGreater(sessions.pop(), 0)
        self.assertEqual(self.members_everywhere("lib:k"), {b"n", b"o"})

    # ---- lost replies ----

    def test_lost_reply_of_a_session_add_is_retried_and_reports_added(self):
        proxy = self.proxy()
        endpoints = f"{self.endpoint(proxy.port)},{self.endpoint(self.b)}"
        r = self.run_calls(endpoints, ["add", "lib:lost", "m"], ["add", "lib:lost", "m"])
        self.assertTrue(proxy.dropped.is_set(), "the proxy never saw the session write")
        # The first attempt, through A, applied the add; its reply was lost.
        self.assertEqual(proxy.dropped_reply, b"+OK\r\n")
        self.assertOk(r[0], "added")
        self.assertEqual(r[0]["endpoint"], self.endpoint(self.b))
        # A true duplicate (a new request of the same session) is refused.
        self.assertOk(r[1], "already_present")
        self.assertEqual(r[0]["session"], r[1]["session"])
        self.assertEqual(self.members_everywhere("lib:lost"), {b"m"})

    def test_lost_reply_of_a_session_sadd_reports_the_first_count(self):
        self.leader.client().sadd("lib:lost2", "old")
        proxy = self.proxy()
        endpoints = f"{self.endpoint(proxy.port)},{self.endpoint(self.b)}"
        r = self.run_calls(endpoints, ["sadd", "lib:lost2", "old", "x", "y"])
        self.assertEqual(proxy.dropped_reply, b":2\r\n")
        # Applied again it would say 0.
        self.assertOk(r[0], 2)
        self.assertEqual(self.members_everywhere("lib:lost2"), {b"old", b"x", b"y"})

    def test_noquorum_after_a_lost_reply_is_not_reported_as_nothing_changed(self):
        # Found by the breaker: the first send applied the add and its reply
        # was lost; the retry's endpoint answered NOQUORUM ("nothing changed"),
        # and that was returned as is. It must say the outcome is unknown.
        proxy = self.proxy()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self.addCleanup(listener.close)

        def answer_noquorum():
            try:
                while True:
                    conn, _ = listener.accept()
                    with conn:
                        conn.settimeout(10)
                        while conn.recv(65536):
                            conn.sendall(b"-NOQUORUM no quorum within the write timeout; "
                                         b"nothing changed\r\n")
            except OSError:
                pass

        threading.Thread(target=answer_noquorum, daemon=True).start()
        endpoints = f"{self.endpoint(proxy.port)},127.0.0.1:{listener.getsockname()[1]}"
        r = self.run_calls(endpoints, ["add", "lib:nq", "m"], timeout_ms=8000)
        self.assertTrue(proxy.dropped.is_set(), "the proxy never saw the session write")
        self.assertEqual(proxy.dropped_reply, b"+OK\r\n")
        self.assertFailed(r[0], "TIMEOUT", unknown=True)
        self.assertIn("may have been applied", r[0]["message"])
        self.assertEqual(self.members_everywhere("lib:nq"), {b"m"})

    def test_plain_write_whose_reply_was_lost_is_not_resent(self):
        proxy = self.proxy(trigger=b"CSET.ADD")
        endpoints = f"{self.endpoint(proxy.port)},{self.endpoint(self.b)}"
        r = self.run_calls(endpoints, ["add", "lib:plain", "m"],
                           ["write", "CSET.ADD", "lib:plain", "m"],
                           options=["--no-sessions"])
        self.assertTrue(proxy.dropped.is_set(), "the proxy never saw the write")
        self.assertEqual(proxy.dropped_reply, b"+OK\r\n")
        # Re-sent to B it would have answered EXISTS (already_present).
        self.assertFailed(r[0], "UNREACHABLE", unknown=True)
        self.assertIn("outcome is unknown", r[0]["message"])
        self.assertFalse(r[0]["server"])
        self.assertEqual(r[0]["session"], 0)
        # The member was applied once; a new plain write now finds it (the
        # proxy passes replies again).
        self.assertOk(r[1], "-EXISTS member already present")
        self.assertEqual(self.members_everywhere("lib:plain"), {b"m"})

    # ---- failover ----

    def test_failover_past_a_dead_first_endpoint(self):
        dead = free_ports(1)[0]  # nothing listens there
        endpoints = f"{self.endpoint(dead)},{self.endpoint(self.a)},{self.endpoint(self.b)}"
        r = self.run_calls(endpoints, ["add", "lib:fo", "m"], ["contains", "lib:fo", "m"],
                           ["size", "lib:fo"])
        self.assertOk(r[0], "added")
        self.assertEqual(r[0]["endpoint"], self.endpoint(self.a))
        self.assertOk(r[1], True)
        self.assertOk(r[2], 1)

    def test_failover_past_a_silent_first_endpoint(self):
        # A accepts connections (the kernel does) but answers nothing: the
        # first request (CSET.SESSION) gets A's share of the timeout, then
        # goes to B, and the write starts with B, the endpoint that answered.
        # (When A resumes it may still run the CSET.SESSION it read: an
        # unused session, which just expires.)
        self.a.pause()
        self.addCleanup(self.a.resume)
        endpoints = f"{self.endpoint(self.a)},{self.endpoint(self.b)}"
        r = self.run_calls(endpoints, ["add", "lib:silent", "m"], ["add", "lib:silent", "m"],
                           timeout_ms=8000)
        self.assertOk(r[0], "added")
        self.assertEqual(r[0]["endpoint"], self.endpoint(self.b))
        # The next call starts with B, the endpoint that answered.
        self.assertOk(r[1], "already_present")
        self.assertEqual(r[1]["endpoint"], self.endpoint(self.b))
        self.a.resume()
        self.assertEqual(self.members_everywhere("lib:silent"), {b"m"})

    def test_no_endpoint_answers(self):
        dead = free_ports(2)
        r = self.run_calls(",".join(self.endpoint(p) for p in dead), ["add", "lib:none", "m"],
                           ["contains", "lib:none", "m"])
        # Nothing was sent: the outcome is known (not applied).
        self.assertFailed(r[0], "UNREACHABLE", unknown=False)
        self.assertFailed(r[1], "UNREACHABLE", unknown=False)

    # ---- pipelining, raw calls, errors ----

    def test_pipeline_replies_come_in_order(self):
        r = self.run_calls(self.cluster.endpoints(),
                           ["pipeline", "SADD", "lib:p", "a", "b", "/", "SCARD", "lib:p", "/",
                            "SISMEMBER", "lib:p", "a", "/", "SISMEMBER", "lib:p", "z", "/",
                            "CSET.ADD", "lib:p", "a", "/", "CSET.ADD", "lib:p", "c", "/",
                            "SCARD", "lib:p", "/", "NOSUCHCOMMAND"])
        self.assertTrue(r[0]["ok"], r[0])
        replies = r[0]["value"]
        self.assertEqual(replies[:7], [":2", ":2", ":1", ":0", "-EXISTS member already present",
                                       "+OK", ":3"])
        self.assertEqual(len(replies), 8)
        self.assertTrue(replies[7].startswith("-ERR"), replies[7])

    def test_errors_carry_spec_code_words(self):
        big = "x" * (MAX_MEMBER_BYTES + 1)
        r = self.run_calls(self.cluster.endpoints(), ["add", "lib:big", big],
                           ["contains", "lib:big", big], ["read", "NOSUCHCOMMAND"])
        self.assertFailed(r[0], "TOOBIG", unknown=False)
        self.assertTrue(r[0]["server"], r[0])
        self.assertTrue(r[0]["message"].startswith("TOOBIG"), r[0])
        self.assertFailed(r[1], "TOOBIG", unknown=False)
        # Raw calls return error replies as replies.
        self.assertTrue(r[2]["ok"], r[2])
        self.assertTrue(r[2]["value"].startswith("-ERR"), r[2])

    def test_example_program(self):
        path = os.environ.get("CSET_CLIENT_USAGE") or os.path.join(
            os.path.dirname(os.path.dirname(binary("CSET", "the cset CLI"))),
            "examples", "client-usage")
        self.assertTrue(os.access(path, os.X_OK), f"{path}: build the client-usage target")
        out = subprocess.run([path, self.cluster.endpoints(), "lib:example"], capture_output=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, f"stdout {out.stdout!r} stderr {out.stderr!r}")
        self.assertIn(b"a second add: already present", out.stdout)
        self.assertIn(b"SADD -> 2, SCARD -> 3", out.stdout)
        self.assertEqual(self.members_everywhere("lib:example"), {b"bob", b"carol"})

    def test_expired_session_is_replaced_on_a_first_attempt(self):
        r = self.run_calls(self.cluster.endpoints(), ["add", "lib:exp", "a"], ["sleep", "2500"],
                           ["add", "lib:exp", "b"], ["add", "lib:exp", "b"],
                           options=["--session-timeout", "1000"])
        self.assertOk(r[0], "added")
        # The session expired while idle; b's first attempt was refused
        # (SESSIONEXPIRED, nothing applied), so a new session carried it.
        self.assertOk(r[1], "added")
        self.assertNotEqual(r[0]["session"], r[1]["session"])
        self.assertOk(r[2], "already_present")
        self.assertEqual(self.members_everywhere("lib:exp"), {b"a", b"b"})


if __name__ == "__main__":
    unittest.main()
