// toolcall.c — Gemma 4 tool calls → JSON, and the streaming content / reasoning / tool-call
// splitter. See toolcall.h for the notation and the routing rules.
#include "gen/toolcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/json.h"

static const char QUOTE[] = "<|\"|>", CALL_OPEN[] = "<|tool_call>", CALL_CLOSE[] = "<tool_call|>",
                  CHAN_OPEN[] = "<|channel>", CHAN_CLOSE[] = "<channel|>";
#define SLEN(s) (sizeof(s) - 1)

// ---- the parser -------------------------------------------------------------------------------

typedef struct {
    const char *p, *end;
    ilm_buf *out;
    ilm_err *err;
} rd;

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static void skip_ws(rd *r) {
    while (r->p < r->end && is_ws(*r->p)) r->p++;
}
static bool starts(const rd *r, const char *s, size_t n) {
    return (size_t)(r->end - r->p) >= n && memcmp(r->p, s, n) == 0;
}
static bool take(rd *r, const char *s, size_t n) {
    if (!starts(r, s, n)) return false;
    r->p += n;
    return true;
}

static int fail_at(rd *r, const char *base, const char *what) {
    return ilm_fail(r->err, "tool call: %s at byte %zu", what, (size_t)(r->p - base));
}

// A `<|"|>`-quoted string (the opening quote already taken) → JSON string.
static int read_str(rd *r, const char *base) {
    const char *s = r->p;
    for (const char *q = s; q + SLEN(QUOTE) <= r->end; q++)
        if (memcmp(q, QUOTE, SLEN(QUOTE)) == 0) {
            ilm_json_buf_str(r->out, s, (size_t)(q - s));
            r->p = q + SLEN(QUOTE);
            return 0;
        }
    return fail_at(r, base, "unterminated string");
}

// JSON number syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
static size_t number_len(const char *p, const char *end) {
    const char *q = p;
    if (q < end && *q == '-') q++;
    if (q >= end) return 0;
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < end && *q >= '0' && *q <= '9') q++;
    else return 0;
    if (q < end && *q == '.') {
        q++;
        if (q >= end || *q < '0' || *q > '9') return 0;
        while (q < end && *q >= '0' && *q <= '9') q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (q >= end || *q < '0' || *q > '9') return 0;
        while (q < end && *q >= '0' && *q <= '9') q++;
    }
    return (size_t)(q - p);
}

static bool ends_bare(const rd *r, size_t n) {  // a bare word ends at a delimiter
    if ((size_t)(r->end - r->p) == n) return true;
    char c = r->p[n];
    return c == ',' || c == '}' || c == ']' || is_ws(c);
}

static int read_value(rd *r, const char *base, int depth);

static int read_object(rd *r, const char *base, int depth) {  // '{' already taken
    if (depth > ILM_TOOLCALL_MAX_DEPTH) return fail_at(r, base, "nested too deeply");
    ilm_buf_putc(r->out, '{');
    skip_ws(r);
    if (take(r, "}", 1)) {
        ilm_buf_putc(r->out, '}');
        return 0;
    }
    for (bool first = true;; first = false) {
        if (!first) ilm_buf_putc(r->out, ',');
        skip_ws(r);
        if (take(r, QUOTE, SLEN(QUOTE))) {
            if (read_str(r, base)) return -1;
        } else {
            const char *k = r->p;
            while (r->p < r->end && !strchr(":,{}[]<\"\n", *r->p)) r->p++;
            const char *ke = r->p;
            while (ke > k && is_ws(ke[-1])) ke--;
            if (ke == k) return fail_at(r, base, "expected a key");
            ilm_json_buf_str(r->out, k, (size_t)(ke - k));
        }
        skip_ws(r);
        if (!take(r, ":", 1)) return fail_at(r, base, "expected ':' after a key");
        ilm_buf_putc(r->out, ':');
        if (read_value(r, base, depth)) return -1;
        skip_ws(r);
        if (take(r, "}", 1)) break;
        if (!take(r, ",", 1)) return fail_at(r, base, "expected ',' or '}'");
    }
    ilm_buf_putc(r->out, '}');
    return 0;
}

static int read_value(rd *r, const char *base, int depth) {
    skip_ws(r);
    if (r->p >= r->end) return fail_at(r, base, "expected a value");
    if (take(r, QUOTE, SLEN(QUOTE))) return read_str(r, base);
    if (take(r, "{", 1)) return read_object(r, base, depth + 1);
    if (take(r, "[", 1)) {
        if (depth + 1 > ILM_TOOLCALL_MAX_DEPTH) return fail_at(r, base, "nested too deeply");
        ilm_buf_putc(r->out, '[');
        skip_ws(r);
        if (!take(r, "]", 1))
            for (bool first = true;; first = false) {
                if (!first) ilm_buf_putc(r->out, ',');
                if (read_value(r, base, depth + 1)) return -1;
                skip_ws(r);
                if (take(r, "]", 1)) break;
                if (!take(r, ",", 1)) return fail_at(r, base, "expected ',' or ']'");
            }
        ilm_buf_putc(r->out, ']');
        return 0;
    }
    static const struct { const char *word, *json; } words[] = {
        {"true", "true"}, {"false", "false"}, {"null", "null"}, {"None", "null"}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if (starts(r, words[i].word, n) && ends_bare(r, n)) {
            ilm_buf_puts(r->out, words[i].json);
            r->p += n;
            return 0;
        }
    }
    size_t n = number_len(r->p, r->end);
    if (!n || !ends_bare(r, n)) return fail_at(r, base, "expected a value (a <|\"|>string<|\"|>, number, true, false, null, {} or [])");
    ilm_buf_add(r->out, r->p, n);
    r->p += n;
    return 0;
}

