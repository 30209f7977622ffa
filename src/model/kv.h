// kv.h — per-sequence key/value cache (docs/gemma4.md §2.7).
//
// One buffer pair per layer that owns K/V (KV-shared layers store nothing and read their
// source layer's). Full-attention layers keep n_ctx positions; sliding-window layers keep a
// ring of window + max_batch slots, so a batch (or a speculative verification of up to
// max_batch positions) never overwrites keys its earlier rows, or a rollback, still need.
// Position p lives in slot p % slots.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct {
    uint8_t *k, *v;     // [slots][n_kv_head * hd] of kv type
    int slots;
    int window;         // sliding-window layers: the window (a query at p sees p-window+1..p); 0: full
    size_t row_bytes;
} ilm_kv_layer;

typedef struct {
    int type;           // ILM_TYPE_F16 or ILM_TYPE_F32
    int n_layer, n_ctx;
    int n_pos;          // positions 0..n_pos-1 are valid
    int n_written;      // highest n_pos reached since the cache was last cleared: a ring slot may
                        // hold a rolled-back position up to n_written-1
    ilm_kv_layer layer[ILM_MAX_LAYERS];
    size_t bytes;
} ilm_kv;

int ilm_kv_init(ilm_kv *kv, const ilm_model *m, int n_ctx, int max_batch, int type, ilm_err *err);
void ilm_kv_free(ilm_kv *kv);
// Forgets every position >= n_pos (speculative rollback; 0 clears the cache).
void ilm_kv_truncate(ilm_kv *kv, int n_pos);
// How many of the cached positions a new sequence sharing its first n tokens can keep: n when
// truncating to n leaves every position the next query needs (all of them for full layers, the
// last window-1 for sliding ones) in its ring slot, 0 otherwise (a ring has overwritten one).
int ilm_kv_reusable(const ilm_kv *kv, int n);
static inline size_t ilm_kv_elem_size(const ilm_kv *kv) { return kv->type == ILM_TYPE_F16 ? 2 : 4; }
