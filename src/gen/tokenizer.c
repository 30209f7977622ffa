// tokenizer.c — loading the Gemma 4 tokenizer from GGUF metadata (docs/gemma4.md §3.6): the
// string table, the special-token trie, the decoded pieces, and token lookup. The merge
// table is tokenizer_merges.c, the encoder tokenizer_encode.c, the decoder tokenizer_decode.c.
//
// Load-time work is what makes encoding fast: one hash table text → id, one (left id, right id)
// → (rank, merged id) table for the 514,906 merges, and a trie over the ~6,400 special texts.
#include "gen/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

// ---- memory ------------------------------------------------------------------------------

// The load touches ~40 MB of tables in random order; on 4 KB pages that is ~10,000 page faults
// and as many TLB misses (measured on the project VM: ~80 ms of kernel time per load, more than
// the work itself). Large tables are therefore 2 MB-aligned and asked to use transparent huge
// pages. free() releases them.
void *ilm_tok_big_alloc(size_t n, bool zero, ilm_err *err) {
    const size_t huge = (size_t)2 << 20;
    if (n < huge / 2) return zero ? ilm_calloc(1, n, err) : ilm_malloc(n, err);
    size_t bytes = ilm_align_up(n, huge);
    void *p = aligned_alloc(huge, bytes);
    if (!p) {
        ilm_fail(err, "out of memory (%zu bytes)", bytes);
        return NULL;
    }
    madvise(p, bytes, MADV_HUGEPAGE);   // advisory: without THP this is plain memory
    if (zero) memset(p, 0, n);
    return p;
}

// ---- hashing -------------------------------------------------------------------------------

// Open-addressing tables are sized for a load factor of 1/3..2/3, so probes stay short.
uint32_t ilm_tok_table_mask(size_t n) {
    size_t cap = 16;
    while (cap < n + n / 2) cap *= 2;
    return (uint32_t)(cap - 1);
}

// ---- the string table (tokens + pseudo strings) ------------------------------------------


// Looks up the text a+b (b may be empty); h = ilm_tok_hash of that text. Slots keep the full
// 64-bit hash and the length, so a probe rarely touches the arena; `verify` compares the text
// too. The load skips that for merge operands (hash and length equal, the texts differ with
// probability ~2^-64) unless two vocabulary texts were seen to collide (t->hash_collision);
// lookups of user text always verify.
int32_t ilm_tok_lookup2(const ilm_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, uint64_t h,
                        bool verify) {
    for (uint32_t i = (uint32_t)h & t->str_mask;; i = (i + 1) & t->str_mask) {
        const struct ilm_tok_slot *s = &t->str_slots[i];
        if (!s->id1) return -1;
        if (s->hash != h || s->len != na + nb) continue;
        int32_t id = (int32_t)s->id1 - 1;
        if (!verify) return id;
        const char *p = ilm_tok_str_ptr(t, id);
        if (!memcmp(p, a, na) && !memcmp(p + na, b, nb)) return id;
    }
}

void ilm_tok_prefetch_str(const ilm_tokenizer *t, uint64_t h) {
    __builtin_prefetch(&t->str_slots[(uint32_t)h & t->str_mask]);
}

// Inserts string `id` (already in the arena); an equal text already present is re-pointed
// to `id`, so the last of duplicate tokens wins (llama.cpp's token_to_id does the same).
static void str_table_put(ilm_tokenizer *t, int32_t id, uint64_t h) {
    const char *text = ilm_tok_str_ptr(t, id);
    uint32_t len = t->strs[id].len;
    for (uint32_t i = (uint32_t)h & t->str_mask;; i = (i + 1) & t->str_mask) {
        struct ilm_tok_slot *s = &t->str_slots[i];
        if (!s->id1) {
            *s = (struct ilm_tok_slot){h, (uint32_t)id + 1, len};
            return;
        }
        if (s->hash == h && s->len == len) {
            if (!memcmp(ilm_tok_str_ptr(t, (int32_t)s->id1 - 1), text, len)) {
                s->id1 = (uint32_t)id + 1;
                return;
            }
            t->hash_collision = true;
        }
    }
}

