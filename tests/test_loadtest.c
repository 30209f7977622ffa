// test_loadtest.c — `ironlm loadtest`: option parsing, the percentile helper, the cancel pick,
// and whole levels run against a fake OpenAI streaming server thread (canned SSE chunks with
// content deltas, a final chunk with timings, a usage chunk, then [DONE]).
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "format/json.h"
#include "harness.h"
#include "serve/loadtest.h"

// --- the fake server ----------------------------------------------------------------------
// Per request: prompt containing "FAIL" -> 500 with a JSON error; "GARBLE" -> a stream with an
// event that is not JSON; otherwise max_tokens content chunks (chat: after a role-only delta),
// 2 ms apart, a final chunk with finish_reason and timings {draft_n 4, draft_n_accepted 3}, a
// usage chunk (choices []) and data: [DONE]. Events are split across HTTP chunks on purpose.

#define FAKE_MAX_CONN 64

typedef struct {
    int lfd, port;
    atomic_int stop;
    pthread_t listener;
    pthread_mutex_t mu;
    pthread_t conns[FAKE_MAX_CONN];
    int n_conns;
    atomic_int requests, finished, aborted, bad_requests, connections;
} fake;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int send_str(int fd, const char *s) { return send(fd, s, strlen(s), MSG_NOSIGNAL) < 0 ? -1 : 0; }

// Sends s as one HTTP chunk, in one write (the socket has TCP_NODELAY, as a real server's).
static int send_chunk(int fd, const char *s) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%zx\r\n%s\r\n", strlen(s), s);
    return send_str(fd, buf);
}

// Reads one request; returns its length (header + body) or -1 when the client went away.
static int read_req(fake *f, int fd, char *buf, size_t cap, size_t *hlen) {
    size_t len = 0;
    for (;;) {
        buf[len] = 0;
        char *e = strstr(buf, "\r\n\r\n");
        if (e) {
            const char *cl = strstr(buf, "Content-Length: ");
            size_t need = (size_t)(e - buf) + 4 + (cl && cl < e ? (size_t)atol(cl + 16) : 0);
            *hlen = (size_t)(e - buf) + 4;
            if (len >= need) return (int)need;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 50);
        if (atomic_load(&f->stop)) return -1;
        if (r <= 0) continue;
        if (len + 1 >= cap) return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) return -1;
        len += (size_t)n;
    }
}

typedef struct {
    fake *f;
    int fd;
} conn_arg;

static void serve_stream(fake *f, int fd, bool chat, int max_tokens, bool garble) {
    if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"))
        goto aborted;
    char ev[512];
    if (chat && send_chunk(fd, "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n"))
        goto aborted;
    if (garble) {
        send_chunk(fd, "data: {not json\n\n");
        send_str(fd, "0\r\n\r\n");
        return;
    }
    for (int i = 0; i < max_tokens; i++) {
        sleep_ms(2);
        if (chat)
            snprintf(ev, sizeof ev,
                     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i);
        else
            snprintf(ev, sizeof ev, "data: {\"choices\":[{\"index\":0,\"text\":\"tok%d \",\"finish_reason\":null}]}\n\n", i);
        // split the event in two HTTP chunks
        size_t h = strlen(ev) / 2;
        char a[512];
        memcpy(a, ev, h);
        a[h] = 0;
        if (send_chunk(fd, a) || send_chunk(fd, ev + h)) goto aborted;
    }
    snprintf(ev, sizeof ev,
             "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],"
             "\"timings\":{\"prompt_n\":5,\"prompt_ms\":1.5,\"predicted_n\":%d,\"predicted_ms\":10,"
             "\"predicted_per_second\":100,\"draft_n\":4,\"draft_n_accepted\":3}}\r\n\r\n",
             max_tokens);
    if (send_chunk(fd, ev)) goto aborted;
    snprintf(ev, sizeof ev,
             "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n"
             "data: [DONE]\n\n",
             max_tokens, max_tokens + 5);
    if (send_chunk(fd, ev) || send_str(fd, "0\r\n\r\n")) goto aborted;
    atomic_fetch_add(&f->finished, 1);
    return;
aborted:
    atomic_fetch_add(&f->aborted, 1);
}

