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

struct ilm_constraint;  // gen/constrain.h

// One logit adjustment: logits[token] += bias. -INFINITY bans the token (+INFINITY forces it).
typedef struct {
    int32_t token;
    float bias;
} ilm_logit_bias;

// Capacity of the --logit-bias list ilm_sampler_parse_opt fills (cli_bias below).
#define ILM_SAMPLER_CLI_BIAS_MAX 64

typedef struct {
    float temperature;  // <= 0: greedy (argmax, lowest id on ties); the other knobs are then ignored
    int top_k;          // keep the k largest logits; 0 = off
    float top_p;        // keep the smallest prefix (by probability) whose mass reaches top_p; >= 1 = off
    float min_p;        // keep tokens with p >= min_p * p_max; 0 = off
    uint64_t seed;
    // ---- adjustments of the logits before the chain (llama.cpp's order: bias, then penalties).
    // A zero-initialised tail means "all off", so `{.temperature = ..., .seed = ...}` still works.
    // Penalties (llama.cpp's llama_sampler_penalties), for each token t that occurs count(t) > 0
    // times among the last repeat_last_n accepted tokens (ilm_sampler_accept):
    //   l = l > 0 ? l / repeat_penalty : l * repeat_penalty;
    //   l -= count(t) * frequency_penalty + presence_penalty;
    float repeat_penalty;     // 1 = off (0, as in a zero-initialised struct, also means off); else > 0
    int repeat_last_n;        // window in tokens; 0 = no penalties at all; -1 = the whole history
    float presence_penalty;   // 0 = off
    float frequency_penalty;  // 0 = off
    // Logit bias: the caller's array, copied by ilm_sampler_init (it may go away afterwards).
    // Ids must be >= 0 (checked by ilm_sampler_init) and < n_vocab (checked by
    // ilm_sampler_reserve; the per-token calls skip ids outside the row). Entries for the same id add.
    const ilm_logit_bias *logit_bias;
    int n_logit_bias;
    // --logit-bias options parsed by ilm_sampler_parse_opt land here, inside the struct, so params
    // are plain values (copyable, nothing to free). Applied after logit_bias[], same rules.
    ilm_logit_bias cli_bias[ILM_SAMPLER_CLI_BIAS_MAX];
    int n_cli_bias;
    bool seed_set;      // set by ilm_sampler_parse_opt when --seed was given (any 64-bit value)
} ilm_sampler_params;

// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, seed 0; adjustments
// off: repeat_penalty 1, repeat_last_n 64, presence 0, frequency 0, no bias.
ilm_sampler_params ilm_sampler_default_params(void);

// Parses one `run` option at argv[*i] into p, llama.cpp's names and syntax:
//   --temp T (0..100)  --top-k K (0..2^24)  --top-p P (0..1)  --min-p P (0..1)  --seed S (0..2^64-1)
//   --repeat-penalty P (> 0, <= 100)  --repeat-last-n N (-1..2^24)
//   --presence-penalty P, --frequency-penalty P (-100..100)
//   --logit-bias TOKEN(+|-)BIAS  e.g. 15043+1, 15043-inf (repeatable, up to ILM_SAMPLER_CLI_BIAS_MAX)
// Returns 1 when argv[*i] was one of these (*i then points at its value), 0 when it is not,
// -1 on a missing or bad value (err names the option, the value and the accepted range).
// --seed sets seed and seed_set. Numbers go through base/util.h's parsers.
int ilm_sampler_parse_opt(ilm_sampler_params *p, int argc, char **argv, int *i, ilm_err *err);

