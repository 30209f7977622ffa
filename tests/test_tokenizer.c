// test_tokenizer.c — src/gen/tokenizer*.c and src/cli/cmd_tokenize.c against references ironlm did not
// make: ik_llama.cpp's llama-tokenize on the real 262,144-token Gemma vocabulary
// (fixtures/tokenizer/tokenize-ref.json) and on the 1024-token fixture vocabulary
// (fixtures/ik/refs/tokenize/tok1024.json, 3 modes); plus round trips, the streaming
// detokenizer, invalid UTF-8, special-token partition order, bad vocabularies and the CLI.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/commands.h"
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "fixture_util.h"
#include "harness.h"
#include "format/json.h"
#include "gen/tokenizer.h"

#define REAL_VOCAB "tokenizer/gemma4-vocab.gguf"
#define REAL_REF "tokenizer/tokenize-ref.json"
#define TINY_VOCAB "ik/models/gemma4-tiny-dense-f32.gguf"
#define TINY_REF "ik/refs/tokenize/tok1024.json"

// ---- helpers --------------------------------------------------------------------------------

static ilm_tokenizer *load_vocab(const char *rel) {
    ilm_tokenizer *t = NULL;
    ilm_err err = {{0}};
    int rc = ilm_tokenizer_load_file(&t, t_fixture(rel), &err);
    CHECK_MSG(rc == 0, "loading %s: %s", rel, err.msg);
    return rc ? NULL : t;
}

// Tokenizes and compares with a JSON array of ids; reports the first difference.
static bool check_ids(const ilm_tokenizer *t, const char *text, size_t len, int flags, const ilm_json *ref,
                      const char *what, size_t index) {
    int32_t *ids;
    int n;
    ilm_err err = {{0}};
    if (ilm_tokenize(t, text, len, flags, &ids, &n, &err)) {
        CHECK_MSG(0, "%s %zu: %s", what, index, err.msg);
        return false;
    }
    bool ok = ref && ref->type == JSON_ARR && (size_t)n == ref->len;
    int first = -1;
    for (int i = 0; i < n && (size_t)i < (ref ? ref->len : 0); i++)
        if (ids[i] != (int32_t)ref->items[i].num) {
            ok = false;
            first = i;
            break;
        }
    CHECK_MSG(ok, "%s %zu: %d ids vs %zu in the reference, first difference at %d (%d vs %d)", what, index, n,
              ref ? ref->len : 0, first, first >= 0 ? ids[first] : -1,
              first >= 0 ? (int)ref->items[first].num : -1);
    free(ids);
    return ok;
}

// decode(encode(text)) == text, without BOS, special tokens rendered.
static bool round_trips(const ilm_tokenizer *t, const char *text, size_t len, int flags) {
    int32_t *ids;
    int n;
    char *back = NULL;
    size_t blen = 0;
    ilm_err err = {{0}};
    if (ilm_tokenize(t, text, len, flags | ILM_TOK_NO_BOS, &ids, &n, &err)) return false;
    int rc = ilm_detokenize(t, ids, n, true, &back, &blen, &err);
    bool ok = rc == 0 && blen == len && !memcmp(back, text, len);
    free(ids);
    free(back);
    return ok;
}

// ---- references -----------------------------------------------------------------------------

TEST(tokenizer_real_vocab_matches_ik) {
    ilm_tokenizer *t = load_vocab(REAL_VOCAB);
    ilm_json *ref = t_load_json(REAL_REF);
    if (!t || !ref) goto done;
    const ilm_json *cases = ilm_json_get(ref, "cases");
    CHECK(cases && cases->len == 56);
    size_t passed = 0;
    for (size_t i = 0; cases && i < cases->len; i++) {
        const ilm_json *c = ilm_json_at(cases, i), *text = ilm_json_get(c, "text");
        // The reference: BOS added, special tokens parsed (the defaults).
        passed += check_ids(t, text->str, text->len, 0, ilm_json_get(c, "ids"), "tokenize-ref case", i);
    }
    CHECK_EQ(passed, 56);
done:
    ilm_json_free(ref);
    ilm_tokenizer_free(t);
}

