// http_client.c — the HTTP/1.1 client and SSE splitter. See http_client.h.
#include "serve/http_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_HEAD (64 * 1024)  // status line + headers
#define HTTP_MAX_LINE 8192         // chunk-size line, trailer line

struct ilm_http_client {
    int fd;  // -1 when closed
    int timeout_ms;
    int port;
    bool reused;  // the connection already carried a response
    bool reset;   // the last recv failed with ECONNRESET
    char host[256];
    ilm_buf in;  // received, not yet consumed bytes
};

// --- URL ----------------------------------------------------------------------------------

int ilm_url_parse(const char *url, char *host, size_t host_cap, int *port, char *path, size_t path_cap,
                  ilm_err *err) {
    if (!strncasecmp(url, "https://", 8))
        return ilm_fail(err, "url %s: https is not supported (plain http only; put a TLS proxy in front)", url);
    if (strncasecmp(url, "http://", 7)) return ilm_fail(err, "url %s: must start with http://", url);
    const char *h = url + 7, *hend, *p;
    if (*h == '[') {  // IPv6 literal
        hend = strchr(h, ']');
        if (!hend) return ilm_fail(err, "url %s: unterminated '[' in host", url);
        h++;
        p = hend + 1;
    } else {
        hend = h + strcspn(h, ":/?#");
        p = hend;
    }
    size_t hl = (size_t)(hend - h);
    if (!hl) return ilm_fail(err, "url %s: no host", url);
    if (hl >= host_cap) return ilm_fail(err, "url %s: host too long", url);
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = 80;
    if (*p == ':') {
        char *end;
        errno = 0;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno || v < 1 || v > 65535 || (*end && *end != '/'))
            return ilm_fail(err, "url %s: bad port", url);
        *port = (int)v;
        p = end;
    }
    if (*p && *p != '/') return ilm_fail(err, "url %s: unexpected '%c' after the host", url, *p);
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/') pl--;
    if (pl >= path_cap) return ilm_fail(err, "url %s: path too long", url);
    memcpy(path, p, pl);
    path[pl] = 0;
    return 0;
}

// --- connection ---------------------------------------------------------------------------

static void conn_close(ilm_http_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->reused = false;
    ilm_buf_reset(&c->in);
}

// Waits for events on the socket; 0 ready, -1 with err on timeout or poll failure.
static int wait_fd(ilm_http_client *c, short events, const char *what, ilm_err *err) {
    struct pollfd pfd = {.fd = c->fd, .events = events};
    for (;;) {
        int r = poll(&pfd, 1, c->timeout_ms);
        if (r > 0) return 0;
        if (r == 0) return ilm_fail(err, "%s:%d: timed out after %d ms %s", c->host, c->port, c->timeout_ms, what);
        if (errno != EINTR) return ilm_fail(err, "%s:%d: poll: %s", c->host, c->port, strerror(errno));
    }
}

static int conn_open(ilm_http_client *c, ilm_err *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", c->port);
    int gai = getaddrinfo(c->host, ps, &hints, &res);
    if (gai) return ilm_fail(err, "%s:%d: cannot resolve host: %s", c->host, c->port, gai_strerror(gai));
    char last[sizeof err->msg] = "no address";
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            snprintf(last, sizeof last, "socket: %s", strerror(errno));
            continue;
        }
        c->fd = fd;
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc && errno == EINPROGRESS) {
            ilm_err e;
            if (wait_fd(c, POLLOUT, "connecting", &e)) {
                snprintf(last, sizeof last, "%s", e.msg);
            } else {
                int so = 0;
                socklen_t sl = sizeof so;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl)) so = errno;
                if (so) snprintf(last, sizeof last, "connect: %s", strerror(so));
                else rc = 0;
            }
        } else if (rc) {
            snprintf(last, sizeof last, "connect: %s", strerror(errno));
        }
        if (!rc) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(res);
            c->reused = false;
            ilm_buf_reset(&c->in);
            return 0;
        }
        close(fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (!strncmp(last, c->host, strlen(c->host))) return ilm_fail(err, "%s", last);
    return ilm_fail(err, "%s:%d: %s", c->host, c->port, last);
}

