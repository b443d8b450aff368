"""A long chaos campaign: many chaos.py runs one after another, resumable.

    ./scripts/chaos-campaign [--dir DIR] [--runs 20] [--time 300] [--clients 10]
                             [--nemesis LIST] [--first-seed S] [--from-run I] [--status]

Run i (1-based) uses 3 nodes when i is odd and 5 when it is even, seed
first_seed + i, and every nemesis in LIST at once. Each run's output goes to
DIR/run-NN/output.txt and its outcome to DIR/run-NN/result.json; a failed run
also keeps chaos.py's folder (history, schedule, node logs, checker output,
rerun command) in DIR/run-NN/files. Interrupt it at any time (Ctrl-C, kill,
a reboot) and run the same command again: finished runs are skipped, an
interrupted one starts over. `--runs` may be raised later to extend a finished
campaign, and `--nemesis` changed for the runs still to come (each result
records what it ran with). Exit 0 when every one of the --runs runs has a
result and all of them passed; the last line is

    campaign: R/N runs passed, OPS ops (ok A, failed B, unknown C), X anomalies

The binaries are $CSETD and $CSET_SIM as for scripts/chaos (docs/chaos.md).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAST_LINE = re.compile(r"^chaos: (\d+) ops \(ok (\d+), failed (\d+), unknown (\d+)\), "
                       r"(.+), (\d+) lost")
DEFAULT_NEMESES = "kill,pause,partition,transfer,membership"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="chaos-campaign", description=__doc__.split("\n")[0])
    p.add_argument("--dir", default=os.path.join(ROOT, ".chaos", "campaign"))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--time", type=float, default=300.0, help="seconds of faults per run")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--nemesis", default=DEFAULT_NEMESES)
    p.add_argument("--first-seed", type=int, default=7000)
    p.add_argument("--from-run", type=int, default=1,
                   help="run only runs FROM_RUN..RUNS (to split a campaign over two "
                   "processes with two --dir; the summary still lists runs 1..RUNS)")
    p.add_argument("--status", action="store_true", help="print the summary and exit")
    args = p.parse_args(argv)
    if args.runs < 1 or args.time <= 0 or args.clients < 1:
        p.error("--runs, --time and --clients must be positive")
    return args


def run_dir(args, i):
    return os.path.join(args.dir, f"run-{i:02d}")


def load_result(args, i):
    try:
        with open(os.path.join(run_dir(args, i), "result.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def git_commit():
    p = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def one_run(args, i):
    d = run_dir(args, i)
    if os.path.exists(d):
        shutil.rmtree(d)  # an interrupted run starts over
    os.makedirs(d)
    nodes = 3 if i % 2 == 1 else 5
    seed = args.first_seed + i
    cmd = [os.path.join(ROOT, "scripts", "chaos"), "--nodes", str(nodes), "--time",
           f"{args.time:g}", "--clients", str(args.clients), "--nemesis", args.nemesis,
           "--seed", str(seed), "--out", os.path.join(d, "files")]
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"campaign: run {i}/{args.runs}: {' '.join(cmd[1:])}", flush=True)
    with open(os.path.join(d, "output.txt"), "w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    with open(os.path.join(d, "output.txt")) as f:
        lines = f.read().splitlines()
    last = lines[-1] if lines else ""
    m = LAST_LINE.match(last)
    result = {
        "run": i, "nodes": nodes, "seed": seed, "time": args.time, "clients": args.clients,
        "nemesis": args.nemesis, "exit": rc, "passed": rc == 0 and m is not None,
        "last_line": last, "commit": git_commit(), "csetd": os.environ.get("CSETD", ""),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.datetime.now(datetime.timezone.utc) - started)
                         .total_seconds()),
        "command": " ".join(cmd),
    }
    if m:
        result.update(ops=int(m[1]), ok=int(m[2]), failed=int(m[3]), unknown=int(m[4]),
                      verdict=m[5], lost=int(m[6]))
    with open(os.path.join(d, "result.json.tmp"), "w") as f:
        json.dump(result, f, indent=1)
    os.replace(os.path.join(d, "result.json.tmp"), os.path.join(d, "result.json"))
    print(f"campaign: run {i}: {'passed' if result['passed'] else 'FAILED'}: {last}", flush=True)
    return result


def summary(args):
    results = [load_result(args, i) for i in range(1, args.runs + 1)]
    done = [r for r in results if r]
    passed = [r for r in done if r["passed"]]
    ops = sum(r.get("ops", 0) for r in done)
    ok = sum(r.get("ok", 0) for r in done)
    failed = sum(r.get("failed", 0) for r in done)
    unknown = sum(r.get("unknown", 0) for r in done)
    anomalies = len(done) - len(passed)
    print("| run | nodes | seed | nemesis | ops | ok | failed | unknown | result |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for r in done:
        print(f"| {r['run']} | {r['nodes']} | {r['seed']} | {r['nemesis']} | {r.get('ops', '-')} "
              f"| {r.get('ok', '-')} | {r.get('failed', '-')} | {r.get('unknown', '-')} "
              f"| {'pass' if r['passed'] else 'FAIL: ' + r['last_line']} |")
    covered = sorted({k for r in done for k in r["nemesis"].split(",") if k})
    print(f"campaign: nemeses covered: {','.join(covered)}; nodes: "
          f"{sorted({r['nodes'] for r in done})}; {sum(r['seconds'] for r in done)} s in all")
    print(f"campaign: {len(passed)}/{args.runs} runs passed, {ops} ops (ok {ok}, failed {failed}, "
          f"unknown {unknown}), {anomalies} anomalies")
    return 0 if len(passed) == args.runs else 1


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    if not args.status:
        for i in range(args.from_run, args.runs + 1):
            if load_result(args, i) is None:
                one_run(args, i)
    return summary(args)


if __name__ == "__main__":
    sys.exit(main())