TEST(tokenizer_tok1024_matches_ik_in_every_mode) {
    ilm_tokenizer *t = load_vocab(TINY_VOCAB);
    ilm_json *ref = t_load_json(TINY_REF);
    if (!t || !ref) goto done;
    const ilm_json *strings = ilm_json_get(ref, "strings");
    CHECK(strings && strings->len == 24);
    static const struct {
        const char *key;
        int flags;
    } modes[] = {
        {"ids_bos_parse_special", 0},
        {"ids_bos_no_parse_special", ILM_TOK_NO_SPECIAL},
        {"ids_nobos_parse_special", ILM_TOK_NO_BOS},
    };
    size_t passed = 0;
    for (size_t i = 0; strings && i < strings->len; i++) {
        const ilm_json *s = ilm_json_at(strings, i), *text = ilm_json_get(s, "text");
        for (size_t m = 0; m < 3; m++)
            passed += check_ids(t, text->str, text->len, modes[m].flags, ilm_json_get(s, modes[m].key), modes[m].key, i);
    }
    CHECK_EQ(passed, 72);
done:
    ilm_json_free(ref);
    ilm_tokenizer_free(t);
}

TEST(tokenizer_round_trips_reference_texts) {
    const char *vocabs[2][2] = {{REAL_VOCAB, REAL_REF}, {TINY_VOCAB, TINY_REF}};
    for (int v = 0; v < 2; v++) {
        ilm_tokenizer *t = load_vocab(vocabs[v][0]);
        ilm_json *ref = t_load_json(vocabs[v][1]);
        if (t && ref) {
            const ilm_json *list = ilm_json_get(ref, v == 0 ? "cases" : "strings");
            for (size_t i = 0; list && i < list->len; i++) {
                const ilm_json *text = ilm_json_get(ilm_json_at(list, i), "text");
                // A literal '▁' in the input decodes as a space: that text cannot round-trip.
                if (memmem(text->str, text->len, "\xE2\x96\x81", 3)) continue;
                CHECK_MSG(round_trips(t, text->str, text->len, 0), "%s text %zu", vocabs[v][1], i);
                CHECK_MSG(round_trips(t, text->str, text->len, ILM_TOK_NO_SPECIAL), "%s text %zu (no specials)",
                          vocabs[v][1], i);
            }
        }
        ilm_json_free(ref);
        ilm_tokenizer_free(t);
    }
}

// The prompts of the trained models (their own 4096-token BPE) and of the hf/ models: ids made
// by Hugging Face tokenizers (BOS included), reproduced by ik_llama.cpp.
TEST(tokenizer_model_prompts_match_references) {
    static const char *pairs[][2] = {
        {"models/pycoder/pycoder-bf16.gguf", "models/pycoder/pycoder-ref.json"},
        {"models/pyc80m/pyc80m-q8_0.gguf", "models/pyc80m/pyc80m-ref.json"},
        {"hf/dense-f32.gguf", "hf/dense-ref.json"},
        {"hf/ple-f32.gguf", "hf/ple-ref.json"},
        {"hf/moe-f32.gguf", "hf/moe-ref.json"},
    };
    for (size_t m = 0; m < sizeof pairs / sizeof pairs[0]; m++) {
        ilm_tokenizer *t = load_vocab(pairs[m][0]);
        ilm_json *ref = t_load_json(pairs[m][1]);
        const ilm_json *prompts = ilm_json_get(ref, "prompts");
        CHECK_MSG(prompts && prompts->len >= 3, "%s", pairs[m][1]);
        for (size_t i = 0; t && prompts && i < prompts->len; i++) {
            const ilm_json *p = ilm_json_at(prompts, i), *text = ilm_json_get(p, "text");
            check_ids(t, text->str, text->len, 0, ilm_json_get(p, "ids"), pairs[m][1], i);
        }
        ilm_json_free(ref);
        ilm_tokenizer_free(t);
    }
}