ilm_http_client *ilm_http_connect(const char *host, int port, int timeout_ms, ilm_err *err) {
    if (timeout_ms <= 0) {
        ilm_fail(err, "http: timeout must be positive");
        return NULL;
    }
    if (strlen(host) >= sizeof ((ilm_http_client *)0)->host) {
        ilm_fail(err, "http: host name too long");
        return NULL;
    }
    ilm_http_client *c = ilm_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    c->port = port;
    snprintf(c->host, sizeof c->host, "%s", host);
    if (conn_open(c, err)) {
        free(c);
        return NULL;
    }
    return c;
}

void ilm_http_close(ilm_http_client *c) {
    if (!c) return;
    conn_close(c);
    ilm_buf_free(&c->in);
    free(c);
}

static int send_all(ilm_http_client *c, const char *p, size_t n, ilm_err *err) {
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c, POLLOUT, "sending the request", err)) return -1;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return ilm_fail(err, "%s:%d: send: %s", c->host, c->port, w < 0 ? strerror(errno) : "no progress");
        }
    }
    return 0;
}

// Reads more bytes into c->in. Returns the count, 0 at end of stream, -1 with err.
static ssize_t read_more(ilm_http_client *c, ilm_err *err) {
    if (ilm_buf_reserve(&c->in, 16384)) return ilm_fail(err, "http: out of memory");
    c->reset = false;
    for (;;) {
        ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (r >= 0) {
            c->in.len += (size_t)r;
            c->in.p[c->in.len] = 0;
            return r;
        }
        if (errno == EINTR) continue;
        c->reset = errno == ECONNRESET;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(c, POLLIN, "waiting for the response", err)) return -1;
            continue;
        }
        return ilm_fail(err, "%s:%d: recv: %s", c->host, c->port, strerror(errno));
    }
}

// --- response -----------------------------------------------------------------------------

typedef struct {
    int (*on_body)(void *ctx, const char *data, size_t n);
    void *ctx;
    ilm_buf *out;
} body_sink;

// Passes n bytes at the front of c->in to the sink and consumes them. 0, or 1 when cancelled.
static int deliver(ilm_http_client *c, const body_sink *s, size_t n) {
    int rc = 0;
    if (n) {
        if (s->on_body) rc = s->on_body(s->ctx, c->in.p, n) != 0;
        else if (s->out) ilm_buf_add(s->out, c->in.p, n);
    }
    ilm_buf_consume(&c->in, n);
    return rc;
}

// Finds the end of the next line in c->in (reading more as needed). *len gets the line length
// without its \r\n or \n, *used the bytes including it. 0, or -1 with err.
static int next_line(ilm_http_client *c, size_t *len, size_t *used, const char *what, ilm_err *err) {
    for (;;) {
        char *nl = c->in.len ? memchr(c->in.p, '\n', c->in.len) : NULL;
        if (nl) {
            *used = (size_t)(nl - c->in.p) + 1;
            *len = *used - 1;
            if (*len && c->in.p[*len - 1] == '\r') (*len)--;
            return 0;
        }
        if (c->in.len > HTTP_MAX_LINE) return ilm_fail(err, "http: malformed response: %s line too long", what);
        ssize_t r = read_more(c, err);
        if (r < 0) return -1;
        if (r == 0) return ilm_fail(err, "http: connection closed in the middle of a %s", what);
    }
}

static int read_chunked(ilm_http_client *c, const body_sink *s, ilm_err *err) {
    for (;;) {
        size_t len, used;
        if (next_line(c, &len, &used, "chunk size", err)) return -1;
        const char *p = c->in.p;
        size_t size = 0, i = 0;
        for (; i < len; i++) {
            char ch = p[i];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
            if (d < 0) break;
            if (size > ((size_t)-1 >> 5)) return ilm_fail(err, "http: malformed response: chunk size too large");
            size = size * 16 + (size_t)d;
        }
        while (i < len && (p[i] == ' ' || p[i] == '\t')) i++;
        if (i == 0 || (i < len && p[i] != ';'))
            return ilm_fail(err, "http: malformed response: bad chunk size line '%.*s'", (int)(len < 40 ? len : 40), p);
        ilm_buf_consume(&c->in, used);
        if (size == 0) {  // trailers up to an empty line
            for (;;) {
                if (next_line(c, &len, &used, "chunked trailer", err)) return -1;
                ilm_buf_consume(&c->in, used);
                if (!len) return 0;
            }
        }
        while (size) {
            if (!c->in.len) {
                ssize_t r = read_more(c, err);
                if (r < 0) return -1;
                if (r == 0) return ilm_fail(err, "http: connection closed in the middle of a chunk");
            }
            size_t take = c->in.len < size ? c->in.len : size;
            if (deliver(c, s, take)) return 1;
            size -= take;
        }
        if (next_line(c, &len, &used, "chunk end", err)) return -1;
        if (len) return ilm_fail(err, "http: malformed response: chunk longer than its size");
        ilm_buf_consume(&c->in, used);
    }
}

