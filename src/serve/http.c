// http.c — HTTP/1.1 request parser (incremental, two passes) and response writers. See http.h.
//
// Pass 1 (scan_head) walks the complete lines seen so far, validates each and stops at the
// blank line, so an error is reported as soon as its line is complete. Pass 2 (fill) runs only
// once the head and the whole body are in the buffer: it copies the strings into one block.
#include "serve/http.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ilm_http_limits ilm_http_default_limits(void) {
    return (ilm_http_limits){.max_header_bytes = 16 * 1024, .max_headers = 64, .max_body = 4u << 20};
}

static int fail(char *msg, size_t cap, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t cap, int status, const char *fmt, ...) {
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return -status;
}

static bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// a[0..n) equals the NUL-terminated lowercase s, ignoring ASCII case.
static bool ieq(const char *a, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (!s[i] || lower((unsigned char)a[i]) != s[i]) return false;
    return s[n] == 0;
}

// Does the comma-separated token list v[0..n) contain tok (lowercase)?
static bool list_has(const char *v, size_t n, const char *tok) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s && ieq(v + s, e - s, tok)) return true;
    }
    return false;
}

// The parts of a request line, as offsets into it.
typedef struct {
    size_t method_len, target_off, target_len;
    int minor;
} req_line;

static int parse_request_line(const char *l, size_t n, req_line *rl, char *msg, size_t cap) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i])) i++;
    if (i == 0 || i == n || l[i] != ' ')
        return fail(msg, cap, 400, "malformed request line (expected METHOD SP TARGET SP HTTP/1.x)");
    rl->method_len = i;
    rl->target_off = ++i;
    while (i < n && l[i] != ' ') {
        unsigned char c = (unsigned char)l[i];
        if (c <= 0x20 || c >= 0x7f) return fail(msg, cap, 400, "invalid byte 0x%02x in request target", c);
        i++;
    }
    rl->target_len = i - rl->target_off;
    if (rl->target_len == 0 || i == n)
        return fail(msg, cap, 400, "malformed request line (expected METHOD SP TARGET SP HTTP/1.x)");
    const char *t = l + rl->target_off;
    bool absolute = rl->target_len > 7 && (ieq(t, 7, "http://") || (rl->target_len > 8 && ieq(t, 8, "https://")));
    bool star = rl->target_len == 1 && t[0] == '*';
    if (t[0] != '/' && !absolute && !star)
        return fail(msg, cap, 400, "unsupported request target \"%.*s\" (expected /path, * or http://host/path)",
                    (int)(rl->target_len > 64 ? 64 : rl->target_len), t);
    const char *v = l + i + 1;
    size_t vn = n - i - 1;
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
        return fail(msg, cap, 400, "malformed HTTP version in request line (expected HTTP/1.x)");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return fail(msg, cap, 505, "HTTP version %.8s not supported (HTTP/1.0 and HTTP/1.1 are)", v);
    rl->minor = v[7] - '0';
    return 0;
}

// What pass 1 learns about a head.
typedef struct {
    size_t head_end;     // bytes through the blank line
    size_t start;        // offset of the request line (after skipped empty lines)
    size_t clen;
    bool has_clen;
    int n_headers;
    req_line rl;
} head_scan;

// Splits a header line into name [0, *name_len) and trimmed value [*v_off, *v_off + *v_len).
static int parse_header_line(const char *l, size_t n, size_t *name_len, size_t *v_off, size_t *v_len, char *msg,
                             size_t cap) {
    if (l[0] == ' ' || l[0] == '\t') return fail(msg, cap, 400, "obsolete header line folding is not supported");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i])) i++;
    if (i == n) return fail(msg, cap, 400, "header line without ':'");
    if (l[i] != ':') {
        if (l[i] == ' ' || l[i] == '\t') return fail(msg, cap, 400, "whitespace in or after header name \"%.*s\"", (int)i, l);
        return fail(msg, cap, 400, "invalid byte 0x%02x in header name", (unsigned char)l[i]);
    }
    if (i == 0) return fail(msg, cap, 400, "empty header name");
    *name_len = i++;
    while (i < n && (l[i] == ' ' || l[i] == '\t')) i++;
    size_t e = n;
    while (e > i && (l[e - 1] == ' ' || l[e - 1] == '\t')) e--;
    for (size_t k = i; k < e; k++) {
        unsigned char c = (unsigned char)l[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(msg, cap, 400, "control character 0x%02x in header \"%.*s\"", c, (int)*name_len, l);
    }
    *v_off = i;
    *v_len = e - i;
    return 0;
}

