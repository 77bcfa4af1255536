#!/usr/bin/env bash
# scripts/real-ollama.sh — run a REAL Ollama server for ollamactl's end-to-end tests.
#
#   bash scripts/real-ollama.sh start          # install what is missing, start, print the env
#   . "$(bash scripts/real-ollama.sh path)"/env  # or: eval "$(bash scripts/real-ollama.sh env)"
#   bash scripts/real-ollama.sh status         # exit 0 if the server answers
#   bash scripts/real-ollama.sh env            # print the env lines (exit 1 if not running)
#   bash scripts/real-ollama.sh stop [--clean] # stop what start started; --clean drops the state dir
#
# What "start" brings up, all bound to 127.0.0.1 only:
#   * ollama serve — the real Go server (0.9.3 by default), CPU-only. It comes from the
#     PyPI wheel bigdl-core-cpp (Intel ipex-llm), whose `ollama-lib` file is a genuine
#     Go build of Ollama. Its Intel-GPU (SYCL) backend library aborts on a machine
#     without an Intel GPU, so it is replaced by a stub with zero devices
#     (real-ollama/sycl_stub.c, built with gcc) and Ollama falls back to its CPU backend.
#   * a local OCI registry (Debian's docker-registry, distribution 2.8) plus a
#     Range-capable blob file server (real-ollama/blob_server.py): Ollama insists on a
#     307 redirect for blob downloads, so the registry's `redirect` middleware sends blob
#     reads to the file server under another host name (localhost vs 127.0.0.1).
#   * a model "tiny" (random ~600 KB llama GGUF written by real-ollama/make_tiny_gguf.py),
#     also pushed to the local registry as 127.0.0.1:<regport>/library/tiny:latest so
#     that pull tests have something to pull (with insecure: true). Its layers are the
#     ones "tiny" has, so pulling it only fetches the manifest; a second model
#     library/tiny-fresh:latest (other random weights) is pushed too, and is not kept
#     locally: pulling it really downloads its 600 KB layer through the redirect.
#
# Env knobs (all optional):
#   OLLAMACTL_REAL_HOME           work dir: venv, binaries, tiny.gguf  (~/.cache/ollamactl-real)
#   OLLAMACTL_REAL_STATE          throwaway state: models, logs, pids, env ($OLLAMACTL_REAL_HOME/state)
#   OLLAMACTL_REAL_FLAVOR         server version: 0.9.3 (default) or 0.5.4 (old /api/create body)
#   OLLAMACTL_REAL_PORT           ollama port (11534 — not 11434, to leave a normal ollama alone)
#   OLLAMACTL_REAL_REGISTRY_PORT  registry port (11535)
#   OLLAMACTL_REAL_BLOB_PORT      blob file server port (11536)
#   OLLAMACTL_REAL_TIMEOUT        seconds to wait for each service to answer (60)
#   NO_REGISTRY=1                 skip registry + blob server (no pull/push tests)
#   PYTHON                        interpreter for the venv (python3)
#
# Env lines written to $STATE/env (and printed by start / env):
#   OLLAMA_HOST, OLLAMACTL_REAL_HOST  http://127.0.0.1:<port>
#   OLLAMACTL_REAL_MODEL              tiny
#   OLLAMACTL_REAL_REMOTE_MODEL       127.0.0.1:<regport>/library/tiny:latest (not with NO_REGISTRY=1)
#   OLLAMACTL_REAL_FRESH_MODEL        127.0.0.1:<regport>/library/tiny-fresh:latest (idem)
#   OLLAMACTL_REAL_REGISTRY           127.0.0.1:<regport>                     (idem)
#   OLLAMACTL_REAL_BIN                the Go `ollama` CLI (a wrapper that sets LD_LIBRARY_PATH)
#   OLLAMACTL_REAL_GGUF               the tiny model file, for create tests
#   OLLAMACTL_REAL_VERSION            the server's version string
#   OLLAMACTL_REAL_STATE              the state dir (logs: ollama.log, registry.log, blobs.log)
#
# Needs: bash, curl, gcc, python3 with venv; reaches only PyPI (pip) and Debian (apt).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HELPERS=$HERE/real-ollama

