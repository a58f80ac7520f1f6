#!/usr/bin/env bash
# Run a real single-node Apache Kafka broker (KRaft: broker+controller in one
# JVM, no ZooKeeper) from the broker's own jars on Maven Central. No Docker.
#
#   deploy/kafka/kafka.sh fetch    resolve the jars into $KAFKA_HOME/libs (idempotent)
#   deploy/kafka/kafka.sh start    fetch if needed, start a fresh broker, print its bootstrap
#   deploy/kafka/kafka.sh stop     stop it (SIGTERM, then SIGKILL after 20 s)
#   deploy/kafka/kafka.sh status   exit 0 and print the bootstrap if it runs
#
# Environment:
#   INNOMATCH_KAFKA_HOME   state dir (default: $PWD/.innomatch/kafka)
#   KAFKA_HEAP_OPTS        default: -Xms256m -Xmx512m
#   KAFKA_JVM_OPTS         extra JVM options
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default: 120)
#   KAFKA_EXTRA_PROPERTIES extra lines appended to server.properties
#   MVN                    maven command (default: mvn)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/pom.xml"
KAFKA_HOME="$(realpath -m "${INNOMATCH_KAFKA_HOME:-$PWD/.innomatch/kafka}")"
LIBS="$KAFKA_HOME/libs"
PID_FILE="$KAFKA_HOME/kafka.pid"
BOOTSTRAP_FILE="$KAFKA_HOME/bootstrap"
DATA_DIR="$KAFKA_HOME/data"
CONFIG="$KAFKA_HOME/server.properties"
LOG4J_CONFIG="$KAFKA_HOME/log4j2.properties"
LOG_FILE="$KAFKA_HOME/server.log"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT=20

die() { echo "kafka.sh: error: $*" >&2; exit 1; }
info() { echo "kafka.sh: $*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found in PATH ($2)"
}

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME/bin/java"
  else
    need java "install a JDK/JRE >= 17, e.g. apt-get install openjdk-17-jre-headless"
    command -v java
  fi
}

check_java() {
  local java ver major
  java="$(java_bin)"
  ver="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
  major="${ver%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the Java version of $java"
  ((major >= 17)) || die "Kafka 4.x needs Java >= 17, $java is $ver"
}

pom_stamp() {
  sha256sum "$POM" | cut -d' ' -f1
}

libs_ready() {
  [[ -f "$LIBS/.pom.sha256" ]] && [[ "$(cat "$LIBS/.pom.sha256")" == "$(pom_stamp)" ]] \
    && compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null
}

cmd_fetch() {
  if libs_ready; then
    return 0
  fi
  local mvn="${MVN:-mvn}"
  need "${mvn%% *}" "install Maven, e.g. apt-get install maven"
  [[ -f "$POM" ]] || die "missing $POM"
  ensure_home
  local tmp="$KAFKA_HOME/libs.tmp.$$" log="$KAFKA_HOME/fetch.log"
  rm -rf "$tmp"
  # shellcheck disable=SC2086
  if ! $mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$log" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$log" >&2 || true
    die "maven could not resolve the Kafka jars (full log: $log)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "no kafka_2.13 jar after fetch (log: $log)"; }
  pom_stamp >"$tmp/.pom.sha256"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  rm -f "$log"
}

# True if pid exists and is not a zombie.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)"
  [[ "$state" != "Z" ]]
}

# Pid of the running broker, or nothing.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" \
      && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then
    echo "$pid"
  fi
}

# Probe a broker: ask for Metadata (v4, supported by Kafka 1.0 .. 4.x) and
# check that at least one broker is listed. Exit 0 when it answers.
probe() {
  python3 - "$1" <<'PY'
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
try:
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.settimeout(5)
        client = b"innomatch-probe"
        # header v1: api_key=3 (Metadata), api_version=4, correlation_id, client_id
        # body v4: topics=null (-1), allow_auto_topic_creation=false
        body = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">ib", -1, 0)
        s.sendall(struct.pack(">i", len(body)) + body)
        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise EOFError
                buf += chunk
            return buf
        (size,) = struct.unpack(">i", read(4))
        resp = read(size)
        corr, _throttle, nbrokers = struct.unpack(">iii", resp[:12])
        sys.exit(0 if corr == 7 and nbrokers >= 1 else 1)
except (OSError, EOFError, struct.error):
    sys.exit(1)
PY
}

