// cmd_quantize.c — `ironlm quantize IN.gguf OUT.gguf --type q4_0|q8_0 [--pure] [-t N]
// [--no-progress]`: the options of ilm_quantize_file (src/tools/quantize.h), its errors on
// stderr and the time it took.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "simd/kernels.h"
#include "tools/quantize.h"

static int usage_error(const char *what) {
    fprintf(stderr, "ironlm: error: quantize: %s\n"
                    "usage: ironlm quantize IN.gguf OUT.gguf --type q4_0|q8_0 [--pure] [-t N]\n", what);
    return 2;
}

static const char QUANTIZE_HELP[] =
    "usage: ironlm quantize IN.gguf OUT.gguf --type q4_0|q8_0 [options]\n"
    "  IN.gguf          F32/F16/BF16 model\n"
    "  OUT.gguf         the output (temp file + rename; an OUT that is not a regular file is refused)\n"
    "  --type T         q4_0 or q8_0\n"
    "  --pure           every matrix in T (no Q8_0/F16 exceptions)\n"
    "  -t, --threads N  threads, 1..1024\n"
    "  --no-progress    no progress lines\n"
    "  -h, --help       this help\n";

int ilm_cmd_quantize(int argc, char **argv) {
    ilm_quantize_opts o = {.type = -1, .progress = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(QUANTIZE_HELP, stdout);
            return 0;
        }
        if (!strcmp(a, "--type") || !strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return usage_error("option needs a value");
            const char *v = argv[++i];
            if (!strcmp(a, "--type")) {
                if (!strcmp(v, "q4_0") || !strcmp(v, "Q4_0")) o.type = ILM_TYPE_Q4_0;
                else if (!strcmp(v, "q8_0") || !strcmp(v, "Q8_0")) o.type = ILM_TYPE_Q8_0;
                else return usage_error("--type must be q4_0 or q8_0");
            } else {
                long n;
                ilm_err e;
                if (ilm_parse_long(a, v, 1, 1024, &n, &e)) return usage_error(e.msg);
                o.n_threads = (int)n;
            }
        } else if (!strcmp(a, "--pure")) {
            o.pure = true;
        } else if (!strcmp(a, "--no-progress")) {
            o.progress = false;
        } else if (a[0] == '-' && a[1]) {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown option %s", a);
            return usage_error(msg);
        } else if (!o.in) {
            o.in = a;
        } else if (!o.out) {
            o.out = a;
        } else {
            char msg[300];
            snprintf(msg, sizeof msg, "unexpected argument %s", a);
            return usage_error(msg);
        }
    }
    if (!o.in || !o.out) return usage_error("needs IN and OUT");
    if (o.type < 0) return usage_error("--type is required");
    ilm_err err;
    double t0 = ilm_now();
    if (ilm_quantize_file(&o, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "quantize: wrote %s (%s%s) in %.1f s\n", o.out, o.type == ILM_TYPE_Q4_0 ? "q4_0" : "q8_0",
            o.pure ? ", pure" : "", ilm_now() - t0);
    return 0;
}