static int arena_reserve(ilm_tokenizer *t, size_t extra, ilm_err *err) {
    if (t->arena_len + extra <= t->arena_cap) return 0;
    size_t cap = t->arena_cap ? t->arena_cap : 4096;
    while (cap < t->arena_len + extra) cap *= 2;
    if (cap > UINT32_MAX) return ilm_fail(err, "tokenizer: vocabulary texts too large");
    char *a = realloc(t->arena, cap);
    if (!a) return ilm_fail(err, "out of memory");
    t->arena = a;
    t->arena_cap = cap;
    return 0;
}

static int str_table_rebuild(ilm_tokenizer *t, size_t n_entries, ilm_err *err) {
    free(t->str_slots);
    t->str_mask = ilm_tok_table_mask(n_entries);
    t->str_slots = ilm_tok_big_alloc(((size_t)t->str_mask + 1) * sizeof *t->str_slots, true, err);
    if (!t->str_slots) return -1;
    for (int32_t id = 0; id < t->n_str; id++)
        str_table_put(t, id, ilm_tok_hash(ilm_tok_str_ptr(t, id), t->strs[id].len));
    return 0;
}

// Appends a string (a+b) that is not yet in the table and returns its new id.
static int32_t str_add(ilm_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, uint64_t h,
                       ilm_err *err) {
    if (t->n_str >= INT32_MAX / 2) return ilm_fail(err, "tokenizer: too many merge strings");
    if (t->n_str == t->cap_str) {
        int32_t cap = t->cap_str * 2;
        struct ilm_tok_span *strs = realloc(t->strs, sizeof *strs * (size_t)cap);
        if (!strs) return ilm_fail(err, "out of memory");
        t->strs = strs;
        t->cap_str = cap;
    }
    if (arena_reserve(t, na + nb + 1, err)) return -1;
    int32_t id = t->n_str++;
    t->strs[id].off = (uint32_t)t->arena_len;
    t->strs[id].len = (uint32_t)(na + nb);
    memcpy(t->arena + t->arena_len, a, na);
    memcpy(t->arena + t->arena_len + na, b, nb);
    t->arena[t->arena_len + na + nb] = 0;
    t->arena_len += na + nb + 1;
    if ((size_t)t->n_str * 3 > ((size_t)t->str_mask + 1) * 2)
        return str_table_rebuild(t, (size_t)t->n_str * 2, err) ? -1 : id;
    str_table_put(t, id, h);
    return id;
}

int32_t ilm_tok_str_intern(ilm_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, uint64_t h,
                           ilm_err *err) {
    int32_t id = ilm_tok_lookup2(t, a, na, b, nb, h, t->hash_collision);
    return id >= 0 ? id : str_add(t, a, na, b, nb, h, err);
}

// ---- special-token trie -------------------------------------------------------------------

int32_t ilm_tok_trie_child(const ilm_tokenizer *t, int32_t node, uint8_t byte) {
    if (node == 0) return t->root_child[byte];
    uint64_t key = ((uint64_t)(uint32_t)node << 8) | byte;
    for (uint32_t i = (uint32_t)ilm_tok_mix(key) & t->edge_mask;; i = (i + 1) & t->edge_mask) {
        const struct ilm_tok_edge *e = &t->edges[i];
        if (!e->key1) return -1;
        if (e->key1 == key + 1) return e->child;
    }
}

static int32_t trie_add_child(ilm_tokenizer *t, int32_t node, uint8_t byte) {
    int32_t child = t->n_nodes++;
    t->node_match_any[child] = t->node_match_user[child] = -1;
    if (node == 0) {
        t->root_child[byte] = child;
        return child;
    }
    uint64_t key = ((uint64_t)(uint32_t)node << 8) | byte;
    uint32_t i = (uint32_t)ilm_tok_mix(key) & t->edge_mask;
    while (t->edges[i].key1) i = (i + 1) & t->edge_mask;
    t->edges[i] = (struct ilm_tok_edge){key + 1, child};
    return child;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *s;
    uint32_t len;
    int32_t rank;
} lex_entry;

