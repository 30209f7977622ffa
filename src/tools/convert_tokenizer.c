// convert_tokenizer.c — HF tokenizer.json + tokenizer_config.json → the GGUF tokenizer keys, as
// the reference converter writes them for gemma4 (docs/gemma4.md §3.6): ik_llama.cpp's
// Gemma4 set_vocab over gguf-py's LlamaHfVocab (tokens, scores, types) and SpecialVocab
// (merges, special ids, add_* flags, chat template).
// Length: the reference's rules are one sequence (keys are collected in its order, then written), and
// the comment below documents each of them; splitting would scatter that order over files.
//
// What the reference does, and this file reproduces:
//   tokens   model.vocab by id (ids 0..N-1, no gaps), then added_tokens with ids >= N in id order.
//   scores   -1000 for every token.
//   types    <0xHH> (either hex case) in model.vocab → byte (6); otherwise control (3) when the id
//            is one of transformers' "all special tokens" (the bos/eos/unk/sep/pad/cls/mask
//            strings of tokenizer_config.json, additional_special_tokens, extra_special_tokens),
//            else normal (1) — the "special" flag of added_tokens does not count. Added tokens
//            beyond model.vocab: control if all-special, else user-defined (4). The seven Gemma 4
//            tool/channel markers are forced to user-defined.
//   merges   "a b" strings as given; [a, b] pairs joined by one space, spaces inside a part
//            written as U+0120. No key when there are no merges.
//   ids      for bos, eos, unk, sep, pad, cls, mask (+ eot when TemplateProcessing ends with a
//            token that is not eos): the first added_tokens entry whose content is the
//            tokenizer_config string; then config.json's <typ>_token_id integers for the types
//            still unset. cls has no GGUF key in the reference (skipped).
//   flags    add_bos/add_eos(/add_sep) from post_processor and tokenizer_config's add_<typ>_token,
//            then add_space_prefix = false and add_bos_token = true (a key set twice keeps its
//            first position and takes the last value, as in gguf-py's writer).
//   template only with a non-empty tokenizer_config.json: its "chat_template" when the key is
//            present, else chat_template.jinja, else chat_template.json's; written before
//            add_space_prefix. A list of named templates gives tokenizer.chat_template.NAME
//            keys, tokenizer.chat_templates and the "default" one as tokenizer.chat_template.
// Deliberate differences: malformed input that the reference would mis-number or write anyway
// (gaps or duplicate ids, special ids out of range, texts with NUL bytes) is an error here.
#include "tools/convert_tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/json.h"

#define TOK_NORMAL 1
#define TOK_CONTROL 3
#define TOK_USER_DEFINED 4
#define TOK_BYTE 6

// The special-token kinds of gguf-py's SpecialVocab, in its order, with their GGUF keys
// (NULL: the reference writer has no key for it).
enum { SP_BOS, SP_EOS, SP_UNK, SP_SEP, SP_PAD, SP_CLS, SP_MASK, SP_EOT, SP_N };
static const char *const sp_name[SP_N] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask", "eot"};
static const char *const sp_id_key[SP_N] = {
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id", NULL,
    "tokenizer.ggml.mask_token_id", "tokenizer.ggml.eot_token_id"};
static const char *const sp_add_key[SP_N] = {
    "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", NULL, "tokenizer.ggml.add_sep_token",
    NULL, NULL, NULL, NULL};

// Tokens ik's Gemma4 set_vocab forces to user-defined (rendered in output).
static const char *const visible_tokens[] = {
    "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>"};

// The keys after the merges, kept in memory first so that a key set twice keeps its first
// position (gguf-py's kv dict) before anything is written.
typedef struct {
    char *key;
    int type;                  // GGUF_U32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY (of strings)
    uint32_t u32;
    bool b;
    const char *str;           // borrowed (JSON or file text)
    const char **strs;         // owned array of borrowed strings
    uint64_t n_strs;
} late_kv;