static size_t unhex(const char *hex, char *out, size_t cap) {
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n && i < cap; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

// ik's greedy references carry the detokenized bytes of every generated token (special tokens
// rendered: <|think|>, raw bytes of byte tokens, ...) and the prompts' ids.
TEST(tokenizer_pieces_match_ik) {
    ilm_tokenizer *t = load_vocab(TINY_VOCAB);
    if (!t) return;
    static const char *files[] = {"dense-f32", "dense-bf16", "dense-q8_0", "dense-q4_0",
                                  "moe-f32",   "moe-bf16",   "moe-q8_0",   "moe-q4_0"};
    int checked = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char rel[128];
        snprintf(rel, sizeof rel, "ik/refs/greedy/%s.json", files[f]);
        ilm_json *ref = t_load_json(rel);
        const ilm_json *prompts = ilm_json_get(ref, "prompts");
        for (size_t i = 0; prompts && i < prompts->len; i++) {
            const ilm_json *p = &prompts->items[i], *run = ilm_json_get(p, "ik_incremental");
            const ilm_json *text = ilm_json_get(p, "prompt_text");
            check_ids(t, text->str, text->len, 0, ilm_json_get(p, "prompt_ids"), rel, i);
            const ilm_json *gen = ilm_json_get(run, "generated"), *pieces = ilm_json_get(run, "pieces_hex");
            CHECK(gen && pieces && gen->len == pieces->len);
            char want[512], all[4096];
            size_t n_all = 0;
            for (size_t k = 0; gen && pieces && k < gen->len && k < pieces->len; k++) {
                size_t len, n = unhex(pieces->items[k].str, want, sizeof want);
                const char *got = ilm_tok_piece(t, (int32_t)gen->items[k].num, true, &len);
                CHECK_MSG(got && len == n && !memcmp(got, want, n), "%s prompt %zu token %zu (id %d)", rel, i, k,
                          (int)gen->items[k].num);
                if (got && n_all + len <= sizeof all) {
                    memcpy(all + n_all, got, len);
                    n_all += len;
                }
                checked++;
            }
            size_t n_text = unhex(ilm_json_get(run, "text_hex")->str, want, sizeof want);
            CHECK_MSG(n_text == n_all && !memcmp(want, all, n_all), "%s prompt %zu: text_hex", rel, i);
        }
        ilm_json_free(ref);
    }
    CHECK_EQ(checked, 8 * 3 * 32);
    ilm_tokenizer_free(t);
}

// ---- special tokens ---------------------------------------------------------------------------

TEST(tokenizer_special_tokens_found_by_text) {
    ilm_tokenizer *real = load_vocab(REAL_VOCAB), *tiny = load_vocab(TINY_VOCAB);
    if (!real || !tiny) goto done;
    // docs/gemma4.md §1.5 (real vocabulary) and fixtures/ik/README.md (1024 tokens).
    CHECK_EQ(real->n_vocab, 262144);
    CHECK_EQ(tiny->n_vocab, 1024);
    CHECK_EQ(ilm_tok_find(real, "<|turn>"), 105);
    CHECK_EQ(ilm_tok_find(real, "<turn|>"), 106);
    CHECK_EQ(ilm_tok_find(real, "<|tool_call>"), 48);
    CHECK_EQ(ilm_tok_find(real, "\n"), 107);
    CHECK_EQ(ilm_tok_find(real, "not a token at all"), -1);
    CHECK_EQ(ilm_tok_find(tiny, "<|channel>"), 100);
    CHECK_EQ(ilm_tok_find(tiny, "<0x41>"), 111 + 0x41);
    const ilm_tokenizer *both[2] = {real, tiny};
    for (int v = 0; v < 2; v++) {
        const ilm_tokenizer *t = both[v];
        CHECK_EQ(t->bos_id, ilm_tok_find(t, "<bos>"));
        CHECK_EQ(t->eos_id, ilm_tok_find(t, "<eos>"));
        CHECK_EQ(t->unk_id, ilm_tok_find(t, "<unk>"));
        CHECK_EQ(t->pad_id, ilm_tok_find(t, "<pad>"));
        CHECK(t->add_bos);
        CHECK_EQ(t->n_eog, 3);
        CHECK(ilm_tok_is_eog(t, ilm_tok_find(t, "<eos>")));
        CHECK(ilm_tok_is_eog(t, ilm_tok_find(t, "<turn|>")));
        CHECK(ilm_tok_is_eog(t, ilm_tok_find(t, "<|tool_response>")));
        CHECK(!ilm_tok_is_eog(t, ilm_tok_find(t, "<|turn>")));
        CHECK(!ilm_tok_is_eog(t, t->bos_id));
        CHECK_EQ(ilm_tok_type(t, t->bos_id), ILM_TOK_CONTROL);
        CHECK_EQ(ilm_tok_type(t, ilm_tok_find(t, "<|channel>")), ILM_TOK_USER_DEFINED);
        CHECK_EQ(ilm_tok_type(t, -1), -1);
        size_t len;
        CHECK_STR(ilm_tok_text(t, ilm_tok_find(t, "<|turn>"), &len), "<|turn>");
        // Control tokens render only on request; user-defined ones always.
        ilm_tok_piece(t, t->bos_id, false, &len);
        CHECK_EQ(len, 0);
        const char *p = ilm_tok_piece(t, t->bos_id, true, &len);
        CHECK(len == 5 && !memcmp(p, "<bos>", 5));
        p = ilm_tok_piece(t, ilm_tok_find(t, "<|channel>"), false, &len);
        CHECK(len == 10 && !memcmp(p, "<|channel>", 10));
        p = ilm_tok_piece(t, ilm_tok_find(t, "<0xE2>"), false, &len);
        CHECK(len == 1 && (uint8_t)p[0] == 0xE2);
        CHECK(ilm_tok_piece(t, t->n_vocab, true, &len) == NULL);
    }
done:
    ilm_tokenizer_free(real);
    ilm_tokenizer_free(tiny);
}

