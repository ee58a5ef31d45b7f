#!/usr/bin/env bash
# sdk/integration.sh: the SDKs (Go, @gamify/node, @gamify/core, @gamify/react)
# against a real `boost dev`, with failure injection.
#
# What it does (from any directory; the repository is found from this file):
#  setup  builds the server (`go build -o $TMP/boost ./cmd/boost` at the repository
#         root, unless BOOST_BIN names a binary), the soak tool (sdk/go/internal/soak,
#         built in the sdk/go module) and the JS SDKs (`npm run build` in sdk/js: it
#         installs nothing, so `npm ci` must have been run there); starts `boost dev`
#         on a free port with a fresh data dir, a random BOOST_ADMIN_TOKEN and embedded
#         NATS/Kafka on free ports, waits for /readyz and reads the project id and keys
#         from its banner.
#  1 go-integration    cd sdk/go && go test -tags integration -count=1 -v ./...
#                      (unit tests + TestIntegration: 51 events read back exactly)
#  2 node-integration  npm run test:integration (50 events through @gamify/node)
#  3 browser-e2e       npm run test:browser (@gamify/core and @gamify/react in headless
#                      Chromium) if $CHROMIUM_PATH (default /usr/bin/chromium) exists,
#                      otherwise counted as skipped
#  4 restart soak      the Go SDK and @gamify/node each send SOAK_EVENTS events at
#                      SOAK_RATE/s with known messageIds (batching on); when both have
#                      had 20% (then 55%, ...) delivered, the script kill -9s boost dev,
#                      waits SOAK_DOWN seconds and restarts it on the same port and data
#                      dir, SOAK_KILLS times; the senders go on, then close. The SDKs run
#                      with a wider retry budget here (60 attempts, backoff capped at
#                      1 s): with the defaults (8 attempts, backoff up to 10 s) an outage
#                      of ~5 s exhausts one batch's retries a few % of the time, which is
#                      reported through onError by design, not a loss to hunt for.
#  5 fault soak        FAULT_EVENTS events per SDK (batches of 25, SDK defaults) through
#                      a proxy (soak proxy) that answers every 4th batch request of each
#                      SDK with 503 + Retry-After: 1 and, for every 5th, lets the server
#                      store the batch but closes the connection unanswered (the SDK
#                      must resend; the server must keep the event once).
#  6 429 soak          boost dev restarted with BOOST_RATE_LIMIT=$RATE_LIMIT; a new secret
#                      key per SDK (POST /v1/projects/{id}/api-keys); RL_EVENTS events
#                      each, as fast as possible, SDK defaults.
#  In 4-6 each sender is a counted check that fails unless every event was reported
#  delivered (onDelivered) with exactly one server id, nothing reached onError, no
#  request was sent before a Retry-After had elapsed, and the expected failure
#  (refused connections, 503, 429) really happened while it sent. Then, per SDK,
#  `soak verify` is two counted checks: (a) every event reads back through the
#  admin GET /v1/projects/{id}/events/{id} with status processed and exactly the
#  event, userId, anonymousId, messageId and properties sent, no two messageIds
#  sharing an id (events still pending after 60 s are named as such); (b) in 4
#  and 5, resending every event with its messageId answers the ids of the first
#  time (so nothing was stored twice). (a) runs first so (b) cannot mask it.
#  19 checks in all (18 without Chromium).
#
# Prints one PASS/FAIL/SKIP line per check (with the log's tail on failure) and ends
# with "N passed, M failed" (", K skipped" when some were); exits 1 if any failed.
#
# Environment:
#  BOOST_BIN=path       use this server binary instead of building one
#  CHROMIUM_PATH=path   Chromium for the browser test (default /usr/bin/chromium)
#  SDK_IT_PHASES="..."  subset of: integration browser restart faults ratelimit (all)
#  SOAK_EVENTS=2000 SOAK_RATE=150 SOAK_KILLS=2 SOAK_DOWN=3   restart soak
#  FAULT_EVENTS=500     fault soak events per SDK
#  RL_EVENTS=1000 RATE_LIMIT=50                              429 soak
#  KEEP_TMP=1           keep the temp dir (logs, data dir, records); it is always kept
#                       when a check failed
#
# Needs: bash, coreutils, curl, go, node >= 20 with npm, and `npm ci` done in sdk/js.
# Runtime: about 70 s on 2 cores with BOOST_BIN set (JS build ~10 s, suites ~10 s,
# restart soak ~25 s, fault soak ~10 s, 429 soak ~15 s), plus the server build when
# BOOST_BIN is unset (~10 s with a warm Go build cache, a few minutes cold). A check
# that waits for stuck events adds 60 s. Every wait is bounded (timeouts below), so
# a hang fails rather than blocks.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SDK_DIR="$ROOT/sdk"
PHASES=${SDK_IT_PHASES:-integration browser restart faults ratelimit}
SOAK_EVENTS=${SOAK_EVENTS:-2000}
SOAK_RATE=${SOAK_RATE:-150}
SOAK_KILLS=${SOAK_KILLS:-2}
SOAK_DOWN=${SOAK_DOWN:-3}
FAULT_EVENTS=${FAULT_EVENTS:-500}
RL_EVENTS=${RL_EVENTS:-1000}
RATE_LIMIT=${RATE_LIMIT:-50}
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
export CHROMIUM_PATH

