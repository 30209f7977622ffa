// cmd_bench.c — `ironlm bench`: llama-bench-style model benchmark (the measurements are in
// bench.c), or the kernel benchmark with --kernels (bench_kernels.c).
//
// For every model x thread count: open the engine, probe the read bandwidth once per thread
// count, then run each test (pp, tg, pg, at each depth; or the speculative sweep) once as an
// uncounted warm-up and -r times counted. Tables go to stdout as md, json or csv.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/bench.h"
#include "tools/bench_kernels.h"
#include "cli/commands.h"
#include "format/json.h"
#include "gen/tokenizer.h"

// The default speculative prompt: prompt 0 of the pycoder/pyc80m references (Python code,
// where the trained drafters' acceptance is typical).
static const char DEFAULT_PROMPT[] = "import os\nimport sys\n\n\ndef main(argv):\n";

enum { OUT_MD, OUT_JSON, OUT_CSV };
enum { T_PP, T_TG, T_PG, T_SPEC };

typedef struct {
    int kind, n_prompt, n_gen, depth, draft_max;
} test_spec;

typedef struct {
    int model, n_threads;
    test_spec t;
    char test[64];
    double *ts;                 // [reps] tokens/s per repetition
    int reps;
    double avg, sd, gb_s, bw_pct;
    // speculative rows
    double accept_rate, mean_accepted;
    double accept_at[ILM_SPEC_MAX_DRAFT];
    int n_accept_at;
    const ilm_bench_costs *costs;
    // accumulated over the repetitions
    double bytes_sum, secs_sum;
    long drafted_at[ILM_SPEC_MAX_DRAFT], accepted_at[ILM_SPEC_MAX_DRAFT], drafted, accepted, rounds;
} row;

typedef struct {
    const char *path, *name;
    ilm_bench_model_info info;
    char kernels[32];
} model_entry;

typedef struct {
    ilm_engine_opts eo;
    bool ctx_given, warmup;
    const char **models;
    int n_models;
    int32_t *threads, *pp, *tg, *depth, *dmax;
    int n_threads, n_pp, n_tg, n_depth, n_dmax;
    int32_t pg[64][2];
    int n_pg;
    int reps, out;
    double read_bw;             // --read-bw: given bandwidth (GB/s), no probe
    const char *draft, *prompt_file;
} bench_opts;

typedef struct {
    row *rows;
    int n_rows, cap_rows;
    model_entry *models;
    int n_models;
    int bw_threads[64];
    double bw[64];
    int n_bw;
    double load_start, load_end;  // 1-minute load average around the run (-1: unknown)
    ilm_bench_costs costs[64];  // one per (model, threads) in speculative mode
    char costs_label[64][160];
    int n_costs;
} bench_state;

// ---- options --------------------------------------------------------------------------------

static void usage(void) {
    fprintf(stderr,
            "usage: ironlm bench -m MODEL.gguf[,MODEL2...] [tests] [options]\n"
            "  tests:  -p 512[,..] (prefill)  -n 128[,..] (decode)  -pg 512,128 (prompt + generation)\n"
            "          --depth 0,4096 (decode/prefill with D tokens already in the cache)\n"
            "          --draft D.gguf --draft-max 0,1,2,3,4 [--prompt-file F] (speculative sweep; -n tokens)\n"
            "  -r N (repetitions, default 5)  -t 1,2 (thread counts)  -o md|json|csv  --no-warmup\n"
            "  --read-bw GBS (skip the bandwidth probe: use this read bandwidth for bw%%)\n"
            "  engine: -b N  -c N  --kv-type f16|f32  --act q8|f32  --numa off|distribute|interleave|replicate\n"
            "  ironlm bench --kernels ... : kernel microbenchmarks (see ironlm bench --kernels --help)\n");
}

// Appends a comma list of non-negative ints to *v (lo..hi each).
static int add_list(const char *opt, const char *s, long lo, long hi, int32_t **v, int *n, ilm_err *err) {
    int32_t *x;
    int k;
    if (ilm_parse_int_list(s, &x, &k, err)) return ilm_fail_prefix(err, "bench: %s", opt);
    for (int i = 0; i < k; i++)
        if (x[i] < lo || x[i] > hi) {
            free(x);
            return ilm_fail(err, "bench: %s: bad value '%s' (expected %ld..%ld)", opt, s, lo, hi);
        }
    int32_t *nv = realloc(*v, sizeof(int32_t) * (size_t)(*n + k));
    if (!nv) {
        free(x);
        return ilm_fail(err, "out of memory");
    }
    memcpy(nv + *n, x, sizeof(int32_t) * (size_t)k);
    *v = nv;
    *n += k;
    free(x);
    return 0;
}

