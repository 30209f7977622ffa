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
        ilm_sampler_params p = {.temperature = cases[k].temperature, .top_k = cases[k].top_k,
                                .top_p = cases[k].top_p, .min_p = cases[k].min_p, .seed = 9};
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

// ---- logit bias and penalties ---------------------------------------------------------------

// A sampler without filters (top-k, top-p, min-p off) with these adjustments.
static ilm_sampler make_adjusting(float repeat, int last_n, float presence, float frequency,
                                  const ilm_logit_bias *bias, int n_bias, float temperature) {
    ilm_sampler_params p = {.temperature = temperature, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 11,
                            .repeat_penalty = repeat, .repeat_last_n = last_n, .presence_penalty = presence,
                            .frequency_penalty = frequency, .logit_bias = bias, .n_logit_bias = n_bias};
    ilm_sampler s;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_sampler_init(&s, &p, &err) == 0, "init failed: %s", err.msg);
    return s;
}

// ilm_sampler_probs at temperature 1 without filters is softmax(adjusted logits): compare with
// the softmax of the hand-computed adjusted row.
static void check_adjusted(ilm_sampler *s, const float *logits, int n, const float *expected) {
    float probs[64], ref[64];
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = expected[i] > mx ? expected[i] : mx;
    for (int i = 0; i < n; i++) sum += ref[i] = (float)exp(expected[i] - mx);
    CHECK_EQ(ilm_sampler_probs(s, logits, n, probs), 0);
    for (int i = 0; i < n; i++) CHECK_NEAR(probs[i], ref[i] / sum, 1e-6);
}

static const float ROW6[6] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f};

TEST(sampler_repeat_penalty_divides_positive_multiplies_negative) {
    ilm_sampler s = make_adjusting(2.0f, 64, 0, 0, NULL, 0, 1.0f);
    CHECK(ilm_sampler_adjusts(&s));
    check_adjusted(&s, ROW6, 6, ROW6);  // empty history: nothing to penalise
    const int32_t hist[] = {0, 1, 1, 4, 5};
    for (int i = 0; i < 5; i++) ilm_sampler_accept(&s, hist[i]);
    const float want[6] = {1.0f, -2.0f, 0.5f, 3.0f, -4.0f, 0.0f};  // 2/2, -1*2, -2*2, 0*2
    check_adjusted(&s, ROW6, 6, want);
    float row[6];
    memcpy(row, ROW6, sizeof row);
    check_adjusted(&s, row, 6, want);
    CHECK(memcmp(row, ROW6, sizeof row) == 0);  // the caller's row is never written
    ilm_sampler_free(&s);
}

TEST(sampler_frequency_and_presence_penalties) {
    const int32_t hist[] = {0, 1, 1, 4, 1};  // counts: 0 x1, 1 x3, 4 x1
    ilm_sampler s = make_adjusting(1.0f, 64, 1.0f, 0.5f, NULL, 0, 1.0f);
    for (int i = 0; i < 5; i++) ilm_sampler_accept(&s, hist[i]);
    const float want[6] = {2.0f - 0.5f - 1.0f, -1.0f - 1.5f - 1.0f, 0.5f, 3.0f, -2.0f - 0.5f - 1.0f, 0.0f};
    check_adjusted(&s, ROW6, 6, want);
    ilm_sampler_free(&s);
    // All three: the repeat penalty first, then the subtraction.
    ilm_sampler r = make_adjusting(2.0f, 64, 1.0f, 0.5f, NULL, 0, 1.0f);
    for (int i = 0; i < 5; i++) ilm_sampler_accept(&r, hist[i]);
    const float want2[6] = {1.0f - 1.5f, -2.0f - 2.5f, 0.5f, 3.0f, -4.0f - 1.5f, 0.0f};
    check_adjusted(&r, ROW6, 6, want2);
    ilm_sampler_free(&r);
    // Negative penalties reward repetition (llama.cpp allows them).
    ilm_sampler n = make_adjusting(1.0f, 64, -1.0f, 0.0f, NULL, 0, 1.0f);
    ilm_sampler_accept(&n, 2);
    const float want3[6] = {2.0f, -1.0f, 1.5f, 3.0f, -2.0f, 0.0f};
    check_adjusted(&n, ROW6, 6, want3);
    ilm_sampler_free(&n);
}

