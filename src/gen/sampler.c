// sampler.c — greedy and temperature / top-k / top-p / min-p sampling, and the speculative
// acceptance rule (docs/gemma4.md §4.6). See sampler.h for the contract.
//
// Built for a 262,144-token vocabulary: top-k selects with a k-sized heap (base/topk.c); without
// top-k, top-p buckets the tokens by their distance below the best logit and sorts only the few
// in the bucket where the cumulative mass crosses top_p.
//
// Logit bias and penalties (llama.cpp's order: bias, then penalties) work on a copy of the row,
// made only when one of them applies; the penalties walk the history window, never the
// vocabulary: per-token counts are kept up to date by ilm_sampler_accept.
// Length: one sampler, one file — the chain, its adjustments and its command-line options are
// one contract (sampler.h); splitting would only spread the shared scratch and parameters.
#include "gen/sampler.h"

#include "gen/constrain.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
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
    return (ilm_sampler_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .seed = 0,
                                .repeat_penalty = 1.0f, .repeat_last_n = 64};
}

// A penalty changes something and the window is not empty by definition (repeat_last_n != 0).
static bool penalties_on(const ilm_sampler_params *p) {
    bool repeat = p->repeat_penalty != 1.0f && p->repeat_penalty != 0.0f;
    return p->repeat_last_n != 0 && (repeat || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f);
}

bool ilm_sampler_adjusts(const ilm_sampler *s) {
    return s->n_bias > 0 || penalties_on(&s->params) || s->constraint;
}