static int add_models(bench_opts *o, char *s, ilm_err *err) {
    char *save = NULL;
    for (char *p = strtok_r(s, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        const char **nm = realloc(o->models, sizeof(char *) * (size_t)(o->n_models + 1));
        if (!nm) return ilm_fail(err, "out of memory");
        o->models = nm;
        o->models[o->n_models++] = p;
    }
    return 0;
}

// Removes the 0 entries of a -p / -n list (0 = skip that test).
static void drop_zeros(int32_t *v, int *n) {
    int k = 0;
    for (int i = 0; i < *n; i++)
        if (v[i]) v[k++] = v[i];
    *n = k;
}

static int parse_opts(bench_opts *o, int argc, char **argv, ilm_err *err) {
    bool pp_given = false, tg_given = false;
    ilm_engine_opts_default(&o->eo);
    o->eo.verbose = false;
    o->warmup = true;
    o->reps = 5;
    o->out = OUT_MD;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 1;
        }
        if (!strcmp(a, "--no-warmup")) {
            o->warmup = false;
            continue;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->eo.verbose = true;
            continue;
        }
        bool ours = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-t") || !strcmp(a, "--threads") ||
                    !strcmp(a, "-p") || !strcmp(a, "-n") || !strcmp(a, "-pg") || !strcmp(a, "--depth") ||
                    !strcmp(a, "-d") || !strcmp(a, "-r") || !strcmp(a, "-o") || !strcmp(a, "--draft") ||
                    !strcmp(a, "-md") || !strcmp(a, "--draft-max") || !strcmp(a, "--prompt-file") ||
                    !strcmp(a, "--read-bw");
        if (ours) {
            if (!v) return ilm_fail(err, "bench: %s needs a value", a);
            i++;
            if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
                if (add_models(o, argv[i], err)) return -1;
            } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
                if (add_list(a, v, 1, 4096, &o->threads, &o->n_threads, err)) return -1;
            } else if (!strcmp(a, "-p")) {  // 0: no prefill test (as llama-bench's -p 0)
                if (add_list(a, v, 0, 1 << 20, &o->pp, &o->n_pp, err)) return -1;
                pp_given = true;
            } else if (!strcmp(a, "-n")) {
                if (add_list(a, v, 0, 1 << 20, &o->tg, &o->n_tg, err)) return -1;
                tg_given = true;
            } else if (!strcmp(a, "--depth") || !strcmp(a, "-d")) {
                if (add_list(a, v, 0, 1 << 22, &o->depth, &o->n_depth, err)) return -1;
            } else if (!strcmp(a, "--draft-max")) {
                if (add_list(a, v, 0, ILM_BENCH_MAX_VERIFY, &o->dmax, &o->n_dmax, err)) return -1;
            } else if (!strcmp(a, "-pg")) {
                int32_t *x = NULL;
                int k = 0;
                if (add_list(a, v, 1, 1 << 20, &x, &k, err)) return -1;
                if (k != 2 || o->n_pg == 64) {
                    free(x);
                    return ilm_fail(err, "bench: -pg expects PROMPT,GEN (got '%s')", v);
                }
                o->pg[o->n_pg][0] = x[0];
                o->pg[o->n_pg++][1] = x[1];
                free(x);
            } else if (!strcmp(a, "-r")) {
                char *end;
                long r = strtol(v, &end, 10);
                if (*end || end == v || r < 1 || r > 1000) return ilm_fail(err, "bench: -r: bad value '%s' (1..1000)", v);
                o->reps = (int)r;
            } else if (!strcmp(a, "-o")) {
                if (!strcmp(v, "md")) o->out = OUT_MD;
                else if (!strcmp(v, "json")) o->out = OUT_JSON;
                else if (!strcmp(v, "csv")) o->out = OUT_CSV;
                else return ilm_fail(err, "bench: -o: expected md, json or csv (%s)", v);
            } else if (!strcmp(a, "--draft") || !strcmp(a, "-md")) {
                o->draft = v;
            } else if (!strcmp(a, "--prompt-file")) {
                o->prompt_file = v;
            } else if (!strcmp(a, "--read-bw")) {
                char *end;
                o->read_bw = strtod(v, &end);
                if (*end || end == v || !(o->read_bw > 0 && o->read_bw < 1e6))
                    return ilm_fail(err, "bench: --read-bw: bad value '%s' (GB/s)", v);
            }
            continue;
        }
        if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) o->ctx_given = true;
        int r = ilm_engine_parse_opt(&o->eo, argc, argv, &i, err);
        if (r < 0) return ilm_fail_prefix(err, "bench");
        if (!r) return ilm_fail(err, "bench: unknown option %s", a);
    }
    if (!o->n_models) return ilm_fail(err, "bench: no model given (-m MODEL.gguf)");
    if (o->n_threads > 64) return ilm_fail(err, "bench: at most 64 thread counts");
    if (!o->draft && (o->n_dmax || o->prompt_file))
        return ilm_fail(err, "bench: --draft-max and --prompt-file need --draft D.gguf");
    if (!pp_given && !tg_given && !o->n_pg) {
        if (!o->draft) add_list("-p", "512", 1, 1 << 20, &o->pp, &o->n_pp, err);
        add_list("-n", "128", 1, 1 << 20, &o->tg, &o->n_tg, err);
    }
    if (o->draft && !tg_given) add_list("-n", "128", 1, 1 << 20, &o->tg, &o->n_tg, err);
    drop_zeros(o->pp, &o->n_pp);
    drop_zeros(o->tg, &o->n_tg);
    if (!o->n_pp && !o->n_tg && !o->n_pg) return ilm_fail(err, "bench: nothing to run (every -p and -n is 0)");
    if (o->draft && !o->n_dmax) add_list("--draft-max", "0,1,2,3,4", 0, 8, &o->dmax, &o->n_dmax, err);
    if (!o->n_depth) add_list("--depth", "0", 0, 0, &o->depth, &o->n_depth, err);
    if (!o->n_threads) {
        o->threads = malloc(sizeof(int32_t));
        if (!o->threads) return ilm_fail(err, "out of memory");
        o->threads[0] = 0;  // the engine's default: physical cores
        o->n_threads = 1;
    }
    return 0;
}

