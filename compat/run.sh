#!/usr/bin/env bash
# compat/run.sh: the real Segment, RudderStack and PostHog client libraries
# against a real `boost dev`, read back through Boost's query API.
#
#   bash compat/run.sh
#
# What it does (from any directory):
#  setup  builds the server (`go build` at the repository root, unless BOOST_BIN
#         names a binary); `npm ci` in compat/node unless node_modules is there
#         (COMPAT_NPM_CI=1 forces it); installs Chromium from Debian when
#         /usr/bin/chromium is missing and apt-get is there; starts `boost dev` on
#         a free port with a fresh data dir, a random BOOST_ADMIN_TOKEN and
#         embedded NATS/Kafka on free ports, and reads the project id and keys
#         from its banner.
#  then   runs every check and prints one PASS/FAIL line per check (with the
#         reason of a failure), then "N passed, M failed". Exits 1 if any failed.
#         - node --test compat/node/test/*.test.mjs: @segment/analytics-node,
#           @rudderstack/rudder-sdk-node, posthog-node, the Seed browser SDK's raw
#           HTTP shape, and in headless Chromium @segment/analytics-next and
#           posthog-js (skipped without Chromium)
#         - go test in compat/go: github.com/posthog/posthog-go
#
# Environment:
#  BOOST_BIN=path        use this server binary
#  CHROMIUM_PATH=path    Chromium (default /usr/bin/chromium)
#  COMPAT_NODE_TESTS="test/x.test.mjs …"  node test files to run (default: test/*.test.mjs)
#  COMPAT_SKIP_GO=1      skip go test in compat/go
#  COMPAT_TIMEOUT_MS=ms  how long a check waits for what was sent to be stored (15000)
#  KEEP_TMP=1            keep the temp dir (logs, data dir); kept anyway on failure
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPAT="$ROOT/compat"
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
export CHROMIUM_PATH
TMP=$(mktemp -d "${TMPDIR:-/tmp}/boost-compat.XXXXXX")
SERVER_PID=""
PASSED=0
FAILED=0
SKIPPED=0
T0=$SECONDS

log() { printf '%s [%4ss] %s\n' "$(date +%H:%M:%S)" "$((SECONDS - T0))" "$*"; }

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	if [[ -n $SERVER_PID ]]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for ((i = 0; i < 80; i++)); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if [[ ${KEEP_TMP:-} == 1 || $FAILED -gt 0 || $rc -ne 0 ]]; then
		echo "logs and data dir kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

summary() {
	local line="$PASSED passed, $FAILED failed"
	((SKIPPED == 0)) || line+=", $SKIPPED skipped"
	log "total time $((SECONDS - T0)) s"
	echo "$line"
}

abort() { # abort MESSAGE [LOG]
	FAILED=$((FAILED + 1))
	log "FAIL  setup: $1"
	[[ -z ${2:-} || ! -f $2 ]] || tail -n 40 "$2" | sed 's/^/    | /'
	summary
	exit 1
}

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# ---------------------------------------------------------------- setup
for tool in curl go node npm timeout; do
	command -v "$tool" >/dev/null || abort "$tool is not installed"
done

if [[ -n ${BOOST_BIN:-} ]]; then
	BOOST=$BOOST_BIN
	[[ -x $BOOST ]] || abort "BOOST_BIN=$BOOST is not an executable"
else
	BOOST="$TMP/boost"
	log "building the server: go build -o $BOOST ./cmd/boost"
	(cd "$ROOT" && timeout -k 10 900 go build -o "$BOOST" ./cmd/boost) >"$TMP/build.log" 2>&1 ||
		abort "go build ./cmd/boost" "$TMP/build.log"
fi

if [[ ! -d $COMPAT/node/node_modules || ${COMPAT_NPM_CI:-} == 1 ]]; then
	log "npm ci in compat/node"
	(cd "$COMPAT/node" && timeout -k 10 600 npm ci --no-audit --no-fund) >"$TMP/npm-ci.log" 2>&1 ||
		abort "npm ci (compat/node)" "$TMP/npm-ci.log"
fi

if [[ ! -x $CHROMIUM_PATH ]] && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
	log "installing chromium (apt-get install -y chromium)"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$TMP/apt.log" 2>&1 ||
		log "could not install chromium; the browser checks will be skipped (see $TMP/apt.log)"
fi

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
ADMIN_TOKEN="compat_$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
log "starting boost dev on port $PORT"
env PORT="$PORT" BOOST_DATA_DIR="$TMP/data" BOOST_ADMIN_TOKEN="$ADMIN_TOKEN" \
	BOOST_DEV_NATS_ADDR=127.0.0.1:0 BOOST_DEV_KAFKA_PORT=0 \
	"$BOOST" dev >"$TMP/server.out" 2>"$TMP/server.err" </dev/null &
SERVER_PID=$!
for ((i = 0; i < 240; i++)); do
	kill -0 "$SERVER_PID" 2>/dev/null || abort "boost dev exited during start-up" "$TMP/server.err"
	grep -q 'Try it:' "$TMP/server.out" 2>/dev/null && curl -sf -o /dev/null --max-time 2 "$URL/readyz" && break
	sleep 0.25
