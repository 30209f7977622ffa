// convert_impl.h — what the converter's files share (tools/convert.h is the interface):
// the hyper-parameters read from config.json, the planned output tensors, the W4A16 repack.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "format/gguf_write.h"
#include "format/json.h"
#include "format/safetensors.h"
#include "tools/convert.h"

#define CV_MAX_LAYERS 1024

enum { CV_TARGET, CV_DRAFTER };

// Hyper-parameters (docs/gemma4.md §3.2, §3.4–3.5) from config.json (`text_config` when present).
typedef struct {
    int kind;               // CV_TARGET / CV_DRAFTER
    bool multimodal;        // Gemma4ForConditionalGeneration: text tower under model.language_model.
    int L, H, V, nh, ctx;
    int hd_swa, hd_full;    // head dims of sliding / full layers
    int32_t kv_heads[CV_MAX_LAYERS], ffn[CV_MAX_LAYERS];
    bool sliding[CV_MAX_LAYERS];
    int window, shared_kv, ple;
    float eps, rope_full, rope_swa, partial_full;
    bool k_eq_v, tied;
    float softcap;          // 30 unless the config says otherwise (0: none)
    int n_expert, n_expert_used, expert_ff;
    // drafter
    int Ht, n_centroids, centroid_top_k;
    bool ordered;
    // compressed-tensors W4A16
    bool w4a16;
} cv_config;

// Reads HF_DIR/config.json; every error names the file and the field.
int cv_read_config(const char *hf_dir, cv_config *c, ilm_err *err);

// The keys written before the tokenizer's, in the reference converter's order. name may be
// NULL (not written).
typedef struct {
    const char *name, *size_label;
    int ftype, layout;      // general.file_type; ILM_DRAFTER_* for drafters
    bool centroids;         // the drafter file carries the centroid head
} cv_meta;
int cv_write_keys(ilm_gguf_writer *w, const cv_config *c, const cv_meta *m, ilm_err *err);

enum { CV_PLAIN, CV_W4A16, CV_ROPE_FREQS, CV_TOKEN_ORDER };

typedef struct {
    char name[112];         // GGUF name
    int kind;               // CV_*
    const ilm_st_tensor *src;                 // PLAIN/TOKEN_ORDER: the tensor; W4A16: weight_packed
    const ilm_st_tensor *scale;               // W4A16: weight_scale
    int n_dims;
    int64_t ne[4];          // GGUF shape (ne[0] = row length)
    int type;               // output ggml type
    bool source_weight;     // counts in the parameter total (not generated)
} cv_tensor;

// Maps every checkpoint tensor to its GGUF name, checks shapes against c, decides output types
// and appends the generated ones (rope_freqs). *out is malloc'd.
int cv_plan(const ilm_st *st, const cv_config *c, const ilm_convert_opts *o, cv_tensor **out, size_t *n,
            ilm_err *err);

// W4A16 (docs/gemma4.md §5.6): checks X.weight_packed / weight_scale / weight_shape of the
// linear `base` and returns its logical [out, in] shape and whether every scale is exact in F16.
int cv_w4a16_check(const ilm_st *st, const char *base, const ilm_st_tensor **packed,
                   const ilm_st_tensor **scale, int64_t shape[2], bool *f16_exact, ilm_err *err);
// Row r of a W4A16 tensor as Q4_0 blocks (K = ne[0], a multiple of 32; scales exact in F16).
void cv_w4a16_row_q4_0(const cv_tensor *t, int64_t r, void *blocks);
// Row r dequantized to f32 (exact: nibble − 8 times the scale).
void cv_w4a16_row_f32(const cv_tensor *t, int64_t r, float *out);
// The float value of element i of a F32/F16/BF16 safetensors tensor.
float cv_st_float(const ilm_st_tensor *t, size_t i);
