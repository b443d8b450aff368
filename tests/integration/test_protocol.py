"""Every SPEC.md client-protocol command and error code (but membership and
the fault-driven NOQUORUM/TIMEOUT, see test_faults.py), against a real
3-node cluster, through redis-py and a byte-exact raw RESP client.

Requests go to every node in turn: any node accepts every command.
"""

import os
import unittest

import redis

from harness import ClusterTestCase, Map, RespError, Status

MAX_REPLY_MEMBERS = 100
MAX_KEY_BYTES = 4096          # SPEC.md defaults
MAX_MEMBER_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 1536 * 1024


class ProtocolTest(ClusterTestCase):
    """One shared cluster; each test uses its own keys."""

    CTEST_TIMEOUT = 180

    @classmethod
    def setUpClass(cls):
        cls.cluster = cls.start_shared_cluster(
            3, extra_args=["--max-reply-members", str(MAX_REPLY_MEMBERS)])
        cls.nodes = cls.cluster.nodes

    def clients(self):
        return [n.client() for n in self.nodes]

    # ---- set commands ----------------------------------------------------------

    def test_set_commands_with_redis_replies(self):
        r1, r2, r3 = self.clients()
        self.assertEqual(r1.sadd("p:set", "a", "b", "c"), 3)
        self.assertEqual(r2.sadd("p:set", "a", "d"), 1)
        self.assertEqual(r3.sismember("p:set", "a"), 1)
        self.assertEqual(r3.sismember("p:set", "x"), 0)
        self.assertEqual(r1.execute_command("SMISMEMBER", "p:set", "a", "x", "d"), [1, 0, 1])
        self.assertEqual(r2.srem("p:set", "a", "x"), 1)
        self.assertEqual(r3.scard("p:set"), 3)
        self.assertEqual(r1.smembers("p:set"), {b"b", b"c", b"d"})
        self.assertEqual(r2.srem("p:set", "b", "c", "d"), 3)
        self.assertEqual(r3.exists("p:set"), 0, "an emptied set is no key")

    def test_missing_key_reads(self):
        r = self.nodes[1].client()
        self.assertEqual(r.scard("p:none"), 0)
        self.assertEqual(r.smembers("p:none"), set())
        self.assertEqual(r.sismember("p:none", "m"), 0)
        self.assertEqual(r.execute_command("SMISMEMBER", "p:none", "a", "b"), [0, 0])
        self.assertEqual(r.srem("p:none", "m"), 0)
        self.assertEqual(r.sscan("p:none", 0), (0, []))

    def test_write_on_each_node_read_on_every_node(self):
        for writer in self.nodes:
            member = f"from-{writer.id}"
            self.assertEqual(writer.client().sadd("p:every", member), 1)
            for reader in self.nodes:
                self.assertEqual(reader.client().sismember("p:every", member), 1,
                                 f"written on node {writer.id}, read on node {reader.id}")

    def test_pipelined_commands_take_effect_in_order(self):
        for node in self.nodes:
            with node.raw() as c:
                replies = c.pipeline([("SADD", "p:order", "m"), ("SISMEMBER", "p:order", "m"),
                                      ("SREM", "p:order", "m"), ("SISMEMBER", "p:order", "m"),
                                      ("SADD", "p:order", "m", "n"), ("SCARD", "p:order"),
                                      ("DEL", "p:order"), ("SCARD", "p:order")])
            self.assertEqual(replies, [1, 1, 1, 0, 2, 2, 1, 0], f"node {node.id}")

    def test_multi_member_sadd_is_all_or_nothing(self):
        r = self.nodes[2].client()
        with self.assertRaises(redis.ResponseError) as cm:
            r.sadd("p:atomic", "ok-1", "x" * (MAX_MEMBER_BYTES + 1), "ok-2")
        self.assertTrue(str(cm.exception).startswith("TOOBIG"), str(cm.exception))
        for node in self.nodes:
            self.assertEqual(node.client().scard("p:atomic"), 0, f"node {node.id}")

    def test_del_and_exists(self):
        r1, r2, r3 = self.clients()
        r1.sadd("p:k1", "a")
        r2.sadd("p:k2", "a", "b")
        self.assertEqual(r3.exists("p:k1", "p:k2", "p:k3", "p:k1"), 3)
        self.assertEqual(r1.delete("p:k1", "p:k3"), 1)
        self.assertEqual(r2.exists("p:k1"), 0)
        self.assertEqual(r3.smembers("p:k1"), set())
        self.assertEqual(r3.delete("p:k2"), 1)

    def test_sscan_continues_on_another_node(self):
        members = {f"m{i:03d}".encode() for i in range(250)}
        self.nodes[0].client().sadd("p:scan", *members)
        seen = []
        cursor = 0
        hops = 0
        while True:
            node = self.nodes[hops % 3]  # every page from the next node
            cursor, page = node.client().sscan("p:scan", cursor, count=20)
            seen += page
            hops += 1
            if cursor == 0:
                break
            self.assertLess(hops, 1000, "SSCAN never ends")
        self.assertEqual(set(seen), members)
        self.assertGreater(hops, 2, "COUNT 20 over 250 members took one page")
        matched = set()
        for member in self.nodes[1].client().sscan_iter("p:scan", match="m1*", count=30):
            matched.add(member)
        self.assertEqual(matched, {m for m in members if m.startswith(b"m1")})

    def test_scan_finds_every_key(self):
        keys = {f"p:scan-key:{i}".encode() for i in range(40)}
        r = self.nodes[0].client()
        for key in keys:
            r.sadd(key, "x")
        found = set()
        cursor = 0
        hops = 0
        while True:
            cursor, page = self.nodes[hops % 3].client().scan(cursor, match="p:scan-key:*",
                                                              count=7)
            found.update(page)
            hops += 1
            if cursor == 0:
                break
            self.assertLess(hops, 10000, "SCAN never ends")
        self.assertEqual(found, keys)

    # ---- strict commands and cluster views ------------------------------------------

    def test_cset_add_and_rem(self):
        with self.nodes[0].raw() as c1, self.nodes[1].raw() as c2:
            self.assertEqual(c1.command("CSET.ADD", "p:strict", "m"), "OK")
            reply = c2.command("CSET.ADD", "p:strict", "m")
            self.assertErrorWord(reply, "EXISTS", "CSET.ADD of a present member")
            self.assertEqual(c2.command("SISMEMBER", "p:strict", "m"), 1)
            self.assertEqual(c2.command("CSET.REM", "p:strict", "m"), "OK")
            self.assertEqual(c1.command("CSET.REM", "p:strict", "m"), "OK",
                             "CSET.REM of an absent member is not an error")
            self.assertEqual(c1.command("SISMEMBER", "p:strict", "m"), 0)
            self.assertEqual(c1.command("CSET.ADD", "p:strict", "m"), "OK")

    def test_cset_nodes_lists_every_node(self):
        for node in self.nodes:
            with node.raw() as c:
                reply = c.command("CSET.NODES")
            self.assertIsInstance(reply, list, f"CSET.NODES: {reply!r}")
            self.assertEqual(len(reply), 3, f"CSET.NODES: {reply!r}")
            texts = [flatten(entry) for entry in reply]
            for n in self.nodes:
                entry = [t for t in texts if f"127.0.0.1:{n.client_port}" in t]
                self.assertEqual(len(entry), 1, f"node {n.id}'s client address in {texts}")
                self.assertIn(f"127.0.0.1:{n.peer_port}", entry[0])
                self.assertIn("voter", entry[0])
            leaders = [t for t in texts if "leader" in t.split()]
            self.assertEqual(len(leaders), 1, f"one leader in {texts}")

    def test_cset_status(self):
        for node in self.nodes:
            with node.raw() as c:
                reply = c.command("CSET.STATUS")
            self.assertNotIsInstance(reply, RespError)
            self.assertTrue(reply, "CSET.STATUS answered nothing")

    # ---- connection commands ------------------------------------------------------

    def test_ping_and_echo(self):
        with self.nodes[1].raw() as c:
            self.assertEqual(c.command("PING"), "PONG")
            self.assertIsInstance(c.command("PING"), Status)
            self.assertEqual(c.command("PING", "hello"), b"hello")
            payload = b"\x00\r\n\xff binary"
            self.assertEqual(c.command("ECHO", payload), payload)
        self.assertTrue(self.nodes[2].client().ping())

    def test_hello_2_and_3(self):
        with self.nodes[0].raw() as c:
            reply = c.command("HELLO", "2")
            self.assertIsInstance(reply, list, repr(reply))
            fields = dict(zip(reply[::2], reply[1::2]))
            self.assertEqual(fields.get(b"proto"), 2, repr(reply))
            self.assertIn(b"version", fields)
            reply = c.command("HELLO", "3")
            self.assertIsInstance(reply, Map, repr(reply))
            self.assertEqual(dict(reply).get(b"proto"), 3)
            self.assertEqual(dict(reply).get(b"mode"), b"standalone", "as a Redis node says")
            self.assertErrorWord(c.command("HELLO", "9"), "NOPROTO")
            # No --requirepass: the default user has no password, so any is taken.
            self.assertEqual(dict(c.command("HELLO", "3", "AUTH", "default", "x")).get(b"proto"), 3)
            self.assertEqual(c.command("AUTH", "default", "x"), "OK")
            self.assertErrorWord(c.command("HELLO", "3", "AUTH", "someone", "x"), "WRONGPASS")
            self.assertEqual(c.command("SADD", "p:hello", "a", "b"), 2)
            self.assertEqual(c.command("SISMEMBER", "p:hello", "a"), 1)
            self.assertEqual(sorted(c.command("SMEMBERS", "p:hello")), [b"a", b"b"])
            self.assertEqual(c.command("SMISMEMBER", "p:hello", "a", "z"), [1, 0])
            reply = c.command("NOSUCHCOMMAND")
            self.assertErrorWord(reply, "ERR")
            reply = c.command("HELLO", "2")
            self.assertIsInstance(reply, list)

    def test_select_0(self):
        with self.nodes[0].raw() as c:
            self.assertEqual(c.command("SELECT", "0"), "OK")
            self.assertErrorWord(c.command("SELECT", "1"), "ERR", "SELECT 1")
            self.assertEqual(c.command("PING"), "PONG")
        self.assertTrue(self.nodes[0].client(db=0).ping())

    def test_client_subcommands(self):
        with self.nodes[2].raw() as c, self.nodes[2].raw() as other:
            self.assertIsNone(c.command("CLIENT", "GETNAME"))
            self.assertEqual(c.command("CLIENT", "SETNAME", "integ-client"), "OK")
            self.assertEqual(c.command("CLIENT", "GETNAME"), b"integ-client")
            self.assertErrorWord(c.command("CLIENT", "SETNAME", "has space"), "ERR")
            self.assertEqual(c.command("CLIENT", "SETINFO", "lib-name", "integ"), "OK")
            self.assertEqual(c.command("CLIENT", "SETINFO", "lib-ver", "1.0"), "OK")
            id1 = c.command("CLIENT", "ID")
            id2 = other.command("CLIENT", "ID")
            self.assertIsInstance(id1, int)
            self.assertGreater(id1, 0)
            self.assertNotEqual(id1, id2)
        r = self.nodes[1].client(client_name="named-by-redis-py")
        self.assertEqual(r.client_getname(), "named-by-redis-py")

    def test_command(self):
        with self.nodes[0].raw() as c:
            count = c.command("COMMAND", "COUNT")
            self.assertIsInstance(count, int)
            self.assertGreaterEqual(count, 20)
            table = c.command("COMMAND")
            self.assertIsInstance(table, list)
            names = {entry[0] for entry in table}
            for name in (b"sadd", b"srem", b"sismember", b"smembers", b"ping", b"info"):
                self.assertIn(name, names)
            info = c.command("COMMAND", "INFO", "sadd")
            self.assertEqual(info[0][0], b"sadd")
            self.assertEqual(info[0][1], -3, "SADD's arity")
            docs = c.command("COMMAND", "DOCS", "sadd")
            self.assertNotIsInstance(docs, RespError)

    def test_info_sections(self):
        leaders = []
        for node in self.nodes:
            with node.raw() as c:
                everything = c.command("INFO").decode()
                server = c.command("INFO", "server").decode()
            self.assertIn("# Raft", everything)
            self.assertIn("redis_version:", everything)
            self.assertIn("redis_version:", server)
            self.assertIn("redis_mode:standalone", server)
            memory = node.info("memory")
            self.assertGreater(int(memory["used_memory_rss"]), 1 << 20, memory)
            # The allocator the build links (CMake's CSET_JEMALLOC), named as Redis does.
            expected = os.environ.get("CSET_EXPECT_ALLOCATOR", "libc")
            if expected == "jemalloc":
                self.assertRegex(memory["mem_allocator"], r"^jemalloc-\d+\.\d+\.\d+$", memory)
            else:
                self.assertEqual(memory["mem_allocator"], expected, memory)
            for field in ("rocksdb_memtable_bytes", "rocksdb_block_cache_bytes",
                          "rocksdb_table_readers_bytes"):
                self.assertGreaterEqual(int(memory[field]), 0, memory)
            # The memtables hold at least this node's applied writes' log entries.
            self.assertGreater(int(memory["rocksdb_memtable_bytes"]), 0, memory)
            raft = node.info("raft")
            for field in ("node_id", "role", "term", "leader_id", "commit_index", "applied_index",
                          "last_log_index", "voters", "learners", "quorum", "tiebreaker_id"):
                self.assertIn(field, raft, f"INFO raft of node {node.id}")
            self.assertEqual(raft["node_id"], str(node.id))
            self.assertIn(raft["role"], ("leader", "follower"))
            self.assertEqual(raft["quorum"], "tiebreak", "the default quorum mode")
            self.assertEqual(raft["tiebreaker_id"], "1", "at bootstrap: the lowest-id voter")
            self.assertIn(raft["voters"], ("3", "1,2,3"))
            self.assertIn(raft["learners"], ("0", ""))
            self.assertLessEqual(int(raft["applied_index"]), int(raft["commit_index"]))
            self.assertLessEqual(int(raft["commit_index"]), int(raft["last_log_index"]))
            self.assertGreaterEqual(int(raft["term"]), 1)
            if raft["role"] == "leader":
                leaders.append(node.id)
        self.assertEqual(len(leaders), 1)
        for node in self.nodes:
            self.assertEqual(node.info("raft")["leader_id"], str(leaders[0]))
        parsed = self.nodes[0].client().info("server")
        self.assertIn("redis_version", parsed)

    def test_config_get(self):
        r = self.nodes[0].client()
        self.assertEqual(r.execute_command("CONFIG", "GET", "no-such-parameter-xyz"), [])
        for name in ("save", "appendonly", "maxmemory"):
            reply = r.execute_command("CONFIG", "GET", name)
            self.assertIsInstance(reply, list)
            self.assertEqual(len(reply) % 2, 0, f"CONFIG GET {name}: {reply!r}")

    def test_quit(self):
        with self.nodes[1].raw() as c:
            self.assertEqual(c.command("QUIT"), "OK")
            self.assertTrue(c.closed_by_server(), "the connection stays open after QUIT")

    # ---- errors -------------------------------------------------------------------

    def test_unknown_command_and_arity_wording(self):
        with self.nodes[0].raw() as c:
            reply = c.command("FOO", "a", "b")
            self.assertErrorWord(reply, "ERR")
            self.assertTrue(reply.startswith("ERR unknown command 'FOO', with args beginning with:"),
                            reply)
            reply = c.command("SADD", "p:arity")
            self.assertEqual(reply, "ERR wrong number of arguments for 'sadd' command")
            reply = c.command("SISMEMBER", "p:arity")
            self.assertEqual(reply, "ERR wrong number of arguments for 'sismember' command")
            reply = c.command("SCARD")
            self.assertEqual(reply, "ERR wrong number of arguments for 'scard' command")
            for command in (("MULTI",), ("EXEC",), ("GET", "k"), ("SET", "k", "v"),
                            ("HSET", "h", "f", "v"), ("LPUSH", "l", "x"), ("WATCH", "k")):
                reply = c.command(*command)
                self.assertErrorWord(reply, "ERR", str(command))
                self.assertIn("unknown command", reply, str(command))
            self.assertEqual(c.command("PING"), "PONG", "the connection still works")

    def test_redis_py_transaction_is_refused(self):
        # SPEC.md: MULTI/EXEC answer "ERR unknown command". So a redis-py
        # transaction fails loudly, but what it sent between MULTI and EXEC
        # ran as plain commands: nothing is queued.
        r = self.nodes[1].client()
        pipe = r.pipeline(transaction=True)
        pipe.sadd("p:tx", "a")
        with self.assertRaises(redis.ResponseError) as cm:
            pipe.execute()
        self.assertIn("unknown command", str(cm.exception))
        self.assertEqual(r.scard("p:tx"), 1)

    def test_toobig_key_and_member_limits(self):
        r = self.nodes[0].client()
        key_at = "k" * MAX_KEY_BYTES
        self.assertEqual(r.sadd(key_at, "m"), 1, "a key at the limit")
        member_at = b"m" * MAX_MEMBER_BYTES
        self.assertEqual(r.sadd("p:limits", member_at), 1, "a member at the limit")
        for what, args in (("key", ("k" * (MAX_KEY_BYTES + 1), "m")),
                           ("member", ("p:limits", b"m" * (MAX_MEMBER_BYTES + 1)))):
            with self.nodes[1].raw() as c:
                reply = c.command_or_close("SADD", *args)
                self.assertErrorWord(reply, "TOOBIG", f"a {what} over the limit")
            with self.nodes[2].raw() as c:
                reply = c.command_or_close("SISMEMBER", *args)
                self.assertErrorWord(reply, "TOOBIG", f"SISMEMBER of a {what} over the limit")
        for node in self.nodes:
            r = node.client()
            self.assertEqual(r.smembers("p:limits"), {member_at}, f"node {node.id}")
            self.assertEqual(r.exists("k" * MAX_KEY_BYTES), 1)

    def test_toobig_request_limit(self):
        member = 60 * 1024
        under = [f"{i:04d}".encode() + b"u" * (member - 4) for i in range(20)]     # 1.2 MiB
        over = [f"{i:04d}".encode() + b"o" * (member - 4) for i in range(30)]      # 1.8 MiB
        self.assertEqual(self.nodes[0].client().sadd("p:request", *under), 20)
        with self.nodes[1].raw() as c:
            reply = c.command_or_close("SADD", "p:request-over", *over)
            if not isinstance(reply, ConnectionError):  # closed: cannot resync, allowed
                self.assertErrorWord(reply, "TOOBIG", "a 1.8 MiB request")
        for node in self.nodes:
            self.assertEqual(node.client().scard("p:request-over"), 0)
            self.assertEqual(node.client().scard("p:request"), 20)

    def test_smembers_over_max_reply_members(self):
        r = self.nodes[0].client()
        r.sadd("p:reply-at", *[f"m{i}" for i in range(MAX_REPLY_MEMBERS)])
        r.sadd("p:reply-over", *[f"m{i}" for i in range(MAX_REPLY_MEMBERS + 1)])
        self.assertEqual(len(self.nodes[1].client().smembers("p:reply-at")), MAX_REPLY_MEMBERS)
        with self.nodes[2].raw() as c:
            reply = c.command("SMEMBERS", "p:reply-over")
            self.assertErrorWord(reply, "TOOBIG", "SMEMBERS over --max-reply-members")
            self.assertIn("SSCAN", reply, "the error points to SSCAN")
            self.assertEqual(c.command("SCARD", "p:reply-over"), MAX_REPLY_MEMBERS + 1)
        members = set(self.nodes[2].client().sscan_iter("p:reply-over", count=50))
        self.assertEqual(len(members), MAX_REPLY_MEMBERS + 1)


