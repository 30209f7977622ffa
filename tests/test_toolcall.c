// test_toolcall.c — src/gen/toolcall.c: Gemma 4 tool calls → JSON (every reference pair of
// chat/chat-ref.json, nesting, escapes, unicode, malformed input) and the streaming splitter
// (content / reasoning / tool calls, the text cut at every byte position).
#include <math.h>
#include <stdlib.h>

#include "format/json.h"
#include "gen/toolcall.h"
#include "fixture_util.h"
#include "harness.h"

// ---- helpers ------------------------------------------------------------------------------------

static bool json_equal(const ilm_json *a, const ilm_json *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL:
    case JSON_NUM: return a->num == b->num;
    case JSON_STR: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    default:
        if (a->len != b->len) return false;
        for (size_t i = 0; i < a->len; i++) {
            if (a->type == JSON_OBJ && strcmp(a->keys[i], b->keys[i]) != 0) return false;
            if (!json_equal(&a->items[i], &b->items[i])) return false;
        }
        return true;
    }
}

// text parses to `name` and arguments equal (as JSON values) to want_json.
static void parses_to(const char *text, const char *want_name, const char *want_json) {
    char *name = NULL;
    ilm_buf args = {0};
    ilm_err err;
    int rc = ilm_toolcall_parse(text, strlen(text), &name, &args, &err);
    CHECK_MSG(rc == 0, "%s: %s", text, err.msg);
    if (rc == 0) {
        CHECK_STR(name, want_name);
        ilm_json *got = ilm_json_parse(args.p, args.len, &err);
        ilm_json *want = ilm_json_parse(want_json, strlen(want_json), &err);
        CHECK_MSG(got != NULL, "%s: arguments %s do not parse", text, args.p);
        CHECK(want != NULL);
        if (got && want) CHECK_MSG(json_equal(got, want), "%s: %s, want %s", text, args.p, want_json);
        ilm_json_free(got);
        ilm_json_free(want);
    }
    free(name);
    ilm_buf_free(&args);
}

static void rejects(const char *text, size_t len, const char *what) {
    char *name = (char *)1;
    ilm_buf args = {0};
    ilm_buf_puts(&args, "keep");
    ilm_err err = {{0}};
    int rc = ilm_toolcall_parse(text, len, &name, &args, &err);
    CHECK_MSG(rc == -1, "accepted: %.*s", (int)len, text);
    CHECK(name == NULL);
    CHECK_EQ(args.len, 4);
    CHECK_STR(args.p, "keep");
    if (what) CHECK_MSG(strstr(err.msg, what) != NULL, "%.*s: \"%s\" lacks \"%s\"", (int)len, text, err.msg, what);
    free(name);
    ilm_buf_free(&args);
}

// ---- the parser ---------------------------------------------------------------------------------

TEST(toolcall_reference_pairs) {
    ilm_json *ref = t_load_json("chat/chat-ref.json");
    if (!ref) return;
    ilm_err err;
    const ilm_json *tc = ilm_json_get(ref, "tool_call_texts");
    CHECK(tc && tc->type == JSON_ARR && tc->len > 0);
    for (size_t i = 0; tc && i < tc->len; i++) {
        const ilm_json *e = ilm_json_at(tc, i), *text = ilm_json_get(e, "text"), *nm = ilm_json_get(e, "name"),
                       *want = ilm_json_get(e, "arguments");
        CHECK(text && nm && want);
        if (!text || !nm || !want) continue;
        char *name = NULL;
        ilm_buf args = {0};
        CHECK_MSG(ilm_toolcall_parse(text->str, text->len, &name, &args, &err) == 0, "%s: %s", text->str, err.msg);
        CHECK_STR(name, nm->str);
        ilm_json *got = args.p ? ilm_json_parse(args.p, args.len, &err) : NULL;
        CHECK_MSG(got && json_equal(got, want), "%s → %s", text->str, args.p ? args.p : "(none)");
        ilm_json_free(got);
        free(name);
        ilm_buf_free(&args);
    }
    ilm_json_free(ref);
}

