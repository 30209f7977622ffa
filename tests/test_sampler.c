// test_sampler.c — src/gen/sampler.c: greedy, seeds, the top-k / top-p / min-p chain against
// hand-computed distributions and a brute-force full-sort reference, and chi-square tests that
// plain and speculative sampling (docs/gemma4.md §4.6) draw from the target distribution.
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "gen/sampler.h"

// 99.9% quantiles of the chi-square distribution (computed from the regularised gamma function).
#define CHI2_999_DF7 24.3219
#define CHI2_999_DF48 84.0371
#define N_DRAWS 200000

static ilm_sampler make_sampler(float temperature, int top_k, float top_p, float min_p, uint64_t seed) {
    ilm_sampler s;
    ilm_err err = {{0}};
    ilm_sampler_params p = {.temperature = temperature, .top_k = top_k, .top_p = top_p, .min_p = min_p, .seed = seed};
    int rc = ilm_sampler_init(&s, &p, &err);
    CHECK_MSG(rc == 0, "init failed: %s", err.msg);
    return s;
}

// sum (observed - expected)^2 / expected; a cell expected to be empty must be empty.
static double chi_square(const long *observed, const double *probs, int n, long n_draws) {
    double chi2 = 0;
    for (int i = 0; i < n; i++) {
        double expected = probs[i] * (double)n_draws;
        if (expected <= 0) {
            CHECK_EQ(observed[i], 0);
            continue;
        }
        double d = (double)observed[i] - expected;
        chi2 += d * d / expected;
    }
    return chi2;
}

static void logits_from_probs(const double *p, float *logits, int n) {
    for (int i = 0; i < n; i++) logits[i] = p[i] > 0 ? (float)log(p[i]) : -INFINITY;
}

// Fixed 8-token target and draft distributions: different supports and shapes on purpose
// (q puts mass where p has none, and p has mass where q has none).
static const double TARGET_P[8] = {0.30, 0.05, 0.20, 0.00, 0.15, 0.10, 0.12, 0.08};
static const double DRAFT_Q[8] = {0.10, 0.25, 0.20, 0.15, 0.05, 0.00, 0.20, 0.05};

TEST(sampler_greedy_is_argmax_lowest_id_on_ties) {
    ilm_sampler s = make_sampler(0.0f, 40, 0.9f, 0.1f, 1);
    float logits[8] = {0.5f, 2.0f, -1.0f, 3.0f, 1.0f, 3.0f, NAN, 3.0f};
    CHECK(ilm_sampler_is_greedy(&s));
    for (int i = 0; i < 5; i++) CHECK_EQ(ilm_sample(&s, logits, 8), 3);
    float probs[8];
    CHECK_EQ(ilm_sampler_probs(&s, logits, 8, probs), 0);
    for (int i = 0; i < 8; i++) CHECK_NEAR(probs[i], i == 3 ? 1.0 : 0.0, 0);
    float all_low[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK_EQ(ilm_sample(&s, all_low, 3), 0);
    ilm_sampler_free(&s);
    // Negative temperature is greedy too.
    ilm_sampler g = make_sampler(-1.0f, 0, 1.0f, 0.0f, 1);
    CHECK_EQ(ilm_sample(&g, logits, 8), 3);
    ilm_sampler_free(&g);
}

TEST(sampler_same_seed_same_sequence) {
    enum { N = 64, DRAWS = 200 };
    float logits[N];
    uint64_t rs = 7;
    for (int i = 0; i < N; i++) logits[i] = t_rand_f32(&rs);  // nearly flat: many outcomes possible
    ilm_sampler a = make_sampler(1.0f, 0, 1.0f, 0.0f, 42), b = make_sampler(1.0f, 0, 1.0f, 0.0f, 42);
    ilm_sampler c = make_sampler(1.0f, 0, 1.0f, 0.0f, 43);
    int32_t seq_a[DRAWS];
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < DRAWS; i++) {
        seq_a[i] = ilm_sample(&a, logits, N);
        same_ab += seq_a[i] == ilm_sample(&b, logits, N);
        same_ac += seq_a[i] == ilm_sample(&c, logits, N);
    }
    CHECK_EQ(same_ab, DRAWS);
    CHECK(same_ac < DRAWS / 4);  // ~1/64 expected by chance
    // Reseeding restarts the stream.
    ilm_sampler_reseed(&a, 42);
    int same_again = 0;
    for (int i = 0; i < DRAWS; i++) same_again += seq_a[i] == ilm_sample(&a, logits, N);
    CHECK_EQ(same_again, DRAWS);
    ilm_sampler_free(&a);
    ilm_sampler_free(&b);
    ilm_sampler_free(&c);
}

