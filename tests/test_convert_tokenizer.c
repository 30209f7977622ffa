// test_convert_tokenizer.c — tools/convert_tokenizer.c: the tokenizer keys of every HF checkpoint
// in fixtures/hf/checkpoints equal, key by key and byte for byte, those the reference converter
// wrote into the fixture GGUFs; the converted vocabulary tokenizes the hf/ prompts to their
// reference ids; the reference's key order and overwrite rules on a synthetic checkpoint; and
// one clear error line for each kind of bad input.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "fixture_util.h"
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "format/json.h"
#include "gen/tokenizer.h"
#include "tools/convert_tokenizer.h"

// Converts DIR's tokenizer into a tensor-less GGUF at OUT. Returns the converter's rc; err set.
static int convert_to(const char *dir, const char *out, ilm_err *err) {
    ilm_gguf_writer *w = ilm_gguf_writer_new(err);
    if (!w) return -1;
    int rc = ilm_convert_tokenizer(w, dir, err);
    if (!rc) rc = ilm_gguf_writer_begin(w, out, err);
    if (!rc) rc = ilm_gguf_writer_finish(w, err);
    ilm_gguf_writer_free(w);
    return rc;
}

static bool is_tok_key(const char *k) { return !strncmp(k, "tokenizer.", 10); }

// Every tokenizer.* key of a and b: same keys in the same order, same raw bytes.
static void compare_tokenizer_keys(const ilm_gguf *a, const ilm_gguf *b, const char *what) {
    int64_t ia = 0, ib = 0, n = 0;
    for (;;) {
        while (ia < a->n_kv && !is_tok_key(a->kv[ia].key)) ia++;
        while (ib < b->n_kv && !is_tok_key(b->kv[ib].key)) ib++;
        if (ia == a->n_kv || ib == b->n_kv) {
            CHECK_MSG(ia == a->n_kv && ib == b->n_kv, "%s: key %s has no counterpart", what,
                      ia < a->n_kv ? a->kv[ia].key : ib < b->n_kv ? b->kv[ib].key : "?");
            break;
        }
        const ilm_gguf_kv *x = &a->kv[ia++], *y = &b->kv[ib++];
        n++;
        CHECK_MSG(!strcmp(x->key, y->key), "%s: key %lld is %s, the reference has %s", what, (long long)n, x->key,
                  y->key);
        CHECK_MSG(x->val.type == y->val.type, "%s: %s has type %s, the reference %s", what, x->key,
                  ilm_gguf_vtype_name(x->val.type), ilm_gguf_vtype_name(y->val.type));
        if (x->val.type == GGUF_ARRAY) {
            CHECK_MSG(x->val.arr.elem_type == y->val.arr.elem_type && x->val.arr.count == y->val.arr.count,
                      "%s: %s is %s[%llu], the reference %s[%llu]", what, x->key,
                      ilm_gguf_vtype_name(x->val.arr.elem_type), (unsigned long long)x->val.arr.count,
                      ilm_gguf_vtype_name(y->val.arr.elem_type), (unsigned long long)y->val.arr.count);
            if (x->val.arr.elem_type == GGUF_STRING && x->val.arr.count == y->val.arr.count)
                for (uint64_t i = 0; i < x->val.arr.count; i++) {
                    const ilm_gguf_str *s = &x->val.arr.strs[i], *t = &y->val.arr.strs[i];
                    if (s->len != t->len || memcmp(s->ptr, t->ptr, s->len)) {
                        CHECK_MSG(0, "%s: %s[%llu] is \"%.*s\", the reference \"%.*s\"", what, x->key,
                                  (unsigned long long)i, (int)s->len, s->ptr, (int)t->len, t->ptr);
                        break;
                    }
                }
        }
        CHECK_MSG(x->raw_len == y->raw_len && !memcmp(x->raw, y->raw, x->raw_len), "%s: %s differs in its bytes",
                  what, x->key);
    }
    CHECK_MSG(n >= 12, "%s: only %lld tokenizer keys", what, (long long)n);
}

