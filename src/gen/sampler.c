// sampler.c — greedy and temperature / top-k / top-p / min-p sampling, and the speculative
// acceptance rule (docs/gemma4.md §4.6). See sampler.h for the contract.
//
// Built for a 262,144-token vocabulary: top-k selects with a k-sized heap (base/topk.c); without
// top-k, top-p buckets the tokens by their distance below the best logit and sorts only the few
// in the bucket where the cumulative mass crosses top_p.
#include "gen/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ilm_sampler_candidate {
    int32_t id;
    float logit;
    float weight;  // exp(-(max_logit - logit) / T): 1 for the best token, unnormalised
};
typedef struct ilm_sampler_candidate candidate;

// ---- random numbers: xoshiro256**, seeded through splitmix64 --------------------------------

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

// Uniform in [0, 1) with 53 random bits.
static double rng_uniform(ilm_sampler *s) { return (double)(rng_next(s->rng) >> 11) * 0x1.0p-53; }

void ilm_sampler_reseed(ilm_sampler *s, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);  // never all zero
    s->params.seed = seed;
}

// ---- set-up -------------------------------------------------------------------------------

ilm_sampler_params ilm_sampler_default_params(void) {
    return (ilm_sampler_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .seed = 0};
}

int ilm_sampler_init(ilm_sampler *s, const ilm_sampler_params *p, ilm_err *err) {
    memset(s, 0, sizeof *s);
    if (isnan(p->temperature) || isinf(p->temperature))
        return ilm_fail(err, "sampler: temperature must be finite (got %g)", (double)p->temperature);
    if (p->top_k < 0) return ilm_fail(err, "sampler: top-k must be >= 0 (got %d)", p->top_k);
    if (isnan(p->top_p) || p->top_p < 0)
        return ilm_fail(err, "sampler: top-p must be >= 0 (got %g)", (double)p->top_p);
    if (isnan(p->min_p) || p->min_p < 0 || p->min_p > 1)
        return ilm_fail(err, "sampler: min-p must be in [0, 1] (got %g)", (double)p->min_p);
    s->params = *p;
    ilm_sampler_reseed(s, p->seed);
    return 0;
}

void ilm_sampler_free(ilm_sampler *s) {
    free(s->cand);
    free(s->topk_idx);
    s->cand = NULL;
    s->topk_idx = NULL;
    s->cand_cap = 0;
}

static int reserve_scratch(ilm_sampler *s, int n_vocab) {
    if (n_vocab <= s->cand_cap) return 0;
    candidate *c = realloc(s->cand, (size_t)n_vocab * sizeof *c);
    if (!c) return -1;
    s->cand = c;
    int *idx = realloc(s->topk_idx, (size_t)n_vocab * sizeof *idx);
    if (!idx) return -1;
    s->topk_idx = idx;
    s->cand_cap = n_vocab;
    return 0;
}

int ilm_sampler_reserve(ilm_sampler *s, int n_vocab, ilm_err *err) {
    if (n_vocab <= 0) return ilm_fail(err, "sampler: vocabulary size must be positive (got %d)", n_vocab);
    if (reserve_scratch(s, n_vocab) != 0)
        return ilm_fail(err, "sampler: out of memory for %d candidates", n_vocab);
    return 0;
}

// A temperature so small that 1/T overflows behaves as greedy (and would make 0 * inf = NaN).
bool ilm_sampler_is_greedy(const ilm_sampler *s) {
    return !(s->params.temperature > 0) || isinf(1.0f / s->params.temperature);
}

// ---- candidate selection ------------------------------------------------------------------

// Sort order: higher logit first, lower id on ties (ilm_topk's order). A total order, so results
// never depend on the sort's stability.
static inline bool cand_before(const candidate *a, const candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    return cand_before(x, y) ? -1 : cand_before(y, x) ? 1 : 0;
}

// The k best logits, sorted best first (ilm_topk: lower id on ties, NaN last), as candidates
// with NaN logits counted as -inf.
static int select_top_k(ilm_sampler *s, const float *logits, int n, int k) {
    k = ilm_topk(logits, n, k, s->topk_idx);
    for (int i = 0; i < k; i++) {
        int id = s->topk_idx[i];
        s->cand[i] = (candidate){id, isnan(logits[id]) ? -INFINITY : logits[id], 0};
    }
    return k;
}

// Length of the prefix of sorted candidates that top-p and min-p keep (never less than 1).
// top-p: the smallest prefix whose mass reaches top_p of `total` (the mass before any filter);
// min-p: weight >= min_p, since weight = p / p_max. Both keep prefixes, so the result is the
// shorter one, and min-p's ratio test is unaffected by top-p's renormalisation.
static int keep_prefix(const candidate *c, int n_c, double total, const ilm_sampler_params *p) {
    bool top_p_on = p->top_p < 1.0f;
    double target = (double)p->top_p * total, cum = 0;
    for (int i = 0; i < n_c; i++) {
        if (i > 0 && c[i].weight < p->min_p) return i;
        cum += c[i].weight;
        if (top_p_on && cum >= target) return i + 1;
    }
    return n_c;
}

