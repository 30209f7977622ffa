// api_response.c — response bodies of the OpenAI-compatible API: whole answers, SSE chunks, the
// usage event, errors, the model list, /tokenize and /detokenize results. Every string goes
// through ilm_json_buf_str (always valid UTF-8); numbers are never NaN or infinite. See api.h.
#include "serve/api.h"

#include <math.h>
#include <string.h>

#include "format/json.h"

static void put_str(ilm_buf *b, const char *s) { ilm_json_buf_str(b, s ? s : "", s ? strlen(s) : 0); }

// A key and a fixed-point number (0 when not finite).
static void put_fixed(ilm_buf *b, const char *key, int decimals, double v) {
    ilm_buf_printf(b, "\"%s\":%.*f", key, decimals, isfinite(v) ? v : 0.0);
}

static void put_head(ilm_buf *b, const char *object, const char *id, long long created, const char *model) {
    ilm_buf_puts(b, "{\"id\":");
    put_str(b, id);
    ilm_buf_printf(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, created);
    put_str(b, model);
}

static void put_finish(ilm_buf *b, const char *finish_reason) {
    ilm_buf_puts(b, ",\"finish_reason\":");
    if (finish_reason) put_str(b, finish_reason);
    else ilm_buf_puts(b, "null");
}

static void put_usage(ilm_buf *b, const ilm_api_usage *u) {
    ilm_buf_printf(b,
                   ",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%lld,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                   u->prompt_tokens, u->completion_tokens, (long long)u->prompt_tokens + u->completion_tokens,
                   u->cached_tokens);
}

// llama.cpp's "timings": prompt_n counts the prompt tokens evaluated (not taken from the cache).
static void put_timings(ilm_buf *b, const ilm_api_usage *u) {
    int prompt_n = u->prompt_tokens > u->cached_tokens ? u->prompt_tokens - u->cached_tokens : 0;
    int pred_n = u->completion_tokens;
    ilm_buf_printf(b, ",\"timings\":{\"cache_n\":%d,\"prompt_n\":%d,", u->cached_tokens, prompt_n);
    put_fixed(b, "prompt_ms", 3, u->prompt_ms);
    ilm_buf_putc(b, ',');
    put_fixed(b, "prompt_per_token_ms", 3, prompt_n > 0 ? u->prompt_ms / prompt_n : 0);
    ilm_buf_putc(b, ',');
    put_fixed(b, "prompt_per_second", 2, u->prompt_ms > 0 ? 1e3 * prompt_n / u->prompt_ms : 0);
    ilm_buf_printf(b, ",\"predicted_n\":%d,", pred_n);
    put_fixed(b, "predicted_ms", 3, u->predicted_ms);
    ilm_buf_putc(b, ',');
    put_fixed(b, "predicted_per_token_ms", 3, pred_n > 0 ? u->predicted_ms / pred_n : 0);
    ilm_buf_putc(b, ',');
    put_fixed(b, "predicted_per_second", 2, u->predicted_ms > 0 ? 1e3 * pred_n / u->predicted_ms : 0);
    ilm_buf_printf(b, ",\"draft_n\":%ld,\"draft_n_accepted\":%ld}", u->draft_n, u->draft_n_accepted);
}

// The end of a whole response: the one choice's finish_reason, then usage and timings.
static void put_end(ilm_buf *b, const char *finish_reason, const ilm_api_usage *u) {
    put_finish(b, finish_reason);
    ilm_buf_puts(b, "}]");
    if (u) {
        put_usage(b, u);
        put_timings(b, u);
    }
    ilm_buf_putc(b, '}');
}

void ilm_api_write_response(ilm_buf *b, int kind, const char *id, long long created, const char *model,
                            const char *text, size_t len, const char *finish_reason, const ilm_api_usage *u) {
    if (kind == ILM_API_CHAT) {
        ilm_api_write_chat_response(b, id, created, model, text, len, NULL, 0, NULL, 0, finish_reason, u);
        return;
    }
    put_head(b, "text_completion", id, created, model);
    ilm_buf_puts(b, ",\"choices\":[{\"index\":0,");
    ilm_buf_puts(b, "\"text\":");
    ilm_json_buf_str(b, text ? text : "", text ? len : 0);
    ilm_buf_puts(b, ",\"logprobs\":null");
    put_end(b, finish_reason, u);
}