typedef struct {
    const char *dir;
    ilm_json *tok, *cfg, *mcfg, *tmpl_json;   // tokenizer.json, tokenizer_config.json, config.json, chat_template.json
    char *jinja;                              // chat_template.jinja
    int32_t n_base, n_vocab;
    const ilm_json **text;                    // [n_base] model.vocab node of each id (text = its key)
    const ilm_json **added_hi;                // added tokens with id >= n_base, in id order
    late_kv *kv;
    int n_kv, cap_kv;
    ilm_err *err;
} conv;

// ---- small helpers ---------------------------------------------------------------------------

static bool is_str(const ilm_json *j) { return j && j->type == JSON_STR; }

static bool json_int(const ilm_json *j, int64_t *out) {
    if (!j || j->type != JSON_NUM || j->num != (double)(int64_t)j->num) return false;
    *out = (int64_t)j->num;
    return true;
}

static bool json_streq(const ilm_json *j, const char *s) {
    return is_str(j) && j->len == strlen(s) && !memcmp(j->str, s, j->len);
}

// A token string as tokenizer_config writes it: "text" or {"content": "text", ...}.
static const ilm_json *token_string(const ilm_json *v) {
    if (is_str(v)) return v;
    if (v && v->type == JSON_OBJ) {
        const ilm_json *c = ilm_json_get(v, "content");
        if (is_str(c)) return c;
    }
    return NULL;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// Reads and parses DIR/NAME; *out = NULL when the file is absent and !required.
static int load_json(conv *c, const char *name, bool required, ilm_json **out) {
    char path[4096];
    *out = NULL;
    if (snprintf(path, sizeof path, "%s/%s", c->dir, name) >= (int)sizeof path)
        return ilm_fail(c->err, "%s: path too long", c->dir);
    if (!required && !file_exists(path)) return 0;
    char *text;
    size_t n;
    if (ilm_read_file(path, &text, &n, c->err)) return -1;
    *out = ilm_json_parse(text, n, c->err);
    free(text);
    if (!*out) return ilm_fail_prefix(c->err, "%s", path);
    return 0;
}

static int add_kv(conv *c, const char *key, int type, late_kv **out) {
    for (int i = 0; i < c->n_kv; i++)
        if (!strcmp(c->kv[i].key, key)) {   // set again: same position, new value
            free(c->kv[i].strs);
            char *k = c->kv[i].key;
            memset(&c->kv[i], 0, sizeof c->kv[i]);
            c->kv[i].key = k;
            c->kv[i].type = type;
            *out = &c->kv[i];
            return 0;
        }
    if (c->n_kv == c->cap_kv) {
        int cap = c->cap_kv ? 2 * c->cap_kv : 16;
        late_kv *kv = realloc(c->kv, (size_t)cap * sizeof *kv);
        if (!kv) return ilm_fail(c->err, "out of memory");
        c->kv = kv;
        c->cap_kv = cap;
    }
    late_kv *kv = &c->kv[c->n_kv];
    memset(kv, 0, sizeof *kv);
    if (!(kv->key = strdup(key))) return ilm_fail(c->err, "out of memory");
    c->n_kv++;
    kv->type = type;
    *out = kv;
    return 0;
}

static int add_u32(conv *c, const char *key, uint32_t v) {
    late_kv *kv;
    if (add_kv(c, key, GGUF_U32, &kv)) return -1;
    kv->u32 = v;
    return 0;
}

static int add_bool(conv *c, const char *key, bool v) {
    late_kv *kv;
    if (add_kv(c, key, GGUF_BOOL, &kv)) return -1;
    kv->b = v;
    return 0;
}

static int add_str(conv *c, const char *key, const ilm_json *s, const char *what) {
    if (memchr(s->str, 0, s->len)) return ilm_fail(c->err, "%s/%s: contains a NUL byte", c->dir, what);
    late_kv *kv;
    if (add_kv(c, key, GGUF_STRING, &kv)) return -1;
    kv->str = s->str;
    return 0;
}

// ---- vocabulary --------------------------------------------------------------------------------

// Id of an added_tokens entry (validated in read_vocab), -1 if it has none.
static int64_t added_id(const ilm_json *a) {
    int64_t id;
    return json_int(ilm_json_get(a, "id"), &id) ? id : -1;
}

static int added_cmp(const void *a, const void *b) {
    int64_t x = added_id(*(const ilm_json *const *)a), y = added_id(*(const ilm_json *const *)b);
    return (x > y) - (x < y);
}

// model.vocab by id (0..N-1 exactly), then added_tokens beyond it (N, N+1, ... exactly).
static int read_vocab(conv *c, const ilm_json *model, const ilm_json *added) {
    const ilm_json *vocab = ilm_json_get(model, "vocab");
    if (!vocab || vocab->type != JSON_OBJ || vocab->len == 0)
        return ilm_fail(c->err, "%s/tokenizer.json: model.vocab is not a non-empty object", c->dir);
    if (vocab->len > INT32_MAX / 2) return ilm_fail(c->err, "%s/tokenizer.json: model.vocab too large", c->dir);
    c->n_base = (int32_t)vocab->len;
    size_t n_hi = 0;
    for (size_t i = 0; added && i < added->len; i++) {
        int64_t id;
        const ilm_json *a = &added->items[i];
        if (a->type != JSON_OBJ || !json_int(ilm_json_get(a, "id"), &id) || id < 0 ||
            !is_str(ilm_json_get(a, "content")))
            return ilm_fail(c->err, "%s/tokenizer.json: added_tokens[%zu] needs an integer id >= 0 and a content string",
                            c->dir, i);
        if (id >= c->n_base) n_hi++;
    }
    if (n_hi > (size_t)(INT32_MAX - c->n_base)) return ilm_fail(c->err, "%s/tokenizer.json: too many tokens", c->dir);
    c->n_vocab = c->n_base + (int32_t)n_hi;
    c->text = calloc((size_t)c->n_vocab, sizeof *c->text);
    c->added_hi = calloc(n_hi ? n_hi : 1, sizeof *c->added_hi);
    if (!c->text || !c->added_hi) return ilm_fail(c->err, "out of memory");
    for (size_t i = 0; i < vocab->len; i++) {
        int64_t id;
        const char *k = vocab->keys[i];
        if (!json_int(&vocab->items[i], &id))
            return ilm_fail(c->err, "%s/tokenizer.json: model.vocab[\"%.64s\"] is not an integer id", c->dir, k);
        if (id < 0 || id >= c->n_base)
            return ilm_fail(c->err, "%s/tokenizer.json: model.vocab has %d tokens but \"%.64s\" has id %lld "
                            "(ids must be 0..%d without gaps)", c->dir, c->n_base, k, (long long)id, c->n_base - 1);
        if (c->text[id])
            return ilm_fail(c->err, "%s/tokenizer.json: model.vocab id %lld is given twice (\"%.64s\" and \"%.64s\")",
                            c->dir, (long long)id, vocab->keys[c->text[id] - vocab->items], k);
        c->text[id] = &vocab->items[i];   // the id's node; its key (same index) is the text
    }
    n_hi = 0;
    for (size_t i = 0; added && i < added->len; i++) {
        if (added_id(&added->items[i]) >= c->n_base) c->added_hi[n_hi++] = &added->items[i];
    }
    qsort(c->added_hi, n_hi, sizeof *c->added_hi, added_cmp);
    for (size_t i = 0; i < n_hi; i++) {
        int64_t id = added_id(c->added_hi[i]);
        if (id != c->n_base + (int64_t)i)
            return ilm_fail(c->err, "%s/tokenizer.json: added token \"%.64s\" has id %lld, expected %lld "
                            "(ids after model.vocab must follow it without gaps or duplicates)", c->dir,
                            ilm_json_get(c->added_hi[i], "content")->str, (long long)id,
                            (long long)(c->n_base + (int64_t)i));
    }
    return 0;
}

// Text of token id (NUL-terminated) and its length.
static const char *tok_text(const conv *c, const ilm_json *vocab, int32_t id, size_t *len) {
    if (id < c->n_base) {
        const char *k = vocab->keys[c->text[id] - vocab->items];
        *len = strlen(k);   // (json.c keeps keys NUL-terminated: a "\u0000" in a key ends it)
        return k;
    }
    const ilm_json *s = ilm_json_get(c->added_hi[id - c->n_base], "content");
    *len = s->len;
    return s->str;
}

// Id of a token text as transformers' convert_tokens_to_ids sees it (vocabulary with the
// added tokens), -1 if absent.
static int32_t find_text(const ilm_json *vocab, const ilm_json *added, const ilm_json *s) {
    for (size_t i = 0; added && i < added->len; i++)
        if (json_streq(ilm_json_get(&added->items[i], "content"), s->str)) return (int32_t)added_id(&added->items[i]);
    if (memchr(s->str, 0, s->len)) return -1;
    for (size_t i = 0; i < vocab->len; i++)
        if (!strcmp(vocab->keys[i], s->str)) return (int32_t)vocab->items[i].num;
    return -1;
}

static void mark_special(const conv *c, const ilm_json *vocab, const ilm_json *added, const ilm_json *s,
                         uint8_t *special) {
    if (!s) return;
    int32_t id = find_text(vocab, added, s);
    if (id >= 0 && id < c->n_vocab) special[id] = 1;
}

static bool is_byte_token(const char *s, size_t n) {
    static const char hex[] = "0123456789abcdefABCDEF";
    return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && s[3] && s[4] && strchr(hex, s[3]) && strchr(hex, s[4]);
}

static int write_tokens(conv *c, ilm_gguf_writer *w, const ilm_json *added) {
    const ilm_json *vocab = ilm_json_get(ilm_json_get(c->tok, "model"), "vocab");
    size_t n = (size_t)c->n_vocab;
    uint8_t *special = calloc(n, 1);
    const char **strs = malloc(n * sizeof *strs);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    int rc = -1;
    if (!special || !strs || !scores || !types) {
        ilm_fail(c->err, "out of memory");
        goto out;
    }
    // transformers' all_special_tokens: the named special tokens and the extra lists.
    if (c->cfg) {
        for (int t = SP_BOS; t <= SP_MASK; t++) {
            char key[32];
            snprintf(key, sizeof key, "%s_token", sp_name[t]);
            mark_special(c, vocab, added, token_string(ilm_json_get(c->cfg, key)), special);
        }
        static const char *const lists[] = {"additional_special_tokens", "extra_special_tokens"};
        for (size_t l = 0; l < 2; l++) {
            const ilm_json *a = ilm_json_get(c->cfg, lists[l]);
            for (size_t i = 0; a && (a->type == JSON_ARR || a->type == JSON_OBJ) && i < a->len; i++) {
                const ilm_json *v = &a->items[i];
                if (v->type == JSON_ARR)   // a named list of tokens
                    for (size_t k = 0; k < v->len; k++) mark_special(c, vocab, added, token_string(&v->items[k]), special);
                else mark_special(c, vocab, added, token_string(v), special);
            }
        }
    }
    for (int32_t id = 0; id < c->n_vocab; id++) {
        size_t len;
        const char *s = tok_text(c, vocab, id, &len);
        if (memchr(s, 0, len)) {
            ilm_fail(c->err, "%s/tokenizer.json: token %d contains a NUL byte", c->dir, id);
            goto out;
        }
        strs[id] = s;
        scores[id] = -1000.0f;
        if (id < c->n_base) types[id] = is_byte_token(s, len) ? TOK_BYTE : special[id] ? TOK_CONTROL : TOK_NORMAL;
        else types[id] = special[id] ? TOK_CONTROL : TOK_USER_DEFINED;
        for (size_t v = 0; v < sizeof visible_tokens / sizeof visible_tokens[0]; v++)
            if (!strcmp(s, visible_tokens[v])) types[id] = TOK_USER_DEFINED;
    }
    if (ilm_gguf_writer_add_str(w, "tokenizer.ggml.model", "gemma4", c->err) ||
        ilm_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", strs, n, c->err) ||
        ilm_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, n, c->err) ||
        ilm_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, n, c->err))
        goto out;
    rc = 0;
