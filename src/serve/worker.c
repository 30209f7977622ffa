// worker.c — the server's generation thread: loads the model, moves queued requests onto
// idle slots (the one whose cache keeps most of the prompt), runs scheduler steps, and turns
// each slot's tokens into text (detokenizer, stop strings) for the I/O thread. See state.h.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "serve/state.h"
#include "tools/convert.h"

void ilm_serve_wake_io(ilm_server *S) {
    uint64_t one = 1;
    ssize_t w = write(S->wake_fd, &one, sizeof one);
    (void)w;  // a full counter still wakes the reader
}

static void sreq_free(ilm_sreq *r) {
    ilm_api_request_free(&r->api);
    free(r->prompt);
    if (r->sampler_ok) ilm_sampler_free(&r->sampler);
    ilm_stop_free(r->stop);
    ilm_constraint_free(r->constraint);
    if (r->detok) ilm_detok_free(r->detok);
    ilm_buf_free(&r->piece);
    ilm_outsplit_free(r->split);
    ilm_buf_free(&r->recs);
    ilm_buf_free(&r->out);
    ilm_buf_free(&r->reasoning);
    ilm_buf_free(&r->calls);
    free(r);
}

void ilm_sreq_unref(ilm_server *S, ilm_sreq *r) {
    pthread_mutex_lock(&S->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&S->mu);
    if (!left) sreq_free(r);
}

// Appends one record: kind, then a[0..an) and, when b is non-NULL, a NUL and b[0..bn).
static void add_rec(ilm_buf *out, int kind, const char *a, size_t an, const char *b, size_t bn) {
    size_t n = an + (b ? 1 + bn : 0);
    if (!n || n > UINT32_MAX) return;
    uint32_t len = (uint32_t)n;
    unsigned char k = (unsigned char)kind;
    ilm_buf_add(out, &len, sizeof len);
    ilm_buf_add(out, &k, 1);
    ilm_buf_add(out, a, an);
    if (b) {
        ilm_buf_putc(out, 0);
        ilm_buf_add(out, b, bn);
    }
}

typedef struct {
    ilm_server *S;
    ilm_sreq *r;
} job_ctx;

static void on_piece(void *ctx, const ilm_out_piece *p) {
    job_ctx *j = ctx;
    ilm_buf *recs = &j->r->recs;
    if (p->kind == ILM_OUT_TOOL_CALL) {
        add_rec(recs, ILM_REC_TOOL_CALL, p->name, strlen(p->name), p->text, p->len);
        return;
    }
    if (p->malformed && j->S->opt.verbose)
        fprintf(stderr, "ironlm: request %ld: malformed tool call passed on as content (%s)\n", j->r->id, p->error);
    add_rec(recs, p->kind == ILM_OUT_REASONING ? ILM_REC_REASONING : ILM_REC_CONTENT, p->text, p->len, NULL, 0);
}

// Chat: the text of a control token the splitter needs (a channel, tool-call or string marker),
// which the detokenizer (render_special off) drops; NULL for any other token.
static const char *marker_text(const ilm_tokenizer *tok, int32_t t, size_t *n) {
    static const char *const markers[] = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|\"|>"};
    size_t plain = 0;
    if (!ilm_tok_piece(tok, t, false, &plain) || plain) return NULL;
    const char *s = ilm_tok_piece(tok, t, true, n);
    for (size_t i = 0; s && i < sizeof markers / sizeof markers[0]; i++)
        if (*n == strlen(markers[i]) && !memcmp(s, markers[i], *n)) return s;
    return NULL;
}

// Moves the released text (r->piece) into records: through the splitter for chat, or as one
// content record; `end`: the last text, flush the splitter.
static void make_recs(job_ctx *j, bool end) {
    ilm_sreq *r = j->r;
    ilm_buf_reset(&r->recs);
    if (!r->split) {
        add_rec(&r->recs, ILM_REC_CONTENT, r->piece.p, r->piece.len, NULL, 0);
        return;
    }
    if (r->piece.len) ilm_outsplit_feed(r->split, r->piece.p, r->piece.len, on_piece, j);
    if (end) ilm_outsplit_flush(r->split, on_piece, j);
}