// expf(-x) is 0 in float beyond ~103.9; 104 keeps every token with a representable weight.
#define MAX_DISTANCE 104.0f

// ---- top-p without top-k: the prefix without sorting the vocabulary ------------------------
// Candidates are bucketed by their distance x = (best - logit) / T below the best token; x is
// monotone in the logit, so the buckets follow the sorted order exactly. Buckets ahead of the one
// where the cumulative mass reaches top_p are kept whole, those behind it dropped, and only the
// crossing bucket is looked at closer: re-bucketed on a 256x finer scale, until it is small
// enough to sort (a few levels reach float resolution; exact ties simply end up sorted).
enum { N_BUCKETS = 256, SORT_AT_MOST = 64, MAX_LEVELS = 3 };

static inline int bucket_of(const candidate *c, float best, float inv_t, float x_lo, float scale) {
    float b = ((best - c->logit) * inv_t - x_lo) * scale;
    return b <= 0 ? 0 : b >= N_BUCKETS - 1 ? N_BUCKETS - 1 : (int)b;
}

static inline void cand_swap(candidate *a, candidate *b) {
    candidate t = *a;
    *a = *b;
    *b = t;
}

// Reorders c[0..n_c) so that the top-p prefix comes first and returns its length. total is the
// mass of all tokens (min-p may already have removed some of them from c).
static int top_p_prefix(candidate *c, int n_c, float best, float inv_t, double total, float top_p) {
    const double target = (double)top_p * total;
    double kept_mass = 0;  // of c[0 .. lo): ahead of the crossing
    int lo = 0, hi = n_c;  // c[lo .. hi): the bucket that holds the crossing
    float x_lo = 0, width = MAX_DISTANCE;
    for (int level = 0; level < MAX_LEVELS && hi - lo > SORT_AT_MOST; level++) {
        const float scale = N_BUCKETS / width;
        double bucket_mass[N_BUCKETS] = {0};
        for (int i = lo; i < hi; i++) bucket_mass[bucket_of(&c[i], best, inv_t, x_lo, scale)] += c[i].weight;
        int cross = N_BUCKETS - 1;
        double cum = kept_mass;
        for (int k = 0; k < N_BUCKETS; k++) {
            cum += bucket_mass[k];
            if (cum >= target) {
                cross = k;
                break;
            }
        }
        // Three-way partition: ahead of the crossing bucket | in it | behind it (dropped).
        int ahead = lo, i = lo, behind = hi;
        while (i < behind) {
            int k = bucket_of(&c[i], best, inv_t, x_lo, scale);
            if (k < cross) cand_swap(&c[ahead++], &c[i++]);
            else if (k > cross) cand_swap(&c[i], &c[--behind]);
            else i++;
        }
        for (int j = lo; j < ahead; j++) kept_mass += c[j].weight;
        lo = ahead;
        hi = behind;
        x_lo += (float)cross / scale;
        width /= N_BUCKETS;
    }
    qsort(c + lo, (size_t)(hi - lo), sizeof *c, cand_cmp);
    int end = lo;
    for (int i = lo; i < hi; i++) {
        kept_mass += c[i].weight;
        end = i + 1;
        if (kept_mass >= target) break;
    }
    return end > 0 ? end : 1;
}

// Fills s->cand with the final candidates (weights unnormalised) and returns their number,
// or -1 when the scratch cannot be allocated. *mass = sum of the kept weights.
static int final_candidates(ilm_sampler *s, const float *logits, int n, double *mass) {
    const ilm_sampler_params *p = &s->params;
    if (reserve_scratch(s, n) != 0) return -1;
    candidate *c = s->cand;
    if (ilm_sampler_is_greedy(s)) {
        int32_t best = ilm_argmax(logits, n);
        c[0] = (candidate){best, logits[best], 1.0f};
        *mass = 1.0;
        return 1;
    }
    const float inv_t = 1.0f / p->temperature;
    const bool top_p_on = p->top_p < 1.0f;
    int n_c = 0;

    if (p->top_k > 0 && p->top_k < n) {
        // ---- top-k, then temperature softmax over the k, then top-p / min-p on the sorted k
        n_c = select_top_k(s, logits, n, p->top_k);
        const float best = c[0].logit;
        if (!isfinite(best)) {  // no finite logit to measure from: degenerate row
            c[0].weight = 1.0f;
            *mass = 1.0;
            return 1;
        }
        double total = 0;
        for (int i = 0; i < n_c; i++) {
            float x = (best - c[i].logit) * inv_t;
            c[i].weight = x <= MAX_DISTANCE ? expf(-x) : 0.0f;  // also maps -inf logits to 0
            total += c[i].weight;
        }
        n_c = keep_prefix(c, n_c, total, p);
        while (n_c > 1 && c[n_c - 1].weight == 0) n_c--;  // underflowed: probability 0
    } else {
        // ---- whole vocabulary
        const int32_t best_id = ilm_argmax(logits, n);
        const float best = logits[best_id];
        if (!isfinite(best)) {  // no finite logit to measure from: degenerate row
            c[0] = (candidate){best_id, best, 1.0f};
            *mass = 1.0;
            return 1;
        }
        // min-p (weight = p / p_max >= min_p) filters here; top-p needs the mass of every token.
        double total = 0;
        for (int i = 0; i < n; i++) {
            float x = (best - logits[i]) * inv_t;
            if (!(x <= MAX_DISTANCE)) continue;  // NaN, -inf, or a weight that underflows
            float w = expf(-x);
            total += w;
            if (w >= p->min_p && w > 0) c[n_c++] = (candidate){i, logits[i], w};
        }
        if (top_p_on) n_c = top_p_prefix(c, n_c, best, inv_t, total, p->top_p);
    }
    double m = 0;
    for (int i = 0; i < n_c; i++) m += c[i].weight;
    *mass = m;
    return n_c;
}