out:
    free(special);
    free(strs);
    free(scores);
    free(types);
    return rc;
}

// ---- merges ------------------------------------------------------------------------------------

// The merge strings (*strs borrowed from the JSON or in *arena); *n = 0 when there are none
// (the reference then writes no key).
static int read_merges(conv *c, const ilm_json *model, const char ***strs, size_t *n, char **arena) {
    const ilm_json *m = ilm_json_get(model, "merges");
    *strs = NULL;
    *n = 0;
    *arena = NULL;
    if (!m || m->type != JSON_ARR || m->len == 0) return 0;
    bool pairs = m->items[0].type == JSON_ARR;
    size_t bytes = 0;
    for (size_t i = 0; i < m->len; i++) {
        const ilm_json *e = &m->items[i];
        size_t need;
        if (!pairs && is_str(e)) need = e->len + 1;
        else if (pairs && e->type == JSON_ARR && e->len == 2 && is_str(&e->items[0]) && is_str(&e->items[1])) {
            need = 2;
            for (int k = 0; k < 2; k++) {
                need += e->items[k].len;
                for (size_t b = 0; b < e->items[k].len; b++) need += e->items[k].str[b] == ' ';   // ' ' → U+0120 (2 bytes)
            }
        } else {
            return ilm_fail(c->err, "%s/tokenizer.json: model.merges[%zu] is not %s", c->dir, i,
                            pairs ? "a pair of strings like merges[0]" : "a string like merges[0]");
        }
        bool nul = pairs ? memchr(e->items[0].str, 0, e->items[0].len) || memchr(e->items[1].str, 0, e->items[1].len)
                         : memchr(e->str, 0, e->len) != NULL;
        if (nul) return ilm_fail(c->err, "%s/tokenizer.json: model.merges[%zu] contains a NUL byte", c->dir, i);
        if (!ilm_add_ok(bytes, need, &bytes)) return ilm_fail(c->err, "%s: merges too large", c->dir);
    }
    *strs = malloc(m->len * sizeof **strs);
    *arena = pairs ? malloc(bytes) : NULL;
    if (!*strs || (pairs && !*arena)) return ilm_fail(c->err, "out of memory");
    size_t at = 0;
    for (size_t i = 0; i < m->len; i++) {
        const ilm_json *e = &m->items[i];
        if (!pairs) {
            (*strs)[i] = e->str;
            continue;
        }
        char *o = *arena;
        (*strs)[i] = o + at;
        for (int k = 0; k < 2; k++) {
            const ilm_json *p = &e->items[k];
            if (k) o[at++] = ' ';
            for (size_t b = 0; b < p->len; b++) {
                if (p->str[b] == ' ') { o[at++] = (char)0xC4; o[at++] = (char)0xA0; }
                else o[at++] = p->str[b];
            }
        }
        o[at++] = 0;
    }
    *n = m->len;
    return 0;
}

