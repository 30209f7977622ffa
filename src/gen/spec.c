// spec.c — one sequence's speculative decoding: draft-length autotuning, the acceptance of a
// verified round, and the statistics block. See spec.h; the loop is gen/scheduler.c.
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

// Keeps the fastest observation: interference (other processes, page faults) only ever adds
// time, so the minimum is the stable estimate of what a pass costs.
static void observe(double *v, int *n, double x) {
    *v = *n == 0 || x < *v ? x : *v;
    (*n)++;
}

void ilm_autotune_verified(ilm_autotune *a, int k, double secs) {
    if (k >= 1 && k <= ILM_SPEC_MAX_DRAFT + 1) observe(&a->t_verify[k], &a->n_verify[k], secs);
}

void ilm_autotune_drafted(ilm_autotune *a, double secs_per_step) { observe(&a->t_draft, &a->n_draft, secs_per_step); }

static double predicted_rate(const ilm_autotune *a, int N) {
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

int ilm_autotune_best(const ilm_autotune *a) {
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

int ilm_autotune_pick(ilm_autotune *a) {
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
    return ilm_autotune_best(a);
}

// --- one verified round ----------------------------------------------------------------------

int ilm_spec_round(ilm_sampler *s, const float *logits, int V, const int32_t *drafts, int n, float *probs,
                   ilm_gen_stats *st, ilm_autotune *at, int32_t *next) {
    const bool greedy = ilm_sampler_is_greedy(s);
    st->rounds++;
    st->rounds_with_n[n]++;
    int a = 0;
    *next = -1;
    for (; a < n; a++) {
        const float *row = logits + (size_t)a * V;
        int32_t t;
        bool ok;
        if (greedy) {
            t = ilm_sample(s, row, V);
            ok = t == drafts[a];
        } else {
            ilm_sampler_probs(s, row, V, probs);
            ok = ilm_spec_accept(s, probs, NULL, drafts[a], V, &t) == 1;
        }
        st->drafted_at[a]++;
        if (at) at->tried[a + 1]++;
        if (!ok) {
            *next = t;
            break;
        }
        st->accepted_at[a]++;
        if (at) at->ok[a + 1]++;
        ilm_sampler_accept_generated(s, drafts[a]);  // the next row's penalties see it
    }
    for (int k = a + 1; k < n; k++) st->drafted_at[k]++;  // drafted but never reached
    st->drafted += n;
    st->accepted += a;
    if (*next < 0) *next = ilm_sample(s, logits + (size_t)n * V, V);  // all accepted: the bonus token
    ilm_sampler_accept_generated(s, *next);
    return a;
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
