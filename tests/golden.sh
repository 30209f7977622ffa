#!/usr/bin/env bash
# golden.sh — hashes of everything numerical ironlm outputs on the fixture models, for
# behaviour-preserving changes (a refactor must leave every line identical).
#
#   tests/golden.sh BIN [FIXTURES] > hashes.txt      one line per output: isa, case, sha256
#
# Cases per model and kernel set: logits with an F32 and an F16 KV cache, with F32
# activations (W4A16 semantics), with 5-token batches; greedy ids (run --ids) and, for the
# verifier+drafter pairs, the same ids with the drafter. Compare two builds with
#   diff <(tests/golden.sh OLD_BIN) <(tests/golden.sh NEW_BIN)
# (make golden-compare REF=<git rev> does exactly that against a build of REF).
set -euo pipefail
BIN=${1:?usage: golden.sh BIN [FIXTURES]}
FX=${2:-${IRONLM_FIXTURES:-../shared/fixtures}}
[ -d "$FX" ] || { echo "golden.sh: no fixtures at $FX" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
TOK=2,17,300,45,912,7,88,501,23,640,3,777,150,64,999,12,305,48,260,731,5,418,96,880,31,555,200,9,672,140,33,404,61,820,19,700,256,77,990,2
h() { sha256sum "$1" | cut -c1-16; }
models=(hf/dense-f32.gguf hf/moe-f32.gguf hf/ple-f32.gguf hf/ple2-f32.gguf
        ik/models/gemma4-tiny-dense-bf16.gguf ik/models/gemma4-tiny-dense-q4_0.gguf ik/models/gemma4-tiny-dense-q8_0.gguf
        ik/models/gemma4-tiny-moe-q4_0.gguf ik/models/gemma4-tiny-moe-q8_0.gguf
        models/pycoder/pycoder-bf16.gguf)
pairs=("hf/dense-f32.gguf hf/mtp-f32.gguf" "hf/dense-f32.gguf hf/mtp-plain-f32.gguf"
       "hf/dense-f32.gguf hf/mtp-plain-assistant-f32.gguf"
       "ik/models/gemma4-tiny-dense-q8_0.gguf ik/models/gemma4-tiny-dense-mtp-q8_0.gguf"
       "models/pycoder/pycoder-bf16.gguf models/pycoder/pycoder-mtp-bf16.gguf")
for isa in scalar avx2 avx512 avx512vnni avx512bf16 neon neondot; do
    IRONLM_ISA=$isa $BIN logits -m "$FX/hf/dense-f32.gguf" --tokens 2 -o "$tmp/probe" -t 1 2>/dev/null || continue
    export IRONLM_ISA=$isa
    for m in "${models[@]}"; do
        [ -f "$FX/$m" ] || continue
        $BIN logits -m "$FX/$m" --tokens $TOK -o "$tmp/a" --kv-type f32 -t 2 2>/dev/null; echo "$isa $m logits-f32kv $(h "$tmp/a")"
        $BIN logits -m "$FX/$m" --tokens $TOK -o "$tmp/a" --kv-type f16 -t 2 2>/dev/null; echo "$isa $m logits-f16kv $(h "$tmp/a")"
        $BIN logits -m "$FX/$m" --tokens $TOK -o "$tmp/a" --act f32 -t 2 2>/dev/null; echo "$isa $m logits-actf32 $(h "$tmp/a")"
        $BIN logits -m "$FX/$m" --tokens $TOK -o "$tmp/a" -b 5 -t 1 2>/dev/null; echo "$isa $m logits-b5 $(h "$tmp/a")"
        ids=$($BIN run -m "$FX/$m" --tokens 2,17,300,45 -n 40 --temp 0 --ignore-eos --ids -t 2 2>/dev/null)
        echo "$isa $m greedy $(echo "$ids" | sha256sum | cut -c1-16)"
    done
    for p in "${pairs[@]}"; do
        set -- $p
        [ -f "$FX/$1" ] && [ -f "$FX/$2" ] || continue
        for k in 1 3; do
            ids=$($BIN run -m "$FX/$1" --draft "$FX/$2" --draft-max $k --tokens 2,17,300,45 -n 40 --temp 0 --ignore-eos --ids -t 2 2>/dev/null)
            echo "$isa $1+$(basename "$2") draft$k $(echo "$ids" | sha256sum | cut -c1-16)"
        done
        ids=$($BIN run -m "$FX/$1" --draft "$FX/$2" --draft-max 3 --tokens 2,17,300,45 -n 40 --temp 0.8 --seed 7 --ignore-eos --ids -t 2 2>/dev/null)
        echo "$isa $1+$(basename "$2") sampled-draft3 $(echo "$ids" | sha256sum | cut -c1-16)"
    done
    ids=$($BIN run -m "$FX/models/pycoder/pycoder-bf16.gguf" -p "def main(argv):" -n 40 --temp 0.8 --seed 11 -t 2 2>/dev/null)
    echo "$isa pycoder text-sampled $(echo "$ids" | sha256sum | cut -c1-16)"
done
