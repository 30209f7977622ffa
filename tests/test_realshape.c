// test_realshape.c — invariance tests at the real Gemma 4 widths (docs/gemma4.md §1), on synth
// models cut to a few layers (`ironlm synth --layers N --vocab 4096`, written into the test
// run's temporary directory). The fixtures are all tiny; these are where fixed-size buffers and
// head-dim assumptions get caught: hidden 2560/3840/2816, head dims 256 and 512, K = V full
// layers, per-layer inputs, KV sharing, 128 experts, the real drafters.
//
// Checked, bit for bit: a batch against the same tokens in chunks and one at a time, and 1 vs 2
// vs 3 threads;
// finite logits past the sliding window; greedy speculative decoding equal to plain decoding.
// Shapes: e4b 7 layers = S S S S S F + 1 KV-shared S; 12b 6 layers = S x5 + F (K = V, one KV
// head of 512); 26b-a4b 1 layer (MoE); 12b 1 layer for 1100 positions (window 1024).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/drafter.h"
#include "gen/engine.h"
#include "harness.h"
#include "gen/scheduler.h"

#define VOCAB 4096

// Path of a synth model in the temporary directory, written on first use. Returns false
// (test failed) when synth fails.
static bool synth(char *path, size_t n, const char *variant, const char *type, int layers, bool drafter) {
    char name[128];
    if (drafter) snprintf(name, sizeof name, "rs-%s-%s-drafter.gguf", variant, type);
    else snprintf(name, sizeof name, "rs-%s-%s-L%d.gguf", variant, type, layers);
    snprintf(path, n, "%s", t_tmp(name));
    if (access(path, R_OK) == 0) return true;
    char cmd[1024], layer_opt[32] = "";
    if (!drafter) snprintf(layer_opt, sizeof layer_opt, "--layers %d", layers);
    snprintf(cmd, sizeof cmd, "%s synth --variant %s --type %s %s %s --vocab %d -o %s >/dev/null 2>&1", t_bin(),
             variant, type, layer_opt, drafter ? "--drafter" : "", VOCAB, path);
    int rc = t_run(cmd, NULL);
    CHECK_MSG(rc == 0, "synth failed (%d): %s", rc, cmd);
    return rc == 0;
}

static bool open_engine(ilm_engine *e, const char *path, int threads, int n_ctx, int max_batch) {
    ilm_engine_opts o;
    ilm_engine_opts_default(&o);
    o.model = path;
    o.n_threads = threads;
    o.n_ctx = n_ctx;
    o.max_batch = max_batch;
    o.verbose = false;
    ilm_err err;
    if (ilm_engine_open(e, &o, &err)) {
        t_fail(__FILE__, __LINE__, "engine open %s: %s", path, err.msg);
        return false;
    }
    return true;
}

static void tokens(int32_t *t, int n, uint64_t seed) {
    uint64_t s = seed;
    for (int i = 0; i < n; i++) t[i] = 8 + (int32_t)(t_rand_u64(&s) % (VOCAB - 8));
}

// Logits [n][V] of tokens[0..n) from an empty cache, fed `chunk` tokens per ilm_forward call.
static float *logits_of(ilm_engine *e, const int32_t *tok, int n, int chunk) {
    const int V = e->model->n_vocab;
    float *out = malloc(sizeof(float) * (size_t)n * V);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n);
    if (!out || !pos) {
        free(out);
        free(pos);
        CHECK_MSG(0, "out of memory");
        return NULL;
    }
    ilm_kv *kv = &e->kv[0];
    ilm_kv_truncate(kv, 0);
    ilm_err err;
    for (int i = 0; i < n; i++) pos[i] = i;
    for (int i0 = 0; i0 < n; i0 += chunk) {
        int nb = n - i0 < chunk ? n - i0 : chunk;
        ilm_batch b = {nb, tok + i0, pos + i0, NULL, NULL};
        if (ilm_forward(e->fwd, &kv, 1, &b, out + (size_t)i0 * V, NULL, &err)) {
            CHECK_MSG(0, "ilm_forward: %s", err.msg);
            free(out);
            free(pos);
            return NULL;
        }
    }
    free(pos);
    return out;
}

// First position whose row differs (bitwise), -1 if all equal.
static int first_diff(const float *a, const float *b, int n, int V) {
    for (int i = 0; i < n; i++)
        if (memcmp(a + (size_t)i * V, b + (size_t)i * V, sizeof(float) * (size_t)V)) return i;
    return -1;
}

