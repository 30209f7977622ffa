// api_request.c — request bodies of the OpenAI-compatible API → validated C structs: chat and
// completion requests (sampling, stop strings, penalties, logit bias, llama.cpp extras; chat
// messages and tools rendered with gen/chat_template.h), /apply-template, /tokenize and
// /detokenize. See api.h.
// Length: every request body of the API shares the typed field readers and the error type; the
// chat part (message checks, template errors, tools, tool_choice) is about a quarter of it.
#include "serve/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/json.h"
#include "gen/chat_template.h"
#include "gen/constrain.h"

int ilm_api_fail(ilm_api_error *e, int status, const char *param, const char *fmt, ...) {
    if (!e) return -1;
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", status >= 500 ? "server_error" : "invalid_request_error");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(e, param, ...) ilm_api_fail((e), 400, (param), __VA_ARGS__)
#define OOM(e) ilm_api_fail((e), 500, "", "out of memory")

// ---- typed field readers: absent or null → *given = false, wrong type or range → 400 ----------

static const char *type_name(const ilm_json *v) {
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return v->type >= 0 && v->type <= JSON_OBJ ? names[v->type] : "?";
}

static bool absent(const ilm_json *v) { return !v || v->type == JSON_NULL; }

static int read_bool(const ilm_json *v, const char *name, bool *out, ilm_api_error *e) {
    if (absent(v)) return 0;
    if (v->type != JSON_BOOL) return BAD(e, name, "%s must be a boolean, not %s", name, type_name(v));
    *out = v->num != 0;
    return 0;
}

static int read_num(const ilm_json *v, const char *name, double lo, double hi, bool *given, double *out,
                    ilm_api_error *e) {
    *given = false;
    if (absent(v)) return 0;
    if (v->type != JSON_NUM) return BAD(e, name, "%s must be a number, not %s", name, type_name(v));
    if (!isfinite(v->num)) return BAD(e, name, "%s must be a finite number", name);
    if (v->num < lo || v->num > hi) return BAD(e, name, "%s must be between %g and %g (got %g)", name, lo, hi, v->num);
    *given = true;
    *out = v->num;
    return 0;
}

// A float field: out unchanged when absent.
static int read_float(const ilm_json *v, const char *name, double lo, double hi, float *out, ilm_api_error *e) {
    bool given;
    double d;
    if (read_num(v, name, lo, hi, &given, &d, e)) return -1;
    if (given) *out = (float)d;
    return 0;
}

static bool is_integer(const ilm_json *v) { return v->type == JSON_NUM && isfinite(v->num) && v->num == floor(v->num); }

static int read_int(const ilm_json *v, const char *name, long long lo, long long hi, bool *given, long long *out,
                    ilm_api_error *e) {
    *given = false;
    if (absent(v)) return 0;
    if (!is_integer(v)) return BAD(e, name, "%s must be an integer, not %s", name, v->type == JSON_NUM ? "a fraction" : type_name(v));
    if (v->num < (double)lo || v->num > (double)hi)
        return BAD(e, name, "%s must be between %lld and %lld (got %.0f)", name, lo, hi, v->num);
    *given = true;
    *out = (long long)v->num;
    return 0;
}

static int read_int32(const ilm_json *v, const char *name, long long lo, long long hi, int *out, ilm_api_error *e) {
    bool given;
    long long x;
    if (read_int(v, name, lo, hi, &given, &x, e)) return -1;
    if (given) *out = (int)x;
    return 0;
}

// A string without NUL bytes, copied (NULL when absent).
static int read_str(const ilm_json *v, const char *name, char **out, ilm_api_error *e) {
    *out = NULL;
    if (absent(v)) return 0;
    if (v->type != JSON_STR) return BAD(e, name, "%s must be a string, not %s", name, type_name(v));
    if (strlen(v->str) != v->len) return BAD(e, name, "%s must not contain NUL characters", name);
    *out = strdup(v->str);
    return *out ? 0 : OOM(e);
}

// A field that may also be given flat with a dotted name, as llama.cpp reads "speculative.n_max".
static const ilm_json *get_nested(const ilm_json *root, const char *obj, const char *key, const char *dotted) {
    const ilm_json *v = ilm_json_get(root, dotted);
    if (!absent(v)) return v;
    return ilm_json_get(ilm_json_get(root, obj), key);
}

// ---- chat messages ------------------------------------------------------------------------------

// The text of messages[i].content: a string, or the "text" parts of an array joined with "\n"
// (as llama.cpp joins them); NULL content only for an assistant. *out is malloc'd.
static int message_text(const ilm_json *content, int i, bool assistant, char **out, ilm_api_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    *out = NULL;
    if (absent(content)) {
        if (!assistant) return BAD(e, param, "%s is missing", param);
        *out = strdup("");
        return *out ? 0 : OOM(e);
    }
    if (content->type == JSON_STR) return read_str(content, param, out, e);
    if (content->type != JSON_ARR)
        return BAD(e, param, "%s must be a string or an array of text parts, not %s", param, type_name(content));
    ilm_buf b = {0};
    ilm_buf_add(&b, "", 0);
    for (size_t k = 0; k < content->len; k++) {
        const ilm_json *part = &content->items[k];
        char pp[64];
        snprintf(pp, sizeof pp, "messages[%d].content[%zu]", i, k);
        const ilm_json *type = ilm_json_get(part, "type"), *text = ilm_json_get(part, "text");
        int rc = 0;
        if (part->type != JSON_OBJ) rc = BAD(e, pp, "%s must be an object, not %s", pp, type_name(part));
        else if (!type || type->type != JSON_STR) rc = BAD(e, pp, "%s needs a \"type\" string", pp);
        else if (strcmp(type->str, "text") != 0)
            rc = BAD(e, pp, "%s: content parts of type \"%.40s\" are not supported (only \"text\")", pp, type->str);
        else if (!text || text->type != JSON_STR)
            rc = BAD(e, pp, "%s.text must be a string", pp);
        else if (strlen(text->str) != text->len)
            rc = BAD(e, pp, "%s.text must not contain NUL characters", pp);
        if (rc) {
            ilm_buf_free(&b);
            return rc;
        }
        if (k > 0) ilm_buf_putc(&b, '\n');
        ilm_buf_add(&b, text->str, text->len);
    }
    if (b.oom) {
        ilm_buf_free(&b);
        return OOM(e);
    }
    *out = b.p;
    return 0;
}

// Checks what the server needs beyond the template (gen/chat_template.h): objects with a known
// role, a system/developer message only first, content present (but for an assistant) and free
// of NUL bytes. Returns 0 or 400.
static int check_messages(const ilm_json *msgs, ilm_api_error *e) {
    if (absent(msgs)) return BAD(e, "messages", "messages is missing");
    if (msgs->type != JSON_ARR) return BAD(e, "messages", "messages must be an array, not %s", type_name(msgs));
    if (msgs->len == 0) return BAD(e, "messages", "messages must not be empty");
    if (msgs->len > 1000000) return BAD(e, "messages", "messages has too many entries");
    int n = (int)msgs->len;
    for (int i = 0; i < n; i++) {
        const ilm_json *m = &msgs->items[i];
        char param[64];
        snprintf(param, sizeof param, "messages[%d]", i);
        if (m->type != JSON_OBJ) return BAD(e, param, "%s must be an object, not %s", param, type_name(m));
        snprintf(param, sizeof param, "messages[%d].role", i);
        const ilm_json *role = ilm_json_get(m, "role");
        if (!role || role->type != JSON_STR)
            return BAD(e, param, "%s must be a string (system, developer, user, assistant or tool)", param);
        bool sys = !strcmp(role->str, "system") || !strcmp(role->str, "developer"),
             assistant = !strcmp(role->str, "assistant");
        if (!sys && !assistant && strcmp(role->str, "user") && strcmp(role->str, "tool"))
            return BAD(e, param, "%s \"%.40s\" is not one of system, developer, user, assistant, tool", param, role->str);
        if (sys && i > 0) return BAD(e, param, "%s: a system message must be the first message", param);
        char *text;
        if (message_text(ilm_json_get(m, "content"), i, assistant, &text, e)) return -1;
        free(text);
    }
    return 0;
}

// A renderer error as a 400 naming its field: the message starts with the path ("messages[2]
// .tool_calls[0].function.name must be ...").
static int template_fail(ilm_api_error *e, const ilm_err *err) {
    char param[64];
    size_t n = strspn(err->msg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]");
    if (n >= sizeof param || (strncmp(err->msg, "messages", 8) && strncmp(err->msg, "tools", 5))) n = 0;
    memcpy(param, err->msg, n);
    param[n] = 0;
    if (!strcmp(err->msg, "out of memory")) return OOM(e);
    return BAD(e, n ? param : "messages", "%s", err->msg);
}

static int read_tools(const ilm_json *root, const ilm_json **tools, ilm_api_error *e) {
    *tools = ilm_json_get(root, "tools");
    if (absent(*tools)) *tools = NULL;
    else if ((*tools)->type != JSON_ARR)
        return BAD(e, "tools", "tools must be an array of function declarations, not %s", type_name(*tools));
    return 0;
}

// The messages (and tools) rendered by Gemma 4's template. With prefill, a final assistant
// message without tool calls is continued: the rest is rendered with the generation prompt and
// its text follows verbatim, the turn left open.
static int render_template(const ilm_json *root, bool add_gen, bool thinking, bool with_bos, bool prefill,
                           bool drop_tools, char **out, ilm_api_error *e) {
    *out = NULL;
    const ilm_json *msgs = ilm_json_get(root, "messages");
    if (check_messages(msgs, e)) return -1;
    const ilm_json *tools;
    if (read_tools(root, &tools, e)) return -1;
    if (drop_tools) tools = NULL;  // tool_choice "none": the model is not told about them
    ilm_json shown = *msgs;
    const ilm_json *last = &msgs->items[msgs->len - 1], *role = ilm_json_get(last, "role"),
                   *calls = ilm_json_get(last, "tool_calls");
    char *tail = NULL;
    if (prefill && !strcmp(role->str, "assistant") && (absent(calls) || (calls->type == JSON_ARR && !calls->len))) {
        if (message_text(ilm_json_get(last, "content"), (int)msgs->len - 1, true, &tail, e)) return -1;
        shown.len--;
        add_gen = true;
    }
    ilm_err err;
    char *p = ilm_chat_template_render(&shown, tools, add_gen, thinking, with_bos, &err);
    if (!p) {
        free(tail);
        return template_fail(e, &err);
    }
    if (tail) {
        size_t pl = strlen(p), fl = strlen(tail);
        char *q = realloc(p, pl + fl + 1);
        if (!q) {
            free(p);
            free(tail);
            return OOM(e);
        }
        memcpy(q + pl, tail, fl + 1);
        p = q;
        free(tail);
    }
    *out = p;
    return 0;
}

// tool_choice: "none" | "auto" | "required" | {"type":"function","function":{"name":NAME}}.
static int read_tool_choice(const ilm_json *root, ilm_api_request *r, ilm_api_error *e) {
    const ilm_json *tc = ilm_json_get(root, "tool_choice");
    r->tool_choice = ILM_API_TOOL_AUTO;
    if (absent(tc)) return 0;
    if (tc->type == JSON_STR) {
        if (!strcmp(tc->str, "auto")) r->tool_choice = ILM_API_TOOL_AUTO;
        else if (!strcmp(tc->str, "none")) r->tool_choice = ILM_API_TOOL_NONE;
        else if (!strcmp(tc->str, "required")) r->tool_choice = ILM_API_TOOL_REQUIRED;
        else return BAD(e, "tool_choice", "tool_choice \"%.40s\" is not one of none, auto, required", tc->str);
        return 0;
    }
    const ilm_json *type = ilm_json_get(tc, "type"), *name = ilm_json_get(ilm_json_get(tc, "function"), "name");
    if (tc->type != JSON_OBJ || !type || type->type != JSON_STR || strcmp(type->str, "function"))
        return BAD(e, "tool_choice",
                   "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}");
    if (!name || name->type != JSON_STR || !name->len)
        return BAD(e, "tool_choice.function.name", "tool_choice.function.name must be a non-empty string");
    const ilm_json *tools = ilm_json_get(root, "tools");
    bool found = false;
    for (size_t i = 0; tools && tools->type == JSON_ARR && i < tools->len; i++) {
        const ilm_json *n = ilm_json_get(ilm_json_get(&tools->items[i], "function"), "name");
        found |= n && n->type == JSON_STR && !strcmp(n->str, name->str);
    }
    if (!found)
        return BAD(e, "tool_choice.function.name", "tool_choice names \"%.60s\", which is not among the tools", name->str);
    r->tool_choice = ILM_API_TOOL_FUNCTION;
    return read_str(name, "tool_choice.function.name", &r->tool_choice_name, e);
}

static int render_chat(const ilm_json *root, ilm_api_request *r, ilm_api_error *e) {
    char *p;
    if (read_tool_choice(root, r, e)) return -1;
    if (render_template(root, true, r->enable_thinking, false, true, r->tool_choice == ILM_API_TOOL_NONE, &p, e))
        return -1;
    r->prompt_text = p;
    r->prompt_len = strlen(p);
    const ilm_json *tools = ilm_json_get(root, "tools");
    if (!absent(tools) && tools->len) {
        ilm_buf b = {0};
        ilm_json_buf_value(&b, tools);
        if (b.oom) {
            ilm_buf_free(&b);
            return OOM(e);
        }
        r->tools_json = b.p;
    }
    // parallel_tool_calls (default true): several calls in one reply
    const ilm_json *par = ilm_json_get(root, "parallel_tool_calls");
    r->parallel_tool_calls = true;
    if (!absent(par)) {
        if (par->type != JSON_BOOL) return BAD(e, "parallel_tool_calls", "parallel_tool_calls must be a boolean");
        r->parallel_tool_calls = par->num != 0;
    }
    // required / a named function: the output is constrained to calls whose arguments follow
    // the declared parameters (gen/constrain.h), so the declarations must compile
    if (r->tool_choice == ILM_API_TOOL_REQUIRED || r->tool_choice == ILM_API_TOOL_FUNCTION) {
        if (!r->tools_json) return BAD(e, "tool_choice", "tool_choice \"required\" needs a non-empty tools array");
        ilm_err err;
        if (ilm_constraint_check_tools(r->tools_json, r->tool_choice_name, &err))
            return BAD(e, "tools", "%.300s", err.msg);
    }
    return 0;
}

// response_format: text | json_object | json_schema (checked against the constraint's subset).
static int read_response_format(const ilm_json *root, ilm_api_request *r, ilm_api_error *e) {
    const ilm_json *rf = ilm_json_get(root, "response_format");
    r->response_format = ILM_API_FORMAT_TEXT;
    if (absent(rf)) return 0;
    const ilm_json *type = ilm_json_get(rf, "type");
    if (rf->type != JSON_OBJ || !type || type->type != JSON_STR)
        return BAD(e, "response_format", "response_format must be an object with a string \"type\"");
    if (!strcmp(type->str, "text")) return 0;
    if (r->tool_choice == ILM_API_TOOL_REQUIRED || r->tool_choice == ILM_API_TOOL_FUNCTION)
        return BAD(e, "response_format", "response_format %.40s cannot be combined with tool_choice %s (the reply is "
                   "a tool call)", type->str, r->tool_choice == ILM_API_TOOL_REQUIRED ? "\"required\"" : "function");
    if (!strcmp(type->str, "json_object")) {
        r->response_format = ILM_API_FORMAT_JSON_OBJECT;
        return 0;
    }
    if (strcmp(type->str, "json_schema"))
        return BAD(e, "response_format.type", "response_format.type \"%.40s\" is not text, json_object or json_schema",
                   type->str);
    const ilm_json *schema = ilm_json_get(ilm_json_get(rf, "json_schema"), "schema");
    if (!schema || schema->type != JSON_OBJ)
        return BAD(e, "response_format.json_schema.schema", "response_format.json_schema.schema must be an object");
    ilm_buf b = {0};
    ilm_json_buf_value(&b, schema);
    if (b.oom) {
        ilm_buf_free(&b);
        return OOM(e);
    }
    ilm_err err;
    if (ilm_constraint_check_schema(b.p, &err)) {
        ilm_buf_free(&b);
        return BAD(e, "response_format.json_schema.schema", "response_format.json_schema.schema: %.200s", err.msg);
    }
    r->response_format = ILM_API_FORMAT_JSON_SCHEMA;
    r->json_schema = b.p;
    return 0;
}

// ---- completion prompt --------------------------------------------------------------------------

static int read_ids(const ilm_json *arr, const char *name, int32_t **ids, int *n, ilm_api_error *e) {
    *ids = NULL;
    *n = 0;
    if (arr->len == 0) return 0;
    if (arr->len > (size_t)ILM_API_MAX_TOKENS) return BAD(e, name, "%s has too many tokens", name);
    int32_t *p = malloc(arr->len * sizeof *p);
    if (!p) return OOM(e);
    for (size_t i = 0; i < arr->len; i++) {
        const ilm_json *v = &arr->items[i];
        if (!is_integer(v) || v->num < 0 || v->num > INT32_MAX) {
            free(p);
            return BAD(e, name, "%s[%zu] must be a token id (a non-negative integer)", name, i);
        }
        p[i] = (int32_t)v->num;
    }
    *ids = p;
    *n = (int)arr->len;
    return 0;
}

static int read_prompt(const ilm_json *root, ilm_api_request *r, ilm_api_error *e) {
    const ilm_json *p = ilm_json_get(root, "prompt");
    if (absent(p)) return BAD(e, "prompt", "prompt is missing");
    if (p->type == JSON_ARR && p->len >= 1 && p->items[0].type != JSON_NUM) {
        // Batched prompts: an array of strings (or of token arrays); one is fine.
        if (p->len > 1) return BAD(e, "prompt", "batched prompts are not supported (prompt has %zu entries)", p->len);
        p = &p->items[0];
        if (p->type == JSON_ARR) {
            if (p->len == 0) return BAD(e, "prompt[0]", "prompt[0] must not be empty");
            return read_ids(p, "prompt[0]", &r->prompt_ids, &r->n_prompt_ids, e);
        }
        if (p->type != JSON_STR) return BAD(e, "prompt[0]", "prompt[0] must be a string or an array of token ids");
        if (read_str(p, "prompt[0]", &r->prompt_text, e)) return -1;
        r->prompt_len = strlen(r->prompt_text);
        return 0;
    }
    if (p->type == JSON_STR) {
        if (read_str(p, "prompt", &r->prompt_text, e)) return -1;
        r->prompt_len = strlen(r->prompt_text);
        return 0;
    }
    if (p->type != JSON_ARR)
        return BAD(e, "prompt", "prompt must be a string or an array of token ids, not %s", type_name(p));
    if (p->len == 0) return BAD(e, "prompt", "prompt must not be empty");
    return read_ids(p, "prompt", &r->prompt_ids, &r->n_prompt_ids, e);
}

// ---- stop strings and logit bias ----------------------------------------------------------------

static int add_stop(ilm_api_request *r, const ilm_json *v, const char *name, ilm_api_error *e) {
    if (v->type != JSON_STR) return BAD(e, name, "%s must be a string, not %s", name, type_name(v));
    if (v->len == 0) return BAD(e, name, "%s must not be empty", name);
    if (v->len > ILM_API_MAX_STOP_LEN) return BAD(e, name, "%s is longer than %d bytes", name, ILM_API_MAX_STOP_LEN);
    return read_str(v, name, &r->stop[r->n_stop++], e);
}

static int read_stop(const ilm_json *root, ilm_api_request *r, ilm_api_error *e) {
    const ilm_json *s = ilm_json_get(root, "stop");
    if (absent(s)) return 0;
    if (s->type != JSON_STR && s->type != JSON_ARR)
        return BAD(e, "stop", "stop must be a string or an array of strings, not %s", type_name(s));
    size_t n = s->type == JSON_STR ? 1 : s->len;
    if (n > ILM_API_MAX_STOP) return BAD(e, "stop", "stop has %zu strings; at most %d are supported", n, ILM_API_MAX_STOP);
    if (n == 0) return 0;
    r->stop = calloc(n, sizeof *r->stop);
    if (!r->stop) return OOM(e);
    if (s->type == JSON_STR) return add_stop(r, s, "stop", e);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "stop[%zu]", i);
        if (add_stop(r, &s->items[i], name, e)) return -1;
    }
    return 0;
}