// ---- decoding -------------------------------------------------------------------------------

// Feeds ids one at a time; every chunk must be whole UTF-8 characters and the chunks together
// must be the full text.
static void check_stream(const ilm_tokenizer *t, const int32_t *ids, int n, const char *expect, size_t expect_len) {
    ilm_err err = {{0}};
    ilm_detok *d = ilm_detok_new(t, true, &err);
    CHECK_MSG(d != NULL, "%s", err.msg);
    if (!d) return;
    char out[4096];
    size_t o = 0, len;
    for (int i = 0; i < n; i++) {
        const char *p = ilm_detok_push(d, ids[i], &len, &err);
        CHECK_MSG(p != NULL, "%s", err.msg);
        if (!p) break;
        // A chunk never ends inside a character: its last lead byte has all its continuations.
        for (size_t k = 0; k < len;) {
            size_t need = ilm_tok_utf8_len((uint8_t)p[k]);
            CHECK_MSG(k + need <= len, "token %d: chunk ends inside a character", i);
            k += need;
        }
        CHECK(o + len <= sizeof out);
        memcpy(out + o, p, len);
        o += len;
    }
    const char *rest = ilm_detok_flush(d, &len);
    memcpy(out + o, rest, len);
    o += len;
    CHECK(o == expect_len && !memcmp(out, expect, o));
    ilm_detok_free(d);
}

TEST(tokenizer_streaming_detokenizer_never_splits_utf8) {
    ilm_tokenizer *t = load_vocab(TINY_VOCAB);
    if (!t) return;
    // Multi-byte characters, most of them absent from the 1024-token vocabulary: the encoder
    // falls back to one <0xHH> token per byte, so characters arrive a byte at a time.
    const char *text = "héllo ✓ 😀 Ω≈ 日本 ñ𝄞";
    int32_t *ids;
    int n;
    ilm_err err = {{0}};
    CHECK(ilm_tokenize(t, text, strlen(text), ILM_TOK_NO_BOS, &ids, &n, &err) == 0);
    int byte_tokens = 0;
    for (int i = 0; i < n; i++) byte_tokens += ilm_tok_type(t, ids[i]) == ILM_TOK_BYTE;
    CHECK(byte_tokens >= 12);
    check_stream(t, ids, n, text, strlen(text));
    free(ids);

    // Spelled out byte by byte: 4-byte emoji, 3-byte CJK, then a broken sequence (lead byte
    // followed by ASCII) that must come out as is rather than be held forever.
    const char *bytes = "\xF0\x9F\x98\x80\xE6\x97\xA5\xC3" "A\x80z";
    int32_t spelled[16];
    size_t nb = strlen(bytes);
    for (size_t i = 0; i < nb; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", (uint8_t)bytes[i]);
        spelled[i] = ilm_tok_find(t, name);
    }
    check_stream(t, spelled, (int)nb, bytes, nb);
    // An unfinished character at the end comes out at flush.
    check_stream(t, spelled, 3, bytes, 3);
    ilm_tokenizer_free(t);
}

