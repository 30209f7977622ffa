// test_http_client.c — the HTTP/1.1 client and SSE splitter against a loopback server thread
// that answers each request with canned bytes (written in pieces, with pauses between them).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "serve/http_client.h"

// One canned response: pieces written one send() each with pause_ms between them; NULL-ended.
typedef struct {
    const char *pieces[12];
    int pause_ms;
    bool close_after;  // close the connection after the response
    bool stall;        // never answer: wait for the client to go away
} canned;

typedef struct {
    int lfd, port;
    const canned *resp;
    int n_resp;
    pthread_t th;
    // results, read after join
    int accepts, requests, send_failed;
    char first_req[2048];
} tsrv;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// Reads one request (header + Content-Length body) into buf; 0 ok, -1 closed / timed out.
static int srv_read_request(int fd, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        buf[len] = 0;
        char *e = strstr(buf, "\r\n\r\n");
        if (e) {
            const char *cl = strstr(buf, "Content-Length: ");
            size_t need = (size_t)(e - buf) + 4 + (cl && cl < e ? (size_t)atol(cl + 16) : 0);
            if (len >= need) return 0;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0 || len + 1 >= cap) return -1;
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0) return -1;
        len += (size_t)r;
    }
}

static void *srv_main(void *arg) {
    tsrv *s = arg;
    int k = 0, fd = -1;
    char req[8192];
    while (k < s->n_resp) {
        if (fd < 0) {
            struct pollfd p = {.fd = s->lfd, .events = POLLIN};
            if (poll(&p, 1, 3000) <= 0) break;
            fd = accept(s->lfd, NULL, NULL);
            if (fd < 0) break;
            s->accepts++;
        }
        if (srv_read_request(fd, req, sizeof req)) {
            close(fd);
            fd = -1;
            continue;
        }
        if (!s->requests++) snprintf(s->first_req, sizeof s->first_req, "%.2000s", req);
        const canned *c = &s->resp[k++];
        if (c->stall) {  // wait until the client closes (or 3 s)
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 3000);
            close(fd);
            fd = -1;
            continue;
        }
        for (int i = 0; c->pieces[i]; i++) {
            if (i && c->pause_ms) sleep_ms(c->pause_ms);
            if (send(fd, c->pieces[i], strlen(c->pieces[i]), MSG_NOSIGNAL) < 0) {
                s->send_failed++;
                break;
            }
        }
        if (c->close_after) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int srv_start(tsrv *s, const canned *resp, int n) {
    memset(s, 0, sizeof *s);
    s->resp = resp;
    s->n_resp = n;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t al = sizeof a;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) || listen(s->lfd, 8) ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->th, NULL, srv_main, s) ? -1 : 0;
}

static void srv_stop(tsrv *s) {
    pthread_join(s->th, NULL);
    close(s->lfd);
}

// Connects to the server, runs one GET, returns the rc; body in *body.
static int get_once(ilm_http_client *c, int *status, ilm_buf *body, ilm_err *err) {
    ilm_buf_reset(body);
    return ilm_http_request(c, "GET", "/x", NULL, NULL, 0, status, NULL, NULL, body, err);
}

TEST(http_url_parse) {
    char host[64], path[64];
    int port;
    ilm_err err;
    CHECK_EQ(ilm_url_parse("http://localhost:8080/v1/", host, sizeof host, &port, path, sizeof path, &err), 0);
    CHECK_STR(host, "localhost");
    CHECK_EQ(port, 8080);
    CHECK_STR(path, "/v1");
    CHECK_EQ(ilm_url_parse("http://10.0.0.1", host, sizeof host, &port, path, sizeof path, &err), 0);
    CHECK_STR(host, "10.0.0.1");
    CHECK_EQ(port, 80);
    CHECK_STR(path, "");
    CHECK_EQ(ilm_url_parse("http://[::1]:9000/api", host, sizeof host, &port, path, sizeof path, &err), 0);
    CHECK_STR(host, "::1");
    CHECK_EQ(port, 9000);
    CHECK_STR(path, "/api");
    CHECK_EQ(ilm_url_parse("https://x.org", host, sizeof host, &port, path, sizeof path, &err), -1);
    CHECK(strstr(err.msg, "https") != NULL);
    CHECK_EQ(ilm_url_parse("ftp://x.org", host, sizeof host, &port, path, sizeof path, &err), -1);
    CHECK_EQ(ilm_url_parse("http://x.org:99999", host, sizeof host, &port, path, sizeof path, &err), -1);
    CHECK_EQ(ilm_url_parse("http://x.org:80x", host, sizeof host, &port, path, sizeof path, &err), -1);
    CHECK_EQ(ilm_url_parse("http://:80", host, sizeof host, &port, path, sizeof path, &err), -1);
}

