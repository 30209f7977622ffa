// chat_template.c — Gemma 4's Jinja chat template in C (google-gemma-4-31B-it.jinja): the
// system turn with tool declarations, messages with tool calls and folded tool responses, the
// generation prompt. Each function names the template macro or block it follows. See
// chat_template.h.
// Length: one template, one file — its macros call each other (declarations, arguments, tool
// blocks) and split apart they would only trade static helpers for a private header.
#include "gen/chat_template.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "gen/chat.h"

#define Q "<|\"|>"  // Gemma's string quote

typedef struct {
    ilm_buf b;
    ilm_err *err;
} out_t;

// ---- Jinja value semantics ----------------------------------------------------------------------

static bool absent(const ilm_json *v) { return !v || v->type == JSON_NULL; }

// Python truthiness of a JSON value (a missing one is undefined: false).
static bool truthy(const ilm_json *v) {
    if (absent(v)) return false;
    switch (v->type) {
    case JSON_BOOL:
    case JSON_NUM: return v->num != 0;
    default: return v->len > 0;  // STR, ARR, OBJ
    }
}

// value['key'] where value may be anything: undefined (NULL) unless value is an object.
static const ilm_json *jget(const ilm_json *v, const char *key) {
    return v && v->type == JSON_OBJ ? ilm_json_get(v, key) : NULL;
}

static bool is_ws(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

// `| trim` (Python's str.strip for ASCII whitespace).
static void put_trimmed(ilm_buf *b, const char *s, size_t n) {
    while (n && is_ws((unsigned char)s[0])) s++, n--;
    while (n && is_ws((unsigned char)s[n - 1])) n--;
    ilm_buf_add(b, s, n);
}

// strip_thinking(text) (gen/chat.c implements it in place).
static void put_stripped(ilm_buf *b, const char *s, size_t n) {
    size_t at = b->len;
    ilm_buf_add(b, s, n);
    if (b->oom) return;
    b->len = at + ilm_chat_strip_thinking(b->p + at);
}

// `| upper` of ASCII letters.
static void put_upper(ilm_buf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) ilm_buf_putc(b, s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 32) : s[i]);
}

static bool upper_eq(const ilm_json *v, const char *want) {  // (v | upper) == want, v a string
    if (!v || v->type != JSON_STR || v->len != strlen(want)) return false;
    for (size_t i = 0; i < v->len; i++) {
        char c = v->str[i];
        if ((c >= 'a' && c <= 'z' ? (char)(c - 32) : c) != want[i]) return false;
    }
    return true;
}

// `{{ number }}` as Python prints a parsed JSON number: integers as such, others as repr().
static void put_number(ilm_buf *b, double x) {
    char s[64];
    if (x == floor(x) && fabs(x) < 1e16) snprintf(s, sizeof s, "%.0f", x);
    else {
        for (int p = 1; p <= 17; p++) {
            snprintf(s, sizeof s, "%.*g", p, x);
            if (strtod(s, NULL) == x) break;
        }
        if (!strpbrk(s, ".en")) strcat(s, ".0");  // 1e+16 stays, 0.5 stays
    }
    ilm_buf_puts(b, s);
}

// `| dictsort`: the object's member indices ordered by key, case-insensitively, stable.
static size_t *sorted_keys(const ilm_json *o) {
    size_t n = o->len, *ix = malloc((n ? n : 1) * sizeof *ix);
    if (!ix) return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        while (k > 0) {
            const unsigned char *a = (const unsigned char *)o->keys[ix[k - 1]], *c = (const unsigned char *)o->keys[i];
            int d = 0;
            for (;; a++, c++) {
                int x = (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a, y = (*c >= 'A' && *c <= 'Z') ? *c + 32 : *c;
                if (x != y || !x) {
                    d = x - y;
                    break;
                }
            }
            if (d <= 0) break;
            ix[k] = ix[k - 1];
            k--;
        }
        ix[k] = i;
    }
    return ix;
}

// dst = a + b, cut to fit (a field path for messages).
static void path_join(char *dst, size_t n, const char *a, const char *b) {
    if (snprintf(dst, n, "%s%s", a, b) >= (int)n && n > 4) memcpy(dst + n - 4, "...", 4);
}

static int oom(out_t *o) { return ilm_fail(o->err, "out of memory"); }

