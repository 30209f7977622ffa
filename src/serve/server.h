// server.h — `ironlm serve`: an OpenAI-compatible HTTP/1.1 server over the slot scheduler
// (gen/scheduler.h), with the MTP drafter on every slot.
//
// Two threads: the I/O thread (server.c) accepts connections, parses requests, answers the
// cheap endpoints and streams output; the generation thread (worker.c) loads the model, moves
// queued requests onto slots and runs scheduler steps. They share the request queue and each
// request's output under one mutex; the I/O thread is woken through an eventfd, the generation
// thread through a condition variable. The generation thread never waits for a client.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "gen/engine.h"

typedef struct {
    ilm_engine_opts engine;   // -m, -t, -c (per slot, see n_ctx_total), -b, --numa, ...
    int n_ctx_total;          // -c: the total context, split across slots (0: 8192 per slot)
    int n_parallel;           // --parallel / -np
    const char *draft;        // --draft / -md
    int draft_max;            // --draft-max (per-request speculative.n_max is capped by it)
    float draft_p_min;        // --draft-p-min
    bool autotune;            // --spec-autotune
    const char *host;         // --host (127.0.0.1)
    int port;                 // --port (8080; 0: any free port, printed)
    const char *api_key;      // --api-key / --api-key-file (NULL: open)
    size_t max_body;          // --max-body bytes
    int timeout_s;            // --timeout: a request must arrive within it; idle keep-alive too
    int max_conn;             // --max-conn
    int max_queue;            // --max-queue: waiting requests beyond the busy slots
    const char *alias;        // --alias (default: the model file's name)
    int n_predict;            // --n-predict: default max_tokens (-1: until the context is full)
    bool verbose;             // start-up lines and one line per request on stderr
} ilm_serve_opts;

void ilm_serve_opts_default(ilm_serve_opts *o);
// Runs until SIGINT or SIGTERM (which the caller must have blocked in every thread: the
// server takes them through a signalfd), then stops accepting, lets running requests end
// and returns 0. Returns -1 with err when it cannot start.
int ilm_serve(const ilm_serve_opts *o, ilm_err *err);
