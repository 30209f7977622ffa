// spec.h — token generation: plain decoding and speculative decoding with the MTP drafter
// (docs/gemma4.md §4.5–4.6). One loop serves both: a round drafts N tokens (N = 0 is plain
// decoding), verifies the pending token and the drafts in ONE batched verifier pass,
// accepts the agreeing prefix (greedy) or applies the speculative-sampling rule, and rolls
// the KV cache back to the accepted positions.
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
} ilm_gen_opts;

typedef struct {
    int n_prompt, n_gen;
    double t_prompt, t_gen;             // seconds
    long rounds, drafted, accepted;
    long drafted_at[ILM_SPEC_MAX_DRAFT], accepted_at[ILM_SPEC_MAX_DRAFT];  // per chain position
    long rounds_with_n[ILM_SPEC_MAX_DRAFT + 1];  // how often each draft length was used
    int final_draft_max;                // autotune's choice at the end (0: drafting off)
    double t_plain_step;                // fastest single-token verifier pass (a plain decoding
    int plain_steps;                    //   step), seconds, over plain_steps passes (0: none)
    bool stopped_at_eog;
} ilm_gen_stats;

// Generates from the engine's sequence 0, continuing its KV cache: the prompt tokens are
// appended to whatever the cache holds. drafter may be NULL.
int ilm_generate(ilm_engine *e, ilm_drafter *drafter, ilm_sampler *s, const int32_t *prompt, int n_prompt,
                 const ilm_gen_opts *o, ilm_gen_stats *st, ilm_err *err);

// Prints the statistics block (prompt/generation speed, drafting and acceptance) to stderr.
void ilm_gen_stats_print(const ilm_gen_stats *st, const ilm_engine *e, bool speculative);
