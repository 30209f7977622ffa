// tokenizer_encode.c — text → token ids for Gemma 4 (docs/gemma4.md §3.7): special-token
// partition, ' ' → '▁', newline-run split, merge-rank BPE over UTF-8 characters, byte fallback.
// Tables come from tokenizer.c; everything here is linear or n·log n in the text length.
#include <stdlib.h>
#include <string.h>

#include "gen/tokenizer.h"

// One BPE symbol: a span of the run, linked to its live neighbours.
typedef struct {
    int32_t id;            // string id (token or pseudo string), -1 if the text is unknown
    int32_t start, len;    // len 0 = merged into its left neighbour
    int32_t prev, next;
} symbol;

// A candidate merge of symbols left and right; stale once either changed.
typedef struct {
    int32_t rank, left, right, left_id, right_id, merged;
} bigram;

typedef struct {
    const ilm_tokenizer *t;
    ilm_err *err;
    int32_t *out;          // the ids produced so far
    size_t n_out, cap_out;
    char *esc;             // a fragment with ' ' escaped as '▁'
    size_t cap_esc;
    symbol *sym;
    size_t cap_sym;
    bigram *heap;          // min-heap on (rank, left): lowest rank first, ties leftmost
    size_t n_heap, cap_heap;
} encoder;

// Grows the array whose pointer is at `pptr` (any T **) to hold `need` elements.
// The pointer is read and written through memcpy, so one helper serves every element type.
static int grow(void *pptr, size_t *cap, size_t need, size_t elem, ilm_err *err) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *p;
    memcpy(&p, pptr, sizeof p);
    void *q = realloc(p, c * elem);
    if (!q) return ilm_fail(err, "out of memory");
    memcpy(pptr, &q, sizeof q);
    *cap = c;
    return 0;
}

static int emit(encoder *e, int32_t id) {
    if (grow(&e->out, &e->cap_out, e->n_out + 1, sizeof *e->out, e->err)) return -1;
    e->out[e->n_out++] = id;
    return 0;
}

// §3.7 step 6: one <0xHH> token per byte (the unknown token if the vocabulary lacks one).
static int emit_bytes(encoder *e, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = e->t->byte_token[(uint8_t)s[i]];
        if (id < 0) id = e->t->unk_id;
        if (id < 0) return ilm_fail(e->err, "tokenizer: no token for byte 0x%02X and no <unk>", (uint8_t)s[i]);
        if (emit(e, id)) return -1;
    }
    return 0;
}

// ---- BPE ------------------------------------------------------------------------------------

static bool bigram_before(const bigram *a, const bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int heap_push(encoder *e, bigram b) {
    if (grow(&e->heap, &e->cap_heap, e->n_heap + 1, sizeof *e->heap, e->err)) return -1;
    size_t i = e->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&b, &e->heap[parent])) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = b;
    return 0;
}

static bigram heap_pop(encoder *e) {
    bigram top = e->heap[0], last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bigram_before(&e->heap[c + 1], &e->heap[c])) c++;
        if (!bigram_before(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

static int try_pair(encoder *e, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    int32_t a = e->sym[left].id, b = e->sym[right].id;
    if (a < 0 || b < 0) return 0;
    const struct ilm_tok_pair *p = ilm_tok_pair_find(e->t, a, b);
    if (!p) return 0;
    return heap_push(e, (bigram){p->rank, left, right, a, b, p->merged});
}

// A character: a complete UTF-8 sequence, or a single byte where the input is not valid UTF-8.
static size_t char_len(const uint8_t *s, size_t n) {
    size_t need = ilm_tok_utf8_len(s[0]);
    if (need > n) return 1;
    for (size_t k = 1; k < need; k++)
        if ((s[k] & 0xC0) != 0x80) return 1;
    return need;
}

// §3.7 step 5: merge the adjacent pair of lowest rank (ties leftmost) until none is ranked.
// Linked symbols + a heap with lazy invalidation: O(n log n) in the run length.
static int bpe_run(encoder *e, const char *s, size_t n) {
    const ilm_tokenizer *t = e->t;
    if (grow(&e->sym, &e->cap_sym, n, sizeof *e->sym, e->err)) return -1;
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        size_t len = char_len((const uint8_t *)s + i, n - i);
        int32_t id = c < 128 ? t->char_id[c]
                             : ilm_tok_lookup2(t, s + i, len, "", 0, ilm_tok_hash(s + i, len), true);
        e->sym[ns] = (symbol){id, (int32_t)i, (int32_t)len, ns - 1, -1};
        if (ns > 0) e->sym[ns - 1].next = ns;
        ns++;
        i += len;
    }
    e->n_heap = 0;
    for (int32_t k = 1; k < ns; k++)
        if (try_pair(e, k - 1, k)) return -1;
    while (e->n_heap) {
        bigram b = heap_pop(e);
        symbol *l = &e->sym[b.left], *r = &e->sym[b.right];
        if (!l->len || !r->len || l->next != b.right || l->id != b.left_id || r->id != b.right_id) continue;
        l->id = b.merged;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) e->sym[r->next].prev = b.left;
        if (try_pair(e, l->prev, b.left) || try_pair(e, b.left, l->next)) return -1;
    }
    // Symbol 0 is never merged away, so the chain starts there.
    for (int32_t k = ns ? 0 : -1; k >= 0; k = e->sym[k].next) {
        const symbol *y = &e->sym[k];
        int rc = y->id >= 0 && y->id < t->n_vocab ? emit(e, y->id) : emit_bytes(e, s + y->start, (size_t)y->len);
        if (rc) return -1;
    }
    return 0;
}

