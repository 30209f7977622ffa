// cmd_bench_opts.c — the options of `ironlm bench` (see the usage below) and the list of
// tests they ask for.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_bench.h"

static void usage(FILE *f) {
    fputs("usage: ironlm bench -m MODEL.gguf[,MODEL2...] [tests] [options]\n"
          "  -m, --model FILES       models, comma-separated\n"
          "  -p N[,..]               prefill tests of N tokens\n"
          "  -n N[,..]               decode tests of N tokens\n"
          "  -pg P,G                 prompt + generation test (repeatable)\n"
          "  -d, --depth D[,..]      with D tokens already in the cache\n"
          "  --draft, -md FILE       MTP drafter: speculative sweep over --draft-max\n"
          "  --draft-max N[,..]      draft lengths to sweep\n"
          "  --prompt-file F         the speculative tests' prompt\n"
          "  -r N                    repetitions, 1..1000 (default 5)\n"
          "  -t N[,..]               thread counts\n"
          "  --threads-force         keep -t above the usable CPUs\n"
          "  -o md|json|csv          output format\n"
          "  --no-warmup             no warm-up run\n"
          "  --read-bw GBS           skip the bandwidth probe: this read bandwidth for bw%\n"
          "  -b, -c, --kv-type, --act, --numa   engine options as for run\n"
          "  --kernels               kernel microbenchmarks (ironlm bench --kernels --help)\n"
          "  -h, --help              this help\n",
          f);
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

int ilm_benchcli_parse(bench_opts *o, int argc, char **argv, ilm_err *err) {
    bool pp_given = false, tg_given = false;
    ilm_engine_opts_default(&o->eo);
    o->eo.verbose = false;
    o->warmup = true;
    o->reps = 5;
    o->out = OUT_MD;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
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
                long r;
                if (ilm_parse_long(a, v, 1, 1000, &r, err)) return ilm_fail_prefix(err, "bench");
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
                if (ilm_parse_double(a, v, 0.001, 1e6, false, &o->read_bw, err))
                    return ilm_fail_prefix(err, "bench (GB/s)");
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
int ilm_benchcli_tests(const bench_opts *o, test_spec **out, int *n_out, ilm_err *err) {
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

void ilm_benchcli_test_name(const test_spec *t, char *buf, size_t n) {
    int k = 0;
    switch (t->kind) {
    case T_PP: k = snprintf(buf, n, "pp%d", t->n_prompt); break;
    case T_TG: k = snprintf(buf, n, "tg%d", t->n_gen); break;
    case T_PG: k = snprintf(buf, n, "pp%d+tg%d", t->n_prompt, t->n_gen); break;
    default: k = snprintf(buf, n, "tg%d dm%d", t->n_gen, t->draft_max); break;
    }
    if (t->depth > 0 && k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, "@d%d", t->depth);
}

int ilm_benchcli_test_ctx(const test_spec *t, int n_spec_prompt) {
    switch (t->kind) {
    case T_PP: return t->depth + t->n_prompt;
    case T_TG: return (t->depth > 1 ? t->depth : 1) + t->n_gen;
    case T_PG: return t->n_prompt + t->n_gen;
    default: return n_spec_prompt + t->n_gen + t->draft_max + ILM_BENCH_MAX_VERIFY + 2;
    }
}