static void *conn_main(void *arg) {
    conn_arg ca = *(conn_arg *)arg;
    free(arg);
    fake *f = ca.f;
    static const size_t cap = 65536;
    char *buf = malloc(cap);
    size_t hlen;
    int n;
    while (buf && (n = read_req(f, ca.fd, buf, cap, &hlen)) > 0) {
        atomic_fetch_add(&f->requests, 1);
        bool chat = strncmp(buf, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0;
        bool compl = strncmp(buf, "POST /v1/completions HTTP/1.1\r\n", 31) == 0;
        ilm_err err;
        ilm_json *j = ilm_json_parse(buf + hlen, (size_t)n - hlen, &err);
        const ilm_json *st = ilm_json_get(j, "stream"), *mt = ilm_json_get(j, "max_tokens");
        const ilm_json *iu = ilm_json_get(ilm_json_get(j, "stream_options"), "include_usage");
        const ilm_json *pr = chat ? ilm_json_get(ilm_json_at(ilm_json_get(j, "messages"), 0), "content")
                                  : ilm_json_get(j, "prompt");
        if (!(chat || compl) || !j || !st || st->num != 1 || !iu || iu->num != 1 || !mt || !pr ||
            pr->type != JSON_STR || !strstr(buf, "Authorization: Bearer sekret\r\n")) {
            atomic_fetch_add(&f->bad_requests, 1);
            send_str(ca.fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad");
        } else if (strstr(pr->str, "FAIL")) {
            send_str(ca.fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                            "Content-Length: 31\r\n\r\n{\"error\":{\"message\":\"boom!!\"}}\n");
        } else {
            serve_stream(f, ca.fd, chat, (int)mt->num, strstr(pr->str, "GARBLE") != NULL);
        }
        ilm_json_free(j);
    }
    free(buf);
    close(ca.fd);
    return NULL;
}

static void *listener_main(void *arg) {
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_fetch_add(&f->connections, 1);
        conn_arg *ca = malloc(sizeof *ca);
        pthread_mutex_lock(&f->mu);
        if (!ca || f->n_conns == FAKE_MAX_CONN) {
            free(ca);
            close(fd);
        } else {
            *ca = (conn_arg){f, fd};
            if (pthread_create(&f->conns[f->n_conns], NULL, conn_main, ca)) {
                free(ca);
                close(fd);
            } else {
                f->n_conns++;
            }
        }
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

static int fake_start(fake *f) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) || listen(f->lfd, 64) ||
        getsockname(f->lfd, (struct sockaddr *)&a, &al))
        return -1;
    f->port = ntohs(a.sin_port);
    return pthread_create(&f->listener, NULL, listener_main, f) ? -1 : 0;
}

static void fake_stop(fake *f) {
    atomic_store(&f->stop, 1);
    pthread_join(f->listener, NULL);
    for (int i = 0; i < f->n_conns; i++) pthread_join(f->conns[i], NULL);
    close(f->lfd);
    pthread_mutex_destroy(&f->mu);
}

// --- helpers ------------------------------------------------------------------------------

// Parses a NULL-terminated argument list (argv[0] = "loadtest").
static int parse(ilm_loadtest_opts *o, ilm_err *err, const char **args) {
    int argc = 0;
    char *argv[40];
    argv[argc++] = (char *)"loadtest";
    while (*args && argc < 40) argv[argc++] = (char *)*args++;
    return ilm_loadtest_parse_args(argc, argv, o, err);
}

static int expect_error(const char **args, const char *want) {
    ilm_loadtest_opts o;
    ilm_err err = {{0}};
    int rc = parse(&o, &err, args);
    CHECK_MSG(rc == -1, "expected an error mentioning '%s'", want);
    CHECK_MSG(strstr(err.msg, want) != NULL, "error '%s' does not mention '%s'", err.msg, want);
    return rc;
}

// --- tests --------------------------------------------------------------------------------