// ---- special ids, flags, chat template ---------------------------------------------------------

static int special_keys(conv *c, const ilm_json *added) {
    // The special-token strings, with the reference's fallbacks (bos ← cls, eos ← sep) and its
    // reading of a TemplateProcessing post-processor.
    const ilm_json *str[SP_N] = {0};
    int add[SP_N];                      // -1 unset, else the flag
    int add_order[SP_N], n_add = 0;     // first-insertion order of the flags
    bool have_eot = false;
    for (int t = 0; t < SP_N; t++) add[t] = -1;
    bool cfg = c->cfg && c->cfg->type == JSON_OBJ && c->cfg->len > 0;
    if (cfg)
        for (int t = SP_BOS; t <= SP_MASK; t++) {
            char key[32];
            snprintf(key, sizeof key, "%s_token", sp_name[t]);
            str[t] = token_string(ilm_json_get(c->cfg, key));
            if (str[t] && str[t]->len == 0) str[t] = NULL;   // Python: an empty string is unset
        }
    if (!str[SP_BOS] && str[SP_CLS] && cfg) str[SP_BOS] = str[SP_CLS];
    if (!str[SP_EOS] && str[SP_SEP] && cfg) str[SP_EOS] = str[SP_SEP];
#define SET_ADD(t, v) do { if (add[t] < 0) add_order[n_add++] = (t); add[t] = (v); } while (0)
    const ilm_json *post = ilm_json_get(c->tok, "post_processor");
    if (post && post->type == JSON_OBJ) {
        const ilm_json *procs = ilm_json_get(post, "processors");
        size_t np = procs && procs->type == JSON_ARR ? procs->len : 1;
        for (size_t p = 0; p < np; p++) {
            const ilm_json *pr = procs && procs->type == JSON_ARR ? &procs->items[p] : post;
            const ilm_json *type = ilm_json_get(pr, "type");
            if (json_streq(type, "RobertaProcessing")) {
                SET_ADD(SP_BOS, 1);
                SET_ADD(SP_EOS, 1);
                SET_ADD(SP_SEP, 1);
                continue;
            }
            if (!json_streq(type, "TemplateProcessing")) continue;
            const ilm_json *single = ilm_json_get(pr, "single");
            if (!single || single->type != JSON_ARR || single->len <= 1) continue;
            const ilm_json *first = ilm_json_get(ilm_json_get(&single->items[0], "SpecialToken"), "id");
            const ilm_json *last = ilm_json_get(ilm_json_get(&single->items[single->len - 1], "SpecialToken"), "id");
            if (is_str(first) && first->len) {
                if (!cfg) str[SP_BOS] = first;
                SET_ADD(SP_BOS, (str[SP_BOS] && json_streq(first, str[SP_BOS]->str)) ||
                                    (str[SP_CLS] && json_streq(first, str[SP_CLS]->str)));
            }
            if (is_str(last) && last->len) {
                if (!cfg) str[SP_EOS] = last;
                else if (!str[SP_EOS] || !json_streq(last, str[SP_EOS]->str)) {
                    // The reference keeps the configured eos as eot and takes this one as eos.
                    str[SP_EOT] = str[SP_EOS];
                    have_eot = true;
                    str[SP_EOS] = last;
                }
                SET_ADD(SP_EOS, 1);
            }
            // (The pair template only decides add_sep: not used by gemma4 tokenizers.)
        }
    }
    // Special ids: tokenizer_config strings found among added_tokens, then config.json ids.
    int64_t id[SP_N];
    int order[SP_N], n_ids = 0;
    int n_types = have_eot ? SP_N : SP_EOT;
    for (int t = 0; t < SP_N; t++) id[t] = -1;
    if (cfg) {
        for (int t = 0; t < n_types; t++) {
            char key[32];
            snprintf(key, sizeof key, "add_%s_token", sp_name[t]);
            const ilm_json *a = ilm_json_get(c->cfg, key);
            if (a && a->type == JSON_BOOL) SET_ADD(t, a->num != 0);
            if (!str[t]) continue;
            for (size_t i = 0; added && i < added->len; i++)
                if (json_streq(ilm_json_get(&added->items[i], "content"), str[t]->str)) {
                    id[t] = added_id(&added->items[i]);
                    order[n_ids++] = t;
                    break;
                }
        }
    }
    for (int t = 0; c->mcfg && t < n_types; t++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token_id", sp_name[t]);
        const ilm_json *v = ilm_json_get(c->mcfg, key);
        int64_t x;
        if (id[t] >= 0 || !json_int(v, &x)) continue;
        if (x < 0) return ilm_fail(c->err, "%s/config.json: invalid value for %s: %lld", c->dir, key, (long long)x);
        id[t] = x;
        order[n_ids++] = t;
    }
#undef SET_ADD
    for (int i = 0; i < n_ids; i++) {
        int t = order[i];
        if (!sp_id_key[t]) continue;
        if (id[t] >= c->n_vocab)
            return ilm_fail(c->err, "%s: %s token id %lld is out of range (vocabulary of %d)", c->dir, sp_name[t],
                            (long long)id[t], c->n_vocab);
        if (add_u32(c, sp_id_key[t], (uint32_t)id[t])) return -1;
    }
    for (int i = 0; i < n_add; i++)
        if (sp_add_key[add_order[i]] && add_bool(c, sp_add_key[add_order[i]], add[add_order[i]] != 0)) return -1;
    return 0;
}