int ilm_toolcall_parse(const char *text, size_t len, char **name, ilm_buf *args_json, ilm_err *err) {
    *name = NULL;
    if (!text) text = "", len = 0;
    size_t old_len = args_json->len;
    rd r = {text, text + len, args_json, err};
    skip_ws(&r);
    if (take(&r, CALL_OPEN, SLEN(CALL_OPEN))) skip_ws(&r);
    if (!take(&r, "call:", 5)) {
        fail_at(&r, text, "expected \"call:NAME{\"");
        goto fail;
    }
    const char *nm = r.p;
    while (r.p < r.end && (strchr("_.:-", *r.p) || (*r.p >= 'a' && *r.p <= 'z') || (*r.p >= 'A' && *r.p <= 'Z') ||
                           (*r.p >= '0' && *r.p <= '9')))
        r.p++;
    size_t nlen = (size_t)(r.p - nm);
    if (!nlen || !take(&r, "{", 1)) {
        fail_at(&r, text, nlen ? "expected '{' after the function name" : "expected a function name");
        goto fail;
    }
    if (read_object(&r, text, 1)) goto fail;
    skip_ws(&r);
    if (take(&r, CALL_CLOSE, SLEN(CALL_CLOSE))) skip_ws(&r);
    if (r.p != r.end) {
        fail_at(&r, text, "unexpected text after the arguments");
        goto fail;
    }
    if (args_json->oom || !(*name = malloc(nlen + 1))) {
        ilm_fail(err, "tool call: out of memory");
        goto fail;
    }
    memcpy(*name, nm, nlen);
    (*name)[nlen] = 0;
    return 0;
fail:
    args_json->len = old_len;
    if (args_json->p) args_json->p[old_len] = 0;
    return -1;
}

// ---- the splitter -----------------------------------------------------------------------------

enum { S_CONTENT, S_CHAN_NAME, S_REASONING, S_TOOL };
#define CHAN_NAME_MAX 64  // a longer "channel name" is taken as reasoning text

struct ilm_outsplit {
    int state;
    ilm_buf pend;  // text not routed yet (S_TOOL: the call so far, after "<|tool_call>")
    size_t scan;   // S_TOOL: where the search for the close marker goes on
    bool in_str;   // S_TOOL: scan is inside a <|"|> string
    ilm_buf tmp;   // S_TOOL: the call, parsed or passed through
};

int ilm_outsplit_new(ilm_outsplit **out, ilm_err *err) {
    *out = ilm_calloc(1, sizeof **out, err);
    return *out ? 0 : -1;
}

void ilm_outsplit_free(ilm_outsplit *s) {
    if (!s) return;
    ilm_buf_free(&s->pend);
    ilm_buf_free(&s->tmp);
    free(s);
}

static void emit(ilm_outsplit_cb cb, void *ctx, ilm_out_kind kind, const char *p, size_t n) {
    if (!n) return;
    ilm_out_piece pc = {.kind = kind, .text = p, .len = n};
    cb(ctx, &pc);
}

// Earliest occurrence in p[0..n) of any of the markers: its position (n if none), *which.
static size_t find_any(const char *p, size_t n, const char *const *m, int nm, int *which) {
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < nm; k++) {
            size_t ml = strlen(m[k]);
            if (ml <= n - i && memcmp(p + i, m[k], ml) == 0) {
                *which = k;
                return i;
            }
        }
    return n;
}

// Length of the longest suffix of p[0..n) that is a proper prefix of one of the markers.
static size_t held_suffix(const char *p, size_t n, const char *const *m, int nm) {
    size_t best = 0;
    for (int k = 0; k < nm; k++) {
        size_t ml = strlen(m[k]);
        for (size_t l = ml - 1 < n ? ml - 1 : n; l > best; l--)
            if (memcmp(p + n - l, m[k], l) == 0) {
                best = l;
                break;
            }
    }
    return best;
}

