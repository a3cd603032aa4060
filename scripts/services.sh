#!/usr/bin/env bash
# Makes sure the servers the integration tests use are up on loopback:
#   nats-server with JetStream on 127.0.0.1:4222, redis-server on 127.0.0.1:6379;
# and that /usr/bin/chromium, the browser the report tests drive, is installed.
# Usage: scripts/services.sh ensure | status
# If one is missing it is installed (apt-get, when running as root) and started with its data
# under .warden/services/. It never stops or restarts servers it did not start.
set -euo pipefail
cd "$(dirname "$0")/.."
NATS_PORT="${WARDEN_NATS_PORT:-4222}"
REDIS_PORT="${WARDEN_REDIS_PORT:-6379}"
DATA="$PWD/.warden/services"

listening() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0 || return 1
}

wait_for() { # name host port
  for _ in $(seq 1 100); do
    if listening "$2" "$3"; then return 0; fi
    sleep 0.1
  done
  echo "services: $1 did not start listening on $2:$3 (see $DATA/$1.log)" >&2
  return 1
}

install_pkgs() {
  local missing=()
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "services: ${missing[*]} not installed. Run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "services: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The browser the report tests drive (test/e2e/chaos-report.test.ts): Debian's chromium, never a
# download. Missing and not root: say how to install it and go on; that test then fails saying so.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "services: /usr/bin/chromium not installed (the report tests need it). Run as root: apt-get update && apt-get install -y chromium" >&2
    return 0
  fi
  echo "services: installing chromium" >&2
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }; then
    echo "services: apt-get install chromium failed; the report tests will fail until /usr/bin/chromium exists" >&2
  fi
}

nats_bin() { command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server; }

jetstream_ok() { # the server on NATS_PORT answers with JetStream enabled?
  node -e '
    const { connect } = await import("@nats-io/transport-node");
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const nc = await connect({ servers: "127.0.0.1:'"$NATS_PORT"'", timeout: 2000 });
    try { await (await jetstreamManager(nc)).getAccountInfo(); } finally { await nc.close(); }
  ' --input-type=module >/dev/null 2>&1
}

ensure() {
  install_pkgs
  ensure_chromium
  mkdir -p "$DATA"
  if listening 127.0.0.1 "$NATS_PORT"; then
    if ! jetstream_ok; then
      echo "services: something listens on 127.0.0.1:$NATS_PORT but it is not nats-server with JetStream (-js). Stop it or set WARDEN_NATS_PORT." >&2
      exit 1
    fi
  else
    echo "services: starting nats-server -js on 127.0.0.1:$NATS_PORT" >&2
    nohup "$(nats_bin)" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$DATA/nats" >"$DATA/nats.log" 2>&1 &
    echo $! >"$DATA/nats.pid"
    wait_for nats 127.0.0.1 "$NATS_PORT"
  fi
  if ! listening 127.0.0.1 "$REDIS_PORT"; then
    echo "services: starting redis-server on 127.0.0.1:$REDIS_PORT" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir "$DATA" --pidfile "$DATA/redis.pid" --logfile "$DATA/redis.log" >/dev/null
    wait_for redis 127.0.0.1 "$REDIS_PORT"
  fi
  echo "services: nats 127.0.0.1:$NATS_PORT (JetStream) and redis 127.0.0.1:$REDIS_PORT are up" >&2
}

status() {
  listening 127.0.0.1 "$NATS_PORT" && echo "nats: up on $NATS_PORT" || echo "nats: down"
  listening 127.0.0.1 "$REDIS_PORT" && echo "redis: up on $REDIS_PORT" || echo "redis: down"
}

case "${1:-ensure}" in
  ensure) ensure ;;
  status) status ;;
  *) echo "usage: scripts/services.sh ensure|status" >&2; exit 2 ;;
esac
