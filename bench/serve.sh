#!/usr/bin/env bash
# bench/serve.sh — server throughput: plain vs MTP at 1, 2, 4, 8 slots through `ironlm serve`,
# and the same clients (ironlm loadtest) against ik_llama.cpp's llama-server when IK_SERVER
# names its binary (built by you, outside this repository), interleaved in one run.
#
#   bench/serve.sh MODEL.gguf DRAFTER.gguf [SLOTS (1,2,4,8)]
#   env: THREADS (2), REQUESTS per slot (4), MAX_TOKENS (128), PROMPTS (bench/prompts/python.txt),
#        IK_SERVER (path to llama-server; unset: ironlm only), DRAFT_MAX (3), IRONLM (./ironlm),
#        AUTOTUNE (1: also an "mtp autotune" row: ironlm serve --spec-autotune),
#        ROUNDS (1): repeat the whole interleaved set; a summary gives medians over the rounds
#
# Prints one markdown table: a row per (slots, engine, mode), the loadtest columns (aggregate
# generated t/s over the wall time, mean single-stream decode t/s, TTFT and inter-token
# latency percentiles, acceptance), then `ironlm run` on the same prompts for the single-stream
# reference. Every server gets the same threads, context per slot, prompts and requests.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bench/serve.sh MODEL.gguf DRAFTER.gguf [SLOTS]}
DRAFTER=${2:?usage: bench/serve.sh MODEL.gguf DRAFTER.gguf [SLOTS]}
SLOTS=${3:-1,2,4,8}
THREADS=${THREADS:-2}
REQUESTS=${REQUESTS:-4}
MAX_TOKENS=${MAX_TOKENS:-128}
PROMPTS=${PROMPTS:-bench/prompts/python.txt}
DRAFT_MAX=${DRAFT_MAX:-3}
IRONLM=${IRONLM:-./ironlm}
CTX_PER_SLOT=1024
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

next_port=18200
free_port() { # a loopback port no earlier row used and nothing listens on
    while (echo >/dev/tcp/127.0.0.1/$next_port) 2>/dev/null; do next_port=$((next_port + 1)); done
    echo $next_port
}

wait_health() { # PORT: until /health says 200 (60 s)
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health" || true)" = 200 ] && return 0
        sleep 0.1
    done
    echo "server on port $1 did not become ready; its log:" >&2
    tail -5 "$tmp/server.log" >&2
    return 1
}

row() { # ENGINE MODE NP CMD...: start a server, run the clients, print the table row
    local engine=$1 mode=$2 np=$3
    shift 3
    local port
    port=$(free_port)
    next_port=$((port + 1))
    "$@" --port "$port" >"$tmp/server.log" 2>&1 &
    pid=$!
    wait_health "$port"
    local out
    out=$("$IRONLM" loadtest --url "http://127.0.0.1:$port" --endpoint completions --concurrency "$np" \
        --requests $((REQUESTS * np < 8 ? 8 : REQUESTS * np)) --max-tokens "$MAX_TOKENS" --prompt-file "$PROMPTS" 2>&1 |
        grep -E '^\| +[0-9]' || true)
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
    echo "| $np | $engine | $mode $out" | tee -a "$tmp/rows.txt"
}

