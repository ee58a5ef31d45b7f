#!/usr/bin/env bash
# dashboard/e2e/run.sh: the dashboard end to end in headless Chromium against a
# fresh `boost dev` (see dashboard.e2e.mjs for the steps).
#
#  - builds the server (go build ./cmd/boost) unless BOOST_BIN names a binary;
#  - starts boost dev on a free port with a new data dir, a random admin token and
#    embedded NATS/Kafka on free ports; waits for /readyz;
#  - runs dashboard.e2e.mjs with playwright-core (`npm ci` here first) and
#    CHROMIUM_PATH (default /usr/bin/chromium: apt-get install chromium);
#  - saves a screenshot of each page in SHOTS_DIR (default dashboard/e2e/screenshots,
#    not committed); keeps the server log there too when a step fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
export SHOTS_DIR=${SHOTS_DIR:-$HERE/screenshots}
[[ -x $CHROMIUM_PATH ]] || { echo "dashboard e2e: no Chromium at $CHROMIUM_PATH (apt-get install chromium)" >&2; exit 1; }
[[ -d $HERE/node_modules/playwright-core ]] || { echo "dashboard e2e: run 'npm ci' in $HERE first" >&2; exit 1; }

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
	[[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

BOOST=${BOOST_BIN:-}
if [[ -z $BOOST ]]; then
	BOOST="$TMP/boost"
	(cd "$ROOT" && go build -o "$BOOST" ./cmd/boost)
fi
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
export BOOST_URL="http://localhost:$PORT"
export BOOST_ADMIN_TOKEN="e2e-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
mkdir -p "$SHOTS_DIR"
rm -f "$SHOTS_DIR"/*.png
env PORT="$PORT" BOOST_DATA_DIR="$TMP/data" BOOST_DEV_NATS_ADDR=127.0.0.1:0 BOOST_DEV_KAFKA_PORT=0 \
	"$BOOST" dev >"$TMP/server.out" 2>"$TMP/server.err" </dev/null &
SERVER_PID=$!
for ((i = 0; i < 240; i++)); do
	curl -sf -o /dev/null --max-time 2 "$BOOST_URL/readyz" && break
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.err" >&2; echo "boost dev exited" >&2; exit 1; }
	sleep 0.25
done
curl -sf -o /dev/null "$BOOST_URL/readyz" || { tail -50 "$TMP/server.err" >&2; echo "boost dev not ready in 60 s" >&2; exit 1; }

if node "$HERE/dashboard.e2e.mjs"; then
	exit 0
fi
cp "$TMP/server.err" "$SHOTS_DIR/server.log"
echo "dashboard e2e failed; screenshots and the server log are in $SHOTS_DIR" >&2
exit 1
