// bench.c — the measurements of `ironlm bench` (see bench.h); the command line, the loops
// and the tables live in cmd_bench.c.
//
// Every timed region runs real work through the public engine API: ilm_forward for prefill and
// greedy decoding (one token per pass, the argmax fed back), ilm_generate for speculative
// decoding. Untimed set-up (the context a test starts from) uses the same calls.
#include "tools/bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- model facts ---------------------------------------------------------------------------

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

void ilm_bench_model_info_get(const ilm_model *m, ilm_bench_model_info *out) {
    memset(out, 0, sizeof *out);
    const ilm_gguf *g = m->gguf;
    const bool separate_head = ilm_gguf_find_tensor(g, "output.weight") != NULL;
    uint64_t by_type[64] = {0};
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const ilm_gguf_tensor *t = &g->tensors[i];
        uint64_t n = 1;
        for (int d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
        out->size += t->bytes;
        out->n_params += n;
        if (t->n_dims >= 2 && t->type >= 0 && t->type < 64) by_type[t->type] += t->bytes;
        // lookup tables: a pass reads one row per token, not the matrix
        if (!strcmp(t->name, "per_layer_token_embd.weight")) continue;
        if (separate_head && !strcmp(t->name, "token_embd.weight")) continue;
        const bool expert = strstr(t->name, "_exps.") && !ends_with(t->name, ".scale");
        if (expert) out->expert_bytes += t->bytes;
        else out->dense_bytes += t->bytes;
        const bool head = !strcmp(t->name, separate_head ? "output.weight" : "token_embd.weight");
        if (t->n_dims >= 2 && !head) *(expert ? &out->expert_macs : &out->token_macs) += n;
    }
    int main_type = 0;
    for (int k = 1; k < 64; k++)
        if (by_type[k] > by_type[main_type]) main_type = k;
    out->n_expert = m->n_expert;
    out->n_expert_used = m->n_expert_used;
    double p = (double)out->n_params;
    char params[32];
    if (p >= 1e9) snprintf(params, sizeof params, "%.1fB", p / 1e9);
    else snprintf(params, sizeof params, "%.0fM", p / 1e6);
    snprintf(out->type, sizeof out->type, "%.20s %.12s %.16s", m->arch, params, ilm_ggml_type_name(main_type));
}

double ilm_bench_streamed(const ilm_bench_model_info *mi, int n_tok) {
    double share = 1.0;
    if (mi->n_expert > 0 && mi->n_expert_used > 0 && mi->n_expert_used < mi->n_expert)
        share = 1.0 - pow(1.0 - (double)mi->n_expert_used / mi->n_expert, n_tok > 0 ? n_tok : 1);
    return (double)mi->dense_bytes + share * (double)mi->expert_bytes;
}

void ilm_bench_tokens(int32_t *out, int n, int n_vocab, uint64_t seed) {
    uint64_t s = seed;
    const int lo = n_vocab > 16 ? 8 : 0;
    for (int i = 0; i < n; i++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        out[i] = lo + (int32_t)(z % (uint64_t)(n_vocab - lo));
    }
}

// ---- passes --------------------------------------------------------------------------------

static int batch_size(const ilm_engine *e) { return e->opt.max_batch > 0 ? e->opt.max_batch : 512; }

// Appends tokens[0..n) to sequence 0's cache in passes of at most the engine's batch size
// (ilm_forward would split too; doing it here counts the passes). The last token's logits go
// to `logits` (may be NULL).
static int feed(ilm_engine *e, const int32_t *tokens, int n, float *logits, int *passes, ilm_err *err) {
    ilm_kv *kv = &e->kv[0];
    if (kv->n_pos + n > e->n_ctx)
        return ilm_fail(err, "bench: %d positions do not fit the context of %d (use -c)", kv->n_pos + n, e->n_ctx);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    bool *want = calloc((size_t)(n > 0 ? n : 1), sizeof(bool));
    if (!pos || !want) {
        free(pos);
        free(want);
        return ilm_fail(err, "out of memory");
    }
    const int B = batch_size(e);
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += B) {
        int nb = n - i0 < B ? n - i0 : B;
        for (int i = 0; i < nb; i++) {
            pos[i] = kv->n_pos + i;
            want[i] = i0 + i == n - 1;
        }
        ilm_batch b = {nb, tokens + i0, pos, NULL, want};
        rc = ilm_forward(e->fwd, &kv, 1, &b, i0 + nb == n ? logits : NULL, NULL, err);
        if (passes) (*passes)++;
    }
    free(pos);
    free(want);
    return rc;
}

static int32_t *context_tokens(const ilm_engine *e, int n, uint64_t seed, ilm_err *err) {
    int32_t *t = ilm_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1), err);
    if (t) ilm_bench_tokens(t, n, e->model->n_vocab, seed);
    return t;
}

