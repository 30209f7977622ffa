// cmd_convert.c — `ironlm convert HF_DIR OUT.gguf [--type T] [--drafter-layout assistant|mtp]
// [-t N] [--no-progress]`: the options of ilm_convert (src/tools/convert.h) and its errors.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "simd/types.h"
#include "tools/convert.h"

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "ironlm: error: convert: %s%s\n"
                    "usage: ironlm convert HF_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] "
                    "[--drafter-layout assistant|mtp] [-t N] [--no-progress]\n", what, arg ? arg : "");
    return 2;
}

int ilm_cmd_convert(int argc, char **argv) {
    ilm_convert_opts o;
    ilm_convert_opts_default(&o);
    o.progress = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--type") || !strcmp(a, "--drafter-layout")) {
            if (i + 1 >= argc) return usage_error("option needs a value: ", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--type")) {
                static const struct { const char *name; int type; } types[] = {
                    {"f32", ILM_TYPE_F32}, {"f16", ILM_TYPE_F16}, {"bf16", ILM_TYPE_BF16},
                    {"q8_0", ILM_TYPE_Q8_0}, {"q4_0", ILM_TYPE_Q4_0}};
                o.type = -2;
                for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
                    if (!strcasecmp(v, types[k].name)) o.type = types[k].type;
                if (o.type == -2) return usage_error("--type must be f32, f16, bf16, q8_0 or q4_0, not ", v);
            } else if (!strcmp(v, "assistant")) {
                o.drafter_layout = ILM_DRAFTER_ASSISTANT;
            } else if (!strcmp(v, "mtp")) {
                o.drafter_layout = ILM_DRAFTER_MTP;
            } else {
                return usage_error("--drafter-layout must be assistant or mtp, not ", v);
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs("usage: ironlm convert HF_DIR OUT.gguf [options]\n"
                  "  HF_DIR                  a Hugging Face checkpoint (config.json, safetensors, tokenizer)\n"
                  "  OUT.gguf                the GGUF to write (temp file + rename; never the input)\n"
                  "  --type T                f32|f16|bf16|q8_0|q4_0 (default: the checkpoint's precision)\n"
                  "  --drafter-layout L      assistant (default) | mtp: the GGUF layout of an MTP drafter\n"
                  "  -t, --threads N         conversion threads, 1..1024 (default: the physical cores)\n"
                  "  --no-progress           no progress bar\n"
                  "  -h, --help              this help\n",
                  stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return usage_error("option needs a value: ", a);
            long n;
            ilm_err perr;
            if (ilm_parse_long(a, argv[++i], 1, 1024, &n, &perr)) return usage_error(perr.msg, NULL);
            o.n_threads = (int)n;
        } else if (!strcmp(a, "--no-progress")) {
            o.progress = false;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option ", a);
        } else if (!o.hf_dir) {
            o.hf_dir = a;
        } else if (!o.out) {
            o.out = a;
        } else {
            return usage_error("unexpected argument ", a);
        }
    }
    if (!o.hf_dir || !o.out) return usage_error("needs HF_DIR and OUT.gguf", NULL);
    ilm_err err;
    double t0 = ilm_now();
    if (ilm_convert(&o, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    if (o.progress) fprintf(stderr, "convert: wrote %s in %.1f s\n", o.out, ilm_now() - t0);
    return 0;
}