// The converted vocabulary gives the reference ids of every hf/ prompt.
static void check_prompts(const char *gguf, const char *ref_rel) {
    ilm_tokenizer *t = NULL;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_tokenizer_load_file(&t, gguf, &err) == 0, "%s: %s", gguf, err.msg);
    ilm_json *ref = t_load_json(ref_rel);
    const ilm_json *prompts = ilm_json_get(ref, "prompts");
    CHECK_MSG(prompts && prompts->len >= 3, "%s: no prompts", ref_rel);
    for (size_t i = 0; t && prompts && i < prompts->len; i++) {
        const ilm_json *p = ilm_json_at(prompts, i), *text = ilm_json_get(p, "text");
        int n_ref;
        int32_t *want = t_json_ids(ilm_json_get(p, "ids"), &n_ref);
        int32_t *ids = NULL;
        int n = 0;
        CHECK_MSG(ilm_tokenize(t, text->str, text->len, 0, &ids, &n, &err) == 0, "%s: %s", ref_rel, err.msg);
        CHECK_MSG(n == n_ref && (n == 0 || !memcmp(ids, want, (size_t)n * sizeof *ids)),
                  "%s prompt %zu: %d ids vs %d in the reference", ref_rel, i, n, n_ref);
        free(ids);
        free(want);
    }
    ilm_json_free(ref);
    ilm_tokenizer_free(t);
}

TEST(convert_tokenizer_matches_reference_ggufs) {
    // checkpoint → a GGUF the reference converter wrote from the same tokenizer files
    // (ple's checkpoint is not shipped; its tokenizer is the dense one's).
    static const char *pairs[][2] = {
        {"hf/checkpoints/dense-hf", "hf/dense-f32.gguf"},
        {"hf/checkpoints/mtp-hf", "hf/mtp-f32.gguf"},
        {"hf/checkpoints/mtp-plain-hf", "hf/mtp-plain-f32.gguf"},
        {"hf/checkpoints/dense-w4a16-hf", "hf/dense-f32.gguf"},
        {"hf/checkpoints/dense-hf", "hf/ple-f32.gguf"},
    };
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        char out[64];
        snprintf(out, sizeof out, "tok-%zu.gguf", p);
        const char *path = t_tmp(out);
        ilm_err err = {{0}};
        double t0 = ilm_now();
        int rc = convert_to(t_fixture(pairs[p][0]), path, &err);
        CHECK_MSG(rc == 0, "%s: %s", pairs[p][0], err.msg);
        CHECK_MSG(ilm_now() - t0 < 5.0, "%s: conversion took %.1f s", pairs[p][0], ilm_now() - t0);
        if (rc) continue;
        ilm_gguf *mine = NULL, *ref = NULL;
        CHECK_MSG(ilm_gguf_open(&mine, path, &err) == 0, "%s", err.msg);
        CHECK_MSG(ilm_gguf_open(&ref, t_fixture(pairs[p][1]), &err) == 0, "%s", err.msg);
        if (mine && ref) {
            CHECK_EQ(mine->n_tensors, 0);
            compare_tokenizer_keys(mine, ref, pairs[p][0]);
        }
        ilm_gguf_close(mine);
        ilm_gguf_close(ref);
        if (p == 0) {
            check_prompts(path, "hf/dense-ref.json");
            check_prompts(path, "hf/ple-ref.json");
            check_prompts(path, "hf/moe-ref.json");
        }
    }
}

// ---- synthetic checkpoints -------------------------------------------------------------------

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

// A fresh directory in the test's temp dir holding the given files (NULL text: not written).
static const char *make_dir(const char *name, const char *tokenizer, const char *config, const char *jinja) {
    const char *dir = t_tmp(name);
    mkdir(dir, 0700);
    char path[600];
    if (tokenizer) {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        write_file(path, tokenizer);
    }
    if (config) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        write_file(path, config);
    }
    if (jinja) {
        snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
        write_file(path, jinja);
    }
    return dir;
}

