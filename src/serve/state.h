// state.h — what the server's two threads share (server.c: I/O, worker.c: generation,
// metrics.c: counters): the request object, the queue and the counters, all under one mutex.
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "gen/constrain.h"
#include "gen/sampler.h"
#include "gen/scheduler.h"
#include "gen/stop.h"
#include "gen/tokenizer.h"
#include "gen/toolcall.h"
#include "serve/api.h"
#include "serve/http.h"
#include "serve/server.h"

// A generation request, from the connection that sent it to the slot that runs it. Owned by
// both threads (refs); freed by whichever drops the last reference.
typedef struct ilm_sreq {
    int refs;                   // under mu
    long id;
    ilm_api_request api;        // the parsed body (prompt text freed after tokenizing)
    int32_t *prompt;            // tokens
    int n_prompt;
    double t_arrive;
    // generation thread only
    int slot;
    ilm_sampler sampler;
    bool sampler_ok;
    ilm_stop *stop;
    ilm_constraint *constraint; // response_format or tool_choice required/function (NULL: free text)
    ilm_detok *detok;
    ilm_buf piece;              // scratch: the text a token released
    ilm_outsplit *split;        // chat: content / reasoning / tool calls (NULL: completion)
    ilm_buf recs;               // scratch: the records a token released
    // under mu
    ilm_buf out;                // released text as records [u32 length][u8 ILM_REC_*][length bytes]
    bool started, ended, cancel;
    int status;                 // 200, or the error status when ended with an error
    char error[600];
    const char *finish;         // "stop" / "length"
    ilm_gen_stats st;
    struct ilm_sreq *next;      // queue link
    // I/O thread only: a non-streamed chat answer's reasoning and tool calls so far
    ilm_buf reasoning;
    ilm_buf calls;              // [u32 length][name NUL arguments] each
    int n_calls;                // tool calls sent or collected
} ilm_sreq;

// Kinds of output record (worker.c writes, routes.c reads). A tool call's bytes are its name,
// a NUL, and its arguments (a JSON object); a malformed call is content.
enum { ILM_REC_CONTENT, ILM_REC_REASONING, ILM_REC_TOOL_CALL };

typedef struct {
    long requests[6];           // by status class: 2xx, 400, 401, 404/405, 413/431, 5xx (see metrics.c)
    long prompt_tokens, cached_tokens, generated_tokens;
    double prompt_seconds, generation_seconds;
    long *drafted, *accepted;   // per slot
    long *slot_requests;        // per slot
    long cancelled;
} ilm_serve_counters;

typedef struct {
    ilm_serve_opts opt;
    const char *model_name;     // alias
    long long created;
    pthread_mutex_t mu;
    pthread_cond_t cv;          // wakes the generation thread
    int wake_fd;                // eventfd: wakes the I/O thread
    // under mu
    bool ready, load_failed, stopping;
    char load_error[512];
    ilm_sreq *queue_head, *queue_tail;
    int queue_len;
    int busy;                   // slots running a request
    ilm_sreq **running;         // [n_parallel] the request on each slot (NULL: idle)
    int *slot_cached;           // [n_parallel] tokens each slot's cache holds
    ilm_serve_counters c;
    long next_id;
    // set by the generation thread before `ready`, read-only after
    ilm_engine engine;
    bool engine_open;
    ilm_drafter *drafter;
    ilm_tokenizer *tok;
    ilm_sched *sched;
    int n_ctx_slot;
    ilm_constraint_vocab *cvocab; // generation thread: built at the first constrained request
    bool wake_pending;          // generation thread only: new output this step (one wake per step)
} ilm_server;

// One client connection (I/O thread only).
typedef struct ilm_conn {
    int fd;
    ilm_buf in;                 // bytes read, not yet parsed
    ilm_buf out;                // bytes to send
    double t_first;             // when the first byte of the request being read came (0: none)
    double t_last;              // last activity (idle keep-alive timeout)
    bool keep_alive;            // of the request being answered
    bool closing;               // close once `out` is sent
    bool continued;             // "100 Continue" sent for the request being read
    // the generation request being answered (NULL: none)
    ilm_sreq *r;
    bool stream, role_sent;
    ilm_buf text;               // non-streaming: the answer so far
    char resp_id[48];
} ilm_conn;

// routes.c (I/O thread): answers one parsed request on c (may start a generation), and moves
// a running generation's new output into c->out.
void ilm_serve_route(ilm_server *S, ilm_conn *c, const ilm_http_request *req);
void ilm_serve_pump(ilm_server *S, ilm_conn *c);
// Writes a complete response with a body (JSON unless content_type says otherwise).
void ilm_serve_respond(ilm_server *S, ilm_conn *c, int status, const char *content_type, const char *body, size_t len,
                       const char *extra_headers);
void ilm_serve_respond_error(ilm_server *S, ilm_conn *c, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

// worker.c
void *ilm_serve_worker(void *srv);
// Drops a reference (frees the request at zero). Takes mu itself.
void ilm_sreq_unref(ilm_server *S, ilm_sreq *r);
// Wakes the I/O thread (eventfd).
void ilm_serve_wake_io(ilm_server *S);

// metrics.c (caller holds mu)
void ilm_serve_count_status(ilm_server *S, int status);
void ilm_serve_write_metrics(ilm_server *S, ilm_buf *b);
void ilm_serve_write_slots(ilm_server *S, ilm_buf *b);