BUILD_TIMEOUT=900 # the server build, cold cache on 2 cores
TEST_TIMEOUT=300  # one test suite
SEND_TIMEOUT=300  # one soak sender (it bounds itself at 240 s)
READY_TIMEOUT=60  # boost dev's /readyz

TMP=$(mktemp -d "${TMPDIR:-/tmp}/boost-sdk-it.XXXXXX")
DATA="$TMP/data"
PASSED=0
FAILED=0
SKIPPED=0
SERVER_PID=""
SERVER_STARTS=0
BG_PIDS=()
T0=$SECONDS

log() { printf '%s [%4ss] %s\n' "$(date +%H:%M:%S)" "$((SECONDS - T0))" "$*"; }

# alive PID: the process exists and is not a zombie.
alive() {
	local line
	[[ -r /proc/$1/stat ]] || return 1
	read -r line <"/proc/$1/stat" 2>/dev/null || return 1
	line=${line##*) }
	[[ ${line%% *} != Z ]]
}

stop_server() { # stop_server [KILL]: SIGTERM (or SIGKILL) and reap, bounded
	[[ -n $SERVER_PID ]] || return 0
	local sig=${1:-TERM} i
	kill "-$sig" "$SERVER_PID" 2>/dev/null || true
	for ((i = 0; i < 80; i++)); do
		alive "$SERVER_PID" || break
		sleep 0.25
	done
	if alive "$SERVER_PID"; then
		log "boost dev (pid $SERVER_PID) ignored SIG$sig for 20 s; SIGKILL"
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	for pid in "${BG_PIDS[@]}"; do
		alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
	done
	stop_server TERM
	for pid in "${BG_PIDS[@]}"; do
		for ((i = 0; i < 20; i++)); do
			alive "$pid" || break
			sleep 0.25
		done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${KEEP_TMP:-} == 1 || $FAILED -gt 0 || $rc -ne 0 ]]; then
		echo "logs, data dir and records kept in $TMP"
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

show_tail() { # show_tail LOG [LINES]
	[[ -f $1 ]] || return 0
	echo "    --- last ${2:-40} lines of $1"
	tail -n "${2:-40}" "$1" | sed 's/^/    | /'
}

pass() { PASSED=$((PASSED + 1)); log "PASS  $1"; }
skip() { SKIPPED=$((SKIPPED + 1)); log "SKIP  $1: $2"; }
fail() { # fail NAME [LOG]
	FAILED=$((FAILED + 1))
	log "FAIL  $1"
	[[ -z ${2:-} ]] || show_tail "$2"
	local err="$TMP/server-$SERVER_STARTS.err"
	if ((SERVER_STARTS > 0)) && [[ -f $err ]]; then
		echo "    --- last warnings and errors of boost dev ($err)"
		grep -v -e 'level=INFO' -e 'msg="projection fetch error"' "$err" | tail -n 15 | sed 's/^/    | /' || true
	fi
}

# abort NAME [LOG]: a setup step failed; nothing after it can run.
abort() {
	fail "$@"
	summary
	exit 1
}