TEST(sampler_top_k_1_is_greedy) {
    enum { N = 1000 };
    float logits[N];
    uint64_t rs = 11;
    ilm_sampler s = make_sampler(1.5f, 1, 1.0f, 0.0f, 5);
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < N; i++) logits[i] = 4.0f * t_rand_f32(&rs);
        if (trial % 5 == 0) logits[700] = logits[300] = 10.0f;  // a tie: lowest id wins
        int32_t expected = 0;
        for (int i = 1; i < N; i++)
            if (logits[i] > logits[expected]) expected = i;
        CHECK_EQ(ilm_sample(&s, logits, N), expected);
    }
    ilm_sampler_free(&s);
}

// A hand-made distribution (ids shuffled so the filters must sort), checked for both code paths:
// whole-vocabulary (top_k = 0) and top-k (two extra near-zero tokens that top-k = 6 removes).
static const double HAND_P[6] = {0.0625, 0.5, 0.03125, 0.25, 0.125, 0.03125};

static void check_hand_case(int top_k, float top_p, float min_p, const double *expected) {
    float logits[8], probs[8];
    logits_from_probs(HAND_P, logits, 6);
    for (int path = 0; path < 2; path++) {
        int n = path == 0 ? 6 : 8;
        int k = top_k;
        if (path == 1) {
            logits[6] = logits[7] = -60.0f;
            if (k == 0) k = 6;
        }
        ilm_sampler s = make_sampler(1.0f, k, top_p, min_p, 3);
        CHECK_EQ(ilm_sampler_probs(&s, logits, n, probs), 0);
        for (int i = 0; i < n; i++)
            CHECK_MSG(fabs(probs[i] - (i < 6 ? expected[i] : 0.0)) <= 1e-6,
                      "top_k=%d top_p=%g min_p=%g path=%d: p[%d] = %.9g, expected %.9g", k,
                      (double)top_p, (double)min_p, path, i, (double)probs[i], i < 6 ? expected[i] : 0.0);
        ilm_sampler_free(&s);
    }
}

TEST(sampler_top_p_min_p_remove_expected_tokens) {
    const double none[6] = {0.0625, 0.5, 0.03125, 0.25, 0.125, 0.03125};
    const double top2[6] = {0, 2.0 / 3, 0, 1.0 / 3, 0, 0};
    const double top3[6] = {0, 0.5 / 0.875, 0, 0.25 / 0.875, 0.125 / 0.875, 0};
    const double top1[6] = {0, 1, 0, 0, 0, 0};
    check_hand_case(0, 1.0f, 0.0f, none);
    check_hand_case(0, 0.7f, 0.0f, top2);   // 0.5 < 0.7 <= 0.75
    check_hand_case(0, 0.8f, 0.0f, top3);   // 0.75 < 0.8 <= 0.875
    check_hand_case(0, 0.0f, 0.0f, top1);   // the best token always stays
    check_hand_case(0, 0.3f, 0.0f, top1);
    check_hand_case(0, 1.0f, 0.3f, top2);   // p >= 0.15
    check_hand_case(0, 1.0f, 0.2f, top3);   // p >= 0.10
    check_hand_case(0, 1.0f, 1.0f, top1);
    check_hand_case(0, 0.9f, 0.2f, top3);   // top-p keeps 4, min-p 3
    check_hand_case(0, 0.7f, 0.2f, top2);   // top-p keeps 2, min-p 3
    check_hand_case(2, 1.0f, 0.0f, top2);
    check_hand_case(3, 0.7f, 0.0f, top2);
    const double top4[6] = {0.0625 / 0.9375, 0.5 / 0.9375, 0, 0.25 / 0.9375, 0.125 / 0.9375, 0};
    check_hand_case(0, 0.9f, 0.0f, top4);   // 0.875 < 0.9 <= 0.9375
}