TEST(tokenizer_invalid_utf8_is_byte_fallback) {
    ilm_tokenizer *t = load_vocab(REAL_VOCAB);
    if (!t) return;
    // Stray continuation bytes, truncated sequences, bytes that never occur in UTF-8, NULs.
    const char text[] = "ok \x80\xBF \xE2\x96 a\xC3 \xF0\x9F\x98 \xFF\xFE\xC0\xAF end\xE2";
    size_t len = sizeof text - 1;
    CHECK(round_trips(t, text, len, 0));
    const char with_nul[] = "a\0b\n\0";
    CHECK(round_trips(t, with_nul, sizeof with_nul - 1, 0));
    int32_t *ids;
    int n;
    ilm_err err = {{0}};
    CHECK(ilm_tokenize(t, "\xFF", 1, ILM_TOK_NO_BOS, &ids, &n, &err) == 0);
    CHECK(n == 1 && ids[0] == ilm_tok_find(t, "<0xFF>"));
    free(ids);
    CHECK(ilm_tokenize(t, "", 0, 0, &ids, &n, &err) == 0);
    CHECK(n == 1 && ids[0] == t->bos_id);
    free(ids);
    int32_t bad = 262144;
    char *out = NULL;
    size_t olen;
    CHECK(ilm_detokenize(t, &bad, 1, true, &out, &olen, &err) != 0);
    CHECK(strstr(err.msg, "262144") != NULL);
    ilm_tokenizer_free(t);
}

// ---- synthetic vocabularies -----------------------------------------------------------------

typedef struct {
    const char *model;          // tokenizer.ggml.model, NULL = absent
    bool no_tokens, no_merges;
    int n_types;                // entries of token_type (-1 = as many as tokens)
    const char *bad_merge;      // an extra merge string
    int bos;                    // bos_token_id
} vocab_spec;

// A small vocabulary: control <pad> <eos> <bos> <unk>, user-defined "ab", "bcd", "<x>", "<xy>",
// normal "a" "b" "c" "d" "▁" "cd" "dd", and merges "c d", "d d", "▁ ▁" (its result "▁▁" is no
// token: a pseudo string that still merges on: "▁▁ ▁▁" gives "▁▁▁▁", a token).
static const char *write_vocab(const char *name, const vocab_spec *spec) {
    static const char *tokens[] = {"<pad>", "<eos>", "<bos>", "<unk>", "ab", "bcd", "<x>", "<xy>", "a", "b", "c",
                                   "d", "\xE2\x96\x81", "cd", "dd", "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81",
                                   "<0x20>", "<0x78>"};
    static const int32_t types[] = {3, 3, 3, 2, 4, 4, 4, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6};
    const char *merges[] = {"c d", "d d", "\xE2\x96\x81 \xE2\x96\x81",
                            "\xE2\x96\x81\xE2\x96\x81 \xE2\x96\x81\xE2\x96\x81", spec->bad_merge};
    int n_tok = (int)(sizeof tokens / sizeof tokens[0]);
    const char *path = t_tmp(name);
    ilm_err err = {{0}};
    ilm_gguf_writer *w = ilm_gguf_writer_new(&err);
    int rc = !w;
    if (!rc) rc = ilm_gguf_writer_add_str(w, "general.architecture", "gemma4", &err);
    if (!rc && spec->model) rc = ilm_gguf_writer_add_str(w, "tokenizer.ggml.model", spec->model, &err);
    if (!rc && !spec->no_tokens)
        rc = ilm_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", tokens, (uint64_t)n_tok, &err);
    if (!rc)
        rc = ilm_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types,
                                     (uint64_t)(spec->n_types >= 0 ? spec->n_types : n_tok), &err);
    if (!rc && !spec->no_merges)
        rc = ilm_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", merges, spec->bad_merge ? 5 : 4, &err);
    if (!rc) rc = ilm_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)spec->bos, &err);
    if (!rc) rc = ilm_gguf_writer_begin(w, path, &err);
    if (!rc) rc = ilm_gguf_writer_finish(w, &err);
    CHECK_MSG(rc == 0, "writing %s: %s", name, err.msg);
    ilm_gguf_writer_free(w);
    return path;
}