free_ports() {
  python3 - <<'PY'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

cluster_id() {
  # Same shape as kafka-storage.sh random-uuid (base64url of 16 random bytes).
  python3 - <<'PY'
import base64, os
while True:
    cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
PY
}

write_configs() {
  local port="$1" cport="$2"
  cat >"$CONFIG" <<EOF
# Written by deploy/kafka/kafka.sh: single-node KRaft broker for tests/CI.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${cport}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=${DATA_DIR}/kraft-logs
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
# One partition each for the internal topics: much faster first group join /
# first transactional or idempotent producer on a 2-core CI machine.
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
  if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then
    printf '%s\n' "# KAFKA_EXTRA_PROPERTIES" "$KAFKA_EXTRA_PROPERTIES" >>"$CONFIG"
  fi

  cp "$SCRIPT_DIR/log4j2.properties" "$LOG4J_CONFIG"
}

fail_start() {
  echo "kafka.sh: error: $1" >&2
  if [[ -f "$LOG_FILE" ]]; then
    echo "---- last 60 lines of $LOG_FILE ----" >&2
    tail -n 60 "$LOG_FILE" >&2 || true
    echo "----" >&2
  fi
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
  exit 1
}

ensure_home() {
  mkdir -p "$KAFKA_HOME"
  # Keep the state dir out of git wherever it lives.
  [[ -f "$KAFKA_HOME/.gitignore" ]] || echo '*' >"$KAFKA_HOME/.gitignore"
}

# One attempt: fresh ports, fresh data dir, format, launch, wait.
# Returns 0 when up, 3 when a port was taken meanwhile (caller retries);
# any other failure exits via fail_start/die.
start_once() {
  local java="$1" ports port cport bootstrap cid pid
  ports="$(free_ports)"
  port="${ports% *}"
  cport="${ports#* }"
  bootstrap="127.0.0.1:${port}"

  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR"
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
  write_configs "$port" "$cport"

  local heap="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  # shellcheck disable=SC2206
  local jvm=($heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J_CONFIG"
    -Dkafka.logs.dir="$KAFKA_HOME" ${KAFKA_JVM_OPTS:-})

  cid="$(cluster_id)"
  if ! "$java" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.level=WARN \
      -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cid" -c "$CONFIG" \
      >"$KAFKA_HOME/format.log" 2>&1; then
    cat "$KAFKA_HOME/format.log" >&2
    die "formatting the storage in $DATA_DIR failed"
  fi

  : >"$LOG_FILE"
  nohup "$java" "${jvm[@]}" -cp "$LIBS/*" kafka.Kafka "$CONFIG" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! alive "$pid"; then
      if grep -q 'Address already in use' "$LOG_FILE"; then
        rm -f "$PID_FILE"
        return 3
      fi
      fail_start "the broker exited during startup"
    fi
    if probe "$bootstrap"; then
      break
    fi
    ((SECONDS < deadline)) || fail_start "the broker did not answer on $bootstrap within ${START_TIMEOUT}s"
    sleep 0.3
  done
  echo "$bootstrap" >"$BOOTSTRAP_FILE"
  info "broker pid $pid, log $LOG_FILE"
  echo "$bootstrap"
}

cmd_start() {
  need python3 "used to pick ports and probe the broker"
  check_java
  local java pid
  java="$(java_bin)"

  pid="$(running_pid)"
  if [[ -n "$pid" && -f "$BOOTSTRAP_FILE" ]] && probe "$(cat "$BOOTSTRAP_FILE")"; then
    info "already running (pid $pid)"
    cat "$BOOTSTRAP_FILE"
    return 0
  fi
  [[ -z "$pid" ]] || die "a broker (pid $pid) is running but does not answer; run '$0 stop' first"

  ensure_home
  cmd_fetch

  local attempt rc
  for attempt in 1 2 3; do
    rc=0
    start_once "$java" || rc=$?
    [[ $rc -eq 3 ]] || return "$rc"
    info "a picked port was taken meanwhile (attempt $attempt), retrying with new ports"
  done
  fail_start "could not bind free ports after 3 attempts"
}

cmd_stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
    info "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if alive "$pid"; then
    info "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
  info "stopped (pid $pid)"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" && -f "$BOOTSTRAP_FILE" ]] && probe "$(cat "$BOOTSTRAP_FILE")"; then
    cat "$BOOTSTRAP_FILE"
    return 0
  fi
  info "not running"
  return 1
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 {fetch|start|stop|status}" >&2
    exit 2
    ;;
esac