// Case-insensitive: does the comma-separated header value v[0..n) contain token tok?
static bool has_token(const char *v, size_t n, const char *tok) {
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if (!strncasecmp(v + i, tok, tl) && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
            (i + tl == n || v[i + tl] == ' ' || v[i + tl] == ',' || v[i + tl] == ';'))
            return true;
    return false;
}

// Reads one response. Returns 0, 1 (cancelled), -1 with err; *early tells that the server closed
// (or reset) the connection before sending any byte.
static int read_response(ilm_http_client *c, const char *method, int *status, const body_sink *s, bool *early,
                         ilm_err *err) {
    *early = false;
    for (;;) {  // skips 1xx interim responses
        size_t head_len = 0;
        for (;;) {
            char *e = c->in.len ? memmem(c->in.p, c->in.len, "\r\n\r\n", 4) : NULL;
            if (e) {
                head_len = (size_t)(e - c->in.p) + 4;
                break;
            }
            if (c->in.len > HTTP_MAX_HEAD) return ilm_fail(err, "http: malformed response: header over 64 KiB");
            size_t had = c->in.len;
            ssize_t r = read_more(c, err);
            if (r <= 0 && !had) *early = r == 0 || c->reset;
            if (r < 0) return -1;
            if (r == 0)
                return ilm_fail(err, had ? "http: connection closed in the middle of the response header"
                                         : "http: connection closed by the server before a response");
        }
        if (memchr(c->in.p, 0, head_len)) return ilm_fail(err, "http: malformed response: NUL in header");
        const char *h = c->in.p;
        int minor, code;
        char sp;
        if (head_len < 14 || strncmp(h, "HTTP/1.", 7) || !(h[7] >= '0' && h[7] <= '9') || h[8] != ' ' ||
            sscanf(h + 9, "%3d%c", &code, &sp) != 2 || (sp != ' ' && sp != '\r') || code < 100 || code > 999 ||
            !(h[9] >= '1' && h[9] <= '9'))
        {
            int sl = (int)strcspn(h, "\r\n");
            return ilm_fail(err, "http: malformed status line '%.*s'", sl > 60 ? 60 : sl, h);
        }
        minor = h[7] - '0';
        *status = code;
        bool chunked = false, close_after = minor == 0, have_len = false;
        size_t clen = 0;
        const char *line = strstr(h, "\r\n") + 2, *hend = h + head_len - 2;
        while (line < hend) {
            const char *end = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
            const char *colon = memchr(line, ':', (size_t)(end - line));
            if (!colon) return ilm_fail(err, "http: malformed header line '%.*s'", (int)(end - line > 60 ? 60 : end - line), line);
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            size_t vl = (size_t)(end - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
            if (nl == 14 && !strncasecmp(line, "content-length", nl)) {
                size_t x = 0;
                if (!vl) return ilm_fail(err, "http: malformed Content-Length");
                for (size_t i = 0; i < vl; i++) {
                    if (v[i] < '0' || v[i] > '9' || x > ((size_t)-1) / 10 - 10)
                        return ilm_fail(err, "http: malformed Content-Length '%.*s'", (int)(vl > 30 ? 30 : vl), v);
                    x = x * 10 + (size_t)(v[i] - '0');
                }
                if (have_len && x != clen) return ilm_fail(err, "http: conflicting Content-Length headers");
                clen = x;
                have_len = true;
            } else if (nl == 17 && !strncasecmp(line, "transfer-encoding", nl)) {
                chunked = has_token(v, vl, "chunked");
            } else if (nl == 10 && !strncasecmp(line, "connection", nl)) {
                if (has_token(v, vl, "close")) close_after = true;
                if (has_token(v, vl, "keep-alive")) close_after = false;
            }
            line = end + 2;
        }
        ilm_buf_consume(&c->in, head_len);
        if (code >= 100 && code < 200 && code != 101) continue;
        int rc = 0;
        if (!strcmp(method, "HEAD") || code == 204 || code == 304 || (code >= 100 && code < 200)) {
            rc = 0;
        } else if (chunked) {
            rc = read_chunked(c, s, err);
        } else if (have_len) {
            while (clen) {
                if (!c->in.len) {
                    ssize_t r = read_more(c, err);
                    if (r < 0) return -1;
                    if (r == 0) return ilm_fail(err, "http: connection closed with %zu body bytes missing", clen);
                }
                size_t take = c->in.len < clen ? c->in.len : clen;
                if (deliver(c, s, take)) return 1;
                clen -= take;
            }
        } else {  // read until close
            close_after = true;
            for (;;) {
                if (c->in.len && deliver(c, s, c->in.len)) return 1;
                ssize_t r = read_more(c, err);
                if (r < 0) return -1;
                if (r == 0) break;
            }
        }
        if (rc) return rc;
        if (close_after) conn_close(c);
        else c->reused = true;
        return 0;
    }
}

int ilm_http_request(ilm_http_client *c, const char *method, const char *path, const char *extra_headers,
                     const char *body, size_t body_len, int *status,
                     int (*on_body)(void *ctx, const char *data, size_t n), void *ctx, ilm_buf *body_out,
                     ilm_err *err) {
    *status = 0;
    ilm_buf req = {0};
    bool v6 = strchr(c->host, ':') != NULL;
    ilm_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\n", method, path && *path ? path : "/",
                   v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
    if (body) {
        ilm_buf_printf(&req, "Content-Length: %zu\r\n", body_len);
        if (!extra_headers || !strcasestr(extra_headers, "content-type:"))
            ilm_buf_puts(&req, "Content-Type: application/json\r\n");
    }
    if (extra_headers) ilm_buf_puts(&req, extra_headers);
    ilm_buf_puts(&req, "\r\n");
    if (body) ilm_buf_add(&req, body, body_len);
    if (req.oom) {
        ilm_buf_free(&req);
        return ilm_fail(err, "http: out of memory");
    }
    body_sink sink = {on_body, ctx, body_out};
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0 && conn_open(c, err)) break;
        bool reused = c->reused, early = false;
        ilm_buf_reset(&c->in);
        if (send_all(c, req.p, req.len, err)) {
            conn_close(c);
            if (reused) continue;  // the server dropped an idle connection: once more, fresh
            break;
        }
        rc = read_response(c, method, status, &sink, &early, err);
        if (rc == 0) break;
        conn_close(c);
        if (rc == 1 || !early || !reused) break;
    }
    ilm_buf_free(&req);
    return rc;
}