# check NAME TIMEOUT LOG CMD...: runs CMD bounded in time, counts the result.
# Every extended regex in the array MUST_MATCH must then occur in its output
# (so that a suite that skipped itself does not pass).
MUST_MATCH=()
check() {
	local name=$1 limit=$2 out=$3 t=$SECONDS rc=0 p
	shift 3
	timeout -k 10 "$limit" "$@" >"$out" 2>&1 || rc=$?
	((rc != 124)) || echo "timed out after $limit s" >>"$out"
	if ((rc == 0)); then
		for p in "${MUST_MATCH[@]}"; do
			grep -qE -- "$p" "$out" || { echo "expected a line matching '$p' (did it skip?)" >>"$out"; rc=1; }
		done
	fi
	MUST_MATCH=()
	if ((rc == 0)); then
		pass "$name ($((SECONDS - t)) s)"
		return 0
	fi
	fail "$name ($((SECONDS - t)) s, exit $rc)" "$out"
	return 1
}

# bg VAR LOG CMD...: starts CMD in the background, bounded by SEND_TIMEOUT, and
# stores its pid in VAR.
bg() {
	local var=$1 out=$2
	shift 2
	timeout -k 10 "$SEND_TIMEOUT" "$@" >"$out" 2>&1 &
	BG_PIDS+=("$!")
	printf -v "$var" '%s' "$!"
}

# collect NAME PID LOG: waits for a background check (bounded by its timeout).
collect() {
	local rc=0
	wait "$2" || rc=$?
	if ((rc == 0)); then
		pass "$1"
		grep -E '^(go|node) sender: [0-9]' "$3" | sed 's/^/      /' || true
	else
		((rc != 124)) || echo "timed out after $SEND_TIMEOUT s" >>"$3"
		fail "$1 (exit $rc)" "$3"
	fi
}

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server [VAR=VALUE...]: starts boost dev on $PORT with $DATA and waits for
# /readyz. Extra environment (e.g. BOOST_RATE_LIMIT=50) is passed through.
start_server() {
	SERVER_STARTS=$((SERVER_STARTS + 1))
	local out="$TMP/server-$SERVER_STARTS.out" err="$TMP/server-$SERVER_STARTS.err" i
	env PORT="$PORT" BOOST_DATA_DIR="$DATA" BOOST_ADMIN_TOKEN="$ADMIN_TOKEN" \
		BOOST_DEV_NATS_ADDR=127.0.0.1:0 BOOST_DEV_KAFKA_PORT=0 "$@" \
		"$BOOST" dev >"$out" 2>"$err" </dev/null &
	SERVER_PID=$!
	disown "$SERVER_PID" # no "Killed" job notice after kill -9; alive() still sees it go
	for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
		if ! alive "$SERVER_PID"; then
			wait "$SERVER_PID" 2>/dev/null || true
			SERVER_PID=""
			echo "boost dev exited during start-up (start $SERVER_STARTS)" >>"$err"
			return 1
		fi
		if curl -sf -o /dev/null --max-time 2 "$URL/readyz"; then
			return 0
		fi
		sleep 0.25
	done
	echo "boost dev not ready within $READY_TIMEOUT s (start $SERVER_STARTS)" >>"$err"
	return 1
}

has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

# verify_records PHASE SDK KEY RESEND: two counted checks on a sender's
# records: every event reads back exactly (event, ids, properties) with status
# processed; then (RESEND=1) resending every event with its messageId answers
# the ids of the first time. The processed check comes first so that the
# resend cannot mask an event the server left pending.
verify_records() {
	local phase=$1 sdk=$2 key=$3 resend=$4 file="$TMP/$1-$2.jsonl" out label
	case $phase in
	faults) label="fault soak" ;;
	ratelimit) label="429 soak" ;;
	*) label="$phase soak" ;;
	esac
	if [[ ! -s $file ]]; then
		fail "$label: $sdk sender wrote no records" "$TMP/$phase-$sdk.log"
		return 0
	fi
	out="$TMP/verify-$phase-$sdk.log"
	check "$label: $sdk events read back exactly once, each processed" 150 "$out" \
		"$SOAK" verify -url "$URL" -project "$PROJECT" -admin "$ADMIN_TOKEN" -want processed -timeout 60s "$file" &&
		grep '^verify: [0-9]' "$out" | sed 's/^/      /' || true
	((resend)) || return 0
	out="$TMP/resend-$phase-$sdk.log"
	check "$label: $sdk events resent with their messageIds get the same ids" 150 "$out" \
		"$SOAK" verify -url "$URL" -key "$key" -project "$PROJECT" -admin "$ADMIN_TOKEN" -want stored -resend -timeout 60s "$file" &&
		grep '^verify: [0-9]' "$out" | sed 's/^/      /' || true
}