echo "server benchmark: $(basename "$MODEL") + $(basename "$DRAFTER"), $THREADS threads, $CTX_PER_SLOT positions per slot,"
echo "$MAX_TOKENS max tokens, prompts $PROMPTS, draft-max $DRAFT_MAX; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| slots | engine | mode | conc | ok | err | cancel | wall s | gen t/s | stream t/s | TTFT p50 | TTFT p90 | TTFT p99 | ITL p50 | ITL p90 | ITL p99 | accept |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for round in $(seq "${ROUNDS:-1}"); do
for np in ${SLOTS//,/ }; do
    ctx=$((CTX_PER_SLOT * np))
    row ironlm plain $np "$IRONLM" serve -m "$MODEL" -np "$np" -c "$ctx" -t "$THREADS" --quiet
    row ironlm mtp $np "$IRONLM" serve -m "$MODEL" --draft "$DRAFTER" --draft-max "$DRAFT_MAX" -np "$np" -c "$ctx" \
        -t "$THREADS" --quiet
    if [ "${AUTOTUNE:-0}" = 1 ]; then
        row ironlm "mtp autotune" $np "$IRONLM" serve -m "$MODEL" --draft "$DRAFTER" --draft-max "$DRAFT_MAX" --spec-autotune \
            -np "$np" -c "$ctx" -t "$THREADS" --quiet
    fi
    if [ -n "${IK_SERVER:-}" ]; then
        row ik_llama.cpp plain $np "$IK_SERVER" -m "$MODEL" -np "$np" -c "$ctx" -t "$THREADS" -ngl 0
        if [ "$np" -eq 1 ]; then
            row ik_llama.cpp mtp $np "$IK_SERVER" -m "$MODEL" -md "$DRAFTER" --spec-type "mtp:n_max=$DRAFT_MAX,p_min=0" \
                -np "$np" -c "$ctx" -t "$THREADS" -ngl 0
        else  # it refuses to start: "Speculative decoding is currently limited to a single server slot (-np 1)"
            echo "| $np | ik_llama.cpp | mtp | refuses -md with -np > 1: its MTP row is its plain row | | | | | | | | | | | | | |"
        fi
    fi
done
done
if [ "${ROUNDS:-1}" -gt 1 ]; then
    echo
    echo "medians over ${ROUNDS} rounds (gen t/s = aggregate; x plain = against the same engine's plain row at the same slots)"
    echo
    echo "| slots | engine | mode | gen t/s | x plain | stream t/s | accept |"
    echo "|---:|---|---|---:|---:|---:|---:|"
    awk -F'|' '$8 ~ /[0-9]/ {
        key = $2 "|" $3 "|" $4; gsub(/ +/, " ", key)
        n[key]++; g[key, n[key]] = $10 + 0; st[key, n[key]] = $11 + 0; acc[key] = $18
        if (!(key in seen)) { seen[key] = 1; order[++k] = key }
    }
    function median(a, key, m,   i, j, t, v) {
        for (i = 1; i <= m; i++) v[i] = a[key, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    END {
        for (i = 1; i <= k; i++) { key = order[i]; med[key] = median(g, key, n[key]) }
        for (i = 1; i <= k; i++) {
            key = order[i]; split(key, f, "|"); base = f[1] "|" f[2] "| plain "
            ratio = (base in med) && med[base] > 0 ? sprintf("%.2fx", med[key] / med[base]) : "-"
            printf "|%s|%s|%s| %.1f | %s | %.1f |%s|\n", f[1], f[2], f[3], med[key], ratio, median(st, key, n[key]), acc[key]
        }
    }' "$tmp/rows.txt"
fi
echo
echo "single stream without the server: ironlm run on the same prompts, -n $MAX_TOKENS, greedy"
echo
echo "| mode | mean generation t/s over $(grep -c . "$PROMPTS") prompts |"
echo "|---|---:|"
for mode in plain mtp; do
    extra=()
    [ $mode = mtp ] && extra=(--draft "$DRAFTER" --draft-max "$DRAFT_MAX")
    sum=0
    n=0
    while IFS= read -r line; do
        [ -z "$line" ] && continue
        printf '%b' "$line" >"$tmp/prompt.txt"
        tps=$("$IRONLM" run -m "$MODEL" "${extra[@]}" -f "$tmp/prompt.txt" -n "$MAX_TOKENS" --temp 0 -t "$THREADS" \
            -c "$CTX_PER_SLOT" 2>&1 >/dev/null | grep -o 'generated [0-9]* tokens in [0-9.]* s ([0-9.]* t/s)' |
            grep -o '([0-9.]*' | tr -d '(')
        sum=$(awk -v a="$sum" -v b="$tps" 'BEGIN { print a + b }')
        n=$((n + 1))
    done <"$PROMPTS"
    awk -v m=$mode -v s="$sum" -v n=$n 'BEGIN { printf "| %s | %.1f |\n", m, s / n }'
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
