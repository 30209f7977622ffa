#!/usr/bin/env bash
# bench/serve-single.sh — one stream through `ironlm serve` against `ironlm run`, interleaved
# prompt by prompt (this VM's speed drifts by tens of percent over minutes as its L3 holds
# more or less of the model, so the two are measured side by side, not one after the other).
#
#   bench/serve-single.sh MODEL.gguf DRAFTER.gguf
#   env: THREADS (2), MAX_TOKENS (128), PROMPTS (bench/prompts/python.txt), PASSES (2), IRONLM (./ironlm)
#
# For plain decoding and for MTP (draft-max 3): a one-slot server stays up; for every prompt,
# `ironlm run` generates MAX_TOKENS greedily (its generation t/s) and then the same prompt goes
# through the server (`ironlm loadtest`, 1 request: the client-side decode t/s after the first
# token). Prints the means and server / run.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bench/serve-single.sh MODEL.gguf DRAFTER.gguf}
DRAFTER=${2:?usage: bench/serve-single.sh MODEL.gguf DRAFTER.gguf}
THREADS=${THREADS:-2}
MAX_TOKENS=${MAX_TOKENS:-128}
PROMPTS=${PROMPTS:-bench/prompts/python.txt}
PASSES=${PASSES:-2}
IRONLM=${IRONLM:-./ironlm}
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

echo "single stream: $(basename "$MODEL") + $(basename "$DRAFTER"), $THREADS threads, $MAX_TOKENS tokens, $PASSES passes over $PROMPTS"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| mode | ironlm run t/s | ironlm serve t/s (client side) | serve / run |"
echo "|---|---:|---:|---:|"
for mode in plain mtp; do
    extra=()
    [ $mode = mtp ] && extra=(--draft "$DRAFTER" --draft-max 3)
    "$IRONLM" serve -m "$MODEL" "${extra[@]}" -np 1 -c 1024 -t "$THREADS" --port 0 >"$tmp/server.log" 2>&1 &
    pid=$!
    port=""
    for _ in $(seq 300); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/server.log" | grep -o '[0-9]*$' || true)
        [ -n "$port" ] && grep -q 'ready' "$tmp/server.log" && break
        sleep 0.1
    done
    run_sum=0 srv_sum=0 n=0
    for _ in $(seq "$PASSES"); do
        while IFS= read -r line; do
            [ -z "$line" ] && continue
            printf '%b' "$line" >"$tmp/prompt.txt"
            printf '%s\n' "$line" >"$tmp/one.txt"
            r=$("$IRONLM" run -m "$MODEL" "${extra[@]}" -f "$tmp/prompt.txt" -n "$MAX_TOKENS" --temp 0 -t "$THREADS" \
                -c 1024 2>&1 >/dev/null | grep -o 'generated [0-9]* tokens in [0-9.]* s ([0-9.]* t/s)' |
                grep -o '([0-9.]*' | tr -d '(')
            s=$("$IRONLM" loadtest --url "http://127.0.0.1:$port" --endpoint completions --requests 1 \
                --max-tokens "$MAX_TOKENS" --prompt-file "$tmp/one.txt" --json 2>/dev/null |
                grep -o '"stream_tps":[0-9.]*' | cut -d: -f2)
            run_sum=$(awk -v a="$run_sum" -v b="$r" 'BEGIN { print a + b }')
            srv_sum=$(awk -v a="$srv_sum" -v b="$s" 'BEGIN { print a + b }')
            n=$((n + 1))
        done <"$PROMPTS"
    done
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
    awk -v m=$mode -v r="$run_sum" -v s="$srv_sum" -v n=$n \
        'BEGIN { printf "| %s | %.1f | %.1f | %.3f |\n", m, r / n, s / n, s / r }'
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