TEST(sampler_penalty_window_semantics) {
    // n = 2: only the last two accepted tokens count.
    ilm_sampler s = make_adjusting(1.0f, 2, 0.0f, 1.0f, NULL, 0, 1.0f);
    ilm_sampler_accept(&s, 0);
    ilm_sampler_accept(&s, 1);
    ilm_sampler_accept(&s, 4);
    const float want[6] = {2.0f, -2.0f, 0.5f, 3.0f, -3.0f, 0.0f};
    check_adjusted(&s, ROW6, 6, want);
    ilm_sampler_free(&s);
    // 0: no penalties at all, nothing kept.
    // After reserve, ids outside the vocabulary are not recorded.
    ilm_sampler r = make_adjusting(1.0f, 4, 0.0f, 1.0f, NULL, 0, 1.0f);
    ilm_err err;
    CHECK_EQ(ilm_sampler_reserve(&r, 6, &err), 0);
    ilm_sampler_accept(&r, 6);
    ilm_sampler_accept(&r, 1000000);
    ilm_sampler_accept(&r, -3);
    CHECK_EQ(r.hist_len, 0);
    CHECK_EQ(r.count_cap, 6);
    ilm_sampler_accept(&r, 5);
    const float want_r[6] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, -1.0f};
    check_adjusted(&r, ROW6, 6, want_r);
    ilm_sampler_free(&r);
    ilm_sampler z = make_adjusting(2.0f, 0, 1.0f, 1.0f, NULL, 0, 1.0f);
    CHECK(!ilm_sampler_adjusts(&z));
    for (int i = 0; i < 6; i++) ilm_sampler_accept(&z, i);
    CHECK_EQ(z.hist_len, 0);
    check_adjusted(&z, ROW6, 6, ROW6);
    ilm_sampler_free(&z);
    // -1: the whole history, however long (the array grows past its first capacity).
    ilm_sampler w = make_adjusting(1.0f, -1, 0.0f, 0.01f, NULL, 0, 1.0f);
    ilm_sampler_accept(&w, 3);
    for (int i = 0; i < 1000; i++) ilm_sampler_accept(&w, 2);
    const float want_w[6] = {2.0f, -1.0f, 0.5f - 10.0f, 3.0f - 0.01f, -2.0f, 0.0f};
    float probs[6];
    CHECK_EQ(ilm_sampler_probs(&w, ROW6, 6, probs), 0);
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += exp(want_w[i]);
    for (int i = 0; i < 6; i++) CHECK_NEAR(probs[i], exp(want_w[i]) / sum, 1e-5);
    ilm_sampler_free(&w);
}

// The ring against a brute-force count over the last n accepted tokens, through many wraps.
TEST(sampler_penalty_ring_wraps) {
    enum { V = 8, N_WIN = 5, STEPS = 300 };
    ilm_sampler s = make_adjusting(1.5f, N_WIN, 0.25f, 0.5f, NULL, 0, 1.0f);
    float logits[V], want[V];
    uint64_t rs = 99;
    for (int i = 0; i < V; i++) logits[i] = 4 * t_rand_f32(&rs) - 2;
    int32_t seq[STEPS];
    for (int step = 0; step < STEPS; step++) {
        seq[step] = (int32_t)(t_rand_u64(&rs) % V);
        ilm_sampler_accept(&s, seq[step]);
        int count[V] = {0};
        for (int j = step + 1 - N_WIN < 0 ? 0 : step + 1 - N_WIN; j <= step; j++) count[seq[j]]++;
        for (int t = 0; t < V; t++) {
            float x = logits[t];
            if (count[t] > 0) {
                x = x <= 0 ? x * 1.5f : x / 1.5f;
                x -= (float)count[t] * 0.5f + 0.25f;
            }
            want[t] = x;
        }
        check_adjusted(&s, logits, V, want);
    }
    ilm_sampler_free(&s);
}