// ---- format_argument ------------------------------------------------------------------------------

static int format_argument(out_t *o, const ilm_json *v, bool escape_keys) {
    ilm_buf *b = &o->b;
    if (!v || v->type == JSON_NULL) ilm_buf_puts(b, "None");
    else if (v->type == JSON_STR) {
        ilm_buf_puts(b, Q);
        ilm_buf_add(b, v->str, v->len);
        ilm_buf_puts(b, Q);
    } else if (v->type == JSON_BOOL) ilm_buf_puts(b, v->num ? "true" : "false");
    else if (v->type == JSON_NUM) put_number(b, v->num);
    else if (v->type == JSON_ARR) {
        ilm_buf_putc(b, '[');
        for (size_t i = 0; i < v->len; i++) {
            if (i) ilm_buf_putc(b, ',');
            if (format_argument(o, &v->items[i], escape_keys)) return -1;
        }
        ilm_buf_putc(b, ']');
    } else {
        size_t *ix = sorted_keys(v);
        if (!ix) return oom(o);
        ilm_buf_putc(b, '{');
        for (size_t i = 0; i < v->len; i++) {
            if (i) ilm_buf_putc(b, ',');
            if (escape_keys) ilm_buf_puts(b, Q);
            ilm_buf_puts(b, v->keys[ix[i]]);
            if (escape_keys) ilm_buf_puts(b, Q);
            ilm_buf_putc(b, ':');
            if (format_argument(o, &v->items[ix[i]], escape_keys)) {
                free(ix);
                return -1;
            }
        }
        ilm_buf_putc(b, '}');
        free(ix);
    }
    return 0;
}

// ---- tool declarations: format_parameters, format_function_declaration ----------------------------

// A string field the template prints ({{ v }}); only strings are accepted.
static int need_str(out_t *o, const ilm_json *v, const char *path, const char *key) {
    if (absent(v) || v->type == JSON_STR) return 0;
    return ilm_fail(o->err, "%s.%s must be a string", path, key);
}

static void put_str(ilm_buf *b, const ilm_json *v) {  // {{ v }} of a string or undefined
    if (v && v->type == JSON_STR) ilm_buf_add(b, v->str, v->len);
}

static void comma(ilm_buf *b, bool *add_comma) {
    if (*add_comma) ilm_buf_putc(b, ',');
    else *add_comma = true;
}

static void put_required(ilm_buf *b, const ilm_json *req) {  // required:[<|"|>a<|"|>,...]
    ilm_buf_puts(b, "required:[");
    for (size_t i = 0; req && req->type == JSON_ARR && i < req->len; i++) {
        if (i) ilm_buf_putc(b, ',');
        ilm_buf_puts(b, Q);
        put_str(b, &req->items[i]);
        ilm_buf_puts(b, Q);
    }
    ilm_buf_putc(b, ']');
}

static int check_required(out_t *o, const ilm_json *req, const char *path) {
    if (absent(req)) return 0;
    if (req->type != JSON_ARR) return ilm_fail(o->err, "%s.required must be an array of strings", path);
    for (size_t i = 0; i < req->len; i++)
        if (req->items[i].type != JSON_STR) return ilm_fail(o->err, "%s.required[%zu] must be a string", path, i);
    return 0;
}

static int format_parameters(out_t *o, const ilm_json *props, const char *path, int depth);

