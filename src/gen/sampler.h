// sampler.h — next-token choice from a row of logits: greedy, or temperature with top-k / top-p /
// min-p, deterministic per seed; plus the speculative-sampling acceptance rule (docs/gemma4.md §4.6).
//
// One ilm_sampler per generated sequence: it owns its PRNG state and scratch, so parallel
// sequences (server slots) never share randomness and a seed reproduces a run exactly.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/topk.h"  // ilm_argmax: greedy choice
#include "base/util.h"

typedef struct {
    float temperature;  // <= 0: greedy (argmax, lowest id on ties); the other knobs are then ignored
    int top_k;          // keep the k largest logits; 0 = off
    float top_p;        // keep the smallest prefix (by probability) whose mass reaches top_p; >= 1 = off
    float min_p;        // keep tokens with p >= min_p * p_max; 0 = off
    uint64_t seed;
} ilm_sampler_params;

// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, seed 0.
ilm_sampler_params ilm_sampler_default_params(void);

typedef struct {
    ilm_sampler_params params;
    uint64_t rng[4];    // xoshiro256** state
    // Scratch reused across calls: (id, logit, weight) of the candidates that survive the filters.
    struct ilm_sampler_candidate *cand;
    int *topk_idx;      // ilm_topk's output, [cand_cap]
    int cand_cap;
} ilm_sampler;

// Validates the parameters (finite temperature, top_k >= 0, top_p >= 0, min_p in [0, 1]).
int ilm_sampler_init(ilm_sampler *s, const ilm_sampler_params *p, ilm_err *err);
void ilm_sampler_free(ilm_sampler *s);
// Restarts the random stream as if freshly initialised with this seed.
void ilm_sampler_reseed(ilm_sampler *s, uint64_t seed);
// Allocates the scratch for a vocabulary up front, so the per-token calls never allocate.
int ilm_sampler_reserve(ilm_sampler *s, int n_vocab, ilm_err *err);

bool ilm_sampler_is_greedy(const ilm_sampler *s);

// The next token for one row of logits (NaN logits count as -inf). The chain, as in llama.cpp
// with the temperature applied before the probability filters:
//   top-k -> softmax(logits / T) -> top-p -> min-p -> renormalise -> draw.
// Returns -1 only when the scratch cannot be allocated (see ilm_sampler_reserve).
int32_t ilm_sample(ilm_sampler *s, const float *logits, int n_vocab);

// The final distribution ilm_sample draws from: probs_out[n_vocab] gets the renormalised
// probabilities of the surviving tokens and 0 elsewhere (greedy: one-hot at the argmax).
// Consumes no randomness. Returns 0, or -1 when the scratch cannot be allocated.
int ilm_sampler_probs(ilm_sampler *s, const float *logits, int n_vocab, float *probs_out);

// Draws a token from a probability vector (it need not sum to 1; negative entries count as 0).
// Returns 0 when the vector has no positive mass.
int32_t ilm_sample_probs(ilm_sampler *s, const float *probs, int n_vocab);

// Speculative sampling, one drafted position (docs/gemma4.md §4.6). p_target is the verifier's
// final distribution at this position (ilm_sampler_probs of its logits row), q_draft the
// distribution the draft was drawn from (after the same transforms), or NULL for a deterministic
// drafter, i.e. q = one-hot at `draft` (MTP drafts are argmaxes).
//   accept with probability min(1, p(d) / q(d))                      -> *out_token = d, returns 1
//   otherwise draw from r = normalise(max(0, p - q)), returns 0       -> *out_token = that draw
// Why it is exact: P(emit x) = q(x) min(1, p(x)/q(x)) + P(reject) r(x)
//   = min(q(x), p(x)) + (sum_y max(0, p(y) - q(y))) * max(0, p(x) - q(x)) / sum_y max(0, p(y) - q(y))
//   = min(q(x), p(x)) + max(0, p(x) - q(x)) = p(x).
// With q one-hot at d this is: accept with probability p(d), else draw from p with d removed.
// After the first rejection the round stops; when every draft is accepted the bonus token is
// drawn from the next row's p (ilm_sample or ilm_sample_probs). Greedy samplers give one-hot
// p_target, so this reduces to "accept iff d == argmax, else emit the argmax".
// Consumes randomness only when the outcome is uncertain (0 < p(d) < q(d)) and when drawing.
int ilm_spec_accept(ilm_sampler *s, const float *p_target, const float *q_draft, int32_t draft,
                    int n_vocab, int32_t *out_token);