TEST(toolcall_values_nesting_escapes) {
    // the exact compact output: keys in order, numbers as written
    char *name = NULL;
    ilm_buf args = {0};
    ilm_err err;
    const char *t = "<|tool_call>call:f{b:2,a:-1.5e+3,c:[1,<|\"|>x<|\"|>,true,false,null],d:{}}<tool_call|>";
    CHECK(ilm_toolcall_parse(t, strlen(t), &name, &args, &err) == 0);
    CHECK_STR(name, "f");
    CHECK_STR(args.p, "{\"b\":2,\"a\":-1.5e+3,\"c\":[1,\"x\",true,false,null],\"d\":{}}");
    free(name);
    ilm_buf_free(&args);

    parses_to("call:get_weather{city:<|\"|>Paris<|\"|>,days:3}", "get_weather", "{\"city\":\"Paris\",\"days\":3}");
    parses_to("call:noargs{}", "noargs", "{}");
    parses_to("call:ns.tool-v2:x{a:None}", "ns.tool-v2:x", "{\"a\":null}");
    // nesting, quoted keys (the template's escape_keys form), empty containers
    parses_to("call:n{o:{<|\"|>k k<|\"|>:{x:[[],[{}],[[1]]]}},e:[]}", "n",
              "{\"o\":{\"k k\":{\"x\":[[],[{}],[[1]]]}},\"e\":[]}");
    // strings are verbatim: quotes, backslashes, newlines, control bytes, markers-like text
    parses_to("call:s{q:<|\"|>say \"hi\"\\n\n\t\x01<|\"|>,m:<|\"|>a}b,c:d<tool_call|><|\"|>}", "s",
              "{\"q\":\"say \\\"hi\\\"\\\\n\\n\\t\\u0001\",\"m\":\"a}b,c:d<tool_call|>\"}");
    // unicode passes through; invalid UTF-8 becomes U+FFFD
    parses_to("call:u{city:<|\"|>Zürich 東京 🙂<|\"|>}", "u", "{\"city\":\"Zürich 東京 🙂\"}");
    parses_to("call:u{b:<|\"|>\xff<|\"|>}", "u", "{\"b\":\"\\ufffd\"}");
    // whitespace between tokens
    parses_to("  <|tool_call> call:w{ a : 1 , b : [ 1 , 2 ] }\n<tool_call|>\n", "w", "{\"a\":1,\"b\":[1,2]}");
    // numbers
    parses_to("call:n{a:0,b:-0.25,c:1E5,d:12345678901234567890}", "n",
              "{\"a\":0,\"b\":-0.25,\"c\":1E5,\"d\":12345678901234567890}");
}