TEST(sampler_temperature_scales_logits) {
    const float logits[4] = {1.0f, 2.0f, 3.0f, 0.5f};
    const float temps[3] = {0.5f, 1.0f, 2.0f};
    for (int t = 0; t < 3; t++) {
        ilm_sampler s = make_sampler(temps[t], 0, 1.0f, 0.0f, 1);
        float probs[4];
        CHECK_EQ(ilm_sampler_probs(&s, logits, 4, probs), 0);
        double z = 0, e[4];
        for (int i = 0; i < 4; i++) z += e[i] = exp(logits[i] / temps[t]);
        for (int i = 0; i < 4; i++) CHECK_NEAR(probs[i], e[i] / z, 1e-6);
        ilm_sampler_free(&s);
    }
    // Top-k does not depend on the temperature; top-p acts on the tempered distribution:
    // at T = 0.5 the best of {3, 2, 1, 0.5} has 0.84 of the mass, at T = 2 only 0.43.
    ilm_sampler cold = make_sampler(0.5f, 0, 0.8f, 0.0f, 1), hot = make_sampler(2.0f, 0, 0.8f, 0.0f, 1);
    float pc[4], ph[4];
    ilm_sampler_probs(&cold, logits, 4, pc);
    ilm_sampler_probs(&hot, logits, 4, ph);
    CHECK_NEAR(pc[2], 1.0, 0);
    CHECK(ph[0] > 0 && ph[1] > 0 && ph[2] > 0 && ph[3] == 0);
    ilm_sampler_free(&cold);
    ilm_sampler_free(&hot);
}

// ---- brute-force reference: full sort, then the chain exactly as documented ----------------

static const float *ref_logits;
static int ref_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float lx = ref_logits[x], ly = ref_logits[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void reference_probs(const float *logits, int n, const ilm_sampler_params *p, int32_t *order,
                            float *probs) {
    for (int i = 0; i < n; i++) order[i] = i;
    ref_logits = logits;
    qsort(order, (size_t)n, sizeof *order, ref_cmp);
    int n_c = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    float best = logits[order[0]], inv_t = 1.0f / p->temperature;
    double total = 0;
    for (int i = 0; i < n_c; i++) total += expf(-(best - logits[order[i]]) * inv_t);
    double cum = 0;
    int keep = n_c;
    for (int i = 0; i < n_c; i++) {
        float w = expf(-(best - logits[order[i]]) * inv_t);
        if (i > 0 && w < p->min_p) {
            keep = i;
            break;
        }
        cum += w;
        if (p->top_p < 1.0f && cum >= p->top_p * total) {
            keep = i + 1;
            break;
        }
    }
    double mass = 0;
    for (int i = 0; i < keep; i++) mass += expf(-(best - logits[order[i]]) * inv_t);
    memset(probs, 0, (size_t)n * sizeof *probs);
    for (int i = 0; i < keep; i++) probs[order[i]] = (float)(expf(-(best - logits[order[i]]) * inv_t) / mass);
}

TEST(sampler_full_vocab_matches_full_sort_reference) {
    enum { N = 131072 };  // half the Gemma vocabulary keeps the reference sorts quick
    float *logits = malloc(N * sizeof *logits), *got = malloc(N * sizeof *got), *want = malloc(N * sizeof *want);
    int32_t *order = malloc(N * sizeof *order);
    uint64_t rs = 2024;
    struct {
        float scale, temperature, top_p, min_p;
        int top_k;
    } cases[] = {
        {6.0f, 1.0f, 0.90f, 0.00f, 0},    // peaked: top-p sorts few
        {0.3f, 0.8f, 0.95f, 0.00f, 0},    // almost flat: top-p reaches deep
        {6.0f, 0.7f, 0.50f, 0.01f, 0},
        {6.0f, 1.0f, 1.00f, 0.05f, 0},    // min-p only: no sort
        {6.0f, 1.3f, 1.00f, 0.00f, 0},    // temperature only
        {6.0f, 0.8f, 0.95f, 0.05f, 40},   // llama.cpp defaults
        {6.0f, 1.0f, 0.90f, 0.00f, 5000},
        {-6.0f, 0.9f, 0.90f, 0.00f, 0},   // logits on a 0.5 grid: ~5k-way ties at the top-p cut
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int i = 0; i < N; i++) {
            float scale = fabsf(cases[k].scale);
            logits[i] = scale * t_rand_f32(&rs);
            if (cases[k].scale < 0) logits[i] = 0.5f * roundf(2.0f * logits[i]);
        }
        logits[N / 3] = logits[N / 3 + 1];  // a tie somewhere
        ilm_sampler_params p = {cases[k].temperature, cases[k].top_k, cases[k].top_p, cases[k].min_p, 9};
        ilm_sampler s;
        ilm_err err;
        CHECK_EQ(ilm_sampler_init(&s, &p, &err), 0);
        CHECK_EQ(ilm_sampler_probs(&s, logits, N, got), 0);
        reference_probs(logits, N, &p, order, want);
        int mismatched_support = 0, kept = 0;
        double max_diff = 0, sum = 0;
        for (int i = 0; i < N; i++) {
            mismatched_support += (got[i] > 0) != (want[i] > 0);
            kept += want[i] > 0;
            max_diff = fmax(max_diff, fabs(got[i] - want[i]));
            sum += got[i];
        }
        CHECK_MSG(mismatched_support == 0, "case %zu: %d tokens differ in/out (of %d kept)", k,
                  mismatched_support, kept);
        CHECK_MSG(max_diff <= 1e-6, "case %zu: max |p - ref| = %g", k, max_diff);
        CHECK_NEAR(sum, 1.0, 1e-4);
        // ilm_sample only returns kept tokens.
        for (int d = 0; d < 5; d++) {
            int32_t t = ilm_sample(&s, logits, N);
            CHECK(t >= 0 && t < N && want[t] > 0);
        }
        ilm_sampler_free(&s);
    }
    free(logits);
    free(got);
    free(want);
    free(order);
}

