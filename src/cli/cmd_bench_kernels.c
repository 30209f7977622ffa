// cmd_bench_kernels.c — `ironlm bench --kernels [-t N] [--isa a,b] [--types q4_0,..] [-n 1,2,4]
// [--rows R] [--cols K] [--mem MiB] [--min-time S]`: the options of the kernel sweep
// (src/tools/bench_kernels.h) and its table on stdout, a row as each measurement is made.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "tools/bench_kernels.h"

static void usage(FILE *f) {
    fputs("usage: ironlm bench --kernels [-t N] [--isa avx2,avx512,...] [--types q4_0,q8_0,q4_0f,q8_0f,f16,bf16,f32]\n"
          "                    [-n 1,2,4,8,32] [--rows 4096] [--cols 4096] [--mem MiB] [--min-time 0.3]\n"
          "  q4_0/q8_0: weights x Q8 activations (mm_q8); q4_0f/q8_0f: W4A16/W8A16 (mm_f32);\n"
          "  q4_0a/q8_0a: the fast W4A16 path of --act bf16 (mm_fa; sets without one are skipped).\n"
          "  Default: every SIMD set this CPU runs (scalar only when named), every type.\n",
          f);
}


static void print_start(void *ctx, double bw, const char *pool) {
    const ilm_kbench_opts *o = ctx;
    printf("kernel benchmark: %d x %d weights, %.0f MiB streamed per pass (LLC %zu MiB), %s\n", o->rows, o->cols,
           (double)o->mem / (1 << 20), ilm_kbench_llc_bytes() >> 20, pool);
    printf("read bandwidth (STREAM-like sum, %d threads): %.1f GB/s\n\n", o->n_threads, bw);
    printf("%-11s %-11s %4s %9s %8s %6s %9s %8s\n", "isa", "kernel", "n", "ms/pass", "GB/s", "%bw", "GFLOP/s", "t/t(n=1)");
}

static void print_row(void *ctx, const ilm_kbench_row *r) {
    (void)ctx;
    printf("%-11s %-11s %4d %9.2f %8.1f %5.0f%% %9.1f", r->isa, r->kernel, r->n, r->secs * 1e3, r->gb_s, r->bw_pct,
           r->gflop_s);
    if (r->secs_n1 > 0) printf(" %8.2f", r->secs / r->secs_n1);
    printf("\n");
    fflush(stdout);
}

// The numeric options and their ranges (each value range-checked by base/util.h's parsers).
static int num_opt(const char *a, const char *v, ilm_kbench_opts *o, ilm_err *err) {
    long x;
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (ilm_parse_long(a, v, 1, 256, &x, err)) return -1;
        o->n_threads = (int)x;
    } else if (!strcmp(a, "--rows")) {
        if (ilm_parse_long(a, v, 1, 1 << 20, &x, err)) return -1;
        o->rows = (int)x;
    } else if (!strcmp(a, "--cols")) {
        if (ilm_parse_long(a, v, 32, 1 << 20, &x, err)) return -1;
        if (x % 32) return ilm_fail(err, "--cols: bad value '%s' (expected a multiple of 32 in 32..%d)", v, 1 << 20);
        o->cols = (int)x;
    } else if (!strcmp(a, "--mem")) {
        if (ilm_parse_long(a, v, 1, 1 << 20, &x, err)) return -1;   // MiB: up to 1 TiB
        o->mem = (size_t)x << 20;
    } else if (!strcmp(a, "--min-time")) {
        if (ilm_parse_double(a, v, 0, 3600, false, &o->min_time, err)) return -1;
    } else if (!strcmp(a, "-n")) {
        int32_t *ns = NULL;
        int cnt = 0;
        if (ilm_parse_int_list(v, &ns, &cnt, err) != 0 || cnt < 1 || cnt > 16) {
            free(ns);
            return ilm_fail(err, "-n: bad value '%s' (expected 1 to 16 batch widths, each 1..%d)", v, ILM_KBENCH_N_MAX);
        }
        for (int k = 0; k < cnt; k++)
            if (ns[k] < 1 || ns[k] > ILM_KBENCH_N_MAX) {
                ilm_fail(err, "-n: bad batch width %d in '%s' (expected 1..%d)", ns[k], v, ILM_KBENCH_N_MAX);
                free(ns);
                return -1;
            }
        for (int k = 0; k < cnt; k++) o->ns[k] = ns[k];
        o->n_ns = cnt;
        free(ns);
    } else {
        return 0;
    }
    return 1;
}

int ilm_cmd_bench_kernels(int argc, char **argv) {
    ilm_kbench_opts o = {.n_threads = 2, .rows = 4096, .cols = 4096, .min_time = 0.3, .mem = 0,
                         .ns = {1, 2, 4, 8, 32}, .n_ns = 5};
    ilm_err err;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--kernels") || !strcmp(a, "bench") || (i == 0 && a[0] != '-')) continue;
        if (!v) { fprintf(stderr, "ironlm: error: %s needs a value\n", a); return 2; }
        int r = num_opt(a, v, &o, &err);
        if (r < 0) {
            fprintf(stderr, "ironlm: error: %s\n", err.msg);
            return 2;
        }
        if (r) {
        } else if (!strcmp(a, "--isa")) o.isa_list = v;
        else if (!strcmp(a, "--types")) o.type_list = v;
        else { fprintf(stderr, "ironlm: error: unknown bench option '%s'\n", a); usage(stderr); return 2; }
        i++;
    }
    if (ilm_kbench_check(&o, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 2;
    }
    if (!o.mem) o.mem = ilm_kbench_stream_bytes();

    ilm_kbench_report out = {print_start, print_row, &o};
    if (ilm_kbench_run(&o, &out, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    return 0;
}