WORK=${OLLAMACTL_REAL_HOME:-${HOME:?HOME is not set}/.cache/ollamactl-real}
STATE=${OLLAMACTL_REAL_STATE:-$WORK/state}
FLAVOR=${OLLAMACTL_REAL_FLAVOR:-0.9.3}
PORT=${OLLAMACTL_REAL_PORT:-11534}
REG_PORT=${OLLAMACTL_REAL_REGISTRY_PORT:-11535}
BLOB_PORT=${OLLAMACTL_REAL_BLOB_PORT:-11536}
TIMEOUT=${OLLAMACTL_REAL_TIMEOUT:-60}
NO_REGISTRY=${NO_REGISTRY:-0}
PYTHON=${PYTHON:-python3}

BASE=http://127.0.0.1:$PORT
REGISTRY=127.0.0.1:$REG_PORT
REMOTE_MODEL=$REGISTRY/library/tiny:latest
FRESH_MODEL=$REGISTRY/library/tiny-fresh:latest
VENV=$WORK/venv-$FLAVOR
DIST=$WORK/dist-$FLAVOR   # the assembled server: ollama binary + the libraries it loads
GGUF=$WORK/tiny.gguf
FRESH_GGUF=$WORK/tiny-fresh.gguf   # same shape, other seed: other digest

# Per server version: the pip pins, where the wheel keeps the server, which library is
# the SYCL backend to stub out, and which Intel runtime libraries (from the pinned pip
# wheels) the bundled libraries still link against.
case "$FLAVOR" in
  0.9.3)
    PIP_PINS="bigdl-core-cpp==2.7.0b20260110 intel-sycl-rt==2025.0.5 intel-cmplr-lib-ur==2025.0.5
              intel-cmplr-lib-rt==2025.0.5 intel-openmp==2025.0.5"
    WHEEL_SUBDIR=libs/ollama
    SYCL_LIB=libggml-sycl.so
    RUNTIME_LIBS="libsvml.so libirng.so libimf.so libintlc.so.5 libiomp5.so libsycl.so.8 libur_loader.so.0"
    ;;
  0.5.4)
    PIP_PINS="bigdl-core-cpp==2.6.0 intel-cmplr-lib-rt==2026.2.0 intel-openmp==2026.2.0"
    WHEEL_SUBDIR=libs
    SYCL_LIB=libollama-ggml-sycl.so
    RUNTIME_LIBS="libsvml.so libirng.so libimf.so libintlc.so.5 libiomp5.so"
    ;;
  *)
    echo "real-ollama: unknown OLLAMACTL_REAL_FLAVOR=$FLAVOR (use 0.9.3 or 0.5.4)" >&2
    exit 2
    ;;
esac
# gguf + numpy write the tiny model; they are installed normally (with their deps).
TOOL_PINS="gguf==0.19.0 numpy<3"

for port in "$PORT" "$REG_PORT" "$BLOB_PORT"; do
  # (ollama would silently fall back to 11434 on a port it cannot parse)
  if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "real-ollama: invalid port '$port'" >&2
    exit 2
  fi
done
[ "$PORT" != "$REG_PORT" ] && [ "$PORT" != "$BLOB_PORT" ] && [ "$REG_PORT" != "$BLOB_PORT" ] ||
  { echo "real-ollama: the three ports must differ" >&2; exit 2; }

# Everything here talks to loopback: never through a proxy that the caller's env names.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="$no_proxy"

# ----------------------------------------------------------------------------- helpers
log() { printf '[real-ollama] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# die_with_log MESSAGE LOGFILE: fail, showing the end of a log file.
die_with_log() {
  log "ERROR: $1"
  if [ -f "$2" ]; then
    log "---- last lines of $2 ----"
    tail -n 30 "$2" >&2
    log "----"
  fi
  log "(what did start is still running: 'bash $0 stop' cleans up)"
  exit 1
}

# lock: serialize start/stop of the same work dir (e.g. parallel test workers).
lock() {
  mkdir -p "$WORK"
  exec 9>"$WORK/.lock"
  command -v flock >/dev/null && flock 9 || true
}

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# Which command line identifies each service (guards against a recycled pid).
service_pattern() {
  case "$1" in
    ollama) echo "ollama serve" ;;
    registry) echo "docker-registry serve" ;;
    blobs) echo "blob_server.py" ;;
  esac
}

