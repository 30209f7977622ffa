// spec.c — the generation loop: plain decoding, greedy and sampled speculative decoding,
// KV rollback, statistics and draft-length autotuning. See spec.h.
#include "gen/spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// --- autotune ----------------------------------------------------------------------------------
// Predicts tokens/s of each draft length N from measured costs and acceptance:
//   tokens per round  = 1 + Σ_{k=1..N} Π_{j<=k} α_j        (α_j: P(draft j accepted | j-1 were))
//   seconds per round = t_verify(N+1) + N·t_draft
// and picks the best N; drafting stays off unless it beats plain decoding by 5%. It starts
// with 3 plain rounds and 3 rounds of every length, then explores another length every 8th
// round so the estimates stay current. Deterministic given timings.
typedef struct {
    int max;
    double t_verify[ILM_SPEC_MAX_DRAFT + 2];  // fastest verifier pass of k tokens (s)
    int n_verify[ILM_SPEC_MAX_DRAFT + 2];
    double t_draft;                           // fastest drafter step (s)
    int n_draft;
    long tried[ILM_SPEC_MAX_DRAFT + 1], ok[ILM_SPEC_MAX_DRAFT + 1];  // acceptance counts per position
    long round;
    int warm, explore_next;
} autotune;

// Keeps the fastest observation: interference (other processes, page faults) only ever adds
// time, so the minimum is the stable estimate of what a pass costs.
static void observe(double *v, int *n, double x) {
    *v = *n == 0 || x < *v ? x : *v;
    (*n)++;
}

static double predicted_rate(const autotune *a, int N) {
    double tv = a->n_verify[N + 1] ? a->t_verify[N + 1] : a->t_verify[1] * (1.0 + 0.1 * N);
    double tokens = 1.0, p = 1.0;
    for (int k = 1; k <= N; k++) {
        double alpha = (a->ok[k] + 1.0) / (a->tried[k] + 2.0);  // Laplace prior 1/2
        p *= alpha;
        tokens += p;
    }
    double secs = tv + N * a->t_draft;
    return secs > 0 ? tokens / secs : 0;
}

static int autotune_best(const autotune *a) {
    int best = 0;
    double r0 = predicted_rate(a, 0), rb = r0;
    for (int n = 1; n <= a->max; n++) {
        double r = predicted_rate(a, n);
        if (r > rb) {
            rb = r;
            best = n;
        }
    }
    return rb > 1.05 * r0 ? best : 0;
}

static int autotune_pick(autotune *a) {
    a->round++;
    if (a->round <= 3) return 0;              // measure plain decoding first
    if (a->warm < 3 * a->max) {               // then every length three times
        a->warm++;
        return a->max - (a->warm - 1) % a->max;
    }
    if (a->round % 8 == 0) {                  // explore
        a->explore_next = a->explore_next % a->max + 1;
        return a->explore_next;
    }
    return autotune_best(a);
}

// --- generation -------------------------------------------------------------------------------

static bool is_eog(const ilm_gen_opts *o, int32_t t) {
    for (int i = 0; i < o->n_eog; i++)
        if (o->eog[i] == t) return true;
    return false;
}

// Emits one token; returns 1 when generation must stop.
static int emit(const ilm_gen_opts *o, ilm_gen_stats *st, int32_t t) {
    if (!o->ignore_eos && is_eog(o, t)) {
        st->stopped_at_eog = true;
        return 1;
    }
    st->n_gen++;
    if (o->on_token && o->on_token(o->ctx, t)) return 1;
    return st->n_gen >= o->n_predict;
}

static void note_plain_step(ilm_gen_stats *st, double secs) {
    if (!st->plain_steps++ || secs < st->t_plain_step) st->t_plain_step = secs;
}

