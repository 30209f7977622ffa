// scheduler.h — the one generation core of `run` and `serve`: N slots, each a sequence with its
// own KV cache (the engine's kv[i]), sampler, drafter-chain state, stop conditions and
// statistics, advanced together one engine step at a time.
//
// A step gathers every active slot's work: prompt chunks (chunked prefill; all slots' chunks
// together at most the engine's batch size -b), single decode tokens and speculative rounds
// (each slot's draft chain first, then the pending token and the drafts as rows), runs ONE
// verifier forward pass over all of it (ilm_forward with one KV cache per slot), then accepts or
// rolls back per slot. The forward pass computes every row as if alone, so a slot's tokens do
// not depend on what shares its batch.
//
// Single-threaded: every call, and every callback, happens on the caller's thread.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gen/spec.h"

typedef enum {
    ILM_END_STOP,     // an end-of-generation token, or on_token asked to stop (a stop string)
    ILM_END_LENGTH,   // n_predict tokens generated
    ILM_END_CONTEXT,  // the slot's context is full
    ILM_END_CANCEL,   // ilm_sched_cancel
    ILM_END_ERROR,    // the forward pass failed (message given)
} ilm_end;

typedef struct {
    const int32_t *prompt;  // [n_prompt] (copied at submit)
    int n_prompt;
    ilm_sampler *sampler;   // the caller's, used until on_end; the prompt and every chosen token
                            // are added to its penalty history (ilm_sampler_accept)
    ilm_gen_opts gen;       // n_predict, end-of-generation ids, drafting, on_token
    // How the prompt meets what the slot's cache holds:
    //   append:  the prompt continues the cache as it is (an interactive chat's next turn);
    //   reuse:   the longest common prefix of the cache and the prompt that is still intact
    //            (ilm_kv_reusable) is kept, the rest computed;
    //   neither: the cache is cleared.
    bool append, reuse;
    // Called once when the job ends (the slot is idle again when it returns). error: the
    // message for ILM_END_ERROR, else NULL.
    void (*on_end)(void *ctx, ilm_end why, const ilm_gen_stats *st, const char *error);
} ilm_job;

typedef struct ilm_sched ilm_sched;

// Slots 0..n_slots-1 use the engine's KV caches kv[0..n_slots-1] (n_slots <= the engine's
// n_seq). max_draft bounds every job's draft length (scratch sizing); drafter may be NULL.
int ilm_sched_create(ilm_sched **out, ilm_engine *e, ilm_drafter *drafter, int n_slots, int max_draft, ilm_err *err);
void ilm_sched_free(ilm_sched *s);
int ilm_sched_slots(const ilm_sched *s);

// Starts a job on an idle slot. Fails (nothing started) when the slot is busy, the prompt is
// empty or does not fit the slot's context.
int ilm_sched_submit(ilm_sched *s, int slot, const ilm_job *job, ilm_err *err);
// Runs one engine step. Returns 0, or -1 when the forward pass failed (its slots ended with
// ILM_END_ERROR; the others go on at the next step).
int ilm_sched_step(ilm_sched *s, ilm_err *err);
// Ends the slot's job at the next step (its on_end gets ILM_END_CANCEL).
void ilm_sched_cancel(ilm_sched *s, int slot);

bool ilm_sched_busy(const ilm_sched *s, int slot);
int ilm_sched_active(const ilm_sched *s);  // busy slots
// Prompt tokens a job would keep from the slot's cache with `reuse`.
int ilm_sched_reusable(const ilm_sched *s, int slot, const int32_t *prompt, int n_prompt);
// The idle slot whose cache keeps the most of this prompt (ties: the least recently used);
// -1 when every slot is busy.
int ilm_sched_pick(const ilm_sched *s, const int32_t *prompt, int n_prompt);
// What the slot's cache holds (tokens at positions 0..n-1).
int ilm_sched_cached(const ilm_sched *s, int slot);
// The running (or last) job's statistics.
const ilm_gen_stats *ilm_sched_stats(const ilm_sched *s, int slot);

// One job on slot 0 run to the end: the prompt continues the engine's kv[0] as it is (the
// `append` mode). drafter may be NULL. Context full is an error here unless o->context_end_ok;
// o->interrupted is polled between steps (a cancelled job returns 0, st->interrupted set).
int ilm_generate(ilm_engine *e, ilm_drafter *drafter, ilm_sampler *s, const int32_t *prompt, int n_prompt,
                 const ilm_gen_opts *o, ilm_gen_stats *st, ilm_err *err);