// The tests in run order: prefill, decode, prompt+generation at each depth (pg only at
// depth 0); with --draft the decode tests become the speculative sweep.
static int make_tests(const bench_opts *o, test_spec **out, int *n_out, ilm_err *err) {
    int cap = (o->n_pp + o->n_tg * (o->n_dmax + 1)) * o->n_depth + o->n_pg + 1;
    test_spec *t = ilm_calloc((size_t)cap, sizeof *t, err);
    if (!t) return -1;
    int n = 0;
    for (int d = 0; d < o->n_depth; d++) {
        for (int i = 0; i < o->n_pp; i++) t[n++] = (test_spec){T_PP, o->pp[i], 0, o->depth[d], -1};
        if (o->draft) continue;
        for (int i = 0; i < o->n_tg; i++) t[n++] = (test_spec){T_TG, 0, o->tg[i], o->depth[d], -1};
    }
    for (int i = 0; i < o->n_pg; i++) t[n++] = (test_spec){T_PG, o->pg[i][0], o->pg[i][1], 0, -1};
    if (o->draft)
        for (int i = 0; i < o->n_tg; i++)
            for (int k = 0; k < o->n_dmax; k++) t[n++] = (test_spec){T_SPEC, 0, o->tg[i], 0, o->dmax[k]};
    *out = t;
    *n_out = n;
    return 0;
}

static void test_name(const test_spec *t, char *buf, size_t n) {
    int k = 0;
    switch (t->kind) {
    case T_PP: k = snprintf(buf, n, "pp%d", t->n_prompt); break;
    case T_TG: k = snprintf(buf, n, "tg%d", t->n_gen); break;
    case T_PG: k = snprintf(buf, n, "pp%d+tg%d", t->n_prompt, t->n_gen); break;
    default: k = snprintf(buf, n, "tg%d dm%d", t->n_gen, t->draft_max); break;
    }
    if (t->depth > 0 && k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, "@d%d", t->depth);
}

