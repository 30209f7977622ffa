#!/bin/sh
# scaling.sh — thread scaling of ironlm against a peer llama-bench on one GGUF: for each thread
# count, bench/compare.sh (interleaved A B rounds), then one table of medians and ratios.
#
#   bench/scaling.sh --peer /path/to/llama-bench -m MODEL.gguf [--threads "1 2 4 8 16"]
#                    [-p 128] [-n 32] [--rounds 1] [-r 1] [--peer-args "-rtr 1"]
#                    [--ironlm-args ""] [--ironlm ./ironlm]
#
# Prints each compare.sh table as it goes (so a run cut short keeps what it measured), then
# "| threads | test | ironlm | peer | ratio |" for every thread count and test.
set -eu

here=$(dirname "$0")
threads="1 2 4 8 16" pass=
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --peer|-m|-p|-n|--rounds|-r|--peer-args|--ironlm-args|--ironlm)
            pass="$pass $1 '$(printf '%s' "$2" | sed "s/'/'\\\\''/g")'"; shift 2 ;;
        *) echo "scaling.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$threads" ] || { echo "scaling.sh: --threads needs a list" >&2; exit 2; }
case "$pass" in *--rounds*) ;; *) pass="$pass --rounds 1" ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
for t in $threads; do
    case "$t" in *[!0-9]*|'') echo "scaling.sh: thread count '$t' is not an integer" >&2; exit 2 ;; esac
    eval "\"$here/compare.sh\" $pass -t $t" > "$tmp/t$t" || { cat "$tmp/t$t"; exit 1; }
    cat "$tmp/t$t"; echo
    awk -v t="$t" -F'|' '/^\| [pt][pg][0-9]/ { for (i = 2; i <= 7; i++) gsub(/ /, "", $i); printf "| %s | %s | %s | %s | %s |\n", t, $2, $5, $6, $7 }' "$tmp/t$t" >> "$tmp/sum"
done
echo "| threads | test | ironlm t/s | peer t/s | ratio |"
echo "| ---: | --- | ---: | ---: | ---: |"
cat "$tmp/sum"