static int on_token(void *ctx, int32_t t) {
    job_ctx *j = ctx;
    ilm_sreq *r = j->r;
    size_t n = 0;
    ilm_err err;
    const char *s = ilm_detok_push(r->detok, t, &n, &err);
    ilm_buf_reset(&r->piece);
    int stop = s && n ? ilm_stop_feed(r->stop, s, n, &r->piece) : 0;
    const char *m;
    if (!stop && r->split && (m = marker_text(j->S->tok, t, &n))) stop = ilm_stop_feed(r->stop, m, n, &r->piece);
    make_recs(j, false);
    pthread_mutex_lock(&j->S->mu);
    ilm_buf_add(&r->out, r->recs.p, r->recs.len);
    bool cancel = r->cancel;
    pthread_mutex_unlock(&j->S->mu);
    if (r->recs.len) j->S->wake_pending = true;  // the I/O thread is woken once after the step
    return stop || cancel;
}

static void on_end(void *ctx, ilm_end why, const ilm_gen_stats *st, const char *error) {
    job_ctx *j = ctx;
    ilm_server *S = j->S;
    ilm_sreq *r = j->r;
    ilm_buf_reset(&r->piece);
    if (why != ILM_END_CANCEL && why != ILM_END_ERROR && !ilm_stop_which(r->stop)) {
        size_t n = 0;
        const char *s = ilm_detok_flush(r->detok, &n);
        if (s && n) ilm_stop_feed(r->stop, s, n, &r->piece);
        if (!ilm_stop_which(r->stop)) ilm_stop_flush(r->stop, &r->piece);
    }
    ilm_buf_reset(&r->recs);
    if (why != ILM_END_CANCEL && why != ILM_END_ERROR) make_recs(j, true);
    pthread_mutex_lock(&S->mu);
    ilm_buf_add(&r->out, r->recs.p, r->recs.len);
    r->st = *st;
    r->ended = true;
    r->finish = why == ILM_END_LENGTH || why == ILM_END_CONTEXT ? "length" : "stop";
    if (why == ILM_END_ERROR) {
        r->status = 500;
        snprintf(r->error, sizeof r->error, "generation failed: %.500s", error ? error : "?");
    }
    if (why == ILM_END_CANCEL || r->cancel) S->c.cancelled++;
    S->c.prompt_tokens += st->n_prompt;
    S->c.cached_tokens += st->n_cached;
    S->c.generated_tokens += st->n_gen;
    S->c.prompt_seconds += st->t_prompt;
    S->c.generation_seconds += st->t_gen;
    S->c.drafted[r->slot] += st->drafted;
    S->c.accepted[r->slot] += st->accepted;
    S->c.slot_requests[r->slot]++;
    S->running[r->slot] = NULL;
    S->busy--;
    pthread_mutex_unlock(&S->mu);
    S->wake_pending = true;
    free(j);
    ilm_sreq_unref(S, r);  // the generation thread's reference
}

// Ends a request that never reached a slot (caller holds mu).
static void fail_locked(ilm_sreq *r, int status, const char *msg) {
    r->ended = true;
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", msg);
}

