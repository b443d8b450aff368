# shellcheck shell=bash
# Shared by scripts/cluster and scripts/demo: run a local cluster of csetd
# processes on 127.0.0.1, each in the background, and stop exactly those.
#
# Source it, then set (defaults in brackets):
#   CL_DIR          state directory, node i in $CL_DIR/n<i>/{data,log,pid}
#   CL_SIZE         number of nodes [3]
#   CL_CLIENT_BASE  node i serves clients on port CL_CLIENT_BASE+i [6380]
#   CL_PEER_BASE    ... peers on CL_PEER_BASE+i [7380]
#   CL_ADMIN_BASE   ... HTTP admin on CL_ADMIN_BASE+i [8380]
#   CL_EXTRA_ARGS   array of extra csetd flags [none]
# and call cl_find_binaries (if-missing|build) first: it sets CSETD and CSET.
#
# Binaries: $CSET_BIN_DIR if set (a directory holding csetd and cset), else the
# release preset's build/release/tools, built with `cmake --preset release`
# when missing (or always, with cl_find_binaries build).
#
# A process is ours only if its pid file names it AND its command line holds
# our data directory: a stale pid file never makes us signal a stranger.

: "${CL_SIZE:=3}" "${CL_CLIENT_BASE:=6380}" "${CL_PEER_BASE:=7380}" "${CL_ADMIN_BASE:=8380}"
if ! declare -p CL_EXTRA_ARGS >/dev/null 2>&1; then CL_EXTRA_ARGS=(); fi
CL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

cl_log() { printf '%s\n' "$*" >&2; }

# cl_find_binaries if-missing|build: sets CSETD and CSET; builds them when missing, or
# always when the argument is "build" (an up-to-date build is a no-op).
cl_find_binaries() {
  local mode=$1
  local bin_dir=${CSET_BIN_DIR:-$CL_ROOT/build/release/tools}
  if [[ -z "${CSET_BIN_DIR:-}" ]] &&
       [[ "$mode" == build || ! -x "$bin_dir/csetd" || ! -x "$bin_dir/cset" ]]; then
    cl_log "== building csetd and cset (cmake --preset release, build/release)"
    (cd "$CL_ROOT" && cmake --preset release >/dev/null &&
       cmake --build --preset release --target csetd cset) || {
      cl_log "could not build csetd and cset (see the output above)"
      return 1
    }
  fi
  CSETD=$bin_dir/csetd
  CSET=$bin_dir/cset
  if [[ ! -x "$CSETD" || ! -x "$CSET" ]]; then
    cl_log "no csetd/cset executables in $bin_dir"
    return 1
  fi
}

cl_client_port() { echo $((CL_CLIENT_BASE + $1)); }
cl_peer_port() { echo $((CL_PEER_BASE + $1)); }
cl_admin_port() { echo $((CL_ADMIN_BASE + $1)); }

cl_initial_cluster() {
  local i out=""
  for ((i = 1; i <= CL_SIZE; i++)); do
    out+="${out:+,}$i=127.0.0.1:$(cl_peer_port "$i")"
  done
  echo "$out"
}

cl_endpoints() {
  local i out=""
  for ((i = 1; i <= CL_SIZE; i++)); do
    out+="${out:+,}127.0.0.1:$(cl_client_port "$i")"
  done
  echo "$out"
}

cl_node_dir() { echo "$CL_DIR/n$1"; }

# cl_pid I: the pid of node I if it runs (as ours), else nothing, status 1.
cl_pid() {
  local pid_file pid
  pid_file="$(cl_node_dir "$1")/pid"
  [[ -f "$pid_file" ]] || return 1
  pid=$(<"$pid_file")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  # Ours: csetd with our data directory on its command line.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(cl_node_dir "$1")/data" || return 1
  # A zombie (killed, not yet reaped) does not run.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  echo "$pid"
}

