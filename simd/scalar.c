// scalar.c — the reference kernel set: plain C11, one obvious loop per operation.
//
// It is the ground truth the SIMD sets are tested against (tests/test_kernels.c) and the
// fallback on CPUs without a supported vector extension. Weights stay in GGUF layout
// (interleave 1, packed_size 0: the engine hands the mmap'd file data straight in).
// Block formats and rounding rules: docs/gemma4.md §5; numerical contract: simd/kernels.h.
#include <math.h>
#include <string.h>

#include "half.h"
#include "kernels.h"
#include "scalar.h"

// ---- weight layout ---------------------------------------------------------------------

// 0 = "no packing": the GGUF layout is what the scalar kernels read.
static size_t scalar_packed_size(int type, int rows, int K) {
    (void)type, (void)rows, (void)K;
    return 0;
}

// Nothing to do: packed_size is 0, so the engine never allocates a packed copy.
static void scalar_pack(int type, const void *src, int rows, int K, void *dst, int r0, int r1) {
    (void)type, (void)src, (void)rows, (void)K, (void)dst, (void)r0, (void)r1;
}

// ---- quantized weights x quantized activations -------------------------------------------

// Exact integer dot of one Q4_0 block (values nibble-8) with one activation block.
static int32_t dot_q4_0_block(const ilm_block_q4_0 *w, const ilm_q8a *a) {
    int32_t s = 0;
    for (int j = 0; j < 16; j++) {
        s += ((w->qs[j] & 0x0F) - 8) * a->qs[j];
        s += ((w->qs[j] >> 4) - 8) * a->qs[j + 16];
    }
    return s;
}

static int32_t dot_q8_0_block(const ilm_block_q8_0 *w, const ilm_q8a *a) {
    int32_t s = 0;
    for (int j = 0; j < 32; j++) s += w->qs[j] * a->qs[j];
    return s;
}

// kernels.h contract: acc = fmaf(dw_b * da_b, (float)isum_b, acc), blocks in order.
static void scalar_mm_q8(const ilm_matrix *w, int r0, int r1, const ilm_q8a *x, int n, float *y,
                         int ldy) {
    const int nb = w->cols / ILM_QK;
    const size_t row_bytes = ilm_row_bytes(w->type, w->cols);
    for (int r = r0; r < r1; r++) {
        const char *row = (const char *)w->data + (size_t)r * row_bytes;
        for (int c = 0; c < n; c++) {
            const ilm_q8a *xc = x + (size_t)c * nb;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                float dw;
                int32_t isum;
                if (w->type == ILM_TYPE_Q4_0) {
                    const ilm_block_q4_0 *blk = (const ilm_block_q4_0 *)row + b;
                    dw = ilm_f16_to_f32(blk->d);
                    isum = dot_q4_0_block(blk, &xc[b]);
                } else {
                    const ilm_block_q8_0 *blk = (const ilm_block_q8_0 *)row + b;
                    dw = ilm_f16_to_f32(blk->d);
                    isum = dot_q8_0_block(blk, &xc[b]);
                }
                acc = fmaf(dw * xc[b].d, (float)isum, acc);
            }
            y[(size_t)c * ldy + r] = acc;
        }
    }
}

// ---- any weights x f32 activations -----------------------------------------------------

// Dequantized values are exact in f32 ((q-8)*d and q*d: a small integer times an fp16
// value), so W4A16/W8A16 is "dequantize, then the same fma chain as F32".
void ilm_scalar_dequant_row(int type, const void *src, float *y, int K) {
    switch (type) {
    case ILM_TYPE_F32:
        memcpy(y, src, (size_t)K * sizeof(float));
        break;
    case ILM_TYPE_F16:
        for (int k = 0; k < K; k++) y[k] = ilm_f16_to_f32(((const uint16_t *)src)[k]);
        break;
    case ILM_TYPE_BF16:
        for (int k = 0; k < K; k++) y[k] = ilm_bf16_to_f32(((const uint16_t *)src)[k]);
        break;
    case ILM_TYPE_Q4_0:
        for (int b = 0; b < K / ILM_QK; b++) {
            const ilm_block_q4_0 *blk = (const ilm_block_q4_0 *)src + b;
            const float d = ilm_f16_to_f32(blk->d);
            for (int j = 0; j < 16; j++) {
                y[b * 32 + j] = (float)((blk->qs[j] & 0x0F) - 8) * d;
                y[b * 32 + j + 16] = (float)((blk->qs[j] >> 4) - 8) * d;
            }
        }
        break;
    case ILM_TYPE_Q8_0:
        for (int b = 0; b < K / ILM_QK; b++) {
            const ilm_block_q8_0 *blk = (const ilm_block_q8_0 *)src + b;
            const float d = ilm_f16_to_f32(blk->d);
            for (int j = 0; j < 32; j++) y[b * 32 + j] = (float)blk->qs[j] * d;
        }
        break;
    default:
        memset(y, 0, (size_t)K * sizeof(float));  // not a matrix type; callers never ask
        break;
    }
}