// Byte-wise order; a prefix sorts before its extensions.
static int lex_cmp(const void *a, const void *b) {
    const lex_entry *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool is_special_type(int type) {
    return type == ILM_TOK_CONTROL || type == ILM_TOK_USER_DEFINED || type == ILM_TOK_UNKNOWN;
}

// docs/gemma4.md §3.7 step 1: ik's partition takes the special texts longest first (a sort by
// length; we break its ties by id) and claims every leftmost non-overlapping occurrence of each
// in the text not yet claimed. The trie finds the candidates; tokenizer_encode.c replays that order.
static int build_special_trie(ilm_tokenizer *t, ilm_err *err) {
    uint32_t max_len = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (is_special_type(t->type[id]) && t->strs[id].len > 0) {
            t->n_special++;
            if (t->strs[id].len > max_len) max_len = t->strs[id].len;
        }
    size_t n_special = (size_t)t->n_special;
    t->special_id = ilm_malloc(sizeof *t->special_id * (n_special + 1), err);
    t->special_len = ilm_malloc(sizeof *t->special_len * (n_special + 1), err);
    uint64_t *keys = ilm_malloc(sizeof *keys * (n_special + 1), err);
    lex_entry *lex = ilm_malloc(sizeof *lex * (n_special + 1), err);
    int32_t *path = ilm_malloc(sizeof *path * ((size_t)max_len + 1), err);
    uint32_t *common = ilm_malloc(sizeof *common * (n_special + 1), err);
    int rc = -1;
    if (!t->special_id || !t->special_len || !keys || !lex || !path || !common) goto done;

    // Rank = position in ik's order: length descending (ties: id ascending).
    size_t k = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (is_special_type(t->type[id]) && t->strs[id].len > 0)
            keys[k++] = ((uint64_t)(UINT32_MAX - t->strs[id].len) << 32) | (uint32_t)id;
    qsort(keys, n_special, sizeof *keys, u64_cmp);
    for (k = 0; k < n_special; k++) {
        int32_t id = (int32_t)(uint32_t)keys[k];
        t->special_id[k] = id;
        t->special_len[k] = (int32_t)t->strs[id].len;
        lex[k] = (lex_entry){ilm_tok_str_ptr(t, id), t->strs[id].len, (int32_t)k};
    }

    // Built in lexicographic order, each text shares the path of the one before up to their
    // common prefix: only new nodes are created, and their number is known before allocating.
    qsort(lex, n_special, sizeof *lex, lex_cmp);
    size_t n_nodes = 1;
    for (k = 0; k < n_special; k++) {
        uint32_t c = 0;
        if (k > 0)
            while (c < lex[k].len && c < lex[k - 1].len && lex[k].s[c] == lex[k - 1].s[c]) c++;
        common[k] = c;
        n_nodes += lex[k].len - c;
    }
    if (n_nodes > INT32_MAX) {
        ilm_fail(err, "tokenizer: special-token texts too large");
        goto done;
    }
    t->node_match_any = ilm_malloc(sizeof *t->node_match_any * n_nodes, err);
    t->node_match_user = ilm_malloc(sizeof *t->node_match_user * n_nodes, err);
    t->edge_mask = ilm_tok_table_mask(n_nodes);
    t->edges = ilm_calloc((size_t)t->edge_mask + 1, sizeof *t->edges, err);
    if (!t->node_match_any || !t->node_match_user || !t->edges) goto done;
    for (int i = 0; i < 256; i++) t->root_child[i] = -1;
    t->n_nodes = 1;
    t->node_match_any[0] = t->node_match_user[0] = -1;
    path[0] = 0;
    for (k = 0; k < n_special; k++) {
        const lex_entry *e = &lex[k];
        int32_t node = path[common[k]];
        for (uint32_t j = common[k]; j < e->len; j++) path[j + 1] = node = trie_add_child(t, node, (uint8_t)e->s[j]);
        // Several tokens may share a text: a node keeps its best (lowest) rank.
        int32_t *any = &t->node_match_any[node], *user = &t->node_match_user[node];
        if (*any < 0 || e->rank < *any) *any = e->rank;
        if (t->type[t->special_id[e->rank]] == ILM_TOK_USER_DEFINED && (*user < 0 || e->rank < *user)) *user = e->rank;
    }
    rc = 0;
done:
    free(keys);
    free(lex);
    free(path);
    free(common);
    return rc;
}

// ---- decoded pieces -----------------------------------------------------------------------

// Tokens are short: an inline scan beats two libc calls per token.
static bool has_metaspace(const char *s, size_t n) {
    for (size_t j = 0; j + 2 < n; j++)
        if ((uint8_t)s[j] == 0xE2 && (uint8_t)s[j + 1] == 0x96 && (uint8_t)s[j + 2] == 0x81) return true;
    return false;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// §3.7 "Detokenization": '▁' → ' ' in normal and user-defined tokens, <0xHH> → the byte,
// control/unknown texts verbatim (shown only when rendering specials).
static int build_pieces(ilm_tokenizer *t, ilm_err *err) {
    t->pieces = ilm_tok_big_alloc(sizeof *t->pieces * (size_t)t->n_vocab, false, err);
    if (!t->pieces) return -1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = ilm_tok_str_ptr(t, id);
        uint32_t n = t->strs[id].len;
        int hi, lo;
        if (t->type[id] == ILM_TOK_BYTE && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' &&
            (hi = hex_digit(s[3])) >= 0 && (lo = hex_digit(s[4])) >= 0) {
            if (arena_reserve(t, 1, err)) return -1;
            t->pieces[id].off = (uint32_t)t->arena_len;
            t->pieces[id].len = 1;
            t->arena[t->arena_len++] = (char)(hi * 16 + lo);
        } else if (t->type[id] == ILM_TOK_CONTROL || t->type[id] == ILM_TOK_UNKNOWN || !has_metaspace(s, n)) {
            t->pieces[id].off = t->strs[id].off;   // shared with the text: nothing to replace
            t->pieces[id].len = n;
        } else {
            if (arena_reserve(t, n, err)) return -1;
            s = ilm_tok_str_ptr(t, id);
            t->pieces[id].off = (uint32_t)t->arena_len;
            char *o = t->arena + t->arena_len;
            uint32_t w = 0;
            for (uint32_t j = 0; j < n; j++) {
                if (j + 2 < n && (uint8_t)s[j] == 0xE2 && (uint8_t)s[j + 1] == 0x96 && (uint8_t)s[j + 2] == 0x81) {
                    o[w++] = ' ';
                    j += 2;
                } else {
                    o[w++] = s[j];
                }
            }
            t->pieces[id].len = w;
            t->arena_len += w;
        }
        if (t->pieces[id].len > t->max_piece_len) t->max_piece_len = t->pieces[id].len;
    }
    return 0;
}

// ---- loading --------------------------------------------------------------------------------

static const ilm_gguf_value *need_array(const ilm_gguf *g, const char *key, bool strings, ilm_err *err) {
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(g, key);
    if (!kv) {
        ilm_fail(err, "%s: missing metadata key %s", g->path, key);
        return NULL;
    }
    int et = kv->val.type == GGUF_ARRAY ? kv->val.arr.elem_type : -1;
    bool ok = strings ? et == GGUF_STRING
                      : (et >= GGUF_U8 && et <= GGUF_I32 && et != GGUF_F32 && et != GGUF_BOOL) || et == GGUF_U64 ||
                            et == GGUF_I64;
    if (!ok) {
        ilm_fail(err, "%s: %s: expected an array of %s (%s%s)", g->path, key, strings ? "strings" : "integers",
                 ilm_gguf_vtype_name(kv->val.type == GGUF_ARRAY ? et : kv->val.type),
                 kv->val.type == GGUF_ARRAY ? "[]" : "");
        return NULL;
    }
    return &kv->val;
}

// An optional token-id key: absent → the id of `fallback_text` (or -1); present → in range.
static int special_id_key(ilm_tokenizer *t, const ilm_gguf *g, const char *key, const char *fallback_text,
                          int32_t *out, ilm_err *err) {
    if (!ilm_gguf_find_kv(g, key)) {
        *out = ilm_tok_find(t, fallback_text);
        return 0;
    }
    uint32_t v;
    if (ilm_gguf_get_u32(g, key, &v, err)) return -1;
    if (v >= (uint32_t)t->n_vocab)
        return ilm_fail(err, "%s: %s = %u is outside the vocabulary (%d tokens)", g->path, key, v, t->n_vocab);
    *out = (int32_t)v;
    return 0;
}

static void add_eog(ilm_tokenizer *t, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog_ids[i] == id) return;
    if (t->n_eog < ILM_TOK_MAX_EOG) t->eog_ids[t->n_eog++] = id;
    // ik_llama.cpp forces end-of-generation tokens to CONTROL (it warns that <|tool_response>
    // is user-defined in the metadata): so they are parsed and rendered only as specials.
    t->type[id] = ILM_TOK_CONTROL;
}