static int check_header(const char *l, size_t n, head_scan *h, const ilm_http_limits *lim, char *msg, size_t cap) {
    size_t nl, vo, vl;
    int rc = parse_header_line(l, n, &nl, &vo, &vl, msg, cap);
    if (rc) return rc;
    const char *v = l + vo;
    if (ieq(l, nl, "transfer-encoding"))
        return fail(msg, cap, 501, "Transfer-Encoding is not supported on requests (send the body with Content-Length)");
    if (ieq(l, nl, "content-length")) {
        if (vl == 0) return fail(msg, cap, 400, "empty Content-Length");
        if (v[0] == '-') return fail(msg, cap, 400, "negative Content-Length %.*s", (int)(vl > 32 ? 32 : vl), v);
        size_t x = 0;
        for (size_t k = 0; k < vl; k++) {
            if (v[k] < '0' || v[k] > '9')
                return fail(msg, cap, 400, "invalid Content-Length \"%.*s\" (expected digits)", (int)(vl > 32 ? 32 : vl), v);
            if (x > (SIZE_MAX - 9) / 10) return fail(msg, cap, 400, "Content-Length %.*s overflows", (int)(vl > 32 ? 32 : vl), v);
            x = x * 10 + (size_t)(v[k] - '0');
        }
        if (h->has_clen && x != h->clen)
            return fail(msg, cap, 400, "conflicting Content-Length headers (%zu and %zu)", h->clen, x);
        if (x > lim->max_body) return fail(msg, cap, 413, "request body of %zu bytes exceeds the limit of %zu", x, lim->max_body);
        h->clen = x;
        h->has_clen = true;
    }
    return 0;
}

// The next line from p: returns 1 with [*ls, *ls + *len) (line ending excluded) and *next, or 0
// when no '\n' is in b[p..avail).
static int next_line(const char *b, size_t avail, size_t p, size_t *len, size_t *next) {
    const char *nl = p < avail ? memchr(b + p, '\n', avail - p) : NULL;
    if (!nl) return 0;
    size_t e = (size_t)(nl - b);
    *len = e - p;
    if (*len && b[e - 1] == '\r') (*len)--;
    *next = e + 1;
    return 1;
}

// Pass 1: 1 when the head is complete (h filled), 0 when more bytes are needed, or -status.
static int scan_head(const char *b, size_t n, const ilm_http_limits *lim, head_scan *h, char *msg, size_t cap) {
    size_t lim_h = lim->max_header_bytes, avail = n < lim_h ? n : lim_h;
    size_t p = 0, len, next;
    bool have_line = false;
    for (;;) {
        if (!next_line(b, avail, p, &len, &next)) {
            // A CR followed by something else than LF, both inside the head limit, is a bad line ending
            // (past the limit the 431 below comes first, whatever the bytes: prefixes agree).
            const char *cr = p < avail ? memchr(b + p, '\r', avail - p) : NULL;
            if (cr && (size_t)(cr - b) + 1 < avail && cr[1] != '\n') return fail(msg, cap, 400, "CR not followed by LF");
            if (n >= lim_h) return fail(msg, cap, 431, "request head exceeds the limit of %zu bytes", lim_h);
            return 0;
        }
        const char *l = b + p;
        if (memchr(l, '\r', len)) return fail(msg, cap, 400, "CR not followed by LF");
        if (!have_line) {
            if (len == 0) {  // an empty line before the request line
                p = next;
                continue;
            }
            h->start = p;
            int rc = parse_request_line(l, len, &h->rl, msg, cap);
            if (rc) return rc;
            have_line = true;
        } else if (len == 0) {
            h->head_end = next;
            return 1;
        } else {
            if (++h->n_headers > lim->max_headers)
                return fail(msg, cap, 431, "more than %d header lines", lim->max_headers);
            int rc = check_header(l, len, h, lim, msg, cap);
            if (rc) return rc;
        }
        p = next;
    }
}

