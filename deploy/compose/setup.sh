#!/bin/sh
# The compose federation's one-shot setup (service `setup`): the federation CA and every
# party's keys made with `fedstats certs`, each party's keys copied into its own volume
# (a node never sees the CA's key or another party's), the configs rendered from
# deploy/config, and synthetic data for a city that has none. Run again, it keeps what
# exists: the CA and the keys are made once.
set -eu

deploy=/deploy
ca=/var/lib/fedstats/ca
cities="vienna ghent amsterdam"
persons=${FEDSTATS_SYNTH_PERSONS:-100000}

umask 077
if [ ! -f "$ca/ca.pem" ]; then
    fedstats certs init-ca --dir "$ca"
fi
for city in $cities; do
    # The node's certificate names its host (the compose service) as a DNS name.
    [ -f "$ca/node-$city.pem" ] || fedstats certs issue --dir "$ca" --node "$city" --host "$city"
done
[ -f "$ca/coordinator-coordinator.pem" ] || fedstats certs issue --dir "$ca" --coordinator coordinator

for city in $cities; do
    cp "$ca/ca.pem" "$ca/node-$city.pem" "$ca/node-$city.key" "$ca/node-$city.sign.key" "/keys/$city/"
    "$deploy/render-config.sh" "$deploy/config/$city.toml.in" "$ca" > "/conf/$city.toml"
    if [ ! -f "/data/$city.csv" ]; then
        fedstats synth --city "$city" --persons "$persons" --out "/data/$city.csv"
    fi
done
cp "$ca/ca.pem" "$ca"/coordinator-coordinator.pem "$ca"/coordinator-coordinator.key \
    "$ca"/coordinator-coordinator.sign.key /keys/coordinator/
"$deploy/render-config.sh" "$deploy/config/coordinator.toml.in" "$ca" > /conf/coordinator.toml

# The services run as the image's user 10001: keys readable by it alone, the rest readable.
chown -R 10001:10001 /keys /conf /data
chmod 0400 /keys/*/*
chmod 0444 /conf/* /data/*
echo "setup: CA in the ca volume; keys, configs and data ready for $cities and the coordinator"