static int load_tokens(ilm_tokenizer *t, const ilm_gguf *g, const ilm_gguf_value *tokens,
                       const ilm_gguf_value *types, ilm_err *err) {
    int32_t n = t->n_vocab;
    t->cap_str = n;   // pseudo strings are rare: grown on demand (2 MB for the real vocabulary)
    t->strs = ilm_tok_big_alloc(sizeof *t->strs * (size_t)t->cap_str, false, err);
    t->type = ilm_malloc((size_t)n, err);
    if (!t->strs || !t->type) return -1;
    size_t bytes = 0;
    for (int32_t i = 0; i < n; i++) bytes += tokens->arr.strs[i].len + 1;
    // Room for the decoded pieces that differ from their text, and a few pseudo strings.
    t->arena_cap = bytes + bytes / 2 + 4096;
    if (t->arena_cap > UINT32_MAX) return ilm_fail(err, "%s: tokenizer.ggml.tokens: texts too large", g->path);
    t->arena = ilm_tok_big_alloc(t->arena_cap, false, err);
    if (!t->arena) return -1;
    t->str_mask = ilm_tok_table_mask((size_t)n + 1024);
    t->str_slots = ilm_tok_big_alloc(((size_t)t->str_mask + 1) * sizeof *t->str_slots, true, err);
    if (!t->str_slots) return -1;
    // Inserted in id order (duplicates: the last wins); the slot of the token 16 places ahead
    // is prefetched while this one is placed.
    enum { AHEAD = 16 };
    uint64_t ahead[AHEAD];
    t->n_str = n;
    for (int32_t i = 0; i < n; i++) {
        const ilm_gguf_str *s = &tokens->arr.strs[i];
        int64_t ty = ilm_gguf_arr_int(types, (uint64_t)i);
        if (ty < ILM_TOK_UNDEFINED || ty > ILM_TOK_BYTE)
            return ilm_fail(err, "%s: tokenizer.ggml.token_type[%d] = %lld is not a token type (0..6)", g->path, i,
                            (long long)ty);
        t->type[i] = (uint8_t)ty;
        t->strs[i].off = (uint32_t)t->arena_len;
        t->strs[i].len = (uint32_t)s->len;
        memcpy(t->arena + t->arena_len, s->ptr, s->len);
        t->arena[t->arena_len + s->len] = 0;
        t->arena_len += s->len + 1;
        if (i >= AHEAD) str_table_put(t, i - AHEAD, ahead[i % AHEAD]);   // the same ring slot
        ahead[i % AHEAD] = ilm_tok_hash(s->ptr, s->len);
        ilm_tok_prefetch_str(t, ahead[i % AHEAD]);
    }
    for (int32_t i = n > AHEAD ? n - AHEAD : 0; i < n; i++) str_table_put(t, i, ahead[i % AHEAD]);
    return 0;
}