TEST(http_content_length_and_keepalive) {
    static const canned resp[] = {
        {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhel", "lo"}, .pause_ms = 5},
        {.pieces = {"HTTP/1.1 404 Not Found\r\ncontent-length:  3 \r\n\r\nnop"}},
    };
    tsrv s;
    CHECK_EQ(srv_start(&s, resp, 2), 0);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s.port, 2000, &err);
    CHECK(c != NULL);
    ilm_buf body = {0};
    int status;
    CHECK_EQ(ilm_http_request(c, "POST", "/v1/x", "Authorization: Bearer k\r\n", "{}", 2, &status, NULL, NULL,
                              &body, &err),
             0);
    CHECK_EQ(status, 200);
    CHECK_STR(body.p, "hello");
    CHECK_EQ(get_once(c, &status, &body, &err), 0);
    CHECK_EQ(status, 404);
    CHECK_STR(body.p, "nop");
    ilm_http_close(c);
    srv_stop(&s);
    CHECK_EQ(s.accepts, 1);  // both requests on one connection
    CHECK_EQ(s.requests, 2);
    CHECK(strstr(s.first_req, "POST /v1/x HTTP/1.1\r\n") == s.first_req);
    CHECK(strstr(s.first_req, "Content-Length: 2\r\n") != NULL);
    CHECK(strstr(s.first_req, "Content-Type: application/json\r\n") != NULL);
    CHECK(strstr(s.first_req, "Authorization: Bearer k\r\n") != NULL);
    CHECK(strstr(s.first_req, "\r\n\r\n{}") != NULL);
    ilm_buf_free(&body);
}

TEST(http_chunked) {
    // chunk extensions, a size line split across writes, a chunk split across writes, trailers
    static const canned resp[] = {
        {.pieces = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n",
                    "0", "a\r\nabcde", "fghij\r\n0", "\r\nX-Trailer: 1\r\n\r\n"},
         .pause_ms = 5},
        {.pieces = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n"}},
    };
    tsrv s;
    CHECK_EQ(srv_start(&s, resp, 2), 0);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s.port, 2000, &err);
    CHECK(c != NULL);
    ilm_buf body = {0};
    int status;
    CHECK_EQ(get_once(c, &status, &body, &err), 0);
    CHECK_STR(body.p, "Wikiabcdefghij");
    CHECK_EQ(get_once(c, &status, &body, &err), 0);
    CHECK_STR(body.p, "abc");
    ilm_http_close(c);
    srv_stop(&s);
    CHECK_EQ(s.accepts, 1);
    ilm_buf_free(&body);
}