// items:{...} of an array property.
static int format_items(out_t *o, const ilm_json *items, const char *path, int depth) {
    ilm_buf *b = &o->b;
    size_t *ix = sorted_keys(items);
    if (!ix) return oom(o);
    int rc = 0;
    bool first = true;
    ilm_buf_puts(b, "items:{");
    for (size_t i = 0; i < items->len && !rc; i++) {
        const char *k = items->keys[ix[i]];
        const ilm_json *v = &items->items[ix[i]];
        if (v->type == JSON_NULL) continue;
        if (!first) ilm_buf_putc(b, ',');
        first = false;
        if (!strcmp(k, "properties")) {
            ilm_buf_puts(b, "properties:{");
            if (v->type == JSON_OBJ) {
                char p[256];
                path_join(p, sizeof p, path, ".items.properties");
                rc = check_required(o, jget(items, "required"), path) || format_parameters(o, v, p, depth + 1);
            }
            ilm_buf_putc(b, '}');
        } else if (!strcmp(k, "required")) {
            if (!(rc = check_required(o, v, path))) put_required(b, v);
        } else if (!strcmp(k, "type")) {
            ilm_buf_puts(b, "type:");
            if (v->type == JSON_STR) {
                ilm_buf_puts(b, Q);
                put_upper(b, v->str, v->len);
                ilm_buf_puts(b, Q);
            } else if (v->type == JSON_ARR) {
                ilm_buf_putc(b, '[');
                for (size_t t = 0; t < v->len && !rc; t++) {
                    if (v->items[t].type != JSON_STR) rc = ilm_fail(o->err, "%s.items.type[%zu] must be a string", path, t);
                    else {
                        if (t) ilm_buf_putc(b, ',');
                        ilm_buf_puts(b, Q);
                        put_upper(b, v->items[t].str, v->items[t].len);
                        ilm_buf_puts(b, Q);
                    }
                }
                ilm_buf_putc(b, ']');
            } else rc = ilm_fail(o->err, "%s.items.type must be a string or an array of strings", path);
        } else {
            ilm_buf_puts(b, k);
            ilm_buf_putc(b, ':');
            rc = format_argument(o, v, true);
        }
    }
    ilm_buf_putc(b, '}');
    free(ix);
    return rc;
}

// format_parameters(properties): each property but the standard keys as NAME:{...}, sorted.
static int format_parameters(out_t *o, const ilm_json *props, const char *path, int depth) {
    static const char *const standard[] = {"description", "type", "properties", "required", "nullable"};
    if (depth > 32) return ilm_fail(o->err, "%s: schema nested too deeply", path);
    ilm_buf *b = &o->b;
    size_t *ix = sorted_keys(props);
    if (!ix) return oom(o);
    int rc = 0;
    bool found_first = false;
    for (size_t i = 0; i < props->len && !rc; i++) {
        const char *key = props->keys[ix[i]];
        const ilm_json *value = &props->items[ix[i]];
        bool std = false;
        for (size_t s = 0; s < sizeof standard / sizeof *standard; s++) std |= !strcmp(key, standard[s]);
        if (std) continue;
        char p[256];
        char dotted[256];
        path_join(dotted, sizeof dotted, ".", key);
        path_join(p, sizeof p, path, dotted);
        const ilm_json *desc = jget(value, "description"), *type = jget(value, "type");
        if ((truthy(desc) && (rc = need_str(o, desc, p, "description"))) || (rc = need_str(o, type, p, "type"))) break;
        if (found_first) ilm_buf_putc(b, ',');
        found_first = true;
        ilm_buf_puts(b, key);
        ilm_buf_puts(b, ":{");
        bool add_comma = false;
        if (truthy(desc)) {
            ilm_buf_puts(b, "description:" Q);
            put_str(b, desc);
            ilm_buf_puts(b, Q);
            add_comma = true;
        }
        if (upper_eq(type, "STRING")) {
            const ilm_json *en = jget(value, "enum");
            if (truthy(en)) {
                comma(b, &add_comma);
                ilm_buf_puts(b, "enum:");
                rc = format_argument(o, en, true);
            }
        } else if (upper_eq(type, "ARRAY")) {
            const ilm_json *items = jget(value, "items");
            if (items && items->type == JSON_OBJ && items->len) {
                comma(b, &add_comma);
                rc = format_items(o, items, p, depth);
            }
        }
        if (rc) break;
        if (truthy(jget(value, "nullable"))) {
            comma(b, &add_comma);
            ilm_buf_puts(b, "nullable:true");
        }
        if (upper_eq(type, "OBJECT")) {
            const ilm_json *pr = jget(value, "properties"), *req = jget(value, "required");
            if ((rc = check_required(o, req, p))) break;
            comma(b, &add_comma);
            ilm_buf_puts(b, "properties:{");
            if (pr && pr->type == JSON_OBJ) {  // (a null or non-object "properties": the value itself)
                char pp[256];
                path_join(pp, sizeof pp, p, ".properties");
                rc = format_parameters(o, pr, pp, depth + 1);
            } else rc = format_parameters(o, value, p, depth + 1);
            ilm_buf_putc(b, '}');
            if (rc) break;
            if (truthy(req)) {
                comma(b, &add_comma);
                put_required(b, req);
            }
        }
        comma(b, &add_comma);
        ilm_buf_puts(b, "type:" Q);
        if (type && type->type == JSON_STR) put_upper(b, type->str, type->len);
        ilm_buf_puts(b, Q "}");
    }
    free(ix);
    return rc;
}

