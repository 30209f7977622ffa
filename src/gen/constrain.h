// constrain.h — JSON-constrained decoding: a byte-level pushdown automaton for JSON, compiled
// from `{"type":"json_object"}` (any object) or a JSON-Schema subset, and the token mask it
// implies over a vocabulary (docs/design.md, "Constrained decoding").
//
// Schema subset (anything else is an error naming the construct, e.g. "unsupported JSON Schema
// keyword 'pattern'"):
//   type: object | array | string | number | integer | boolean | null, or an array of these;
//   object: properties, required, additionalProperties (false or true; either way only the
//     declared properties are emitted, IN DECLARED ORDER, optional ones may be skipped; without
//     properties the object is any object, or only {} with additionalProperties false);
//   array: items, minItems, maxItems;  enum, const (values matched as compact JSON text);
//   anyOf (also a list of types); nesting of all of these; a schema without type is any value
//   (or an object/array when properties/items are given). Annotations are ignored: title,
//   description, $schema, $id, $comment, default, examples.
// Output limits (so the text always ends): at most ILM_CON_MAX_WS whitespace bytes in a row
// between tokens of the JSON text, numbers of at most 24 characters plus one fraction/exponent
// step, nesting at most ILM_CON_MAX_DEPTH, nothing after the top-level value but an
// end-of-generation token.
//
// Tool calls (Gemma 4 notation, gen/toolcall.h): ilm_constraint_new_tools compiles the request's
// tools into `<|tool_call>call:NAME{ARGS}<tool_call|>` — NAME one of the functions (or the one
// tool_choice names), ARGS the function's `parameters` schema (the subset above, which must be
// an object) written in the template's notation: keys bare, strings between `<|"|>` markers
// taken verbatim (any UTF-8 text, newlines and tabs included, no other control bytes), numbers,
// true / false / null, nested objects and arrays; with `parallel` several calls may follow one
// another; then only an end-of-generation token. The three markers must be the vocabulary's
// special tokens (spelling them with ordinary tokens is not allowed), and the call starts at once
// (no leading whitespace, no thought channel). ilm_constraint_feed reads the markers' texts.
//
// The mask: tokens whose decoded bytes keep the text a valid prefix, found by walking a trie of
// the vocabulary's pieces together with the automaton (shared prefixes stepped once, whole
// subtrees pruned at the first bad byte). Inside a string the "plain" tokens (complete UTF-8
// without quote, backslash or control bytes) are all allowed at once and only the others are
// walked. Control, user-defined, unknown and unused tokens are never allowed; end-of-generation
// tokens only when the value is complete.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "gen/tokenizer.h"

#define ILM_CON_MAX_SET 8     // simultaneous automaton states (anyOf alternatives still open)
#define ILM_CON_MAX_WS 32
#define ILM_CON_MAX_DEPTH 48

// The per-tokenizer precomputation (pieces, tries, the plain-string-token bitset): build once,
// share between constraints (read-only after creation).
typedef struct ilm_constraint_vocab ilm_constraint_vocab;
ilm_constraint_vocab *ilm_constraint_vocab_new(const ilm_tokenizer *t, ilm_err *err);
void ilm_constraint_vocab_free(ilm_constraint_vocab *v);

// One automaton state: the top stack frame inline, the rest as a linked list in the
// constraint's pool (so a state is a few bytes to copy).
typedef struct {
    uint16_t node;
    uint8_t mode, sub;
    uint16_t a, b, c;
} ilm_con_frame;
typedef struct {
    ilm_con_frame top;
    int32_t below;  // pool index of the frame under top, -1 none
    uint8_t ws, depth;
} ilm_con_st;
// The whole state: what ilm_constraint_save/restore copy (speculative rollback).
typedef struct {
    int n;          // live states (0: dead)
    bool ended;     // an end-of-generation token was accepted
    int32_t pool_len;
    uint64_t gen;   // identifies the state (the cached mask belongs to one)
    ilm_con_st s[ILM_CON_MAX_SET];
} ilm_constraint_state;

typedef struct ilm_constraint ilm_constraint;

// schema_json NULL: any JSON object ({"type":"json_object"}); else a JSON Schema (the subset
// above). v may be NULL for a byte-only automaton (ilm_constraint_feed; no token calls).
ilm_constraint *ilm_constraint_new(const ilm_constraint_vocab *v, const char *schema_json, ilm_err *err);
// Convenience: builds (and owns) the vocabulary precomputation of t.
ilm_constraint *ilm_constraint_new_json(const ilm_tokenizer *t, const char *schema_json, ilm_err *err);
// tools_json: an OpenAI `tools` array; only_name: the one function allowed (NULL: any of them).
// Errors name the tool and the construct (unsupported schema keyword, non-object parameters,
// a name the parser could not read back, a missing marker token in the vocabulary).
ilm_constraint *ilm_constraint_new_tools(const ilm_constraint_vocab *v, const char *tools_json, const char *only_name,
                                         bool parallel, ilm_err *err);
void ilm_constraint_free(ilm_constraint *c);
// Checks a schema (or a tool list) without a vocabulary (a server's 400 before generation).
int ilm_constraint_check_schema(const char *schema_json, ilm_err *err);
int ilm_constraint_check_tools(const char *tools_json, const char *only_name, ilm_err *err);
// Back to the start (a new request with the same schema).
void ilm_constraint_reset(ilm_constraint *c);

// Sets the logits of every token the constraint does not allow to -INFINITY. If nothing would
// be allowed (after the end, or a dead state), the end-of-generation tokens are left instead.
void ilm_constraint_mask(ilm_constraint *c, float *logits, int n_vocab);
bool ilm_constraint_allows(ilm_constraint *c, int32_t tok);
// Advances by one token: 0, or -1 (state unchanged) when the token is not allowed.
int ilm_constraint_accept(ilm_constraint *c, int32_t tok);
// Advances by raw bytes (tests, byte-level use): 0, or -1 (state unchanged).
int ilm_constraint_feed(ilm_constraint *c, const char *bytes, size_t n);
// The text so far is a complete value (an end-of-generation token would be allowed).
bool ilm_constraint_done(const ilm_constraint *c);
void ilm_constraint_save(const ilm_constraint *c, ilm_constraint_state *out);
void ilm_constraint_restore(ilm_constraint *c, const ilm_constraint_state *in);
