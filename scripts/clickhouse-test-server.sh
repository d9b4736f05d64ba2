#!/usr/bin/env bash
# A throw-away ClickHouse server for the tests and the benchmark: Debian's clickhouse-server
# (18.16) run in the foreground (no daemon, no systemd) from a private directory, listening on
# 127.0.0.1 only, HTTP interface on PORT and nothing else.
#
#   scripts/clickhouse-test-server.sh start DIR PORT   write DIR/config.xml, start, wait for /ping
#   scripts/clickhouse-test-server.sh stop  DIR [PORT] SIGTERM, wait for exit (SIGKILL after 20 s)
#   scripts/clickhouse-test-server.sh kill  DIR [PORT] SIGKILL (the fault tests' crash)
#
# Cluster mode (docs/clickhouse.md, "On a ClickHouse cluster"): a node of a sharded cluster on
# loopback also listens on a native TCP port (Distributed tables talk to the shards over it)
# and knows the cluster NAME, one shard per TCP port, one replica each, all on 127.0.0.1:
#
#   scripts/clickhouse-test-server.sh start DIR PORT --tcp-port N --cluster NAME=TCP1,TCP2,...
#
# The data stays in DIR/data across stop/start (a restart sees the same tables), so a test can
# stop and restart the same server. The pid is in DIR/server.pid, the log in DIR/server.log.
set -euo pipefail

usage() { echo "usage: $0 start|stop|kill DIR PORT [--tcp-port N] [--cluster NAME=TCP1,TCP2...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$2
port=${3:-}
tcp_port=
cluster=
if [ $# -gt 3 ]; then
  shift 3
  while [ $# -gt 0 ]; do
    case "$1" in
      --tcp-port) [ $# -ge 2 ] || usage; tcp_port=$2; shift 2 ;;
      --cluster) [ $# -ge 2 ] || usage; cluster=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ -z "$tcp_port" || "$tcp_port" =~ ^[0-9]+$ ]] || usage
  [[ -z "$cluster" || "$cluster" =~ ^[A-Za-z_][A-Za-z0-9_]*=[0-9]+(,[0-9]+)*$ ]] || usage
  [ -z "$cluster" ] || [ -n "$tcp_port" ] || { echo "--cluster needs --tcp-port" >&2; exit 2; }
fi

pid_alive() { [ -f "$dir/server.pid" ] && kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; }

# The cluster mode's extra elements: the native port, and remote_servers with one shard per
# TCP port (no replication, so no ZooKeeper and no interserver port).
cluster_config() {
  [ -z "$tcp_port" ] || echo "    <tcp_port>$tcp_port</tcp_port>"
  [ -n "$cluster" ] || return 0
  local name=${cluster%%=*} p
  echo "    <remote_servers>"
  echo "        <$name>"
  for p in ${cluster#*=}; do
    echo "            <shard><replica><host>127.0.0.1</host><port>$p</port></replica></shard>"
  done
  echo "        </$name>"
  echo "    </remote_servers>"
}

write_config() {
  mkdir -p "$dir/data/scratch" "$dir/data/user_files" "$dir/data/format_schemas"
  # No tcp_port / interserver port unless in cluster mode: the sink speaks HTTP only, and every
  # extra port is one more chance to collide with another test on a shared machine.
  local extra
  extra=$(IFS=,; cluster_config)
  cat > "$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$port</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/data/scratch/</tmp_path>
    <user_files_path>$dir/data/user_files/</user_files_path>
    <format_schema_path>$dir/data/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>20</max_concurrent_queries>
    <keep_alive_timeout>2</keep_alive_timeout>
    <shutdown_wait_unfinished>2</shutdown_wait_unfinished>
    <mlock_executable>false</mlock_executable>
$extra
</yandex>
EOF
  cat > "$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users>
        <default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
                 <profile>default</profile><quota>default</quota></default>
        <lbtest><password>s3cret</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
                 <profile>default</profile><quota>default</quota></lbtest>
    </users>
    <quotas><default></default></quotas>
</yandex>
EOF
}

start() {
  [ -n "$port" ] || usage
  [ -x /usr/sbin/clickhouse-server ] || { echo "clickhouse-server is not installed (scripts/install-deps.sh)" >&2; exit 1; }
  if pid_alive; then echo "already running (pid $(cat "$dir/server.pid"))" >&2; exit 1; fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  write_config
  setsid /usr/sbin/clickhouse-server --config-file="$dir/config.xml" >>"$dir/server.log" 2>&1 </dev/null &
  echo $! > "$dir/server.pid"
  for _ in $(seq 1 300); do          # 30 s at most; it is usually ready in 0.4 s
    if curl -s --max-time 1 "http://127.0.0.1:$port/ping" 2>/dev/null | grep -q '^Ok\.'; then
      return 0
    fi
    if ! pid_alive; then
      echo "clickhouse-server exited during start-up; last log lines:" >&2
      tail -n 20 "$dir/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "clickhouse-server did not answer /ping on port $port within 30 s" >&2
  kill -KILL "$(cat "$dir/server.pid")" 2>/dev/null || true
  exit 1
}

# Sends signal $1 to the server and waits up to $2 x $3 s for it to exit; the pid file goes
# with it. Returns 1, the pid in $pid, when it is still alive then. stop and kill differ only in
# the signal, the patience and what they do after.
signal_server() {
  pid_alive || { rm -f "$dir/server.pid"; return 0; }
  pid=$(cat "$dir/server.pid")
  kill -"$1" "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$2"); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/server.pid"; return 0; }
    sleep "$3"
  done
  return 1
}

stop() {
  local pid
  signal_server TERM 200 0.1 && return 0
  echo "clickhouse-server (pid $pid) ignored SIGTERM for 20 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/server.pid"
}

crash() {
  local pid
  signal_server KILL 100 0.05 || rm -f "$dir/server.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  kill) crash ;;
  *) usage ;;
esac
