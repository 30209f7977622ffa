// test_constrain.c — the JSON automaton on byte strings (JSON and schema cases), unsupported
// schemas, the token mask against brute force (pycoder's 4096 tokens, the real 262k vocabulary),
// constrained generation (always parses and validates; sampled and greedy; with and without the
// drafter) and lossless greedy speculative decoding under the constraint.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/json.h"
#include "gen/constrain.h"
#include "gen/engine.h"
#include "gen/sampler.h"
#include "gen/scheduler.h"
#include "gen/tokenizer.h"
#include "gen/toolcall.h"
#include "fixture_util.h"
#include "harness.h"
#include "model/drafter.h"

#define PYCODER "models/pycoder-q8_0.gguf"
#define PYCODER_MTP "models/pycoder-mtp-q8_0.gguf"

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},\"maxItems\":3},\"ok\":{\"type\":\"boolean\"},"
    "\"x\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"null\"},{\"type\":\"object\",\"properties\":{\"k\":{\"const\":1}},"
    "\"required\":[\"k\"]}]}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";

static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"
    "\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"search\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"q\":{\"type\":\"string\"},\"filters\":{\"type\":\"object\",\"properties\":{\"lang\":{\"type\":\"string\"}}},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2},\"ok\":{\"type\":\"boolean\"}},"
    "\"required\":[\"q\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}]";

static const char *TOOLS_GEN =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"city\":{\"enum\":[\"Paris\",\"Oslo\",\"Lima\"]},\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"
    "\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"count\",\"parameters\":{\"properties\":"
    "{\"n\":{\"type\":\"integer\"},\"flag\":{\"type\":\"boolean\"},\"xs\":{\"type\":\"array\",\"items\":"
    "{\"type\":\"number\"},\"maxItems\":3}},\"required\":[\"n\",\"flag\"],\"additionalProperties\":false}}}]";

// Whole text accepted (and complete) by the fresh constraint c, which is freed; c NULL: the
// failure in err is recorded, -1.
static int accepts_whole(ilm_constraint *c, const ilm_err *err, const char *text) {
    if (!c) {
        t_fail(__FILE__, __LINE__, "%s", err->msg);
        return -1;
    }
    int r = ilm_constraint_feed(c, text, strlen(text)) == 0 && ilm_constraint_done(c);
    ilm_constraint_free(c);
    return r;
}

// ... of a constraint of schema.
static int accepts(const char *schema, const char *text) {
    ilm_err err;
    return accepts_whole(ilm_constraint_new(NULL, schema, &err), &err, text);
}

