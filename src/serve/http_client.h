// http_client.h — a small blocking HTTP/1.1 client (plain TCP, keep-alive, poll timeouts) and a
// Server-Sent Events splitter: what `ironlm loadtest` speaks to an OpenAI-compatible server.
#pragma once
#include <stddef.h>

#include "base/buf.h"
#include "base/util.h"

typedef struct ilm_http_client ilm_http_client;

// Splits "http://host[:port][/base]" (port default 80; IPv6 literals in brackets). path gets the
// base path without a trailing '/' ("" when none). https:// is refused with a message saying so.
int ilm_url_parse(const char *url, char *host, size_t host_cap, int *port, char *path, size_t path_cap,
                  ilm_err *err);

// Connects (TCP, TCP_NODELAY). timeout_ms (> 0) bounds the connect and every later read or write.
ilm_http_client *ilm_http_connect(const char *host, int port, int timeout_ms, ilm_err *err);
void ilm_http_close(ilm_http_client *c);  // NULL is fine

// Sends one request and reads its response on the kept-alive connection (reconnecting first when
// the previous response closed it; a request on a reused connection that the server closed before
// answering is sent once more on a fresh one). The body is decoded from Content-Length, chunked
// (extensions and trailers ignored) or read-until-close. *status is set before the body is read.
// With on_body, each decoded body piece goes to it as it arrives; a non-zero return cancels: the
// connection is closed (the next request reconnects) and the call returns 1. Without on_body the
// body is appended to body_out (if non-NULL). extra_headers: NULL or "Name: value\r\n" lines;
// a body gets "Content-Type: application/json" unless extra_headers names a Content-Type.
// Returns 0, 1 (cancelled by on_body), or -1 with err (connection error, malformed response,
// timeout); after -1 the connection is closed.
int ilm_http_request(ilm_http_client *c, const char *method, const char *path, const char *extra_headers,
                     const char *body, size_t body_len, int *status,
                     int (*on_body)(void *ctx, const char *data, size_t n), void *ctx, ilm_buf *body_out,
                     ilm_err *err);

// Server-Sent Events: feed it body pieces; it splits them into lines (\n or \r\n, split anywhere)
// and events (ended by an empty line), joins an event's "data:" lines with '\n' and passes the
// payload (NUL-terminated, without "data:" and one following space) to on_data. Comments (":...")
// and other fields (event:, id:, retry:) are skipped. Returns on_data's first non-zero result
// (feeding stops there), or 0.
typedef struct {
    ilm_buf line;  // the current, unfinished line
    ilm_buf data;  // the current event's data lines
    int has_data;  // the current event has a data field
} ilm_sse;

void ilm_sse_init(ilm_sse *s);
void ilm_sse_free(ilm_sse *s);
int ilm_sse_feed(ilm_sse *s, const char *data, size_t n, int (*on_data)(void *ctx, const char *payload, size_t n),
                 void *ctx);
