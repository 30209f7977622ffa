// tokenizer_merges.c — the BPE merge table of the Gemma 4 tokenizer (docs/gemma4.md §3.6,
// §3.7): (left id, right id) -> (rank, merged id), built at load from tokenizer.ggml.merges
// by a three-stage software pipeline, and looked up by the encoder (tokenizer_encode.c).
#include <stdlib.h>
#include <string.h>

#include "gen/tokenizer.h"

// ---- merges ---------------------------------------------------------------------------------

static uint32_t pair_slot(const ilm_tokenizer *t, int32_t left, int32_t right);

const struct ilm_tok_pair *ilm_tok_pair_find(const ilm_tokenizer *t, int32_t left, int32_t right) {
    for (uint32_t i = pair_slot(t, left, right);; i = (i + 1) & t->pair_mask) {
        const struct ilm_tok_pair *p = &t->pairs[i];
        if (!p->left1) return NULL;
        if (p->left1 == (uint32_t)left + 1 && p->right == (uint32_t)right) return p;
    }
}

static uint32_t pair_slot(const ilm_tokenizer *t, int32_t left, int32_t right) {
    return (uint32_t)ilm_tok_mix(((uint64_t)(uint32_t)left << 32) | (uint32_t)right) & t->pair_mask;
}

// The first occurrence of a pair keeps its rank (llama.cpp's bpe_ranks.emplace).
static void pair_put(ilm_tokenizer *t, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    for (uint32_t i = pair_slot(t, left, right);; i = (i + 1) & t->pair_mask) {
        struct ilm_tok_pair *p = &t->pairs[i];
        if (!p->left1) {
            *p = (struct ilm_tok_pair){(uint32_t)left + 1, (uint32_t)right, rank, merged};
            return;
        }
        if (p->left1 == (uint32_t)left + 1 && p->right == (uint32_t)right) return;
    }
}

// One merge on its way through the load pipeline below.
typedef struct {
    const char *l, *r;       // operands (into the GGUF mapping)
    uint32_t nl, nr;
    uint64_t hl, hr, hlr;    // hashes of left, right, left+right
    int32_t left, right, merged;
} merge_job;

enum { MERGE_AHEAD = 16, MERGE_RING = 2 * MERGE_AHEAD };

// Stage 1: split "left right" (docs/gemma4.md §3.6: at the first space at index >= 1), hash.
static int merge_parse(const ilm_gguf *g, const ilm_gguf_str *m, uint64_t rank, merge_job *j, char **buf,
                       size_t *cap, ilm_err *err) {
    const char *s = m->ptr;
    size_t n = m->len;
    const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
    if (!sp)
        return ilm_fail(err, "%s: tokenizer.ggml.merges[%llu] has no space: \"%.*s\"", g->path,
                        (unsigned long long)rank, (int)(n > 60 ? 60 : n), s);
    j->l = s;
    j->nl = (uint32_t)(sp - s);
    j->r = sp + 1;
    j->nr = (uint32_t)(n - j->nl - 1);
    if (n > *cap) {
        char *b = realloc(*buf, n * 2);
        if (!b) return ilm_fail(err, "out of memory");
        *buf = b;
        *cap = n * 2;
    }
    memcpy(*buf, j->l, j->nl);
    memcpy(*buf + j->nl, j->r, j->nr);
    j->hl = ilm_tok_hash(j->l, j->nl);
    j->hr = ilm_tok_hash(j->r, j->nr);
    j->hlr = ilm_tok_hash(*buf, j->nl + j->nr);
    return 0;
}

static bool str_equals(const ilm_tokenizer *t, int32_t id, const char *a, size_t na, const char *b, size_t nb) {
    return id >= 0 && id < t->n_str && t->strs[id].len == na + nb && !memcmp(ilm_tok_str_ptr(t, id), a, na) &&
           !memcmp(ilm_tok_str_ptr(t, id) + na, b, nb);
}

// Stage 2: the string ids of both operands and of their concatenation (interned when they are
// not tokens), then a prefetch of the pair slot. Merges come sorted by the id of their result
// in the Gemma vocabulary (each result is the previous one or the next id in 99.8% of the real
// merges), so the result is first compared with those two texts, which sit next to each other
// in the arena: exact, and one random access fewer than a hash lookup.
static int merge_resolve(ilm_tokenizer *t, merge_job *j, int32_t *last_merged, ilm_err *err) {
    j->left = ilm_tok_str_intern(t, j->l, j->nl, "", 0, j->hl, err);
    j->right = j->left < 0 ? -1 : ilm_tok_str_intern(t, j->r, j->nr, "", 0, j->hr, err);
    if (j->right < 0) return -1;
    int32_t guess = *last_merged;
    if (str_equals(t, guess, j->l, j->nl, j->r, j->nr)) j->merged = guess;
    else if (str_equals(t, guess + 1, j->l, j->nl, j->r, j->nr)) j->merged = guess + 1;
    else j->merged = ilm_tok_str_intern(t, j->l, j->nl, j->r, j->nr, j->hlr, err);
    if (j->merged < 0) return -1;
    *last_merged = j->merged;
    __builtin_prefetch(&t->pairs[pair_slot(t, j->left, j->right)], 1);
    return 0;
}

// The 514,906 merges of the real vocabulary cost two or three string lookups and one pair
// insert each, all at random places in tables of 8–16 MB. A three-stage software pipeline
// (hash + prefetch the string slots; look up the ids + prefetch the pair slot; insert) keeps
// a few dozen of those cache misses in flight instead of one: the load goes ~3x faster.
int ilm_tok_load_merges(ilm_tokenizer *t, const ilm_gguf *g, const ilm_gguf_value *v, ilm_err *err) {
    uint64_t n = v->arr.count;
    t->pair_mask = ilm_tok_table_mask(n);
    t->pairs = ilm_tok_big_alloc(((size_t)t->pair_mask + 1) * sizeof *t->pairs, true, err);
    if (!t->pairs) return -1;
    merge_job ring[MERGE_RING];
    int32_t last_merged = -1;
    char *buf = NULL;
    size_t cap = 0;
    int rc = -1;
    // Iteration k inserts merge k - 2·AHEAD, resolves k - AHEAD and parses k, in that order:
    // the ring slot of k is the one just freed by k - 2·AHEAD.
    for (uint64_t k = 0; k < n + 2 * MERGE_AHEAD; k++) {
        if (k >= 2 * MERGE_AHEAD) {
            uint64_t r = k - 2 * MERGE_AHEAD;
            const merge_job *j = &ring[r % MERGE_RING];
            if (j->nr) pair_put(t, j->left, j->right, (int32_t)r, j->merged);
        }
        if (k >= MERGE_AHEAD && k - MERGE_AHEAD < n) {
            merge_job *j = &ring[(k - MERGE_AHEAD) % MERGE_RING];
            // An empty right operand can never apply: such a merge is skipped.
            if (j->nr && merge_resolve(t, j, &last_merged, err)) goto done;
        }
        if (k < n) {
            merge_job *j = &ring[k % MERGE_RING];
            if (merge_parse(g, &v->arr.strs[k], k, j, &buf, &cap, err)) goto done;
            ilm_tok_prefetch_str(t, j->hl);
            ilm_tok_prefetch_str(t, j->hr);   // the result is usually found without its slot
        }
    }
    rc = 0;
done:
    free(buf);
    return rc;
}