// §3.7 steps 2–4 on a fragment that holds no special text.
static int encode_fragment(encoder *e, const char *s, size_t n) {
    if (n == 0) return 0;
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    size_t m = n + 2 * spaces;
    if (grow(&e->esc, &e->cap_esc, m, 1, e->err)) return -1;
    char *x = e->esc;
    for (size_t i = 0, o = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(x + o, "\xE2\x96\x81", 3);
            o += 3;
        } else {
            x[o++] = s[i];
        }
    }
    for (size_t i = 0; i < m;) {
        bool newline = x[i] == '\n';
        size_t j = i;
        while (j < m && (x[j] == '\n') == newline) j++;
        int32_t id = newline ? ilm_tok_find_n(e->t, x + i, j - i) : -1;
        if (id >= 0 ? emit(e, id) : bpe_run(e, x + i, j - i)) return -1;
        i = j;
    }
    return 0;
}

// ---- special-token partition ----------------------------------------------------------------

// Walks the trie from every text position and visits each occurrence of a special text, in
// start order: counts them per rank (starts == NULL), or files their starts by rank.
static size_t find_specials(const ilm_tokenizer *t, const int32_t *match, const char *text, size_t n, size_t *per_rank,
                            int32_t *starts) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t node = t->root_child[(uint8_t)text[i]];
        for (size_t j = i + 1; node >= 0; j++) {
            int32_t rank = match[node];
            if (rank >= 0) {
                if (starts) starts[per_rank[rank]++] = (int32_t)i;
                else per_rank[rank]++;
                total++;
            }
            if (j >= n) break;
            node = ilm_tok_trie_child(t, node, (uint8_t)text[j]);
        }
    }
    return total;
}

// §3.7 step 1, reproducing ik's loop "for each special text, longest first: claim its leftmost
// non-overlapping occurrences in the unclaimed text". The trie lists every occurrence; replaying
// them in (rank, start) order gives the same claims. A candidate needs only its two end bytes
// checked: every earlier claim is at least as long, so it cannot sit strictly inside.
// Memory: 4 bytes per occurrence (runs of newlines or '▁' have up to ~31 per byte) + 4 per byte.
static int encode_partitioned(encoder *e, const char *text, size_t n, bool parse_special) {
    const ilm_tokenizer *t = e->t;
    const int32_t *match = parse_special ? t->node_match_any : t->node_match_user;
    size_t n_ranks = (size_t)t->n_special;
    size_t *next = calloc(n_ranks + 1, sizeof *next);
    if (!next) return ilm_fail(e->err, "out of memory");
    size_t n_occ = find_specials(t, match, text, n, next, NULL);
    if (n_occ == 0) {
        free(next);
        return encode_fragment(e, text, n);
    }
    // Counting sort by rank (two walks): starts[] holds rank 0's starts, then rank 1's, ...
    int rc = -1;
    int32_t *starts = malloc(sizeof *starts * n_occ);
    int32_t *claim = calloc(n, sizeof *claim);   // 0 free, rank + 1 where a claim starts, -1 inside
    if (!starts || !claim) {
        ilm_fail(e->err, "out of memory");
        goto done;
    }
    size_t sum = 0;
    for (size_t r = 0; r < n_ranks; r++) {
        size_t c = next[r];
        next[r] = sum;
        sum += c;
    }
    find_specials(t, match, text, n, next, starts);
    for (size_t r = 0, k = 0; r < n_ranks; r++) {
        int32_t len = t->special_len[r];
        for (; k < next[r]; k++) {   // next[r] is now the end of rank r's starts
            int32_t s = starts[k];
            if (claim[s] || claim[s + len - 1]) continue;
            for (int32_t j = 1; j < len; j++) claim[s + j] = -1;
            claim[s] = (int32_t)r + 1;
        }
    }
    size_t raw = 0;
    for (size_t i = 0; i < n;) {
        if (claim[i] <= 0) {
            i++;
            continue;
        }
        int32_t rank = claim[i] - 1;
        if (encode_fragment(e, text + raw, i - raw) || emit(e, t->special_id[rank])) goto done;
        i += (size_t)t->special_len[rank];
        raw = i;
    }
    rc = encode_fragment(e, text + raw, n - raw);
done:
    free(next);
    free(starts);
    free(claim);
    return rc;
}

int ilm_tokenize(const ilm_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids, int *n_ids,
                 ilm_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX / 4) return ilm_fail(err, "tokenizer: text too long (%zu bytes)", len);
    encoder e = {.t = t, .err = err};
    int rc = grow(&e.out, &e.cap_out, len / 2 + 16, sizeof *e.out, err);
    // §3.7 step 7: BOS first when the metadata asks for it; no EOS.
    if (!rc && t->add_bos && !(flags & ILM_TOK_NO_BOS)) rc = emit(&e, t->bos_id);
    if (!rc) rc = encode_partitioned(&e, text, len, !(flags & ILM_TOK_NO_SPECIAL));
    free(e.esc);
    free(e.sym);
    free(e.heap);
    if (rc || e.n_out > INT32_MAX) {
        free(e.out);
        return rc ? -1 : ilm_fail(err, "tokenizer: too many tokens");
    }
    *ids = e.out;
    *n_ids = (int)e.n_out;
    return 0;
}
