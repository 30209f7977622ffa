// test_topk.c — src/base/topk.c: the ranking every selection shares (larger first, lower index
// on ties, NaN never before a number), against a brute-force selection (the one the MoE router
// and the centroid head used before ilm_topk), and ilm_argmax.
#include <math.h>

#include "harness.h"
#include "base/topk.h"

// k rounds of "the best not yet taken"; ties to the lowest index; NaN only when nothing else is left.
static void brute_topk(const float *x, int n, int k, int *idx) {
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            bool taken = false;
            for (int j = 0; j < r; j++) taken |= idx[j] == i;
            if (taken) continue;
            if (best < 0 || x[i] > x[best] || (isnan(x[best]) && !isnan(x[i]))) best = i;
        }
        idx[r] = best;
    }
}

TEST(topk_ties_go_to_the_lowest_index_in_sorted_order) {
    const float x[8] = {1, 3, 2, 3, 0, 3, 2, -1};
    int idx[8];
    CHECK_EQ(ilm_topk(x, 8, 5, idx), 5);
    const int want[5] = {1, 3, 5, 2, 6};
    for (int i = 0; i < 5; i++) CHECK_EQ(idx[i], want[i]);
}

TEST(topk_nan_never_wins) {
    const float x[6] = {NAN, -INFINITY, NAN, 0.5f, NAN, -2.0f};
    int idx[6];
    CHECK_EQ(ilm_topk(x, 6, 1, idx), 1);
    CHECK_EQ(idx[0], 3);
    CHECK_EQ(ilm_topk(x, 6, 6, idx), 6);  // numbers first (-inf too), then the NaNs by index
    const int want[6] = {3, 5, 1, 0, 2, 4};
    for (int i = 0; i < 6; i++) CHECK_EQ(idx[i], want[i]);
    const float all_nan[3] = {NAN, NAN, NAN};
    CHECK_EQ(ilm_topk(all_nan, 3, 2, idx), 2);
    CHECK_EQ(idx[0], 0);
    CHECK_EQ(idx[1], 1);
}

TEST(topk_k_equals_n_sorts_everything_and_k_is_clamped) {
    const float x[5] = {0.25f, -1, 4, 0.25f, 9};
    int idx[5];
    CHECK_EQ(ilm_topk(x, 5, 5, idx), 5);
    const int want[5] = {4, 2, 0, 3, 1};
    for (int i = 0; i < 5; i++) CHECK_EQ(idx[i], want[i]);
    CHECK_EQ(ilm_topk(x, 5, 9, idx), 5);
    for (int i = 0; i < 5; i++) CHECK_EQ(idx[i], want[i]);
    CHECK_EQ(ilm_topk(x, 5, 0, idx), 0);
}

TEST(topk_k1_is_argmax) {
    uint64_t rs = 11;
    float x[100];
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < 100; i++) x[i] = floorf(t_rand_f32(&rs) * 4);  // many ties
        if (trial % 5 == 0) x[trial] = NAN;
        int idx[1];
        CHECK_EQ(ilm_topk(x, 100, 1, idx), 1);
        CHECK_EQ(idx[0], ilm_argmax(x, 100));
    }
}

TEST(topk_matches_brute_force_selection) {
    enum { N = 300 };
    uint64_t rs = 5;
    float x[N];
    int got[N], want[N];
    const int ks[] = {1, 2, 8, 32, 299, 300};
    for (int trial = 0; trial < 40; trial++) {
        const int n = trial % 2 ? N : 37;
        for (int i = 0; i < n; i++) x[i] = trial % 3 ? floorf(t_rand_f32(&rs) * 8) : t_rand_f32(&rs);
        if (trial % 4 == 0) x[(trial * 7) % n] = NAN, x[(trial * 13) % n] = -INFINITY;
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            int k = ks[j] < n ? ks[j] : n;
            brute_topk(x, n, k, want);
            CHECK_EQ(ilm_topk(x, n, k, got), k);
            for (int i = 0; i < k; i++) CHECK_MSG(got[i] == want[i], "n %d k %d rank %d: %d vs %d", n, k, i, got[i], want[i]);
        }
    }
}

TEST(topk_argmax_lowest_id_and_nan) {
    const float x[8] = {0.5f, 2.0f, -1.0f, 3.0f, 1.0f, 3.0f, NAN, 3.0f};
    CHECK_EQ(ilm_argmax(x, 8), 3);
    const float low[3] = {NAN, -INFINITY, -INFINITY};
    CHECK_EQ(ilm_argmax(low, 3), 1);
    const float nan[2] = {NAN, NAN};
    CHECK_EQ(ilm_argmax(nan, 2), 0);
}
