// quantize.h — ggml-exact Q8_0 / Q4_0 weight quantization and GGUF rewriting (the
// `ironlm quantize` command is src/cli/cmd_quantize.c).
//
// The row quantizers reproduce ggml's reference quantizers bit for bit (docs/gemma4.md §5.2,
// §5.3); ironlm quantize rewrites an F32/F16/BF16 GGUF with its 2-D/3-D weights quantized,
// and ironlm synth uses the same type rules so both produce the same kind of file.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "simd/kernels.h"
#include "base/util.h"

// --- rows -------------------------------------------------------------------------------
// K must be a multiple of 32 (ILM_QK); y receives K/32 blocks.
void ilm_quantize_row_q8_0(const float *x, ilm_block_q8_0 *y, int K);
void ilm_quantize_row_q4_0(const float *x, ilm_block_q4_0 *y, int K);
// Quantizes one f32 row to `type` (ILM_TYPE_Q8_0 or ILM_TYPE_Q4_0), or converts it to
// F32/F16/BF16 (round to nearest even). Returns the bytes written, 0 for another type.
size_t ilm_quantize_row(int type, const float *x, void *dst, int K);
// Converts a row of F32/F16/BF16 elements to f32. Returns -1 for any other type.
int ilm_row_to_f32(int src_type, const void *src, float *dst, int K);
// The ggml `general.file_type` (LLAMA_FTYPE_*) of a file whose weights are `type`:
// F32 0, F16 1, Q4_0 2 (MOSTLY_Q4_0), Q8_0 7 (MOSTLY_Q8_0), BF16 32; -1 otherwise.
int ilm_ftype_of(int type);

// --- which tensors get quantized ------------------------------------------------------
// The type a tensor gets when a file is made with weights of `target`:
//  * 2-D/3-D weights become `target`, except the MoE router `*.ffn_gate_inp.weight`, which
//    stays as it is (its logits choose experts; llama.cpp keeps it F32 too);
//  * 0-D/1-D tensors (norms, scales, rope_freqs, layer_output_scale, token orderings) keep
//    their type;
//  * default mix (pure == false) with target Q4_0: the tied LM head — `output.weight`, or
//    `token_embd.weight` when the file has no `output.weight` (`has_output`) — becomes Q8_0.
//    llama.cpp would pick Q6_K there, which ironlm does not implement; Q8_0 is the nearest
//    type that is at least as precise.
// Returns `keep_type` for tensors that stay as they are.
int ilm_quant_tensor_type(const char *name, int n_dims, int keep_type, int target, bool pure,
                          bool has_output);

// --- progress bar on stderr (shared with synth) ----------------------------------------
// On a terminal: one line redrawn at most 10 times a second; otherwise a line every 10 %.
typedef struct {
    const char *what;
    uint64_t total, done;
    double t0, last;
    int last_decile;
    bool on, tty;
} ilm_progress;

void ilm_progress_init(ilm_progress *p, const char *what, uint64_t total, bool on);
// Adds n units of work done; `item` (e.g. the tensor name) is shown on the line.
void ilm_progress_add(ilm_progress *p, uint64_t n, const char *item);
void ilm_progress_done(ilm_progress *p);

// --- files ------------------------------------------------------------------------------
typedef struct {
    const char *in, *out;
    int type;         // ILM_TYPE_Q8_0 or ILM_TYPE_Q4_0
    bool pure;        // every 2-D/3-D weight (but the router) in `type`; no Q8_0 LM head
    int n_threads;    // <= 0: every online CPU
    bool progress;    // progress bar on stderr
} ilm_quantize_opts;

// Rewrites opts->in as opts->out: every metadata key in order except `general.file_type`
// (set to the new type) and `quantize.imatrix.*` (dropped: they hold host paths and would be
// wrong for this file); tensors in the same order. Refuses OUT == IN; a failure leaves no OUT.
int ilm_quantize_file(const ilm_quantize_opts *opts, ilm_err *err);
