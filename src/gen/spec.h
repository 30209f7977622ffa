// spec.h — the pieces of speculative decoding with the MTP drafter (docs/gemma4.md §4.5–4.6)
// that act on one sequence: generation options and statistics, the acceptance of a verified
// round, and draft-length autotuning. A round drafts N tokens (N = 0 is plain decoding),
// verifies the pending token and the drafts in one batched verifier pass, accepts the agreeing
// prefix (greedy) or applies the speculative-sampling rule, and rolls the KV cache back to the
// accepted positions. The loop that runs rounds for one or many sequences is gen/scheduler.c.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "model/drafter.h"
#include "gen/engine.h"
#include "gen/sampler.h"

#define ILM_SPEC_MAX_DRAFT 16

typedef struct {
    int n_predict;          // tokens to generate (the first one comes from the prompt's logits)
    bool ignore_eos;        // do not stop at end-of-generation tokens
    const int32_t *eog;     // end-of-generation ids
    int n_eog;
    int draft_max;          // drafts per round (0: plain decoding)
    float draft_p_min;      // stop a chain when the drafter's top probability is below this
    bool autotune;          // pick the draft length (and on/off) from measured costs and acceptance
    // Called for every generated token in order; a non-zero return stops generation.
    int (*on_token)(void *ctx, int32_t token);
    void *ctx;
    // With a drafter: unless 3 rounds ran without drafts, time plain decoding steps after
    // generation (rolled back, not in t_gen) for ilm_gen_stats.t_plain_step.
    bool measure_plain;
    // ilm_generate only. Polled (with ctx) between engine steps: true ends generation at the
    // next step, as if n_predict were reached (st->interrupted set; `run`'s Ctrl-C).
    bool (*interrupted)(void *ctx);
    // ilm_generate only: the end of the context ends generation normally (st->hit_context set)
    // instead of being an error.
    bool context_end_ok;
} ilm_gen_opts;

typedef struct {
    int n_prompt, n_gen;                // prompt tokens computed (not counting n_cached), generated
    int n_cached;                       // prompt tokens whose K/V were reused from the slot's cache
    double t_prompt, t_gen;             // seconds
    long rounds, drafted, accepted;
    long drafted_at[ILM_SPEC_MAX_DRAFT], accepted_at[ILM_SPEC_MAX_DRAFT];  // per chain position
    long rounds_with_n[ILM_SPEC_MAX_DRAFT + 1];  // how often each draft length was used
    int final_draft_max;                // autotune's choice at the end (0: drafting off)
    double t_plain_step;                // fastest single-token verifier pass (a plain decoding
    int plain_steps;                    //   step), seconds, over plain_steps passes (0: none)
    bool stopped_at_eog;
    bool hit_context;                   // ended at the end of the context (context_end_ok)
    bool interrupted;                   // ended by ilm_gen_opts.interrupted
} ilm_gen_stats;

// Draft-length autotuning (spec.c). Predicts tokens/s of each draft length N from measured
// costs and acceptance and picks the best; one per generated sequence.
typedef struct {
    int max;
    double t_verify[ILM_SPEC_MAX_DRAFT + 2];  // fastest verifier pass of k tokens (s)
    int n_verify[ILM_SPEC_MAX_DRAFT + 2];
    double t_draft;                           // fastest drafter step (s)
    int n_draft;
    long tried[ILM_SPEC_MAX_DRAFT + 1], ok[ILM_SPEC_MAX_DRAFT + 1];  // acceptance counts per position
    long round;
    int warm, explore_next;
} ilm_autotune;

// The draft length for the next round (counts the round).
int ilm_autotune_pick(ilm_autotune *a);
// The best length by the current estimates (0: drafting off).
int ilm_autotune_best(const ilm_autotune *a);
// A verifier pass over k positions took `secs`; a drafter step took `secs`.
void ilm_autotune_verified(ilm_autotune *a, int k, double secs);
void ilm_autotune_drafted(ilm_autotune *a, double secs_per_step);

// One verified round (docs/gemma4.md §4.5–4.6): logits rows [n + 1][V] for the pending token and
// the n drafts. Accepts the longest agreeing prefix (greedy) or applies the speculative-sampling
// rule; returns the number a of accepted drafts and sets *next to the token that follows them
// (the correction, or the bonus token when all n were accepted). probs: scratch [V] (sampling
// only). Counts the round in st and at (at may be NULL). The accepted drafts and *next join the
// sampler's penalty history in order (ilm_sampler_accept), so each row sees the tokens before it.
int ilm_spec_round(ilm_sampler *s, const float *logits, int V, const int32_t *drafts, int n, float *probs,
                   ilm_gen_stats *st, ilm_autotune *at, int32_t *next);

// Prints the statistics block (prompt/generation speed, drafting and acceptance) to stderr.
void ilm_gen_stats_print(const ilm_gen_stats *st, const ilm_engine *e, bool speculative);
