// loadtest.c — `ironlm loadtest` logic: options, prompts, client threads streaming requests,
// per-request measurements and per-level statistics. See loadtest.h.
#include "serve/loadtest.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "format/json.h"
#include "serve/http_client.h"

const char ilm_loadtest_usage[] =
    "usage: ironlm loadtest --url http://HOST:PORT [options]\n"
    "  --url URL            server base URL (http only); requests go to URL/v1/...\n"
    "  --concurrency LIST   client counts, one table row each (default 1), e.g. 1,2,4,8\n"
    "  --requests N         requests per level (default 16)\n"
    "  --prompt-file F      one prompt per line (\\n, \\t, \\\\ escapes), used round-robin\n"
    "                       (default: 8 built-in prompts)\n"
    "  --max-tokens M       max_tokens per request (default 64)\n"
    "  --endpoint chat|completions   /v1/chat/completions (default) or /v1/completions\n"
    "  --model NAME         the request's \"model\" field (default: none)\n"
    "  --api-key K          sends Authorization: Bearer K\n"
    "  --temperature T      default 0\n"
    "  --seed S             request seed, and which requests --cancel-frac picks (default 1)\n"
    "  --cancel-frac F      fraction of requests the client cancels after a few tokens (default 0)\n"
    "  --timeout S          connect/read/write timeout in seconds (default 120)\n"
    "  --json               one JSON object per level instead of the table\n";

// --- options ------------------------------------------------------------------------------

static int parse_int(const char *opt, const char *v, long lo, long hi, int *out, ilm_err *err) {
    long x;
    if (ilm_parse_long(opt, v, lo, hi, &x, err)) return ilm_fail_prefix(err, "loadtest");
    *out = (int)x;
    return 0;
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out, ilm_err *err) {
    if (ilm_parse_double(opt, v, lo, hi, false, out, err)) return ilm_fail_prefix(err, "loadtest");
    return 0;
}

int ilm_loadtest_parse_args(int argc, char **argv, ilm_loadtest_opts *o, ilm_err *err) {
    memset(o, 0, sizeof *o);
    o->levels[0] = 1;
    o->n_levels = 1;
    o->requests = 16;
    o->max_tokens = 64;
    o->chat = true;
    o->seed = 1;
    o->timeout_s = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            o->help = true;
            return 0;
        }
        if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        static const char *const with_value[] = {"--url", "--concurrency", "--requests", "--prompt-file",
                                                 "--max-tokens", "--api-key", "--endpoint", "--cancel-frac",
                                                 "--temperature", "--seed", "--timeout", "--model"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
        if (!known) return ilm_fail(err, "loadtest: unknown option '%s' (see ironlm loadtest --help)", a);
        if (i + 1 >= argc) return ilm_fail(err, "loadtest: %s needs a value", a);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--url")) {
            o->url = v;
            rc = ilm_url_parse(v, o->host, sizeof o->host, &o->port, o->base, sizeof o->base, err);
            if (rc) ilm_fail_prefix(err, "loadtest: --url");
        } else if (!strcmp(a, "--concurrency")) {
            int32_t *lv = NULL;
            int n = 0;
            if (ilm_parse_int_list(v, &lv, &n, err) || n < 1 || n > ILM_LT_MAX_LEVELS) {
                free(lv);
                return ilm_fail(err, "loadtest: --concurrency: bad value '%s' (a list like 1,2,4,8; at most %d levels)",
                                v, ILM_LT_MAX_LEVELS);
            }
            for (int k = 0; k < n; k++) {
                if (lv[k] < 1 || lv[k] > 1024) {
                    free(lv);
                    return ilm_fail(err, "loadtest: --concurrency: bad value '%s' (each level in 1..1024)", v);
                }
                o->levels[k] = lv[k];
            }
            o->n_levels = n;
            free(lv);
        } else if (!strcmp(a, "--requests")) {
            rc = parse_int(a, v, 1, 10000000, &o->requests, err);
        } else if (!strcmp(a, "--prompt-file")) {
            o->prompt_file = v;
        } else if (!strcmp(a, "--max-tokens")) {
            rc = parse_int(a, v, 1, 10000000, &o->max_tokens, err);
        } else if (!strcmp(a, "--api-key")) {
            if (strpbrk(v, "\r\n")) return ilm_fail(err, "loadtest: --api-key: contains a line break");
            o->api_key = v;
        } else if (!strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "--endpoint")) {
            if (!strcmp(v, "chat")) o->chat = true;
            else if (!strcmp(v, "completions")) o->chat = false;
            else return ilm_fail(err, "loadtest: --endpoint: bad value '%s' (chat or completions)", v);
        } else if (!strcmp(a, "--cancel-frac")) {
            rc = parse_num(a, v, 0, 1, &o->cancel_frac, err);
        } else if (!strcmp(a, "--temperature")) {
            rc = parse_num(a, v, 0, 100, &o->temperature, err);
        } else if (!strcmp(a, "--timeout")) {
            rc = parse_num(a, v, 0.001, 86400, &o->timeout_s, err);
        } else if (!strcmp(a, "--seed")) {
            uint64_t s;
            if (ilm_parse_u64(a, v, &s, err)) return ilm_fail_prefix(err, "loadtest");
            o->seed = s;
        }
        if (rc) return -1;
    }
    if (!o->url) return ilm_fail(err, "loadtest: --url is required (e.g. --url http://127.0.0.1:8080)");
    return 0;
}

