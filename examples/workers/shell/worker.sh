#!/usr/bin/env bash
# A Troupe worker in shell, with curl and jq: claim → run → complete or fail.
#
# It runs one job at a time. The work is the function `work` below: it reads
# the job's payload (JSON) on stdin and writes the result (JSON) on stdout.
# Its exit status decides the outcome: 0 completes the job with the result,
# 2 fails it permanently (bad input: no retry), anything else fails the
# attempt, which is retried by the job's policy. While it runs, the worker
# heartbeats every lease/3; if the job is canceled (cancelRequested) or the
# lease is lost (409), the work is killed.
#
# Environment: TROUPE_URL (default http://127.0.0.1:8080), TROUPE_TOKEN,
# TROUPE_WORKER_TYPES (comma-separated, default word_count),
# TROUPE_WORKER_LEASE in seconds (default 30), TROUPE_WORKER_WAIT in seconds
# (default 10). On SIGTERM or SIGINT it claims no more jobs, finishes the one
# it holds, reports it and exits 0.
set -euo pipefail
# Job control puts the work in a process group of its own, so that a signal
# to the whole group (Ctrl-C, a supervisor stopping the group) reaches the
# worker, which then finishes the job, and not the job itself.
set -m

url=${TROUPE_URL:-http://127.0.0.1:8080}
lease=${TROUPE_WORKER_LEASE:-30}
wait_s=${TROUPE_WORKER_WAIT:-10}
types=$(jq -cn --arg t "${TROUPE_WORKER_TYPES:-word_count}" '$t | split(",") | map(select(. != ""))')
worker="$(hostname)/pid-$$"
auth=()
if [ -n "${TROUPE_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $TROUPE_TOKEN"); fi

log() { # log LEVEL MSG [jq args…]: one JSON line on stderr
	local level=$1 msg=$2
	shift 2
	jq -cn --arg level "$level" --arg msg "$msg" "$@" \
		'{time: (now | todate), level: $level, msg: $msg} + ($ARGS.named | del(.level, .msg))' >&2
}

# post PATH BODY: prints the response body, then the status on a line of its own.
post() {
	curl -sS -X POST "${auth[@]}" -H 'Content-Type: application/json' \
		--max-time $((wait_s + 10)) -d "$2" -w '\n%{http_code}' "$url$1"
}

# work: the job's handler. payload on stdin, result on stdout.
work() {
	local payload
	payload=$(cat)
	jq -e '.text | type == "string"' <<<"$payload" >/dev/null || {
		echo 'payload must be an object with a "text" string' >&2
		return 2
	}
	sleep "$(jq -r '(.sleepMs // 0) / 1000' <<<"$payload")"
	jq -c '{words: (.text | [splits("\\s+")] | map(select(. != "")) | length), chars: (.text | length), worker: "shell"}' <<<"$payload"
}

stopping=0
trap 'stopping=1; log info "signal received: claiming no more jobs"' TERM INT

log info "worker started" --arg worker "$worker" --argjson types "$types"
while [ "$stopping" = 0 ]; do
	claim=$(jq -cn --argjson types "$types" --arg worker "$worker" --arg wait "${wait_s}s" --arg lease "${lease}s" \
		'{types: $types, max: 1, wait: $wait, worker: $worker, lease: $lease}')
	if ! resp=$(post /workers/claim "$claim"); then
		log warn "claim failed; retrying"
		sleep 1
		continue
	fi
	status=${resp##*$'\n'}
	body=${resp%$'\n'*}
	if [ "$status" != 200 ]; then
		log error "claim refused" --arg status "$status" --arg problem "$body"
		sleep 5
		continue
	fi
	job=$(jq -c '.jobs[0] // empty' <<<"$body")
	[ -n "$job" ] || continue

	id=$(jq -r .id <<<"$job")
	token=$(jq -r .leaseToken <<<"$job")
	log info "job started" --arg jobID "$id" --arg type "$(jq -r .type <<<"$job")"
	out=$(mktemp)
	err=$(mktemp)
	jq -c .payload <<<"$job" | work >"$out" 2>"$err" &
	pid=$!

	# Heartbeat every lease/3 while the work runs: in short steps, so that
	# a quick job is not held up by a long interval.
	lost=0
	next=$((SECONDS + lease / 3))
	while kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		[ "$SECONDS" -ge "$next" ] || continue
		next=$((SECONDS + lease / 3))
		hb=$(post "/jobs/$id/heartbeat" "$(jq -cn --arg t "$token" '{leaseToken: $t}')") || continue
		case ${hb##*$'\n'} in
		200)
			if [ "$(jq -r .cancelRequested <<<"${hb%$'\n'*}")" = true ]; then
				log info "job canceled by a user: stopping it" --arg jobID "$id"
				kill "$pid" 2>/dev/null || true
			fi
			;;
		404 | 409)
			log warn "lease lost: dropping the job" --arg jobID "$id"
			lost=1
			kill "$pid" 2>/dev/null || true
			;;
		esac
	done
	rc=0
	wait "$pid" || rc=$?

	if [ "$lost" = 1 ]; then
		rm -f "$out" "$err"
		continue
	fi
	if [ "$rc" = 0 ] && jq -e . "$out" >/dev/null 2>&1; then
		path=complete
		report=$(jq -cn --arg t "$token" --slurpfile r "$out" '{leaseToken: $t, result: $r[0]}')
	else
		path=fail
		permanent=false
		[ "$rc" = 2 ] && permanent=true
		report=$(jq -cn --arg t "$token" --arg e "$(head -c 1000 "$err")" --argjson p "$permanent" --arg rc "$rc" \
			'{leaseToken: $t, error: (if $e == "" then "exit status \($rc)" else $e end), permanent: $p}')
	fi
	rm -f "$out" "$err"
	if resp=$(post "/jobs/$id/$path" "$report"); then
		log info "job reported" --arg jobID "$id" --arg outcome "$path" --arg status "${resp##*$'\n'}"
	else
		log error "could not report; the lease will lapse and the job run again" --arg jobID "$id"
	fi
done
log info "worker stopped"
