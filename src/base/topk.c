// topk.c — ilm_topk and ilm_argmax (see topk.h for the ranking every caller relies on).
#include "base/topk.h"

#include <math.h>
#include <stdbool.h>

// Whether (va, a) ranks before (vb, b): larger value, then lower index; NaN after every number.
static inline bool ranks_before(float va, int a, float vb, int b) {
    if (va > vb) return true;
    if (va < vb) return false;
    if (va == vb) return a < b;
    if (isnan(va) != isnan(vb)) return isnan(vb);  // exactly one NaN: the number ranks first
    return a < b;                                  // both NaN
}

// Max-heap on "ranks last": the worst kept index sits at the root.
static void sift_down(const float *x, int *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && ranks_before(x[h[worst]], h[worst], x[h[l]], h[l])) worst = l;
        if (r < n && ranks_before(x[h[worst]], h[worst], x[h[r]], h[r])) worst = r;
        if (worst == i) return;
        int t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

int ilm_topk(const float *x, int n, int k, int *idx) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    for (int i = 0; i < k; i++) idx[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(x, idx, k, i);
    // Indices arrive in increasing order, so an equal value never ranks before the root: a
    // strict > is the whole test, unless the root is a NaN (then any number replaces it).
    for (int i = k; i < n; i++) {
        float root = x[idx[0]];
        if (x[i] > root || (isnan(root) && !isnan(x[i]))) {
            idx[0] = i;
            sift_down(x, idx, k, 0);
        }
    }
    // Heap sort: move the worst to the end, k times; leaves the best first.
    for (int end = k - 1; end > 0; end--) {
        int t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(x, idx, end, 0);
    }
    return k;
}

// Two passes (the max, then its first position) because the max pass vectorises: 8 lanes of
// `a > m ? a : m`.
int32_t ilm_argmax(const float *x, int n) {
    float lane_max[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane_max[j] = x[i + j] > lane_max[j] ? x[i + j] : lane_max[j];
    float m = -INFINITY;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int j = 0; j < 8; j++) m = lane_max[j] > m ? lane_max[j] : m;
    for (i = 0; i < n; i++)
        if (x[i] == m) return i;
    return 0;
}
