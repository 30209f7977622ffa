// kernels.h — the one interface between the engine and its compute kernels.
//
// One table of function pointers (ilm_kernels) per instruction set; simd/dispatch.c picks
// the best one the CPU supports at start (or the one IRONLM_ISA forces). The rest of the
// engine never sees an intrinsic.
//
// Numerical contract (tests/test_kernels.c checks it):
//  * Quantized weights (Q4_0, Q8_0) x Q8 activations: per output row the result is
//      acc = 0; for each 32-block b in order: acc = fmaf(dw_b * da_b, (float)isum_b, acc)
//    where isum_b is the exact integer dot product of the block. Every ISA reproduces the
//    scalar reference BIT FOR BIT (integer sums are exact; dw*da of two fp16 values is exact).
//  * Float activations (F32/F16/BF16 weights, and Q4_0/Q8_0 weights in W4A16 mode, whose
//    values (q-8)*d resp. q*d are exact in f32): per row acc = fmaf(w_k, x_k, acc) for
//    k = 0..K-1 in order. Also bit-exact with the scalar reference on every ISA.
//  * Batched = single: column c of an n-column call equals the 1-column call on column c,
//    bit for bit, and results do not depend on how rows are split over threads.
//  * Fast float activations (mm_fa, `--act bf16`; Q4_0/Q8_0 weights): per output row
//      acc = 0; for each 32-block b in order: acc = fmaf(dw_b, s_b, acc)
//    where s_b is the block's dot product of the exact weight values q-8 (Q4_0) / q (Q8_0)
//    with the activations, in f32 in an order fixed by the set (not the scalar order, so NOT
//    bit-exact across sets). Sets with mm_fa_bf16 round the activations to bf16 once per row
//    (ilm_bf16a); the others use them as f32. Tolerance against the exact mm_f32:
//    |y - y_f32| <= 2^-8 · Σ_k |w_k·x_k| (bf16: |x_bf16 - x| <= 2^-9 |x| per element, the rest
//    for f32 reassociation); f32 sets: <= (K + 64)·2^-24 · Σ_k |w_k·x_k|. Batched = single and
//    the thread split invariance hold bit for bit within a set, as for every product.
//  * Activation quantization (f32 -> ilm_q8a): amax = max|x|; d = fp16round(amax/127);
//    id = amax ? 127/amax : 0; q = round-half-even(x*id); sum = Σq. Identical on every ISA.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "types.h"  // ILM_TYPE_*, block formats, ilm_type(), ilm_row_bytes()

// One 32-element block of a run-time quantized activation row.
typedef struct {
    float d;          // scale, already rounded to fp16 precision (as ggml stores it)
    int32_t sum;      // Σ qs, for the Q4_0 (-8) and unsigned-weight (VNNI) corrections
    int8_t qs[32];
} ilm_q8a;            // 40 bytes

// One 32-element block of an activation row rounded to bf16 (round to nearest even), in the
// pair order of vdpbf16ps/bfdot: pair[2c + j] holds elements 4c+j (low half) and 4c+j+2
// (high half), c = 0..7, j = 0..1 — so one 32-bit broadcast feeds a 4-byte packed weight
// lane (simd/pack.h) whose bytes hold elements 4c..4c+3 (and 16+4c.. for Q4_0's high nibbles).
typedef struct {
    float sum;            // Σ of the 32 rounded values, in f32 (the set's order)
    uint32_t pair[16];
} ilm_bf16a;          // 68 bytes

// Bytes per 32-block of the activation scratch that serves every mode (Q8 or bf16 rows).
#define ILM_ACT_SCRATCH_BLOCK (sizeof(ilm_bf16a) > sizeof(ilm_q8a) ? sizeof(ilm_bf16a) : sizeof(ilm_q8a))

// A weight matrix in the layout the active kernel set wants. rows = output dimension
// (ggml ne1), cols = K = input dimension (ggml ne0, multiple of 32 for quantized types).
// For kernel sets with interleave == 1 the packed layout IS the GGUF layout and `data` may
// point straight into the mmap'd file.
typedef struct {
    int type;            // ILM_TYPE_*
    int rows, cols;
    const void *data;    // packed data
} ilm_matrix;