class AuthTest(ClusterTestCase):
    """--requirepass on a one-node cluster: AUTH, HELLO AUTH, NOAUTH, WRONGPASS."""

    CTEST_TIMEOUT = 120
    PASSWORD = "s3cret-pass"

    @classmethod
    def setUpClass(cls):
        cls.cluster = cls.start_shared_cluster(1, password=cls.PASSWORD)
        cls.node = cls.cluster.nodes[0]

    def test_noauth_before_auth(self):
        with self.node.raw(auth=False) as c:
            self.assertErrorWord(c.command("SADD", "a:k", "m"), "NOAUTH")
            self.assertErrorWord(c.command("SISMEMBER", "a:k", "m"), "NOAUTH")
            self.assertErrorWord(c.command("SMEMBERS", "a:k"), "NOAUTH")
        self.assertEqual(self.node.client().scard("a:k"), 0)

    def test_wrongpass(self):
        with self.node.raw(auth=False) as c:
            self.assertErrorWord(c.command("AUTH", "wrong"), "WRONGPASS")
            self.assertErrorWord(c.command("AUTH", "default", "wrong"), "WRONGPASS")
            self.assertErrorWord(c.command("HELLO", "2", "AUTH", "default", "wrong"), "WRONGPASS")
            self.assertErrorWord(c.command("SADD", "a:k", "m"), "NOAUTH")

    def test_auth_then_commands(self):
        with self.node.raw(auth=False) as c:
            self.assertEqual(c.command("AUTH", self.PASSWORD), "OK")
            self.assertEqual(c.command("SADD", "a:ok", "m"), 1)
        with self.node.raw(auth=False) as c:
            self.assertEqual(c.command("AUTH", "default", self.PASSWORD), "OK")
            self.assertEqual(c.command("SISMEMBER", "a:ok", "m"), 1)
        with self.node.raw(auth=False) as c:
            reply = c.command("HELLO", "3", "AUTH", "default", self.PASSWORD)
            self.assertIsInstance(reply, Map, repr(reply))
            self.assertEqual(c.command("SISMEMBER", "a:ok", "m"), 1)

    def test_redis_py_password(self):
        self.assertTrue(self.node.client(password=self.PASSWORD).ping())
        with self.assertRaises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=self.node.client_port, socket_timeout=5).sadd(
                "a:k", "m")
        # redis-py 4.3 maps NOAUTH to AuthenticationError but not WRONGPASS.
        with self.assertRaises((redis.AuthenticationError, redis.ResponseError)) as cm:
            self.node.client(password="wrong").ping()
        self.assertIn("WRONGPASS", str(cm.exception))


def flatten(entry):
    """A CSET.NODES entry as one space-separated lower-case string."""
    if isinstance(entry, (list, tuple)):
        return " ".join(flatten(e) for e in entry)
    if isinstance(entry, bytes):
        return entry.decode("utf-8", "replace").lower()
    return str(entry).lower()


if __name__ == "__main__":
    unittest.main()
