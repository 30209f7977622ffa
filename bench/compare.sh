#!/bin/sh
# compare.sh — ironlm and a peer llama-bench (llama.cpp or ik_llama.cpp, built by you) on the
# same GGUF, same threads, same tests, interleaved A B A B, with the ratio per test.
#
#   bench/compare.sh --peer /path/to/llama-bench -m MODEL.gguf [-t 2] [-p 512] [-n 128]
#                    [--rounds 3] [-r 1] [--peer-args "-rtr 1"] [--ironlm-args "--act bf16"]
#                    [--ironlm ./ironlm]
#
# Each round runs `ironlm bench` then the peer once (each with -r repetitions per test); the
# table gives, per test, every round's t/s of each engine, the medians and median(ironlm) /
# median(peer). IRONLM_ISA in the environment reaches ironlm (e.g. IRONLM_ISA=avx2 against an
# AVX2-only peer build). The first ironlm run measures the read bandwidth; later rounds reuse
# it (--read-bw) so a round costs the tests only. Needs only sh, awk and the two binaries.
set -eu

peer= model= threads=2 pp=512 tg=128 rounds=3 reps=1 peer_args="-rtr 1" il_args= ironlm=./ironlm
while [ $# -gt 0 ]; do
    case "$1" in
        --peer) peer=$2; shift 2 ;;
        -m) model=$2; shift 2 ;;
        -t) threads=$2; shift 2 ;;
        -p) pp=$2; shift 2 ;;
        -n) tg=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -r) reps=$2; shift 2 ;;
        --peer-args) peer_args=$2; shift 2 ;;
        --ironlm-args) il_args=$2; shift 2 ;;
        --ironlm) ironlm=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$peer" ] && [ -n "$model" ] || { echo "compare.sh: needs --peer LLAMA_BENCH and -m MODEL.gguf" >&2; exit 2; }
[ -x "$peer" ] || { echo "compare.sh: $peer is not an executable" >&2; exit 2; }
[ -f "$model" ] || { echo "compare.sh: $model is not a file" >&2; exit 2; }
case "$rounds$reps$threads" in *[!0-9]*) echo "compare.sh: --rounds, -r and -t take integers" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT INT TERM

# CSV rows → "test avg_ts" lines (fields quoted or not; commas inside quotes kept).
extract() {
    awk -v want_engine="$1" '
    function split_csv(line, out,    n, i, c, q, f) {
        n = 0; f = ""; q = 0
        for (i = 1; i <= length(line); i++) {
            c = substr(line, i, 1)
            if (c == "\"") { q = !q; continue }
            if (c == "," && !q) { out[++n] = f; f = ""; continue }
            f = f c
        }
        out[++n] = f
        return n
    }
    /^[a-z_]+,/ && !hdr { n = split_csv($0, h); for (i = 1; i <= n; i++) col[h[i]] = i; hdr = 1; next }
    hdr && NF { split_csv($0, v); t = v[col["test"]]; if (t == "") t = (v[col["n_gen"]] > 0 ? "tg" v[col["n_gen"]] : "pp" v[col["n_prompt"]])
                print t, v[col["avg_ts"]], ("gb_s" in col ? v[col["gb_s"]] : 0) + 0, ("bw_pct" in col ? v[col["bw_pct"]] : 0) + 0 }'
}

bw_arg=
machine=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
i=1
while [ "$i" -le "$rounds" ]; do
    # shellcheck disable=SC2086  # the *_args are word lists on purpose
    "$ironlm" bench -m "$model" -t "$threads" -p "$pp" -n "$tg" -r "$reps" -o csv $bw_arg $il_args \
        > "$tmp/il.csv" 2> "$tmp/il.err" || { cat "$tmp/il.err" >&2; exit 1; }
    extract ironlm < "$tmp/il.csv" | sed "s/^/$i ironlm /" >> "$tmp/all"
    if [ -z "$bw_arg" ]; then
        bw=$(extract ironlm < "$tmp/il.csv" | awk '$3 > 0 && $4 > 0 { printf "%.2f", $3 / $4 * 100; exit }')
        [ -n "$bw" ] && bw_arg="--read-bw $bw"
    fi
    # shellcheck disable=SC2086
    "$peer" -m "$model" -t "$threads" -p "$pp" -n "$tg" -r "$reps" -o csv $peer_args \
        > "$tmp/peer.csv" 2> "$tmp/peer.err" || { tail -5 "$tmp/peer.err" >&2; exit 1; }
    extract peer < "$tmp/peer.csv" | sed "s/^/$i peer /" >> "$tmp/all"
    i=$((i + 1))
done
rm -f llama.log

echo "machine: $machine; model: $(basename "$model"); threads: $threads; rounds: $rounds (A B interleaved, -r $reps each)"
echo "ironlm: $ironlm ${IRONLM_ISA:+IRONLM_ISA=$IRONLM_ISA }$il_args; peer: $peer $peer_args${bw_arg:+; ironlm $bw_arg}"
echo
echo "| test | ironlm t/s (rounds) | peer t/s (rounds) | ironlm median | peer median | ratio |"
echo "| --- | --- | --- | ---: | ---: | ---: |"
awk '
function median(s,    n, a, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ key = $3; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
  v = sprintf("%.2f", $4); if ($2 == "ironlm") il[key] = il[key] (il[key] == "" ? "" : " ") v; else pe[key] = pe[key] (pe[key] == "" ? "" : " ") v }
END { for (k = 1; k <= n; k++) { t = order[k]
        mi = il[t] == "" ? 0 : median(il[t]); mp = pe[t] == "" ? 0 : median(pe[t])
        printf "| %s | %s | %s | %.2f | %.2f | %s |\n", t, il[t], pe[t], mi, mp, (mp > 0 ? sprintf("%.2fx", mi / mp) : "-") } }
' "$tmp/all"