TEST(sampler_logit_bias_and_ban) {
    ilm_logit_bias bias[3] = {{3, -INFINITY}, {4, 4.5f}, {4, 0.25f}};  // same id twice: they add
    ilm_sampler s = make_adjusting(1.0f, 64, 0, 0, bias, 3, 1.0f);
    bias[0].bias = 100.0f;  // the sampler holds its own copy
    CHECK(ilm_sampler_adjusts(&s));
    const float want[6] = {2.0f, -1.0f, 0.5f, -INFINITY, 2.75f, 0.0f};
    check_adjusted(&s, ROW6, 6, want);
    for (int i = 0; i < 200; i++) CHECK(ilm_sample(&s, ROW6, 6) != 3);  // banned
    ilm_sampler_free(&s);

    // Greedy: the argmax of the adjusted row.
    ilm_sampler g0 = make_adjusting(1.0f, 64, 0, 0, NULL, 0, 0.0f);
    CHECK_EQ(ilm_sample(&g0, ROW6, 6), 3);
    ilm_sampler_free(&g0);
    ilm_logit_bias ban = {3, -INFINITY};
    ilm_sampler g1 = make_adjusting(1.0f, 64, 0, 0, &ban, 1, 0.0f);
    CHECK_EQ(ilm_sample(&g1, ROW6, 6), 0);
    float probs[6];
    CHECK_EQ(ilm_sampler_probs(&g1, ROW6, 6, probs), 0);
    CHECK(probs[0] == 1.0f && probs[3] == 0.0f);
    ilm_sampler_free(&g1);
    ilm_logit_bias up = {4, 5.5f};  // -2 + 5.5 = 3.5 > 3
    ilm_sampler g2 = make_adjusting(1.0f, 64, 0, 0, &up, 1, 0.0f);
    CHECK_EQ(ilm_sample(&g2, ROW6, 6), 4);
    ilm_sampler_free(&g2);

    // With top-k: the ban happens before the k are chosen.
    ilm_sampler_params p = {.temperature = 1.0f, .top_k = 2, .top_p = 1.0f, .seed = 1, .logit_bias = &ban,
                            .n_logit_bias = 1};
    ilm_sampler k;
    ilm_err err;
    CHECK_EQ(ilm_sampler_init(&k, &p, &err), 0);
    CHECK_EQ(ilm_sampler_probs(&k, ROW6, 6, probs), 0);
    CHECK_NEAR(probs[0], 1.0 / (1.0 + exp(-1.5)), 1e-6);  // tokens 0 (2.0) and 2 (0.5) remain
    CHECK_NEAR(probs[2], exp(-1.5) / (1.0 + exp(-1.5)), 1e-6);
    ilm_sampler_free(&k);
}

TEST(sampler_greedy_choice_under_penalty) {
    const float row[3] = {3.0f, 2.9f, 1.0f};
    ilm_sampler g = make_adjusting(1.1f, 64, 0, 0, NULL, 0, 0.0f);
    CHECK_EQ(ilm_sample(&g, row, 3), 0);
    ilm_sampler_accept(&g, 0);
    CHECK_EQ(ilm_sample(&g, row, 3), 1);  // 3 / 1.1 < 2.9
    ilm_sampler_reset(&g);
    CHECK_EQ(ilm_sample(&g, row, 3), 0);
    ilm_sampler_free(&g);
}