// Sets up the request's sampler, detokenizer and stop matcher and submits it to its slot.
static int start(ilm_server *S, ilm_sreq *r, ilm_err *err) {
    const ilm_api_request *a = &r->api;
    ilm_sampler_params sp = a->sampling;
    if (!a->seed_given) sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)r->id * 0x9e3779b97f4a7c15ull);
    sp.repeat_penalty = a->repeat_penalty;
    sp.repeat_last_n = a->repeat_last_n;
    sp.presence_penalty = a->presence_penalty;
    sp.frequency_penalty = a->frequency_penalty;
    sp.logit_bias = (const ilm_logit_bias *)a->logit_bias;
    sp.n_logit_bias = a->n_logit_bias;
    if (ilm_sampler_init(&r->sampler, &sp, err)) return -1;
    r->sampler_ok = true;
    if (ilm_sampler_reserve(&r->sampler, S->engine.model->n_vocab, err)) return -1;
    if (a->response_format != ILM_API_FORMAT_TEXT) {  // JSON output: the constraint masks every row
        if (!S->cvocab && !(S->cvocab = ilm_constraint_vocab_new(S->tok, err))) return -1;
        const char *schema = a->response_format == ILM_API_FORMAT_JSON_SCHEMA ? a->json_schema : NULL;
        if (!(r->constraint = ilm_constraint_new(S->cvocab, schema, err))) return -1;
        r->sampler.constraint = r->constraint;
    } else if (a->tool_choice == ILM_API_TOOL_REQUIRED || a->tool_choice == ILM_API_TOOL_FUNCTION) {
        // the reply is tool calls: <|tool_call>call:NAME{args per the schema}<tool_call|>
        if (!S->cvocab && !(S->cvocab = ilm_constraint_vocab_new(S->tok, err))) return -1;
        if (!(r->constraint = ilm_constraint_new_tools(S->cvocab, a->tools_json, a->tool_choice_name,
                                                       a->parallel_tool_calls, err)))
            return -1;
        r->sampler.constraint = r->constraint;
    }
    if (ilm_stop_new(&r->stop, (const char *const *)a->stop, a->n_stop, err)) return -1;
    if (!(r->detok = ilm_detok_new(S->tok, false, err))) return -1;
    // chat: reasoning and tool-call markers appear only when the model writes them
    if (a->kind == ILM_API_CHAT && ilm_outsplit_new(&r->split, err)) return -1;
    job_ctx *j = malloc(sizeof *j);
    if (!j) return ilm_fail(err, "out of memory");
    *j = (job_ctx){S, r};
    int n_predict = a->max_tokens >= 0 ? a->max_tokens : S->opt.n_predict >= 0 ? S->opt.n_predict : INT_MAX;
    int dmax = a->spec_n_max >= 0 && a->spec_n_max < S->opt.draft_max ? a->spec_n_max : S->opt.draft_max;
    ilm_job job = {
        .prompt = r->prompt,
        .n_prompt = r->n_prompt,
        .sampler = &r->sampler,
        .gen = {.n_predict = n_predict,
                .ignore_eos = a->ignore_eos,
                .eog = S->tok->eog_ids,
                .n_eog = S->tok->n_eog,
                .draft_max = S->drafter ? dmax : 0,
                .draft_p_min = a->spec_p_min >= 0 ? a->spec_p_min : S->opt.draft_p_min,
                .autotune = S->opt.autotune,
                .on_token = on_token,
                .ctx = j},
        .reuse = a->cache_prompt,
        .on_end = on_end,
    };
    if (ilm_sched_submit(S->sched, r->slot, &job, err)) {
        free(j);
        return -1;
    }
    return 0;
}

// The next queued request that can start now, removed from the queue, with its slot chosen
// (caller holds mu). NULL when none can.
static ilm_sreq *take_startable(ilm_server *S) {
    // requests whose client went away while they waited leave the queue first
    for (ilm_sreq **link = &S->queue_head, *prev = NULL; *link;) {
        ilm_sreq *r = *link;
        if (!r->cancel) {
            prev = r;
            link = &r->next;
            continue;
        }
        *link = r->next;
        if (S->queue_tail == r) S->queue_tail = prev;
        S->queue_len--;
        S->c.cancelled++;
        if (!--r->refs) sreq_free(r);  // the worker's reference; the connection dropped its own
    }
    ilm_sreq *prev = NULL;
    for (ilm_sreq *r = S->queue_head; r; prev = r, r = r->next) {
        int slot = -1;
        if (r->api.id_slot >= 0) {
            if (!S->running[r->api.id_slot]) slot = r->api.id_slot;
        } else {
            slot = ilm_sched_pick(S->sched, r->prompt, r->n_prompt);
        }
        if (slot < 0) continue;
        if (prev) prev->next = r->next;
        else S->queue_head = r->next;
        if (S->queue_tail == r) S->queue_tail = prev;
        r->next = NULL;
        S->queue_len--;
        r->slot = slot;
        r->started = true;
        S->running[slot] = r;
        S->busy++;
        return r;
    }
    return NULL;
}

static bool startable(ilm_server *S) {
    for (ilm_sreq *r = S->queue_head; r; r = r->next)
        if (r->api.id_slot >= 0 ? !S->running[r->api.id_slot] : S->busy < S->opt.n_parallel) return true;
    return false;
}