TEST(loadtest_options) {
    ilm_loadtest_opts o;
    ilm_err err;
    CHECK_EQ(parse(&o, &err, (const char *[]){"--url", "http://127.0.0.1:8080/", NULL}), 0);
    CHECK_STR(o.host, "127.0.0.1");
    CHECK_EQ(o.port, 8080);
    CHECK_STR(o.base, "");
    CHECK_EQ(o.n_levels, 1);
    CHECK_EQ(o.levels[0], 1);
    CHECK_EQ(o.requests, 16);
    CHECK_EQ(o.max_tokens, 64);
    CHECK(o.chat);
    CHECK(o.temperature == 0);
    CHECK(!o.json);
    CHECK_EQ(parse(&o, &err,
                   (const char *[]){"--url", "http://h:1/base", "--concurrency", "1,2,4,8", "--requests", "40",
                                    "--max-tokens", "7", "--endpoint", "completions", "--cancel-frac", "0.25",
                                    "--temperature", "0.7", "--seed", "99", "--timeout", "2.5", "--api-key", "k",
                                    "--prompt-file", "p.txt", "--json", NULL}),
             0);
    CHECK_STR(o.base, "/base");
    CHECK_EQ(o.n_levels, 4);
    CHECK_EQ(o.levels[3], 8);
    CHECK_EQ(o.requests, 40);
    CHECK_EQ(o.max_tokens, 7);
    CHECK(!o.chat);
    CHECK_NEAR(o.cancel_frac, 0.25, 0);
    CHECK_NEAR(o.temperature, 0.7, 0);
    CHECK_EQ(o.seed, 99);
    CHECK_NEAR(o.timeout_s, 2.5, 0);
    CHECK_STR(o.api_key, "k");
    CHECK_STR(o.prompt_file, "p.txt");
    CHECK(o.json);
    CHECK_EQ(parse(&o, &err, (const char *[]){"--help", NULL}), 0);
    CHECK(o.help);

    expect_error((const char *[]){NULL}, "--url");
    expect_error((const char *[]){"--url", "https://h:1", NULL}, "https");
    expect_error((const char *[]){"--url", "http://h:1", "--concurrency", "0", NULL}, "--concurrency");
    expect_error((const char *[]){"--url", "http://h:1", "--concurrency", "1,x", NULL}, "--concurrency");
    expect_error((const char *[]){"--url", "http://h:1", "--requests", "-3", NULL}, "--requests");
    expect_error((const char *[]){"--url", "http://h:1", "--requests", "5x", NULL}, "'5x'");
    expect_error((const char *[]){"--url", "http://h:1", "--max-tokens", "0", NULL}, "--max-tokens");
    expect_error((const char *[]){"--url", "http://h:1", "--cancel-frac", "1.5", NULL}, "--cancel-frac");
    expect_error((const char *[]){"--url", "http://h:1", "--temperature", "nan", NULL}, "--temperature");
    expect_error((const char *[]){"--url", "http://h:1", "--endpoint", "embeddings", NULL}, "--endpoint");
    expect_error((const char *[]){"--url", "http://h:1", "--seed", "-1", NULL}, "--seed");
    expect_error((const char *[]){"--url", "http://h:1", "--timeout", "0", NULL}, "--timeout");
    expect_error((const char *[]){"--url", "http://h:1", "--bogus", NULL}, "--bogus");
    expect_error((const char *[]){"--url", "http://h:1", "--requests", NULL}, "needs a value");
}

TEST(loadtest_percentile) {
    double v[] = {50, 15, 40, 20, 35};  // nearest rank, the textbook example
    ilm_sort_doubles(v, 5);
    CHECK(v[0] == 15 && v[4] == 50);
    CHECK_NEAR(ilm_percentile_sorted(v, 5, 0), 15, 0);
    CHECK_NEAR(ilm_percentile_sorted(v, 5, 5), 15, 0);
    CHECK_NEAR(ilm_percentile_sorted(v, 5, 30), 20, 0);
    CHECK_NEAR(ilm_percentile_sorted(v, 5, 40), 20, 0);
    CHECK_NEAR(ilm_percentile_sorted(v, 5, 50), 35, 0);
    CHECK_NEAR(ilm_percentile_sorted(v, 5, 99), 50, 0);
    CHECK_NEAR(ilm_percentile_sorted(v, 5, 100), 50, 0);
    double w[100];
    for (int i = 0; i < 100; i++) w[i] = 100 - i;
    ilm_sort_doubles(w, 100);
    CHECK_NEAR(ilm_percentile_sorted(w, 100, 50), 50, 0);
    CHECK_NEAR(ilm_percentile_sorted(w, 100, 90), 90, 0);
    CHECK_NEAR(ilm_percentile_sorted(w, 100, 99), 99, 0);
    double one = 7;
    CHECK_NEAR(ilm_percentile_sorted(&one, 1, 99), 7, 0);
    CHECK(isnan(ilm_percentile_sorted(NULL, 0, 50)));
}