TEST(sampler_bias_validation) {
    ilm_sampler s;
    ilm_err err = {{0}};
    ilm_logit_bias neg = {-1, 1.0f}, nan_b = {2, NAN}, big = {6, 1.0f};
    ilm_sampler_params p = ilm_sampler_default_params();
    p.logit_bias = &neg, p.n_logit_bias = 1;
    CHECK(ilm_sampler_init(&s, &p, &err) != 0 && strstr(err.msg, "-1"));
    p.logit_bias = &nan_b;
    CHECK(ilm_sampler_init(&s, &p, &err) != 0 && strstr(err.msg, "NaN"));
    p.logit_bias = &big;
    CHECK_EQ(ilm_sampler_init(&s, &p, &err), 0);
    CHECK(ilm_sampler_reserve(&s, 6, &err) != 0 && strstr(err.msg, "token 6"));
    CHECK_EQ(ilm_sampler_reserve(&s, 7, &err), 0);
    // Unreserved and out of the row: skipped, never written.
    ilm_sampler_free(&s);
    p.temperature = 0;
    CHECK_EQ(ilm_sampler_init(&s, &p, &err), 0);
    CHECK_EQ(ilm_sample(&s, ROW6, 6), 3);
    ilm_sampler_free(&s);
    p = ilm_sampler_default_params();
    p.repeat_penalty = -1;
    CHECK(ilm_sampler_init(&s, &p, &err) != 0 && strstr(err.msg, "repeat penalty"));
    p.repeat_penalty = INFINITY;
    CHECK(ilm_sampler_init(&s, &p, &err) != 0 && strstr(err.msg, "repeat penalty"));
    p = ilm_sampler_default_params(), p.presence_penalty = NAN;
    CHECK(ilm_sampler_init(&s, &p, &err) != 0 && strstr(err.msg, "presence"));
    p = ilm_sampler_default_params(), p.frequency_penalty = -INFINITY;
    CHECK(ilm_sampler_init(&s, &p, &err) != 0 && strstr(err.msg, "frequency"));
    p = ilm_sampler_default_params(), p.repeat_last_n = -2;
    CHECK(ilm_sampler_init(&s, &p, &err) != 0 && strstr(err.msg, "repeat-last-n"));
}

TEST(sampler_reset_clears_history_not_seed) {
    enum { V = 16, DRAWS = 100 };
    float logits[V];
    uint64_t rs = 5;
    for (int i = 0; i < V; i++) logits[i] = t_rand_f32(&rs);
    ilm_sampler a = make_adjusting(1.3f, 4, 0.5f, 0.5f, NULL, 0, 1.0f);
    ilm_sampler b = make_adjusting(1.3f, 4, 0.5f, 0.5f, NULL, 0, 1.0f);
    for (int i = 0; i < 10; i++) ilm_sampler_accept(&a, i);
    ilm_sampler_reset(&a);
    CHECK_EQ(a.hist_len, 0);
    for (int i = 0; i < V; i++) CHECK_EQ(a.count[i], 0);
    for (int i = 0; i < DRAWS; i++) CHECK_EQ(ilm_sample(&a, logits, V), ilm_sample(&b, logits, V));
    // And it keeps working after the reset.
    ilm_sampler_accept(&a, 7);
    ilm_sampler_accept(&b, 7);
    for (int i = 0; i < DRAWS; i++) CHECK_EQ(ilm_sample(&a, logits, V), ilm_sample(&b, logits, V));
    ilm_sampler_free(&a);
    ilm_sampler_free(&b);
}

// With every adjustment off (or a no-op), results are bit-identical to the plain sampler's.
TEST(sampler_no_adjustment_bit_identical) {
    enum { V = 300, DRAWS = 200 };
    float logits[V], pa[V], pb[V];
    uint64_t rs = 17;
    for (int i = 0; i < V; i++) logits[i] = 6 * t_rand_f32(&rs);
    ilm_sampler_params base = ilm_sampler_default_params();
    base.seed = 3;
    ilm_sampler_params off = {.temperature = base.temperature, .top_k = base.top_k, .top_p = base.top_p,
                              .min_p = base.min_p, .seed = 3};  // zero-initialised tail
    ilm_logit_bias zero = {5, 0.0f};
    ilm_sampler_params nop_bias = base;  // takes the copying path, changes nothing
    nop_bias.logit_bias = &zero, nop_bias.n_logit_bias = 1;
    ilm_sampler_params empty_hist = base;  // penalties on, nothing accepted
    empty_hist.repeat_penalty = 1.5f;
    const ilm_sampler_params *variants[3] = {&off, &nop_bias, &empty_hist};
    for (int top_k = 0; top_k <= 40; top_k += 40)
        for (int v = 0; v < 3; v++) {
            ilm_sampler_params pa_p = base, pb_p = *variants[v];
            pa_p.top_k = pb_p.top_k = top_k;
            ilm_sampler a, b;
            ilm_err err;
            CHECK_EQ(ilm_sampler_init(&a, &pa_p, &err), 0);
            CHECK_EQ(ilm_sampler_init(&b, &pb_p, &err), 0);
            CHECK(!ilm_sampler_adjusts(&a));
            CHECK_EQ(ilm_sampler_adjusts(&b), v > 0);
            for (int i = 0; i < 10; i++) {
                ilm_sampler_accept(&a, i);  // no penalty active: ignored
                if (v != 2) ilm_sampler_accept(&b, i);
            }
            CHECK_EQ(ilm_sampler_probs(&a, logits, V, pa), 0);
            CHECK_EQ(ilm_sampler_probs(&b, logits, V, pb), 0);
            CHECK(memcmp(pa, pb, sizeof pa) == 0);
            for (int i = 0; i < DRAWS; i++) CHECK_EQ(ilm_sample(&a, logits, V), ilm_sample(&b, logits, V));
            ilm_sampler_free(&a);
            ilm_sampler_free(&b);
        }
}

