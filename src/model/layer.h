// layer.h — the pieces of a Gemma 4 layer that the verifier pass (forward.c) and the MTP
// drafter (drafter.c) both run, one token row at a time: the scaled token embedding (§2.2,
// §4.2), the RoPE table (§2.6), one query head's attention over a layer's cache (§2.3, §4.3)
// and the normed residual add (§2.2). One definition each, so both passes compute them with
// the same arithmetic in the same order (docs/gemma4.md).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "model/kv.h"
#include "model/model.h"

// out[H] = E[tok] · sqrt(H): the verifier's token embedding row, dequantized and scaled.
void ilm_embed_token(const ilm_model *m, int32_t tok, float *out);

// cs[2i] = cos θ_i, cs[2i+1] = sin θ_i for i < n_rot/2, θ_i = pos · base^(−2i/n_rot) / freq_div[i]
// (freq_div NULL: no divisors), computed in double (§2.6).
void ilm_rope_table(float *cs, int pos, int n_rot, float base, const float *freq_div);

// out[hd] = softmax(q · K^T) · V over the cached positions lo..hi of `layer`, for one query head
// q[hd] against KV head kv_head; lo = 0, or pos − window + 1 on sliding layers (§2.3; scale 1).
void ilm_attend_head(const ilm_kv *kv, int layer, int kv_head, int hd, bool sliding, int window, int pos, int hi,
                     const float *q, float *scores, float *out);

// The residual add of a normed branch: h[H] += RMSNorm(o, w) (o is overwritten by the norm).
void ilm_add_normed(float *h, float *o, const float *w, int H, float eps);