static int load(ilm_server *S, ilm_err *err) {
    ilm_engine_opts eo = S->opt.engine;
    eo.n_seq = S->opt.n_parallel;
    eo.n_ctx = S->opt.n_ctx_total ? S->opt.n_ctx_total / S->opt.n_parallel : 4096;
    if (eo.n_ctx < 16) return ilm_fail(err, "-c %d split over %d slots leaves %d positions each (16 at least)",
                                       S->opt.n_ctx_total, S->opt.n_parallel, eo.n_ctx);
    // -m / --draft HF_DIR: converted into a memfd and opened as /proc/self/fd/N (the mapping
    // outlives the descriptor)
    char mpath[4096], dpath[4096];
    int mfd, dfd = -1;
    bool w4a16;
    if (ilm_convert_resolve_model(eo.model, mpath, sizeof mpath, &mfd, &w4a16, err)) return -1;
    eo.model = mpath;
    ilm_convert_pick_act(&eo, w4a16);
    int orc = ilm_engine_open(&S->engine, &eo, err);
    if (mfd >= 0) close(mfd);
    if (orc) return -1;
    S->engine_open = true;
    S->n_ctx_slot = S->engine.n_ctx;
    if (ilm_tokenizer_load(&S->tok, S->engine.model->gguf, err)) return -1;
    if (S->opt.draft) {
        if (ilm_convert_resolve_model(S->opt.draft, dpath, sizeof dpath, &dfd, NULL, err)) return -1;
        int drc = ilm_drafter_load(&S->drafter, dpath, S->engine.model, S->engine.pool, eo.act, err);
        if (dfd >= 0) close(dfd);
        if (drc) return -1;
        if (S->opt.verbose)
            fprintf(stderr, "ironlm: %s; draft-max %d, p-min %.2f%s, on every slot\n", ilm_drafter_describe(S->drafter),
                    S->opt.draft_max, (double)S->opt.draft_p_min, S->opt.autotune ? ", autotune" : "");
    }
    if (ilm_sched_create(&S->sched, &S->engine, S->drafter, S->opt.n_parallel, S->drafter ? S->opt.draft_max : 0, err))
        return -1;
    if (S->opt.verbose)
        fprintf(stderr, "ironlm: %d slot%s x %d positions of context\n", S->opt.n_parallel,
                S->opt.n_parallel == 1 ? "" : "s", S->n_ctx_slot);
    return 0;
}

void *ilm_serve_worker(void *arg) {
    ilm_server *S = arg;
    ilm_err err;
    int rc = load(S, &err);
    pthread_mutex_lock(&S->mu);
    if (rc) {
        S->load_failed = true;
        snprintf(S->load_error, sizeof S->load_error, "%s", err.msg);
    } else {
        S->ready = true;
    }
    pthread_mutex_unlock(&S->mu);
    ilm_serve_wake_io(S);
    if (rc) return NULL;
    for (;;) {
        pthread_mutex_lock(&S->mu);
        while (!S->busy && !startable(S) && !(S->stopping && !S->queue_len)) pthread_cond_wait(&S->cv, &S->mu);
        if (S->stopping && !S->busy && !S->queue_len) {
            pthread_mutex_unlock(&S->mu);
            break;
        }
        // cancelled requests leave their slots at this step
        for (int i = 0; i < S->opt.n_parallel; i++)
            if (S->running[i] && S->running[i]->cancel) ilm_sched_cancel(S->sched, i);
        ilm_sreq *r;
        while ((r = take_startable(S))) {
            pthread_mutex_unlock(&S->mu);
            if (start(S, r, &err)) {
                pthread_mutex_lock(&S->mu);
                S->running[r->slot] = NULL;
                S->busy--;
                fail_locked(r, 400, err.msg);
                pthread_mutex_unlock(&S->mu);
                ilm_serve_wake_io(S);
                ilm_sreq_unref(S, r);
            }
            pthread_mutex_lock(&S->mu);
        }
        pthread_mutex_unlock(&S->mu);
        ilm_sched_step(S->sched, &err);  // a failed pass ends its requests with an error
        if (S->wake_pending) {
            S->wake_pending = false;
            ilm_serve_wake_io(S);
        }
        pthread_mutex_lock(&S->mu);
        for (int i = 0; i < S->opt.n_parallel; i++) S->slot_cached[i] = ilm_sched_cached(S->sched, i);
        pthread_mutex_unlock(&S->mu);
    }
    return NULL;
}
