// routes.c — what the server answers (I/O thread): the endpoint table, API-key checks, the
// cheap endpoints answered at once (/health, /v1/models, /metrics, /slots, /tokenize,
// /detokenize), and the generation endpoints: a request is tokenized, checked against the
// slot context and queued for the worker; its output is streamed (SSE over chunked transfer)
// or sent whole when it ends. See state.h.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/state.h"

// --- responses ---------------------------------------------------------------------------------

void ilm_serve_respond(ilm_server *S, ilm_conn *c, int status, const char *content_type, const char *body, size_t len,
                       const char *extra_headers) {
    ilm_http_write_head(&c->out, status, content_type, (long long)len, c->keep_alive, extra_headers);
    ilm_buf_add(&c->out, body, len);
    pthread_mutex_lock(&S->mu);
    ilm_serve_count_status(S, status);
    pthread_mutex_unlock(&S->mu);
    if (S->opt.verbose && status >= 500) fprintf(stderr, "ironlm: %d %.*s\n", status, (int)(len < 300 ? len : 300), body);
}

static void respond_api_error(ilm_server *S, ilm_conn *c, const ilm_api_error *e, const char *extra) {
    ilm_buf b = {0};
    ilm_api_write_error(&b, e);
    ilm_serve_respond(S, c, e->status, "application/json", b.p ? b.p : "", b.len, extra);
    ilm_buf_free(&b);
}

void ilm_serve_respond_error(ilm_server *S, ilm_conn *c, int status, const char *param, const char *fmt, ...) {
    ilm_api_error e;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ilm_api_fail(&e, status, param, "%s", msg);
    respond_api_error(S, c, &e, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

static void respond_json(ilm_server *S, ilm_conn *c, ilm_buf *b) {
    if (b->oom) ilm_serve_respond_error(S, c, 500, "", "out of memory");
    else ilm_serve_respond(S, c, 200, "application/json", b->p ? b->p : "", b->len, NULL);
}

// --- authentication ----------------------------------------------------------------------------

// Equal strings, in time that depends on the lengths only.
static bool same_secret(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < lb; i++) d |= (unsigned char)(a[i % (la ? la : 1)] ^ b[i]);
    return d == 0 && la == lb;
}

static bool authorized(const ilm_server *S, const ilm_http_request *req) {
    if (!S->opt.api_key) return true;
    const char *h = ilm_http_header(req, "Authorization");
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        h += 7;
        while (*h == ' ') h++;
        if (same_secret(h, S->opt.api_key)) return true;
    }
    h = ilm_http_header(req, "X-Api-Key");
    return h && same_secret(h, S->opt.api_key);
}

// --- cheap endpoints ---------------------------------------------------------------------------

static void health(ilm_server *S, ilm_conn *c) {
    pthread_mutex_lock(&S->mu);
    bool ready = S->ready;
    int busy = S->busy, queued = S->queue_len;
    pthread_mutex_unlock(&S->mu);
    ilm_buf b = {0};
    if (!ready) {
        ilm_buf_puts(&b, "{\"status\":\"loading model\"}");
        ilm_serve_respond(S, c, 503, "application/json", b.p, b.len, "Retry-After: 1\r\n");
    } else {
        ilm_buf_printf(&b, "{\"status\":\"ok\",\"slots_idle\":%d,\"slots_processing\":%d,\"queue\":%d}",
                       S->opt.n_parallel - busy, busy, queued);
        respond_json(S, c, &b);
    }
    ilm_buf_free(&b);
}

static void models(ilm_server *S, ilm_conn *c, bool ready) {
    ilm_buf b = {0};
    const ilm_model *m = ready ? S->engine.model : NULL;
    ilm_api_write_models(&b, S->model_name, S->created, m ? m->n_ctx_train : 0, m ? m->n_vocab : 0, 0);
    respond_json(S, c, &b);
    ilm_buf_free(&b);
}

// POST /apply-template: {"prompt": the chat template's render, "<bos>" first}.
static void apply_template(ilm_server *S, ilm_conn *c, const ilm_http_request *req) {
    char *prompt;
    ilm_api_error e;
    if (ilm_api_apply_template(req->body, req->body_len, &prompt, &e)) {
        respond_api_error(S, c, &e, NULL);
        return;
    }
    ilm_buf b = {0};
    ilm_api_write_prompt(&b, prompt, strlen(prompt));
    respond_json(S, c, &b);
    ilm_buf_free(&b);
    free(prompt);
}