// ilm_sample draws from exactly the distribution ilm_sampler_probs reports, adjustments included.
TEST(sampler_probs_and_sample_agree_when_adjusted) {
    enum { V = 8 };
    float logits[V];
    logits_from_probs(TARGET_P, logits, V);
    logits[3] = -0.5f;  // give the p = 0 token some mass
    ilm_logit_bias bias[2] = {{0, -1.0f}, {5, 0.7f}};
    ilm_sampler s = make_adjusting(1.2f, 3, 0.3f, 0.2f, bias, 2, 0.9f);
    ilm_sampler_accept(&s, 6);
    ilm_sampler_accept(&s, 2);
    ilm_sampler_accept(&s, 2);
    float p[V];
    CHECK_EQ(ilm_sampler_probs(&s, logits, V, p), 0);
    double pd[V];
    long obs[V] = {0};
    for (int i = 0; i < V; i++) pd[i] = p[i];
    for (int i = 0; i < N_DRAWS; i++) {
        int32_t t = ilm_sample(&s, logits, V);
        CHECK(t >= 0 && t < V);
        if (t >= 0 && t < V) obs[t]++;
    }
    double chi2 = chi_square(obs, pd, V, N_DRAWS);
    CHECK_MSG(chi2 < CHI2_999_DF7, "chi2 %.2f", chi2);
    // Greedy: the one-hot of ilm_sampler_probs sits where ilm_sample chooses.
    ilm_sampler g = make_adjusting(1.2f, 3, 0.3f, 0.2f, bias, 2, 0.0f);
    ilm_sampler_accept(&g, 0);
    int32_t t = ilm_sample(&g, logits, V);
    CHECK_EQ(ilm_sampler_probs(&g, logits, V, p), 0);
    CHECK_EQ(p[t], 1);
    ilm_sampler_free(&g);
    ilm_sampler_free(&s);
}

// ---- command line ------------------------------------------------------------------------

static int parse1(ilm_sampler_params *p, const char *opt, const char *val, ilm_err *err) {
    char *argv[3] = {(char *)"run", (char *)opt, (char *)val};
    int argc = val ? 3 : 2, i = 1;
    int r = ilm_sampler_parse_opt(p, argc, argv, &i, err);
    if (r == 1) CHECK_EQ(i, 2);  // on the value; the caller's loop steps past it
    if (r == 0) CHECK_EQ(i, 1);
    return r;
}

