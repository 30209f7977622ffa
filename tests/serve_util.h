// serve_util.h — helpers of tests/test_serve.c: start `ironlm serve` as a child process on a
// loopback port (stderr to a log in t_tmpdir()), stop it with SIGTERM and collect its exit
// status; HTTP requests through serve/http_client.h (whole or as SSE streams) and over raw
// sockets (for malformed or partial requests); JSON field lookup by path.
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "base/buf.h"
#include "format/json.h"

#define SRV_MODEL "models/pycoder-q8_0.gguf"
#define SRV_DRAFT "models/pycoder-mtp-q8_0.gguf"

typedef struct {
    pid_t pid;  // 0: not running
    int port;
    char log[512];
} srv;

// Starts `BIN serve -m SRV_MODEL --port 0 ARGS...` (args NULL-terminated) and waits (up to 60 s)
// for "listening on" and "ready". Returns 0, or -1 (the log's tail printed; no process left).
int srv_start(srv *s, const char *name, const char *const *args);
// SIGTERM, then waits up to 60 s (SIGKILL after that). Returns the exit status (128 + signal
// when killed, -1 when none was running); prints the log's tail when it is not 0.
int srv_stop(srv *s);
// The log so far (malloc'd).
char *srv_log(const srv *s);

// Whether `ironlm` in t_bin() can be exec'd directly (no launcher prefix).
bool srv_supported(void);

// One whole request on a fresh connection. Returns 0 (status and body set; json parsed when the
// body is JSON, else NULL), or -1 (connection error: message printed).
typedef struct {
    int status;
    ilm_buf body;
    ilm_json *json;
} srv_resp;
int srv_req(const srv *s, const char *method, const char *path, const char *headers, const char *body, srv_resp *r);
void srv_resp_free(srv_resp *r);
int srv_health(const srv *s);  // GET /health status (-1 on connection error)

// A streamed request's events, parsed.
typedef struct {
    int kind;                 // 0 chat, 1 completion (for "object")
    int status;
    ilm_buf text;             // content deltas / text pieces, concatenated
    ilm_buf pieces;           // each non-empty piece followed by a NUL byte
    int n_pieces, n_events;
    bool done, bad, role_first, ids_same;
    char id[64], finish[16];
    long draft_n;             // from the final chunk's timings (-1: none)
    int completion_tokens, prompt_tokens, cached_tokens;  // from the usage chunk (-1: none)
    char error[300];          // an error event's message
    // delta.tool_calls: the first call's name and its argument pieces concatenated; the number
    // of distinct call indexes seen
    char tool_name[64];
    ilm_buf tool_args;
    int n_tool_calls;
    // cancelling and hooks: after `cancel_after` content pieces the client closes (0: never);
    // on_piece runs after each content piece (its non-zero result cancels).
    int cancel_after;
    int (*on_piece)(void *ctx, int n_pieces);
    void *ctx;
    bool cancelled;
    // internal
    void *sse;
} srv_stream;
// body is sent as given (it must ask for "stream": true). Returns 0 (finished or cancelled),
// -1 on a connection error.
int srv_stream_req(const srv *s, const char *path, const char *headers, const char *body, srv_stream *st);
void srv_stream_free(srv_stream *st);

// Raw sockets: connect to the loopback port (-1 on failure); send all of s (MSG_NOSIGNAL);
// read one response (header + Content-Length body) or until close / timeout. srv_raw_read
// returns 1 when the peer closed, 0 when a whole response came, -1 on timeout.
int srv_raw_connect(int port);
int srv_raw_send(int fd, const char *s, size_t n);
int srv_raw_read(int fd, ilm_buf *out, int timeout_ms);
int srv_raw_status(const char *resp);  // "HTTP/1.1 NNN ..." -> NNN (-1 otherwise)

// JSON field by path: "choices.0.message.content" (numbers index arrays). NULL when absent.
const ilm_json *sj_path(const ilm_json *j, const char *path);
const char *sj_str(const ilm_json *j, const char *path);    // NULL unless a string
double sj_num(const ilm_json *j, const char *path, double dflt);  // numbers and booleans

// `BIN run -m SRV_MODEL --tokens IDS -n N --temp 0 --ignore-eos EXTRA` (stderr discarded): the
// printed text without run's final newline (malloc'd), or NULL when it failed.
char *srv_run_ref(const char *ids, int n, const char *extra);
// Appends s as a JSON string literal.
void sj_buf_str(ilm_buf *b, const char *s);
void srv_sleep_ms(int ms);