// A token id in a logit_bias key: decimal digits only, within int32.
static bool parse_token_key(const char *k, int32_t *out) {
    if (!*k || strlen(k) > 10) return false;
    long long v = 0;
    for (const char *c = k; *c; c++) {
        if (*c < '0' || *c > '9') return false;
        v = v * 10 + (*c - '0');
    }
    if (v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

static int bias_value(const ilm_json *v, const char *name, float *out, ilm_api_error *e) {
    if (v->type == JSON_BOOL && v->num == 0) {
        *out = -INFINITY;
        return 0;
    }
    if (v->type != JSON_NUM || !isfinite(v->num) || v->num < -100 || v->num > 100)
        return BAD(e, name, "%s must be a number between -100 and 100, or false to ban the token", name);
    *out = (float)v->num;
    return 0;
}

// OpenAI's {"123": -100} and llama.cpp's [[123, -1.5], [456, false]].
static int read_logit_bias(const ilm_json *root, ilm_api_request *r, ilm_api_error *e) {
    const ilm_json *lb = ilm_json_get(root, "logit_bias");
    if (absent(lb)) return 0;
    if (lb->type != JSON_OBJ && lb->type != JSON_ARR)
        return BAD(e, "logit_bias", "logit_bias must be an object or an array of [token, bias] pairs, not %s",
                   type_name(lb));
    if (lb->len == 0) return 0;
    if (lb->len > (size_t)ILM_API_MAX_TOKENS) return BAD(e, "logit_bias", "logit_bias has too many entries");
    r->logit_bias = calloc(lb->len, sizeof *r->logit_bias);
    if (!r->logit_bias) return OOM(e);
    for (size_t i = 0; i < lb->len; i++) {
        ilm_api_logit_bias *out = &r->logit_bias[i];
        char name[64];
        if (lb->type == JSON_OBJ) {
            snprintf(name, sizeof name, "logit_bias.%.40s", lb->keys[i]);
            if (!parse_token_key(lb->keys[i], &out->token))
                return BAD(e, name, "logit_bias key \"%.40s\" must be a token id (a non-negative integer)", lb->keys[i]);
            if (bias_value(&lb->items[i], name, &out->bias, e)) return -1;
        } else {
            const ilm_json *pair = &lb->items[i];
            snprintf(name, sizeof name, "logit_bias[%zu]", i);
            if (pair->type != JSON_ARR || pair->len != 2)
                return BAD(e, name, "%s must be a [token, bias] pair", name);
            const ilm_json *id = &pair->items[0];
            if (!is_integer(id) || id->num < 0 || id->num > INT32_MAX)
                return BAD(e, name, "%s[0] must be a token id (a non-negative integer)", name);
            out->token = (int32_t)id->num;
            if (bias_value(&pair->items[1], name, &out->bias, e)) return -1;
        }
        r->n_logit_bias++;
    }
    return 0;
}

// ---- the request --------------------------------------------------------------------------------

static ilm_json *parse_body(const char *body, size_t len, ilm_api_error *e) {
    ilm_err err;
    ilm_json *j = ilm_json_parse(body, len, &err);
    if (!j) {
        BAD(e, "", "the request body is not valid JSON: %s", err.msg);
        return NULL;
    }
    if (j->type != JSON_OBJ) {
        BAD(e, "", "the request body must be a JSON object, not %s", type_name(j));
        ilm_json_free(j);
        return NULL;
    }
    return j;
}

static int read_sampling(const ilm_json *j, ilm_api_request *r, ilm_api_error *e) {
    ilm_sampler_params *s = &r->sampling;
    bool given;
    long long x;
    if (read_float(ilm_json_get(j, "temperature"), "temperature", 0, 100, &s->temperature, e) ||
        read_float(ilm_json_get(j, "top_p"), "top_p", 0, 1, &s->top_p, e) ||
        read_float(ilm_json_get(j, "min_p"), "min_p", 0, 1, &s->min_p, e) ||
        read_int32(ilm_json_get(j, "top_k"), "top_k", 0, INT32_MAX, &s->top_k, e))
        return -1;
    const ilm_json *seed = ilm_json_get(j, "seed");
    if (!absent(seed) && is_integer(seed) && seed->num == -1) {
        // llama.cpp's "random seed": left to the server.
    } else {
        if (read_num(seed, "seed", 0, 18446744073709549568.0, &given, &(double){0}, e)) return -1;
        if (given && !is_integer(seed)) return BAD(e, "seed", "seed must be a non-negative integer");
        if (given) s->seed = (uint64_t)seed->num, r->seed_given = true;
    }
    if (read_int(ilm_json_get(j, "n"), "n", INT32_MIN, INT32_MAX, &given, &x, e)) return -1;
    if (given && x != 1) return BAD(e, "n", "only n=1 is supported (got %lld)", x);
    if (read_float(ilm_json_get(j, "presence_penalty"), "presence_penalty", -1e9, 1e9, &r->presence_penalty, e) ||
        read_float(ilm_json_get(j, "frequency_penalty"), "frequency_penalty", -1e9, 1e9, &r->frequency_penalty, e) ||
        read_float(ilm_json_get(j, "repeat_penalty"), "repeat_penalty", 0, 1e9, &r->repeat_penalty, e) ||
        read_int32(ilm_json_get(j, "repeat_last_n"), "repeat_last_n", -1, INT32_MAX, &r->repeat_last_n, e))
        return -1;
    if (r->repeat_penalty <= 0) return BAD(e, "repeat_penalty", "repeat_penalty must be greater than 0");
    return 0;
}

// chat_template_kwargs.enable_thinking
static int read_kwargs(const ilm_json *j, bool *thinking, ilm_api_error *e) {
    const ilm_json *kw = ilm_json_get(j, "chat_template_kwargs");
    if (!absent(kw) && kw->type != JSON_OBJ)
        return BAD(e, "chat_template_kwargs", "chat_template_kwargs must be an object, not %s", type_name(kw));
    return read_bool(ilm_json_get(kw, "enable_thinking"), "chat_template_kwargs.enable_thinking", thinking, e);
}

static int read_fields(const ilm_json *j, ilm_api_request *r, ilm_api_error *e) {
    bool given;
    long long x;
    if (read_str(ilm_json_get(j, "model"), "model", &r->model, e) ||
        read_bool(ilm_json_get(j, "stream"), "stream", &r->stream, e))
        return -1;
    const ilm_json *so = ilm_json_get(j, "stream_options");
    if (!absent(so) && so->type != JSON_OBJ)
        return BAD(e, "stream_options", "stream_options must be an object, not %s", type_name(so));
    if (read_bool(ilm_json_get(so, "include_usage"), "stream_options.include_usage", &r->include_usage, e)) return -1;

    // The token limit: the first given of max_completion_tokens, max_tokens, n_predict
    // (llama.cpp's n_predict takes -1 for "no limit").
    static const char *const limits[] = {"max_completion_tokens", "max_tokens", "n_predict"};
    for (int i = 0; i < 3; i++) {
        const ilm_json *v = ilm_json_get(j, limits[i]);
        if (i == 2 && !absent(v) && is_integer(v) && v->num == -1) continue;
        if (read_int(v, limits[i], 0, ILM_API_MAX_TOKENS, &given, &x, e)) return -1;
        if (given && r->max_tokens < 0) r->max_tokens = (int)x;
    }
    if (read_sampling(j, r, e) || read_stop(j, r, e) || read_logit_bias(j, r, e)) return -1;

    if (read_bool(ilm_json_get(j, "cache_prompt"), "cache_prompt", &r->cache_prompt, e) ||
        read_int32(ilm_json_get(j, "id_slot"), "id_slot", -1, INT32_MAX, &r->id_slot, e) ||
        read_bool(ilm_json_get(j, "ignore_eos"), "ignore_eos", &r->ignore_eos, e))
        return -1;
    const ilm_json *spec = ilm_json_get(j, "speculative");
    if (!absent(spec) && spec->type != JSON_OBJ)
        return BAD(e, "speculative", "speculative must be an object, not %s", type_name(spec));
    if (read_int32(get_nested(j, "speculative", "n_max", "speculative.n_max"), "speculative.n_max", 0, 16,
                   &r->spec_n_max, e) ||
        read_float(get_nested(j, "speculative", "p_min", "speculative.p_min"), "speculative.p_min", 0, 1,
                   &r->spec_p_min, e))
        return -1;

    return read_kwargs(j, &r->enable_thinking, e);
}

// POST /apply-template: the prompt as the chat endpoint renders it, "<bos>" first, without the
// prefill handling (the template as is).
int ilm_api_apply_template(const char *body, size_t len, char **prompt, ilm_api_error *e) {
    *prompt = NULL;
    ilm_json *j = parse_body(body, len, e);
    if (!j) return -1;
    bool add_gen = true, thinking = false;
    int rc = read_bool(ilm_json_get(j, "add_generation_prompt"), "add_generation_prompt", &add_gen, e);
    if (!rc) rc = read_kwargs(j, &thinking, e);
    if (!rc) rc = render_template(j, add_gen, thinking, true, false, false, prompt, e);
    ilm_json_free(j);
    return rc;
}

void ilm_api_write_prompt(ilm_buf *b, const char *prompt, size_t len) {
    ilm_buf_puts(b, "{\"prompt\":");
    ilm_json_buf_str(b, prompt, len);
    ilm_buf_putc(b, '}');
}

static void request_defaults(int kind, ilm_api_request *r) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
    r->sampling = ilm_sampler_default_params();
    r->repeat_penalty = 1;
    r->repeat_last_n = 64;
    r->cache_prompt = true;
    r->id_slot = -1;
    r->spec_n_max = -1;
    r->spec_p_min = -1;
}

int ilm_api_parse_request(int kind, const char *body, size_t len, ilm_api_request *out, ilm_api_error *e) {
    request_defaults(kind, out);
    if (kind != ILM_API_CHAT && kind != ILM_API_COMPLETION) return ilm_api_fail(e, 500, "", "unknown request kind %d", kind);
    ilm_json *j = parse_body(body, len, e);
    if (!j) return -1;
    int rc = read_fields(j, out, e);
    if (!rc) rc = kind == ILM_API_CHAT ? render_chat(j, out, e) : read_prompt(j, out, e);
    if (!rc) rc = read_response_format(j, out, e);
    ilm_json_free(j);
    if (rc) {
        ilm_api_request_free(out);
        request_defaults(kind, out);
    }
    return rc;
}

void ilm_api_request_free(ilm_api_request *r) {
    if (!r) return;
    free(r->prompt_text);
    free(r->prompt_ids);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->logit_bias);
    free(r->model);
    free(r->tools_json);
    free(r->tool_choice_name);
    r->tools_json = r->tool_choice_name = NULL;
    free(r->json_schema);
    r->json_schema = NULL;
    r->prompt_text = NULL;
    r->prompt_ids = NULL;
    r->stop = NULL;
    r->logit_bias = NULL;
    r->model = NULL;
    r->n_prompt_ids = r->n_stop = r->n_logit_bias = 0;
}