// ---- drawing ------------------------------------------------------------------------------

int32_t ilm_sample(ilm_sampler *s, const float *logits, int n_vocab) {
    if (ilm_sampler_is_greedy(s)) return ilm_argmax(logits, n_vocab);  // no scratch, no randomness
    double mass;
    int n_c = final_candidates(s, logits, n_vocab, &mass);
    if (n_c < 0) return -1;
    if (n_c == 1) return s->cand[0].id;
    double u = rng_uniform(s) * mass, cum = 0;
    for (int i = 0; i < n_c; i++) {
        cum += s->cand[i].weight;
        if (u < cum) return s->cand[i].id;
    }
    return s->cand[n_c - 1].id;  // u landed on the rounding slack at the top
}

int ilm_sampler_probs(ilm_sampler *s, const float *logits, int n_vocab, float *probs_out) {
    memset(probs_out, 0, (size_t)n_vocab * sizeof *probs_out);
    if (ilm_sampler_is_greedy(s)) {
        probs_out[ilm_argmax(logits, n_vocab)] = 1.0f;
        return 0;
    }
    double mass;
    int n_c = final_candidates(s, logits, n_vocab, &mass);
    if (n_c < 0) return -1;
    for (int i = 0; i < n_c; i++) probs_out[s->cand[i].id] = (float)(s->cand[i].weight / mass);
    return 0;
}

// Draws from the weights weight(i) = max(0, p[i] - q[i]) (q NULL: all zero; q_onehot >= 0:
// one-hot there). Returns -1 when they have no positive mass.
static int32_t draw_from_difference(ilm_sampler *s, const float *p, const float *q, int32_t q_onehot,
                                    int n) {
#define DIFFERENCE_WEIGHT(i) \
    fmaxf(0.0f, p[i] - (q ? q[i] : (i) == q_onehot ? 1.0f : 0.0f))
    double total = 0;
    for (int i = 0; i < n; i++) total += DIFFERENCE_WEIGHT(i);
    if (!(total > 0)) return -1;
    double u = rng_uniform(s) * total, cum = 0;
    int32_t last = -1;
    for (int i = 0; i < n; i++) {
        float w = DIFFERENCE_WEIGHT(i);
        if (w > 0) {
            cum += w;
            last = i;
            if (u < cum) return i;
        }
    }
    return last;
#undef DIFFERENCE_WEIGHT
}

int32_t ilm_sample_probs(ilm_sampler *s, const float *probs, int n_vocab) {
    int32_t t = draw_from_difference(s, probs, NULL, -1, n_vocab);
    return t < 0 ? 0 : t;
}

int ilm_spec_accept(ilm_sampler *s, const float *p_target, const float *q_draft, int32_t draft,
                    int n_vocab, int32_t *out_token) {
    bool in_vocab = draft >= 0 && draft < n_vocab;
    float pd = in_vocab ? p_target[draft] : 0.0f;
    float qd = q_draft ? (in_vocab ? q_draft[draft] : 0.0f) : 1.0f;
    // Accept with probability min(1, p(d)/q(d)); draw only when the outcome is uncertain.
    // (q(d) = 0 < p(d) means the ratio is infinite: accept.)
    bool accept = pd > 0 && (pd >= qd || rng_uniform(s) * qd < pd);
    if (accept) {
        *out_token = draft;
        return 1;
    }
    int32_t t = draw_from_difference(s, p_target, q_draft, q_draft ? -1 : draft, n_vocab);
    // No residual mass means p <= q everywhere, i.e. p == q up to rounding, where a rejection
    // is itself a rounding artefact: fall back to p.
    *out_token = t >= 0 ? t : ilm_sample_probs(s, p_target, n_vocab);
    return 0;
}