// kernels.h contract: acc = fmaf(w_k, x_k, acc) for k = 0..K-1 in order. The row is
// dequantized in slices of 256 (a multiple of the block size) so no heap buffer is needed.
static void scalar_mm_f32(const ilm_matrix *w, int r0, int r1, const float *x, int n, float *y,
                          int ldy) {
    enum { SLICE = 256 };
    const int K = w->cols;
    const size_t row_bytes = ilm_row_bytes(w->type, K);
    float wslice[SLICE];
    for (int r = r0; r < r1; r++) {
        const char *row = (const char *)w->data + (size_t)r * row_bytes;
        for (int c = 0; c < n; c++) {
            const float *xc = x + (size_t)c * K;
            float acc = 0.0f;
            for (int k0 = 0; k0 < K; k0 += SLICE) {
                const int len = K - k0 < SLICE ? K - k0 : SLICE;
                ilm_scalar_dequant_row(w->type, row + ilm_row_bytes(w->type, k0), wslice, len);
                for (int k = 0; k < len; k++) acc = fmaf(wslice[k], xc[k0 + k], acc);
            }
            y[(size_t)c * ldy + r] = acc;
        }
    }
}

// ---- activation quantization -----------------------------------------------------------

// kernels.h contract: d = fp16round(amax/127), id = 127/amax, q = round-half-even(x*id).
// rintf rounds half to even in the default rounding mode, like cvtps2dq and vcvtnq.
static void scalar_quantize_q8a(const float *x, int K, ilm_q8a *out) {
    for (int b = 0; b < K / ILM_QK; b++) {
        const float *xb = x + b * ILM_QK;
        float amax = 0.0f;
        for (int j = 0; j < ILM_QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        out[b].d = ilm_f16_to_f32(ilm_f32_to_f16(amax / 127.0f));
        int32_t sum = 0;
        for (int j = 0; j < ILM_QK; j++) {
            const int q = (int)rintf(xb[j] * id);
            out[b].qs[j] = (int8_t)q;
            sum += q;
        }
        out[b].sum = sum;
    }
}

// ---- attention ---------------------------------------------------------------------------

static float kv_elem(const void *row, int kv_type, int d) {
    return kv_type == ILM_TYPE_F16 ? ilm_f16_to_f32(((const uint16_t *)row)[d])
                                   : ((const float *)row)[d];
}

static void scalar_attn_scores(const float *q, const void *k, int kv_type, size_t stride, int n,
                               int hd, float *scores) {
    for (int j = 0; j < n; j++) {
        const void *kj = (const char *)k + (size_t)j * stride;
        float s = 0.0f;
        for (int d = 0; d < hd; d++) s = fmaf(q[d], kv_elem(kj, kv_type, d), s);
        scores[j] = s;
    }
}

static void scalar_attn_values(const float *p, const void *v, int kv_type, size_t stride, int n,
                               int hd, float *out) {
    for (int j = 0; j < n; j++) {
        const void *vj = (const char *)v + (size_t)j * stride;
        for (int d = 0; d < hd; d++) out[d] = fmaf(p[j], kv_elem(vj, kv_type, d), out[d]);
    }
}

// ---- elementwise / reductions ------------------------------------------------------------

// docs/gemma4.md §2.1: Gemma 4 RMSNorm multiplies by w directly (no 1+w).
static void scalar_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;  // double: the reference should not be the source of rounding error
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

// docs/gemma4.md §2.6: NEOX rotate-half pairs (i, i + n_dims/2).
static void scalar_rope_neox(float *x, int n_dims, const float *cs) {
    const int half = n_dims / 2;
    for (int i = 0; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

static void scalar_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

// docs/gemma4.md §2.1: gelu_pytorch_tanh.
static void scalar_geglu(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        const float g = gate[i];
        const float t = tanhf(0.7978845608f * (g + 0.044715f * g * g * g));
        out[i] = 0.5f * g * (1.0f + t) * up[i];
    }
}

static void scalar_softcap(float *x, int n, float cap) {
    for (int i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

// ---- conversions -------------------------------------------------------------------------

void ilm_scalar_f32_to_f16(const float *x, uint16_t *y, int n) {
    for (int i = 0; i < n; i++) y[i] = ilm_f32_to_f16(x[i]);
}

void ilm_scalar_f16_to_f32(const uint16_t *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = ilm_f16_to_f32(x[i]);
}

const ilm_kernels ilm_kernels_scalar = {
    .name = "scalar",
    .interleave = 1,
    .packed_size = scalar_packed_size,
    .pack = scalar_pack,
    .mm_q8 = scalar_mm_q8,
    .mm_f32 = scalar_mm_f32,
    .quantize_q8a = scalar_quantize_q8a,
    .attn_scores = scalar_attn_scores,
    .attn_values = scalar_attn_values,
    .rmsnorm = scalar_rmsnorm,
    .rope_neox = scalar_rope_neox,
    .softmax = scalar_softmax,
    .geglu = scalar_geglu,
    .softcap = scalar_softcap,
    .f32_to_f16 = ilm_scalar_f32_to_f16,
    .f16_to_f32 = ilm_scalar_f16_to_f32,
    .dequant_row = ilm_scalar_dequant_row,
};