static void expect_load_error(const char *name, const vocab_spec *spec, const char *needle) {
    const char *path = write_vocab(name, spec);
    ilm_tokenizer *t = NULL;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_tokenizer_load_file(&t, path, &err) != 0, "%s loaded", name);
    CHECK_MSG(t == NULL, "%s", name);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: \"%s\" lacks \"%s\"", name, err.msg, needle);
    CHECK_MSG(strstr(err.msg, name) != NULL, "%s: the message names no file: %s", name, err.msg);
    ilm_tokenizer_free(t);
}

TEST(tokenizer_rejects_bad_vocabularies) {
    expect_load_error("llama.gguf", &(vocab_spec){.model = "llama", .n_types = -1, .bos = 2}, "tokenizer.ggml.model");
    expect_load_error("nomodel.gguf", &(vocab_spec){.n_types = -1, .bos = 2}, "tokenizer.ggml.model");
    expect_load_error("notokens.gguf", &(vocab_spec){.model = "gemma4", .no_tokens = true, .n_types = -1, .bos = 2},
                      "tokenizer.ggml.tokens");
    expect_load_error("nomerges.gguf", &(vocab_spec){.model = "gemma4", .no_merges = true, .n_types = -1, .bos = 2},
                      "tokenizer.ggml.merges");
    expect_load_error("types.gguf", &(vocab_spec){.model = "gemma4", .n_types = 5, .bos = 2}, "token_type");
    expect_load_error("merge.gguf", &(vocab_spec){.model = "gemma4", .n_types = -1, .bad_merge = "nospace", .bos = 2},
                      "merges[4]");
    expect_load_error("bos.gguf", &(vocab_spec){.model = "gemma4", .n_types = -1, .bos = 99}, "bos_token_id");
}

static void expect_ids(const ilm_tokenizer *t, const char *text, int flags, const int32_t *want, int n_want) {
    int32_t *ids;
    int n;
    ilm_err err = {{0}};
    CHECK(ilm_tokenize(t, text, strlen(text), flags | ILM_TOK_NO_BOS, &ids, &n, &err) == 0);
    bool ok = n == n_want;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    CHECK_MSG(ok, "\"%s\": got %d ids, first %d", text, n, n ? ids[0] : -1);
    free(ids);
}

TEST(tokenizer_partition_and_bpe_rules) {
    const char *path = write_vocab("synthetic.gguf", &(vocab_spec){.model = "gemma4", .n_types = -1, .bos = 2});
    ilm_tokenizer *t = NULL;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_tokenizer_load_file(&t, path, &err) == 0, "%s", err.msg);
    if (!t) return;
    // Longest special text first, wherever it is: "bcd" beats the earlier "ab".
    expect_ids(t, "abcd", 0, (int32_t[]){8, 5}, 2);
    // Equal texts elsewhere are claimed left to right without overlap.
    expect_ids(t, "ababcd", 0, (int32_t[]){4, 8, 5}, 3);
    // "<xy>" is CONTROL: parsed only with specials on; "<x>" (user-defined) always.
    expect_ids(t, "<xy>", 0, (int32_t[]){7}, 1);
    // Without: plain BPE; only 'x' has a byte token, the other bytes fall back to <unk>.
    expect_ids(t, "<xy>", ILM_TOK_NO_SPECIAL, (int32_t[]){3, 17, 3, 3}, 4);
    // BPE by rank: "c d" (rank 0) before "d d" (rank 1): "cdd" → cd + d.
    expect_ids(t, "cdd", 0, (int32_t[]){13, 11}, 2);
    // Four spaces: ▁▁ (a pseudo string, no token) twice, then ▁▁▁▁ (a token).
    expect_ids(t, "    ", 0, (int32_t[]){15}, 1);
    // Three spaces: ▁▁ + ▁. The pseudo string ▁▁ is no token, so it falls back to its 6 bytes,
    // and without <0xE2>/<0x96>/<0x81> tokens each byte becomes <unk>.
    expect_ids(t, "   ", 0, (int32_t[]){3, 3, 3, 3, 3, 3, 12}, 7);
    ilm_tokenizer_free(t);
}