# service_pid NAME: print the pid of our running service NAME, or fail.
service_pid() {
  local pidfile=$STATE/$1.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(service_pattern "$1")" || return 1
  echo "$pid"
}
alive() { service_pid "$1" >/dev/null; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch NAME LOGFILE CMD...: start CMD detached in its own session (so it survives this
# shell and can be stopped as a process group), stdout+stderr to LOGFILE, pid to NAME.pid.
# The pid is written by the process itself right before exec, so it is always exact.
# (fd 9, the start lock, is closed for it: a server must not hold the lock.)
launch() {
  local name=$1 logfile=$2 pidfile=$STATE/$1.pid
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0" && exec "$@"' "$pidfile" "$@" </dev/null >"$logfile" 2>&1 9>&- &
  for _ in $(seq 50); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  die_with_log "$name did not start" "$logfile"
}

# wait_http URL NAME LOGFILE: wait (at most $TIMEOUT s) until URL answers 2xx, failing
# early if service NAME died.
wait_http() {
  local url=$1 name=$2 logfile=$3 deadline=$((SECONDS + TIMEOUT))
  until curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; do
    alive "$name" || die_with_log "$name exited before answering $url" "$logfile"
    [ "$SECONDS" -lt "$deadline" ] || die_with_log "$name did not answer $url within ${TIMEOUT}s" "$logfile"
    sleep 0.1
  done
}

# wait_port PORT NAME LOGFILE: like wait_http, for a plain TCP listener.
wait_port() {
  local port=$1 name=$2 logfile=$3 deadline=$((SECONDS + TIMEOUT))
  until port_open "$port"; do
    alive "$name" || die_with_log "$name exited before listening on port $port" "$logfile"
    [ "$SECONDS" -lt "$deadline" ] || die_with_log "$name did not listen on port $port within ${TIMEOUT}s" "$logfile"
    sleep 0.1
  done
}

# running PID: the process exists and is not a zombie (the services are children of
# init once start has exited, and init may take its time to reap them).
running() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ "${stat#Z}" = "$stat" ]
}

# stop_service NAME: TERM the service's process group (ollama's model runners are in
# it too), KILL it after 10 s. Only ever the pid recorded by launch.
stop_service() {
  local name=$1 pid target
  if pid=$(service_pid "$name"); then
    # launch made it a session (hence group) leader; fall back to the pid alone if not.
    if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then target=-$pid; else target=$pid; fi
    kill -TERM -- "$target" 2>/dev/null || true
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    # KILL whatever is left of the group (a hung server, or an orphaned model runner).
    kill -KILL -- "$target" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$STATE/$name.pid"
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get install $*"
  # Try without refreshing the package lists first (fast when they are current).
  apt-get install -y -q --no-install-recommends "$@" >"$WORK/apt.log" 2>&1 ||
    { apt-get update -q >>"$WORK/apt.log" 2>&1 &&
      apt-get install -y -q --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1; } ||
    die_with_log "apt-get install $* failed" "$WORK/apt.log"
}

# ------------------------------------------------------------------- start: 1. install
install_prerequisites() {
  command -v gcc >/dev/null || die "gcc is needed to build the GPU stub"
  command -v curl >/dev/null || apt_install curl ca-certificates
  if [ "$NO_REGISTRY" != 1 ] && ! command -v docker-registry >/dev/null; then
    apt_install docker-registry
  fi
}

install_python_packages() {
  local stamp=$VENV/.ollamactl-pins want
  # shellcheck disable=SC2086  # one line, single spaces: the stamp compares exactly
  want=$(printf '%s ' $PIP_PINS $TOOL_PINS)
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
     "$VENV/bin/python" -c 'import bigdl.cpp, gguf, numpy' 2>/dev/null; then
    return 0
  fi
  log "pip install (server $FLAVOR; first time only, a few hundred MB): $want"
  # bigdl-core-cpp declares torch, transformers, ... as dependencies; the Ollama build
  # inside needs none of them, hence --no-deps with exact pins of the Intel runtimes.
  # shellcheck disable=SC2086  # word splitting of the pin lists is intended
  { "$VENV/bin/pip" install -q --disable-pip-version-check $TOOL_PINS &&
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps $PIP_PINS
  } >"$WORK/pip.log" 2>&1 || die_with_log "pip install failed" "$WORK/pip.log"
  echo "$want" >"$stamp"
}

