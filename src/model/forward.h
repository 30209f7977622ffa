// forward.h — the batched Gemma 4 verifier forward pass (docs/gemma4.md §2).
//
// One code path serves prompt prefill, single-token decode and the k+1 positions of a
// speculative verification; a batch may mix tokens of several sequences, each with its own
// KV cache. Every output row is bit-identical to what decoding that token alone would give.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "model/kv.h"
#include "model/model.h"
#include "runtime/threadpool.h"

typedef struct ilm_fwd ilm_fwd;

typedef struct {
    int max_batch;      // tokens per internal pass (larger batches are split); default 512
    int max_ctx;        // longest KV cache any sequence will use (scratch sizing)
    int act;            // activation mode (ilm_acts): Q8, or W4A16 fast (bf16) / exact (f32)
} ilm_fwd_opts;

int ilm_fwd_create(ilm_fwd **out, const ilm_model *m, ilm_pool *pool, const ilm_fwd_opts *opts, ilm_err *err);
void ilm_fwd_free(ilm_fwd *f);

typedef struct {
    int n;                  // tokens
    const int32_t *tokens;  // [n]
    const int32_t *pos;     // [n] position of each token in its sequence
    const int32_t *seq;     // [n] index into kvs (NULL: all 0)
    const bool *want;       // [n] rows whose logits/hidden state are wanted (NULL: all)
} ilm_batch;

// Runs the batch. For each sequence the tokens must continue its cache in order
// (first pos == kv->n_pos, then consecutive). Writes, for the wanted rows in batch order,
// logits [n_want][n_vocab] (final softcap applied; may be NULL) and the final-normed hidden
// state [n_want][n_embd] (the MTP drafter's conditioning vector; may be NULL).
int ilm_forward(ilm_fwd *f, ilm_kv **kvs, int n_seq, const ilm_batch *b, float *logits, float *hidden, ilm_err *err);