TEST(loadtest_cancel_pick) {
    int n = 0, n12 = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(!ilm_loadtest_cancels(5, i, 0));
        CHECK(ilm_loadtest_cancels(5, i, 1));
        n += ilm_loadtest_cancels(5, i, 0.3);
        n12 += i < 12 && ilm_loadtest_cancels(1, i, 0.25);
    }
    CHECK_MSG(n >= 299 && n <= 301, "%d of 1000 picked at 0.3", n);
    CHECK_EQ(n12, 3);  // a quarter of 12, whatever the seed
    int patterns = 0;  // the seed moves the picks
    for (uint64_t seed = 0; seed < 10; seed++) patterns += ilm_loadtest_cancels(seed, 0, 0.25) != ilm_loadtest_cancels(0, 0, 0.25);
    CHECK(patterns > 0);
}

TEST(loadtest_prompts_file) {
    const char *path = t_tmp("loadtest_prompts.txt");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("first prompt\r\n\nsecond \"quoted\" prompt\nthird\n", f);
    fclose(f);
    ilm_loadtest_opts o;
    ilm_err err;
    CHECK_EQ(parse(&o, &err, (const char *[]){"--url", "http://h:1", "--prompt-file", path, NULL}), 0);
    char **p, *store;
    int n;
    CHECK_EQ(ilm_loadtest_prompts(&o, &p, &n, &store, &err), 0);
    CHECK_EQ(n, 3);
    if (n == 3) {
        CHECK_STR(p[0], "first prompt");
        CHECK_STR(p[1], "second \"quoted\" prompt");
        CHECK_STR(p[2], "third");
    }
    free(p);
    free(store);
    CHECK_EQ(parse(&o, &err, (const char *[]){"--url", "http://h:1", NULL}), 0);
    CHECK_EQ(ilm_loadtest_prompts(&o, &p, &n, &store, &err), 0);
    CHECK(n >= 6);
    free(p);
    free(store);
    CHECK_EQ(parse(&o, &err, (const char *[]){"--url", "http://h:1", "--prompt-file", "/nonexistent/x", NULL}), 0);
    CHECK_EQ(ilm_loadtest_prompts(&o, &p, &n, &store, &err), -1);
    CHECK(strstr(err.msg, "--prompt-file") != NULL);
}