int ilm_bench_context(ilm_engine *e, int depth, int32_t *next, ilm_err *err) {
    const int n = depth > 1 ? depth : 1;
    int32_t *ctx = context_tokens(e, n, 1, err);
    float *logits = ilm_malloc(sizeof(float) * (size_t)e->model->n_vocab, err);
    int rc = -1;
    if (ctx && logits) {
        ilm_kv_truncate(&e->kv[0], 0);
        rc = feed(e, ctx, n, logits, NULL, err);
        if (!rc) *next = ilm_argmax(logits, e->model->n_vocab);
    }
    free(ctx);
    free(logits);
    return rc;
}

int ilm_bench_prefill(ilm_engine *e, const ilm_bench_model_info *mi, int depth, int n_prompt, double *secs,
                      double *bytes, ilm_err *err) {
    if (e->kv[0].n_pos < depth) return ilm_fail(err, "bench: no context of depth %d in the cache", depth);
    int32_t *tok = context_tokens(e, n_prompt, 2, err);
    float *logits = ilm_malloc(sizeof(float) * (size_t)e->model->n_vocab, err);
    int rc = -1, passes = 0;
    if (tok && logits) {
        ilm_kv_truncate(&e->kv[0], depth);
        double t0 = ilm_now();
        rc = feed(e, tok, n_prompt, logits, &passes, err);
        *secs = ilm_now() - t0;
        const int B = batch_size(e);
        *bytes = passes * ilm_bench_streamed(mi, n_prompt < B ? n_prompt : B);
    }
    free(tok);
    free(logits);
    return rc;
}

// n_gen greedy single-token passes continuing the cache from `next`.
static int decode_loop(ilm_engine *e, int32_t next, int n_gen, float *logits, ilm_err *err) {
    const int V = e->model->n_vocab;
    ilm_kv *kv = &e->kv[0];
    for (int i = 0; i < n_gen; i++) {
        if (kv->n_pos >= e->n_ctx) return ilm_fail(err, "bench: context of %d full (use -c)", e->n_ctx);
        int32_t pos = kv->n_pos;
        ilm_batch b = {1, &next, &pos, NULL, NULL};
        if (ilm_forward(e->fwd, &kv, 1, &b, logits, NULL, err)) return -1;
        next = ilm_argmax(logits, V);
    }
    return 0;
}

int ilm_bench_decode(ilm_engine *e, const ilm_bench_model_info *mi, int depth, int32_t next, int n_gen,
                     double *secs, double *bytes, ilm_err *err) {
    const int n_ctx = depth > 1 ? depth : 1;
    if (e->kv[0].n_pos < n_ctx) return ilm_fail(err, "bench: no context of depth %d in the cache", n_ctx);
    float *logits = ilm_malloc(sizeof(float) * (size_t)e->model->n_vocab, err);
    if (!logits) return -1;
    ilm_kv_truncate(&e->kv[0], n_ctx);
    double t0 = ilm_now();
    int rc = decode_loop(e, next, n_gen, logits, err);
    *secs = ilm_now() - t0;
    *bytes = n_gen * ilm_bench_streamed(mi, 1);
    free(logits);
    return rc;
}

int ilm_bench_pg(ilm_engine *e, const ilm_bench_model_info *mi, int n_prompt, int n_gen, double *secs,
                 double *bytes, ilm_err *err) {
    const int V = e->model->n_vocab;
    int32_t *tok = context_tokens(e, n_prompt, 2, err);
    float *logits = ilm_malloc(sizeof(float) * (size_t)V, err);
    int rc = -1, passes = 0;
    if (tok && logits) {
        ilm_kv_truncate(&e->kv[0], 0);
        double t0 = ilm_now();
        rc = feed(e, tok, n_prompt, logits, &passes, err);
        if (!rc) rc = decode_loop(e, ilm_argmax(logits, V), n_gen, logits, err);
        *secs = ilm_now() - t0;
        const int B = batch_size(e);
        *bytes = passes * ilm_bench_streamed(mi, n_prompt < B ? n_prompt : B) + n_gen * ilm_bench_streamed(mi, 1);
    }
    free(tok);
    free(logits);
    return rc;
}

// ---- speculative decoding ------------------------------------------------------------------

int ilm_bench_spec(ilm_engine *e, ilm_drafter *d, const ilm_bench_model_info *mi, const int32_t *prompt,
                   int n_prompt, int draft_max, int n_gen, double *secs, double *bytes, ilm_gen_stats *st,
                   ilm_err *err) {
    ilm_sampler s;
    ilm_sampler_params sp = ilm_sampler_default_params();
    sp.temperature = 0;
    if (ilm_sampler_init(&s, &sp, err)) return -1;
    ilm_kv_truncate(&e->kv[0], 0);
    // n_gen + 1: the first token comes from the prompt's logits (no verifier round of its own)
    ilm_gen_opts go = {.n_predict = n_gen + 1, .ignore_eos = true, .draft_max = d ? draft_max : 0};
    int rc = ilm_generate(e, draft_max > 0 ? d : NULL, &s, prompt, n_prompt, &go, st, err);
    ilm_sampler_free(&s);
    if (rc) return -1;
    if (st->n_gen != n_gen + 1)
        return ilm_fail(err, "bench: generation produced %d tokens, expected %d", st->n_gen, n_gen + 1);
    *secs = st->t_gen;
    // each round is one verifier pass over its N+1 positions; drafter weights not counted
    double b = 0;
    for (int n = 0; n <= ILM_SPEC_MAX_DRAFT; n++) b += st->rounds_with_n[n] * ilm_bench_streamed(mi, n + 1);
    *bytes = b;
    return 0;
}