# ------------------------------------------------------------ start: 2. assemble dist/
assemble_server() {
  local wheel_libs f lib missing
  wheel_libs=$("$VENV/bin/python" -c 'import bigdl.cpp, os; print(os.path.dirname(bigdl.cpp.__file__))')/$WHEEL_SUBDIR
  [ -f "$wheel_libs/ollama-lib" ] || die "no ollama-lib in $wheel_libs (wrong bigdl-core-cpp?)"
  mkdir -p "$DIST"
  # `ollama-lib` is the Go server+CLI (the wheel's `ollama` is only a launcher script).
  # A copy, not a link: its RPATH is $ORIGIN, so it must sit among the libraries below.
  cmp -s "$wheel_libs/ollama-lib" "$DIST/ollama" || cp "$wheel_libs/ollama-lib" "$DIST/ollama"
  for f in "$wheel_libs"/lib*.so; do
    lib=$(basename "$f")
    [ "$lib" = "$SYCL_LIB" ] || ln -sfn "$f" "$DIST/$lib"
  done
  for lib in $RUNTIME_LIBS; do
    [ -e "$VENV/lib/$lib" ] || die "missing Intel runtime library $VENV/lib/$lib"
    ln -sfn "$VENV/lib/$lib" "$DIST/$lib"
  done
  if [ ! -f "$DIST/$SYCL_LIB" ] || [ "$HELPERS/sycl_stub.c" -nt "$DIST/$SYCL_LIB" ]; then
    log "building the zero-device SYCL stub $SYCL_LIB"
    gcc -O2 -Wall -shared -fPIC -Wl,-soname,"$SYCL_LIB" -o "$DIST/$SYCL_LIB.tmp" "$HELPERS/sycl_stub.c"
    mv -f "$DIST/$SYCL_LIB.tmp" "$DIST/$SYCL_LIB"
  fi
  missing=$(LD_LIBRARY_PATH=$DIST ldd "$DIST/ollama" | grep 'not found' || true)
  [ -z "$missing" ] || die "the server binary misses libraries: $missing"
}

# write_gguf PATH SEED: (re)write a tiny model file if missing or older than its writer.
write_gguf() {
  if [ ! -f "$1" ] || [ "$HELPERS/make_tiny_gguf.py" -nt "$1" ]; then
    "$VENV/bin/python" "$HELPERS/make_tiny_gguf.py" "$1.tmp" --seed "$2" >&2 || die "writing $1 failed"
    mv -f "$1.tmp" "$1"
  fi
}

write_model_files() {
  write_gguf "$GGUF" 0
  write_gguf "$FRESH_GGUF" 1
  # `FROM ./tiny.gguf` is relative to the Modelfile, so it lives next to the GGUF.
  cmp -s "$HELPERS/Modelfile" "$WORK/Modelfile" || cp "$HELPERS/Modelfile" "$WORK/Modelfile"
  sed 's|^FROM ./tiny.gguf$|FROM ./tiny-fresh.gguf|' "$WORK/Modelfile" >"$WORK/Modelfile.fresh"
}

# ----------------------------------------------------------------- start: 3. services
prepare_state() {
  # A fresh, throwaway state dir unless something still runs from the current one.
  if ! alive ollama && ! alive registry && ! alive blobs; then rm -rf "$STATE"; fi
  if [ -f "$STATE/flavor" ] && [ "$(cat "$STATE/flavor")" != "$FLAVOR" ]; then
    die "server $(cat "$STATE/flavor") is running from $STATE; run 'bash $0 stop' first"
  fi
  mkdir -p "$STATE/models" "$STATE/home" "$STATE/registry-data"
  echo "$FLAVOR" >"$STATE/flavor"
}

