// server.c — the server's I/O thread: the listening socket, connections (keep-alive,
// pipelining, read timeouts, a cap on their number), the poll loop, signals and shutdown.
// Requests are answered in routes.c; generation runs on the worker thread (worker.c).
#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve/state.h"

#define OUT_MAX ((size_t)64 << 20)  // a client this far behind is dropped (its request cancelled)

void ilm_serve_opts_default(ilm_serve_opts *o) {
    memset(o, 0, sizeof *o);
    ilm_engine_opts_default(&o->engine);
    o->n_parallel = 1;
    o->draft_max = 3;
    o->host = "127.0.0.1";
    o->port = 8080;
    o->max_body = (size_t)4 << 20;
    o->timeout_s = 600;
    o->max_conn = 256;
    o->max_queue = 64;
    o->n_predict = -1;
    o->verbose = true;
}

static int listen_on(const char *host, int port, int *out_port, ilm_err *err) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g) return ilm_fail(err, "--host %s: %s", host, gai_strerror(g));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return ilm_fail(err, "cannot listen on %s:%d: %s", host, port, strerror(errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *out_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *out_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

// --- connections -------------------------------------------------------------------------------

static void conn_free(ilm_server *S, ilm_conn *c) {
    if (c->r) {
        pthread_mutex_lock(&S->mu);
        c->r->cancel = true;
        pthread_cond_signal(&S->cv);
        pthread_mutex_unlock(&S->mu);
        ilm_sreq_unref(S, c->r);
    }
    close(c->fd);
    ilm_buf_free(&c->in);
    ilm_buf_free(&c->out);
    ilm_buf_free(&c->text);
    free(c);
}

// Sends what it can of c->out. Returns -1 when the connection is gone.
static int conn_flush(ilm_conn *c) {
    while (c->out.len) {
        ssize_t w = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        ilm_buf_consume(&c->out, (size_t)w);
    }
    return 0;
}

// Whether a complete request head in buf asks for "Expect: 100-continue" (curl does for bodies
// over 1 KiB and otherwise waits a second before sending them).
static bool expects_continue(const char *buf, size_t n) {
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end) return false;
    static const char key[] = "\nexpect:";
    for (const char *p = buf; p + sizeof key - 1 < end; p++) {
        if (strncasecmp(p, key, sizeof key - 1)) continue;
        p += sizeof key - 1;
        while (*p == ' ' || *p == '\t') p++;
        return !strncasecmp(p, "100-continue", 12);
    }
    return false;
}

// Parses and answers every complete request in c->in (one at a time: a request that starts
// a generation holds the rest until it is answered).
static void conn_parse(ilm_server *S, ilm_conn *c, const ilm_http_limits *lim) {
    while (!c->r && !c->closing && c->in.len) {
        ilm_http_request req;
        char msg[256];
        int n = ilm_http_parse(c->in.p, c->in.len, lim, &req, msg, sizeof msg);
        if (n == 0) {
            if (!c->t_first) c->t_first = ilm_now();
            if (!c->continued && expects_continue(c->in.p, c->in.len)) {
                ilm_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                c->continued = true;
            }
            return;
        }
        c->t_first = 0;
        c->continued = false;
        if (n < 0) {
            c->keep_alive = false;
            ilm_serve_respond_error(S, c, -n, "", "%s", msg);
            c->closing = true;
            return;
        }
        ilm_buf_consume(&c->in, (size_t)n);
        c->keep_alive = req.keep_alive;
        ilm_serve_route(S, c, &req);
        ilm_http_request_free(&req);
        if (!c->keep_alive && !c->r) c->closing = true;
    }
}

// Reads what the socket has. Returns -1 when the peer closed or failed.
static int conn_read(ilm_conn *c, size_t cap) {
    for (;;) {
        if (c->in.len >= cap) return 0;  // the parser will refuse it; stop reading
        if (ilm_buf_reserve(&c->in, 16384)) return -1;
        ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        if (r == 0) return -1;
        c->in.len += (size_t)r;
        c->in.p[c->in.len] = 0;
        c->t_last = ilm_now();
    }
}

// Answers a connection over --max-conn with 503 and closes it.
static void reject_busy(ilm_server *S, int fd) {
    ilm_buf b = {0};
    const char *body = "{\"error\":{\"message\":\"too many connections\",\"type\":\"server_error\",\"code\":503}}";
    ilm_http_write_head(&b, 503, "application/json", (long long)strlen(body), false, "Retry-After: 1\r\n");
    ilm_buf_puts(&b, body);
    if (!b.oom) {
        ssize_t w = send(fd, b.p, b.len, MSG_NOSIGNAL);
        (void)w;
    }
    ilm_buf_free(&b);
    close(fd);
    pthread_mutex_lock(&S->mu);
    ilm_serve_count_status(S, 503);
    pthread_mutex_unlock(&S->mu);
}

// --- shutdown ----------------------------------------------------------------------------------

// Stops accepting and refuses what waits in the queue; running requests go on to their end.
static void begin_stop(ilm_server *S) {
    pthread_mutex_lock(&S->mu);
    S->stopping = true;
    ilm_sreq *r = S->queue_head;
    S->queue_head = S->queue_tail = NULL;
    S->queue_len = 0;
    while (r) {
        ilm_sreq *next = r->next;
        r->ended = true;
        r->status = 503;
        snprintf(r->error, sizeof r->error, "the server is shutting down");
        r->refs--;  // the worker's reference: it never saw the request
        r = next;
    }
    pthread_cond_broadcast(&S->cv);
    pthread_mutex_unlock(&S->mu);
    ilm_serve_wake_io(S);
}

static void server_free(ilm_server *S) {
    ilm_sched_free(S->sched);
    ilm_drafter_free(S->drafter);
    ilm_constraint_vocab_free(S->cvocab);
    ilm_tokenizer_free(S->tok);
    if (S->engine_open) ilm_engine_close(&S->engine);
    free(S->running);
    free(S->slot_cached);
    free(S->c.drafted);
    free(S->c.accepted);
    free(S->c.slot_requests);
    if (S->wake_fd >= 0) close(S->wake_fd);
    pthread_mutex_destroy(&S->mu);
    pthread_cond_destroy(&S->cv);
}

// --- the loop ----------------------------------------------------------------------------------

int ilm_serve(const ilm_serve_opts *o, ilm_err *err) {
    if (o->n_parallel < 1 || o->n_parallel > 256) return ilm_fail(err, "--parallel %d: expected 1..256", o->n_parallel);
    if (!o->engine.model) return ilm_fail(err, "no model given (-m MODEL.gguf)");
    ilm_server S0 = {0}, *S = &S0;
    S->opt = *o;
    S->wake_fd = -1;
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->cv, NULL);
    S->created = (long long)time(NULL);
    const char *base = strrchr(o->engine.model, '/');
    S->model_name = o->alias ? o->alias : base ? base + 1 : o->engine.model;
    int np = o->n_parallel;
    S->running = calloc((size_t)np, sizeof *S->running);
    S->slot_cached = calloc((size_t)np, sizeof *S->slot_cached);
    S->c.drafted = calloc((size_t)np, sizeof(long));
    S->c.accepted = calloc((size_t)np, sizeof(long));
    S->c.slot_requests = calloc((size_t)np, sizeof(long));
    S->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!S->running || !S->slot_cached || !S->c.drafted || !S->c.accepted || !S->c.slot_requests || S->wake_fd < 0) {
        server_free(S);
        return ilm_fail(err, "out of memory");
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int port = 0;
    int lfd = sig_fd < 0 ? -1 : listen_on(o->host, o->port, &port, err);
    if (sig_fd < 0 || lfd < 0) {
        if (sig_fd < 0) ilm_fail(err, "signalfd: %s", strerror(errno));
        else close(sig_fd);
        server_free(S);
        return -1;
    }
    fprintf(stderr, "ironlm: listening on http://%s%s%s:%d (loading %s)\n", strchr(o->host, ':') ? "[" : "", o->host,
            strchr(o->host, ':') ? "]" : "", port, o->engine.model);
    pthread_t worker;
    if (pthread_create(&worker, NULL, ilm_serve_worker, S)) {
        close(lfd);
        close(sig_fd);
        server_free(S);
        return ilm_fail(err, "cannot start the generation thread");
    }
    ilm_http_limits lim = ilm_http_default_limits();
    lim.max_body = o->max_body;
    const size_t in_cap = lim.max_header_bytes + lim.max_body + 4096;
    ilm_conn **conns = calloc((size_t)o->max_conn, sizeof *conns);
    struct pollfd *pfd = calloc((size_t)o->max_conn + 3, sizeof *pfd);
    int n_conns = 0, rc = 0;
    bool stopping = false, announced = false;
    if (!conns || !pfd) {
        ilm_fail(err, "out of memory");
        rc = -1;
        begin_stop(S);
        stopping = true;
    }
    for (;;) {
        pthread_mutex_lock(&S->mu);
        bool ready = S->ready, failed = S->load_failed, busy = S->busy || S->queue_len;
        pthread_mutex_unlock(&S->mu);
        if (failed) {
            ilm_fail(err, "%s", S->load_error);
            rc = -1;
            break;
        }
        if (ready && !announced) {
            announced = true;
            if (o->verbose) fprintf(stderr, "ironlm: ready: model \"%s\", %d slot%s\n", S->model_name, np, np == 1 ? "" : "s");
        }
        if (stopping && !busy) {
            bool pending = false;
            for (int i = 0; i < n_conns; i++) pending |= conns[i]->r != NULL || conns[i]->out.len > 0;
            if (!pending) break;
        }
        int np_fd = 0;
        pfd[np_fd++] = (struct pollfd){sig_fd, POLLIN, 0};
        pfd[np_fd++] = (struct pollfd){S->wake_fd, POLLIN, 0};
        pfd[np_fd++] = (struct pollfd){stopping ? -1 : lfd, POLLIN, 0};
        for (int i = 0; i < n_conns; i++)
            pfd[np_fd++] = (struct pollfd){conns[i]->fd, (short)(POLLIN | (conns[i]->out.len ? POLLOUT : 0)), 0};
        int pr = poll(pfd, (nfds_t)np_fd, 500);
        if (pr < 0 && errno != EINTR) {
            ilm_fail(err, "poll: %s", strerror(errno));
            rc = -1;
            break;
        }
        double now = ilm_now();
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (!stopping && o->verbose) fprintf(stderr, "ironlm: signal %u: finishing running requests, then exiting\n", si.ssi_signo);
                stopping = true;
            }
            if (stopping) begin_stop(S);
        }
        if (pfd[1].revents & POLLIN) {
            uint64_t v;
            ssize_t rd = read(S->wake_fd, &v, sizeof v);
            (void)rd;
        }
        // new output of running generations
        for (int i = 0; i < n_conns; i++)
            if (conns[i]->r) {
                ilm_serve_pump(S, conns[i]);
                if (!conns[i]->r) conn_parse(S, conns[i], &lim);  // pipelined requests waiting behind it
            }
        // connections: read, parse, write (indexes of pfd from 3 match conns at poll time)
        int polled = np_fd - 3;
        for (int i = 0; i < polled && i < n_conns; i++) {
            ilm_conn *c = conns[i];
            short ev = pfd[i + 3].revents;
            bool dead = false;
            if (ev & (POLLIN | POLLHUP | POLLERR)) {
                if (conn_read(c, in_cap) < 0) dead = true;
                else conn_parse(S, c, &lim);
            }
            if (!dead && conn_flush(c) < 0) dead = true;
            if (!dead && c->out.len > OUT_MAX) dead = true;
            if (!dead && c->t_first && now - c->t_first > o->timeout_s && !c->r) {
                ilm_serve_respond_error(S, c, 408, "", "the request did not arrive within %d s", o->timeout_s);
                c->closing = true;
                conn_flush(c);
                dead = true;
            }
            // closing: once the answer is out (unparsed input, e.g. the rest of a refused request, is dropped)
            if (!dead && !c->r && !c->out.len && (c->closing || (!c->in.len && now - c->t_last > o->timeout_s))) dead = true;
            if (dead) {
                conn_free(S, c);
                conns[i] = conns[--n_conns];
                pfd[i + 3] = pfd[polled + 2];  // keep pfd aligned with conns for this round
                polled--;
                i--;
            }
        }
        if (!stopping && (pfd[2].revents & POLLIN)) {
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) break;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                ilm_conn *c = calloc(1, sizeof *c);
                if (!c || n_conns >= o->max_conn) {
                    reject_busy(S, fd);
                    free(c);
                    continue;
                }
                c->fd = fd;
                c->t_last = now;
                c->keep_alive = true;
                conns[n_conns++] = c;
            }
        }
    }
    if (!stopping) begin_stop(S);
    pthread_join(worker, NULL);
    for (int i = 0; i < n_conns; i++) conn_free(S, conns[i]);
    free(conns);
    free(pfd);
    close(lfd);
    close(sig_fd);
    server_free(S);
    if (!rc && o->verbose) fprintf(stderr, "ironlm: stopped\n");
    return rc;
}