// Context positions a test needs (with room for a verification past the end).
static int test_ctx(const test_spec *t, int n_spec_prompt) {
    switch (t->kind) {
    case T_PP: return t->depth + t->n_prompt;
    case T_TG: return (t->depth > 1 ? t->depth : 1) + t->n_gen;
    case T_PG: return t->n_prompt + t->n_gen;
    default: return n_spec_prompt + t->n_gen + t->draft_max + ILM_BENCH_MAX_VERIFY + 2;
    }
}

// ---- progress ----------------------------------------------------------------------------------

static void progress(bool tty, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(bool tty, const char *fmt, ...) {
    if (!tty) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

// ---- running ------------------------------------------------------------------------------------

static double bandwidth_for(bench_state *S, int n_threads, double given, bool announce) {
    for (int i = 0; i < S->n_bw; i++)
        if (S->bw_threads[i] == n_threads) return S->bw[i];
    double bw = given > 0 ? given : ilm_measure_read_bw(n_threads);
    if (S->n_bw < 64) {
        S->bw_threads[S->n_bw] = n_threads;
        S->bw[S->n_bw++] = bw;
    }
    if (announce) fprintf(stderr, "ironlm: read bandwidth: %.1f GB/s (%d threads)\n", bw, n_threads);
    return bw;
}

static row *new_row(bench_state *S, ilm_err *err) {
    if (S->n_rows == S->cap_rows) {
        int cap = S->cap_rows ? 2 * S->cap_rows : 16;
        row *r = realloc(S->rows, sizeof(row) * (size_t)cap);
        if (!r) return ilm_fail(err, "out of memory"), NULL;
        S->rows = r;
        S->cap_rows = cap;
    }
    row *r = &S->rows[S->n_rows++];
    memset(r, 0, sizeof *r);
    return r;
}

static void summarize(row *r, double bw) {
    double s = 0, ss = 0;
    for (int i = 0; i < r->reps; i++) s += r->ts[i];
    r->avg = s / r->reps;
    for (int i = 0; i < r->reps; i++) ss += (r->ts[i] - r->avg) * (r->ts[i] - r->avg);
    r->sd = r->reps > 1 ? sqrt(ss / (r->reps - 1)) : 0;
    r->gb_s = r->secs_sum > 0 ? r->bytes_sum / r->secs_sum / 1e9 : 0;
    r->bw_pct = bw > 0 ? 100.0 * r->gb_s / bw : 0;
}

static int load_prompt(const bench_opts *o, const char *model, int32_t **ids, int *n, ilm_err *err) {
    char *text = NULL;
    size_t len = 0;
    if (o->prompt_file) {
        if (ilm_read_file(o->prompt_file, &text, &len, err)) return -1;
    } else {
        text = strdup(DEFAULT_PROMPT);
        len = strlen(DEFAULT_PROMPT);
        if (!text) return ilm_fail(err, "out of memory");
    }
    ilm_tokenizer *tk = NULL;
    int rc = ilm_tokenizer_load_file(&tk, model, err);
    if (!rc) rc = ilm_tokenize(tk, text, len, 0, ids, n, err);
    ilm_tokenizer_free(tk);
    free(text);
    if (!rc && *n < 1) rc = ilm_fail(err, "bench: the prompt has no tokens");
    return rc;
}

static int run_tests(bench_state *S, const bench_opts *o, int mi, int t_idx, const test_spec *tests, int n_tests,
                     bool tty, ilm_err *err) {
    model_entry *me = &S->models[mi];
    ilm_engine_opts eo = o->eo;
    eo.model = me->path;
    eo.n_threads = o->threads[t_idx];
    int32_t *prompt = NULL;
    int n_prompt = 0, rc = -1;
    ilm_drafter *d = NULL;
    ilm_engine e;
    memset(&e, 0, sizeof e);
    if (o->draft && load_prompt(o, me->path, &prompt, &n_prompt, err)) goto done;
    if (!o->ctx_given) {
        int need = 16;
        for (int i = 0; i < n_tests; i++) {
            int c = test_ctx(&tests[i], n_prompt);
            if (c > need) need = c;
        }
        eo.n_ctx = need;
    }
    progress(tty, "bench: loading %s", me->name);
    if (ilm_engine_open(&e, &eo, err)) goto done;
    ilm_bench_model_info_get(e.model, &me->info);
    snprintf(me->kernels, sizeof me->kernels, "%s", ilm_k->name);
    const int n_threads = ilm_pool_size(e.pool);
    progress(tty, "bench: measuring read bandwidth (%d threads)", n_threads);
    const double bw = bandwidth_for(S, n_threads, o->read_bw, o->out != OUT_MD);
    if (o->draft) {
        if (ilm_drafter_load(&d, o->draft, e.model, e.pool, eo.act_f32, err)) goto done;
    }
    // Tests run in groups: each plain test alone; the speculative tests of one -n value
    // together, their repetitions interleaved (dm0, dm1, ..., dm0, dm1, ...) so that a
    // disturbance on a busy machine hits every draft length alike rather than one of them.
    for (int ti = 0, gj; ti < n_tests; ti = gj) {
        gj = ti + 1;
        if (tests[ti].kind == T_SPEC)
            while (gj < n_tests && tests[gj].kind == T_SPEC && tests[gj].n_gen == tests[ti].n_gen) gj++;
        const int first_row = S->n_rows;
        for (int k = ti; k < gj; k++) {
            const test_spec *t = &tests[k];
            if (test_ctx(t, n_prompt) > e.n_ctx) {
                ilm_fail(err, "bench: test needs %d positions, the context holds %d (use -c)", test_ctx(t, n_prompt),
                         e.n_ctx);
                goto done;
            }
            row *r = new_row(S, err);
            if (!r) goto done;
            r->model = mi;
            r->n_threads = n_threads;
            r->t = *t;
            if (t->kind == T_SPEC) r->t.depth = n_prompt;  // decoding starts after the prompt
            test_name(t, r->test, sizeof r->test);
            r->reps = o->reps;
            r->ts = ilm_calloc((size_t)o->reps, sizeof(double), err);
            if (!r->ts) goto done;
        }
        const test_spec *t0 = &tests[ti];
        int32_t next = 0;
        progress(tty, "bench: %s, %d threads, %s: set-up", me->name, n_threads, S->rows[first_row].test);
        if ((t0->kind == T_TG || (t0->kind == T_PP && t0->depth > 0)) && ilm_bench_context(&e, t0->depth, &next, err))
            goto done;
        for (int rep = o->warmup ? -1 : 0; rep < o->reps; rep++)
            for (int k = ti; k < gj; k++) {
                row *r = &S->rows[first_row + k - ti];
                const test_spec *t = &tests[k];
                progress(tty, "bench: %s, %d threads, %s: %s %d/%d", me->name, n_threads, r->test,
                         rep < 0 ? "warm-up" : "run", rep < 0 ? 1 : rep + 1, rep < 0 ? 1 : o->reps);
                double secs = 0, bytes = 0;
                int tokens = 0;
                ilm_gen_stats st;
                switch (t->kind) {
                case T_PP:
                    if (ilm_bench_prefill(&e, &me->info, t->depth, t->n_prompt, &secs, &bytes, err)) goto done;
                    tokens = t->n_prompt;
                    break;
                case T_TG:
                    if (ilm_bench_decode(&e, &me->info, t->depth, next, t->n_gen, &secs, &bytes, err)) goto done;
                    tokens = t->n_gen;
                    break;
                case T_PG:
                    if (ilm_bench_pg(&e, &me->info, t->n_prompt, t->n_gen, &secs, &bytes, err)) goto done;
                    tokens = t->n_prompt + t->n_gen;
                    break;
                default:
                    if (ilm_bench_spec(&e, d, &me->info, prompt, n_prompt, t->draft_max, t->n_gen, &secs, &bytes,
                                       &st, err))
                        goto done;
                    tokens = t->n_gen;
                    break;
                }
                if (rep < 0) continue;
                r->ts[rep] = secs > 0 ? tokens / secs : 0;
                r->bytes_sum += bytes;
                r->secs_sum += secs;
                if (t->kind == T_SPEC) {
                    for (int j = 0; j < ILM_SPEC_MAX_DRAFT; j++) {
                        r->drafted_at[j] += st.drafted_at[j];
                        r->accepted_at[j] += st.accepted_at[j];
                    }
                    r->drafted += st.drafted;
                    r->accepted += st.accepted;
                    r->rounds += st.rounds;
                }
            }
        for (int k = first_row; k < S->n_rows; k++) {
            row *r = &S->rows[k];
            summarize(r, bw);
            if (r->t.kind == T_SPEC) {
                r->accept_rate = r->drafted ? (double)r->accepted / r->drafted : 0;
                r->mean_accepted = r->rounds ? (double)r->accepted / r->rounds : 0;
                for (int j = 0; j < r->t.draft_max && j < ILM_SPEC_MAX_DRAFT; j++)
                    r->accept_at[j] = r->drafted_at[j] ? (double)r->accepted_at[j] / r->drafted_at[j] : 0;
                r->n_accept_at = r->t.draft_max;
            }
            if (!tty && o->eo.verbose)
                fprintf(stderr, "ironlm: bench: %s, %d threads, %s: %.2f ± %.2f t/s\n", me->name, n_threads, r->test,
                        r->avg, r->sd);
        }
    }
    if (o->draft && S->n_costs < 64) {
        progress(tty, "bench: %s, %d threads: component costs", me->name, n_threads);
        int n_max = 4;
        for (int k = 0; k < o->n_dmax; k++)
            if (o->dmax[k] > n_max) n_max = o->dmax[k];
        ilm_bench_costs *c = &S->costs[S->n_costs];
        if (ilm_bench_measure_costs(&e, d, prompt, n_prompt, n_max, c, err)) goto done;
        snprintf(S->costs_label[S->n_costs], sizeof S->costs_label[0], "%s + %s, %d threads", me->name,
                 strrchr(o->draft, '/') ? strrchr(o->draft, '/') + 1 : o->draft, n_threads);
        for (int i = 0; i < S->n_rows; i++)
            if (S->rows[i].model == mi && S->rows[i].n_threads == n_threads && S->rows[i].t.kind == T_SPEC)
                S->rows[i].costs = c;
        S->n_costs++;
    }
    rc = 0;
done:
    progress(tty, "%s", "");
    free(prompt);
    ilm_drafter_free(d);
    ilm_engine_close(&e);
    return rc;
}

// ---- output -----------------------------------------------------------------------------------

static void fmt_params(uint64_t n, char *buf, size_t len) {
    if (n >= 1000000000ull) snprintf(buf, len, "%.2f B", n / 1e9);
    else snprintf(buf, len, "%.2f M", n / 1e6);
}

// The 1-minute load average (Linux /proc/loadavg), -1 where unavailable: a benchmark on a
// machine that is busy with something else measures that something too.
static double load_average(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double l = -1;
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static void print_load(const bench_state *S, FILE *f) {
    if (S->load_start >= 0 && S->load_end >= 0)
        fprintf(f, "load average (1 min): %.2f at start, %.2f at end\n", S->load_start, S->load_end);
}

static void print_md(const bench_state *S, FILE *f) {
    print_load(S, f);
    for (int i = 0; i < S->n_bw; i++) fprintf(f, "read bandwidth: %.1f GB/s (%d threads)\n", S->bw[i], S->bw_threads[i]);
    fprintf(f, "\n| model | size | params | kernels | threads | test | t/s | GB/s | bw%% |\n");
    fprintf(f, "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |\n");
    for (int i = 0; i < S->n_rows; i++) {
        const row *r = &S->rows[i];
        const model_entry *m = &S->models[r->model];
        char params[32];
        fmt_params(m->info.n_params, params, sizeof params);
        fprintf(f, "| %s | %.2f GiB | %s | %s | %d | %s | %.2f ± %.2f | %.1f | %.1f |\n", m->name,
                m->info.size / 1073741824.0, params, m->kernels, r->n_threads, r->test, r->avg, r->sd, r->gb_s,
                r->bw_pct);
    }
}

// The Gemma 4 MTP write-ups' table: baseline vs each draft length.
static void print_spec(const bench_state *S, FILE *f) {
    for (int c = 0; c < S->n_costs; c++) {
        const ilm_bench_costs *co = &S->costs[c];
        const row *base = NULL;
        int max_n = 0;
        for (int i = 0; i < S->n_rows; i++)
            if (S->rows[i].costs == co) {
                if (S->rows[i].t.draft_max == 0 && !base) base = &S->rows[i];
                if (S->rows[i].t.draft_max > max_n) max_n = S->rows[i].t.draft_max;
            }
        fprintf(f, "\nspeculative decoding: %s; prompt %d tokens, greedy\n\n", S->costs_label[c], co->depth);
        fprintf(f, "| test | draft-max | t/s | speedup | acceptance | accepted/round |");
        for (int k = 0; k < max_n; k++) fprintf(f, " acc@%d |", k + 1);
        fprintf(f, "\n| --- | ---: | ---: | ---: | ---: | ---: |");
        for (int k = 0; k < max_n; k++) fprintf(f, " ---: |");
        fprintf(f, "\n");
        for (int i = 0; i < S->n_rows; i++) {
            const row *r = &S->rows[i];
            if (r->costs != co) continue;
            char sp[32] = "-";
            if (base && base->avg > 0) snprintf(sp, sizeof sp, "%.2fx", r->avg / base->avg);
            fprintf(f, "| tg%d | %d%s | %.2f ± %.2f | %s |", r->t.n_gen, r->t.draft_max,
                    r->t.draft_max ? "" : " (baseline)", r->avg, r->sd, sp);
            if (r->t.draft_max) fprintf(f, " %.3f | %.2f |", r->accept_rate, r->mean_accepted);
            else fprintf(f, " - | - |");
            for (int k = 0; k < max_n; k++)
                if (k < r->n_accept_at) fprintf(f, " %.3f |", r->accept_at[k]);
                else fprintf(f, " |");
            fprintf(f, "\n");
        }
        fprintf(f, "\ncomponent costs at depth %d (fastest of repeated passes): decode(1) %.3f ms", co->depth,
                co->t_decode * 1e3);
        if (co->t_draft > 0)
            fprintf(f, ", drafter step %.3f ms = %.3f x decode(1)", co->t_draft * 1e3, co->t_draft / co->t_decode);
        fprintf(f, "\n\n| N | verify(N+1) ms | verify(N+1)/decode(1) | round cost/decode(1) | proj. speedup a=0.60 | "
                   "a=0.75 | a=0.90 |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (int N = 1; N <= co->n_max; N++)
            fprintf(f, "| %d | %.3f | %.3f | %.3f | %.2fx | %.2fx | %.2fx |\n", N, co->t_verify[N] * 1e3,
                    co->t_verify[N] / co->t_decode, (co->t_verify[N] + N * co->t_draft) / co->t_decode,
                    ilm_bench_projected_speedup(co, N, 0.6), ilm_bench_projected_speedup(co, N, 0.75),
                    ilm_bench_projected_speedup(co, N, 0.9));
        fprintf(f, "\nprojected speedup = (sum_{k=0..N} a^k) / ((verify(N+1) + N x drafter step) / decode(1)), a = "
                   "per-draft acceptance\n");
    }
}

static void print_json(const bench_state *S, FILE *f) {
    fprintf(f, "[\n");
    for (int i = 0; i < S->n_rows; i++) {
        const row *r = &S->rows[i];
        const model_entry *m = &S->models[r->model];
        fprintf(f, "  {\"model_filename\": ");
        ilm_json_write_str(f, m->name, strlen(m->name));
        fprintf(f, ", \"model_type\": ");
        ilm_json_write_str(f, m->info.type, strlen(m->info.type));
        fprintf(f, ", \"model_size\": %llu, \"model_n_params\": %llu, \"kernels\": ",
                (unsigned long long)m->info.size, (unsigned long long)m->info.n_params);
        ilm_json_write_str(f, m->kernels, strlen(m->kernels));
        fprintf(f, ", \"n_threads\": %d, \"test\": ", r->n_threads);
        ilm_json_write_str(f, r->test, strlen(r->test));
        fprintf(f, ", \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, \"avg_ts\": %.6f, \"stddev_ts\": %.6f, "
                   "\"samples_ts\": [",
                r->t.n_prompt, r->t.n_gen, r->t.depth, r->avg, r->sd);
        for (int k = 0; k < r->reps; k++) fprintf(f, "%s%.6f", k ? ", " : "", r->ts[k]);
        fprintf(f, "], \"gb_s\": %.6f, \"bw_pct\": %.4f", r->gb_s, r->bw_pct);
        if (r->t.kind == T_SPEC) {
            fprintf(f, ", \"draft_max\": %d, \"accept_rate\": %.6f, \"mean_accepted\": %.6f, \"accept_at\": [",
                    r->t.draft_max, r->accept_rate, r->mean_accepted);
            for (int k = 0; k < r->n_accept_at; k++) fprintf(f, "%s%.6f", k ? ", " : "", r->accept_at[k]);
            fprintf(f, "]");
            if (r->costs) {
                const ilm_bench_costs *c = r->costs;
                fprintf(f, ", \"decode_ms\": %.6f, \"draft_step_ratio\": %.6f, \"verify_ratio\": [", c->t_decode * 1e3,
                        c->t_decode > 0 ? c->t_draft / c->t_decode : 0);
                for (int N = 1; N <= c->n_max; N++) fprintf(f, "%s%.6f", N > 1 ? ", " : "", c->t_verify[N] / c->t_decode);
                fprintf(f, "]");
            }
        }
        fprintf(f, "}%s\n", i + 1 < S->n_rows ? "," : "");
    }
    fprintf(f, "]\n");
}

static void csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_csv(const bench_state *S, FILE *f) {
    fprintf(f, "model_filename,model_type,model_size,model_n_params,kernels,n_threads,test,n_prompt,n_gen,n_depth,"
               "avg_ts,stddev_ts,samples_ts,gb_s,bw_pct,draft_max,accept_rate\n");
    for (int i = 0; i < S->n_rows; i++) {
        const row *r = &S->rows[i];
        const model_entry *m = &S->models[r->model];
        csv_str(f, m->name);
        fputc(',', f);
        csv_str(f, m->info.type);
        fprintf(f, ",%llu,%llu,", (unsigned long long)m->info.size, (unsigned long long)m->info.n_params);
        csv_str(f, m->kernels);
        fprintf(f, ",%d,", r->n_threads);
        csv_str(f, r->test);
        fprintf(f, ",%d,%d,%d,%.6f,%.6f,\"", r->t.n_prompt, r->t.n_gen, r->t.depth, r->avg, r->sd);
        for (int k = 0; k < r->reps; k++) fprintf(f, "%s%.6f", k ? ";" : "", r->ts[k]);
        fprintf(f, "\",%.6f,%.4f,", r->gb_s, r->bw_pct);
        if (r->t.kind == T_SPEC) fprintf(f, "%d,%.6f\n", r->t.draft_max, r->accept_rate);
        else fprintf(f, ",\n");
    }
}

// ---- entry ---------------------------------------------------------------------------------------

int ilm_cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--kernels")) return ilm_cmd_bench_kernels(argc, argv);
    bench_opts o;
    memset(&o, 0, sizeof o);
    bench_state S;
    memset(&S, 0, sizeof S);
    test_spec *tests = NULL;
    int n_tests = 0, rc = 1;
    ilm_err err;
    int pr = parse_opts(&o, argc, argv, &err);
    if (pr) {
        if (pr < 0) fprintf(stderr, "ironlm: error: %s\n", err.msg);
        rc = pr < 0 ? 2 : 0;
        goto out;
    }
    if (make_tests(&o, &tests, &n_tests, &err)) goto fail;
    if (ilm_engine_init_kernels(&err)) goto fail;
    S.models = ilm_calloc((size_t)o.n_models, sizeof *S.models, &err);
    if (!S.models) goto fail;
    S.n_models = o.n_models;
    for (int m = 0; m < o.n_models; m++) {
        S.models[m].path = o.models[m];
        const char *slash = strrchr(o.models[m], '/');
        S.models[m].name = slash ? slash + 1 : o.models[m];
    }
    const bool tty = isatty(STDERR_FILENO);
    S.load_start = load_average();
    for (int m = 0; m < o.n_models; m++)
        for (int t = 0; t < o.n_threads; t++)
            if (run_tests(&S, &o, m, t, tests, n_tests, tty, &err)) goto fail;
    S.load_end = load_average();
    if (o.out == OUT_MD) {
        print_md(&S, stdout);
        print_spec(&S, stdout);
    } else {
        if (o.out == OUT_JSON) print_json(&S, stdout);
        else print_csv(&S, stdout);
        print_load(&S, stderr);
        print_spec(&S, stderr);
    }
    fflush(stdout);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "ironlm: error: %s\n", err.msg);
out:
    for (int i = 0; i < S.n_rows; i++) free(S.rows[i].ts);
    free(S.rows);
    free(S.models);
    free(tests);
    free(o.models);
    free(o.threads);
    free(o.pp);
    free(o.tg);
    free(o.depth);
    free(o.dmax);
    return rc;
}