void ilm_api_write_chunk(ilm_buf *b, int kind, const char *id, long long created, const char *model,
                         bool role_start, const char *text, size_t len, const char *finish_reason,
                         const ilm_api_usage *timings) {
    bool chat = kind == ILM_API_CHAT;
    if (!text) len = 0;
    ilm_buf_puts(b, "data: ");
    put_head(b, chat ? "chat.completion.chunk" : "text_completion", id, created, model);
    ilm_buf_puts(b, ",\"choices\":[{\"index\":0,");
    if (chat) {
        ilm_buf_puts(b, "\"delta\":{");
        if (role_start) ilm_buf_puts(b, "\"role\":\"assistant\",");
        if (role_start || len > 0 || !finish_reason) {
            ilm_buf_puts(b, "\"content\":");
            ilm_json_buf_str(b, text ? text : "", len);
        }
        ilm_buf_putc(b, '}');
    } else {
        ilm_buf_puts(b, "\"text\":");
        ilm_json_buf_str(b, text ? text : "", len);
        ilm_buf_puts(b, ",\"logprobs\":null");
    }
    put_finish(b, finish_reason);
    ilm_buf_puts(b, "}]");
    if (timings) put_timings(b, timings);
    ilm_buf_puts(b, "}\n\n");
}

void ilm_api_write_usage_chunk(ilm_buf *b, int kind, const char *id, long long created, const char *model,
                               const ilm_api_usage *u) {
    ilm_buf_puts(b, "data: ");
    put_head(b, kind == ILM_API_CHAT ? "chat.completion.chunk" : "text_completion", id, created, model);
    ilm_buf_puts(b, ",\"choices\":[]");
    put_usage(b, u);
    ilm_buf_puts(b, "}\n\n");
}

void ilm_api_write_done(ilm_buf *b) { ilm_buf_puts(b, "data: [DONE]\n\n"); }

void ilm_api_write_error(ilm_buf *b, const ilm_api_error *e) {
    ilm_buf_printf(b, "{\"error\":{\"code\":%d,\"message\":", e->status);
    put_str(b, e->message);
    ilm_buf_puts(b, ",\"type\":");
    put_str(b, e->type[0] ? e->type : e->status >= 500 ? "server_error" : "invalid_request_error");
    ilm_buf_puts(b, ",\"param\":");
    if (e->param[0]) put_str(b, e->param);
    else ilm_buf_puts(b, "null");
    ilm_buf_puts(b, "}}");
}

void ilm_api_write_models(ilm_buf *b, const char *alias, long long created, int n_ctx_train, int n_vocab,
                          long long n_params) {
    ilm_buf_puts(b, "{\"object\":\"list\",\"data\":[{\"id\":");
    put_str(b, alias);
    ilm_buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"ironlm\"", created);
    if (n_ctx_train > 0 || n_vocab > 0 || n_params > 0) {
        const char *sep = "";
        ilm_buf_puts(b, ",\"meta\":{");
        if (n_ctx_train > 0) ilm_buf_printf(b, "%s\"n_ctx_train\":%d", sep, n_ctx_train), sep = ",";
        if (n_vocab > 0) ilm_buf_printf(b, "%s\"n_vocab\":%d", sep, n_vocab), sep = ",";
        if (n_params > 0) ilm_buf_printf(b, "%s\"n_params\":%lld", sep, n_params);
        ilm_buf_putc(b, '}');
    }
    ilm_buf_puts(b, "}]}");
}

// Whether s[0..n) is entirely valid UTF-8 (shortest forms, no surrogates, <= U+10FFFF).
static bool utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
        else return false;
        if (len > n - i) return false;
        cp = c & (0xffu >> (len + 1));
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