// --- prompts ------------------------------------------------------------------------------

static const char *const builtin_prompts[] = {
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain in three sentences why the sky is blue.",
    "List five prime numbers greater than 100 and say how you checked each one.",
    "Translate into German: The train to Munich leaves at half past seven from platform four.",
    "Summarize the plot of Romeo and Juliet for a ten-year-old, then give the moral of the story in one line.",
    "What does this Python function do, and what is its time complexity? Suggest one improvement.\n\n"
    "def dedupe(items):\n"
    "    out = []\n"
    "    for x in items:\n"
    "        if x not in out:\n"
    "            out.append(x)\n"
    "    return out\n\n"
    "def merge(a, b):\n"
    "    result = []\n"
    "    i = j = 0\n"
    "    while i < len(a) and j < len(b):\n"
    "        if a[i] <= b[j]:\n"
    "            result.append(a[i]); i += 1\n"
    "        else:\n"
    "            result.append(b[j]); j += 1\n"
    "    return result + a[i:] + b[j:]\n",
    "You are reviewing a design document for a small key-value store. The store keeps an append-only "
    "log on disk, an in-memory hash index from keys to log offsets, and compacts the log in the "
    "background when more than half of it is dead records. Writes are acknowledged after an fsync "
    "of the log every 10 ms (group commit). Reads go to the index and then one pread of the log. "
    "Identify the three most important failure modes of this design (crashes, disk full, concurrent "
    "compaction) and, for each one, say what the store should do and how you would test it.",
};

int ilm_loadtest_prompts(const ilm_loadtest_opts *o, char ***prompts, int *n, char **store, ilm_err *err) {
    *prompts = NULL;
    *n = 0;
    *store = NULL;
    if (!o->prompt_file) {
        int k = (int)(sizeof builtin_prompts / sizeof builtin_prompts[0]);
        char **p = ilm_calloc((size_t)k, sizeof *p, err);
        if (!p) return -1;
        for (int i = 0; i < k; i++) p[i] = (char *)builtin_prompts[i];
        *prompts = p;
        *n = k;
        return 0;
    }
    char *text;
    size_t size;
    if (ilm_read_file(o->prompt_file, &text, &size, err)) return ilm_fail_prefix(err, "loadtest: --prompt-file");
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    char **p = ilm_calloc(lines, sizeof *p, err);
    if (!p) {
        free(text);
        return -1;
    }
    int k = 0;
    for (char *s = text; s && *s;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = 0;
        size_t l = strlen(s);
        if (l && s[l - 1] == '\r') s[--l] = 0;
        // escapes, so a line can hold a multi-line prompt: \n newline, \t tab, \\ backslash
        size_t w = 0;
        for (size_t r = 0; r < l; r++) {
            if (s[r] == '\\' && r + 1 < l && (s[r + 1] == 'n' || s[r + 1] == 't' || s[r + 1] == '\\')) {
                r++;
                s[w++] = s[r] == 'n' ? '\n' : s[r] == 't' ? '\t' : '\\';
            } else {
                s[w++] = s[r];
            }
        }
        s[w] = 0;
        l = w;
        if (l) p[k++] = s;
        s = nl ? nl + 1 : NULL;
    }
    if (!k) {
        free(p);
        free(text);
        return ilm_fail(err, "loadtest: --prompt-file %s: no prompts (one per non-empty line)", o->prompt_file);
    }
    *prompts = p;
    *n = k;
    *store = text;
    return 0;
}

// --- statistics helpers -------------------------------------------------------------------

