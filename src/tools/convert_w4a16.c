// convert_w4a16.c — compressed-tensors pack-quantized W4A16 → Q4_0, lossless (docs/gemma4.md
// §5.6): CT keeps q+8 as an unsigned nibble like Q4_0, element k of a row at bits 4·(k%8) of word
// k/8; Q4_0 keeps element j of a 32-block in the low nibble of byte j, j+16 in its high nibble.
// The scale becomes the block's F16 d when it is exactly representable in F16.
#include <stdio.h>
#include <string.h>

#include "simd/half.h"
#include "simd/kernels.h"
#include "tools/convert_impl.h"

float cv_st_float(const ilm_st_tensor *t, size_t i) {
    const uint8_t *p = t->data;
    uint16_t h;
    switch (t->dtype) {
    case ILM_ST_F16: memcpy(&h, p + 2 * i, 2); return ilm_f16_to_f32(h);
    case ILM_ST_BF16: memcpy(&h, p + 2 * i, 2); return ilm_bf16_to_f32(h);
    default: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    }
}

static bool f16_exact(float s) {
    return ilm_f16_to_f32(ilm_f32_to_f16(s)) == s;  // also false for NaN; ±inf never come out of a bf16 scale check
}

int cv_w4a16_check(const ilm_st *st, const char *base, const ilm_st_tensor **packed, const ilm_st_tensor **scale,
                   int64_t shape[2], bool *exact, ilm_err *err) {
    char n[300];
    snprintf(n, sizeof n, "%s.weight_packed", base);
    const ilm_st_tensor *p = ilm_st_find(st, n);
    snprintf(n, sizeof n, "%s.weight_scale", base);
    const ilm_st_tensor *s = ilm_st_find(st, n);
    snprintf(n, sizeof n, "%s.weight_shape", base);
    const ilm_st_tensor *ws = ilm_st_find(st, n);
    if (!p || !s || !ws)
        return ilm_fail(err, "tensor %s: W4A16 needs weight_packed, weight_scale and weight_shape", base);
    if (ws->n_dims != 1 || ws->n_elem != 2 || (ws->dtype != ILM_ST_I64 && ws->dtype != ILM_ST_I32))
        return ilm_fail(err, "tensor %s.weight_shape: expected 2 integers", base);
    for (int i = 0; i < 2; i++) {
        if (ws->dtype == ILM_ST_I64) memcpy(&shape[i], (const uint8_t *)ws->data + 8 * i, 8);
        else {
            int32_t v;
            memcpy(&v, (const uint8_t *)ws->data + 4 * i, 4);
            shape[i] = v;
        }
        if (shape[i] <= 0 || shape[i] > (int64_t)1 << 31)
            return ilm_fail(err, "tensor %s.weight_shape: bad value %lld", base, (long long)shape[i]);
    }
    const int64_t words = (shape[1] + 7) / 8, groups = (shape[1] + 31) / 32;
    if (p->dtype != ILM_ST_I32 || p->n_dims != 2 || p->shape[0] != shape[0] || p->shape[1] != words)
        return ilm_fail(err, "tensor %s.weight_packed: expected I32 [%lld, %lld]", base, (long long)shape[0], (long long)words);
    if ((s->dtype != ILM_ST_BF16 && s->dtype != ILM_ST_F16 && s->dtype != ILM_ST_F32) || s->n_dims != 2 ||
        s->shape[0] != shape[0] || s->shape[1] != groups)
        return ilm_fail(err, "tensor %s.weight_scale: expected a float [%lld, %lld]", base, (long long)shape[0],
                        (long long)groups);
    *exact = true;
    for (size_t i = 0; i < s->n_elem && *exact; i++) *exact = f16_exact(cv_st_float(s, i));
    *packed = p;
    *scale = s;
    return 0;
}

static int nibble(const uint8_t *row, int64_t k) {
    uint32_t w;
    memcpy(&w, row + 4 * (k / 8), 4);
    return (int)((w >> (4 * (k % 8))) & 0xF);
}

void cv_w4a16_row_q4_0(const cv_tensor *t, int64_t r, void *blocks) {
    const int64_t K = t->ne[0], G = K / 32;
    const uint8_t *row = (const uint8_t *)t->src->data + (size_t)r * (size_t)t->src->shape[1] * 4;
    ilm_block_q4_0 *b = blocks;
    for (int64_t g = 0; g < G; g++) {
        b[g].d = ilm_f32_to_f16(cv_st_float(t->scale, (size_t)(r * t->scale->shape[1] + g)));
        // words 0, 1 hold elements 0..15 (the low nibbles), words 2, 3 elements 16..31
        uint32_t w[4];
        memcpy(w, row + 16 * g, 16);
        for (int j = 0; j < 16; j++) {
            uint32_t lo = (w[j / 8] >> (4 * (j % 8))) & 0xF, hi = (w[2 + j / 8] >> (4 * (j % 8))) & 0xF;
            b[g].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

void cv_w4a16_row_f32(const cv_tensor *t, int64_t r, float *out) {
    const int64_t K = t->ne[0];
    const uint8_t *row = (const uint8_t *)t->src->data + (size_t)r * (size_t)t->src->shape[1] * 4;
    for (int64_t k = 0; k < K; k++)
        out[k] = (float)(nibble(row, k) - 8) * cv_st_float(t->scale, (size_t)(r * t->scale->shape[1] + k / 32));
}
