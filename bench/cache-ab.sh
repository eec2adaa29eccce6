#!/bin/bash
# Paired A/B of cache-hit CPU between this build and another one (a git worktree of an older commit, built):
#   bash bench/cache-ab.sh /path/to/other/checkout ROUNDS SIZE     # SIZE: 1k, 16k or 256k
# Each round runs this build then the other, `--workers 0`, pinned to CPU 0, wrk -t1 -c50 -d3s on CPU 1
# against a cached route, and prints CPU µs per hit (from /proc) and req/s. Compare per round (pairs).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OTHER=$1; ROUNDS=${2:-6}; SIZE=${3:-1k}
NODE=$HERE/node_modules/.bin/node
WORK=$(mktemp -d)
trap 'kill $OPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat > "$WORK/origin.mjs" <<'JS'
import http from 'node:http';
const sizes = { '1k': 1024, '16k': 16384, '256k': 262144 };
const bodies = Object.fromEntries(Object.entries(sizes).map(([k, n]) => [k, Buffer.alloc(n, 'x')]));
const server = http.createServer((req, res) => { const b = bodies[req.url.slice(3)] ?? bodies['1k']; res.writeHead(200, { 'cache-control': 'max-age=3600', 'content-length': b.length }); res.end(b); });
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
JS
$NODE "$WORK/origin.mjs" > "$WORK/origin.port" & OPID=$!
for i in $(seq 1 50); do [ -s "$WORK/origin.port" ] && break; sleep 0.1; done
ORIGIN=$(cat "$WORK/origin.port")
hz=$(getconf CLK_TCK)
port=$((20000 + RANDOM % 20000))
for r in $(seq 1 "$ROUNDS"); do
  for which in this other; do
    if [ $which = this ]; then DIR=$HERE; else DIR=$OTHER; fi
    port=$((port + 1))
    printf 'runtime: { workers: 0 }\naccessLog: { enabled: false }\nlisteners:\n  - name: web\n    bind: 127.0.0.1:%s\n    routes:\n      - pool: o\n        filters: [ { cache: {} } ]\npools:\n  o:\n    backends: [ { address: 127.0.0.1:%s } ]\n' "$port" "$ORIGIN" > "$WORK/u.yaml"
    taskset -c 0 "$NODE" "$DIR/dist/cli.js" start -c "$WORK/u.yaml" >/dev/null 2>&1 & UPID=$!
    for i in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/c/$SIZE" && break; sleep 0.1; done
    t0=$(awk '{print $14+$15}' /proc/$UPID/stat)
    out=$(taskset -c 1 wrk -t1 -c50 -d3s "http://127.0.0.1:$port/c/$SIZE" 2>/dev/null)
    t1=$(awk '{print $14+$15}' /proc/$UPID/stat)
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    echo "r$r $which $SIZE cpu_us_per_hit=$(python3 -c "print(round(($t1-$t0)/$hz*1e6/$reqs,1))") rps=$rps"
    kill $UPID; wait $UPID 2>/dev/null || true
  done
done