// ---- distribution tests ---------------------------------------------------------------------

TEST(sampler_plain_sampling_chi_square) {
    float logits[8];
    logits_from_probs(TARGET_P, logits, 8);
    ilm_sampler s = make_sampler(1.0f, 0, 1.0f, 0.0f, 12345);
    long from_logits[8] = {0}, from_probs[8] = {0};
    float probs[8];
    for (int i = 0; i < 8; i++) probs[i] = (float)TARGET_P[i];
    for (long i = 0; i < N_DRAWS; i++) {
        from_logits[ilm_sample(&s, logits, 8)]++;
        from_probs[ilm_sample_probs(&s, probs, 8)]++;
    }
    double c1 = chi_square(from_logits, TARGET_P, 8, N_DRAWS), c2 = chi_square(from_probs, TARGET_P, 8, N_DRAWS);
    CHECK_MSG(c1 < CHI2_999_DF7, "ilm_sample: chi2 = %.2f", c1);
    CHECK_MSG(c2 < CHI2_999_DF7, "ilm_sample_probs: chi2 = %.2f", c2);
    ilm_sampler_free(&s);
}

TEST(sampler_spec_general_draft_chi_square) {
    float p[8], q[8];
    for (int i = 0; i < 8; i++) p[i] = (float)TARGET_P[i], q[i] = (float)DRAFT_Q[i];
    ilm_sampler s = make_sampler(1.0f, 0, 1.0f, 0.0f, 777);
    long counts[8] = {0}, accepted = 0;
    for (long i = 0; i < N_DRAWS; i++) {
        int32_t draft = ilm_sample_probs(&s, q, 8), out;
        accepted += ilm_spec_accept(&s, p, q, draft, 8, &out);
        counts[out]++;
    }
    double c = chi_square(counts, TARGET_P, 8, N_DRAWS);
    CHECK_MSG(c < CHI2_999_DF7, "chi2 = %.2f", c);
    // P(accept) = sum_x min(p(x), q(x)).
    double overlap = 0;
    for (int i = 0; i < 8; i++) overlap += fmin(TARGET_P[i], DRAFT_Q[i]);
    CHECK_NEAR((double)accepted / N_DRAWS, overlap, 0.005);
    ilm_sampler_free(&s);
}

TEST(sampler_spec_onehot_draft_chi_square) {
    float p[8];
    for (int i = 0; i < 8; i++) p[i] = (float)TARGET_P[i];
    ilm_sampler s = make_sampler(1.0f, 0, 1.0f, 0.0f, 4242);
    const int32_t drafts[3] = {0, 6, 3};  // a likely token, an unlikely one, one p excludes
    for (int k = 0; k < 3; k++) {
        long counts[8] = {0}, accepted = 0;
        for (long i = 0; i < N_DRAWS; i++) {
            int32_t out;
            int acc = ilm_spec_accept(&s, p, NULL, drafts[k], 8, &out);
            CHECK(acc ? out == drafts[k] : out != drafts[k]);
            accepted += acc;
            counts[out]++;
        }
        double c = chi_square(counts, TARGET_P, 8, N_DRAWS);
        CHECK_MSG(c < CHI2_999_DF7, "draft %d: chi2 = %.2f", drafts[k], c);
        CHECK_NEAR((double)accepted / N_DRAWS, TARGET_P[drafts[k]], 0.005);  // P(accept) = p(d)
    }
    ilm_sampler_free(&s);
}