int ilm_tokenizer_load(ilm_tokenizer **out, const ilm_gguf *g, ilm_err *err) {
    *out = NULL;
    const ilm_gguf_kv *model = ilm_gguf_find_kv(g, "tokenizer.ggml.model");
    if (!model) return ilm_fail(err, "%s: missing metadata key tokenizer.ggml.model (no tokenizer)", g->path);
    if (model->val.type != GGUF_STRING)
        return ilm_fail(err, "%s: tokenizer.ggml.model: expected a string (%s)", g->path,
                        ilm_gguf_vtype_name(model->val.type));
    if (model->val.str.len != 6 || memcmp(model->val.str.ptr, "gemma4", 6))
        return ilm_fail(err, "%s: tokenizer.ggml.model is \"%.*s\"; only \"gemma4\" is supported", g->path,
                        (int)(model->val.str.len > 40 ? 40 : model->val.str.len), model->val.str.ptr);
    const ilm_gguf_value *tokens = need_array(g, "tokenizer.ggml.tokens", true, err);
    if (!tokens) return -1;
    const ilm_gguf_value *types = need_array(g, "tokenizer.ggml.token_type", false, err);
    if (!types) return -1;
    const ilm_gguf_value *merges = need_array(g, "tokenizer.ggml.merges", true, err);
    if (!merges) return -1;
    if (tokens->arr.count == 0 || tokens->arr.count > (1u << 30))
        return ilm_fail(err, "%s: tokenizer.ggml.tokens has %llu entries", g->path,
                        (unsigned long long)tokens->arr.count);
    if (types->arr.count != tokens->arr.count)
        return ilm_fail(err, "%s: tokenizer.ggml.token_type has %llu entries, tokenizer.ggml.tokens %llu", g->path,
                        (unsigned long long)types->arr.count, (unsigned long long)tokens->arr.count);
    if (merges->arr.count > (1u << 30))
        return ilm_fail(err, "%s: tokenizer.ggml.merges has %llu entries", g->path,
                        (unsigned long long)merges->arr.count);

    ilm_tokenizer *t = ilm_calloc(1, sizeof *t, err);
    if (!t) return -1;
    t->n_vocab = (int32_t)tokens->arr.count;
    if (load_tokens(t, g, tokens, types, err) || ilm_tok_load_merges(t, g, merges, err)) goto fail;

    if (ilm_gguf_get_bool_or(g, "tokenizer.ggml.add_bos_token", true, &t->add_bos, err)) goto fail;
    if (special_id_key(t, g, "tokenizer.ggml.bos_token_id", "<bos>", &t->bos_id, err) ||
        special_id_key(t, g, "tokenizer.ggml.eos_token_id", "<eos>", &t->eos_id, err) ||
        special_id_key(t, g, "tokenizer.ggml.unknown_token_id", "<unk>", &t->unk_id, err) ||
        special_id_key(t, g, "tokenizer.ggml.padding_token_id", "<pad>", &t->pad_id, err))
        goto fail;
    if (t->add_bos && t->bos_id < 0) {
        ilm_fail(err, "%s: add_bos_token is set but the vocabulary has no BOS token", g->path);
        goto fail;
    }
    // docs/gemma4.md §1.5: end of generation = <eos>, <turn|>, <|tool_response>, by text.
    add_eog(t, t->eos_id);
    add_eog(t, ilm_tok_find(t, "<eos>"));
    add_eog(t, ilm_tok_find(t, "<turn|>"));
    add_eog(t, ilm_tok_find(t, "<|tool_response>"));

    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_token[b] = ilm_tok_find(t, name);
    }
    // Initial BPE symbols are looked up among tokens and pseudo strings alike.
    for (int c = 0; c < 128; c++) {
        char ch = (char)c;
        t->char_id[c] = ilm_tok_lookup2(t, &ch, 1, "", 0, ilm_tok_hash(&ch, 1), true);
    }
    if (build_special_trie(t, err) || build_pieces(t, err)) goto fail;
    *out = t;
    return 0;