static int count_nonfinite(const float *x, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(x[i]);
    return bad;
}

// The same tokens on 1, 2 and 3 threads (3 > cores here: oversubscribed, still exact), each
// as one batch of n - 1 then a decode step (GEMM and GEMV kernel shapes); on 2 threads also
// in chunks of 5 and one token per pass. Every row bit-identical to the 2-thread batch's.
static void check_invariance(const char *path, int n) {
    int32_t tok[64];
    tokens(tok, n, 42);
    float *ref = NULL;
    const int order[3] = {2, 1, 3};
    for (int k = 0; k < 3; k++) {
        const int th = order[k];
        ilm_engine e;
        if (!open_engine(&e, path, th, 64, 512)) break;
        const int V = e.model->n_vocab;
        float *l = logits_of(&e, tok, n, n - 1);
        if (l && !ref) {
            ref = l;
            l = NULL;
            CHECK_EQ(count_nonfinite(ref, (size_t)n * V), 0);
            const int chunks[2] = {5, 1};
            for (int c = 0; c < 2; c++) {
                float *x = logits_of(&e, tok, n, chunks[c]);
                int d = x ? first_diff(ref, x, n, V) : -1;
                CHECK_MSG(d < 0, "%s: %d tokens per pass vs a batch of %d: row %d differs", path, chunks[c], n - 1, d);
                free(x);
            }
        } else if (l) {
            int d = first_diff(ref, l, n, V);
            CHECK_MSG(d < 0, "%s: %d threads vs 2: row %d differs", path, th, d);
        }
        free(l);
        ilm_engine_close(&e);
    }
    free(ref);
}

// ---- e4b: PLE, KV sharing, full layer with head dim 512 -------------------------------------

TEST(realshape_e4b_invariance) {
    char p[512];
    if (synth(p, sizeof p, "e4b", "q4_0", 7, false)) check_invariance(p, 10);
}

TEST(realshape_e4b_q8_0_invariance) {
    char p[512];
    if (synth(p, sizeof p, "e4b", "q8_0", 2, false)) check_invariance(p, 10);
}

// ---- 12b: 16 heads of 256 / one KV head of 512 with K = V -----------------------------------

TEST(realshape_12b_invariance) {
    char p[512];
    if (synth(p, sizeof p, "12b", "q4_0", 6, false)) check_invariance(p, 8);
}

// ---- 26b-a4b: 128 experts, top 8, dense MLP in parallel ---------------------------------------

TEST(realshape_26b_a4b_invariance) {
    char p[512];
    if (synth(p, sizeof p, "26b-a4b", "q4_0", 1, false)) check_invariance(p, 8);
}

// ---- past the sliding window ----------------------------------------------------------------

// n positions (> window) in one batch (split by the engine into passes of max_batch): every
// logit finite; then the last `tail` positions decoded one at a time after a prefill of the
// rest give the batch's rows exactly (the ring of window + max_batch slots at work).
static void check_past_window(const char *path, int n, int tail, int max_batch) {
    ilm_engine e;
    if (!open_engine(&e, path, 0, n + 16, max_batch)) return;
    const int V = e.model->n_vocab;
    CHECK_MSG(n > e.model->window, "%d positions do not pass the window of %d", n, e.model->window);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n);
    float *all = NULL, *step = malloc(sizeof(float) * (size_t)V);
    if (!tok || !pos || !step) goto done;
    tokens(tok, n, 99);
    all = logits_of(&e, tok, n, n);
    if (!all) goto done;
    int bad = count_nonfinite(all, (size_t)n * V);
    CHECK_MSG(bad == 0, "%s: %d non-finite logits over %d positions", path, bad, n);
    int first_bad = -1;
    for (int i = 0; i < n && first_bad < 0; i++)
        if (count_nonfinite(all + (size_t)i * V, (size_t)V)) first_bad = i;
    CHECK_MSG(first_bad < 0, "%s: first non-finite row at position %d (window %d)", path, first_bad, e.model->window);
    // prefill n - tail, then decode the tail one by one
    ilm_kv *kv = &e.kv[0];
    ilm_kv_truncate(kv, 0);
    ilm_err err;
    for (int i = 0; i < n; i++) pos[i] = i;
    bool *want = calloc((size_t)n, sizeof(bool));
    if (!want) goto done;
    want[n - tail - 1] = true;
    ilm_batch b = {n - tail, tok, pos, NULL, want};
    if (ilm_forward(e.fwd, &kv, 1, &b, step, NULL, &err)) {
        CHECK_MSG(0, "prefill: %s", err.msg);
    } else {
        for (int i = n - tail; i < n; i++) {
            ilm_batch b1 = {1, tok + i, pos + i, NULL, NULL};
            if (ilm_forward(e.fwd, &kv, 1, &b1, step, NULL, &err)) {
                CHECK_MSG(0, "decode: %s", err.msg);
                break;
            }
            CHECK_MSG(!memcmp(step, all + (size_t)i * V, sizeof(float) * (size_t)V),
                      "%s: position %d decoded alone differs from the batch of %d", path, i, n);
        }
    }
    free(want);