// ---- the partition against ik's literal loop -------------------------------------------------

// ik's tokenizer_st_partition as written: for each special text in rank order, split every raw
// fragment at its leftmost non-overlapping occurrences. Returns the naive ids: special ids, and
// ilm_tokenize of each remaining raw fragment (which holds no special text any more).
static int naive_tokenize(const ilm_tokenizer *t, const char *text, size_t n, bool parse_special, int32_t *out) {
    enum { MAX_FRAG = 512 };
    struct { size_t off, len; int32_t id; } frag[MAX_FRAG];   // id -1 = raw text
    int nf = 1;
    frag[0].off = 0, frag[0].len = n, frag[0].id = -1;
    for (int32_t r = 0; r < t->n_special; r++) {
        int32_t id = t->special_id[r];
        size_t len = (size_t)t->special_len[r];
        int type = ilm_tok_type(t, id);
        if (!parse_special && type != ILM_TOK_USER_DEFINED) continue;
        const char *pat = ilm_tok_text(t, id, NULL);
        for (int f = 0; f < nf; f++) {
            if (frag[f].id >= 0) continue;
            const char *base = text + frag[f].off;
            const char *hit = memmem(base, frag[f].len, pat, len);
            if (!hit || nf + 2 >= MAX_FRAG) continue;
            size_t pre = (size_t)(hit - base), post = frag[f].len - pre - len;
            // [pre raw][special][post raw]; the post part is scanned next (f + 1 or f + 2).
            memmove(&frag[f + 3], &frag[f + 1], sizeof frag[0] * (size_t)(nf - f - 1));
            size_t off = frag[f].off;
            frag[f].len = pre;
            frag[f + 1].off = off + pre, frag[f + 1].len = len, frag[f + 1].id = id;
            frag[f + 2].off = off + pre + len, frag[f + 2].len = post, frag[f + 2].id = -1;
            nf += 2;
        }
    }
    int n_out = 0;
    for (int f = 0; f < nf; f++) {
        if (frag[f].id >= 0) {
            out[n_out++] = frag[f].id;
            continue;
        }
        if (frag[f].len == 0) continue;
        int32_t *ids;
        int k;
        ilm_err err = {{0}};
        if (ilm_tokenize(t, text + frag[f].off, frag[f].len, ILM_TOK_NO_BOS | (parse_special ? 0 : ILM_TOK_NO_SPECIAL),
                         &ids, &k, &err))
            return -1;
        memcpy(out + n_out, ids, sizeof *ids * (size_t)k);
        n_out += k;
        free(ids);
    }
    return n_out;
}

TEST(tokenizer_partition_equals_ik_loop_on_random_text) {
    // Pieces that make special texts overlap and nest: runs of newlines and '▁' (user-defined
    // in the real vocabulary), tag fragments, control and user-defined markers.
    static const char *pieces[] = {"\n", "\n\n", " ", "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81", "\t", "\t\t",
                                   "<|turn>", "<turn|>", "<|", "|>", "<", ">", "turn", "user", "<|tool_response>",
                                   "<tool_response|>", "<bos>", "<b", "os>", "<unused1", "2>", "<table>", "</",
                                   "td>", "a", "\xC3\xA9", "\xE4\xB8\xAD", "<|\"|>", "<|channel>", "<mask>"};
    const char *vocabs[2] = {REAL_VOCAB, TINY_VOCAB};
    uint64_t seed = 20260815;
    for (int v = 0; v < 2; v++) {
        ilm_tokenizer *t = load_vocab(vocabs[v]);
        if (!t) continue;
        int bad = 0;
        for (int iter = 0; iter < 60; iter++) {
            char text[1024];
            size_t n = 0;
            int n_pieces = 5 + (int)(t_rand_u64(&seed) % 40);
            for (int k = 0; k < n_pieces; k++) {
                const char *p = pieces[t_rand_u64(&seed) % (sizeof pieces / sizeof pieces[0])];
                size_t l = strlen(p);
                memcpy(text + n, p, l);
                n += l;
            }
            for (int mode = 0; mode < 2; mode++) {
                int32_t want[1024], *got;
                int n_want = naive_tokenize(t, text, n, mode == 0, want), n_got;
                ilm_err err = {{0}};
                CHECK(ilm_tokenize(t, text, n, ILM_TOK_NO_BOS | (mode ? ILM_TOK_NO_SPECIAL : 0), &got, &n_got, &err) == 0);
                bool same = n_got == n_want && !memcmp(got, want, sizeof *got * (size_t)n_got);
                if (!same && bad++ < 3) CHECK_MSG(0, "%s: random text %d (mode %d) differs from the literal loop", vocabs[v], iter, mode);
                free(got);
            }
        }
        CHECK_EQ(bad, 0);
        ilm_tokenizer_free(t);
    }
}