// <|tool>declaration:NAME{description:...,parameters:{...}[,response:{...}]}<tool|>
static int format_function_declaration(out_t *o, const ilm_json *tool, size_t t) {
    ilm_buf *b = &o->b;
    char p[64];
    snprintf(p, sizeof p, "tools[%zu].function", t);
    const ilm_json *fn = jget(tool, "function");
    if (!fn || fn->type != JSON_OBJ) return ilm_fail(o->err, "tools[%zu] must be an object with a \"function\" object", t);
    const ilm_json *name = jget(fn, "name"), *desc = jget(fn, "description"), *params = jget(fn, "parameters");
    if (!name || name->type != JSON_STR || !name->len) return ilm_fail(o->err, "%s.name must be a non-empty string", p);
    if (need_str(o, desc, p, "description")) return -1;
    ilm_buf_puts(b, "<|tool>");
    size_t at = b->len;
    ilm_buf_puts(b, "declaration:");
    put_str(b, name);
    ilm_buf_puts(b, "{description:" Q);
    put_str(b, desc);
    ilm_buf_puts(b, Q);
    if (truthy(params)) {
        if (params->type != JSON_OBJ) return ilm_fail(o->err, "%s.parameters must be an object", p);
        const ilm_json *props = jget(params, "properties"), *req = jget(params, "required"), *type = jget(params, "type");
        char pp[80];
        snprintf(pp, sizeof pp, "%s.parameters", p);
        if (check_required(o, req, pp) || (truthy(type) && need_str(o, type, pp, "type"))) return -1;
        ilm_buf_puts(b, ",parameters:{");
        if (truthy(props)) {
            if (props->type != JSON_OBJ) return ilm_fail(o->err, "%s.properties must be an object", pp);
            char ppp[96];
            snprintf(ppp, sizeof ppp, "%s.properties", pp);
            ilm_buf_puts(b, "properties:{");
            if (format_parameters(o, props, ppp, 0)) return -1;
            ilm_buf_puts(b, "},");
        }
        if (truthy(req)) {
            put_required(b, req);
            ilm_buf_putc(b, ',');
        }
        if (truthy(type)) {  // (without a type the template leaves "parameters:{" open)
            ilm_buf_puts(b, "type:" Q);
            put_upper(b, type->str, type->len);
            ilm_buf_puts(b, Q "}");
        }
    }
    const ilm_json *resp = jget(fn, "response");
    if (resp) {
        const ilm_json *rd = jget(resp, "description"), *rt = jget(resp, "type");
        char pp[80];
        snprintf(pp, sizeof pp, "%s.response", p);
        if ((truthy(rd) && need_str(o, rd, pp, "description")) || need_str(o, rt, pp, "type")) return -1;
        ilm_buf_puts(b, ",response:{");
        if (truthy(rd)) {
            ilm_buf_puts(b, "description:" Q);
            put_str(b, rd);
            ilm_buf_puts(b, Q ",");
        }
        if (upper_eq(rt, "OBJECT")) ilm_buf_puts(b, "type:" Q "OBJECT" Q "}");
    }
    ilm_buf_putc(b, '}');
    if (!b->oom) {  // `| trim` of the declaration
        size_t s = at, e = b->len;
        while (s < e && is_ws((unsigned char)b->p[s])) s++;
        while (e > s && is_ws((unsigned char)b->p[e - 1])) e--;
        memmove(b->p + at, b->p + s, e - s);
        b->len = at + (e - s);
    }
    ilm_buf_puts(b, "<tool|>");
    return 0;
}

// ---- messages -------------------------------------------------------------------------------------

// format_tool_response_block(name, response)
static int tool_response_block(out_t *o, const char *name, const ilm_json *resp) {
    ilm_buf *b = &o->b;
    ilm_buf_puts(b, "<|tool_response>response:");
    ilm_buf_puts(b, name);
    ilm_buf_putc(b, '{');
    if (resp && resp->type == JSON_OBJ) {
        size_t *ix = sorted_keys(resp);
        if (!ix) return oom(o);
        for (size_t i = 0; i < resp->len; i++) {
            if (i) ilm_buf_putc(b, ',');
            ilm_buf_puts(b, resp->keys[ix[i]]);
            ilm_buf_putc(b, ':');
            if (format_argument(o, &resp->items[ix[i]], false)) {
                free(ix);
                return -1;
            }
        }
        free(ix);
    } else {
        ilm_buf_puts(b, "value:");
        if (format_argument(o, resp, false)) return -1;
    }
    ilm_buf_puts(b, "}<tool_response|>");
    return 0;
}