TEST(http_read_until_close_then_reconnect) {
    static const canned resp[] = {
        {.pieces = {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart1-", "part2"}, .pause_ms = 5,
         .close_after = true},
        {.pieces = {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"}, .close_after = true},
        {.pieces = {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"}},
    };
    tsrv s;
    CHECK_EQ(srv_start(&s, resp, 3), 0);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s.port, 2000, &err);
    CHECK(c != NULL);
    ilm_buf body = {0};
    int status;
    CHECK_EQ(get_once(c, &status, &body, &err), 0);
    CHECK_STR(body.p, "part1-part2");
    CHECK_EQ(get_once(c, &status, &body, &err), 0);  // reconnects
    CHECK_STR(body.p, "ok");
    CHECK_EQ(get_once(c, &status, &body, &err), 0);  // HTTP/1.0: reconnects again; 100 skipped
    CHECK_EQ(status, 204);
    CHECK_EQ(body.len, 0);
    ilm_http_close(c);
    srv_stop(&s);
    CHECK_EQ(s.accepts, 3);
    ilm_buf_free(&body);
}

typedef struct {
    char got[1024];
    int events;
} sse_ctx;

static int on_event(void *ctx, const char *payload, size_t n) {
    sse_ctx *x = ctx;
    CHECK_EQ(strlen(payload), n);
    size_t l = strlen(x->got);
    snprintf(x->got + l, sizeof x->got - l, "[%s]", payload);
    x->events++;
    return 0;
}

typedef struct {
    ilm_sse sse;
    sse_ctx ev;
    int pieces;
} stream_ctx;

static int on_stream_body(void *ctx, const char *data, size_t n) {
    stream_ctx *x = ctx;
    x->pieces++;
    return ilm_sse_feed(&x->sse, data, n, on_event, &x->ev);
}

TEST(http_sse_stream) {
    static const canned resp[] = {
        {.pieces = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "e\r\ndata: {\"a\":1}\n\r\n", "3\r\n\nda\r\n", "12\r\nta: two\r\n\r\n: ping\n\r\n",
                    "1b\r\nevent: x\ndata: l1\ndata:l2\n\n\r\n", "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"},
         .pause_ms = 3},
    };
    tsrv s;
    CHECK_EQ(srv_start(&s, resp, 1), 0);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s.port, 2000, &err);
    CHECK(c != NULL);
    stream_ctx x = {0};
    ilm_sse_init(&x.sse);
    int status;
    int rc = ilm_http_request(c, "POST", "/s", NULL, "{}", 2, &status, on_stream_body, &x, NULL, &err);
    CHECK_MSG(rc == 0, "rc %d: %s", rc, err.msg);
    CHECK_EQ(status, 200);
    CHECK_STR(x.ev.got, "[{\"a\":1}][two][l1\nl2][[DONE]]");
    CHECK_EQ(x.ev.events, 4);
    CHECK(x.pieces >= 5);
    ilm_sse_free(&x.sse);
    ilm_http_close(c);
    srv_stop(&s);
}

TEST(http_sse_split_everywhere) {
    const char *text = "data: one\r\n\r\n:c\ndata: two\n\ndata:\n\nid: 3\ndata: x\r\ndata: y\r\n\r\ndata: tail";
    size_t n = strlen(text);
    for (size_t step = 1; step <= n; step++) {
        sse_ctx ev = {0};
        ilm_sse s;
        ilm_sse_init(&s);
        for (size_t i = 0; i < n; i += step)
            CHECK_EQ(ilm_sse_feed(&s, text + i, i + step <= n ? step : n - i, on_event, &ev), 0);
        CHECK_STR(ev.got, "[one][two][][x\ny]");
        ilm_sse_free(&s);
    }
}

TEST(http_stall_times_out) {
    static const canned resp[] = {{.stall = true}};
    tsrv s;
    CHECK_EQ(srv_start(&s, resp, 1), 0);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s.port, 150, &err);
    CHECK(c != NULL);
    ilm_buf body = {0};
    int status;
    double t0 = ilm_now();
    CHECK_EQ(get_once(c, &status, &body, &err), -1);
    double dt = ilm_now() - t0;
    CHECK_MSG(strstr(err.msg, "timed out") != NULL, "%s", err.msg);
    CHECK(dt >= 0.1 && dt < 2.0);
    ilm_http_close(c);
    srv_stop(&s);
    ilm_buf_free(&body);
}

TEST(http_malformed_responses) {
    static const canned resp[] = {
        {.pieces = {"HTTP/1.1 abc OK\r\n\r\n"}, .close_after = true},
        {.pieces = {"SMTP ready\r\n\r\n"}, .close_after = true},
        {.pieces = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}, .close_after = true},
        {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"}, .close_after = true},
        {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"}, .close_after = true},
        {.pieces = {"HTTP/1.1 200 OK\r\nbadheader\r\n\r\n"}, .close_after = true},
    };
    tsrv s;
    CHECK_EQ(srv_start(&s, resp, 6), 0);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s.port, 2000, &err);
    CHECK(c != NULL);
    ilm_buf body = {0};
    int status;
    const char *want[] = {"status line", "status line", "chunk size", "missing", "Content-Length", "header line"};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(get_once(c, &status, &body, &err), -1);
        CHECK_MSG(strstr(err.msg, want[i]) != NULL, "case %d: %s", i, err.msg);
    }
    ilm_http_close(c);
    srv_stop(&s);
    ilm_buf_free(&body);
}

static int cancel_after_first(void *ctx, const char *data, size_t n) {
    (void)data;
    (void)n;
    (*(int *)ctx)++;
    return 1;
}

TEST(http_cancel_closes_connection) {
    static const canned resp[] = {
        {.pieces = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n", "5\r\nmore1\r\n",
                    "5\r\nmore2\r\n", "5\r\nmore3\r\n", "5\r\nmore4\r\n", "5\r\nmore5\r\n", "0\r\n\r\n"},
         .pause_ms = 30},
        {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}},
    };
    tsrv s;
    CHECK_EQ(srv_start(&s, resp, 2), 0);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s.port, 2000, &err);
    CHECK(c != NULL);
    int calls = 0, status;
    double t0 = ilm_now();
    CHECK_EQ(ilm_http_request(c, "GET", "/", NULL, NULL, 0, &status, cancel_after_first, &calls, NULL, &err), 1);
    CHECK(ilm_now() - t0 < 0.1);  // did not wait for the rest of the stream
    CHECK_EQ(calls, 1);
    ilm_buf body = {0};
    CHECK_EQ(get_once(c, &status, &body, &err), 0);  // a fresh connection
    CHECK_STR(body.p, "ok");
    ilm_http_close(c);
    srv_stop(&s);
    CHECK_EQ(s.accepts, 2);
    CHECK_EQ(s.send_failed, 1);  // the server saw the client go away mid-stream
    ilm_buf_free(&body);
}

TEST(http_connect_refused) {
    // a port that was just free: bind, read the port, close
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", ntohs(a.sin_port), 1000, &err);
    CHECK(c == NULL);
    CHECK_MSG(strstr(err.msg, "refused") != NULL, "%s", err.msg);
}