// A whole speculative round of two drafted positions whose distributions depend on the first
// token: the first two emitted tokens must follow p1(x1) p2(x2 | x1) jointly.
TEST(sampler_spec_two_position_chain_chi_square) {
    float p1[8], q1[8], p2[8][8], q2[8][8];
    double joint[64];
    for (int i = 0; i < 8; i++) p1[i] = (float)TARGET_P[i], q1[i] = (float)DRAFT_Q[i];
    for (int a = 0; a < 8; a++) {  // rotated copies: p2(. | a), q2(. | a)
        for (int b = 0; b < 8; b++) {
            p2[a][b] = (float)TARGET_P[(b + a) % 8];
            q2[a][b] = (float)DRAFT_Q[(b + 3 * a) % 8];
            joint[a * 8 + b] = (double)p1[a] * p2[a][b];
        }
    }
    ilm_sampler s = make_sampler(1.0f, 0, 1.0f, 0.0f, 99);
    long counts[64] = {0};
    for (long i = 0; i < N_DRAWS; i++) {
        int32_t d1 = ilm_sample_probs(&s, q1, 8), x1, x2;
        if (ilm_spec_accept(&s, p1, q1, d1, 8, &x1)) {
            int32_t d2 = ilm_sample_probs(&s, q2[d1], 8);
            ilm_spec_accept(&s, p2[x1], q2[x1], d2, 8, &x2);  // accepted or corrected: either way x2
        } else {
            x2 = ilm_sample_probs(&s, p2[x1], 8);  // the next round starts from the correction
        }
        counts[x1 * 8 + x2]++;
    }
    // Degrees of freedom: non-empty cells - 1 = 7 * 7 - 1 (p1 and every p2 exclude one token).
    int nonempty = 0;
    for (int c = 0; c < 64; c++) nonempty += joint[c] > 0;
    double chi2 = chi_square(counts, joint, 64, N_DRAWS);
    CHECK_EQ(nonempty, 49);
    CHECK_MSG(chi2 < CHI2_999_DF48, "chi2 = %.2f (df 48)", chi2);
    ilm_sampler_free(&s);
}

TEST(sampler_spec_greedy_accepts_only_argmax) {
    ilm_sampler s = make_sampler(0.0f, 0, 1.0f, 0.0f, 1);
    float logits[5] = {0.1f, 2.0f, 0.3f, 2.0f, -1.0f}, p[5];
    ilm_sampler_probs(&s, logits, 5, p);
    for (int d = 0; d < 5; d++) {
        int32_t out = -1;
        int acc = ilm_spec_accept(&s, p, NULL, d, 5, &out);
        CHECK_EQ(acc, d == 1);
        CHECK_EQ(out, 1);
    }
    ilm_sampler_free(&s);
}

TEST(sampler_init_rejects_bad_params) {
    ilm_sampler s;
    ilm_err err = {{0}};
    ilm_sampler_params ok = ilm_sampler_default_params(), bad;
    CHECK_EQ(ilm_sampler_init(&s, &ok, &err), 0);
    ilm_sampler_free(&s);
    bad = ok, bad.temperature = NAN;
    CHECK(ilm_sampler_init(&s, &bad, &err) != 0 && strstr(err.msg, "temperature"));
    bad = ok, bad.top_k = -1;
    CHECK(ilm_sampler_init(&s, &bad, &err) != 0 && strstr(err.msg, "top-k"));
    bad = ok, bad.top_p = -0.5f;
    CHECK(ilm_sampler_init(&s, &bad, &err) != 0 && strstr(err.msg, "top-p"));
    bad = ok, bad.min_p = 1.5f;
    CHECK(ilm_sampler_init(&s, &bad, &err) != 0 && strstr(err.msg, "min-p"));
    CHECK(ilm_sampler_reserve(&s, 0, &err) != 0);
}