// A small byte-fallback BPE: 0..4 specials, <0x41>, "a", "b", "a b" (a space inside), plus two
// added tokens beyond model.vocab. Merges as [a, b] pairs.
static const char *tiny_tokenizer(const char *vocab_extra, const char *model_type) {
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"version\":\"1.0\",\"added_tokens\":["
             "{\"id\":0,\"content\":\"<pad>\",\"special\":true},{\"id\":1,\"content\":\"<eos>\",\"special\":true},"
             "{\"id\":2,\"content\":\"<bos>\",\"special\":true},{\"id\":3,\"content\":\"<unk>\",\"special\":true},"
             "{\"id\":4,\"content\":\"<|tool_call>\",\"special\":true},"
             "{\"id\":10,\"content\":\"<extra>\",\"special\":true},{\"id\":9,\"content\":\"<user>\",\"special\":false}],"
             "\"normalizer\":null,\"pre_tokenizer\":null,"
             "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<bos>\",\"type_id\":0}},"
             "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}]},"
             "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[]},"
             "\"model\":{\"type\":\"%s\",\"byte_fallback\":true,\"vocab\":{\"<pad>\":0,\"<eos>\":1,\"<bos>\":2,"
             "\"<unk>\":3,\"<|tool_call>\":4,\"<0x41>\":5,\"a\":6,\"b\":7,\"a b\":8%s},"
             "\"merges\":[[\"a\",\"b\"],[\"a \",\"b\"]]}}",
             model_type, vocab_extra);
    return buf;
}

static const ilm_gguf_kv *next_tok_kv(const ilm_gguf *g, int64_t *i) {
    while (*i < g->n_kv && !is_tok_key(g->kv[*i].key)) (*i)++;
    return *i < g->n_kv ? &g->kv[(*i)++] : NULL;
}