fail:
    ilm_tokenizer_free(t);
    return -1;
}

int ilm_tokenizer_load_file(ilm_tokenizer **out, const char *path, ilm_err *err) {
    ilm_gguf *g;
    if (ilm_gguf_open(&g, path, err)) return -1;
    int rc = ilm_tokenizer_load(out, g, err);
    ilm_gguf_close(g);
    return rc;
}

void ilm_tokenizer_free(ilm_tokenizer *t) {
    if (!t) return;
    free(t->strs);
    free(t->arena);
    free(t->pieces);
    free(t->type);
    free(t->str_slots);
    free(t->pairs);
    free(t->special_id);
    free(t->special_len);
    free(t->node_match_any);
    free(t->node_match_user);
    free(t->edges);
    free(t);
}

// ---- lookup -----------------------------------------------------------------------------------

int32_t ilm_tok_find_n(const ilm_tokenizer *t, const char *text, size_t len) {
    int32_t id = ilm_tok_lookup2(t, text, len, "", 0, ilm_tok_hash(text, len), true);
    return id < t->n_vocab ? id : -1;
}

int32_t ilm_tok_find(const ilm_tokenizer *t, const char *text) { return ilm_tok_find_n(t, text, strlen(text)); }

const char *ilm_tok_text(const ilm_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->strs[id].len;
    return ilm_tok_str_ptr(t, id);
}

int ilm_tok_type(const ilm_tokenizer *t, int32_t id) { return id < 0 || id >= t->n_vocab ? -1 : t->type[id]; }

bool ilm_tok_is_eog(const ilm_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog_ids[i] == id) return true;
    return false;
}