TEST(toolcall_rejects_malformed) {
    const char *bad[] = {
        "",
        "<|tool_call><tool_call|>",
        "call:",
        "call:{a:1}",                       // no name
        "call:f",                           // no arguments
        "call:f{",                          // unclosed
        "call:f{a:1",
        "call:f{a:1,}",                     // trailing comma
        "call:f{a}",                        // no value
        "call:f{:1}",                       // no key
        "call:f{a:<|\"|>x}",                // unterminated string
        "call:f{a:[1,2}",                   // mismatched
        "call:f{a:01}",                     // not JSON numbers
        "call:f{a:1.}",
        "call:f{a:.5}",
        "call:f{a:+1}",
        "call:f{a:nan}",
        "call:f{a:Paris}",                  // bare word
        "call:f{a:truex}",
        "call:f{a:1 2}",
        "call:f{a:1}x",                     // trailing text
        "call:f{a:1}<tool_call|>x",
        "call:f g{a:1}",                    // bad name
        "call:f\"{a:1}",
        "cal:f{a:1}",
        "<|tool_call>call:f{a:1}<tool_call|><tool_call|>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) rejects(bad[i], strlen(bad[i]), "tool call");
    rejects(NULL, 0, "call:");
    rejects("call:f{a:1}", 10, NULL);  // cut short
    char nul[] = "call:f{a:1\0}";
    rejects(nul, sizeof nul - 1, NULL);
    // nesting beyond the limit fails cleanly; at the limit it parses
    ilm_buf deep = {0};
    ilm_buf_puts(&deep, "call:f{a:");
    for (int i = 0; i < 100000; i++) ilm_buf_putc(&deep, '[');
    rejects(deep.p, deep.len, "nested too deeply");
    ilm_buf_reset(&deep);
    ilm_buf_puts(&deep, "call:f{a:");
    for (int i = 0; i < ILM_TOOLCALL_MAX_DEPTH - 1; i++) ilm_buf_putc(&deep, '[');
    for (int i = 0; i < ILM_TOOLCALL_MAX_DEPTH - 1; i++) ilm_buf_putc(&deep, ']');
    ilm_buf_putc(&deep, '}');
    char *name = NULL;
    ilm_buf args = {0};
    ilm_err err;
    CHECK_MSG(ilm_toolcall_parse(deep.p, deep.len, &name, &args, &err) == 0, "%s", err.msg);
    free(name);
    ilm_buf_free(&args);
    ilm_buf_free(&deep);
    // every prefix of a valid call is rejected (or, the whole, accepted) without a crash
    const char *ok = "<|tool_call>call:f{a:<|\"|>x<|\"|>,b:[1,{c:null}]}<tool_call|>";
    for (size_t n = 0; n < strlen(ok); n++) {
        char *copy = malloc(n + 1);  // exact-size copy: ASan sees any over-read
        memcpy(copy, ok, n);
        name = NULL;
        ilm_buf_reset(&args);
        int rc = ilm_toolcall_parse(copy, n, &name, &args, &err);
        CHECK_MSG(rc == -1 || n >= strlen(ok) - strlen("<tool_call|>"), "prefix %zu accepted", n);
        free(name);
        free(copy);
    }
    ilm_buf_free(&args);
}

// ---- the splitter -------------------------------------------------------------------------------

typedef struct {
    ilm_buf content, reasoning, calls;  // calls: "name args;" each
    int n_malformed, n_pieces;
    bool empty_piece;
} sink;

static void collect(void *ctx, const ilm_out_piece *p) {
    sink *k = ctx;
    k->n_pieces++;
    if (!p->len) k->empty_piece = true;
    switch (p->kind) {
    case ILM_OUT_CONTENT:
        ilm_buf_add(&k->content, p->text, p->len);
        if (p->malformed) {
            k->n_malformed++;
            CHECK(p->error && p->error[0]);
        }
        break;
    case ILM_OUT_REASONING: ilm_buf_add(&k->reasoning, p->text, p->len); break;
    case ILM_OUT_TOOL_CALL:
        CHECK(p->name != NULL);
        ilm_buf_printf(&k->calls, "%s %.*s;", p->name, (int)p->len, p->text);
        break;
    }
}

static void sink_free(sink *k) {
    ilm_buf_free(&k->content);
    ilm_buf_free(&k->reasoning);
    ilm_buf_free(&k->calls);
}

// Splits text fed as the given pieces (cuts[] ascending positions) and checks the channels.
static void split_once(const char *text, const size_t *cuts, int n_cuts, const char *content, const char *reasoning,
                       const char *calls, int malformed) {
    ilm_outsplit *s;
    ilm_err err;
    CHECK(ilm_outsplit_new(&s, &err) == 0);
    sink k = {0};
    size_t at = 0, n = strlen(text);
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        CHECK(ilm_outsplit_feed(s, text + at, end - at, collect, &k) == 0);
        at = end;
    }
    CHECK(ilm_outsplit_flush(s, collect, &k) == 0);
    const char *cut = n_cuts ? "cut" : "whole";
    CHECK_MSG(!strcmp(k.content.p ? k.content.p : "", content), "%s (%s %zu): content \"%s\", want \"%s\"", text, cut,
              n_cuts ? cuts[0] : 0, k.content.p ? k.content.p : "", content);
    CHECK_MSG(!strcmp(k.reasoning.p ? k.reasoning.p : "", reasoning), "%s (%s %zu): reasoning \"%s\", want \"%s\"", text,
              cut, n_cuts ? cuts[0] : 0, k.reasoning.p ? k.reasoning.p : "", reasoning);
    CHECK_MSG(!strcmp(k.calls.p ? k.calls.p : "", calls), "%s (%s %zu): calls \"%s\", want \"%s\"", text, cut,
              n_cuts ? cuts[0] : 0, k.calls.p ? k.calls.p : "", calls);
    CHECK_EQ(k.n_malformed, malformed);
    CHECK(!k.empty_piece);
    sink_free(&k);
    ilm_outsplit_free(s);
}