TEST(sampler_parse_opt_accepts) {
    ilm_sampler_params p = ilm_sampler_default_params();
    ilm_err err = {{0}};
    CHECK_EQ(parse1(&p, "--temp", "0.5", &err), 1);
    CHECK_EQ(parse1(&p, "--top-k", "7", &err), 1);
    CHECK_EQ(parse1(&p, "--top-p", "0.9", &err), 1);
    CHECK_EQ(parse1(&p, "--min-p", "0", &err), 1);
    CHECK_EQ(parse1(&p, "--seed", "9223372036854775807", &err), 1);
    CHECK_EQ(parse1(&p, "--repeat-penalty", "1.1", &err), 1);
    CHECK_EQ(parse1(&p, "--repeat-last-n", "-1", &err), 1);
    CHECK_EQ(parse1(&p, "--presence-penalty", "0.5", &err), 1);
    CHECK_EQ(parse1(&p, "--frequency-penalty", "-0.25", &err), 1);
    CHECK_EQ(parse1(&p, "--logit-bias", "15043+1", &err), 1);
    CHECK_EQ(parse1(&p, "--logit-bias", "15043-inf", &err), 1);
    CHECK_EQ(parse1(&p, "--logit-bias", "2-0.5", &err), 1);
    CHECK_EQ(parse1(&p, "-p", "hello", &err), 0);
    CHECK_EQ(parse1(&p, "--temperature", "1", &err), 0);
    CHECK_NEAR(p.temperature, 0.5, 0);
    CHECK_EQ(p.top_k, 7);
    CHECK_NEAR(p.top_p, 0.9f, 0);
    CHECK_NEAR(p.min_p, 0, 0);
    CHECK(p.seed == 0x7fffffffffffffffull);
    CHECK_NEAR(p.repeat_penalty, 1.1f, 0);
    CHECK_EQ(p.repeat_last_n, -1);
    CHECK_NEAR(p.presence_penalty, 0.5, 0);
    CHECK_NEAR(p.frequency_penalty, -0.25, 0);
    CHECK_EQ(p.n_cli_bias, 3);
    CHECK(p.cli_bias[0].token == 15043 && p.cli_bias[0].bias == 1.0f);
    CHECK(p.cli_bias[1].token == 15043 && isinf(p.cli_bias[1].bias) && p.cli_bias[1].bias < 0);
    CHECK(p.cli_bias[2].token == 2 && p.cli_bias[2].bias == -0.5f);

    // The parsed biases reach the sampler (they live in the params, copied by value here).
    ilm_sampler_params q = ilm_sampler_default_params();
    q.temperature = 0;
    CHECK_EQ(parse1(&q, "--logit-bias", "3-inf", &err), 1);
    ilm_sampler_params copy = q;
    ilm_sampler s;
    CHECK_EQ(ilm_sampler_init(&s, &copy, &err), 0);
    CHECK(ilm_sampler_adjusts(&s));
    CHECK_EQ(ilm_sample(&s, ROW6, 6), 0);
    ilm_sampler_free(&s);
}

TEST(sampler_parse_opt_rejects) {
    static const char *const bad[][2] = {
        {"--temp", NULL},          {"--temp", "abc"},           {"--temp", "101"},
        {"--temp", "nan"},         {"--top-k", "-1"},           {"--top-k", "1.5"},
        {"--top-p", "1.5"},        {"--min-p", "-0.1"},         {"--seed", "-1"},
        {"--seed", "99999999999999999999"}, {"--repeat-penalty", "0"}, {"--repeat-penalty", "-1"},
        {"--repeat-penalty", "inf"}, {"--repeat-last-n", "-2"}, {"--presence-penalty", "nan"},
        {"--frequency-penalty", "1e9"}, {"--logit-bias", "15043"}, {"--logit-bias", "abc+1"},
        {"--logit-bias", "-5+1"},  {"--logit-bias", "5+nan"},    {"--logit-bias", "5+"},
        {"--logit-bias", "5*2"},   {"--logit-bias", "5+1x"},     {"--logit-bias", "99999999999+1"},
        {"--logit-bias", NULL},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ilm_sampler_params p = ilm_sampler_default_params();
        ilm_err err = {{0}};
        CHECK_MSG(parse1(&p, bad[k][0], bad[k][1], &err) == -1, "%s %s accepted", bad[k][0], bad[k][1]);
        CHECK_MSG(strstr(err.msg, bad[k][0]) && (!bad[k][1] || strstr(err.msg, bad[k][1])),
                  "message for %s %s: %s", bad[k][0], bad[k][1], err.msg);
    }
    ilm_sampler_params p = ilm_sampler_default_params();
    ilm_err err = {{0}};
    for (int k = 0; k < ILM_SAMPLER_CLI_BIAS_MAX; k++) CHECK_EQ(parse1(&p, "--logit-bias", "1+1", &err), 1);
    CHECK_EQ(parse1(&p, "--logit-bias", "1+1", &err), -1);
    CHECK(strstr(err.msg, "at most"));
    CHECK_EQ(p.n_cli_bias, ILM_SAMPLER_CLI_BIAS_MAX);
}
