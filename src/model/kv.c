// kv.c — allocation and rollback of the per-sequence KV cache. See kv.h.
#include "model/kv.h"

#include <stdlib.h>
#include <string.h>

int ilm_kv_init(ilm_kv *kv, const ilm_model *m, int n_ctx, int max_batch, int type, ilm_err *err) {
    memset(kv, 0, sizeof *kv);
    if (type != ILM_TYPE_F16 && type != ILM_TYPE_F32) return ilm_fail(err, "KV cache type must be f16 or f32");
    if (n_ctx < 1) return ilm_fail(err, "context length must be positive (%d)", n_ctx);
    kv->type = type;
    kv->n_layer = m->n_layer;
    kv->n_ctx = n_ctx;
    size_t es = type == ILM_TYPE_F16 ? 2 : 4;
    for (int i = 0; i < m->n_layer; i++) {
        const ilm_layer *ly = &m->layers[i];
        if (!ly->owns_kv) continue;
        ilm_kv_layer *L = &kv->layer[i];
        L->slots = n_ctx;
        if (ly->sliding && (long)m->window + max_batch < n_ctx) L->slots = m->window + max_batch;
        L->window = ly->sliding ? m->window : 0;
        L->row_bytes = (size_t)ly->n_kv_head * (size_t)ly->hd * es;
        size_t bytes;
        if (!ilm_mul_ok(L->row_bytes, (size_t)L->slots, &bytes)) return ilm_fail(err, "KV cache too large");
        L->k = ilm_aligned_alloc(bytes, err);
        L->v = L->k ? ilm_aligned_alloc(bytes, err) : NULL;
        if (!L->v) {
            ilm_kv_free(kv);
            return ilm_fail_prefix(err, "KV cache (%d positions)", n_ctx);
        }
        kv->bytes += 2 * bytes;
    }
    return 0;
}

void ilm_kv_free(ilm_kv *kv) {
    for (int i = 0; i < kv->n_layer; i++) {
        free(kv->layer[i].k);
        free(kv->layer[i].v);
    }
    memset(kv, 0, sizeof *kv);
}

void ilm_kv_truncate(ilm_kv *kv, int n_pos) {
    if (n_pos < 0) n_pos = 0;
    if (n_pos < kv->n_pos) kv->n_pos = n_pos;
    if (n_pos == 0) kv->n_written = 0;  // every position will be written again before it is read
}

int ilm_kv_reusable(const ilm_kv *kv, int n) {
    if (n > kv->n_pos) n = kv->n_pos;
    if (n <= 0) return 0;
    for (int i = 0; i < kv->n_layer; i++) {
        const ilm_kv_layer *L = &kv->layer[i];
        if (!L->k) continue;
        int oldest = kv->n_written - L->slots;  // positions before this may be overwritten
        int need = L->window ? n - L->window + 1 : 0;
        if (need < 0) need = 0;
        if (need < oldest) return 0;
    }
    return n;
}