void ilm_api_write_tokens(ilm_buf *b, const int32_t *ids, int n, const char *const *pieces, const size_t *piece_lens) {
    ilm_buf_puts(b, "{\"tokens\":[");
    for (int i = 0; i < n; i++) {
        if (i) ilm_buf_putc(b, ',');
        if (!pieces) {
            ilm_buf_printf(b, "%d", (int)ids[i]);
            continue;
        }
        ilm_buf_printf(b, "{\"id\":%d,\"piece\":", (int)ids[i]);
        const char *p = pieces[i] ? pieces[i] : "";
        size_t len = pieces[i] ? piece_lens[i] : 0;
        if (utf8_ok((const unsigned char *)p, len)) {
            ilm_json_buf_str(b, p, len);
        } else {
            ilm_buf_putc(b, '[');
            for (size_t k = 0; k < len; k++) ilm_buf_printf(b, "%s%u", k ? "," : "", (unsigned)(unsigned char)p[k]);
            ilm_buf_putc(b, ']');
        }
        ilm_buf_putc(b, '}');
    }
    ilm_buf_puts(b, "]}");
}

void ilm_api_write_content(ilm_buf *b, const char *text, size_t len) {
    ilm_buf_puts(b, "{\"content\":");
    ilm_json_buf_str(b, text ? text : "", text ? len : 0);
    ilm_buf_putc(b, '}');
}

// ---- reasoning and tool calls -------------------------------------------------------------------

static void put_call(ilm_buf *b, const ilm_api_tool_call *call) {
    ilm_buf_puts(b, "\"id\":");
    put_str(b, call->id);
    ilm_buf_puts(b, ",\"type\":\"function\",\"function\":{\"name\":");
    put_str(b, call->name);
    ilm_buf_puts(b, ",\"arguments\":");
    ilm_json_buf_str(b, call->arguments ? call->arguments : "", call->arguments ? call->arguments_len : 0);
    ilm_buf_putc(b, '}');  // the function; the caller closes the call
}

static void put_delta_head(ilm_buf *b, const char *id, long long created, const char *model) {
    ilm_buf_puts(b, "data: ");
    put_head(b, "chat.completion.chunk", id, created, model);
    ilm_buf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":{");
}

void ilm_api_write_reasoning_chunk(ilm_buf *b, const char *id, long long created, const char *model,
                                   const char *text, size_t len) {
    put_delta_head(b, id, created, model);
    ilm_buf_puts(b, "\"reasoning_content\":");
    ilm_json_buf_str(b, text ? text : "", text ? len : 0);
    ilm_buf_putc(b, '}');
    put_finish(b, NULL);
    ilm_buf_puts(b, "}]}\n\n");
}

void ilm_api_write_tool_call_chunk(ilm_buf *b, const char *id, long long created, const char *model, int index,
                                   const ilm_api_tool_call *call) {
    put_delta_head(b, id, created, model);
    ilm_buf_printf(b, "\"tool_calls\":[{\"index\":%d,", index);
    put_call(b, call);
    ilm_buf_puts(b, "}]}");
    put_finish(b, NULL);
    ilm_buf_puts(b, "}]}\n\n");
}

void ilm_api_write_chat_response(ilm_buf *b, const char *id, long long created, const char *model, const char *text,
                                 size_t len, const char *reasoning, size_t reasoning_len,
                                 const ilm_api_tool_call *calls, int n_calls, const char *finish_reason,
                                 const ilm_api_usage *u) {
    if (!text) len = 0;
    if (!reasoning) reasoning_len = 0;
    if (!calls) n_calls = 0;
    put_head(b, "chat.completion", id, created, model);
    ilm_buf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (n_calls > 0 && !len) ilm_buf_puts(b, "null");
    else ilm_json_buf_str(b, text ? text : "", len);
    if (reasoning_len) {
        ilm_buf_puts(b, ",\"reasoning_content\":");
        ilm_json_buf_str(b, reasoning, reasoning_len);
    }
    if (n_calls > 0) {
        ilm_buf_puts(b, ",\"tool_calls\":[");
        for (int i = 0; i < n_calls; i++) {
            ilm_buf_puts(b, i ? ",{" : "{");
            put_call(b, &calls[i]);
            ilm_buf_putc(b, '}');
        }
        ilm_buf_putc(b, ']');
    }
    ilm_buf_putc(b, '}');
    put_end(b, finish_reason, u);
}
