// fixture_util.c — see fixture_util.h.
#include "fixture_util.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

ilm_json *t_load_json(const char *rel) {
    size_t n;
    char *s = t_read(t_fixture(rel), &n);
    if (!s) {
        t_fail(__FILE__, __LINE__, "cannot read %s", rel);
        return NULL;
    }
    ilm_err err;
    ilm_json *j = ilm_json_parse(s, n, &err);
    free(s);
    if (!j) t_fail(__FILE__, __LINE__, "%s: %s", rel, err.msg);
    return j;
}

int32_t *t_json_ids(const ilm_json *a, int *n) {
    *n = a ? (int)a->len : 0;
    int32_t *v = malloc(sizeof *v * (size_t)(*n + 1));
    for (int i = 0; v && i < *n; i++) v[i] = (int32_t)a->items[i].num;
    return v;
}

int t_open_pair_with(const char *target, const char *drafter, const ilm_engine_opts *opts, ilm_engine *e,
                     ilm_drafter **d) {
    ilm_engine_opts o = *opts;
    o.model = t_fixture(target);
    o.verbose = false;
    ilm_err err;
    *d = NULL;
    if (ilm_engine_open(e, &o, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    if (drafter && ilm_drafter_load(d, t_fixture(drafter), e->model, e->pool, false, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        ilm_engine_close(e);
        return -1;
    }
    return 0;
}

int t_open_pair(const char *target, const char *drafter, int kv_type, ilm_engine *e, ilm_drafter **d) {
    ilm_engine_opts o;
    ilm_engine_opts_default(&o);
    o.kv_type = kv_type;
    o.n_ctx = 512;
    return t_open_pair_with(target, drafter, &o, e, d);
}

int t_collect_token(void *ctx, int32_t t) {
    t_collect *c = ctx;
    c->out[c->n++] = t;
    return 0;
}

// Top-2 margin and runner-up of the logits after ids + gen[0..k).
void t_top2_after(ilm_engine *e, const int32_t *ids, int n, const int32_t *gen, int k, float *margin, int32_t *second) {
    const int V = e->model->n_vocab;
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)(n + k)), *pos = malloc(sizeof(int32_t) * (size_t)(n + k));
    bool *want = calloc((size_t)(n + k), sizeof(bool));
    float *lg = malloc(sizeof(float) * (size_t)V);
    memcpy(seq, ids, sizeof(int32_t) * (size_t)n);
    memcpy(seq + n, gen, sizeof(int32_t) * (size_t)k);
    for (int i = 0; i < n + k; i++) pos[i] = i;
    want[n + k - 1] = true;
    ilm_kv *kv = &e->kv[0];
    ilm_kv_truncate(kv, 0);
    ilm_batch b = {n + k, seq, pos, NULL, want};
    ilm_err err;
    *margin = INFINITY;
    *second = -1;
    if (ilm_forward(e->fwd, &kv, 1, &b, lg, NULL, &err) == 0) {
        int32_t a = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[a]) a = v;
        for (int v = 0; v < V; v++)
            if (v != a && (*second < 0 || lg[v] > lg[*second])) *second = v;
        *margin = lg[a] - lg[*second];
    }
    free(seq);
    free(pos);
    free(want);
    free(lg);
}
