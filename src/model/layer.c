// layer.c — per-row pieces of a Gemma 4 layer shared by the verifier pass and the drafter
// (see layer.h; docs/gemma4.md §2.2, §2.3, §2.6, §4.3).
#include "model/layer.h"

#include <math.h>
#include <string.h>

void ilm_embed_token(const ilm_model *m, int32_t tok, float *out) {
    const ilm_weight *e = &m->tok_embd;
    size_t rb = ilm_row_bytes(e->m.type, e->m.cols);
    ilm_k->dequant_row(e->m.type, (const char *)e->file_data + (size_t)tok * rb, out, e->m.cols);
    for (int i = 0; i < e->m.cols; i++) out[i] *= m->emb_scale;
}

void ilm_rope_table(float *cs, int pos, int n_rot, float base, const float *freq_div) {
    for (int i = 0; i < n_rot / 2; i++) {
        double theta = (double)pos * pow((double)base, -2.0 * i / n_rot);
        if (freq_div) theta /= (double)freq_div[i];
        cs[2 * i] = (float)cos(theta);
        cs[2 * i + 1] = (float)sin(theta);
    }
}

void ilm_attend_head(const ilm_kv *kv, int layer, int kv_head, int hd, bool sliding, int window, int pos, int hi,
                     const float *q, float *scores, float *out) {
    const ilm_kv_layer *L = &kv->layer[layer];
    int lo = sliding ? pos - window + 1 : 0;
    if (lo < 0) lo = 0;
    memset(out, 0, sizeof(float) * (size_t)hd);
    if (hi < lo) return;
    int n = hi - lo + 1;
    size_t es = ilm_kv_elem_size(kv), off = (size_t)kv_head * (size_t)hd * es;
    int s0 = lo % L->slots;
    int first = n < L->slots - s0 ? n : L->slots - s0;  // a ring may wrap once
    ilm_k->attn_scores(q, L->k + (size_t)s0 * L->row_bytes + off, kv->type, L->row_bytes, first, hd, scores);
    if (first < n) ilm_k->attn_scores(q, L->k + off, kv->type, L->row_bytes, n - first, hd, scores + first);
    ilm_k->softmax(scores, n);
    ilm_k->attn_values(scores, L->v + (size_t)s0 * L->row_bytes + off, kv->type, L->row_bytes, first, hd, out);
    if (first < n) ilm_k->attn_values(scores + first, L->v + off, kv->type, L->row_bytes, n - first, hd, out);
}

void ilm_add_normed(float *h, float *o, const float *w, int H, float eps) {
    ilm_k->rmsnorm(o, o, w, H, eps);
    for (int d = 0; d < H; d++) h[d] += o[d];
}