// ---- component costs -------------------------------------------------------------------------

// Fastest of a few repetitions of fn, at least 3, more while the total stays under ~0.6 s.
typedef int (*timed_fn)(void *ctx, ilm_err *err);

static int fastest(timed_fn fn, void *ctx, double *best, ilm_err *err) {
    double total = 0;
    *best = 1e30;
    for (int r = 0; r < 30 && (r < 3 || total < 0.6); r++) {
        double t0 = ilm_now();
        if (fn(ctx, err)) return -1;
        double dt = ilm_now() - t0;
        total += dt;
        if (dt < *best) *best = dt;
    }
    return 0;
}

typedef struct {
    ilm_engine *e;
    ilm_drafter *d;
    int depth, n;
    const int32_t *tok;
    float *logits, *hidden, *g_next;
} cost_ctx;

// One verifier pass of c->n tokens at the prompt's depth, every row wanted (as a
// verification needs), then the cache rolled back.
static int verify_pass(void *p, ilm_err *err) {
    cost_ctx *c = p;
    ilm_kv *kv = &c->e->kv[0];
    int32_t pos[ILM_BENCH_MAX_VERIFY + 1];
    for (int i = 0; i < c->n; i++) pos[i] = c->depth + i;
    ilm_batch b = {c->n, c->tok, pos, NULL, NULL};
    int rc = ilm_forward(c->e->fwd, &kv, 1, &b, c->logits, c->hidden, err);
    ilm_kv_truncate(kv, c->depth);
    return rc;
}

static int draft_step(void *p, ilm_err *err) {
    (void)err;
    cost_ctx *c = p;  // as a chain step with --draft-p-min 0: no confidence computed
    ilm_drafter_step(c->d, &c->e->kv[0], c->tok[0], c->hidden, c->depth, c->g_next, NULL, NULL);
    return 0;
}

int ilm_bench_measure_costs(ilm_engine *e, ilm_drafter *d, const int32_t *prompt, int n_prompt, int n_max,
                            ilm_bench_costs *c, ilm_err *err) {
    memset(c, 0, sizeof *c);
    if (n_max > ILM_BENCH_MAX_VERIFY) n_max = ILM_BENCH_MAX_VERIFY;
    c->n_max = n_max;
    c->depth = n_prompt;
    const int V = e->model->n_vocab, H = e->model->n_embd;
    float *logits = ilm_malloc(sizeof(float) * (size_t)V * (ILM_BENCH_MAX_VERIFY + 1), err);
    float *hidden = ilm_malloc(sizeof(float) * (size_t)H * (ILM_BENCH_MAX_VERIFY + 1), err);
    float *g_next = ilm_malloc(sizeof(float) * (size_t)H, err);
    int32_t tok[ILM_BENCH_MAX_VERIFY + 1];
    int rc = -1;
    if (!logits || !hidden || !g_next) goto done;
    if (e->opt.max_batch < n_max + 1) {
        ilm_fail(err, "bench: -b %d is smaller than a verification of %d tokens", e->opt.max_batch, n_max + 1);
        goto done;
    }
    ilm_kv_truncate(&e->kv[0], 0);
    if (feed(e, prompt, n_prompt, logits, NULL, err)) goto done;
    if (n_prompt + n_max + 1 > e->n_ctx) {
        ilm_fail(err, "bench: context of %d too small for the cost probe", e->n_ctx);
        goto done;
    }
    ilm_bench_tokens(tok, n_max + 1, V, 3);
    tok[0] = ilm_argmax(logits, V);
    cost_ctx cc = {e, d, n_prompt, 1, tok, logits, hidden, g_next};
    if (fastest(verify_pass, &cc, &c->t_decode, err)) goto done;  // leaves hidden = g at depth
    if (d && fastest(draft_step, &cc, &c->t_draft, err)) goto done;
    for (int N = 1; N <= n_max; N++) {
        cc.n = N + 1;
        if (fastest(verify_pass, &cc, &c->t_verify[N], err)) goto done;
    }
    rc = 0;
done:
    ilm_kv_truncate(&e->kv[0], 0);
    free(logits);
    free(hidden);
    free(g_next);
    return rc;
}

double ilm_bench_projected_speedup(const ilm_bench_costs *c, int N, double a) {
    if (N < 1 || N > c->n_max || c->t_decode <= 0) return 0;
    double tokens = 0, p = 1;
    for (int k = 0; k <= N; k++, p *= a) tokens += p;
    double cost = (c->t_verify[N] + N * c->t_draft) / c->t_decode;
    return cost > 0 ? tokens / cost : 0;
}
