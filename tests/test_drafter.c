// test_drafter.c — the MTP drafter against the clean transformers references
// (fixtures hf/mtp*-chains.json, models/pycoder/pycoder-chains.json, regenerated 2026-12-06
// with a 0/-inf mask over the positions < p) and transformers' assisted-generation round 1
// (hf/mtp*-ref.json).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/drafter.h"
#include "gen/engine.h"
#include "fixture_util.h"
#include "harness.h"
#include "format/json.h"

// ids[0..n) at positions 0.. from an empty cache of sequence 0 (left holding them): the
// verifier's final-normed hidden rows [n][H] (malloc'd).
static float *prefill_hidden(ilm_engine *e, const int32_t *ids, int n) {
    int32_t *pos = malloc(sizeof *pos * (size_t)n);
    float *hidden = malloc(sizeof(float) * (size_t)n * (size_t)e->model->n_embd);
    for (int i = 0; i < n; i++) pos[i] = i;
    ilm_kv *kv = &e->kv[0];
    ilm_kv_truncate(kv, 0);
    ilm_batch b = {n, ids, pos, NULL, NULL};
    ilm_err err;
    CHECK_EQ(ilm_forward(e->fwd, &kv, 1, &b, NULL, hidden, &err), 0);
    free(pos);
    return hidden;
}

// For every position p of every prompt: input ids[p], conditioning = final-normed hidden
// state at p-1, position p, the cache holding exactly the positions < p (the clean
// semantics of gemma4.md §4, what decoding uses). Every chain must equal the reference
// except where the two tokens' logits are within 1e-3 (a float near-tie; at most max_ties
// chains).
static void check_chains(const char *target, const char *drafter, const char *ref, int max_ties) {
    ilm_json *j = t_load_json(ref);
    if (!j) return;
    ilm_engine e;
    ilm_drafter *d;
    if (t_open_pair(target, drafter, ILM_TYPE_F32, &e, &d)) {
        ilm_json_free(j);
        return;
    }
    const int H = e.model->n_embd;
    int checked = 0, mismatched = 0, ties = 0;
    const ilm_json *prompts = ilm_json_get(j, "prompts");
    for (size_t pi = 0; prompts && pi < prompts->len; pi++) {
        const ilm_json *pr = &prompts->items[pi];
        int n;
        int32_t *ids = t_json_ids(ilm_json_get(pr, "ids"), &n);
        const ilm_json *chains = ilm_json_get(pr, "chains");
        float *hidden = prefill_hidden(&e, ids, n);
        float *g = malloc(sizeof(float) * (size_t)H), *gn = malloc(sizeof(float) * (size_t)H);
        float *lg = malloc(sizeof(float) * (size_t)e.model->n_vocab);
        ilm_kv *kv = &e.kv[0];
        for (size_t c = 0; chains && c < chains->len; c++) {
            int p = atoi(chains->keys[c]);
            const ilm_json *want = &chains->items[c];
            if (p < 1 || p >= n) continue;
            kv->n_pos = p;  // the cache holds exactly the positions < p
            // The chain step by step, so a mismatch can be checked for a float near-tie.
            int32_t drafts[8] = {0}, tok = ids[p];
            bool same = true, near_tie = false;
            memcpy(g, hidden + (size_t)(p - 1) * H, sizeof(float) * (size_t)H);
            for (size_t k = 0; k < want->len && k < 8; k++) {
                float conf;
                drafts[k] = ilm_drafter_step(d, kv, tok, g, p, gn, &conf, lg);
                int32_t expect = (int32_t)want->items[k].num;
                if (drafts[k] != expect) {
                    same = false;
                    near_tie = fabsf(lg[drafts[k]] - lg[expect]) < 1e-3f;
                    break;
                }
                tok = drafts[k];
                memcpy(g, gn, sizeof(float) * (size_t)H);
            }
            if (!same && near_tie) ties++;
            checked++;
            if (!same && !near_tie) {
                if (mismatched < 5)
                    t_fail(__FILE__, __LINE__, "%s prompt %zu pos %d: chain %d,%d,%d,%d expected %d,%d,%d,%d", ref, pi, p,
                           drafts[0], drafts[1], drafts[2], drafts[3], (int)want->items[0].num,
                           (int)want->items[1].num, (int)want->items[2].num, (int)want->items[3].num);
                mismatched++;
            }
        }
        kv->n_pos = n;
        free(g);
        free(gn);
        free(lg);
        free(ids);
        free(hidden);
    }
    printf("  %s: %d of %d chains equal (%d decided by float near-ties)\n", ref, checked - mismatched - ties, checked,
           ties);
    CHECK_MSG(checked > 50, "%s: only %d chains checked", ref, checked);
    CHECK_MSG(mismatched == 0, "%s: %d of %d chains differ", ref, mismatched, checked);
    CHECK_MSG(ties <= max_ties, "%s: %d chains decided by float near-ties (< 1e-3)", ref, ties);
    ilm_drafter_free(d);
    ilm_engine_close(&e);
    ilm_json_free(j);
}

