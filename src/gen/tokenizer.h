// tokenizer.h — the Gemma 4 BPE tokenizer, loaded from GGUF metadata (docs/gemma4.md §3.6–§3.7).
//
// Encoding: special-token partition (longest texts first), ' ' → '▁', split at newline runs,
// merge-rank BPE over UTF-8 characters, byte fallback <0xHH>. Decoding: pieces with '▁' → ' ',
// byte tokens → their byte; a streaming detokenizer never emits half a UTF-8 character.
// Special and end-of-generation tokens are found by text and type, never by fixed ids (§1.5).
// src/gen/tokenizer.c: loading and lookup; tokenizer_encode.c: text → ids; tokenizer_decode.c:
// ids → text.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format/gguf.h"
#include "base/util.h"

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum ilm_tok_type {
    ILM_TOK_UNDEFINED = 0, ILM_TOK_NORMAL = 1, ILM_TOK_UNKNOWN = 2, ILM_TOK_CONTROL = 3,
    ILM_TOK_USER_DEFINED = 4, ILM_TOK_UNUSED = 5, ILM_TOK_BYTE = 6,
};

// Flags of ilm_tokenize. 0 = the defaults of `ironlm tokenize`: BOS as the metadata says,
// special-token texts (<|turn>, <bos>, ...) parsed.
enum {
    ILM_TOK_NO_BOS = 1,         // never prepend BOS
    ILM_TOK_NO_SPECIAL = 2,     // do not parse control/unknown texts (user-defined still match)
};
// As in ik_llama.cpp, the end-of-generation tokens count as CONTROL everywhere (parsing,
// rendering, ilm_tok_type), though <|tool_response> is user-defined in the metadata.

#define ILM_TOK_MAX_EOG 8

typedef struct ilm_tokenizer {
    // --- public, read-only -------------------------------------------------------------
    int32_t n_vocab;
    int32_t bos_id, eos_id, unk_id, pad_id;   // -1 when the vocabulary has none
    bool add_bos;                             // tokenizer.ggml.add_bos_token (true if absent)
    int32_t eog_ids[ILM_TOK_MAX_EOG];         // end of generation: <eos>, <turn|>, <|tool_response>
    int n_eog;
    size_t max_piece_len;                     // longest decoded piece in bytes

    // --- private (tokenizer*.c) -------------------------------------------------------
    // Strings: ids [0, n_vocab) are tokens; [n_vocab, n_str) are merge operands or results
    // that are not tokens ("pseudo" strings: merged like tokens, emitted by byte fallback).
    int32_t n_str, cap_str;
    struct ilm_tok_span { uint32_t off, len; } *strs;   // [n_str] texts in the arena
    char *arena;                              // texts (NUL-terminated), then decoded pieces
    size_t arena_len, arena_cap;
    struct ilm_tok_span *pieces;              // [n_vocab] decoded piece of each token, in the arena
    uint8_t *type;                            // effective type (EOG tokens forced to CONTROL)
    struct ilm_tok_slot *str_slots;           // text → string id (open addressing)
    uint32_t str_mask;
    bool hash_collision;                      // two texts share hash and length: always verify
    struct ilm_tok_pair *pairs;               // (left id, right id) → (rank, merged id)
    uint32_t pair_mask;
    int32_t char_id[128];                     // string id of each ASCII character, -1 if none
    int32_t byte_token[256];                  // id of <0xHH>, -1 if absent
    // Special-token matcher: a trie over the texts of control/user-defined/unknown tokens.
    // Patterns are ranked longest first (ties: lower id), as ik's partition processes them.
    int32_t n_special;
    int32_t *special_id, *special_len;        // [rank]
    int32_t n_nodes;
    int32_t *node_match_any, *node_match_user; // best pattern rank ending at a node, -1 if none
    struct ilm_tok_edge *edges;               // (node, byte) → child
    uint32_t edge_mask;
    int32_t root_child[256];
} ilm_tokenizer;

// Builds the tokenizer from tokenizer.ggml.* metadata; the GGUF may be closed afterwards.
// Fails with a clear message when tokenizer.ggml.model is not "gemma4" or a key is missing
// or malformed.
int ilm_tokenizer_load(ilm_tokenizer **out, const ilm_gguf *g, ilm_err *err);
// Opens PATH, loads its tokenizer, closes it (vocab-only GGUFs are enough).
int ilm_tokenizer_load_file(ilm_tokenizer **out, const char *path, ilm_err *err);
void ilm_tokenizer_free(ilm_tokenizer *t);