TEST(loadtest_run_against_fake_server) {
    fake f;
    CHECK_EQ(fake_start(&f), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    ilm_loadtest_opts o;
    ilm_err err;
    CHECK_EQ(parse(&o, &err,
                   (const char *[]){"--url", url, "--concurrency", "1,3", "--requests", "9", "--max-tokens", "6",
                                    "--api-key", "sekret", "--timeout", "5", NULL}),
             0);
    char **prompts, *store;
    int n_prompts;
    CHECK_EQ(ilm_loadtest_prompts(&o, &prompts, &n_prompts, &store, &err), 0);
    for (int li = 0; li < o.n_levels; li++) {
        ilm_loadtest_level l;
        CHECK_EQ(ilm_loadtest_run_level(&o, prompts, n_prompts, o.levels[li], &l, &err), 0);
        CHECK_EQ(l.concurrency, o.levels[li]);
        CHECK_EQ(l.ok, 9);
        CHECK_EQ(l.errors, 0);
        CHECK_EQ(l.cancelled, 0);
        CHECK_MSG(l.n_errs == 0, "%s", l.errs[0]);
        CHECK_EQ(l.tokens, 9 * 6);
        CHECK(l.has_draft);
        CHECK_EQ(l.draft_n, 9 * 4);
        CHECK_EQ(l.draft_accepted, 9 * 3);
        CHECK(l.wall_s > 0);
        CHECK_NEAR(l.agg_tps, 54 / l.wall_s, 1e-9);
        CHECK_MSG(l.stream_tps > 0 && l.stream_tps < 1000, "stream_tps %g itl %g %g %g ttft %g", l.stream_tps, l.itl_ms[0], l.itl_ms[1], l.itl_ms[2], l.ttft_ms[0]);
        CHECK(l.ttft_ms[0] > 0 && l.ttft_ms[0] <= l.ttft_ms[1] && l.ttft_ms[1] <= l.ttft_ms[2]);
        CHECK(l.itl_ms[0] >= 1.5 && l.itl_ms[0] <= l.itl_ms[1] && l.itl_ms[1] <= l.itl_ms[2]);
        CHECK(l.e2e_ms[0] >= l.ttft_ms[0]);
    }
    free(prompts);
    free(store);
    fake_stop(&f);
    CHECK_EQ(atomic_load(&f.requests), 18);
    CHECK_EQ(atomic_load(&f.finished), 18);
    CHECK_EQ(atomic_load(&f.bad_requests), 0);
    // keep-alive: one connection per client thread (a thread that found no request left opens none)
    CHECK(atomic_load(&f.connections) >= 2 && atomic_load(&f.connections) <= 1 + 3);
}

TEST(loadtest_cancel_and_errors) {
    fake f;
    CHECK_EQ(fake_start(&f), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", f.port);
    ilm_loadtest_opts o;
    ilm_err err;
    // cancellation: completions endpoint, half the requests cancelled after a few tokens
    CHECK_EQ(parse(&o, &err,
                   (const char *[]){"--url", url, "--requests", "12", "--max-tokens", "20", "--api-key", "sekret",
                                    "--endpoint", "completions", "--cancel-frac", "0.5", "--seed", "7", NULL}),
             0);
    int want_cancel = 0;
    for (int i = 0; i < 12; i++) want_cancel += ilm_loadtest_cancels(7, i, 0.5);
    CHECK(want_cancel > 0 && want_cancel < 12);
    char **prompts, *store;
    int n_prompts;
    CHECK_EQ(ilm_loadtest_prompts(&o, &prompts, &n_prompts, &store, &err), 0);
    ilm_loadtest_level l;
    CHECK_EQ(ilm_loadtest_run_level(&o, prompts, n_prompts, 2, &l, &err), 0);
    CHECK_EQ(l.cancelled, want_cancel);
    CHECK_EQ(l.ok, 12 - want_cancel);
    CHECK_EQ(l.errors, 0);
    CHECK_MSG(l.n_errs == 0, "%s", l.errs[0]);
    CHECK_EQ(l.tokens, (12 - want_cancel) * 20);
    CHECK_EQ(l.draft_n, (12 - want_cancel) * 4);
    free(prompts);
    free(store);

    // errors: a 500 and a malformed stream, each counted, each message kept once
    const char *path = t_tmp("loadtest_err_prompts.txt");
    FILE *pf = fopen(path, "w");
    CHECK(pf != NULL);
    if (pf) {
        fputs("hello\nplease FAIL\nGARBLE this\n", pf);
        fclose(pf);
    }
    CHECK_EQ(parse(&o, &err,
                   (const char *[]){"--url", url, "--requests", "6", "--max-tokens", "3", "--api-key", "sekret",
                                    "--prompt-file", path, "--concurrency", "2", NULL}),
             0);
    CHECK_EQ(ilm_loadtest_prompts(&o, &prompts, &n_prompts, &store, &err), 0);
    CHECK_EQ(ilm_loadtest_run_level(&o, prompts, n_prompts, 2, &l, &err), 0);
    CHECK_EQ(l.ok, 2);
    CHECK_EQ(l.errors, 4);
    CHECK_EQ(l.cancelled, 0);
    CHECK_EQ(l.tokens, 6);
    CHECK_EQ(l.n_errs, 2);
    bool saw500 = false, sawbad = false;
    for (int i = 0; i < l.n_errs; i++) {
        saw500 |= strstr(l.errs[i], "HTTP 500") != NULL && strstr(l.errs[i], "boom!!") != NULL;
        sawbad |= strstr(l.errs[i], "malformed stream") != NULL;
    }
    CHECK_MSG(saw500 && sawbad, "errors: '%s' / '%s'", l.errs[0], l.errs[1]);
    free(prompts);
    free(store);

    // no API key: the fake server answers 400, counted as errors
    CHECK_EQ(parse(&o, &err, (const char *[]){"--url", url, "--requests", "2", NULL}), 0);
    CHECK_EQ(ilm_loadtest_prompts(&o, &prompts, &n_prompts, &store, &err), 0);
    CHECK_EQ(ilm_loadtest_run_level(&o, prompts, n_prompts, 1, &l, &err), 0);
    CHECK_EQ(l.errors, 2);
    CHECK(l.n_errs == 1 && strstr(l.errs[0], "HTTP 400: bad") != NULL);
    free(prompts);
    free(store);

    fake_stop(&f);
    CHECK_EQ(atomic_load(&f.aborted), want_cancel);  // the server saw each cancelled client go away
}
