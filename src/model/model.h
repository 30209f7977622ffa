// model.h — Gemma 4 hyper-parameters and weights, read from a validated GGUF
// (docs/gemma4.md §1–§3). Knows Gemma, not files: tensor data comes from gguf.c.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"
#include "simd/kernels.h"
#include "runtime/threadpool.h"
#include "runtime/weight.h"

#define ILM_MAX_LAYERS 128

typedef struct {
    bool sliding;               // sliding-window layer (else full attention)
    bool owns_kv;               // false on KV-shared layers (E2B/E4B)
    int kv_src;                 // layer whose cache this layer reads (itself if owns_kv)
    int hd, n_head, n_kv_head;  // head dim, query heads, KV heads
    int n_ff;                   // dense MLP width
    float out_scale;            // layer_output_scale (1 if absent)

    const float *attn_norm, *q_norm, *k_norm, *post_attn_norm, *ffn_norm, *post_ffw_norm;
    ilm_weight wq, wk, wv, wo;  // wv.t == NULL: V := raw K (attention_k_eq_v)
    ilm_weight ffn_gate, ffn_up, ffn_down;

    // per-layer input embeddings (PLE)
    ilm_weight inp_gate, proj;
    const float *ple_post_norm;

    // MoE (26B-A4B)
    ilm_weight router;          // {H, E} (F32 in practice)
    float *router_scale;        // {H}, pre-multiplied by 1/sqrt(H)
    const float *expert_scale;  // {E} or NULL
    const float *pre_ffw_norm_2, *post_ffw_norm_1, *post_ffw_norm_2;
    ilm_weight *exp_gate_up;    // [E] matrices {H, 2·Fe}  (rows 0..Fe-1 gate, Fe..2Fe-1 up)
    ilm_weight *exp_down;       // [E] matrices {Fe, H}
} ilm_layer;

typedef struct {
    // hyper-parameters
    char arch[32];
    int n_layer, n_embd, n_vocab, n_ctx_train;
    int hd_full, hd_swa, n_rot_full, n_rot_swa;
    int window;
    float eps, rope_base_full, rope_base_swa, softcap, emb_scale;
    int n_shared_kv;
    int ple_dim;                // P (0 = no per-layer inputs)
    int n_expert, n_expert_used, n_ff_exp;
    int max_hd;

    ilm_layer layers[ILM_MAX_LAYERS];
    ilm_weight tok_embd;        // {H, V}; also the LM head when output is absent
    ilm_weight output;          // optional separate head
    const float *output_norm;
    float *rope_freqs;          // {hd_full/2} frequency divisors for full layers (NULL: none)
    // PLE globals
    ilm_weight ple_tok_embd;    // {P·L, V}
    ilm_weight ple_model_proj;  // {H, P·L}
    const float *ple_proj_norm; // {P}
    int32_t *suppress_tokens;
    int n_suppress;

    // ownership
    ilm_gguf *gguf;
    float **owned_f32;          // converted 1-D tensors
    int n_owned, cap_owned;
    size_t packed_bytes;
} ilm_model;

// Loads a verifier (general.architecture "gemma4"): validates every hyper-parameter and
// tensor shape, converts 1-D tensors to f32 and, when the active kernel set wants another
// layout, packs the matrices on the pool's threads (per its NUMA policy).
int ilm_model_load(ilm_model **out, const char *path, ilm_pool *pool, ilm_err *err);
void ilm_model_free(ilm_model *m);

// --- shared by the verifier and drafter loaders (model.c) ----------------------------------
typedef struct ilm_loader ilm_loader;
struct ilm_loader {
    ilm_gguf *g;
    ilm_model *m;      // owner of converted buffers
    const char *path;
    const char *arch;  // metadata key prefix
    char key[160];     // ilm_loader_key's result
};
// The metadata key "ARCH.suffix" (in L->key: valid until the next call), for the
// ilm_gguf_get_* readers: ilm_gguf_get_u32(L->g, ilm_loader_key(L, "block_count"), &n, err).
const char *ilm_loader_key(ilm_loader *L, const char *suffix);
// Finds a tensor and checks its shape (ne[0..nd)); optional tensors may be absent (returns 0,
// *out = NULL). 1-D tensors of any float type are converted to an f32 buffer owned by m.
int ilm_load_vec(ilm_loader *L, const char *name, int64_t n, bool required, const float **out, ilm_err *err);
int ilm_load_matrix(ilm_loader *L, const char *name, int64_t cols, int64_t rows, bool required, ilm_weight *w,
                    ilm_err *err);