// Token id of an exact vocabulary text ("<|turn>", "\n", "▁the"), -1 if absent.
int32_t ilm_tok_find(const ilm_tokenizer *t, const char *text);
int32_t ilm_tok_find_n(const ilm_tokenizer *t, const char *text, size_t len);
// Raw vocabulary text of a token (NUL-terminated; '▁' not replaced), NULL if id is out of range.
const char *ilm_tok_text(const ilm_tokenizer *t, int32_t id, size_t *len);
// Effective token type (enum ilm_tok_type), -1 if id is out of range.
int ilm_tok_type(const ilm_tokenizer *t, int32_t id);
bool ilm_tok_is_eog(const ilm_tokenizer *t, int32_t id);

// Text → ids (docs/gemma4.md §3.7). *ids is malloc'd (free() it); *n_ids may be 0.
// Bytes that are not valid UTF-8 are single characters (they end up as byte tokens).
int ilm_tokenize(const ilm_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids, int *n_ids,
                 ilm_err *err);

// Decoded bytes of one token: '▁' → ' ' for normal and user-defined tokens, a byte token's
// byte, control/unknown texts only when render_special (else empty). Not NUL-terminated;
// NULL if id is out of range. May be an incomplete UTF-8 sequence (byte tokens).
const char *ilm_tok_piece(const ilm_tokenizer *t, int32_t id, bool render_special, size_t *len);
// Ids → text (malloc'd, NUL-terminated for convenience; *len excludes the NUL).
// An out-of-range id is an error naming it.
int ilm_detokenize(const ilm_tokenizer *t, const int32_t *ids, int n_ids, bool render_special, char **text,
                   size_t *len, ilm_err *err);

// Streaming detokenizer: feed ids one at a time; each call returns only complete UTF-8
// characters (a byte that can never start or continue a valid character is passed through
// as is, so nothing is held forever); ilm_detok_flush returns whatever is left.
typedef struct ilm_detok ilm_detok;
ilm_detok *ilm_detok_new(const ilm_tokenizer *t, bool render_special, ilm_err *err);
void ilm_detok_free(ilm_detok *d);
// Returns a pointer to *len bytes, valid until the next call on d. NULL (err set) for an
// out-of-range id.
const char *ilm_detok_push(ilm_detok *d, int32_t id, size_t *len, ilm_err *err);
const char *ilm_detok_flush(ilm_detok *d, size_t *len);

// ---- internal: shared by the tokenizer*.c files, not part of the API -------------------

struct ilm_tok_slot { uint64_t hash; uint32_t id1, len; };       // id + 1 (0 = empty)
struct ilm_tok_pair { uint32_t left1, right; int32_t rank, merged; };   // left id + 1 (0 = empty)
struct ilm_tok_edge { uint64_t key1; int32_t child; };           // (node << 8 | byte) + 1

// Hash of a byte string: 8 bytes per step, then a full avalanche (table index = low bits).
static inline uint64_t ilm_tok_hash(const char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(uint8_t)s[i] << (8 * i);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}
// Avalanche of an integer key (pair and trie-edge tables).
static inline uint64_t ilm_tok_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}
// Length of the UTF-8 sequence a lead byte announces; 1 for ASCII and for invalid leads.
static inline size_t ilm_tok_utf8_len(uint8_t b) {
    return b < 0xC2 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF5 ? 4 : 1;
}
// String id (token or pseudo string) of the text a+b; h = its hash. -1 if absent.
int32_t ilm_tok_lookup2(const ilm_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, uint64_t h,
                        bool verify);
const struct ilm_tok_pair *ilm_tok_pair_find(const ilm_tokenizer *t, int32_t left, int32_t right);
// The text of string id.
static inline const char *ilm_tok_str_ptr(const ilm_tokenizer *t, int32_t id) { return t->arena + t->strs[id].off; }
// String id of the text a+b (h = its hash), appended to the string table if absent.
int32_t ilm_tok_str_intern(ilm_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, uint64_t h,
                           ilm_err *err);
void ilm_tok_prefetch_str(const ilm_tokenizer *t, uint64_t h);   // the string slot of hash h
// Table allocation: 2 MB-aligned huge-page buffers for large tables; the mask of an
// open-addressing table for n entries (load factor 1/3..2/3).
void *ilm_tok_big_alloc(size_t n, bool zero, ilm_err *err);
uint32_t ilm_tok_table_mask(size_t n);
// Builds the merge table from the tokenizer.ggml.merges array (tokenizer_merges.c).
int ilm_tok_load_merges(ilm_tokenizer *t, const ilm_gguf *g, const ilm_gguf_value *v, ilm_err *err);
int32_t ilm_tok_trie_child(const ilm_tokenizer *t, int32_t node, uint8_t byte);   // -1 if none