int ilm_generate(ilm_engine *e, ilm_drafter *drafter, ilm_sampler *s, const int32_t *prompt, int n_prompt,
                 const ilm_gen_opts *o, ilm_gen_stats *st, ilm_err *err) {
    memset(st, 0, sizeof *st);
    st->n_prompt = n_prompt;
    if (n_prompt < 1) return ilm_fail(err, "empty prompt");
    const ilm_model *m = e->model;
    const int V = m->n_vocab, H = m->n_embd;
    const int N_max = drafter ? (o->draft_max < ILM_SPEC_MAX_DRAFT ? o->draft_max : ILM_SPEC_MAX_DRAFT) : 0;
    ilm_kv *kv = &e->kv[0];
    if (kv->n_pos + n_prompt > e->n_ctx)
        return ilm_fail(err, "prompt of %d tokens does not fit the context (%d of %d used)", n_prompt, kv->n_pos, e->n_ctx);
    const int rows = N_max + 1;
    float *logits = malloc(sizeof(float) * (size_t)rows * V);
    float *hidden = malloc(sizeof(float) * (size_t)rows * H);
    float *probs = malloc(sizeof(float) * (size_t)V);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(n_prompt > rows ? n_prompt : rows));
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)(n_prompt > rows ? n_prompt : rows));
    bool *want = calloc((size_t)(n_prompt > rows ? n_prompt : rows), sizeof(bool));
    float *g0 = malloc(sizeof(float) * (size_t)H);
    int rc = -1;
    autotune at = {.max = N_max};
    double t0 = ilm_now();
    bool timed = false;  // t_gen set
    if (!logits || !hidden || !probs || !tok || !pos || !want || !g0) {
        ilm_fail(err, "out of memory");
        goto done;
    }
    const bool greedy = ilm_sampler_is_greedy(s);

    // ---- prompt ----
    t0 = ilm_now();
    for (int i = 0; i < n_prompt; i++) {
        tok[i] = prompt[i];
        pos[i] = kv->n_pos + i;
        want[i] = i == n_prompt - 1;
    }
    ilm_batch b = {n_prompt, tok, pos, NULL, want};
    if (ilm_forward(e->fwd, &kv, 1, &b, logits, hidden, err)) goto done;
    st->t_prompt = ilm_now() - t0;
    t0 = ilm_now();
    int32_t pending = greedy ? ilm_argmax(logits, V) : ilm_sample(s, logits, V);
    memcpy(g0, hidden, sizeof(float) * (size_t)H);
    if (o->n_predict <= 0 || emit(o, st, pending)) {
        rc = 0;
        goto done;
    }

    // ---- rounds: draft N, verify N+1 in one pass, accept, roll back ----
    for (;;) {
        const int p = kv->n_pos;
        if (p >= e->n_ctx) {
            ilm_fail(err, "context full (%d tokens)", e->n_ctx);
            goto done;
        }
        int N = o->autotune && N_max ? autotune_pick(&at) : N_max;
        int budget = o->n_predict - st->n_gen;  // tokens still wanted; a round emits <= N+1
        if (N > budget - 1) N = budget - 1;
        if (N > e->n_ctx - p - 1) N = e->n_ctx - p - 1;
        if (N < 0) N = 0;
        int32_t drafts[ILM_SPEC_MAX_DRAFT];
        int n = 0;
        double td = ilm_now();
        if (N > 0) n = ilm_drafter_chain(drafter, kv, pending, g0, p, N, o->draft_p_min, drafts, NULL);
        if (n > 0) observe(&at.t_draft, &at.n_draft, (ilm_now() - td) / n);
        tok[0] = pending;
        pos[0] = p;
        want[0] = true;
        for (int i = 0; i < n; i++) {
            tok[i + 1] = drafts[i];
            pos[i + 1] = p + 1 + i;
            want[i + 1] = true;
        }
        double tv = ilm_now();
        b = (ilm_batch){n + 1, tok, pos, NULL, want};
        if (ilm_forward(e->fwd, &kv, 1, &b, logits, hidden, err)) goto done;
        tv = ilm_now() - tv;
        observe(&at.t_verify[n + 1], &at.n_verify[n + 1], tv);
        if (n == 0) note_plain_step(st, tv);
        st->rounds++;
        st->rounds_with_n[n]++;
        // accept the longest agreeing prefix (greedy) or apply the speculative-sampling rule
        int a = 0;
        int32_t next = -1;
        for (; a < n; a++) {
            const float *row = logits + (size_t)a * V;
            int32_t t;
            bool ok;
            if (greedy) {
                t = ilm_argmax(row, V);
                ok = t == drafts[a];
            } else {
                ilm_sampler_probs(s, row, V, probs);
                ok = ilm_spec_accept(s, probs, NULL, drafts[a], V, &t) == 1;
            }
            st->drafted_at[a]++;
            at.tried[a + 1]++;
            if (!ok) {
                next = t;
                break;
            }
            st->accepted_at[a]++;
            at.ok[a + 1]++;
        }
        for (int k = a + 1; k < n; k++) st->drafted_at[k]++;  // drafted but never reached
        st->drafted += n;
        st->accepted += a;
        if (next < 0) {  // every draft accepted: bonus token from the last row
            const float *row = logits + (size_t)n * V;
            next = greedy ? ilm_argmax(row, V) : ilm_sample(s, row, V);
        }
        // rows 0..a stay in the cache (pending token + accepted drafts); the rest is rolled back
        ilm_kv_truncate(kv, p + a + 1);
        memcpy(g0, hidden + (size_t)a * H, sizeof(float) * (size_t)H);
        int stop = 0;
        for (int k = 0; k < a && !stop; k++) stop = emit(o, st, drafts[k]);
        if (!stop) stop = emit(o, st, next);
        pending = next;
        if (stop) break;
    }
    st->t_gen = ilm_now() - t0;
    timed = true;
    // The plain decoding rate to compare with: unless 3 rounds ran without drafts, time plain
    // steps now (the pending token at the next position, rolled back), outside t_gen.
    while (o->measure_plain && N_max > 0 && st->plain_steps < 3 && kv->n_pos < e->n_ctx) {
        const int p = kv->n_pos;
        tok[0] = pending;
        pos[0] = p;
        want[0] = true;
        b = (ilm_batch){1, tok, pos, NULL, want};
        double tv = ilm_now();
        if (ilm_forward(e->fwd, &kv, 1, &b, logits, hidden, err)) goto done;
        note_plain_step(st, ilm_now() - tv);
        ilm_kv_truncate(kv, p);
    }
    rc = 0;