// All drafter math (projections, attention over the verifier's cache, RoPE, heads, chain)
// against the clean transformers chain references, for all three GGUF layouts.
TEST(drafter_chains_match_clean_reference) {
    check_chains("hf/dense-f32.gguf", "hf/mtp-f32.gguf", "hf/mtp-chains.json", 2);
    check_chains("hf/dense-f32.gguf", "hf/mtp-plain-f32.gguf", "hf/mtp-plain-chains.json", 0);
    check_chains("hf/dense-f32.gguf", "hf/mtp-plain-assistant-f32.gguf", "hf/mtp-plain-chains.json", 0);
    check_chains("models/pycoder/pycoder-bf16.gguf", "models/pycoder/pycoder-mtp-bf16.gguf",
                 "models/pycoder/pycoder-chains.json", 0);
}

// Round 1 of transformers' assisted generation (hf/mtp*-ref.json `assistant_calls`, the
// first 3 drafter calls after the prompt prefill). transformers 5.17 makes them from: input
// token t0 = greedy32[0] at position n (the prompt length) for all 3 calls; conditioning
// vector = the prefill's final-normed hidden row n_last_matches = 0, i.e. the BOS row, not
// row n-1 (get_candidates slices hidden_states[-1][:, n_last_matches:n_last_matches+1]);
// the full layer sees positions 0..n-1 and the sliding layers the last W+1 of them (see
// ILM_DRAFT_HF_ASSISTED). Given those inputs our drafter must make the same 3 calls; the
// clean semantics (row n-1, window W-1) are what decoding uses and are only reported.
static void check_hf_round1(const char *drafter, const char *ref, int *hf_agree, int *clean_agree) {
    ilm_json *j = t_load_json(ref);
    if (!j) return;
    ilm_engine e;
    ilm_drafter *d;
    if (t_open_pair("hf/dense-f32.gguf", drafter, ILM_TYPE_F32, &e, &d)) {
        ilm_json_free(j);
        return;
    }
    const int H = e.model->n_embd;
    const ilm_json *prompts = ilm_json_get(j, "prompts");
    int checked = 0;
    for (size_t pi = 0; prompts && pi < prompts->len; pi++) {
        const ilm_json *pr = &prompts->items[pi];
        int n, ng;
        int32_t *ids = t_json_ids(ilm_json_get(pr, "ids"), &n);
        int32_t *greedy = t_json_ids(ilm_json_get(pr, "greedy32"), &ng);
        const ilm_json *calls = ilm_json_get(pr, "assistant_calls");
        CHECK_MSG(calls && calls->len >= 3 && ng > 0, "%s prompt %zu: no assistant_calls", ref, pi);
        if (!calls || calls->len < 3 || ng <= 0) {
            free(ids);
            free(greedy);
            continue;
        }
        float *hidden = prefill_hidden(&e, ids, n), *g = malloc(sizeof(float) * (size_t)H),
              *gn = malloc(sizeof(float) * (size_t)H), *lg = malloc(sizeof(float) * (size_t)e.model->n_vocab);
        ilm_kv *kv = &e.kv[0];
        for (int mode = 0; mode < 2; mode++) {  // 0: transformers' inputs, 1: clean
            ilm_drafter_emulate(d, mode == 0 ? ILM_DRAFT_HF_ASSISTED : ILM_DRAFT_CLEAN);
            memcpy(g, hidden + (size_t)(mode == 0 ? 0 : n - 1) * H, sizeof(float) * (size_t)H);
            int32_t tok = greedy[0];
            for (int k = 0; k < 3; k++) {
                const ilm_json *call = &calls->items[k];
                const ilm_json *cp = ilm_json_get(call, "pos"), *ca = ilm_json_get(call, "argmax");
                int32_t want_pos = (int32_t)cp->items[0].items[0].num, want = (int32_t)ca->items[0].items[0].num;
                float conf;
                int32_t got = ilm_drafter_step(d, kv, tok, g, n, gn, &conf, lg);
                if (mode == 0) {
                    CHECK_EQ(want_pos, n);
                    CHECK_MSG(got == want, "%s prompt %zu call %d: drafted %d, transformers %d", ref, pi, k, got, want);
                    checked++;
                    *hf_agree += got == want;
                } else if (got == want) {
                    (*clean_agree)++;
                }
                tok = got;
                memcpy(g, gn, sizeof(float) * (size_t)H);
            }
        }
        ilm_drafter_emulate(d, ILM_DRAFT_CLEAN);
        free(ids);
        free(greedy);
        free(hidden);
        free(g);
        free(gn);
        free(lg);
    }
    CHECK_MSG(checked == 9, "%s: %d round-1 calls checked", ref, checked);
    ilm_drafter_free(d);
    ilm_engine_close(&e);
    ilm_json_free(j);
}

TEST(drafter_hf_assisted_round1) {
    int hf = 0, clean = 0;
    check_hf_round1("hf/mtp-f32.gguf", "hf/mtp-ref.json", &hf, &clean);
    check_hf_round1("hf/mtp-plain-f32.gguf", "hf/mtp-plain-ref.json", &hf, &clean);
    check_hf_round1("hf/mtp-plain-assistant-f32.gguf", "hf/mtp-plain-ref.json", &hf, &clean);
    printf("  transformers round 1: %d of 27 calls reproduced from its inputs; clean semantics agree on %d of 27\n",
           hf, clean);
}
