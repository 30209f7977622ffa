// fuzz_http.c — libFuzzer target for the HTTP request parser (make fuzz).
//
// The first input byte picks the limits (small ones reach the limit paths); the rest is the
// request stream. It is parsed in one piece, looping over pipelined requests, and again split at
// an input-derived point: every prefix must give 0 or the same error, never a different request.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Checks what a successful parse promises; aborts (a crash libFuzzer reports) when it fails.
static void check_request(const ilm_http_request *r, const char *buf, size_t consumed, const ilm_http_limits *lim) {
    if (!r->method || !r->target || !r->path || !r->query || !r->body) abort();
    if (r->minor != 0 && r->minor != 1) abort();
    if (r->n_headers < 0 || r->n_headers > lim->max_headers) abort();
    if (r->body_len > lim->max_body || r->body_len > consumed) abort();
    if (memcmp(r->body, buf + consumed - r->body_len, r->body_len) != 0 || r->body[r->body_len]) abort();
    if (consumed - r->body_len > lim->max_header_bytes) abort();
    if (!memmem(buf, consumed, r->target, strlen(r->target))) abort();
    for (int i = 0; i < r->n_headers; i++) {
        const char *v = ilm_http_header(r, r->headers[i].name);
        if (!v) abort();
        if (!r->headers[i].name[0]) abort();
    }
    if (r->body_len && !ilm_http_header(r, "content-length")) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    ilm_http_limits lim = ilm_http_default_limits();
    uint8_t mode = data[0];
    if (mode & 1) {
        lim.max_header_bytes = 16 + (mode >> 1 & 63);
        lim.max_headers = mode >> 5 & 3;
        lim.max_body = mode >> 3 & 15;
    }
    const char *buf = (const char *)data + 1;
    size_t n = size - 1, split = data[1] % n;
    char msg[256];
    size_t off = 0;
    for (int k = 0; k < 64 && off < n; k++) {
        ilm_http_request r, r2;
        int rc = ilm_http_parse(buf + off, n - off, &lim, &r, msg, sizeof msg);
        if (rc < 0 && (rc > -400 || rc < -505 || !msg[0])) abort();
        if (rc > 0) {
            if ((size_t)rc > n - off) abort();
            check_request(&r, buf + off, (size_t)rc, &lim);
        } else if (r.mem_ || r.headers || r.method) abort();
        // The same stream cut short: a prefix is "need more" or the same error.
        size_t cut = split < n - off ? split : (n - off) / 2;
        int rc2 = ilm_http_parse(buf + off, cut, &lim, &r2, msg, sizeof msg);
        if (rc > 0 && (size_t)rc <= cut) {
            if (rc2 != rc) abort();
        } else if (rc2 > 0) {
            abort();  // a complete request in a prefix must also be one in the whole
        } else if (rc2 < 0 && rc2 != rc) {
            abort();
        }
        if (rc2 > 0) {
            if (strcmp(r.target, r2.target) || r.body_len != r2.body_len || r.n_headers != r2.n_headers) abort();
        }
        ilm_http_request_free(&r2);
        ilm_http_request_free(&r);
        if (rc <= 0) break;
        off += (size_t)rc;
    }
    return 0;
}