start_registry() {
  cat >"$STATE/registry.yml" <<EOF
# written by scripts/real-ollama.sh
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry-data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$REG_PORT
# Ollama only downloads a blob after a 307 redirect (as ollama.com's registry sends):
# redirect blob reads to blob_server.py, which serves rootdirectory with Range support.
# The host name must differ from the registry's (localhost vs 127.0.0.1), otherwise
# Ollama does not treat the answer as a redirect to a separate blob store.
middleware:
  storage:
    - name: redirect
      options:
        baseurl: http://localhost:$BLOB_PORT/
EOF
  if ! alive registry; then
    port_open "$REG_PORT" && die "port $REG_PORT is taken by another program; set OLLAMACTL_REAL_REGISTRY_PORT"
    launch registry "$STATE/registry.log" docker-registry serve "$STATE/registry.yml"
  fi
  if ! alive blobs; then
    port_open "$BLOB_PORT" && die "port $BLOB_PORT is taken by another program; set OLLAMACTL_REAL_BLOB_PORT"
    launch blobs "$STATE/blobs.log" "$VENV/bin/python" "$HELPERS/blob_server.py" "$STATE/registry-data" "$BLOB_PORT"
  fi
}

start_ollama() {
  alive ollama && return 0
  port_open "$PORT" && die "port $PORT is taken by another program; set OLLAMACTL_REAL_PORT"
  local t0=$EPOCHREALTIME
  # HOME: Ollama writes its key pair and history under ~/.ollama — keep them throwaway.
  # LD_LIBRARY_PATH: the Intel libsycl has RUNPATH $ORIGIN/../lib, which hides the
  # binary's own RPATH, so the library folder must be named explicitly.
  launch ollama "$STATE/ollama.log" env \
    OLLAMA_HOST="127.0.0.1:$PORT" OLLAMA_MODELS="$STATE/models" HOME="$STATE/home" \
    LD_LIBRARY_PATH="$DIST${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$DIST/ollama" serve
  wait_http "$BASE/api/version" ollama "$STATE/ollama.log"
  log "ollama $(server_version) answers on $BASE after $(elapsed "$t0")s"
}

server_version() {
  curl -fsS -m 5 "$BASE/api/version" | sed -E 's/.*"version" *: *"([^"]*)".*/\1/'
}

# The Go CLI as a client, with the environment it needs.
write_cli_wrapper() {
  cat >"$STATE/ollama" <<EOF
#!/bin/sh
# The Go \`ollama\` CLI of the real test server (written by scripts/real-ollama.sh).
# Talks to \$OLLAMA_HOST, by default the test server.
LD_LIBRARY_PATH='$DIST'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
HOME='$STATE/home'
OLLAMA_HOST=\${OLLAMA_HOST:-$BASE}
export LD_LIBRARY_PATH HOME OLLAMA_HOST
exec '$DIST/ollama' "\$@"
EOF
  chmod +x "$STATE/ollama"
}

# ------------------------------------------------------------------- start: 4. models
# create_model NAME MODELFILE: `ollama create` with the Go CLI.
create_model() {
  (cd "$WORK" && OLLAMA_HOST=$BASE timeout "$TIMEOUT" "$STATE/ollama" create "$1" -f "$2") \
    >"$STATE/create.log" 2>&1 || die_with_log "ollama create $1 failed" "$STATE/create.log"
}

create_tiny() {
  if curl -fsS -m 5 "$BASE/api/tags" | grep -q '"name":"tiny:latest"'; then return 0; fi
  local t0=$EPOCHREALTIME
  create_model tiny "$WORK/Modelfile"
  log "created model tiny in $(elapsed "$t0")s"
}

# in_registry REPO: the local registry has REPO:latest.
in_registry() {
  curl -fsS -m 5 "http://$REGISTRY/v2/$1/tags/list" 2>/dev/null | grep -q '"latest"'
}