static int chat_template_keys(conv *c) {
    if (!c->cfg || c->cfg->type != JSON_OBJ || c->cfg->len == 0) return 0;   // as the reference
    char path[4096];
    snprintf(path, sizeof path, "%s/chat_template.jinja", c->dir);
    ilm_json alt = {0};
    const ilm_json *tmpl = NULL;
    if (file_exists(path)) {
        size_t n;
        if (ilm_read_file(path, &c->jinja, &n, c->err)) return -1;
        if (memchr(c->jinja, 0, n)) return ilm_fail(c->err, "%s: contains a NUL byte", path);
        alt.type = JSON_STR;
        alt.str = c->jinja;
        alt.len = n;
        tmpl = &alt;
    } else {
        if (load_json(c, "chat_template.json", false, &c->tmpl_json)) return -1;
        tmpl = ilm_json_get(c->tmpl_json, "chat_template");
    }
    // tokenizer_config's key wins when present (even null), as in the reference.
    for (size_t i = 0; i < c->cfg->len; i++)
        if (!strcmp(c->cfg->keys[i], "chat_template")) tmpl = &c->cfg->items[i];
    if (!tmpl) return 0;
    if (is_str(tmpl)) {
        if (tmpl == &alt) {   // alt lives on this stack frame: point at the file text itself
            late_kv *kv;
            if (add_kv(c, "tokenizer.chat_template", GGUF_STRING, &kv)) return -1;
            kv->str = c->jinja;
            return 0;
        }
        return add_str(c, "tokenizer.chat_template", tmpl, "chat_template");
    }
    if (tmpl->type != JSON_ARR) return 0;   // the reference ignores other types
    const ilm_json *def = NULL;
    const char **names = calloc(tmpl->len ? tmpl->len : 1, sizeof *names);
    if (!names) return ilm_fail(c->err, "out of memory");
    size_t n_names = 0;
    for (size_t i = 0; i < tmpl->len; i++) {
        const ilm_json *name = ilm_json_get(&tmpl->items[i], "name");
        const ilm_json *t = ilm_json_get(&tmpl->items[i], "template");
        if (!is_str(name) || !name->len || !t || t->type == JSON_NULL) continue;
        if (!is_str(t)) { free(names); return ilm_fail(c->err, "%s: chat_template[%zu].template is not a string", c->dir, i); }
        // Names keep ASCII letters and digits; anything else becomes '_'.
        for (size_t b = 0; b < name->len; b++) {
            char ch = name->str[b];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) name->str[b] = '_';
        }
        if (!strcmp(name->str, "default")) { def = t; continue; }
        char key[512];
        if (snprintf(key, sizeof key, "tokenizer.chat_template.%s", name->str) >= (int)sizeof key) {
            free(names);
            return ilm_fail(c->err, "%s: chat template name too long", c->dir);
        }
        if (add_str(c, key, t, "chat_template")) { free(names); return -1; }
        bool dup = false;
        for (size_t k = 0; k < n_names; k++) dup |= !strcmp(names[k], name->str);
        if (!dup) names[n_names++] = name->str;
    }
    if (n_names) {
        late_kv *kv;
        if (add_kv(c, "tokenizer.chat_templates", GGUF_ARRAY, &kv)) { free(names); return -1; }
        kv->strs = names;
        kv->n_strs = n_names;
    } else {
        free(names);
    }
    return def ? add_str(c, "tokenizer.chat_template", def, "chat_template") : 0;
}

