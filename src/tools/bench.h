// bench.h — the measurements behind `ironlm bench` (src/tools/bench.c): prefill, decode at a
// context depth, prompt+generation, speculative decoding per draft length, and the component
// costs of speculation (verify(N+1)/decode(1), drafter step). src/cli/cmd_bench.c parses the
// options, loops over models x threads x tests and prints the tables.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model/drafter.h"
#include "gen/engine.h"
#include "gen/scheduler.h"

// What the table says about a model file.
typedef struct {
    char type[64];              // "gemma4 12B Q4_0"
    uint64_t size;              // bytes of all tensors
    uint64_t n_params;          // elements of all tensors
    // Bytes a forward pass streams (see ilm_bench_streamed): dense = every tensor but the
    // lookup-only tables (per-layer token embeddings; the token embedding when a separate
    // output head exists); experts = the MoE expert tensors.
    uint64_t dense_bytes, expert_bytes;
    // Multiply-adds per prompt token of the matrix products (prefill's %peak): the 2-D weights
    // but the lookup tables and the output head (one row per batch), experts at their share.
    uint64_t token_macs, expert_macs;
    int n_expert, n_expert_used;
} ilm_bench_model_info;

void ilm_bench_model_info_get(const ilm_model *m, ilm_bench_model_info *out);
// Weight bytes one verifier pass over n_tok tokens reads: the dense weights once, and the
// expected share of experts that n_tok tokens route to (1 - (1 - k/E)^n_tok, uniform routing).
double ilm_bench_streamed(const ilm_bench_model_info *mi, int n_tok);

// Deterministic "random" token ids in [0, n_vocab) (fixed seed; ids below 8 avoided, where
// Gemma keeps its control tokens).
void ilm_bench_tokens(int32_t *out, int n, int n_vocab, uint64_t seed);

// Timed runs. Each sets *secs to the timed part and *bytes to the weight bytes it streamed.
//   context: fills sequence 0's cache with max(depth, 1) fixed pseudo-random tokens (untimed
//            set-up, done once per test) and sets *next to the greedy token after them.
//   prefill: rolls the cache back to `depth` (0, or a context made before), then n_prompt
//            tokens in passes of the engine's batch size.
//   decode:  rolls back to the context of max(depth, 1) tokens, then n_gen greedy single-token
//            passes starting from `next` (each pass's argmax is the next input; no stop at
//            end-of-generation tokens).
//   pg:      from an empty cache, n_prompt tokens of prefill then n_gen decode passes, all timed.
int ilm_bench_context(ilm_engine *e, int depth, int32_t *next, ilm_err *err);
int ilm_bench_prefill(ilm_engine *e, const ilm_bench_model_info *mi, int depth, int n_prompt, double *secs,
                      double *bytes, ilm_err *err);
int ilm_bench_decode(ilm_engine *e, const ilm_bench_model_info *mi, int depth, int32_t next, int n_gen,
                     double *secs, double *bytes, ilm_err *err);
int ilm_bench_pg(ilm_engine *e, const ilm_bench_model_info *mi, int n_prompt, int n_gen, double *secs,
                 double *bytes, ilm_err *err);

// Speculative (or, with draft_max 0 / d NULL, plain) greedy decoding of n_gen tokens after
// `prompt` (prefill untimed) through ilm_generate. *secs covers the n_gen tokens that come
// out of verifier rounds; st gets ilm_generate's statistics.
int ilm_bench_spec(ilm_engine *e, ilm_drafter *d, const ilm_bench_model_info *mi, const int32_t *prompt,
                   int n_prompt, int draft_max, int n_gen, double *secs, double *bytes, ilm_gen_stats *st,
                   ilm_err *err);

#define ILM_BENCH_MAX_VERIFY 8

// Component costs of speculative decoding, measured directly at the depth of `prompt`:
// the fastest of several passes (interference only ever adds time).
typedef struct {
    int depth;
    double t_decode;                            // one single-token verifier pass (s)
    double t_verify[ILM_BENCH_MAX_VERIFY + 1];  // [N]: one pass of N+1 tokens, N = 1..n_max (s)
    double t_draft;                             // one ilm_drafter_step (s); 0 without a drafter
    int n_max;
} ilm_bench_costs;

int ilm_bench_measure_costs(ilm_engine *e, ilm_drafter *d, const int32_t *prompt, int n_prompt, int n_max,
                            ilm_bench_costs *c, ilm_err *err);
// Projected speedup of draft length N over plain decoding when each draft is accepted with
// probability a (given the previous ones were): Σ_{k=0..N} a^k tokens per round, at
// (verify(N+1) + N·draft) / decode(1) the cost of a plain step.
double ilm_bench_projected_speedup(const ilm_bench_costs *c, int N, double a);
