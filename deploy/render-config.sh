#!/bin/sh
# Render a deploy/config template with the federation's public signing keys.
#
#   render-config.sh TEMPLATE PKI_DIR > CONFIG
#
# Every @COORDINATOR_KEY@ becomes the key in PKI_DIR/coordinator-coordinator.sign.pub and
# every @KEY_<node>@ the key in PKI_DIR/node-<node>.sign.pub (the files
# `fedstats certs issue` writes). A key that is missing is an error: nothing is left blank.
set -eu
if [ "$#" -ne 2 ]; then
    echo "usage: render-config.sh TEMPLATE PKI_DIR > CONFIG" >&2
    exit 2
fi
template=$1
pki=$2
key() {
    if [ ! -r "$1" ]; then
        echo "render-config: no public key $1: run \`fedstats certs issue\` first" >&2
        exit 1
    fi
    tr -d '\n' < "$1"
}
script="-e s|^||"
for name in $(grep -o '@KEY_[A-Za-z0-9_-]*@' "$template" | sort -u); do
    node=${name#@KEY_}
    node=${node%@}
    script="$script -e s|$name|$(key "$pki/node-$node.sign.pub")|g"
done
if grep -q '@COORDINATOR_KEY@' "$template"; then
    script="$script -e s|@COORDINATOR_KEY@|$(key "$pki/coordinator-coordinator.sign.pub")|g"
fi
# shellcheck disable=SC2086  # the sed expressions are words of their own
exec sed $script "$template"