done:
    free(tok);
    free(pos);
    free(all);
    free(step);
    ilm_engine_close(&e);
}

TEST(realshape_e4b_past_window) {
    char p[512];
    if (synth(p, sizeof p, "e4b", "q4_0", 7, false)) check_past_window(p, 540, 2, 256);
}

TEST(realshape_12b_past_window) {
    char p[512];
    if (synth(p, sizeof p, "12b", "q4_0", 1, false)) check_past_window(p, 1100, 2, 512);
}

// ---- lossless speculative decoding --------------------------------------------------------------

typedef struct {
    int32_t ids[64];
    int n;
} collected;

static int collect(void *ctx, int32_t t) {
    collected *c = ctx;
    if (c->n < 64) c->ids[c->n++] = t;
    return 0;
}

// Greedy output with the drafter at draft-max 1..3 equals the output without it.
static void check_spec_lossless(const char *model, const char *drafter, int n_gen) {
    ilm_engine e;
    if (!open_engine(&e, model, 0, 128, 64)) return;
    ilm_drafter *d = NULL;
    ilm_err err;
    ilm_sampler s;
    ilm_sampler_params sp = ilm_sampler_default_params();
    sp.temperature = 0;
    bool s_ok = ilm_sampler_init(&s, &sp, &err) == 0;
    CHECK(s_ok);
    if (ilm_drafter_load(&d, drafter, e.model, e.pool, false, &err)) {
        CHECK_MSG(0, "drafter load: %s", err.msg);
        goto done;
    }
    int32_t prompt[12];
    tokens(prompt, 12, 5);
    collected ref = {{0}, 0};
    for (int dm = 0; dm <= 3 && s_ok; dm++) {
        collected got = {{0}, 0};
        ilm_gen_opts go = {.n_predict = n_gen, .ignore_eos = true, .draft_max = dm, .on_token = collect, .ctx = &got};
        ilm_gen_stats st;
        ilm_kv_truncate(&e.kv[0], 0);
        if (ilm_generate(&e, dm ? d : NULL, &s, prompt, 12, &go, &st, &err)) {
            CHECK_MSG(0, "generate (draft-max %d): %s", dm, err.msg);
            break;
        }
        CHECK_EQ(got.n, n_gen);
        if (!dm) {
            ref = got;
            continue;
        }
        CHECK_MSG(st.drafted > 0, "draft-max %d: the drafter proposed nothing", dm);
        int diff = -1;
        for (int i = 0; i < n_gen && diff < 0; i++)
            if (got.ids[i] != ref.ids[i]) diff = i;
        CHECK_MSG(diff < 0, "%s + drafter, draft-max %d: token %d differs (%d vs %d without drafter)", model, dm, diff,
                  diff < 0 ? 0 : got.ids[diff], diff < 0 ? 0 : ref.ids[diff]);
    }
done:
    if (s_ok) ilm_sampler_free(&s);
    ilm_drafter_free(d);
    ilm_engine_close(&e);
}

TEST(realshape_12b_spec_lossless) {
    char p[512], dp[512];
    if (synth(p, sizeof p, "12b", "q4_0", 6, false) && synth(dp, sizeof dp, "12b", "q4_0", 0, true))
        check_spec_lossless(p, dp, 12);
}

TEST(realshape_e4b_spec_lossless) {
    char p[512], dp[512];
    if (synth(p, sizeof p, "e4b", "q4_0", 7, false) && synth(dp, sizeof dp, "e4b", "q4_0", 0, true))
        check_spec_lossless(p, dp, 20);
}