// Whole, cut once at every byte, cut twice at every pair, and one byte at a time.
static void split_case(const char *text, const char *content, const char *reasoning, const char *calls, int malformed) {
    size_t n = strlen(text);
    split_once(text, NULL, 0, content, reasoning, calls, malformed);
    for (size_t i = 0; i <= n; i++) split_once(text, &i, 1, content, reasoning, calls, malformed);
    for (size_t i = 0; i <= n && n <= 120; i++)
        for (size_t j = i; j <= n; j++) split_once(text, (size_t[]){i, j}, 2, content, reasoning, calls, malformed);
    size_t *each = malloc((n + 1) * sizeof *each);
    for (size_t i = 0; i < n; i++) each[i] = i + 1;
    split_once(text, each, (int)n, content, reasoning, calls, malformed);
    free(each);
}

TEST(toolcall_split_channels) {
    split_case("Hello, world <3 <| < |", "Hello, world <3 <| < |", "", "", 0);
    split_case("<|channel>thought\nLet me think.\n<channel|>The answer is 4.", "The answer is 4.", "Let me think.", "", 0);
    split_case("<|channel>thought\na\n\nb<channel|>c", "c", "a\n\nb", "", 0);
    // a stray close, an empty thought (the template's thinking-off prefill), any channel name
    split_case("x<channel|>y", "xy", "", "", 0);
    split_case("<|channel>thought\n<channel|>Hi", "Hi", "", "", 0);
    split_case("<|channel>analysis\nr<channel|>c", "c", "r", "", 0);
    split_case("<|channel>thought<channel|>c", "c", "", "", 0);
    // unclosed thought: all reasoning; tool-call markers inside a thought are reasoning text
    split_case("<|channel>thought\nstill thinking", "", "still thinking", "", 0);
    split_case("<|channel>thought\nuse <|tool_call> maybe\n<channel|>ok", "ok", "use <|tool_call> maybe", "", 0);
}

TEST(toolcall_split_tool_calls) {
    split_case("<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,days:3}<tool_call|>", "", "",
               "get_weather {\"city\":\"Paris\",\"days\":3};", 0);
    split_case("<|channel>thought\nneed weather\n<channel|>Checking.<|tool_call>call:a{x:1}<tool_call|>"
               "<|tool_call>call:b{y:<|\"|>q<tool_call|>r<|\"|>}<tool_call|>",
               "Checking.", "need weather", "a {\"x\":1};b {\"y\":\"q<tool_call|>r\"};", 0);
    // malformed: passed through as content, flagged
    split_case("pre<|tool_call>call:f{a:Paris}<tool_call|>post", "pre<|tool_call>call:f{a:Paris}<tool_call|>post", "", "",
               1);
    // never closed: flushed as content, flagged
    split_case("pre<|tool_call>call:f{a:1}", "pre<|tool_call>call:f{a:1}", "", "", 1);
    split_case("<|tool_call>", "<|tool_call>", "", "", 1);
    // unicode around and inside
    split_case("é<|tool_call>call:t{s:<|\"|>東京<|\"|>}<tool_call|>ü", "éü", "", "t {\"s\":\"東京\"};", 0);
}

TEST(toolcall_split_streams_early) {
    // content and reasoning come out as soon as no marker can start in them
    ilm_outsplit *s;
    ilm_err err;
    CHECK(ilm_outsplit_new(&s, &err) == 0);
    sink k = {0};
    ilm_outsplit_feed(s, "abc<|chan", 9, collect, &k);
    CHECK_STR(k.content.p, "abc");
    ilm_outsplit_feed(s, "nel>thought\nxy\n", 15, collect, &k);
    CHECK_STR(k.reasoning.p, "xy");  // the "\n" may precede <channel|>: held
    ilm_outsplit_feed(s, "z", 1, collect, &k);
    CHECK_STR(k.reasoning.p, "xy\nz");
    ilm_outsplit_feed(s, "<channel|><|tool_call>call:f{", 29, collect, &k);
    CHECK(k.calls.len == 0);
    ilm_outsplit_feed(s, "}<tool_call|>", 13, collect, &k);
    CHECK_STR(k.calls.p, "f {};");
    CHECK(ilm_outsplit_flush(s, collect, &k) == 0);
    CHECK_STR(k.content.p, "abc");
    // reusable after a flush
    ilm_outsplit_feed(s, "<|tool_call>call:g{}", 20, collect, &k);
    CHECK(ilm_outsplit_flush(s, collect, &k) == 0);
    CHECK_EQ(k.n_malformed, 1);
    CHECK_STR(k.content.p, "abc<|tool_call>call:g{}");
    sink_free(&k);
    ilm_outsplit_free(s);
    ilm_outsplit_free(NULL);
}