static void tokenize(ilm_server *S, ilm_conn *c, const ilm_http_request *req) {
    ilm_api_tokenize_request tr;
    ilm_api_error e;
    if (ilm_api_parse_tokenize(req->body, req->body_len, &tr, &e)) {
        respond_api_error(S, c, &e, NULL);
        return;
    }
    int32_t *ids = NULL;
    int n = 0;
    ilm_err err;
    if (ilm_tokenize(S->tok, tr.content, tr.content_len, tr.add_special ? 0 : ILM_TOK_NO_BOS, &ids, &n, &err)) {
        ilm_serve_respond_error(S, c, 400, "content", "%s", err.msg);
        ilm_api_tokenize_request_free(&tr);
        return;
    }
    const char **pieces = NULL;
    size_t *lens = NULL;
    if (tr.with_pieces && n) {
        pieces = calloc((size_t)n, sizeof *pieces);
        lens = calloc((size_t)n, sizeof *lens);
        for (int i = 0; pieces && lens && i < n; i++) pieces[i] = ilm_tok_piece(S->tok, ids[i], true, &lens[i]);
    }
    ilm_buf b = {0};
    if (tr.with_pieces && n && (!pieces || !lens)) b.oom = true;
    else ilm_api_write_tokens(&b, ids, n, tr.with_pieces ? pieces : NULL, lens);
    respond_json(S, c, &b);
    ilm_buf_free(&b);
    free(pieces);
    free(lens);
    free(ids);
    ilm_api_tokenize_request_free(&tr);
}