bool ilm_loadtest_cancels(uint64_t seed, int idx, double cancel_frac) {
    if (cancel_frac <= 0) return false;
    if (cancel_frac >= 1) return true;
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;  // splitmix64 of the seed: the phase u in [0, 1)
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    double u = (double)(z >> 11) * 0x1.0p-53;
    // request idx is picked when idx * F + u crosses an integer: every run of n consecutive
    // requests has floor or ceil of n * F picks, spread evenly
    return floor((idx + 1) * cancel_frac + u) > floor(idx * cancel_frac + u);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void ilm_sort_doubles(double *v, size_t n) {
    if (n > 1) qsort(v, n, sizeof *v, cmp_double);
}

double ilm_percentile_sorted(const double *v, size_t n, double p) {
    if (!n) return NAN;
    double r = ceil(p / 100.0 * (double)n);
    size_t rank = r < 1 ? 1 : r > (double)n ? n : (size_t)r;
    return v[rank - 1];
}

static void percentiles(double *v, size_t n, double out[3]) {
    ilm_sort_doubles(v, n);
    out[0] = ilm_percentile_sorted(v, n, 50);
    out[1] = ilm_percentile_sorted(v, n, 90);
    out[2] = ilm_percentile_sorted(v, n, 99);
}

// --- one request --------------------------------------------------------------------------

enum { REQ_OK, REQ_ERROR, REQ_CANCELLED };

typedef struct {
    int outcome;
    double t_start, t_first, t_last, t_end;
    int chunks;                        // content chunks
    int64_t usage_tokens;              // -1: no usage
    int64_t draft_n, draft_accepted;   // -1: no timings.draft_n
    double *itl;                       // ms, chunks - 1 entries
    int n_itl, cap_itl;
} req_rec;

typedef struct {
    const ilm_loadtest_opts *o;
    char *const *prompts;
    int n_prompts;
    atomic_int next;
    req_rec *recs;
    char path[600];
    char headers[1100];
    pthread_mutex_t mu;  // guards out->errs
    ilm_loadtest_level *out;
} shared;

typedef struct {
    req_rec *r;
    bool chat, cancel, done;
    int status;
    ilm_sse sse;
    ilm_buf errbody;  // the body of a non-200 response (first bytes)
    char fail[300];   // set: the stream is malformed or reported an error
} stream;

static void note_error(shared *sh, const char *msg) {
    pthread_mutex_lock(&sh->mu);
    ilm_loadtest_level *out = sh->out;
    bool seen = false;
    for (int i = 0; i < out->n_errs; i++) seen |= !strcmp(out->errs[i], msg);
    if (!seen && out->n_errs < ILM_LT_MAX_ERRS) snprintf(out->errs[out->n_errs++], sizeof out->errs[0], "%s", msg);
    pthread_mutex_unlock(&sh->mu);
}

static const char *json_str(const ilm_json *j) { return j && j->type == JSON_STR ? j->str : NULL; }

static int on_event(void *ctx, const char *payload, size_t n) {
    stream *s = ctx;
    req_rec *r = s->r;
    if (s->done) return 0;
    if (!strcmp(payload, "[DONE]")) {
        s->done = true;
        return 0;
    }
    ilm_err e;
    ilm_json *j = ilm_json_parse(payload, n, &e);
    if (!j || j->type != JSON_OBJ) {
        snprintf(s->fail, sizeof s->fail, "malformed stream event (%.150s): %.80s", j ? "not an object" : e.msg, payload);
        ilm_json_free(j);
        return 1;
    }
    const ilm_json *er = ilm_json_get(j, "error");
    if (er) {
        const char *m = json_str(ilm_json_get(er, "message"));
        snprintf(s->fail, sizeof s->fail, "server error in stream: %.200s", m ? m : json_str(er) ? er->str : "?");
        ilm_json_free(j);
        return 1;
    }
    const ilm_json *ch = ilm_json_at(ilm_json_get(j, "choices"), 0);
    const char *text = NULL;
    if (ch) {
        const ilm_json *d = ilm_json_get(ch, "delta");
        text = json_str(ilm_json_get(d, "content"));
        if (!text || !*text) text = json_str(ilm_json_get(d, "reasoning_content"));
        if (!text || !*text) text = json_str(ilm_json_get(ch, "text"));
    }
    int rc = 0;
    if (text && *text) {
        double now = ilm_now();
        if (!r->chunks) {
            r->t_first = now;
        } else {
            if (r->n_itl == r->cap_itl) {
                int cap = r->cap_itl ? 2 * r->cap_itl : 64;
                double *p = realloc(r->itl, (size_t)cap * sizeof *p);
                if (p) {
                    r->itl = p;
                    r->cap_itl = cap;
                }
            }
            if (r->n_itl < r->cap_itl) r->itl[r->n_itl++] = (now - r->t_last) * 1e3;
        }
        r->t_last = now;
        r->chunks++;
        if (s->cancel && r->chunks >= ILM_LT_CANCEL_AFTER) rc = 2;
    }
    const ilm_json *t = ilm_json_get(j, "timings");
    const ilm_json *dn = ilm_json_get(t, "draft_n"), *da = ilm_json_get(t, "draft_n_accepted");
    if (dn && dn->type == JSON_NUM) {
        r->draft_n = (int64_t)dn->num;
        r->draft_accepted = da && da->type == JSON_NUM ? (int64_t)da->num : 0;
    }
    const ilm_json *ct = ilm_json_get(ilm_json_get(j, "usage"), "completion_tokens");
    if (ct && ct->type == JSON_NUM) r->usage_tokens = (int64_t)ct->num;
    ilm_json_free(j);
    return rc;
}

static int on_body(void *ctx, const char *data, size_t n) {
    stream *s = ctx;
    if (s->status != 200) {
        if (s->errbody.len < 300) ilm_buf_add(&s->errbody, data, n);
        return 0;
    }
    return ilm_sse_feed(&s->sse, data, n, on_event, s);
}

static void build_body(const shared *sh, int idx, ilm_buf *b) {
    const ilm_loadtest_opts *o = sh->o;
    const char *prompt = sh->prompts[idx % sh->n_prompts];
    ilm_buf_puts(b, "{");
    if (o->model) {
        ilm_buf_puts(b, "\"model\":");
        ilm_json_buf_str(b, o->model, strlen(o->model));
        ilm_buf_puts(b, ",");
    }
    if (o->chat) {
        ilm_buf_puts(b, "\"messages\":[{\"role\":\"user\",\"content\":");
        ilm_json_buf_str(b, prompt, strlen(prompt));
        ilm_buf_puts(b, "}]");
    } else {
        ilm_buf_puts(b, "\"prompt\":");
        ilm_json_buf_str(b, prompt, strlen(prompt));
    }
    ilm_buf_printf(b, ",\"max_tokens\":%d,\"temperature\":%.17g,\"seed\":%llu,\"stream\":true,"
                      "\"stream_options\":{\"include_usage\":true}}",
                   o->max_tokens, o->temperature, (unsigned long long)o->seed);
}

// Runs request idx on *c (connecting when NULL); fills sh->recs[idx].
static void run_request(shared *sh, ilm_http_client **c, int idx, ilm_buf *body) {
    const ilm_loadtest_opts *o = sh->o;
    req_rec *r = &sh->recs[idx];
    r->usage_tokens = r->draft_n = -1;
    stream s = {.r = r, .chat = o->chat, .cancel = ilm_loadtest_cancels(o->seed, idx, o->cancel_frac)};
    ilm_sse_init(&s.sse);
    ilm_buf_reset(body);
    build_body(sh, idx, body);
    ilm_err err;
    char msg[400];
    msg[0] = 0;
    r->t_start = ilm_now();
    int rc = -1;
    if (body->oom) {
        snprintf(msg, sizeof msg, "out of memory building the request");
    } else {
        if (!*c) *c = ilm_http_connect(o->host, o->port, (int)(o->timeout_s * 1e3 + 0.5), &err);
        if (*c)
            rc = ilm_http_request(*c, "POST", sh->path, sh->headers, body->p, body->len, &s.status, on_body, &s,
                                  NULL, &err);
        if (rc < 0) snprintf(msg, sizeof msg, "%.390s", err.msg);
    }
    r->t_end = ilm_now();
    if (!msg[0] && s.fail[0]) snprintf(msg, sizeof msg, "%s", s.fail);
    if (!msg[0] && s.status != 200) {
        size_t l = s.errbody.len;
        while (l && (s.errbody.p[l - 1] == '\n' || s.errbody.p[l - 1] == '\r')) l--;
        snprintf(msg, sizeof msg, "HTTP %d: %.*s", s.status, (int)(l > 200 ? 200 : l), l ? s.errbody.p : "");
    }
    if (!msg[0] && rc == 1) {
        r->outcome = REQ_CANCELLED;
    } else if (!msg[0] && !s.done) {
        snprintf(msg, sizeof msg, "malformed stream: it ended without \"data: [DONE]\"");
    }
    if (msg[0]) {
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        r->outcome = REQ_ERROR;
        note_error(sh, msg);
    } else if (rc != 1) {
        r->outcome = REQ_OK;
    }
    ilm_sse_free(&s.sse);
    ilm_buf_free(&s.errbody);
}

static void *worker(void *arg) {
    shared *sh = arg;
    ilm_http_client *c = NULL;
    ilm_buf body = {0};
    for (;;) {
        int idx = atomic_fetch_add(&sh->next, 1);
        if (idx >= sh->o->requests) break;
        run_request(sh, &c, idx, &body);
        if (sh->recs[idx].outcome == REQ_ERROR) {  // start the next request on a fresh connection
            ilm_http_close(c);
            c = NULL;
        }
    }
    ilm_http_close(c);
    ilm_buf_free(&body);
    return NULL;
}

// --- one level ----------------------------------------------------------------------------

static void summarize(const shared *sh, ilm_loadtest_level *out) {
    int n = sh->o->requests;
    size_t nn = n > 0 ? (size_t)n : 1, n_itl = 0;
    for (int i = 0; i < n; i++)
        if (sh->recs[i].outcome == REQ_OK) n_itl += (size_t)sh->recs[i].n_itl;
    double *ttft = calloc(nn, sizeof *ttft), *e2e = calloc(nn, sizeof *e2e);
    double *itl = calloc(n_itl ? n_itl : 1, sizeof *itl);
    size_t kt = 0, ke = 0, ki = 0;
    double tps_sum = 0;
    int tps_n = 0;
    for (int i = 0; i < n; i++) {
        const req_rec *r = &sh->recs[i];
        out->ok += r->outcome == REQ_OK;
        out->errors += r->outcome == REQ_ERROR;
        out->cancelled += r->outcome == REQ_CANCELLED;
        if (r->outcome != REQ_OK) continue;
        int64_t tok = r->usage_tokens >= 0 ? r->usage_tokens : r->chunks;
        out->tokens += tok;
        if (r->draft_n >= 0) {
            out->has_draft = true;
            out->draft_n += r->draft_n;
            out->draft_accepted += r->draft_accepted;
        }
        if (ttft && r->chunks) ttft[kt++] = (r->t_first - r->t_start) * 1e3;
        if (e2e) e2e[ke++] = (r->t_end - r->t_start) * 1e3;
        if (tok >= 2 && r->t_last > r->t_first) {
            tps_sum += (double)(tok - 1) / (r->t_last - r->t_first);
            tps_n++;
        }
        if (itl)
            for (int j = 0; j < r->n_itl; j++) itl[ki++] = r->itl[j];
    }
    out->agg_tps = out->wall_s > 0 ? (double)out->tokens / out->wall_s : NAN;
    out->stream_tps = tps_n ? tps_sum / tps_n : NAN;
    for (int q = 0; q < 3; q++) out->ttft_ms[q] = out->itl_ms[q] = out->e2e_ms[q] = NAN;
    if (ttft) percentiles(ttft, kt, out->ttft_ms);
    if (e2e) percentiles(e2e, ke, out->e2e_ms);
    if (itl) percentiles(itl, ki, out->itl_ms);
    free(ttft);
    free(e2e);
    free(itl);
}

int ilm_loadtest_run_level(const ilm_loadtest_opts *o, char *const *prompts, int n_prompts, int concurrency,
                           ilm_loadtest_level *out, ilm_err *err) {
    memset(out, 0, sizeof *out);
    out->concurrency = concurrency;
    out->requests = o->requests;
    if (concurrency < 1 || n_prompts < 1 || o->requests < 1)
        return ilm_fail(err, "loadtest: need concurrency, prompts and requests >= 1");
    shared sh = {.o = o, .prompts = prompts, .n_prompts = n_prompts, .out = out};
    atomic_init(&sh.next, 0);
    snprintf(sh.path, sizeof sh.path, "%s%s", o->base, o->chat ? "/v1/chat/completions" : "/v1/completions");
    snprintf(sh.headers, sizeof sh.headers, "Accept: text/event-stream\r\n%s%.1000s%s",
             o->api_key ? "Authorization: Bearer " : "", o->api_key ? o->api_key : "", o->api_key ? "\r\n" : "");
    sh.recs = ilm_calloc((size_t)o->requests, sizeof *sh.recs, err);
    pthread_t *th = ilm_calloc((size_t)concurrency, sizeof *th, err);
    if (!sh.recs || !th) {
        free(sh.recs);
        free(th);
        return -1;
    }
    pthread_mutex_init(&sh.mu, NULL);
    double t0 = ilm_now();
    int started = 0;
    for (; started < concurrency; started++)
        if (pthread_create(&th[started], NULL, worker, &sh)) break;
    if (!started) worker(&sh);  // could not start any thread: run the level on this one
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    out->wall_s = ilm_now() - t0;
    summarize(&sh, out);
    for (int i = 0; i < o->requests; i++) free(sh.recs[i].itl);
    pthread_mutex_destroy(&sh.mu);
    free(sh.recs);
    free(th);
    return 0;
}