static int write_late(conv *c, ilm_gguf_writer *w) {
    for (int i = 0; i < c->n_kv; i++) {
        const late_kv *kv = &c->kv[i];
        int rc = 0;
        switch (kv->type) {
        case GGUF_U32: rc = ilm_gguf_writer_add_u32(w, kv->key, kv->u32, c->err); break;
        case GGUF_BOOL: rc = ilm_gguf_writer_add_bool(w, kv->key, kv->b, c->err); break;
        case GGUF_STRING: rc = ilm_gguf_writer_add_str(w, kv->key, kv->str, c->err); break;
        default: rc = ilm_gguf_writer_add_str_arr(w, kv->key, kv->strs, kv->n_strs, c->err); break;
        }
        if (rc) return -1;
    }
    return 0;
}

int ilm_convert_tokenizer(ilm_gguf_writer *w, const char *hf_dir, ilm_err *err) {
    conv c = {.dir = hf_dir, .err = err};
    const char **merges = NULL;
    char *merge_arena = NULL;
    size_t n_merges = 0;
    int rc = -1;
    if (load_json(&c, "tokenizer.json", true, &c.tok)) goto out;
    const ilm_json *model = ilm_json_get(c.tok, "model");
    const ilm_json *type = ilm_json_get(model, "type");
    if (!model || model->type != JSON_OBJ) {
        ilm_fail(err, "%s/tokenizer.json: no \"model\" object", hf_dir);
        goto out;
    }
    if (!json_streq(type, "BPE")) {
        ilm_fail(err, "%s/tokenizer.json: model.type is \"%.32s\"; only BPE tokenizers (Gemma 4) convert", hf_dir,
                 is_str(type) ? type->str : "?");
        goto out;
    }
    const ilm_json *fallback = ilm_json_get(model, "byte_fallback");
    if (!fallback || fallback->type != JSON_BOOL || !fallback->num) {
        ilm_fail(err, "%s/tokenizer.json: model.byte_fallback is not true (not a Gemma-style BPE)", hf_dir);
        goto out;
    }
    if (!json_streq(ilm_json_get(ilm_json_get(c.tok, "decoder"), "type"), "Sequence")) {
        ilm_fail(err, "%s/tokenizer.json: decoder.type is not \"Sequence\" (not a Gemma-style BPE)", hf_dir);
        goto out;
    }
    const ilm_json *added = ilm_json_get(c.tok, "added_tokens");
    if (added && added->type != JSON_ARR) {
        ilm_fail(err, "%s/tokenizer.json: added_tokens is not an array", hf_dir);
        goto out;
    }
    if (load_json(&c, "tokenizer_config.json", false, &c.cfg) || load_json(&c, "config.json", false, &c.mcfg))
        goto out;
    if (c.cfg && c.cfg->type != JSON_OBJ) {
        ilm_fail(err, "%s/tokenizer_config.json: not a JSON object", hf_dir);
        goto out;
    }
    if (read_vocab(&c, model, added) || special_keys(&c, added) || chat_template_keys(&c)) goto out;
    if (add_bool(&c, "tokenizer.ggml.add_space_prefix", false) || add_bool(&c, "tokenizer.ggml.add_bos_token", true))
        goto out;
    // Everything is read and checked before the first key is written.
    if (read_merges(&c, model, &merges, &n_merges, &merge_arena) || write_tokens(&c, w, added)) goto out;
    if (n_merges && ilm_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", merges, n_merges, err)) goto out;
    if (write_late(&c, w)) goto out;
    rc = 0;
out:
    for (int i = 0; i < c.n_kv; i++) {
        free(c.kv[i].key);
        free(c.kv[i].strs);
    }
    free(c.kv);
    free(merges);
    free(merge_arena);
    free(c.text);
    free(c.added_hi);
    free(c.jinja);
    ilm_json_free(c.tok);
    ilm_json_free(c.cfg);
    ilm_json_free(c.mcfg);
    ilm_json_free(c.tmpl_json);
    return rc;
}