static void detokenize(ilm_server *S, ilm_conn *c, const ilm_http_request *req) {
    int32_t *ids = NULL;
    int n = 0;
    ilm_api_error e;
    if (ilm_api_parse_detokenize(req->body, req->body_len, &ids, &n, &e)) {
        respond_api_error(S, c, &e, NULL);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    ilm_err err;
    if (ilm_detokenize(S->tok, ids, n, false, &text, &len, &err)) {
        ilm_serve_respond_error(S, c, 400, "tokens", "%s", err.msg);
    } else {
        ilm_buf b = {0};
        ilm_api_write_content(&b, text, len);
        respond_json(S, c, &b);
        ilm_buf_free(&b);
    }
    free(text);
    free(ids);
}

static void metrics(ilm_server *S, ilm_conn *c) {
    ilm_buf b = {0};
    pthread_mutex_lock(&S->mu);
    ilm_serve_write_metrics(S, &b);
    pthread_mutex_unlock(&S->mu);
    if (b.oom) ilm_serve_respond_error(S, c, 500, "", "out of memory");
    else ilm_serve_respond(S, c, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.len, NULL);
    ilm_buf_free(&b);
}

static void slots(ilm_server *S, ilm_conn *c) {
    ilm_buf b = {0};
    pthread_mutex_lock(&S->mu);
    ilm_serve_write_slots(S, &b);
    pthread_mutex_unlock(&S->mu);
    respond_json(S, c, &b);
    ilm_buf_free(&b);
}

// --- generation --------------------------------------------------------------------------------

static void completion(ilm_server *S, ilm_conn *c, const ilm_http_request *req, int kind) {
    ilm_sreq *r = calloc(1, sizeof *r);
    if (!r) {
        ilm_serve_respond_error(S, c, 500, "", "out of memory");
        return;
    }
    ilm_api_error e;
    if (ilm_api_parse_request(kind, req->body, req->body_len, &r->api, &e)) {
        respond_api_error(S, c, &e, NULL);
        free(r);
        return;
    }
    const char *pname = kind == ILM_API_CHAT ? "messages" : "prompt";
    const int V = S->engine.model->n_vocab;
    ilm_err err;
    if (r->api.prompt_ids) {
        for (int i = 0; i < r->api.n_prompt_ids; i++)
            if (r->api.prompt_ids[i] < 0 || r->api.prompt_ids[i] >= V) {
                ilm_serve_respond_error(S, c, 400, "prompt", "prompt[%d]: token id %d is out of range (vocabulary %d)", i,
                                        r->api.prompt_ids[i], V);
                goto fail;
            }
        r->prompt = r->api.prompt_ids;
        r->n_prompt = r->api.n_prompt_ids;
        r->api.prompt_ids = NULL;
        r->api.n_prompt_ids = 0;
    } else if (ilm_tokenize(S->tok, r->api.prompt_text, r->api.prompt_len, 0, &r->prompt, &r->n_prompt, &err)) {
        ilm_serve_respond_error(S, c, 400, pname, "%s", err.msg);
        goto fail;
    }
    if (r->n_prompt < 1) {
        ilm_serve_respond_error(S, c, 400, pname, "%s: the prompt is empty", pname);
        goto fail;
    }
    if (r->n_prompt >= S->n_ctx_slot) {
        ilm_serve_respond_error(S, c, 400, pname,
                                "%s: the prompt has %d tokens; a slot's context holds %d (-c splits the context over the slots)",
                                pname, r->n_prompt, S->n_ctx_slot);
        goto fail;
    }
    for (int i = 0; i < r->api.n_logit_bias; i++)
        if (r->api.logit_bias[i].token >= V) {
            ilm_serve_respond_error(S, c, 400, "logit_bias", "logit_bias: token id %d is out of range (vocabulary %d)",
                                    r->api.logit_bias[i].token, V);
            goto fail;
        }
    if (r->api.id_slot >= S->opt.n_parallel) {
        ilm_serve_respond_error(S, c, 400, "id_slot", "id_slot: %d, but there are %d slots", r->api.id_slot, S->opt.n_parallel);
        goto fail;
    }
    free(r->api.prompt_text);  // the tokens are what is kept
    r->api.prompt_text = NULL;
    pthread_mutex_lock(&S->mu);
    if (S->stopping || S->queue_len >= S->opt.max_queue + S->opt.n_parallel - S->busy) {
        bool stopping = S->stopping;
        pthread_mutex_unlock(&S->mu);
        ilm_serve_respond_error(S, c, 503, "", stopping ? "the server is shutting down" : "the server is busy (queue full); retry later");
        goto fail;
    }
    r->id = ++S->next_id;
    r->refs = 2;  // this connection and the worker
    r->status = 200;
    r->t_arrive = ilm_now();
    if (S->queue_tail) S->queue_tail->next = r;
    else S->queue_head = r;
    S->queue_tail = r;
    S->queue_len++;
    pthread_cond_signal(&S->cv);
    pthread_mutex_unlock(&S->mu);
    c->r = r;
    c->stream = r->api.stream;
    c->role_sent = false;
    ilm_buf_reset(&c->text);
    snprintf(c->resp_id, sizeof c->resp_id, "%s-%ld", kind == ILM_API_CHAT ? "chatcmpl" : "cmpl", r->id);
    if (c->stream) {
        ilm_http_write_head(&c->out, 200, "text/event-stream", -1, c->keep_alive, "Cache-Control: no-cache\r\n");
        if (kind == ILM_API_CHAT) {  // the role comes first, as OpenAI's streams do
            ilm_buf ev = {0};
            ilm_api_write_chunk(&ev, kind, c->resp_id, S->created, S->model_name, true, "", 0, NULL, NULL);
            ilm_http_write_chunk(&c->out, ev.p, ev.len);
            ilm_buf_free(&ev);
            c->role_sent = true;
        }
    }
    return;
fail:
    ilm_api_request_free(&r->api);
    free(r->prompt);
    free(r);
}

static ilm_api_usage usage_of(const ilm_sreq *r) {
    const ilm_gen_stats *st = &r->st;
    return (ilm_api_usage){st->n_prompt + st->n_cached, st->n_gen, st->n_cached, st->t_prompt * 1e3, st->t_gen * 1e3,
                           st->drafted, st->accepted};
}

void ilm_serve_pump(ilm_server *S, ilm_conn *c) {
    ilm_sreq *r = c->r;
    ilm_buf recs = {0};
    pthread_mutex_lock(&S->mu);
    ilm_buf_add(&recs, r->out.p, r->out.len);
    ilm_buf_reset(&r->out);
    bool ended = r->ended;
    pthread_mutex_unlock(&S->mu);
    const int kind = r->api.kind;
    ilm_buf ev = {0};
    for (size_t at = 0; at + 5 <= recs.len;) {
        uint32_t n;
        memcpy(&n, recs.p + at, 4);
        int rec = (unsigned char)recs.p[at + 4];
        const char *text = recs.p + at + 5;
        at += 5 + (size_t)n;
        ilm_buf_reset(&ev);
        if (rec == ILM_REC_TOOL_CALL) {
            size_t name_len = strnlen(text, n);
            if (name_len >= n) continue;  // never written so
            if (c->stream) {
                char call_id[64];
                snprintf(call_id, sizeof call_id, "call_%lld_%ld_%d", S->created, r->id, r->n_calls);
                ilm_api_tool_call tc = {call_id, text, text + name_len + 1, n - name_len - 1};
                ilm_api_write_tool_call_chunk(&ev, c->resp_id, S->created, S->model_name, r->n_calls, &tc);
            } else {
                ilm_buf_add(&r->calls, &n, 4);
                ilm_buf_add(&r->calls, text, n);
            }
            r->n_calls++;
        } else if (rec == ILM_REC_REASONING) {
            if (c->stream) ilm_api_write_reasoning_chunk(&ev, c->resp_id, S->created, S->model_name, text, n);
            else ilm_buf_add(&r->reasoning, text, n);
        } else if (c->stream) {
            ilm_api_write_chunk(&ev, kind, c->resp_id, S->created, S->model_name, false, text, n, NULL, NULL);
        } else {
            ilm_buf_add(&c->text, text, n);
        }
        if (ev.len) ilm_http_write_chunk(&c->out, ev.p, ev.len);
    }
    ilm_buf_free(&recs);
    if (!ended) {
        ilm_buf_free(&ev);
        return;
    }
    // the request has ended (r->st, status, finish are final: the worker wrote them under mu
    // before `ended`)
    ilm_api_usage u = usage_of(r);
    const char *finish = r->n_calls > 0 ? "tool_calls" : r->finish;
    if (c->stream) {
        ilm_buf_reset(&ev);
        if (r->status != 200) {
            ilm_api_error e;
            ilm_api_fail(&e, r->status, "", "%s", r->error);
            ilm_buf_puts(&ev, "data: ");
            ilm_api_write_error(&ev, &e);
            ilm_buf_puts(&ev, "\n\n");
        } else {
            ilm_api_write_chunk(&ev, kind, c->resp_id, S->created, S->model_name, false, "", 0, finish, &u);
            if (r->api.include_usage) ilm_api_write_usage_chunk(&ev, kind, c->resp_id, S->created, S->model_name, &u);
        }
        ilm_api_write_done(&ev);
        ilm_http_write_chunk(&c->out, ev.p, ev.len);
        ilm_http_write_chunk(&c->out, NULL, 0);
        pthread_mutex_lock(&S->mu);
        ilm_serve_count_status(S, r->status);
        pthread_mutex_unlock(&S->mu);
    } else if (r->status != 200) {
        ilm_serve_respond_error(S, c, r->status, "", "%s", r->error);
    } else {
        ilm_buf_reset(&ev);
        if (kind == ILM_API_CHAT) {
            ilm_api_tool_call *calls = r->n_calls ? calloc((size_t)r->n_calls, sizeof *calls) : NULL;
            char(*ids)[64] = r->n_calls ? calloc((size_t)r->n_calls, sizeof *ids) : NULL;
            int n_calls = 0;
            for (size_t at = 0; calls && ids && at + 4 <= r->calls.len && n_calls < r->n_calls;) {
                uint32_t n;
                memcpy(&n, r->calls.p + at, 4);
                const char *p = r->calls.p + at + 4;
                at += 4 + (size_t)n;
                size_t name_len = strnlen(p, n);
                snprintf(ids[n_calls], sizeof ids[n_calls], "call_%lld_%ld_%d", S->created, r->id, n_calls);
                calls[n_calls] = (ilm_api_tool_call){ids[n_calls], p, p + name_len + 1, n - name_len - 1};
                n_calls++;
            }
            if (r->n_calls && !(calls && ids)) ev.oom = true;
            else
                ilm_api_write_chat_response(&ev, c->resp_id, S->created, S->model_name, c->text.p, c->text.len,
                                            r->reasoning.p, r->reasoning.len, calls, n_calls, finish, &u);
            free(calls);
            free(ids);
        } else {
            ilm_api_write_response(&ev, kind, c->resp_id, S->created, S->model_name, c->text.p ? c->text.p : "",
                                   c->text.len, finish, &u);
        }
        respond_json(S, c, &ev);
    }
    ilm_buf_free(&ev);
    if (S->opt.verbose)
        fprintf(stderr, "ironlm: %s slot %d: prompt %d (+%d cached) in %.0f ms, %d tokens in %.0f ms (%.1f t/s), drafted %ld accepted %ld, %s\n",
                c->resp_id, r->slot, r->st.n_prompt, r->st.n_cached, r->st.t_prompt * 1e3, r->st.n_gen, r->st.t_gen * 1e3,
                r->st.t_gen > 0 ? r->st.n_gen / r->st.t_gen : 0.0, r->st.drafted, r->st.accepted,
                r->status == 200 ? r->finish : r->error);
    c->r = NULL;
    ilm_sreq_unref(S, r);
    if (!c->keep_alive) c->closing = true;
}

// --- the table ---------------------------------------------------------------------------------

enum { OPEN = 1, NEEDS_MODEL = 2 };
typedef struct {
    const char *method, *path;
    int id, flags;
} route;
enum { R_HEALTH, R_MODELS, R_METRICS, R_SLOTS, R_TOKENIZE, R_DETOKENIZE, R_CHAT, R_COMPLETION, R_APPLY_TEMPLATE };
static const route routes[] = {
    {"GET", "/health", R_HEALTH, OPEN},
    {"GET", "/v1/health", R_HEALTH, OPEN},
    {"GET", "/v1/models", R_MODELS, OPEN},
    {"GET", "/models", R_MODELS, OPEN},
    {"GET", "/metrics", R_METRICS, 0},
    {"GET", "/slots", R_SLOTS, 0},
    {"POST", "/tokenize", R_TOKENIZE, NEEDS_MODEL},
    {"POST", "/detokenize", R_DETOKENIZE, NEEDS_MODEL},
    {"POST", "/v1/chat/completions", R_CHAT, NEEDS_MODEL},
    {"POST", "/chat/completions", R_CHAT, NEEDS_MODEL},
    {"POST", "/v1/completions", R_COMPLETION, NEEDS_MODEL},
    {"POST", "/completions", R_COMPLETION, NEEDS_MODEL},
    {"POST", "/completion", R_COMPLETION, NEEDS_MODEL},
    {"POST", "/apply-template", R_APPLY_TEMPLATE, 0},
};

void ilm_serve_route(ilm_server *S, ilm_conn *c, const ilm_http_request *req) {
    const route *rt = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(routes[i].path, req->path)) {
            path_known = true;
            if (!strcmp(routes[i].method, req->method))
                rt = &routes[i];
        }
    if (!strcmp(req->method, "OPTIONS")) {  // CORS preflight
        ilm_serve_respond(S, c, 204, NULL, "", 0,
                          "Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                          "Access-Control-Allow-Headers: Authorization, Content-Type, X-Api-Key\r\n");
        return;
    }
    if (!rt) {
        if (path_known) ilm_serve_respond_error(S, c, 405, "", "%s is not allowed on %s", req->method, req->path);
        else ilm_serve_respond_error(S, c, 404, "", "no endpoint %s %s", req->method, req->path);
        return;
    }
    if (!(rt->flags & OPEN) && !authorized(S, req)) {
        ilm_api_error e;
        ilm_api_fail(&e, 401, "", "invalid or missing API key (Authorization: Bearer KEY or X-Api-Key)");
        snprintf(e.type, sizeof e.type, "authentication_error");
        respond_api_error(S, c, &e, "WWW-Authenticate: Bearer\r\n");
        return;
    }
    pthread_mutex_lock(&S->mu);
    bool ready = S->ready;
    pthread_mutex_unlock(&S->mu);
    if ((rt->flags & NEEDS_MODEL) && !ready) {
        ilm_serve_respond_error(S, c, 503, "", "loading the model");
        return;
    }
    switch (rt->id) {
    case R_HEALTH: health(S, c); break;
    case R_MODELS: models(S, c, ready); break;
    case R_METRICS: metrics(S, c); break;
    case R_SLOTS: slots(S, c); break;
    case R_TOKENIZE: tokenize(S, c, req); break;
    case R_DETOKENIZE: detokenize(S, c, req); break;
    case R_CHAT: completion(S, c, req, ILM_API_CHAT); break;
    case R_COMPLETION: completion(S, c, req, ILM_API_COMPLETION); break;
    case R_APPLY_TEMPLATE: apply_template(S, c, req); break;
    }
}