# delivered LOG: the last "delivered=N" a sender printed (0 if none yet).
delivered() {
	local n
	n=$(grep -o 'delivered=[0-9]*' "$1" 2>/dev/null | tail -n 1 | cut -d= -f2 || true)
	echo "${n:-0}"
}

# ---------------------------------------------------------------- setup
log "sdk integration: repository $ROOT, temp dir $TMP"
for tool in curl go node npm timeout; do
	command -v "$tool" >/dev/null || abort "setup: $tool is not installed"
done
if [[ ! -d $SDK_DIR/js/node_modules ]]; then
	echo "sdk/js/node_modules is missing: run (cd sdk/js && npm ci) first" >"$TMP/setup.log"
	abort "setup: JS dev dependencies" "$TMP/setup.log"
fi

if [[ -n ${BOOST_BIN:-} ]]; then
	BOOST=$BOOST_BIN
	[[ -x $BOOST ]] || abort "setup: BOOST_BIN=$BOOST is not an executable"
	log "server binary: $BOOST (BOOST_BIN)"
else
	BOOST="$TMP/boost"
	log "building the server: go build -o $BOOST ./cmd/boost"
	(cd "$ROOT" && timeout -k 10 "$BUILD_TIMEOUT" go build -o "$BOOST" ./cmd/boost) >"$TMP/build-server.log" 2>&1 ||
		abort "setup: go build ./cmd/boost" "$TMP/build-server.log"
fi
SOAK="$TMP/soak"
(cd "$SDK_DIR/go" && timeout -k 10 "$BUILD_TIMEOUT" go build -o "$SOAK" ./internal/soak) >"$TMP/build-soak.log" 2>&1 ||
	abort "setup: build sdk/go/internal/soak" "$TMP/build-soak.log"
log "building the JS SDKs: npm run build"
(cd "$SDK_DIR/js" && timeout -k 10 "$TEST_TIMEOUT" npm run build) >"$TMP/build-js.log" 2>&1 ||
	abort "setup: npm run build (sdk/js)" "$TMP/build-js.log"

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
ADMIN_TOKEN="it_$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
log "starting boost dev on port $PORT"
start_server || abort "setup: boost dev start-up" "$TMP/server-1.err"
BANNER="$TMP/server-1.out"
# On first start /readyz answers 200 before the dev project and keys are
# seeded; the banner (ending with "Try it:") follows shortly after.
for ((i = 0; i < 120; i++)); do
	grep -q 'Try it:' "$BANNER" && break
	alive "$SERVER_PID" || break
	sleep 0.25
done
PROJECT=$(awk '$1 == "Project" { print $2; exit }' "$BANNER" || true)
PUBLISHABLE=$(grep -oE 'pk_live_[0-9a-f]{64}' "$BANNER" | head -n 1 || true)
SECRET=$(grep -oE 'sk_live_[0-9a-f]{64}' "$BANNER" | head -n 1 || true)
API=$(awk '$1 == "API" { print $2; exit }' "$BANNER" || true)
if [[ -z $PROJECT || -z $PUBLISHABLE || -z $SECRET || $API != "http://localhost:$PORT" ]]; then
	abort "setup: banner (project '$PROJECT', API '$API', keys found: ${PUBLISHABLE:+pk }${SECRET:+sk})" "$BANNER"
fi
log "ready: project $PROJECT, keys ${PUBLISHABLE:0:12}… ${SECRET:0:12}…"
export BOOST_URL="$URL" BOOST_PROJECT_ID="$PROJECT" BOOST_ADMIN_TOKEN="$ADMIN_TOKEN" \
	BOOST_SECRET_KEY="$SECRET" BOOST_PUBLISHABLE_KEY="$PUBLISHABLE"

# ---------------------------------------------------------------- 1-3: the SDKs' own suites
if has_phase integration; then
	MUST_MATCH=('^--- PASS: TestIntegration ')
	check "go-integration: go test -tags integration ./... (sdk/go)" "$TEST_TIMEOUT" "$TMP/go-integration.log" \
		bash -c 'cd "$1" && go test -tags integration -count=1 -v ./...' _ "$SDK_DIR/go" || true
	MUST_MATCH=('^# pass 1$' '^# skipped 0$')
	check "node-integration: npm run test:integration (@gamify/node)" "$TEST_TIMEOUT" "$TMP/node-integration.log" \
		bash -c 'cd "$1" && npm run test:integration' _ "$SDK_DIR/js" || true