// ilm_load_vec into a writable f32 copy owned by L->m (NULL when absent and optional).
int ilm_load_vec_copy(ilm_loader *L, const char *name, int64_t n, bool required, float **out, ilm_err *err);
// Packs every loaded matrix for the active kernel set (no-op for interleave == 1).
int ilm_weight_pack(ilm_weight *w, ilm_pool *pool, ilm_err *err);
void ilm_weight_free(ilm_weight *w);

// --- a layer's tensors as data (docs/gemma4.md §3.3) -----------------------------------------
// Each loader describes its layer struct by one table of fields in tensor lookup order;
// loading, packing, size accounting and freeing all walk that table, so a layer tensor is
// added in one line. (Tensors with their own rules, e.g. the 3-D expert stacks, stay code.)
enum ilm_dim { ILM_DIM_1, ILM_DIM_H, ILM_DIM_Q, ILM_DIM_KV, ILM_DIM_HD, ILM_DIM_FF, ILM_DIM_P, ILM_DIM_E, ILM_N_DIMS };
enum ilm_field_kind {
    ILM_FIELD_VEC,       // const float *: a vector of `cols` elements (ilm_load_vec)
    ILM_FIELD_VEC_COPY,  // float *: the same as a writable copy (ilm_load_vec_copy)
    ILM_FIELD_SCALAR,    // float: the element of a 1-element vector, 1 when it is absent
    ILM_FIELD_MATRIX,    // ilm_weight: a {cols, rows} matrix (ilm_load_matrix), packed
};
typedef struct {
    const char *suffix;         // the tensor is "blk.N.<suffix>"
    size_t offset;              // offsetof the field in the layer struct
    unsigned char kind;         // enum ilm_field_kind
    unsigned char cols, rows;   // enum ilm_dim (rows: matrices only)
    bool required;
    unsigned when;              // 0: every layer; else layers whose flags share a bit with it
} ilm_layer_field;
// A table row: ILM_FIELD(ilm_layer, MATRIX, "attn_q.weight", wq, H, Q, true, 0).
#define ILM_FIELD(T, kind, suffix, field, cols, rows, required, when) \
    {suffix, offsetof(T, field), ILM_FIELD_##kind, ILM_DIM_##cols, ILM_DIM_##rows, required, when}

// Loads layer `blk`'s fields of table f[0..n) into `layer`, in table order; dim[] gives
// each enum ilm_dim's size for this layer (dim[ILM_DIM_1] = 1).
int ilm_load_fields(ilm_loader *L, int blk, const ilm_layer_field *f, size_t n, unsigned flags,
                    const int64_t dim[ILM_N_DIMS], void *layer, ilm_err *err);

// Walking every matrix of a model: a walker calls fn on each (stopping at the first
// nonzero result, which it returns), usually through ilm_walk_weights.
typedef int (*ilm_weight_fn)(ilm_weight *w, void *ctx);
typedef int (*ilm_weight_walker)(void *model, ilm_weight_fn fn, void *ctx);
// fn on globals[0..n_globals), then on the matrix fields of table f[0..n_fields) in each of
// n_layers layer structs (`stride` bytes apart from `layers`).
int ilm_walk_weights(ilm_weight *const *globals, size_t n_globals, const ilm_layer_field *f, size_t n_fields,
                     void *layers, size_t stride, int n_layers, ilm_weight_fn fn, void *ctx);
int ilm_weights_pack(ilm_weight_walker walk, void *model, ilm_pool *pool, ilm_err *err);
size_t ilm_weights_packed_bytes(ilm_weight_walker walk, void *model);
void ilm_weights_free(ilm_weight_walker walk, void *model);