TEST(convert_tokenizer_follows_the_reference_rules) {
    const char *cfg =
        "{\"bos_token\":\"<bos>\",\"eos_token\":{\"content\":\"<eos>\"},\"unk_token\":\"<unk>\",\"pad_token\":\"<pad>\","
        "\"add_bos_token\":false,\"add_eos_token\":true,\"extra_special_tokens\":[\"<extra>\"],"
        "\"chat_template\":\"{{ bos_token }}config\"}";
    const char *dir = make_dir("rules", tiny_tokenizer("", "BPE"), cfg, "{{ bos_token }}jinja");
    const char *out = t_tmp("rules.gguf");
    ilm_err err = {{0}};
    CHECK_MSG(convert_to(dir, out, &err) == 0, "%s", err.msg);
    ilm_gguf *g = NULL;
    if (ilm_gguf_open(&g, out, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    static const char *order[] = {
        "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token",   // first set from the post-processor: keeps its place
        "tokenizer.ggml.add_eos_token", "tokenizer.chat_template", "tokenizer.ggml.add_space_prefix"};
    int64_t at = 0;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        const ilm_gguf_kv *kv = next_tok_kv(g, &at);
        CHECK_MSG(kv && !strcmp(kv->key, order[k]), "key %zu: %s, expected %s", k, kv ? kv->key : "(none)", order[k]);
    }
    CHECK(next_tok_kv(g, &at) == NULL);
    const ilm_gguf_kv *tokens = ilm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const ilm_gguf_kv *types = ilm_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const ilm_gguf_kv *merges = ilm_gguf_find_kv(g, "tokenizer.ggml.merges");
    CHECK(tokens && tokens->val.arr.count == 11 && types && types->val.arr.count == 11);
    if (tokens && types && tokens->val.arr.count == 11 && types->val.arr.count == 11) {
        CHECK(tokens->val.arr.strs[9].len == 6 && !memcmp(tokens->val.arr.strs[9].ptr, "<user>", 6));
        CHECK(tokens->val.arr.strs[10].len == 7 && !memcmp(tokens->val.arr.strs[10].ptr, "<extra>", 7));
        // pad eos bos unk: control; <|tool_call>: user-defined; <0x41>: byte; a b "a b": normal;
        // <user> (added, not special): user-defined; <extra> (extra_special_tokens): control.
        static const int want[11] = {3, 3, 3, 3, 4, 6, 1, 1, 1, 4, 3};
        for (int i = 0; i < 11; i++)
            CHECK_MSG(ilm_gguf_arr_int(&types->val, (uint64_t)i) == want[i], "type of %d: %lld, expected %d", i,
                      (long long)ilm_gguf_arr_int(&types->val, (uint64_t)i), want[i]);
    }
    CHECK(merges && merges->val.arr.count == 2);
    if (merges && merges->val.arr.count == 2) {
        CHECK(merges->val.arr.strs[0].len == 3 && !memcmp(merges->val.arr.strs[0].ptr, "a b", 3));
        // a space inside a part is written as U+0120
        CHECK(merges->val.arr.strs[1].len == 5 && !memcmp(merges->val.arr.strs[1].ptr, "a\xC4\xA0 b", 5));
    }
    bool add_bos = false, add_eos = false;
    char *tmpl = NULL;
    CHECK(ilm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &err) == 0 && add_bos);
    CHECK(ilm_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, &err) == 0 && add_eos);
    CHECK(ilm_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &err) == 0);
    CHECK_STR(tmpl, "{{ bos_token }}config");   // tokenizer_config's key wins over the .jinja file
    free(tmpl);
    ilm_gguf_close(g);

    // Without "chat_template" in tokenizer_config.json the .jinja file is the template.
    dir = make_dir("jinja", tiny_tokenizer("", "BPE"), "{\"bos_token\":\"<bos>\"}", "{{ bos_token }}jinja");
    CHECK_MSG(convert_to(dir, out, &err) == 0, "%s", err.msg);
    if (ilm_gguf_open(&g, out, &err) == 0) {
        tmpl = NULL;
        CHECK(ilm_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &err) == 0);
        CHECK_STR(tmpl, "{{ bos_token }}jinja");
        free(tmpl);
        ilm_gguf_close(g);
    }
}

static void expect_error(const char *name, const char *tokenizer, const char *want) {
    const char *dir = make_dir(name, tokenizer, "{\"bos_token\":\"<bos>\"}", NULL);
    ilm_gguf_writer *w = ilm_gguf_writer_new(NULL);
    ilm_err err = {{0}};
    int rc = w ? ilm_convert_tokenizer(w, dir, &err) : 0;
    CHECK_MSG(rc != 0, "%s: converted", name);
    CHECK_MSG(strstr(err.msg, want) != NULL, "%s: error \"%s\" does not say \"%s\"", name, err.msg, want);
    CHECK_MSG(strstr(err.msg, dir) != NULL, "%s: error \"%s\" does not name the directory", name, err.msg);
    CHECK_MSG(!strchr(err.msg, '\n'), "%s: error has several lines", name);
    ilm_gguf_writer_free(w);
}

TEST(convert_tokenizer_rejects_bad_checkpoints) {
    expect_error("missing", NULL, "tokenizer.json: cannot open");
    expect_error("unigram", tiny_tokenizer("", "Unigram"), "model.type is \"Unigram\"");
    expect_error("malformed", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}}}", "malformed JSON");
    expect_error("gap", tiny_tokenizer(",\"c\":12", "BPE"), "without gaps");
    expect_error("duplicate", tiny_tokenizer(",\"c\":7", "BPE"), "given twice");
    expect_error("not_int", tiny_tokenizer(",\"c\":\"9\"", "BPE"), "not an integer id");
    expect_error("no_fallback", "{\"model\":{\"type\":\"BPE\",\"byte_fallback\":false,\"vocab\":{\"a\":0}},"
                                "\"decoder\":{\"type\":\"Sequence\"}}", "byte_fallback");
}