# push_and_forget NAME: push local model NAME (named after the registry) with
# insecure: true, then delete the local name so that only "tiny" is listed.
push_and_forget() {
  local t0=$EPOCHREALTIME
  curl -sS -m "$TIMEOUT" "$BASE/api/push" \
    -d "{\"model\":\"$1\",\"insecure\":true,\"stream\":false}" >"$STATE/push.log" 2>&1 || true
  grep -q '"status":"success"' "$STATE/push.log" ||
    die_with_log "pushing $1 to the local registry failed" "$STATE/push.log"
  curl -fsS -m 10 -X DELETE "$BASE/api/delete" -d "{\"model\":\"$1\"}" >/dev/null ||
    die "deleting the local name $1 after the push failed"
  log "pushed $1 in $(elapsed "$t0")s"
}

publish_models() {
  if ! in_registry library/tiny; then
    curl -fsS -m 10 "$BASE/api/copy" -d "{\"source\":\"tiny\",\"destination\":\"$REMOTE_MODEL\"}" ||
      die "copying tiny to $REMOTE_MODEL failed"
    push_and_forget "$REMOTE_MODEL"
  fi
  if ! in_registry library/tiny-fresh; then
    create_model "$FRESH_MODEL" "$WORK/Modelfile.fresh"
    push_and_forget "$FRESH_MODEL"
  fi
}

write_env() {
  {
    echo "# real Ollama test server — written by scripts/real-ollama.sh start"
    printf 'export OLLAMA_HOST=%q\n' "$BASE"
    printf 'export OLLAMACTL_REAL_HOST=%q\n' "$BASE"
    printf 'export OLLAMACTL_REAL_MODEL=%q\n' tiny
    if [ "$NO_REGISTRY" != 1 ]; then
      printf 'export OLLAMACTL_REAL_REMOTE_MODEL=%q\n' "$REMOTE_MODEL"
      printf 'export OLLAMACTL_REAL_FRESH_MODEL=%q\n' "$FRESH_MODEL"
      printf 'export OLLAMACTL_REAL_REGISTRY=%q\n' "$REGISTRY"
    fi
    printf 'export OLLAMACTL_REAL_BIN=%q\n' "$STATE/ollama"
    printf 'export OLLAMACTL_REAL_GGUF=%q\n' "$GGUF"
    printf 'export OLLAMACTL_REAL_VERSION=%q\n' "$(server_version)"
    printf 'export OLLAMACTL_REAL_STATE=%q\n' "$STATE"
  } >"$STATE/env.tmp"
  mv -f "$STATE/env.tmp" "$STATE/env"
}

# ----------------------------------------------------------------------------- commands
cmd_start() {
  local t0=$EPOCHREALTIME
  lock
  install_prerequisites
  install_python_packages
  assemble_server
  write_model_files
  prepare_state
  write_cli_wrapper
  if [ "$NO_REGISTRY" != 1 ]; then start_registry; fi
  start_ollama
  create_tiny
  if [ "$NO_REGISTRY" != 1 ]; then
    wait_http "http://$REGISTRY/v2/" registry "$STATE/registry.log"
    wait_port "$BLOB_PORT" blobs "$STATE/blobs.log"
    publish_models
  fi
  write_env
  log "ready in $(elapsed "$t0")s; state and logs in $STATE. Source the env with:"
  log "  . $STATE/env"
  cat "$STATE/env"
}

cmd_stop() {
  local name
  case "${1:-}" in "" | --clean) ;; *) usage >&2; exit 2 ;; esac
  [ -d "$WORK" ] && lock
  for name in ollama registry blobs; do stop_service "$name"; done
  if [ "${1:-}" = --clean ]; then
    rm -rf "$STATE"
    log "removed $STATE"
  fi
}

cmd_status() {
  local name pid rc=0
  for name in ollama registry blobs; do
    if pid=$(service_pid "$name"); then log "$name: running (pid $pid)"; else log "$name: not running"; fi
  done
  if curl -fsS -m 5 "$BASE/api/version" >/dev/null 2>&1; then
    log "server $BASE answers: version $(server_version)"
  else
    log "server $BASE does not answer"
    rc=1
  fi
  return "$rc"
}

cmd_env() {
  if [ -f "$STATE/env" ] && alive ollama && curl -fsS -m 5 "$BASE/api/version" >/dev/null 2>&1; then
    cat "$STATE/env"
  else
    log "not running (start it with: bash $0 start)"
    return 1
  fi
}

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  path) echo "$STATE" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
