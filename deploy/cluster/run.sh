#!/usr/bin/env bash
# make cluster: a 3-node NATS JetStream cluster on loopback and two hubs
# on it, every stream R3, each hub with its own timeline (--node-name).
# Ctrl-C stops everything. Data stays in CLUSTER_DIR (default: a new
# temporary directory) for a look afterwards; run again with the same
# CLUSTER_DIR to start on it.
#
#   n1..n3  NATS nats://127.0.0.1:4222..4224, monitoring http://127.0.0.1:8222..8224
#   a, b    hubs http://127.0.0.1:8081 and :8082 (loopback, no auth: the local operator)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/deploy/cluster
bin=$root/bin
dir=${CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/hikeshi-cluster.XXXXXX")}
go=${GO:-go}
nats_urls=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224

command -v curl >/dev/null || { echo "make cluster needs curl to see when the servers are up" >&2; exit 1; }

echo "building bin/hikeshi and bin/nats-server (the version tools/go.mod pins)"
(cd "$root" && "$go" build -o "$bin/hikeshi" ./services/cmd/hikeshi)
(cd "$root/tools" && "$go" build -o "$bin/nats-server" github.com/nats-io/nats-server/v2)

pids=()
stopped=
stop() {
	[ -n "$stopped" ] && return
	stopped=1
	# A second Ctrl-C does not cut the shutdown short.
	trap '' INT TERM
	echo
	echo "stopping (hubs first, then NATS)"
	# Reverse order: the hubs were started last.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	echo "stopped; data and logs are in $dir"
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

# wait_for URL NAME LOG: until URL answers 200, or the process died.
wait_for() {
	local url=$1 name=$2 log=$3 pid=$4
	for _ in $(seq 1 600); do
		if curl -fsS -o /dev/null "$url" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name stopped; the end of $log:" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "$name did not answer $url within 60 s; see $log" >&2
	exit 1
}

for n in 1 2 3; do
	mkdir -p "$dir/nats-$n"
	"$bin/nats-server" -c "$here/nats-$n.conf" -sd "$dir/nats-$n" >"$dir/nats-$n.log" 2>&1 &
	pids+=($!)
done
# /healthz answers 200 once the node's JetStream is current with the cluster.
for n in 1 2 3; do
	wait_for "http://127.0.0.1:$((8221 + n))/healthz" "nats n$n" "$dir/nats-$n.log" "${pids[n - 1]}"
done

port=8081
for name in a b; do
	mkdir -p "$dir/hub-$name"
	# Each hub runs in its data dir, so a hikeshi.yaml in your working
	# directory is not picked up; set HIKESHI_CONFIG to give one.
	(cd "$dir/hub-$name" && exec "$bin/hikeshi" serve --nats "$nats_urls" --replicas 3 \
		--node-name "$name" --data-dir "$dir/hub-$name" --listen "127.0.0.1:$port") \
		>"$dir/hub-$name.log" 2>&1 &
	pids+=($!)
	wait_for "http://127.0.0.1:$port/readyz" "hub $name" "$dir/hub-$name.log" "${pids[-1]}"
	port=$((port + 1))
done

cat <<EOF

A 3-node JetStream cluster and two hubs are running (data and logs in $dir):
  NATS n1  nats://127.0.0.1:4222  monitoring http://127.0.0.1:8222  log $dir/nats-1.log
  NATS n2  nats://127.0.0.1:4223  monitoring http://127.0.0.1:8223  log $dir/nats-2.log
  NATS n3  nats://127.0.0.1:4224  monitoring http://127.0.0.1:8224  log $dir/nats-3.log
  hub a    http://127.0.0.1:8081  (web console: open it)         log $dir/hub-a.log
  hub b    http://127.0.0.1:8082                                 log $dir/hub-b.log
Try: bin/hikeshi declare --server http://127.0.0.1:8081 --title "db down" --service db --severity SEV2
     bin/hikeshi ls --server http://127.0.0.1:8082
Stop a node to see the others carry on: kill -9 <pid of a nats-server>. Ctrl-C stops everything.
EOF
# Until Ctrl-C (or every process has stopped): a node killed to try a
# failure leaves the others running.
wait || true
