// serve_util.c — see serve_util.h.
#include "serve_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "serve/http_client.h"

void srv_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool srv_supported(void) { return strchr(t_bin(), ' ') == NULL; }

char *srv_log(const srv *s) {
    char *l = t_read(s->log, NULL);
    return l ? l : calloc(1, 1);
}

static void print_log_tail(const srv *s) {
    char *l = srv_log(s);
    size_t n = strlen(l);
    printf("  --- %s (last 2000 bytes) ---\n%s\n  ---\n", s->log, l + (n > 2000 ? n - 2000 : 0));
    fflush(stdout);
    free(l);
}

// Waits for the child with a deadline; returns the exit status as srv_stop does, or -2 on timeout.
static int wait_exit(pid_t pid, double timeout_s) {
    double end = now_s() + timeout_s;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (w < 0 && errno != EINTR) return -1;
        if (now_s() > end) return -2;
        srv_sleep_ms(10);
    }
}

int srv_start(srv *s, const char *name, const char *const *args) {
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "%s/%s.log", t_tmpdir(), name);
    const char *argv[48];
    int n = 0;
    const char *base[] = {t_bin(), "serve", "-m", SRV_MODEL, "--port", "0"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) argv[n++] = base[i];
    for (int i = 0; args && args[i] && n < 47; i++) argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        printf("  fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDWR);
        if (fd >= 0) dup2(fd, 2);
        if (nul >= 0) {
            dup2(nul, 1);
            dup2(nul, 0);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    double end = now_s() + 60;
    for (;;) {
        char *l = srv_log(s);
        const char *p = strstr(l, "listening on http://127.0.0.1:");
        if (p && !s->port) s->port = atoi(p + strlen("listening on http://127.0.0.1:"));
        bool ready = strstr(l, "ironlm: ready:") != NULL;
        free(l);
        if (s->port > 0 && ready) return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            printf("  %s: the server exited before it was ready\n", name);
            s->pid = 0;
            print_log_tail(s);
            return -1;
        }
        if (now_s() > end) {
            printf("  %s: the server was not ready within 60 s\n", name);
            srv_stop(s);
            return -1;
        }
        srv_sleep_ms(20);
    }
}

int srv_stop(srv *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int rc = wait_exit(s->pid, 60);
    if (rc == -2) {
        printf("  the server (pid %d) did not exit within 60 s of SIGTERM; killing it\n", (int)s->pid);
        kill(s->pid, SIGKILL);
        rc = wait_exit(s->pid, 10);
        if (rc >= 0) rc = 128 + SIGKILL;
    }
    s->pid = 0;
    if (rc != 0) {
        printf("  server exit status %d\n", rc);
        print_log_tail(s);
    }
    return rc;
}

// --- requests through the client -------------------------------------------------------------

int srv_req(const srv *s, const char *method, const char *path, const char *headers, const char *body, srv_resp *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    ilm_err err;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s->port, 60000, &err);
    if (!c) {
        printf("  connect: %s\n", err.msg);
        return -1;
    }
    int rc = ilm_http_request(c, method, path, headers, body, body ? strlen(body) : 0, &r->status, NULL, NULL, &r->body,
                              &err);
    ilm_http_close(c);
    if (rc) {
        printf("  %s %s: %s\n", method, path, err.msg);
        return -1;
    }
    if (r->body.len && (r->body.p[0] == '{' || r->body.p[0] == '[')) r->json = ilm_json_parse(r->body.p, r->body.len, &err);
    return 0;
}

void srv_resp_free(srv_resp *r) {
    ilm_buf_free(&r->body);
    ilm_json_free(r->json);
    r->json = NULL;
}

int srv_health(const srv *s) {
    srv_resp r;
    int st = srv_req(s, "GET", "/health", NULL, NULL, &r) ? -1 : r.status;
    srv_resp_free(&r);
    return st;
}

// --- streams ------------------------------------------------------------------------------------

static int on_event(void *ctx, const char *payload, size_t n) {
    srv_stream *st = ctx;
    st->n_events++;
    if (!strcmp(payload, "[DONE]")) {
        st->done = true;
        return 0;
    }
    if (st->done) st->bad = true;  // nothing after [DONE]
    ilm_err err;
    ilm_json *j = ilm_json_parse(payload, n, &err);
    if (!j) {
        st->bad = true;
        printf("  stream: event is not JSON: %.200s\n", payload);
        return 0;
    }
    int cancel = 0;
    const char *emsg = sj_str(j, "error.message");
    if (emsg) {
        snprintf(st->error, sizeof st->error, "%s", emsg);
        goto out;
    }
    const char *obj = sj_str(j, "object");
    const char *want = st->kind == 0 ? "chat.completion.chunk" : "text_completion";
    if (!obj || strcmp(obj, want)) {
        st->bad = true;
        printf("  stream: object %s, expected %s\n", obj ? obj : "(none)", want);
    }
    const char *id = sj_str(j, "id");
    if (!id) st->bad = true;
    else if (!st->id[0]) snprintf(st->id, sizeof st->id, "%s", id);
    else if (strcmp(st->id, id)) st->ids_same = false;
    const ilm_json *choices = sj_path(j, "choices");
    if (!choices || choices->type != JSON_ARR) st->bad = true;
    const ilm_json *usage = sj_path(j, "usage");
    if (usage && choices && choices->len == 0) {  // the include_usage chunk
        st->completion_tokens = (int)sj_num(usage, "completion_tokens", -1);
        st->prompt_tokens = (int)sj_num(usage, "prompt_tokens", -1);
        st->cached_tokens = (int)sj_num(usage, "prompt_tokens_details.cached_tokens", -1);
        goto out;
    }
    const ilm_json *c0 = sj_path(j, "choices.0");
    if (!c0) goto out;
    const char *piece = st->kind == 0 ? sj_str(c0, "delta.content") : sj_str(c0, "text");
    if (st->kind == 0 && st->n_events == 1) st->role_first = sj_str(c0, "delta.role") && !strcmp(sj_str(c0, "delta.role"), "assistant");
    const ilm_json *tcs = sj_path(c0, "delta.tool_calls");
    for (size_t i = 0; tcs && tcs->type == JSON_ARR && i < tcs->len; i++) {
        const ilm_json *tc = &tcs->items[i];
        int index = (int)sj_num(tc, "index", 0);
        if (index + 1 > st->n_tool_calls) st->n_tool_calls = index + 1;
        if (index != 0) continue;
        const char *nm = sj_str(tc, "function.name"), *args = sj_str(tc, "function.arguments");
        if (nm) snprintf(st->tool_name, sizeof st->tool_name, "%s", nm);
        if (args) ilm_buf_puts(&st->tool_args, args);
    }
    const char *fin = sj_str(c0, "finish_reason");
    if (fin) {
        snprintf(st->finish, sizeof st->finish, "%s", fin);
        st->draft_n = (long)sj_num(j, "timings.draft_n", -1);
    }
    if (piece && *piece) {
        ilm_buf_puts(&st->text, piece);
        ilm_buf_add(&st->pieces, piece, strlen(piece) + 1);
        st->n_pieces++;
        if (st->on_piece && st->on_piece(st->ctx, st->n_pieces)) cancel = 1;
        if (st->cancel_after && st->n_pieces >= st->cancel_after) cancel = 1;
    }
out:
    ilm_json_free(j);
    if (cancel) st->cancelled = true;
    return cancel;
}