static const char *role_of(const ilm_json *m) {
    const ilm_json *r = jget(m, "role");
    return r && r->type == JSON_STR ? r->str : "";
}

// Content as text parts: checks the shape (string, or array of {type:"text", text}).
static int check_content(out_t *o, const ilm_json *c, size_t i, bool may_be_absent) {
    if (absent(c)) return may_be_absent ? 0 : ilm_fail(o->err, "messages[%zu].content is missing", i);
    if (c->type == JSON_STR) return 0;
    if (c->type != JSON_ARR)
        return ilm_fail(o->err, "messages[%zu].content must be a string or an array of text parts", i);
    for (size_t k = 0; k < c->len; k++) {
        const ilm_json *part = &c->items[k], *type = jget(part, "type"), *text = jget(part, "text");
        if (!type || type->type != JSON_STR || strcmp(type->str, "text"))
            return ilm_fail(o->err, "messages[%zu].content[%zu]: only parts of type \"text\" are supported", i, k);
        if (!text || text->type != JSON_STR) return ilm_fail(o->err, "messages[%zu].content[%zu].text must be a string", i, k);
    }
    return 0;
}

// The message's content, each text part trimmed (or thinking-stripped for the model).
static void put_content(ilm_buf *b, const ilm_json *c, bool model) {
    if (absent(c)) return;
    if (c->type == JSON_STR) {
        (model ? put_stripped : put_trimmed)(b, c->str, c->len);
        return;
    }
    for (size_t k = 0; k < c->len; k++) {
        const ilm_json *text = jget(&c->items[k], "text");
        (model ? put_stripped : put_trimmed)(b, text->str, text->len);
    }
}

static bool same_id(const ilm_json *a, const ilm_json *b) {  // tc.get('id') == follow.get('tool_call_id')
    if (absent(a) || absent(b)) return absent(a) && absent(b);
    if (a->type != b->type) return false;
    if (a->type == JSON_STR) return a->len == b->len && !memcmp(a->str, b->str, a->len);
    if (a->type == JSON_NUM || a->type == JSON_BOOL) return a->num == b->num;
    return false;
}

// <|tool_call>call:NAME{k:v,...}<tool_call|> for each call; arguments given as a JSON string are
// parsed (OpenAI sends them so), as llama.cpp does for templates that want objects.
static int tool_calls(out_t *o, const ilm_json *calls, size_t i) {
    ilm_buf *b = &o->b;
    if (calls->type != JSON_ARR) return ilm_fail(o->err, "messages[%zu].tool_calls must be an array", i);
    for (size_t k = 0; k < calls->len; k++) {
        const ilm_json *fn = jget(&calls->items[k], "function"), *name = jget(fn, "name"), *args = jget(fn, "arguments");
        if (!fn || fn->type != JSON_OBJ)
            return ilm_fail(o->err, "messages[%zu].tool_calls[%zu].function must be an object", i, k);
        if (!name || name->type != JSON_STR || !name->len)
            return ilm_fail(o->err, "messages[%zu].tool_calls[%zu].function.name must be a non-empty string", i, k);
        ilm_json *parsed = NULL;
        if (args && args->type == JSON_STR) {  // "" = no arguments
            if (args->len) {
                ilm_err e2;
                if (!(parsed = ilm_json_parse(args->str, args->len, &e2)))
                    return ilm_fail(o->err, "messages[%zu].tool_calls[%zu].function.arguments is not valid JSON: %s", i, k,
                                    e2.msg);
            }
            args = parsed;
        }
        if (!absent(args) && args->type != JSON_OBJ) {
            ilm_json_free(parsed);
            return ilm_fail(o->err, "messages[%zu].tool_calls[%zu].function.arguments must be a JSON object", i, k);
        }
        ilm_buf_puts(b, "<|tool_call>call:");
        ilm_buf_add(b, name->str, name->len);
        ilm_buf_putc(b, '{');
        int rc = 0;
        if (!absent(args)) {
            size_t *ix = sorted_keys(args);
            if (!ix) rc = oom(o);
            for (size_t a = 0; ix && a < args->len && !rc; a++) {
                if (a) ilm_buf_putc(b, ',');
                ilm_buf_puts(b, args->keys[ix[a]]);
                ilm_buf_putc(b, ':');
                rc = format_argument(o, &args->items[ix[a]], false);
            }
            free(ix);
        }
        ilm_json_free(parsed);
        if (rc) return -1;
        ilm_buf_puts(b, "}<tool_call|>");
    }
    return 0;
}