typedef struct ilm_kernels {
    const char *name;    // "scalar", "avx2", "avx512", "avx512vnni", "avx512bf16", "neon", "neondot"
    int interleave;      // rows per packed group; row ranges given to mm_* are multiples of it

    // --- weight layout -------------------------------------------------------------
    // Bytes of the packed form of a rows x K matrix of `type` (rows padded to interleave).
    size_t (*packed_size)(int type, int rows, int K);
    // Packs rows [r0, r1) (r0 multiple of interleave; r1 multiple of it or == rows) of a
    // GGUF-layout matrix `src` into `dst` (a buffer of packed_size bytes). Threads may pack
    // disjoint ranges of the same matrix concurrently.
    void (*pack)(int type, const void *src, int rows, int K, void *dst, int r0, int r1);

    // --- matrix products: y[c*ldy + r] = Σ_k W[r][k]·x_c[k], r in [r0,r1), c in [0,n) ------
    // Q4_0/Q8_0 weights x quantized activations; x_c = x + c*(K/32).
    void (*mm_q8)(const ilm_matrix *w, int r0, int r1, const ilm_q8a *x, int n, float *y, int ldy);
    // Any weight type x f32 activations (W4A16 for Q4_0, W8A16 for Q8_0); x_c = x + c*K.
    void (*mm_f32)(const ilm_matrix *w, int r0, int r1, const float *x, int n, float *y, int ldy);

    // Q4_0/Q8_0 weights x float activations, per-block (the `--act bf16` mode, contract
    // above). NULL: the set has none and the engine uses mm_f32. x_c = x + c*K (f32 rows) or,
    // when round_bf16a is set, x_c = (const ilm_bf16a *)x + c*(K/32).
    void (*mm_fa)(const ilm_matrix *w, int r0, int r1, const void *x, int n, float *y, int ldy);

    // --- activations -----------------------------------------------------------------
    void (*quantize_q8a)(const float *x, int K, ilm_q8a *out);   // K multiple of 32
    // f32 -> ilm_bf16a for the set's mm_fa; NULL: mm_fa takes f32 rows as they are.
    void (*round_bf16a)(const float *x, int K, ilm_bf16a *out);  // K multiple of 32

    // --- attention (one query head against a run of cached keys/values) ---------------
    // kv_type: ILM_TYPE_F32 or ILM_TYPE_F16; row j of K/V is at (char*)base + j*stride bytes.
    // scores[j] = q · K_j (hd elements), j in [0,n)
    void (*attn_scores)(const float *q, const void *k, int kv_type, size_t stride, int n, int hd,
                        float *scores);
    // out[d] += Σ_j p[j]·V_j[d], j in order 0..n-1
    void (*attn_values)(const float *p, const void *v, int kv_type, size_t stride, int n, int hd,
                        float *out);

    // --- elementwise / reductions (single row; the same function serves every batch) --
    // y = x / sqrt(mean(x²) + eps) ⊙ w   (w == NULL: no weight). y may alias x.
    void (*rmsnorm)(float *y, const float *x, const float *w, int n, float eps);
    // NEOX RoPE in place on one head of hd values: pairs (i, i+n_dims/2) for i < n_dims/2
    // rotate by angle pos*theta[i] with cs[2i]=cos, cs[2i+1]=sin precomputed per position.
    void (*rope_neox)(float *x, int n_dims, const float *cs);
    void (*softmax)(float *x, int n);                      // in place, f32
    // out[i] = gelu_tanh(gate[i]) * up[i]
    void (*geglu)(float *out, const float *gate, const float *up, int n);
    void (*softcap)(float *x, int n, float cap);           // x = cap*tanh(x/cap)

    // --- conversions ------------------------------------------------------------------
    void (*f32_to_f16)(const float *x, uint16_t *y, int n);   // round to nearest even
    void (*f16_to_f32)(const uint16_t *x, float *y, int n);
    // Dequantize one GGUF-layout row (any type) to f32.
    void (*dequant_row)(int type, const void *src, float *y, int K);

    // --- machine probes (`ironlm bench`'s roofline) -------------------------------------
    // Reads `bytes` (a multiple of 256) from p with the set's widest loads, 4 independent
    // sums, software prefetch `prefetch` bytes ahead (0: none); returns the sum (keeps the
    // loads alive). NULL: bench uses its portable 16-byte loop.
    uint64_t (*read_sum)(const void *p, size_t bytes, size_t prefetch);
    // A tight loop of `iters` x independent int8 dot-product instructions — the ones mm_q8
    // uses (VPDPBUSD; VPMADDUBSW + VPMADDWD) at the set's width; returns the int8
    // multiply-adds done. NULL: no int8 peak for this set.
    double (*int8_dot_loop)(long iters);
} ilm_kernels;

// The dispatch table, filled once by ilm_kernels_init(); the only global mutable state.
extern const ilm_kernels *ilm_k;

// Picks the best kernel set for this CPU, or the one named by IRONLM_ISA. Returns 0, or -1
// with a message in errbuf (e.g. IRONLM_ISA names a set the CPU lacks).
int ilm_kernels_init(char *errbuf, size_t errlen);
// Selects a kernel set by name (tests use this to compare sets). -1 if unknown/unsupported.
int ilm_kernels_select(const char *name, char *errbuf, size_t errlen);
// Kernel set by name if compiled in and supported by this CPU, else NULL.
const ilm_kernels *ilm_kernels_get(const char *name);
// Names of all kernel sets compiled into this binary, NULL-terminated.
const char *const *ilm_kernels_all(void);