static int on_body(void *ctx, const char *data, size_t n) {
    srv_stream *st = ctx;
    return ilm_sse_feed(st->sse, data, n, on_event, st);
}

int srv_stream_req(const srv *s, const char *path, const char *headers, const char *body, srv_stream *st) {
    st->status = -1;
    st->draft_n = -1;
    st->completion_tokens = st->prompt_tokens = st->cached_tokens = -1;
    st->ids_same = true;
    ilm_sse sse;
    ilm_sse_init(&sse);
    st->sse = &sse;
    ilm_err err;
    int rc = -1;
    ilm_http_client *c = ilm_http_connect("127.0.0.1", s->port, 60000, &err);
    if (c) rc = ilm_http_request(c, "POST", path, headers, body, strlen(body), &st->status, on_body, st, NULL, &err);
    if (rc < 0) printf("  stream %s: %s\n", path, err.msg);
    ilm_http_close(c);
    ilm_sse_free(&sse);
    st->sse = NULL;
    return rc < 0 ? -1 : 0;
}

void srv_stream_free(srv_stream *st) {
    ilm_buf_free(&st->tool_args);
    ilm_buf_free(&st->text);
    ilm_buf_free(&st->pieces);
}

// --- raw sockets -----------------------------------------------------------------------------

int srv_raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)port)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

int srv_raw_send(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int srv_raw_read(int fd, ilm_buf *out, int timeout_ms) {
    double end = now_s() + timeout_ms / 1e3;
    for (;;) {
        if (out->p) {
            const char *e = strstr(out->p, "\r\n\r\n");
            if (e) {
                const char *cl = strcasestr(out->p, "\r\nContent-Length:");
                size_t need = (size_t)(e - out->p) + 4 + (cl && cl < e ? (size_t)atol(cl + 17) : 0);
                if (out->len >= need) return 0;
            }
        }
        int left = (int)((end - now_s()) * 1e3);
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0) continue;
        char buf[4096];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 1;
        ilm_buf_add(out, buf, (size_t)r);
    }
}

int srv_raw_status(const char *resp) {
    if (!resp || strncmp(resp, "HTTP/1.1 ", 9)) return -1;
    return atoi(resp + 9);
}

// --- JSON ----------------------------------------------------------------------------------------

const ilm_json *sj_path(const ilm_json *j, const char *path) {
    char key[128];
    while (j && *path) {
        size_t k = strcspn(path, ".");
        if (k >= sizeof key) return NULL;
        memcpy(key, path, k);
        key[k] = 0;
        path += k + (path[k] == '.');
        if (j->type == JSON_ARR) {
            char *end;
            long i = strtol(key, &end, 10);
            j = *end || i < 0 ? NULL : ilm_json_at(j, (size_t)i);
        } else {
            j = ilm_json_get(j, key);
        }
    }
    return j;
}

const char *sj_str(const ilm_json *j, const char *path) {
    const ilm_json *v = sj_path(j, path);
    return v && v->type == JSON_STR ? v->str : NULL;
}

double sj_num(const ilm_json *j, const char *path, double dflt) {
    const ilm_json *v = sj_path(j, path);
    return v && (v->type == JSON_NUM || v->type == JSON_BOOL) ? v->num : dflt;
}

void sj_buf_str(ilm_buf *b, const char *s) { ilm_json_buf_str(b, s, strlen(s)); }

// --- references ----------------------------------------------------------------------------------

char *srv_run_ref(const char *ids, int n, const char *extra) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s run -m %s --tokens %s -n %d --temp 0 --ignore-eos %s 2>/dev/null", t_bin(), SRV_MODEL,
             ids, n, extra ? extra : "");
    char *out = NULL;
    int rc = t_run(cmd, &out);
    if (rc || !out) {
        printf("  reference failed (%d): %s\n", rc, cmd);
        free(out);
        return NULL;
    }
    size_t len = strlen(out);
    if (len && out[len - 1] == '\n') out[len - 1] = 0;
    return out;
}