// The role:tool messages right after message i (an assistant with tool calls), folded in.
// Returns how many were consumed, or -1.
static int fold_tool_responses(out_t *o, const ilm_json *msgs, size_t i, const ilm_json *calls) {
    int n = 0;
    for (size_t k = i + 1; k < msgs->len && !strcmp(role_of(&msgs->items[k]), "tool"); k++, n++) {
        const ilm_json *f = &msgs->items[k], *id = jget(f, "tool_call_id"), *fname = jget(f, "name");
        const char *name = fname && fname->type == JSON_STR ? fname->str : NULL;
        if (!absent(fname) && !name) return ilm_fail(o->err, "messages[%zu].name must be a string", k);
        for (size_t c = 0; c < calls->len; c++)
            if (same_id(jget(&calls->items[c], "id"), id)) name = jget(jget(&calls->items[c], "function"), "name")->str;
        if (!name)
            return ilm_fail(o->err, "messages[%zu].tool_call_id matches no tool call of messages[%zu] (and no name is given)",
                            k, i);
        const ilm_json *body = jget(f, "content");
        int rc;
        if (body && body->type == JSON_ARR) {
            ilm_buf s = {0};
            ilm_buf_add(&s, "", 0);
            for (size_t p = 0; p < body->len; p++) {
                const ilm_json *type = jget(&body->items[p], "type"), *text = jget(&body->items[p], "text");
                if (type && type->type == JSON_STR && !strcmp(type->str, "text") && text && text->type == JSON_STR)
                    ilm_buf_add(&s, text->str, text->len);
            }
            if (s.oom) {
                ilm_buf_free(&s);
                return oom(o);
            }
            ilm_json str = {.type = JSON_STR, .str = s.p, .len = s.len};
            rc = tool_response_block(o, name, &str);
            ilm_buf_free(&s);
        } else if (body && body->type == JSON_OBJ) {
            return ilm_fail(o->err, "messages[%zu].content must be a string or an array of text parts", k);
        } else rc = tool_response_block(o, name, body);
        if (rc) return -1;
    }
    return n;
}

