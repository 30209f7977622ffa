// synth_plan.h — internal to src/tools/synth*.c, not part of the API (that is synth.h):
// the Gemma 4 variant table's row type, the shapes every synth file shares, the model as
// planned and its tensor specs, and the calls between the plan, the metadata and the writer.
//   synth_plan.c   variants, --layers, the tensor list (names, shapes, types, init rules)
//   synth_meta.c   the vocabulary and the metadata keys
//   synth_write.c  seeded weights, generated in parallel and streamed to the GGUF writer
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/util.h"
#include "format/gguf_write.h"
#include "tools/synth.h"

// ---- variants (docs/gemma4.md §1.1, §1.2) ----------------------------------------------

typedef struct {
    const char *name, *label;
    int L, H, F;            // layers, hidden, MLP width
    int nh, nkv_s, nkv_f;   // query heads; KV heads on sliding / full layers
    int window, period;     // sliding window; a full layer every `period` layers
    int n_shared;           // trailing KV-shared layers
    int ple;                // per-layer-embedding width P (0: none)
    bool k_eq_v;            // full layers have no V projection
    bool wide_shared;       // KV-shared layers have a double-wide MLP (E2B)
    int ctx;
    bool ctx_inferred;
    int n_expert, n_expert_used, F_expert;
    int Hd, Fd, nh_d;       // drafter: hidden, MLP, query heads
    bool centroids;         // drafter has the centroid head
} synth_variant;

enum {
    REAL_VOCAB = ILM_SYNTH_VOCAB,
    VOCAB_MIN = 2048,       // the fixed tokens need ~620 ids; centroids 2048 buckets
    HD_SWA = 256,
    HD_FULL = 512,
    ROPE_FREQS = 256,       // rope_freqs.weight entries (= HD_FULL / 2)
    ROPE_ROTATED = 64,      // proportional RoPE: int(0.25 * 512 / 2) pairs rotate (§2.6)
    N_CENTROIDS = 2048,
    CENTROID_TOP_K = 32,
    MAX_LAYERS = ILM_SYNTH_MAX_LAYERS,
    BYTE_TOKENS_AT = 238,   // [I] id of <0x00>
};


// The model as written: the variant with its layer count applied.
typedef struct {
    const synth_variant *v;
    int L, n_shared;
    bool sliding[MAX_LAYERS];
    int F[MAX_LAYERS];
    int V;
} synth_model;

// ---- tensor specs ----------------------------------------------------------------------

enum { INIT_MATRIX, INIT_NORM, INIT_ROPE_FREQS, INIT_ORDERING };

typedef struct {
    char name[64];
    int type, n_dims;
    int64_t ne[4];
    int init;
    float a, b;   // MATRIX: a = std; NORM: a = centre, b = half-width of the uniform spread
} synth_tspec;

typedef struct {
    synth_tspec *t;
    int n, cap;
    int target;   // weight type
} synth_tlist;

// Validates the options, applies the layer count to the variant (*p) and lists the tensors
// in file order (*l; the caller frees l->t, also after a failure).
int ilm_synth_plan_file(const ilm_synth_opts *o, synth_model *p, synth_tlist *l, ilm_err *err);

// Writes every metadata key of the planned file (general, hyper-parameters, tokenizer) to w;
// `params` is the element count of all tensors (for general.size_label).
int ilm_synth_write_metadata(ilm_gguf_writer *w, const synth_model *p, const ilm_synth_opts *o, uint64_t params,
                             ilm_err *err);
