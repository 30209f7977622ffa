// test_drafter.c — the MTP drafter against the clean transformers references
// (fixtures hf/mtp*-chains.json, models/pycoder/pycoder-chains.json, hf/mtp*-ref.json).
#include <stdlib.h>
#include <string.h>

#include "drafter.h"
#include "engine.h"
#include "harness.h"
#include "json.h"

static ilm_json *load_json(const char *rel) {
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

static int32_t *json_ids(const ilm_json *a, int *n) {
    *n = (int)a->len;
    int32_t *v = malloc(sizeof *v * (a->len + 1));
    for (size_t i = 0; i < a->len; i++) v[i] = (int32_t)a->items[i].num;
    return v;
}

// Opens verifier + drafter with an f32 KV cache (the references are float32).
static int open_pair(const char *target, const char *drafter, ilm_engine *e, ilm_drafter **d) {
    ilm_engine_opts o;
    ilm_engine_opts_default(&o);
    o.model = t_fixture(target);
    o.kv_type = ILM_TYPE_F32;
    o.verbose = false;
    o.n_ctx = 512;
    ilm_err err;
    if (ilm_engine_open(e, &o, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    if (ilm_drafter_load(d, t_fixture(drafter), e->model, e->pool, false, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        ilm_engine_close(e);
        return -1;
    }
    return 0;
}

// For every position p of every prompt: cache = positions < p, input ids[p], conditioning
// = final-normed hidden state at p-1; the 4-token chain must equal the reference.
static void check_chains(const char *target, const char *drafter, const char *ref) {
    ilm_json *j = load_json(ref);
    if (!j) return;
    ilm_engine e;
    ilm_drafter *d;
    if (open_pair(target, drafter, &e, &d)) {
        ilm_json_free(j);
        return;
    }
    const int H = e.model->n_embd;
    int checked = 0, mismatched = 0;
    const ilm_json *prompts = ilm_json_get(j, "prompts");
    for (size_t pi = 0; prompts && pi < prompts->len; pi++) {
        const ilm_json *pr = &prompts->items[pi];
        int n;
        int32_t *ids = json_ids(ilm_json_get(pr, "ids"), &n);
        const ilm_json *chains = ilm_json_get(pr, "chains");
        int32_t *pos = malloc(sizeof *pos * (size_t)n);
        float *hidden = malloc(sizeof(float) * (size_t)n * H);
        for (int i = 0; i < n; i++) pos[i] = i;
        ilm_kv *kv = &e.kv[0];
        ilm_kv_truncate(kv, 0);
        ilm_batch b = {n, ids, pos, NULL, NULL};
        ilm_err err;
        CHECK_EQ(ilm_forward(e.fwd, &kv, 1, &b, NULL, hidden, &err), 0);
        for (size_t c = 0; chains && c < chains->len; c++) {
            int p = atoi(chains->keys[c]);
            const ilm_json *want = &chains->items[c];
            if (p < 1 || p >= n) continue;
            kv->n_pos = p;  // the cache holds exactly positions < p (all were computed above)
            int32_t drafts[8];
            int got = ilm_drafter_chain(d, kv, ids[p], hidden + (size_t)(p - 1) * H, p, (int)want->len, 0.0f, drafts,
                                        NULL);
            bool same = got == (int)want->len;
            for (int k = 0; same && k < got; k++) same = drafts[k] == (int32_t)want->items[k].num;
            checked++;
            if (!same) {
                if (mismatched < 5)
                    t_fail(__FILE__, __LINE__, "%s prompt %zu pos %d: chain %d,%d,%d,%d expected %d,%d,%d,%d", ref, pi, p,
                           drafts[0], drafts[1], drafts[2], drafts[3], (int)want->items[0].num,
                           (int)want->items[1].num, (int)want->items[2].num, (int)want->items[3].num);
                mismatched++;
            }
        }
        kv->n_pos = n;
        free(ids);
        free(pos);
        free(hidden);
    }
    CHECK_MSG(checked > 50, "%s: only %d chains checked", ref, checked);
    CHECK_MSG(mismatched == 0, "%s: %d of %d chains differ", ref, mismatched, checked);
    ilm_drafter_free(d);
    ilm_engine_close(&e);
    ilm_json_free(j);
}

TEST(drafter_chains_centroid_head) { check_chains("hf/dense-f32.gguf", "hf/mtp-f32.gguf", "hf/mtp-chains.json"); }
TEST(drafter_chains_plain_head) { check_chains("hf/dense-f32.gguf", "hf/mtp-plain-f32.gguf", "hf/mtp-plain-chains.json"); }
TEST(drafter_chains_assistant_layout) {
    check_chains("hf/dense-f32.gguf", "hf/mtp-plain-assistant-f32.gguf", "hf/mtp-plain-chains.json");
}
TEST(drafter_chains_trained_pycoder) {
    check_chains("models/pycoder/pycoder-bf16.gguf", "models/pycoder/pycoder-mtp-bf16.gguf",
                 "models/pycoder/pycoder-chains.json");
}