done:
    if (!timed) st->t_gen = ilm_now() - t0;
    st->final_draft_max = o->autotune && N_max ? autotune_best(&at) : N_max;
    free(logits);
    free(hidden);
    free(probs);
    free(tok);
    free(pos);
    free(want);
    free(g0);
    return rc;
}

void ilm_gen_stats_print(const ilm_gen_stats *st, const ilm_engine *e, bool speculative) {
    fprintf(stderr, "\nironlm: prompt %d tokens in %.3f s (%.1f t/s); generated %d tokens in %.3f s (%.1f t/s)\n",
            st->n_prompt, st->t_prompt, st->t_prompt > 0 ? st->n_prompt / st->t_prompt : 0.0, st->n_gen, st->t_gen,
            st->t_gen > 0 ? st->n_gen / st->t_gen : 0.0);
    fprintf(stderr, "ironlm: kernels %s, %s\n", ilm_k->name, ilm_pool_describe(e->pool));
    if (!speculative) return;
    fprintf(stderr, "ironlm: speculative: %ld rounds, drafted %ld, accepted %ld (%.1f%%), mean accepted per round %.2f\n",
            st->rounds, st->drafted, st->accepted, st->drafted ? 100.0 * st->accepted / st->drafted : 0.0,
            st->rounds ? (double)st->accepted / st->rounds : 0.0);
    fprintf(stderr, "ironlm: acceptance by chain position:");
    for (int k = 0; k < ILM_SPEC_MAX_DRAFT && st->drafted_at[k]; k++)
        fprintf(stderr, " %d: %ld/%ld (%.2f)", k + 1, st->accepted_at[k], st->drafted_at[k],
                (double)st->accepted_at[k] / st->drafted_at[k]);
    fprintf(stderr, "\nironlm: rounds by draft length:");
    for (int k = 0; k <= ILM_SPEC_MAX_DRAFT; k++)
        if (st->rounds_with_n[k]) fprintf(stderr, " N=%d: %ld", k, st->rounds_with_n[k]);
    fprintf(stderr, "; draft length in use at the end: %d%s\n", st->final_draft_max,
            st->final_draft_max ? "" : " (drafting off)");
    if (st->plain_steps && st->t_gen > 0 && st->n_gen > 0) {
        double with = st->n_gen / st->t_gen, without = 1.0 / st->t_plain_step;
        fprintf(stderr, "ironlm: %.1f t/s with drafting; plain decoding %.1f t/s (fastest of %d single-token passes): %.2fx\n",
                with, without, st->plain_steps, with / without);
    }
}