fi

if has_phase browser; then
	if [[ -x $CHROMIUM_PATH ]]; then
		out="$TMP/browser-e2e.log"
		MUST_MATCH=('^# pass 1$' '^# skipped 0$')
		check "browser-e2e: npm run test:browser (@gamify/core, @gamify/react)" "$TEST_TIMEOUT" "$out" \
			bash -c 'cd "$1" && npm run test:browser' _ "$SDK_DIR/js" &&
			grep -E '^# run .* read back' "$out" | sed 's/^/      /' || true
	else
		skip "browser-e2e" "no Chromium at $CHROMIUM_PATH (apt-get install -y chromium)"
	fi
fi

# ---------------------------------------------------------------- 4: kill -9 / restart while sending
if has_phase restart; then
	log "restart soak: $SOAK_EVENTS events per SDK at $SOAK_RATE/s, $SOAK_KILLS kill -9 + restart, ${SOAK_DOWN}s down"
	GL="$TMP/restart-go.log" NL="$TMP/restart-node.log"
	bg GO_PID "$GL" "$SOAK" send -url "$URL" -key "$SECRET" -n "$SOAK_EVENTS" -rate "$SOAK_RATE" \
		-phase restart -max-attempts 60 -retry-max-delay 1s -max-retry-time 2m -expect net \
		-out "$TMP/restart-go.jsonl"
	bg NODE_PID "$NL" node "$SDK_DIR/js/integration/soak.mjs" --url="$URL" --key="$SECRET" \
		--n="$SOAK_EVENTS" --rate="$SOAK_RATE" --phase=restart --max-retries=60 --max-retry-delay=1000 \
		--max-retry-time=120000 --expect=net --out="$TMP/restart-node.jsonl"
	restarted=0
	for ((k = 1; k <= SOAK_KILLS; k++)); do
		pct=$((20 + (k - 1) * 35))
		((pct <= 90)) || pct=90
		need=$((SOAK_EVENTS * pct / 100))
		for ((i = 0; i < 240; i++)); do # up to 60 s
			if (($(delivered "$GL") >= need && $(delivered "$NL") >= need)); then break; fi
			alive "$GO_PID" || alive "$NODE_PID" || break
			sleep 0.25
		done
		if (($(delivered "$GL") < need || $(delivered "$NL") < need)); then
			log "restart soak: the senders did not reach $need delivered events (go $(delivered "$GL"), node $(delivered "$NL")); no kill $k"
			break
		fi
		log "restart soak: kill -9 boost dev (go $(delivered "$GL"), node $(delivered "$NL") of $SOAK_EVENTS delivered)"
		stop_server KILL
		sleep "$SOAK_DOWN"
		if ! start_server; then
			fail "restart soak: boost dev restart $k" "$TMP/server-$SERVER_STARTS.err"
			break
		fi
		restarted=$((restarted + 1))
		log "restart soak: boost dev is back (restart $k; go $(delivered "$GL"), node $(delivered "$NL") delivered)"
	done
	collect "restart soak: Go SDK sender ($restarted restarts)" "$GO_PID" "$GL"
	collect "restart soak: @gamify/node sender ($restarted restarts)" "$NODE_PID" "$NL"
	if ((restarted < SOAK_KILLS)); then
		echo "only $restarted of $SOAK_KILLS kill/restart cycles happened while the SDKs were sending" >"$TMP/restart-cycles.log"
		fail "restart soak: kill/restart cycles" "$TMP/restart-cycles.log"
	fi
	if [[ -n $SERVER_PID ]]; then
		verify_records restart go "$SECRET" 1
		verify_records restart node "$SECRET" 1
	fi
fi

[[ -n $SERVER_PID ]] || { if start_server; then :; else abort "boost dev restart" "$TMP/server-$SERVER_STARTS.err"; fi; }

