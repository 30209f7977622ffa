// topk.h — the one top-k and the one argmax over a row of floats (docs/gemma4.md §2.5, §4.4).
//
// Every selection in ironlm ranks the same way: larger value first, the lower index on ties,
// NaN below everything (so it never wins over a number, not even -inf). The MoE router
// (model/moe.c), the drafter's centroid head (model/drafter.c) and the sampler's top-k
// (gen/sampler.c) all call ilm_topk; greedy decoding calls ilm_argmax. A total order, so the
// result never depends on the order the values were met in: bit-exact across thread counts.
#pragma once
#include <stdint.h>

// The indices of the k best values of x[0..n), best first (k is clamped to [0, n]). Returns the
// number written to idx. O(n log k): one pass with a k-sized heap, then a sort of the k.
int ilm_topk(const float *x, int n, int k, int *idx);

// Greedy choice: the lowest index among the maxima; NaN never wins; an all -inf/NaN row gives
// the first -inf (0 when all are NaN).
int32_t ilm_argmax(const float *x, int n);