static int check_bias(const ilm_logit_bias *b, int n, const char *what, ilm_err *err) {
    for (int i = 0; i < n; i++) {
        if (b[i].token < 0) return ilm_fail(err, "sampler: %s token id must be >= 0 (got %d)", what, (int)b[i].token);
        if (isnan(b[i].bias)) return ilm_fail(err, "sampler: %s for token %d is NaN", what, (int)b[i].token);
    }
    return 0;
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
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty < 0)
        return ilm_fail(err, "sampler: repeat penalty must be finite and > 0 (1, or 0, = off; got %g)", (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty))
        return ilm_fail(err, "sampler: presence penalty must be finite (got %g)", (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return ilm_fail(err, "sampler: frequency penalty must be finite (got %g)", (double)p->frequency_penalty);
    if (p->repeat_last_n < -1)
        return ilm_fail(err, "sampler: repeat-last-n must be >= -1 (got %d)", p->repeat_last_n);
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return ilm_fail(err, "sampler: bad logit bias list (%d entries)", p->n_logit_bias);
    if (p->n_cli_bias < 0 || p->n_cli_bias > ILM_SAMPLER_CLI_BIAS_MAX)
        return ilm_fail(err, "sampler: bad --logit-bias count %d", p->n_cli_bias);
    if (check_bias(p->logit_bias, p->n_logit_bias, "logit bias", err) ||
        check_bias(p->cli_bias, p->n_cli_bias, "--logit-bias", err))
        return -1;
    s->params = *p;
    int n_bias = p->n_logit_bias + p->n_cli_bias;
    if (n_bias > 0) {
        s->bias = ilm_malloc((size_t)n_bias * sizeof *s->bias, err);
        if (!s->bias) return -1;
        if (p->n_logit_bias) memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
        if (p->n_cli_bias) memcpy(s->bias + p->n_logit_bias, p->cli_bias, (size_t)p->n_cli_bias * sizeof *s->bias);
        s->n_bias = n_bias;
    }
    s->params.logit_bias = s->bias;
    s->params.n_logit_bias = s->n_bias;
    s->params.n_cli_bias = 0;
    if (penalties_on(p) && p->repeat_last_n > 0) {  // the ring; -1 grows on demand
        s->hist = ilm_malloc((size_t)p->repeat_last_n * sizeof *s->hist, err);
        if (!s->hist) {
            ilm_sampler_free(s);
            return -1;
        }
        s->hist_cap = p->repeat_last_n;
    }
    ilm_sampler_reseed(s, p->seed);
    return 0;
}

void ilm_sampler_free(ilm_sampler *s) {
    free(s->cand);
    free(s->topk_idx);
    free(s->bias);
    free(s->adj);
    free(s->hist);
    free(s->count);
    s->cand = NULL;
    s->topk_idx = NULL;
    s->cand_cap = 0;
    s->bias = NULL;
    s->n_bias = 0;
    s->params.logit_bias = NULL;
    s->params.n_logit_bias = 0;
    s->adj = NULL;
    s->adj_cap = 0;
    s->hist = NULL;
    s->hist_cap = s->hist_len = s->hist_head = 0;
    s->count = NULL;
    s->count_cap = 0;
    s->n_vocab = 0;
}

// ---- history --------------------------------------------------------------------------------

// Grows the per-token counts to cover ids < n (new entries zero).
static int reserve_counts(ilm_sampler *s, int n) {
    if (n <= s->count_cap) return 0;
    int32_t *c = realloc(s->count, (size_t)n * sizeof *c);
    if (!c) return -1;
    memset(c + s->count_cap, 0, (size_t)(n - s->count_cap) * sizeof *c);
    s->count = c;
    s->count_cap = n;
    return 0;
}

void ilm_sampler_accept(ilm_sampler *s, int32_t token) {
    if (token < 0 || (s->n_vocab > 0 && token >= s->n_vocab) || !penalties_on(&s->params) || s->oom) return;
    if (token >= s->count_cap) {
        int64_t want = (int64_t)s->count_cap * 2;
        if (want <= token) want = (int64_t)token + 1;
        if (want > INT32_MAX) want = INT32_MAX;
        if (reserve_counts(s, (int)want) != 0) {
            s->oom = true;
            return;
        }
    }
    if (s->params.repeat_last_n < 0) {  // whole history: an array that grows
        if (s->hist_len == s->hist_cap) {
            int cap = s->hist_cap ? (s->hist_cap < INT32_MAX / 2 ? s->hist_cap * 2 : INT32_MAX) : 256;
            int32_t *h = cap > s->hist_cap ? realloc(s->hist, (size_t)cap * sizeof *h) : NULL;
            if (!h) {
                s->oom = true;
                return;
            }
            s->hist = h;
            s->hist_cap = cap;
        }
        s->hist[s->hist_len++] = token;
    } else if (s->hist_len < s->hist_cap) {
        s->hist[s->hist_len++] = token;
    } else {  // full ring: the oldest token leaves the window
        s->count[s->hist[s->hist_head]]--;
        s->hist[s->hist_head] = token;
        s->hist_head = s->hist_head + 1 == s->hist_cap ? 0 : s->hist_head + 1;
    }
    s->count[token]++;
}

void ilm_sampler_accept_generated(ilm_sampler *s, int32_t token) {
    ilm_sampler_accept(s, token);
    if (s->constraint) ilm_constraint_accept(s->constraint, token);
}

void ilm_sampler_reset(ilm_sampler *s) {
    for (int i = 0; i < s->hist_len; i++) s->count[s->hist[i]] = 0;
    s->hist_len = s->hist_head = 0;
    s->oom = false;
}

// ---- adjustments ------------------------------------------------------------------------------

// The row the chain should see: the caller's, or s->adj with bias and penalties applied.
// NULL when the scratch cannot be allocated (or the history could not).
static const float *adjusted_logits(ilm_sampler *s, const float *logits, int n) {
    if (s->oom) return NULL;
    const ilm_sampler_params *p = &s->params;
    const bool pen = penalties_on(p) && s->hist_len > 0;
    if (s->n_bias == 0 && !pen && !s->constraint) return logits;
    if (n > s->adj_cap) {
        float *a = realloc(s->adj, (size_t)n * sizeof *a);
        if (!a) return NULL;
        s->adj = a;
        s->adj_cap = n;
    }
    float *l = s->adj;
    memcpy(l, logits, (size_t)n * sizeof *l);
    for (int i = 0; i < s->n_bias; i++)  // llama_sampler_logit_bias: added in list order
        if (s->bias[i].token < n) l[s->bias[i].token] += s->bias[i].bias;
    if (pen) {
        // llama_sampler_penalties_apply, once per distinct token of the window: the first visit
        // applies the token's count and flips its sign to mark it done; a second pass restores.
        const float rp = p->repeat_penalty == 0.0f ? 1.0f : p->repeat_penalty;
        const float freq = p->frequency_penalty, pres = p->presence_penalty;
        for (int i = 0; i < s->hist_len; i++) {
            int32_t t = s->hist[i], c = s->count[t];
            if (c <= 0) continue;
            s->count[t] = -c;
            if (t >= n) continue;
            float x = l[t];
            if (rp != 1.0f) x = x <= 0 ? x * rp : x / rp;
            x -= (float)c * freq + pres;
            l[t] = x;
        }
        for (int i = 0; i < s->hist_len; i++) {
            int32_t t = s->hist[i];
            if (s->count[t] < 0) s->count[t] = -s->count[t];
        }
    }
    if (s->constraint) ilm_constraint_mask(s->constraint, l, n);
    return l;
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
    for (int i = 0; i < s->n_bias; i++)
        if (s->bias[i].token >= n_vocab)
            return ilm_fail(err, "sampler: logit bias for token %d, but the vocabulary has %d tokens",
                            (int)s->bias[i].token, n_vocab);
    if (reserve_scratch(s, n_vocab) != 0)
        return ilm_fail(err, "sampler: out of memory for %d candidates", n_vocab);
    if (ilm_sampler_adjusts(s) && n_vocab > s->adj_cap) {
        float *a = realloc(s->adj, (size_t)n_vocab * sizeof *a);
        if (!a) return ilm_fail(err, "sampler: out of memory for %d adjusted logits", n_vocab);
        s->adj = a;
        s->adj_cap = n_vocab;
    }
    if (penalties_on(&s->params) && reserve_counts(s, n_vocab) != 0)
        return ilm_fail(err, "sampler: out of memory for %d token counts", n_vocab);
    if (n_vocab > s->n_vocab) s->n_vocab = n_vocab;
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
    logits = adjusted_logits(s, logits, n_vocab);
    if (!logits) return -1;
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
    logits = adjusted_logits(s, logits, n_vocab);
    if (!logits) return -1;
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

// ---- command line -------------------------------------------------------------------------

// The value after argv[*i] as a number in [lo, hi] (lo excluded when lo_open); advances *i.
static int float_opt(int argc, char **argv, int *i, double lo, double hi, bool lo_open, float *out, ilm_err *err) {
    if (*i + 1 >= argc) return ilm_fail(err, "%s needs a value", argv[*i]);
    const char *v = argv[*i + 1];
    double x;
    if (ilm_parse_double(argv[*i], v, lo, hi, false, &x, err) || (lo_open && x == lo))
        return ilm_fail(err, "%s: bad value '%s' (expected %s%g..%g)", argv[*i], v, lo_open ? "> " : "", lo, hi);
    *out = (float)x;
    (*i)++;
    return 0;
}

static int int_opt(int argc, char **argv, int *i, long lo, long hi, long *out, ilm_err *err) {
    if (*i + 1 >= argc) return ilm_fail(err, "%s needs a value", argv[*i]);
    if (ilm_parse_long(argv[*i], argv[*i + 1], lo, hi, out, err)) return -1;
    (*i)++;
    return 0;
}

// llama.cpp's --logit-bias syntax: TOKEN, then '+' or '-', then the magnitude ("inf" allowed).
static int logit_bias_opt(ilm_sampler_params *p, int argc, char **argv, int *i, ilm_err *err) {
    if (*i + 1 >= argc) return ilm_fail(err, "--logit-bias needs TOKEN+BIAS or TOKEN-BIAS");
    const char *v = argv[*i + 1];
    const size_t nd = strspn(v, "0123456789");
    char digits[16];
    snprintf(digits, sizeof digits, "%.*s", (int)(nd < 15 ? nd : 15), v);
    long tok;
    ilm_err e2;
    if (nd == 0 || nd >= sizeof digits || (v[nd] != '+' && v[nd] != '-') ||
        ilm_parse_long("--logit-bias", digits, 0, INT32_MAX, &tok, &e2) != 0)
        return ilm_fail(err, "--logit-bias: bad value '%s' (expected TOKEN+BIAS or TOKEN-BIAS, e.g. 15043+1, 15043-inf)", v);
    const char sign = v[nd];
    double b;
    if (ilm_parse_double("--logit-bias", v + nd + 1, -INFINITY, INFINITY, true, &b, &e2) || v[nd + 1] == '+' ||
        v[nd + 1] == '-')
        return ilm_fail(err, "--logit-bias: bad bias in '%s' (expected TOKEN+BIAS or TOKEN-BIAS, e.g. 15043+1, 15043-inf)", v);
    if (p->n_cli_bias >= ILM_SAMPLER_CLI_BIAS_MAX)
        return ilm_fail(err, "--logit-bias: at most %d of them (at '%s')", ILM_SAMPLER_CLI_BIAS_MAX, v);
    p->cli_bias[p->n_cli_bias++] = (ilm_logit_bias){(int32_t)tok, (float)(sign == '-' ? -b : b)};
    (*i)++;
    return 0;
}

int ilm_sampler_parse_opt(ilm_sampler_params *p, int argc, char **argv, int *i, ilm_err *err) {
    const char *a = argv[*i];
    long x;
    // The ranges of --temp ... --seed are those `run` always had.
    if (!strcmp(a, "--temp")) return float_opt(argc, argv, i, 0, 100, false, &p->temperature, err) ? -1 : 1;
    if (!strcmp(a, "--top-p")) return float_opt(argc, argv, i, 0, 1, false, &p->top_p, err) ? -1 : 1;
    if (!strcmp(a, "--min-p")) return float_opt(argc, argv, i, 0, 1, false, &p->min_p, err) ? -1 : 1;
    if (!strcmp(a, "--top-k")) {
        if (int_opt(argc, argv, i, 0, 1 << 24, &x, err)) return -1;
        p->top_k = (int)x;
        return 1;
    }
    if (!strcmp(a, "--seed")) {
        if (*i + 1 >= argc) return ilm_fail(err, "--seed needs a value");
        if (ilm_parse_u64(a, argv[*i + 1], &p->seed, err)) return -1;
        p->seed_set = true;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--repeat-penalty")) return float_opt(argc, argv, i, 0, 100, true, &p->repeat_penalty, err) ? -1 : 1;
    if (!strcmp(a, "--repeat-last-n")) {
        if (int_opt(argc, argv, i, -1, 1 << 24, &x, err)) return -1;
        p->repeat_last_n = (int)x;
        return 1;
    }
    if (!strcmp(a, "--presence-penalty"))
        return float_opt(argc, argv, i, -100, 100, false, &p->presence_penalty, err) ? -1 : 1;
    if (!strcmp(a, "--frequency-penalty"))
        return float_opt(argc, argv, i, -100, 100, false, &p->frequency_penalty, err) ? -1 : 1;
    if (!strcmp(a, "--logit-bias")) return logit_bias_opt(p, argc, argv, i, err) ? -1 : 1;
    return 0;
}
