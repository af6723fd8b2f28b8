#!/bin/sh
# fedstats entrypoint: what the container image, the systemd unit and the multi-host test
# run. Paths come from the environment, so one script serves every way of deploying.
#
#   entrypoint.sh [node]          fedstats node serve --config "$FEDSTATS_CONFIG"
#   entrypoint.sh query ARGS...   fedstats query --config "$FEDSTATS_CONFIG" ARGS...
#   entrypoint.sh health          gRPC health check of "$FEDSTATS_HEALTH_ADDRESS" (exit 0: SERVING)
#   entrypoint.sh ARGS...         fedstats ARGS... (certs, budget, node audit, node check ...)
#
# Environment:
#   FEDSTATS_CONFIG          node.toml (node) or coordinator.toml (query);
#                            default /etc/fedstats/node.toml
#   FEDSTATS_GRACE           seconds calls in flight get on SIGTERM (default 20)
#   FEDSTATS_LOG_FORMAT      text | json (read by fedstats itself; default text)
#   FEDSTATS_HEALTH_ADDRESS  where `health` asks (default 127.0.0.1:50052)
#   FEDSTATS_BIN             the fedstats executable (default: fedstats on PATH)
#   FEDSTATS_PYTHON          the Python that has fedstats installed (default: python3 on PATH)
set -eu

config=${FEDSTATS_CONFIG:-/etc/fedstats/node.toml}
fedstats=${FEDSTATS_BIN:-fedstats}
python=${FEDSTATS_PYTHON:-python3}

need_config() {
    if [ ! -r "$config" ]; then
        echo "entrypoint: cannot read the config $config: mount it there or set FEDSTATS_CONFIG" >&2
        exit 2
    fi
}

case "${1:-node}" in
node)
    need_config
    [ "$#" -gt 0 ] && shift
    # exec: fedstats gets the signals itself (SIGTERM: stop taking calls, finish, exit 0).
    exec "$fedstats" node serve --config "$config" --grace "${FEDSTATS_GRACE:-20}" "$@"
    ;;
query)
    need_config
    shift
    exec "$fedstats" query --config "$config" "$@"
    ;;
health)
    exec "$python" -m fedstats.healthcheck "${FEDSTATS_HEALTH_ADDRESS:-127.0.0.1:50052}"
    ;;
*)
    exec "$fedstats" "$@"
    ;;
esac