// Pass 2: copies the request into one block.
static int fill(const char *b, const head_scan *h, ilm_http_request *r, char *msg, size_t cap) {
    // Each line's pieces need at most its length + 3 bytes (the request line: method, target
    // and path with their NULs); the body its length + 1.
    size_t need = 2 * h->head_end + h->clen + 8;
    char *m = malloc(need);
    ilm_http_header_field *hf = h->n_headers ? calloc((size_t)h->n_headers, sizeof *hf) : NULL;
    if (!m || (h->n_headers && !hf)) {
        free(m);
        free(hf);
        return fail(msg, cap, 500, "out of memory for a request of %zu bytes", h->head_end + h->clen);
    }
    size_t o = 0;
#define PUT(dst, src, n_)                 \
    do {                                  \
        (dst) = m + o;                    \
        memcpy(m + o, (src), (n_));       \
        o += (n_);                        \
        m[o++] = 0;                       \
    } while (0)
    const char *l = b + h->start;
    const req_line *rl = &h->rl;
    PUT(r->method, l, rl->method_len);
    const char *t = l + rl->target_off;
    size_t tn = rl->target_len;
    PUT(r->target, t, tn);
    size_t ps = 0;
    if (t[0] != '/' && t[0] != '*') {  // absolute-form: skip scheme and authority
        const char *a = memchr(t, ':', tn);
        ps = (size_t)(a - t) + 3;
        while (ps < tn && t[ps] != '/' && t[ps] != '?') ps++;
    }
    size_t pe = ps;
    while (pe < tn && t[pe] != '?') pe++;
    if (pe == ps) PUT(r->path, "/", 1);
    else PUT(r->path, t + ps, pe - ps);
    r->query = pe < tn ? r->target + pe + 1 : r->target + tn;
    r->minor = rl->minor;

    size_t p = h->start, len, next;
    next_line(b, h->head_end, p, &len, &next);  // the request line
    bool close = false, ka = false;
    for (int i = 0; i < h->n_headers; i++) {
        p = next;
        next_line(b, h->head_end, p, &len, &next);
        size_t nl, vo, vl;
        parse_header_line(b + p, len, &nl, &vo, &vl, NULL, 0);
        PUT(hf[i].name, b + p, nl);
        PUT(hf[i].value, b + p + vo, vl);
        if (ieq(b + p, nl, "connection")) {
            close |= list_has(b + p + vo, vl, "close");
            ka |= list_has(b + p + vo, vl, "keep-alive");
        }
    }
    PUT(r->body, b + h->head_end, h->clen);
#undef PUT
    r->headers = hf;
    r->n_headers = h->n_headers;
    r->body_len = h->clen;
    r->keep_alive = !close && (r->minor == 1 || ka);
    r->mem_ = m;
    return 0;
}

int ilm_http_parse(const char *buf, size_t n, const ilm_http_limits *lim, ilm_http_request *req, char *msg,
                   size_t msg_cap) {
    memset(req, 0, sizeof *req);
    if (msg && msg_cap) msg[0] = 0;
    ilm_http_limits dl = ilm_http_default_limits();
    if (!lim) lim = &dl;
    head_scan h = {0};
    int rc = scan_head(buf, n, lim, &h, msg, msg_cap);
    if (rc <= 0) return rc;
    if (h.clen > (size_t)INT_MAX - h.head_end)
        return fail(msg, msg_cap, 413, "request of %zu + %zu bytes is too large", h.head_end, h.clen);
    if (n - h.head_end < h.clen) return 0;
    rc = fill(buf, &h, req, msg, msg_cap);
    if (rc) return rc;
    return (int)(h.head_end + h.clen);
}

const char *ilm_http_header(const ilm_http_request *r, const char *name) {
    for (int i = 0; i < r->n_headers; i++) {
        const char *a = r->headers[i].name, *b = name;
        while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return r->headers[i].value;
    }
    return NULL;
}

void ilm_http_request_free(ilm_http_request *r) {
    free(r->mem_);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

const char *ilm_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void ilm_http_write_head(ilm_buf *b, int status, const char *content_type, long long content_length,
                         bool keep_alive, const char *extra_headers) {
    ilm_buf_printf(b, "HTTP/1.1 %d %s\r\nServer: ironlm\r\n", status, ilm_http_reason(status));
    if (content_type) ilm_buf_printf(b, "Content-Type: %s\r\n", content_type);
    bool bodiless = (status >= 100 && status < 200) || status == 204 || status == 304;
    if (!bodiless) {
        if (content_length >= 0) ilm_buf_printf(b, "Content-Length: %lld\r\n", content_length);
        else ilm_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    }
    ilm_buf_puts(b, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (extra_headers) ilm_buf_puts(b, extra_headers);
    ilm_buf_puts(b, "\r\n");
}

void ilm_http_write_chunk(ilm_buf *b, const void *data, size_t n) {
    if (n == 0) {
        ilm_buf_puts(b, "0\r\n\r\n");
        return;
    }
    ilm_buf_printf(b, "%zx\r\n", n);
    ilm_buf_add(b, data, n);
    ilm_buf_puts(b, "\r\n");
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ilm_http_query_param(const char *target, const char *key, char *out, size_t cap) {
    const char *q = strchr(target, '?');
    if (!q) return -1;
    size_t kn = strlen(key);
    for (const char *p = q + 1; *p;) {
        const char *e = p;
        while (*e && *e != '&' && *e != '#') e++;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        if ((size_t)(ke - p) == kn && memcmp(p, key, kn) == 0) {
            size_t o = 0;
            for (const char *s = eq ? eq + 1 : e; s < e; s++) {
                char c = *s;
                if (c == '+') c = ' ';
                else if (c == '%') {
                    int hi = e - s >= 3 ? hexval(s[1]) : -1, lo = e - s >= 3 ? hexval(s[2]) : -1;
                    if (hi < 0 || lo < 0) return -2;
                    c = (char)(hi * 16 + lo);
                    s += 2;
                }
                if (o + 1 >= cap) return -2;
                out[o++] = c;
            }
            if (cap == 0) return -2;
            out[o] = 0;
            return (int)o;
        }
        if (*e != '&') break;
        p = e + 1;
    }
    return -1;
}