// --- Server-Sent Events -------------------------------------------------------------------

void ilm_sse_init(ilm_sse *s) { memset(s, 0, sizeof *s); }

void ilm_sse_free(ilm_sse *s) {
    ilm_buf_free(&s->line);
    ilm_buf_free(&s->data);
    s->has_data = 0;
}

// One complete line (without its end).
static int sse_line(ilm_sse *s, const char *l, size_t n, int (*on_data)(void *, const char *, size_t), void *ctx) {
    if (!n) {  // end of event
        int rc = 0;
        if (s->has_data) rc = on_data(ctx, s->data.p ? s->data.p : "", s->data.len);
        ilm_buf_reset(&s->data);
        s->has_data = 0;
        return rc;
    }
    if (l[0] == ':') return 0;
    size_t fl = 0;
    while (fl < n && l[fl] != ':') fl++;
    if (fl != 4 || memcmp(l, "data", 4)) return 0;
    size_t v = fl < n ? fl + 1 : n;
    if (v < n && l[v] == ' ') v++;
    if (s->has_data) ilm_buf_putc(&s->data, '\n');
    ilm_buf_add(&s->data, l + v, n - v);
    s->has_data = 1;
    return 0;
}

int ilm_sse_feed(ilm_sse *s, const char *data, size_t n, int (*on_data)(void *ctx, const char *payload, size_t n),
                 void *ctx) {
    while (n) {
        const char *nl = memchr(data, '\n', n);
        if (!nl) {
            ilm_buf_add(&s->line, data, n);
            return 0;
        }
        size_t k = (size_t)(nl - data);
        const char *l = data;
        size_t ln = k;
        if (s->line.len) {
            ilm_buf_add(&s->line, data, k);
            l = s->line.p;
            ln = s->line.len;
        }
        if (ln && l[ln - 1] == '\r') ln--;
        int rc = sse_line(s, l, ln, on_data, ctx);
        ilm_buf_reset(&s->line);
        data += k + 1;
        n -= k + 1;
        if (rc) return rc;
    }
    return 0;
}