// ---- /tokenize, /detokenize ---------------------------------------------------------------------

int ilm_api_parse_tokenize(const char *body, size_t len, ilm_api_tokenize_request *out, ilm_api_error *e) {
    memset(out, 0, sizeof *out);
    ilm_json *j = parse_body(body, len, e);
    if (!j) return -1;
    const ilm_json *c = ilm_json_get(j, "content");
    int rc = 0;
    if (absent(c)) rc = BAD(e, "content", "content is missing");
    else if (c->type != JSON_STR) rc = BAD(e, "content", "content must be a string, not %s", type_name(c));
    else if (!(out->content = malloc(c->len + 1))) rc = OOM(e);
    else {
        memcpy(out->content, c->str, c->len + 1);
        out->content_len = c->len;
    }
    if (!rc && (read_bool(ilm_json_get(j, "add_special"), "add_special", &out->add_special, e) ||
                read_bool(ilm_json_get(j, "with_pieces"), "with_pieces", &out->with_pieces, e)))
        rc = -1;
    ilm_json_free(j);
    if (rc) ilm_api_tokenize_request_free(out);
    return rc;
}

void ilm_api_tokenize_request_free(ilm_api_tokenize_request *r) {
    if (!r) return;
    free(r->content);
    memset(r, 0, sizeof *r);
}

int ilm_api_parse_detokenize(const char *body, size_t len, int32_t **ids, int *n_ids, ilm_api_error *e) {
    *ids = NULL;
    *n_ids = 0;
    ilm_json *j = parse_body(body, len, e);
    if (!j) return -1;
    const ilm_json *t = ilm_json_get(j, "tokens");
    int rc;
    if (absent(t)) rc = BAD(e, "tokens", "tokens is missing");
    else if (t->type != JSON_ARR) rc = BAD(e, "tokens", "tokens must be an array of token ids, not %s", type_name(t));
    else rc = read_ids(t, "tokens", ids, n_ids, e);
    ilm_json_free(j);
    return rc;
}
