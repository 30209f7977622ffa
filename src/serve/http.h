// http.h — the server side of HTTP/1.1: an incremental request parser and response writers.
//
// The parser is strict about syntax and small in scope (RFC 9112 for requests):
//   - request line `METHOD SP TARGET SP HTTP/1.x`; any token method (the caller decides 405);
//     target in origin-form (`/p?q`), `*`, or absolute-form (`http://host/p?q`, path taken
//     after the authority); visible ASCII only.
//   - line endings: CRLF, and a bare LF is accepted as well (RFC 9112 §2.2); a CR that is not
//     followed by LF is an error. Empty lines before the request line are skipped (consumed).
//   - header `name: value`: the name a token with no space before the colon, the value with
//     surrounding spaces/tabs trimmed and no control character other than TAB; obsolete line
//     folding is rejected. Host is not required.
//   - body: Content-Length only (identical repeats allowed); Transfer-Encoding is answered
//     with 501. A request without Content-Length has an empty body.
// Errors are negative HTTP statuses (-400, -413, -431, -501, -505, and -500 for out of
// memory) with a one-line message; they are reported as soon as the bytes seen prove them.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

typedef struct {
    size_t max_header_bytes;   // request line + headers + blank line (and leading empty lines)
    int max_headers;           // header lines
    size_t max_body;           // Content-Length
} ilm_http_limits;

// 16 KiB head, 64 headers, 4 MiB body.
ilm_http_limits ilm_http_default_limits(void);

typedef struct {
    char *name, *value;        // as sent (name case preserved), value trimmed
} ilm_http_header_field;

// Every pointer points into memory the request owns (freed by ilm_http_request_free); all
// strings are NUL-terminated.
typedef struct {
    char *method;              // "GET", "POST", ...
    char *target;              // as sent: "/v1/models?x=1"
    char *path;                // target without the query: "/v1/models" ("*" for `OPTIONS *`)
    char *query;               // after the '?', "" when none
    int minor;                 // HTTP/1.<minor>: 0 or 1
    ilm_http_header_field *headers;
    int n_headers;
    char *body;                // body_len bytes + a NUL (never NULL after a successful parse)
    size_t body_len;
    bool keep_alive;           // 1.1: unless "Connection: close"; 1.0: only "Connection: keep-alive"
    char *mem_;                // private: the one block the strings live in
} ilm_http_request;

// Parses one request from buf[0..n). Returns the bytes it took (> 0) with *req filled (free it
// with ilm_http_request_free), 0 when more bytes are needed, or a negative HTTP status with a
// message in msg (msg may be NULL). *req is overwritten (zeroed unless the result is > 0), so
// free a previous request first. Pipelining: call again on buf + result for the next request.
// Requests longer than INT_MAX bytes are refused with -413.
int ilm_http_parse(const char *buf, size_t n, const ilm_http_limits *lim, ilm_http_request *req,
                   char *msg, size_t msg_cap);
// The first header named `name` (ASCII case-insensitive), or NULL.
const char *ilm_http_header(const ilm_http_request *r, const char *name);
void ilm_http_request_free(ilm_http_request *r);

// "HTTP/1.1 <status> <reason>", "Server: ironlm", Content-Type (unless NULL), Content-Length
// (content_length >= 0) or "Transfer-Encoding: chunked" (-1), "Connection: keep-alive|close",
// extra_headers (NULL, or lines each ending in \r\n) and the blank line. Statuses 1xx, 204 and
// 304 get neither Content-Length nor Transfer-Encoding.
void ilm_http_write_head(ilm_buf *b, int status, const char *content_type, long long content_length,
                         bool keep_alive, const char *extra_headers);
// One chunk of a chunked body ("<hex n>\r\n<data>\r\n"); n == 0 writes the last chunk "0\r\n\r\n".
void ilm_http_write_chunk(ilm_buf *b, const void *data, size_t n);
// The reason phrase of a status ("Not Found"); "Unknown" for one it does not know.
const char *ilm_http_reason(int status);

// The value of query parameter `key` in a target ("/p?a=1&b=x%20y"), '+' and %XX decoded, into
// out (NUL-terminated). Returns its length, -1 when absent, -2 when it does not fit in cap or
// has a malformed %-escape.
int ilm_http_query_param(const char *target, const char *key, char *out, size_t cap);