typedef struct {
    ilm_sampler_params params;  // params.logit_bias points at `bias` below (n_cli_bias = 0)
    uint64_t rng[4];    // xoshiro256** state
    // Scratch reused across calls: (id, logit, weight) of the candidates that survive the filters.
    struct ilm_sampler_candidate *cand;
    int *topk_idx;      // ilm_topk's output, [cand_cap]
    int cand_cap;
    // ---- adjustments
    ilm_logit_bias *bias;  // owned: params.logit_bias[] then params.cli_bias[]
    int n_bias;
    float *adj;            // the adjusted logits row, [adj_cap]
    int adj_cap;
    // History window (kept only when a penalty is active): a ring of the last repeat_last_n
    // accepted tokens (repeat_last_n = -1: an array of all of them, grown as needed).
    int32_t *hist;
    int hist_cap, hist_len, hist_head;  // hist_head: oldest entry once the ring is full
    int32_t *count;        // occurrences of each token id in the window, [count_cap]
    int count_cap;
    int n_vocab;           // from ilm_sampler_reserve (0 before): accepted ids must be below it
    bool oom;              // an accept could not grow the history: per-token calls return -1
    // Optional output constraint (gen/constrain.h; the caller's, not owned; NULL = none): its mask
    // joins the adjustments (after bias and penalties, before the chain) and
    // ilm_sampler_accept_generated advances it.
    struct ilm_constraint *constraint;
} ilm_sampler;

// Validates the parameters (finite temperature, top_k >= 0, top_p >= 0, min_p in [0, 1];
// finite penalties, repeat_penalty >= 0 (0 = off), repeat_last_n >= -1; bias ids >= 0, biases not NaN).
int ilm_sampler_init(ilm_sampler *s, const ilm_sampler_params *p, ilm_err *err);
void ilm_sampler_free(ilm_sampler *s);
// Restarts the random stream as if freshly initialised with this seed.
void ilm_sampler_reseed(ilm_sampler *s, uint64_t seed);
// Allocates the scratch for a vocabulary up front, so the per-token calls never allocate (nor
// does ilm_sampler_accept of ids < n_vocab, except for the growing whole-history window).
// Rejects logit-bias ids >= n_vocab.
int ilm_sampler_reserve(ilm_sampler *s, int n_vocab, ilm_err *err);

bool ilm_sampler_is_greedy(const ilm_sampler *s);
// True when a logit bias, a penalty or a constraint is configured, i.e. ilm_sample / ilm_sampler_probs may
// see other logits than the caller's. When false, greedy choice is exactly ilm_argmax(logits).
bool ilm_sampler_adjusts(const ilm_sampler *s);

// History for the penalties: appends one token (callers accept the prompt tokens and then each
// generated token, as llama.cpp's server does). Negative ids, and after ilm_sampler_reserve ids
// >= n_vocab, are ignored. A no-op when no
// penalty is active. Allocation failure is sticky: the next ilm_sample / ilm_sampler_probs
// return -1 (until ilm_sampler_reset).
void ilm_sampler_accept(ilm_sampler *s, int32_t token);
// A generated token (not a prompt token): ilm_sampler_accept, and the constraint (if any)
// advances by it (a token it does not allow leaves it as it was).
void ilm_sampler_accept_generated(ilm_sampler *s, int32_t token);
// Forgets the history (a new request). The random stream is left alone.
void ilm_sampler_reset(ilm_sampler *s);

// The adjustments, when ilm_sampler_adjusts: logits -> + bias -> penalties (over the window at
// the time of the call) -> the constraint's mask (its state at the time of the call) -> the chain below, greedy included (argmax of the adjusted logits).
// They work on a copy; the caller's row is never written.

// The next token for one row of logits (NaN logits count as -inf). The chain, as in llama.cpp
// with the temperature applied before the probability filters:
//   [adjustments ->] top-k -> softmax(logits / T) -> top-p -> min-p -> renormalise -> draw.
// Returns -1 only when the scratch cannot be allocated (see ilm_sampler_reserve) or the
// history could not (ilm_sampler_accept).
int32_t ilm_sample(ilm_sampler *s, const float *logits, int n_vocab);

// The final distribution ilm_sample draws from: probs_out[n_vocab] gets the renormalised
// probabilities of the surviving tokens and 0 elsewhere (greedy: one-hot at the argmax).
// Consumes no randomness. Returns 0, or -1 when the scratch (or history) cannot be allocated.
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