# ---------------------------------------------------------------- 5: 503s and lost answers
if has_phase faults; then
	log "fault soak: $FAULT_EVENTS events per SDK through a proxy injecting 503s and dropped answers"
	PL="$TMP/proxy.log"
	bg PROXY_PID "$PL" "$SOAK" proxy -target "$URL" -fail-every 4 -drop-every 5 -lifetime 5m
	PURL=""
	for ((i = 0; i < 40; i++)); do
		PURL=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$PL" 2>/dev/null | head -n 1 || true)
		[[ -z $PURL ]] || break
		sleep 0.25
	done
	if [[ -z $PURL ]]; then
		fail "fault soak: proxy start-up" "$PL"
	else
		GL="$TMP/faults-go.log" NL="$TMP/faults-node.log"
		bg GO_PID "$GL" "$SOAK" send -url "$PURL" -key "$SECRET" -n "$FAULT_EVENTS" -rate 250 -batch 25 \
			-phase faults -expect net,503 -out "$TMP/faults-go.jsonl"
		bg NODE_PID "$NL" node "$SDK_DIR/js/integration/soak.mjs" --url="$PURL" --key="$SECRET" \
			--n="$FAULT_EVENTS" --rate=250 --batch=25 --phase=faults --expect=net,503 --out="$TMP/faults-node.jsonl"
		collect "fault soak: Go SDK sender (503 + Retry-After, dropped answers)" "$GO_PID" "$GL"
		collect "fault soak: @gamify/node sender (503 + Retry-After, dropped answers)" "$NODE_PID" "$NL"
		log "fault soak: $(curl -s --max-time 5 "$PURL/__soak/stats" || echo 'proxy stats unavailable')"
		verify_records faults go "$SECRET" 1
		verify_records faults node "$SECRET" 1
	fi
fi

# ---------------------------------------------------------------- 6: 429 + Retry-After
if has_phase ratelimit; then
	log "429 soak: restarting boost dev with BOOST_RATE_LIMIT=$RATE_LIMIT; $RL_EVENTS events per SDK at once"
	stop_server TERM
	if ! start_server BOOST_RATE_LIMIT="$RATE_LIMIT"; then
		fail "429 soak: boost dev restart with BOOST_RATE_LIMIT" "$TMP/server-$SERVER_STARTS.err"
	else
		declare -A KEYS=()
		for sdk in go node; do
			code=""
			ans=$(curl -s --max-time 10 -X POST "$URL/v1/projects/$PROJECT/api-keys" \
				-H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
				-d "{\"name\":\"sdk-it-429-$sdk\",\"type\":\"secret\"}" -w '\n%{http_code}' || true)
			KEYS[$sdk]=$(grep -oE 'sk_live_[0-9a-f]{64}' <<<"$ans" | head -n 1 || true)
			# The key must be usable before the sender's first request (a 401 is
			# not retried). An empty batch is refused (400) once the key is known
			# and takes no rate-limit token.
			for ((i = 0; i < 40 && ${#KEYS[$sdk]} > 0; i++)); do
				code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/v1/events/batch" \
					-H "x-api-key: ${KEYS[$sdk]}" -H 'Content-Type: application/json' -d '{"batch":[]}' || true)
				[[ $code != 400 ]] || break
				sleep 0.25
			done
			if [[ -z ${KEYS[$sdk]} || $code != 400 ]]; then
				echo "POST /v1/projects/$PROJECT/api-keys answered: $ans; probe with the key: $code" >"$TMP/key-$sdk.log"
				fail "429 soak: create a secret key for $sdk" "$TMP/key-$sdk.log"
			fi
		done
		GO_PID="" NODE_PID=""
		GL="$TMP/ratelimit-go.log" NL="$TMP/ratelimit-node.log"
		[[ -z ${KEYS[go]} ]] || bg GO_PID "$GL" "$SOAK" send -url "$URL" -key "${KEYS[go]}" -n "$RL_EVENTS" \
			-phase ratelimit -expect 429 -out "$TMP/ratelimit-go.jsonl"
		[[ -z ${KEYS[node]} ]] || bg NODE_PID "$NL" node "$SDK_DIR/js/integration/soak.mjs" --url="$URL" \
			--key="${KEYS[node]}" --n="$RL_EVENTS" --phase=ratelimit --expect=429 --out="$TMP/ratelimit-node.jsonl"
		[[ -z $GO_PID ]] || collect "429 soak: Go SDK sender (Retry-After honoured, SDK defaults)" "$GO_PID" "$GL"
		[[ -z $NODE_PID ]] || collect "429 soak: @gamify/node sender (Retry-After honoured, SDK defaults)" "$NODE_PID" "$NL"
		[[ -z ${KEYS[go]} ]] || verify_records ratelimit go "${KEYS[go]}" 0
		[[ -z ${KEYS[node]} ]] || verify_records ratelimit node "${KEYS[node]}" 0
	fi
fi

stop_server TERM
summary
((FAILED == 0))