done
PROJECT=$(awk '$1 == "Project" { print $2; exit }' "$TMP/server.out" || true)
PUBLISHABLE=$(grep -oE 'pk_live_[0-9a-f]{64}' "$TMP/server.out" | head -n 1 || true)
SECRET=$(grep -oE 'sk_live_[0-9a-f]{64}' "$TMP/server.out" | head -n 1 || true)
[[ -n $PROJECT && -n $PUBLISHABLE && -n $SECRET ]] ||
	abort "boost dev banner (project '$PROJECT', keys found: ${PUBLISHABLE:+pk }${SECRET:+sk})" "$TMP/server.out"
log "ready: project $PROJECT, keys ${PUBLISHABLE:0:12}… ${SECRET:0:12}…"
export BOOST_URL="$URL" BOOST_PROJECT_ID="$PROJECT" BOOST_ADMIN_TOKEN="$ADMIN_TOKEN" \
	BOOST_SECRET_KEY="$SECRET" BOOST_PUBLISHABLE_KEY="$PUBLISHABLE"

# ---------------------------------------------------------------- checks
# report TAP: one PASS/FAIL/SKIP line per top-level test of node's TAP output,
# with the first lines of a failure's message.
report_tap() {
	local tap=$1 line name status
	local -a block=()
	flush_block() {
		[[ -n ${name:-} ]] || return 0
		case $status in
		pass) PASSED=$((PASSED + 1)); log "PASS  $name" ;;
		skip) SKIPPED=$((SKIPPED + 1)); log "SKIP  $name" ;;
		fail)
			FAILED=$((FAILED + 1))
			log "FAIL  $name"
			printf '%s\n' "${block[@]}" | awk '/^  error: /{p=1} p && /^  (code|name|stack|failureType|expected|actual|operator):/{exit} p' |
				sed -e 's/^  error: //' -e "s/^ *[|>-]* *//" -e '/^$/d' -e "s/^'//; s/'$//" | head -n 8 | sed 's/^/      /'
			;;
		esac
		name="" block=()
	}
	name=""
	while IFS= read -r line; do
		if [[ $line =~ ^(not\ ok|ok)\ [0-9]+\ -\ (.*)$ ]]; then
			flush_block
			name=${BASH_REMATCH[2]}
			status=pass
			[[ ${BASH_REMATCH[1]} == "not ok" ]] && status=fail
			[[ $name == *"# SKIP"* ]] && status=skip && name=${name%% # SKIP*}
		elif [[ -n $name && $line =~ ^\ \ ---$ ]]; then
			block=()
		elif [[ -n $name ]]; then
			block+=("$line")
			[[ $line == "  ..." ]] && flush_block
		fi
	done <"$tap"
	flush_block
}

log "node checks: node --test ${COMPAT_NODE_TESTS:-test/*.test.mjs} (compat/node)"
(cd "$COMPAT/node" && timeout -k 10 900 node --test --test-concurrency=1 --test-reporter=tap ${COMPAT_NODE_TESTS:-test/*.test.mjs}) >"$TMP/node.tap" 2>&1 || true
grep -qE '^(not )?ok [0-9]+ - ' "$TMP/node.tap" || abort "node --test ran no test" "$TMP/node.tap"
report_tap "$TMP/node.tap"

if [[ ${COMPAT_SKIP_GO:-} == 1 ]]; then
	summary
	((FAILED == 0))
	exit
fi
log "go checks: go test in compat/go (posthog-go)"
(cd "$COMPAT/go" && timeout -k 10 900 go test -count=1 -v ./...) >"$TMP/go.log" 2>&1 || true
if ! grep -qE '^\s*--- (PASS|FAIL|SKIP)' "$TMP/go.log"; then
	FAILED=$((FAILED + 1))
	log "FAIL  go test (compat/go) ran no test"
	tail -n 30 "$TMP/go.log" | sed 's/^/    | /'
else
	while IFS= read -r line; do
		[[ $line =~ ^---\ (PASS|FAIL|SKIP):\ ([^ ]+) ]] || continue
		name=${BASH_REMATCH[2]}
		case ${BASH_REMATCH[1]} in
		PASS) PASSED=$((PASSED + 1)); log "PASS  posthog-go: $name" ;;
		SKIP) SKIPPED=$((SKIPPED + 1)); log "SKIP  posthog-go: $name" ;;
		FAIL)
			FAILED=$((FAILED + 1))
			log "FAIL  posthog-go: $name"
			awk -v t="$name" '$0 ~ "^=== RUN   "t"$" {p=1; next} p && /^(=== RUN|--- )/ {exit} p' "$TMP/go.log" |
				sed -e 's/^ *//' -e '/^$/d' | head -n 8 | sed 's/^/      /'
			;;
		esac
	done < <(grep -E '^--- (PASS|FAIL|SKIP)' "$TMP/go.log")
fi

summary
((FAILED == 0))