static int render_messages(out_t *o, const ilm_json *msgs, size_t first, bool add_gen, bool thinking,
                           const char *prev_type) {
    ilm_buf *b = &o->b;
    long last_user = -1;
    for (size_t i = first; i < msgs->len; i++)
        if (!strcmp(role_of(&msgs->items[i]), "user")) last_user = (long)i;
    const char *prev_nt = NULL;  // role of the previous non-tool message
    bool tool_ok = false;        // a tool message here was folded into the preceding assistant's
    for (size_t i = first; i < msgs->len; i++) {
        const ilm_json *m = &msgs->items[i];
        const char *role = role_of(m);
        if (m->type != JSON_OBJ) return ilm_fail(o->err, "messages[%zu] must be an object", i);
        if (!strcmp(role, "tool")) {
            if (!tool_ok) return ilm_fail(o->err, "messages[%zu].role: a tool message must follow an assistant message with tool_calls", i);
            continue;
        }
        tool_ok = false;
        bool model = !strcmp(role, "assistant");
        if (!model && strcmp(role, "user") && strcmp(role, "system") && strcmp(role, "developer"))
            return ilm_fail(o->err, "messages[%zu].role must be one of system, developer, user, assistant, tool", i);
        const ilm_json *content = jget(m, "content"), *calls = jget(m, "tool_calls"),
                       *legacy = jget(m, "tool_responses");
        if (check_content(o, content, i, true)) return -1;
        if (!model && (truthy(calls) || truthy(legacy)))
            return ilm_fail(o->err, "messages[%zu].tool_calls: only assistant messages make tool calls", i);
        prev_type = NULL;
        if (!(model && prev_nt && !strcmp(prev_nt, "assistant"))) {
            ilm_buf_puts(b, "<|turn>");
            ilm_buf_puts(b, model ? "model" : role);
            ilm_buf_putc(b, '\n');
        }
        prev_nt = role;
        const ilm_json *think = jget(m, "reasoning");
        if (!truthy(think)) think = jget(m, "reasoning_content");
        if (truthy(think) && (long)i > last_user && truthy(calls)) {
            if (think->type != JSON_STR) return ilm_fail(o->err, "messages[%zu].reasoning_content must be a string", i);
            ilm_buf_puts(b, "<|channel>thought\n");
            ilm_buf_add(b, think->str, think->len);
            ilm_buf_puts(b, "\n<channel|>");
        }
        if (truthy(calls)) {
            if (tool_calls(o, calls, i)) return -1;
            prev_type = "tool_call";
        }
        bool tr_out = false;
        if (truthy(legacy)) {
            if (legacy->type != JSON_ARR) return ilm_fail(o->err, "messages[%zu].tool_responses must be an array", i);
            for (size_t k = 0; k < legacy->len; k++) {
                const ilm_json *nm = jget(&legacy->items[k], "name");
                if (!absent(nm) && nm->type != JSON_STR)
                    return ilm_fail(o->err, "messages[%zu].tool_responses[%zu].name must be a string", i, k);
                if (tool_response_block(o, nm ? nm->str : "unknown", jget(&legacy->items[k], "response"))) return -1;
                tr_out = true;
                prev_type = "tool_response";
            }
        } else if (truthy(calls)) {
            int n = fold_tool_responses(o, msgs, i, calls);
            if (n < 0) return -1;
            if (n > 0) {
                tr_out = true;
                prev_type = "tool_response";
            }
            tool_ok = true;
        }
        put_content(b, content, model);
        if (prev_type && !strcmp(prev_type, "tool_call") && !tr_out) ilm_buf_puts(b, "<|tool_response>");
        else if (!(tr_out && !truthy(content))) ilm_buf_puts(b, "<turn|>\n");
    }
    if (add_gen && !(prev_type && (!strcmp(prev_type, "tool_response") || !strcmp(prev_type, "tool_call")))) {
        ilm_buf_puts(b, "<|turn>model\n");
        if (!thinking) ilm_buf_puts(b, "<|channel>thought\n<channel|>");
    }
    return 0;
}

char *ilm_chat_template_render(const ilm_json *messages, const ilm_json *tools, bool add_generation_prompt,
                               bool enable_thinking, bool with_bos, ilm_err *err) {
    if (!messages || messages->type != JSON_ARR) {
        ilm_fail(err, "messages must be an array");
        return NULL;
    }
    if (!absent(tools) && tools->type != JSON_ARR) {
        ilm_fail(err, "tools must be an array");
        return NULL;
    }
    out_t o = {.err = err};
    ilm_buf *b = &o.b;
    ilm_buf_add(b, "", 0);
    if (with_bos) ilm_buf_puts(b, "<bos>");
    const char *first_role = messages->len ? role_of(&messages->items[0]) : "";
    bool sys = !strcmp(first_role, "system") || !strcmp(first_role, "developer");
    bool has_tools = truthy(tools);
    const char *prev_type = NULL;
    int rc = 0;
    if (enable_thinking || has_tools || sys) {
        ilm_buf_puts(b, "<|turn>system\n");
        if (enable_thinking) {
            ilm_buf_puts(b, "<|think|>\n");
            prev_type = "think";
        }
        if (sys) {
            const ilm_json *c = jget(&messages->items[0], "content");
            if (!(rc = check_content(&o, c, 0, false))) put_content(b, c, false);
        }
        for (size_t t = 0; has_tools && t < tools->len && !rc; t++)
            rc = format_function_declaration(&o, &tools->items[t], t);
        if (has_tools) prev_type = "tool";
        ilm_buf_puts(b, "<turn|>\n");
    }
    if (!rc) rc = render_messages(&o, messages, sys ? 1 : 0, add_generation_prompt, enable_thinking, prev_type);
    if (!rc && b->oom) rc = oom(&o);
    if (rc) {
        ilm_buf_free(b);
        return NULL;
    }
    return b->p;
}
