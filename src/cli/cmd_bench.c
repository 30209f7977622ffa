// cmd_bench.c — `ironlm bench`: llama-bench-style model benchmark (the measurements are in
// tools/bench.c, the options in cmd_bench_opts.c, the tables in cmd_bench_table.c), or the
// kernel benchmark with --kernels (cmd_bench_kernels.c).
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

#include "cli/cmd_bench.h"
#include "cli/commands.h"
#include "gen/tokenizer.h"
#include "tools/bench.h"
#include "tools/convert.h"
#include "tools/bench_kernels.h"

// The default speculative prompt: prompt 0 of the pycoder/pyc80m references (Python code,
// where the trained drafters' acceptance is typical).
static const char DEFAULT_PROMPT[] = "import os\nimport sys\n\n\ndef main(argv):\n";

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
    ilm_bw_probe p = {0};
    if (given > 0) p.gb_s = given, snprintf(p.method, sizeof p.method, "given by --read-bw");
    else p = ilm_probe_read_bw(n_threads);
    const double peak = ilm_measure_int8_peak(n_threads);
    S->llc = ilm_kbench_llc_bytes();
    if (S->n_bw < 64) {
        S->bw_threads[S->n_bw] = n_threads;
        S->peak[S->n_bw] = peak;
        if (p.bytes)
            snprintf(S->bw_method[S->n_bw], sizeof S->bw_method[0], "best: %s; %.1f GiB buffer, LLC %zu MiB", p.method,
                     p.bytes / 1073741824.0, S->llc >> 20);
        else snprintf(S->bw_method[S->n_bw], sizeof S->bw_method[0], "%s", p.method);
        S->bw[S->n_bw++] = p.gb_s;
    }
    if (announce) fprintf(stderr, "ironlm: read bandwidth: %.1f GB/s (%d threads; %s)\n", p.gb_s, n_threads, p.method);
    return p.gb_s;
}

static bench_row *new_row(bench_state *S, ilm_err *err) {
    if (S->n_rows == S->cap_rows) {
        int cap = S->cap_rows ? 2 * S->cap_rows : 16;
        bench_row *r = realloc(S->rows, sizeof(bench_row) * (size_t)cap);
        if (!r) return ilm_fail(err, "out of memory"), NULL;
        S->rows = r;
        S->cap_rows = cap;
    }
    bench_row *r = &S->rows[S->n_rows++];
    memset(r, 0, sizeof *r);
    return r;
}

static void summarize(bench_row *r, double bw) {
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
    ilm_convert_pick_act(&eo, me->w4a16);
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
            int c = ilm_benchcli_test_ctx(&tests[i], n_prompt);
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
        if (ilm_drafter_load(&d, o->draft, e.model, e.pool, eo.act, err)) goto done;
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
            if (ilm_benchcli_test_ctx(t, n_prompt) > e.n_ctx) {
                ilm_fail(err, "bench: test needs %d positions, the context holds %d (use -c)",
                         ilm_benchcli_test_ctx(t, n_prompt), e.n_ctx);
                goto done;
            }
            bench_row *r = new_row(S, err);
            if (!r) goto done;
            r->model = mi;
            r->n_threads = n_threads;
            r->t = *t;
            if (t->kind == T_SPEC) r->t.depth = n_prompt;  // decoding starts after the prompt
            ilm_benchcli_test_name(t, r->test, sizeof r->test);
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
                bench_row *r = &S->rows[first_row + k - ti];
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
            bench_row *r = &S->rows[k];
            summarize(r, bw);
            // the roofline: bw% can pass 100 only from the cache; prefill against the int8 peak
            const ilm_bench_model_info *mi = &me->info;
            const double active = mi->dense_bytes + (mi->n_expert ? (double)mi->expert_bytes * mi->n_expert_used / mi->n_expert : 0);
            r->cache_resident = S->llc && active <= (double)S->llc;
            double peak = 0;
            for (int b = 0; b < S->n_bw; b++)
                if (S->bw_threads[b] == n_threads) peak = S->peak[b];
            if (r->t.kind == T_PP && peak > 0) {  // attention and the once-per-batch head not counted
                const double macs_per_token =
                    (double)mi->token_macs + (mi->n_expert ? (double)mi->expert_macs * mi->n_expert_used / mi->n_expert : 0);
                r->peak_pct = 100.0 * 2 * macs_per_token * r->avg / (peak * 1e9);
            }
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
                 strrchr(o->draft_name, '/') ? strrchr(o->draft_name, '/') + 1 : o->draft_name, n_threads);
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

// ---- entry ---------------------------------------------------------------------------------------

int ilm_cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--kernels")) return ilm_cmd_bench_kernels(argc, argv);
    bench_opts o;
    memset(&o, 0, sizeof o);
    bench_state S;
    memset(&S, 0, sizeof S);
    test_spec *tests = NULL;
    int n_tests = 0, rc = 1, draft_fd = -1;
    char draft_path[4096];
    ilm_err err;
    int pr = ilm_benchcli_parse(&o, argc, argv, &err);
    if (pr) {
        if (pr < 0) fprintf(stderr, "ironlm: error: %s\n", err.msg);
        rc = pr < 0 ? 2 : 0;
        goto out;
    }
    if (ilm_benchcli_tests(&o, &tests, &n_tests, &err)) goto fail;
    if (ilm_engine_init_kernels(&err)) goto fail;
    S.models = ilm_calloc((size_t)o.n_models, sizeof *S.models, &err);
    if (!S.models) goto fail;
    S.n_models = o.n_models;
    for (int m = 0; m < o.n_models; m++) S.models[m].fd = -1;
    // an HF checkpoint directory (-m or --draft) is converted once into a memfd
    for (int m = 0; m < o.n_models; m++) {
        if (ilm_convert_resolve_model(o.models[m], S.models[m].resolved, sizeof S.models[m].resolved, &S.models[m].fd,
                                      &S.models[m].w4a16,
                                      &err))
            goto fail;
        S.models[m].path = S.models[m].resolved;
        const char *slash = strrchr(o.models[m], '/');
        S.models[m].name = slash && slash[1] ? slash + 1 : o.models[m];
    }
    o.draft_name = o.draft;
    if (o.draft) {
        if (ilm_convert_resolve_model(o.draft, draft_path, sizeof draft_path, &draft_fd, NULL, &err)) goto fail;
        o.draft = draft_path;
    }
    const bool tty = isatty(STDERR_FILENO);
    S.load_start = load_average();
    for (int m = 0; m < o.n_models; m++)
        for (int t = 0; t < o.n_threads; t++)
            if (run_tests(&S, &o, m, t, tests, n_tests, tty, &err)) goto fail;
    S.load_end = load_average();
    ilm_benchcli_print(&S, o.out);
    fflush(stdout);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "ironlm: error: %s\n", err.msg);
out:
    for (int i = 0; i < S.n_rows; i++) free(S.rows[i].ts);
    for (int m = 0; S.models && m < S.n_models; m++)
        if (S.models[m].fd >= 0) close(S.models[m].fd);
    if (draft_fd >= 0) close(draft_fd);
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