TEST(constrain_json_object_bytes) {
    const char *good[] = {"{}", "{ }", "{\"a\":1}", "{\"a\":[1,2.5,-3e+2,true,false,null,\"x\"],\"b\":{\"c\":{}}}",
                          "{\n  \"k\": \"\\u00e9\\n\\\"\",\n  \"z\": -0.0E-1\n}", "{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":0}",
                          "  {\"a\":[]}"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECK_MSG(accepts(NULL, good[i]) == 1, "rejected %s", good[i]);
    const char *bad[] = {"[]", "1", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":tru}",
                         "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
                         "{} ", "{}{}", "{\"a\":[1 2]}", "{'a':1}", "{\"a\":\"\\u12g4\"}", "{\"a\":-}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(accepts(NULL, bad[i]) == 0, "accepted %s", bad[i]);
    // endless whitespace is cut off
    char ws[80] = "{";
    memset(ws + 1, ' ', 40);
    CHECK(accepts(NULL, strcat(ws, "}")) == 0);
}

TEST(constrain_schema_bytes) {
    const char *good[] = {"{\"name\":\"x\",\"age\":3}", "{\"name\":\"\",\"age\":-12,\"tags\":[\"a\",\"b\",\"a\"],\"ok\":true}",
                          "{\"name\":\"n\",\"age\":0,\"ok\":false,\"x\":null}", "{\"name\":\"n\",\"age\":1,\"x\":2.5}",
                          "{\"name\":\"n\",\"age\":1,\"x\":{\"k\":1}}", "{ \"name\" : \"n\" , \"age\" : 1 }"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_MSG(accepts(SCHEMA, good[i]) == 1, "rejected %s", good[i]);
    const char *bad[] = {"{\"age\":3,\"name\":\"x\"}", "{\"name\":\"x\"}", "{\"name\":\"x\",\"age\":3.5}",
                         "{\"name\":\"x\",\"age\":3,\"tags\":[\"c\"]}", "{\"name\":\"x\",\"age\":3,\"tags\":[\"a\",\"a\",\"a\",\"a\"]}",
                         "{\"name\":\"x\",\"age\":3,\"extra\":1}", "{\"name\":1,\"age\":3}", "{\"name\":\"x\",\"age\":3,\"x\":{}}",
                         "{\"name\":\"x\",\"age\":3,\"x\":\"s\"}", "{\"name\":\"x\",\"age\":3,\"ok\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(accepts(SCHEMA, bad[i]) == 0, "accepted %s", bad[i]);
    CHECK(accepts("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":2}", "[1, 2]") == 1);
    CHECK(accepts("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":2}", "[1]") == 0);
    CHECK(accepts("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":2}", "[1,2,3]") == 0);
    CHECK(accepts("{\"type\":\"number\"}", "12") == 1);
    CHECK(accepts("{\"enum\":[1,12,\"12\",[1,{\"a\":null}]]}", "12") == 1);
    CHECK(accepts("{\"enum\":[1,12,\"12\",[1,{\"a\":null}]]}", "1") == 1);
    CHECK(accepts("{\"enum\":[1,12,\"12\",[1,{\"a\":null}]]}", "[1,{\"a\":null}]") == 1);
    CHECK(accepts("{\"enum\":[1,12,\"12\",[1,{\"a\":null}]]}", "123") == 0);
    CHECK(accepts("{\"type\":[\"string\",\"null\"]}", "null") == 1);
    CHECK(accepts("{\"type\":\"object\",\"additionalProperties\":false}", "{}") == 1);
    CHECK(accepts("{\"type\":\"object\",\"additionalProperties\":false}", "{\"a\":1}") == 0);
    CHECK(accepts("{\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}}}", "{\"b\":\"\"}") == 1);
}

TEST(constrain_unsupported_schema) {
    struct { const char *schema, *needle; } cases[] = {
        {"{\"type\":\"string\",\"pattern\":\"a+\"}", "'pattern'"},
        {"{\"allOf\":[{}]}", "'allOf'"},
        {"{\"$ref\":\"#/x\"}", "'$ref'"},
        {"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}", "additionalProperties"},
        {"{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "impossible"},
        {"{\"type\":\"object\",\"properties\":{},\"required\":[\"a\"]}", "'a'"},
        {"{\"type\":\"date\"}", "'date'"},
        {"{\"enum\":[]}", "enum"},
        {"{\"type\":", "JSON Schema"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ilm_err err = {{0}};
        CHECK_MSG(ilm_constraint_check_schema(cases[i].schema, &err) != 0, "accepted %s", cases[i].schema);
        CHECK_MSG(strstr(err.msg, cases[i].needle) != NULL, "%s: message '%s' lacks %s", cases[i].schema, err.msg,
                  cases[i].needle);
    }
    ilm_err err;
    CHECK(ilm_constraint_check_schema(SCHEMA, &err) == 0);
}

// Brute force: token t keeps the text valid (byte-level feed of its piece on a saved state).
// Tool-call constraints: the three marker tokens are their texts; the byte-fallback tokens of
// bytes that never occur in UTF-8 are never allowed (the constraint uses those bytes internally).
static bool brute_allows(ilm_constraint *c, const ilm_tokenizer *tk, int32_t t, bool tools) {
    if (ilm_tok_is_eog(tk, t)) return ilm_constraint_done(c);
    int ty = ilm_tok_type(tk, t);
    size_t len;
    const char *p = ilm_tok_piece(tk, t, true, &len);
    bool marker = tools && len && (!strncmp(p, "<|\"|>", len) || !strncmp(p, "<|tool_call>", len) ||
                                   !strncmp(p, "<tool_call|>", len));
    if (!marker && ty != ILM_TOK_NORMAL && ty != ILM_TOK_BYTE) return false;
    if (!marker) p = ilm_tok_piece(tk, t, false, &len);
    if (!len || (tools && ty == ILM_TOK_BYTE && len == 1 && (uint8_t)p[0] >= 0xF5)) return false;
    ilm_constraint_state s;
    ilm_constraint_save(c, &s);
    bool ok = ilm_constraint_feed(c, p, len) == 0;
    ilm_constraint_restore(c, &s);
    return ok;
}

static uint64_t rng_next(uint64_t *x) {
    *x += 0x9E3779B97F4A7C15ull;
    uint64_t z = *x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Random walks through allowed tokens; at each state the mask equals brute force.
// tools: schema is a tools array (the tool-call grammar).
static void check_mask(const ilm_tokenizer *tk, const char *schema, bool tools, int walks, int steps, int check_every,
                       double *secs, long *n_masks) {
    ilm_err err;
    ilm_constraint_vocab *v = ilm_constraint_vocab_new(tk, &err);
    CHECK(v != NULL);
    if (!v) return;
    ilm_constraint *c = tools ? ilm_constraint_new_tools(v, schema, NULL, true, &err) : ilm_constraint_new(v, schema, &err);
    CHECK_MSG(c != NULL, "%s", err.msg);
    const int V = tk->n_vocab;
    float *l = malloc(sizeof(float) * (size_t)V);
    int32_t *ok = malloc(sizeof(int32_t) * (size_t)V);
    uint64_t seed = 42;
    for (int w = 0; w < walks && c; w++) {
        ilm_constraint_reset(c);
        for (int k = 0; k < steps; k++) {
            for (int i = 0; i < V; i++) l[i] = 0;
            double t0 = ilm_now();
            ilm_constraint_mask(c, l, V);
            *secs += ilm_now() - t0;
            (*n_masks)++;
            int n_ok = 0;
            for (int i = 0; i < V; i++)
                if (l[i] == 0) ok[n_ok++] = i;
            if (k % check_every == 0) {
                int bad = 0;
                for (int i = 0; i < V && bad < 3; i++) {
                    bool b = brute_allows(c, tk, i, tools);
                    if (b != (l[i] == 0) || b != ilm_constraint_allows(c, i)) {
                        size_t len;
                        const char *p = ilm_tok_piece(tk, i, false, &len);
                        t_fail(__FILE__, __LINE__, "walk %d step %d: token %d '%.*s' brute %d mask %d", w, k, i,
                               (int)len, p, b, l[i] == 0);
                        bad++;
                    }
                }
            }
            if (n_ok == 0 || ilm_constraint_done(c)) break;
            // prefer structure: pick among a few random allowed tokens, biased to short pieces
            int32_t t = ok[rng_next(&seed) % (uint64_t)n_ok];
            CHECK(ilm_constraint_accept(c, t) == 0);
        }
    }
    free(l);
    free(ok);
    ilm_constraint_free(c);
    ilm_constraint_vocab_free(v);
}

TEST(constrain_mask_brute_force_pycoder) {
    ilm_tokenizer *tk;
    ilm_err err;
    if (ilm_tokenizer_load_file(&tk, PYCODER, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    double secs = 0;
    long n = 0;
    check_mask(tk, NULL, false, 12, 60, 1, &secs, &n);
    check_mask(tk, SCHEMA, false, 12, 60, 1, &secs, &n);
    check_mask(tk, TOOLS, true, 12, 60, 1, &secs, &n);
    ilm_tokenizer_free(tk);
}

// The real vocabulary: correctness on a few walks, and the mask's cost per token (printed).
TEST(constrain_mask_real_vocab) {
    ilm_tokenizer *tk;
    ilm_err err;
    if (ilm_tokenizer_load_file(&tk, t_fixture("tokenizer/gemma4-vocab.gguf"), &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    double t0 = ilm_now();
    ilm_constraint_vocab *v = ilm_constraint_vocab_new(tk, &err);
    double t_build = ilm_now() - t0;
    ilm_constraint_vocab_free(v);
    double secs[3] = {0};
    long n[3] = {0};
    check_mask(tk, NULL, false, 3, 40, 13, &secs[0], &n[0]);
    check_mask(tk, SCHEMA, false, 3, 40, 13, &secs[1], &n[1]);
    check_mask(tk, TOOLS, true, 3, 40, 13, &secs[2], &n[2]);
    fprintf(stderr, "constrain: real vocabulary (%d tokens): tables built in %.1f ms; mask per token: json_object %.3f ms, "
            "schema %.3f ms, tool calls %.3f ms (%ld/%ld/%ld masks)\n", tk->n_vocab, t_build * 1e3,
            secs[0] / (double)n[0] * 1e3, secs[1] / (double)n[1] * 1e3, secs[2] / (double)n[2] * 1e3, n[0], n[1], n[2]);
    ilm_tokenizer_free(tk);
}

// ---- constrained generation -------------------------------------------------------------------

static bool valid_schema_value(const ilm_json *j) {
    if (!j || j->type != JSON_OBJ) return false;
    bool name = false, age = false;
    for (size_t i = 0; i < j->len; i++) {
        const char *k = j->keys[i];
        const ilm_json *x = &j->items[i];
        if (!strcmp(k, "name")) name = x->type == JSON_STR;
        else if (!strcmp(k, "age")) age = x->type == JSON_NUM && x->num == floor(x->num);
        else if (!strcmp(k, "tags")) {
            if (x->type != JSON_ARR || x->len > 3) return false;
            for (size_t e = 0; e < x->len; e++)
                if (x->items[e].type != JSON_STR || (strcmp(x->items[e].str, "a") && strcmp(x->items[e].str, "b")))
                    return false;
        } else if (!strcmp(k, "ok")) {
            if (x->type != JSON_BOOL) return false;
        } else if (!strcmp(k, "x")) {
            const ilm_json *kk = ilm_json_get(x, "k");
            if (!(x->type == JSON_NUM || x->type == JSON_NULL ||
                  (x->type == JSON_OBJ && x->len == 1 && kk && kk->type == JSON_NUM && kk->num == 1)))
                return false;
        } else return false;
    }
    return name && age;
}

typedef struct {
    int32_t out[512];
    int n;
} collect;
static int on_tok(void *ctx, int32_t t) {
    collect *c = ctx;
    if (c->n < 512) c->out[c->n++] = t;
    return 0;
}

// One constrained generation; returns 1 if it ended at end-of-generation (complete value).
static int gen_one(ilm_engine *e, ilm_drafter *d, const ilm_tokenizer *tk, ilm_constraint *con, float temp,
                   uint64_t seed, const int32_t *ids, int n_ids, collect *col, ilm_gen_stats *st) {
    ilm_sampler s;
    ilm_sampler_params sp = ilm_sampler_default_params();
    sp.temperature = temp;
    sp.seed = seed;
    ilm_err err;
    if (ilm_sampler_init(&s, &sp, &err)) return -1;
    ilm_constraint_reset(con);
    s.constraint = con;
    col->n = 0;
    ilm_gen_opts o = {200, false, tk->eog_ids, tk->n_eog, d ? 3 : 0, 0.0f, false, on_tok, col, false, NULL, false};
    ilm_kv_truncate(&e->kv[0], 0);
    int r = ilm_generate(e, d, &s, ids, n_ids, &o, st, &err);
    if (r) t_fail(__FILE__, __LINE__, "%s", err.msg);
    ilm_sampler_free(&s);
    return r ? -1 : st->stopped_at_eog;
}

// The committed demo pair (pycoder verifier + drafter, context 512), its tokenizer and `prompt`
// tokenized (no BOS). Returns 0, or -1 with the failure recorded and nothing left open.
typedef struct {
    ilm_engine e;
    ilm_drafter *d;
    ilm_tokenizer *tk;
    int32_t *ids;
    int n_ids;
} demo;

static void demo_close(demo *m) {
    free(m->ids);
    ilm_tokenizer_free(m->tk);
    ilm_drafter_free(m->d);
    ilm_engine_close(&m->e);
}

static int demo_open(demo *m, const char *prompt) {
    memset(m, 0, sizeof *m);
    ilm_engine_opts eo;
    ilm_engine_opts_default(&eo);
    eo.model = PYCODER;
    eo.verbose = false;
    eo.n_ctx = 512;
    ilm_err err;
    if (ilm_engine_open(&m->e, &eo, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    if (ilm_drafter_load(&m->d, PYCODER_MTP, m->e.model, m->e.pool, eo.act, &err) ||
        ilm_tokenizer_load(&m->tk, m->e.model->gguf, &err) ||
        ilm_tokenize(m->tk, prompt, strlen(prompt), 0, &m->ids, &m->n_ids, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        demo_close(m);
        return -1;
    }
    return 0;
}

TEST(constrain_generate_pycoder) {
    demo m;
    if (demo_open(&m, "config = {\"name\": \"demo\", \"values\": [1, 2, 3]}\nresult = ")) return;
    ilm_err err;
    const char *schemas[] = {NULL, SCHEMA};
    int complete = 0, total = 0;
    for (int si = 0; si < 2; si++) {
        ilm_constraint *con = ilm_constraint_new_json(m.tk, schemas[si], &err);
        CHECK(con != NULL);
        if (!con) continue;
        for (int run = 0; run < 10; run++) {
            float temp = run == 0 ? 0.0f : 1.0f;
            collect plain, spec;
            ilm_gen_stats st;
            int r1 = gen_one(&m.e, NULL, m.tk, con, temp, (uint64_t)run, m.ids, m.n_ids, &plain, &st);
            int r2 = gen_one(&m.e, m.d, m.tk, con, temp, (uint64_t)run, m.ids, m.n_ids, &spec, &st);
            if (temp == 0.0f) {  // lossless: greedy with the drafter equals greedy without it
                CHECK_EQ(plain.n, spec.n);
                CHECK_MSG(plain.n == spec.n && !memcmp(plain.out, spec.out, sizeof(int32_t) * (size_t)plain.n),
                          "schema %d: constrained greedy output with the drafter differs from plain", si);
                CHECK(st.drafted > 0);
            }
            collect *cs[2] = {&plain, &spec};
            int rs[2] = {r1, r2};
            for (int k = 0; k < 2; k++) {
                char *text;
                size_t len;
                if (ilm_detokenize(m.tk, cs[k]->out, cs[k]->n, false, &text, &len, &err)) {
                    t_fail(__FILE__, __LINE__, "%s", err.msg);
                    continue;
                }
                // every output is a valid prefix; a completed one parses and validates
                ilm_constraint *chk = ilm_constraint_new(NULL, schemas[si], &err);
                CHECK_MSG(ilm_constraint_feed(chk, text, len) == 0, "not a valid prefix: %s", text);
                ilm_constraint_free(chk);
                total++;
                if (rs[k] == 1) {
                    complete++;
                    ilm_json *j = ilm_json_parse(text, len, &err);
                    CHECK_MSG(j && j->type == JSON_OBJ, "does not parse as an object: %s", text);
                    if (si == 1) CHECK_MSG(valid_schema_value(j), "does not validate: %s", text);
                    ilm_json_free(j);
                }
                free(text);
            }
        }
        ilm_constraint_free(con);
    }
    CHECK_MSG(complete >= total / 2, "only %d of %d outputs completed", complete, total);
    demo_close(&m);
}

// ---- tool calls (Gemma notation) ----------------------------------------------------------------

// Text accepted and complete by a tool-call constraint over TOOLS (byte feed: markers as text).
static int tool_accepts(const char *only, bool parallel, const char *text) {
    ilm_err err;
    return accepts_whole(ilm_constraint_new_tools(NULL, TOOLS, only, parallel, &err), &err, text);
}

// The JSON arguments of a parsed call are valid for the function's parameters in TOOLS (read by
// a JSON-mode constraint of the same schema).
static bool args_valid(const char *tools_text, const char *name, const char *args_json) {
    ilm_err err;
    ilm_json *tools = ilm_json_parse(tools_text, strlen(tools_text), &err);
    bool ok = false;
    for (size_t i = 0; tools && i < tools->len; i++) {
        const ilm_json *fn = ilm_json_get(&tools->items[i], "function");
        if (strcmp(ilm_json_get(fn, "name")->str, name)) continue;
        const ilm_json *par = ilm_json_get(fn, "parameters");
        ilm_buf b = {0};
        if (par) ilm_json_buf_value(&b, par);
        ilm_constraint *c = ilm_constraint_new(NULL, par ? b.p : NULL, &err);
        ok = c && ilm_constraint_feed(c, args_json, strlen(args_json)) == 0 && ilm_constraint_done(c);
        ilm_constraint_free(c);
        ilm_buf_free(&b);
    }
    ilm_json_free(tools);
    return ok;
}

TEST(constrain_tools_bytes) {
    const char *good[] = {
        "<|tool_call>call:get_weather{city:<|\"|>Paris \"x\" \\ {y}<|\"|>,days:3}<tool_call|>",
        "<|tool_call>call:get_weather{city:<|\"|>Oslo<|\"|>,unit:<|\"|>celsius<|\"|>}<tool_call|>",
        "<|tool_call>call:search{q:<|\"|>a\nb\t<|\"|>,filters:{lang:<|\"|>en<|\"|>},tags:[<|\"|>x<|\"|>],ok:false}<tool_call|>",
        "<|tool_call>call:search{q:<|\"|>\xc3\xa9t\xc3\xa9<|\"|>,tags:[]}<tool_call|>",
        "<|tool_call>call:noargs{}<tool_call|>",
        "<|tool_call>call:noargs{a:1,b_c:{d:[1,<|\"|>z<|\"|>,null,-2.5e3]},e:true}<tool_call|>",
    };
    const char *bad[] = {
        "<|tool_call>call:get_weather{days:3}<tool_call|>",                          // required city missing
        "<|tool_call>call:get_weather{city:<|\"|>X<|\"|>,unit:<|\"|>kelvin<|\"|>}<tool_call|>",  // not in the enum
        "<|tool_call>call:get_weather{city:<|\"|>X<|\"|>,days:3.5}<tool_call|>",     // not an integer
        "<|tool_call>call:get_time{}<tool_call|>",                                   // unknown function
        "<|tool_call>call:get_weather{\"city\":<|\"|>X<|\"|>}<tool_call|>",          // JSON key
        "<|tool_call>call:get_weather{city:\"X\"}<tool_call|>",                      // JSON string
        "call:get_weather{city:<|\"|>X<|\"|>}<tool_call|>",                          // no opening marker
        " <|tool_call>call:noargs{}<tool_call|>",                                    // leading text
        "<|tool_call>call:noargs{}<tool_call|>x",                                    // trailing text
        "<|tool_call>call:search{q:<|\"|>x<|\"|>,tags:[<|\"|>a<|\"|>,<|\"|>b<|\"|>,<|\"|>c<|\"|>]}<tool_call|>",  // maxItems
        "<|tool_call>call:search{q:<|\"|>a\x01<|\"|>}<tool_call|>",                  // control byte
        "<|tool_call>call:noargs{}",                                                 // unclosed
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        CHECK_MSG(tool_accepts(NULL, false, good[i]) == 1, "rejected %s", good[i]);
        char *name = NULL;
        ilm_buf args = {0};
        ilm_err err;
        CHECK_MSG(ilm_toolcall_parse(good[i], strlen(good[i]), &name, &args, &err) == 0, "%s: %s", good[i], err.msg);
        CHECK_MSG(name && args.p && args_valid(TOOLS, name, args.p), "%s → %s", good[i], args.p ? args.p : "-");
        free(name);
        ilm_buf_free(&args);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(tool_accepts(NULL, true, bad[i]) == 0, "accepted %s", bad[i]);
    // parallel calls only when allowed; a named function only
    char two[256];
    snprintf(two, sizeof two, "%s%s", good[1], good[4]);
    CHECK(tool_accepts(NULL, true, two) == 1);
    CHECK(tool_accepts(NULL, false, two) == 0);
    CHECK(tool_accepts("search", false, good[2]) == 1);
    CHECK(tool_accepts("search", false, good[1]) == 0);
}

TEST(constrain_tools_reference_texts) {
    ilm_json *ref = t_load_json("chat/chat-ref.json");
    if (!ref) return;
    ilm_err err;
    const ilm_json *tc = ilm_json_get(ref, "tool_call_texts"), *cases = ilm_json_get(ref, "cases");
    CHECK(tc && cases && tc->len > 0);
    for (size_t i = 0; tc && cases && i < tc->len; i++) {
        const ilm_json *text = ilm_json_get(ilm_json_at(tc, i), "text"), *nm = ilm_json_get(ilm_json_at(tc, i), "name");
        bool found = false;  // the declared tools of every case that declares this function
        for (size_t k = 0; k < cases->len; k++) {
            const ilm_json *tools = ilm_json_get(ilm_json_at(cases, k), "tools");
            bool has = false;
            for (size_t f = 0; tools && f < tools->len; f++)
                has |= !strcmp(ilm_json_get(ilm_json_get(&tools->items[f], "function"), "name")->str, nm->str);
            if (!has) continue;
            found = true;
            ilm_buf b = {0};
            ilm_json_buf_value(&b, tools);
            ilm_constraint *c = ilm_constraint_new_tools(NULL, b.p, nm->str, false, &err);
            CHECK_MSG(c != NULL, "%s", err.msg);
            CHECK_MSG(c && ilm_constraint_feed(c, text->str, text->len) == 0 && ilm_constraint_done(c),
                      "case %zu's tools reject %s", k, text->str);
            ilm_constraint_free(c);
            ilm_buf_free(&b);
        }
        CHECK_MSG(found, "no case declares %s", nm->str);
    }
    ilm_json_free(ref);
}

TEST(constrain_tools_unsupported) {
    static const struct {
        const char *tools, *only, *want;
    } cases[] = {
        {"[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":"
         "{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}}}]", NULL, "'pattern'"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"string\"}}}]", NULL,
         "object schema"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]", NULL, "'a b'"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", "g", "'g'"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"properties\":{\"a:b\":{}}}}}]", NULL,
         "'a:b'"},
        {"[{\"type\":\"retrieval\"}]", NULL, "function"},
        {"[]", NULL, "non-empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ilm_err err = {{0}};
        CHECK_MSG(ilm_constraint_check_tools(cases[i].tools, cases[i].only, &err) != 0, "accepted %s", cases[i].tools);
        CHECK_MSG(strstr(err.msg, cases[i].want) != NULL, "\"%s\" lacks \"%s\"", err.msg, cases[i].want);
    }
    CHECK(ilm_constraint_check_tools(TOOLS, NULL, NULL) == 0);
}

// Constrained tool calls from the demo model: every completed output parses into a call whose
// arguments validate; greedy output with the drafter equals greedy output without it.
TEST(constrain_tools_generate_pycoder) {
    demo m;
    if (demo_open(&m, "def get_weather(city, unit=\"celsius\", days=1):\n    \"\"\"Weather for a city.\"\"\"\n")) return;
    ilm_err err;
    ilm_constraint_vocab *v = ilm_constraint_vocab_new(m.tk, &err);
    CHECK_MSG(v != NULL, "%s", err.msg);
    // strings as enums: the demo model (Python code) rarely closes a free string with <|"|>
    ilm_constraint *con = v ? ilm_constraint_new_tools(v, TOOLS_GEN, NULL, false, &err) : NULL;
    CHECK_MSG(con != NULL, "%s", err.msg);
    int complete = 0, total = 0;
    for (int run = 0; con && run < 8; run++) {
        float temp = run == 0 ? 0.0f : 1.0f;
        collect plain, spec;
        ilm_gen_stats st;
        int rs[2] = {gen_one(&m.e, NULL, m.tk, con, temp, (uint64_t)run, m.ids, m.n_ids, &plain, &st),
                     gen_one(&m.e, m.d, m.tk, con, temp, (uint64_t)run, m.ids, m.n_ids, &spec, &st)};
        if (temp == 0.0f)
            CHECK_MSG(plain.n == spec.n && !memcmp(plain.out, spec.out, sizeof(int32_t) * (size_t)plain.n),
                      "constrained greedy tool call with the drafter differs from plain");
        collect *cs[2] = {&plain, &spec};
        for (int k = 0; k < 2; k++) {
            char *text;
            size_t len;
            if (ilm_detokenize(m.tk, cs[k]->out, cs[k]->n, true, &text, &len, &err)) {
                t_fail(__FILE__, __LINE__, "%s", err.msg);
                continue;
            }
            total++;
            if (getenv("IRONLM_TEST_VERBOSE")) fprintf(stderr, "run %d %s: %s\n", run, k ? "spec" : "plain", text);
            if (rs[k] == 1) {  // ended at end-of-generation: one complete call (+ the end token's text)
                complete++;
                char *end = strstr(text, "<tool_call|>");
                CHECK_MSG(end != NULL, "no closing marker: %s", text);
                char *name = NULL;
                ilm_buf args = {0};
                CHECK_MSG(end && ilm_toolcall_parse(text, (size_t)(end - text) + strlen("<tool_call|>"), &name, &args,
                                                    &err) == 0, "does not parse: %s (%s)", text, err.msg);
                CHECK_MSG(name && args.p && args_valid(TOOLS_GEN, name, args.p), "does not validate: %s", text);
                free(name);
                ilm_buf_free(&args);
            }
            free(text);
        }
    }
    CHECK_MSG(complete >= total / 2, "only %d of %d tool calls completed", complete, total);
    ilm_constraint_free(con);
    ilm_constraint_vocab_free(v);
    demo_close(&m);
}