// ---- command line -----------------------------------------------------------------------------

// Runs a sub-command in-process with stdout and stderr sent to files.
static int run_cmd(int (*fn)(int, char **), char **argv, char **out, size_t *out_len, char **errs) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(t_tmp("cmd.out"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(t_tmp("cmd.err"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    *out = t_read(t_tmp("cmd.out"), out_len);
    *errs = t_read(t_tmp("cmd.err"), NULL);
    return rc;
}

TEST(tokenizer_cli_tokenize_and_detokenize) {
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s", t_fixture(REAL_VOCAB));
    char *out, *errs;
    size_t len;
    int rc = run_cmd(ilm_cmd_tokenize, (char *[]){"tokenize", "-m", vocab, "-p", "Hello world, this is a test.", "--ids", NULL},
                     &out, &len, &errs);
    CHECK_EQ(rc, 0);
    CHECK_STR(out, "2,9259,1902,236764,672,563,496,1594,236761\n");
    free(out);
    free(errs);

    // -f reads the bytes exactly (trailing newlines included); --no-bos.
    FILE *f = fopen(t_tmp("in.txt"), "wb");
    fputs("a\nb\n\n", f);
    fclose(f);
    rc = run_cmd(ilm_cmd_tokenize, (char *[]){"tokenize", "-m", vocab, "-f", (char *)t_tmp("in.txt"), "--ids", "--no-bos", NULL},
                 &out, &len, &errs);
    CHECK_EQ(rc, 0);
    CHECK_STR(out, "236746,107,236763,108\n");
    free(out);
    free(errs);

    rc = run_cmd(ilm_cmd_tokenize, (char *[]){"tokenize", "-m", vocab, "-p", "<|turn>", "--no-parse-special", "--ids", NULL},
                 &out, &len, &errs);
    CHECK_EQ(rc, 0);
    CHECK(out && strcmp(out, "2,105\n") != 0 && !strncmp(out, "2,", 2));
    free(out);
    free(errs);

    rc = run_cmd(ilm_cmd_detokenize, (char *[]){"detokenize", "-m", vocab, "--ids", "2,105,2364,107,9259,1902", NULL},
                 &out, &len, &errs);
    CHECK_EQ(rc, 0);
    CHECK(len == 28 && !memcmp(out, "<bos><|turn>user\nHello world", 28));
    free(out);
    free(errs);

    // Errors: one "ironlm: error:" line, non-zero status.
    char *bad_calls[][8] = {
        {"detokenize", "-m", vocab, "--ids", "2,262144", NULL},
        {"detokenize", "-m", vocab, "--ids", "2,x", NULL},
        {"tokenize", "-m", "/nonexistent.gguf", "-p", "x", NULL},
        {"tokenize", "-m", vocab, NULL},
        {"tokenize", "-m", vocab, "-p", "x", "--bogus", NULL},
    };
    for (size_t i = 0; i < sizeof bad_calls / sizeof bad_calls[0]; i++) {
        bool detok = !strcmp(bad_calls[i][0], "detokenize");
        rc = run_cmd(detok ? ilm_cmd_detokenize : ilm_cmd_tokenize, bad_calls[i], &out, &len, &errs);
        CHECK_MSG(rc != 0, "bad call %zu succeeded", i);
        CHECK_MSG(errs && !strncmp(errs, "ironlm: error: ", 15) && strchr(errs, '\n') == errs + strlen(errs) - 1,
                  "bad call %zu: stderr \"%s\"", i, errs ? errs : "");
        free(out);
        free(errs);
    }
}