# cl_start_node I: starts node I in the background (log appended to its log).
cl_start_node() {
  local i=$1 dir
  dir=$(cl_node_dir "$i")
  if cl_pid "$i" >/dev/null; then
    cl_log "node $i already runs (pid $(cl_pid "$i"))"
    return 0
  fi
  mkdir -p "$dir/data"
  echo "--- $(date '+%F %T') start" >>"$dir/log"
  # Ignore SIGHUP so a closed terminal does not take the cluster down.
  (
    trap '' HUP
    exec "$CSETD" --id "$i" --data-dir "$dir/data" \
      --peer-listen "127.0.0.1:$(cl_peer_port "$i")" \
      --client-listen "127.0.0.1:$(cl_client_port "$i")" \
      --admin-listen "127.0.0.1:$(cl_admin_port "$i")" \
      --initial-cluster "$(cl_initial_cluster)" "${CL_EXTRA_ARGS[@]}"
  ) >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  # Not a job of this shell: no "Killed" notices when we kill it on purpose.
  disown $!
  # Catch a node that exits at once (bad flags, port in use, bad data dir).
  sleep 0.2
  if ! cl_pid "$i" >/dev/null; then
    cl_log "node $i exited at start; the end of $dir/log:"
    tail -n 20 "$dir/log" >&2
    return 1
  fi
}

# cl_wait_gone PID SECONDS: status 0 once PID is gone (or a zombie).
cl_wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    [[ -e /proc/$pid ]] || return 0
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
    sleep 0.1
  done
  return 1
}

# cl_kill_node I: SIGKILL, as a crash would; waits until it is gone.
cl_kill_node() {
  local pid
  pid=$(cl_pid "$1") || return 0
  kill -KILL "$pid" 2>/dev/null || true
  cl_wait_gone "$pid" 10 || cl_log "node $1 (pid $pid) did not die after SIGKILL"
  rm -f "$(cl_node_dir "$1")/pid"
}

# cl_stop_nodes I...: SIGTERM to each, wait up to 15 s, then SIGKILL.
# Status 1 if any needed SIGKILL.
cl_stop_nodes() {
  local i pid pids=() nodes=() rc=0 k
  for i in "$@"; do
    if pid=$(cl_pid "$i"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      nodes+=("$i")
    fi
  done
  for k in "${!pids[@]}"; do
    if ! cl_wait_gone "${pids[$k]}" 15; then
      cl_log "node ${nodes[$k]} (pid ${pids[$k]}) ignored SIGTERM for 15 s: SIGKILL"
      kill -KILL "${pids[$k]}" 2>/dev/null || true
      cl_wait_gone "${pids[$k]}" 10 || true
      rc=1
    fi
    rm -f "$(cl_node_dir "${nodes[$k]}")/pid"
  done
  return "$rc"
}

# The node numbers that have a directory under CL_DIR.
cl_known_nodes() {
  local d
  for d in "$CL_DIR"/n*; do
    [[ -d "$d" && "${d##*/n}" =~ ^[0-9]+$ ]] && echo "${d##*/n}"
  done | sort -n
}

# cl_info I FIELD: FIELD of node I's `INFO raft`, empty if it does not answer.
cl_info() {
  timeout 2 redis-cli -h 127.0.0.1 -p "$(cl_client_port "$1")" INFO raft 2>/dev/null |
    tr -d '\r' | sed -n "s/^$2://p"
}

# cl_leader: the node (of those running) that says it is leader.
cl_leader() {
  local i
  for ((i = 1; i <= CL_SIZE; i++)); do
    cl_pid "$i" >/dev/null || continue
    if [[ "$(cl_info "$i" role)" == leader ]]; then
      echo "$i"
      return 0
    fi
  done
  return 1
}

# cl_wait_leader SECONDS: prints the leader's node number once one leads and
# every running node names it; status 1 after SECONDS without.
cl_wait_leader() {
  local deadline=$((SECONDS + $1)) leader i agreed
  while ((SECONDS < deadline)); do
    if leader=$(cl_leader); then
      agreed=1
      for ((i = 1; i <= CL_SIZE; i++)); do
        cl_pid "$i" >/dev/null || continue
        [[ "$(cl_info "$i" role)" == removed ]] && continue  # no longer a member
        [[ "$(cl_info "$i" leader_id)" == "$leader" ]] || agreed=0
      done
      if ((agreed)); then
        echo "$leader"
        return 0
      fi
    fi
    sleep 0.2
  done
  return 1
}