// The finished call pend[0..end) (after "<|tool_call>"): a tool call, or malformed content.
static void finish_call(ilm_outsplit *s, size_t end, bool closed, ilm_outsplit_cb cb, void *ctx) {
    ilm_buf_reset(&s->tmp);
    char *name = NULL;
    ilm_err err;
    if (closed && ilm_toolcall_parse(s->pend.p, end, &name, &s->tmp, &err) == 0 && !s->tmp.oom) {
        ilm_out_piece pc = {.kind = ILM_OUT_TOOL_CALL, .text = s->tmp.p, .len = s->tmp.len, .name = name};
        cb(ctx, &pc);
        free(name);
        return;
    }
    free(name);
    if (!closed) snprintf(err.msg, sizeof err.msg, "tool call: not closed by %s", CALL_CLOSE);
    ilm_buf_reset(&s->tmp);
    ilm_buf_puts(&s->tmp, CALL_OPEN);
    ilm_buf_add(&s->tmp, s->pend.p, end);
    if (closed) ilm_buf_puts(&s->tmp, CALL_CLOSE);
    ilm_out_piece pc = {.kind = ILM_OUT_CONTENT, .text = s->tmp.p, .len = s->tmp.len, .malformed = true,
                        .error = err.msg};
    if (!s->tmp.oom) cb(ctx, &pc);
}

// Routes what pend holds; `final`: nothing more comes, hold nothing back.
static void route(ilm_outsplit *s, bool final, ilm_outsplit_cb cb, void *ctx) {
    static const char *const content_m[] = {CHAN_OPEN, CALL_OPEN, CHAN_CLOSE};
    static const char *const reason_m[] = {"\n" "<channel|>", CHAN_CLOSE};
    for (;;) {
        const char *p = s->pend.p ? s->pend.p : "";
        size_t n = s->pend.len;
        int k = -1;
        if (s->state == S_CONTENT || s->state == S_REASONING) {
            bool c = s->state == S_CONTENT;
            const char *const *m = c ? content_m : reason_m;
            int nm = c ? 3 : 2;
            size_t at = find_any(p, n, m, nm, &k);
            ilm_out_kind kind = c ? ILM_OUT_CONTENT : ILM_OUT_REASONING;
            if (at < n) {
                emit(cb, ctx, kind, p, at);
                ilm_buf_consume(&s->pend, at + strlen(m[k]));
                if (c) {
                    if (k == 0) s->state = S_CHAN_NAME;
                    else if (k == 1) s->state = S_TOOL, s->scan = 0, s->in_str = false;
                } else {
                    s->state = S_CONTENT;
                }
                continue;
            }
            size_t keep = final ? 0 : held_suffix(p, n, m, nm);
            emit(cb, ctx, kind, p, n - keep);
            ilm_buf_consume(&s->pend, n - keep);
            if (final) s->state = S_CONTENT;
            return;
        }
        if (s->state == S_CHAN_NAME) {
            static const char *const name_m[] = {"\n", CHAN_CLOSE};
            size_t at = find_any(p, n, name_m, 2, &k);
            if (at < n) {
                ilm_buf_consume(&s->pend, at + strlen(name_m[k]));
                s->state = k == 0 ? S_REASONING : S_CONTENT;
                continue;
            }
            if (n > CHAN_NAME_MAX) {  // no name line after all: all of it is reasoning
                s->state = S_REASONING;
                continue;
            }
            if (final) ilm_buf_reset(&s->pend), s->state = S_CONTENT;
            return;
        }
        // S_TOOL: look for the close marker outside strings
        size_t i = s->scan;
        bool closed = false;
        while (i < n) {
            size_t left = n - i;
            if (left >= SLEN(QUOTE) && memcmp(p + i, QUOTE, SLEN(QUOTE)) == 0) {
                s->in_str = !s->in_str;
                i += SLEN(QUOTE);
                continue;
            }
            if (!s->in_str && left >= SLEN(CALL_CLOSE) && memcmp(p + i, CALL_CLOSE, SLEN(CALL_CLOSE)) == 0) {
                closed = true;
                break;
            }
            if ((left < SLEN(QUOTE) && memcmp(p + i, QUOTE, left) == 0) ||
                (left < SLEN(CALL_CLOSE) && memcmp(p + i, CALL_CLOSE, left) == 0))
                break;  // a marker may be starting: wait for more
            i++;
        }
        s->scan = i;
        if (closed) {
            finish_call(s, i, true, cb, ctx);
            ilm_buf_consume(&s->pend, i + SLEN(CALL_CLOSE));
            s->state = S_CONTENT;
            continue;
        }
        if (final) {
            finish_call(s, n, false, cb, ctx);
            ilm_buf_reset(&s->pend);
            s->state = S_CONTENT;
        }
        return;
    }
}

int ilm_outsplit_feed(ilm_outsplit *s, const char *text, size_t n, ilm_outsplit_cb cb, void *ctx) {
    if (n) ilm_buf_add(&s->pend, text, n);
    if (s->pend.oom) {
        ilm_buf_reset(&s->pend);
        s->state = S_CONTENT;
        return -1;
    }
    route(s, false, cb, ctx);
    return 0;
}

int ilm_outsplit_flush(ilm_outsplit *s, ilm_outsplit_cb cb, void *ctx) {
    route(s, true, cb, ctx);
    ilm_buf_reset(&s->pend);
    int rc = s->tmp.oom ? -1 : 0;
    ilm_buf_reset(&s->tmp);
    s->state = S_CONTENT;
    return rc;
}
