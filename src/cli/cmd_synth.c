// cmd_synth.c — `ironlm synth --variant V --type T -o FILE [--seed S] [--layers N]
// [--drafter] [-t N] [--vocab N] [--dry-run] [--no-progress]`, or `--hf DIR [--shards N]
// [--w4a16]` for a Hugging Face checkpoint instead of -o FILE: the options of ilm_synth_file
// (src/tools/synth.h), its errors on stderr and the time it took.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "simd/kernels.h"
#include "tools/synth.h"

static int usage_error(const char *what) {
    fprintf(stderr,
            "ironlm: error: synth: %s\n"
            "usage: ironlm synth --variant e2b|e4b|12b|26b-a4b|31b --type q4_0|q8_0|f16|bf16 -o FILE\n"
            "                    [--seed S] [--layers N] [--drafter] [-t N] [--vocab N] [--dry-run]\n"
            "       ironlm synth --variant V --hf DIR [--type bf16|f16|f32] [--shards N] [--w4a16] [...]\n",
            what);
    return 2;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int ilm_cmd_synth(int argc, char **argv) {
    ilm_synth_opts o = {.type = -1, .seed = 1, .progress = true};
    char msg[300];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long n;
        bool has_value = !strcmp(a, "--variant") || !strcmp(a, "--type") || !strcmp(a, "-o") ||
                         !strcmp(a, "--seed") || !strcmp(a, "--layers") || !strcmp(a, "-t") ||
                         !strcmp(a, "--threads") || !strcmp(a, "--vocab") ||
                         !strcmp(a, "--hf") || !strcmp(a, "--shards");
        if (has_value && i + 1 >= argc) {
            snprintf(msg, sizeof msg, "%s needs a value", a);
            return usage_error(msg);
        }
        if (!strcmp(a, "--variant")) {
            o.variant = argv[++i];
            if (!ilm_synth_variant_known(o.variant)) {
                snprintf(msg, sizeof msg, "unknown variant '%s'", o.variant);
                return usage_error(msg);
            }
        } else if (!strcmp(a, "--type")) {
            const char *t = argv[++i];
            o.type = !strcmp(t, "q4_0") ? ILM_TYPE_Q4_0 : !strcmp(t, "q8_0") ? ILM_TYPE_Q8_0
                   : !strcmp(t, "f16")  ? ILM_TYPE_F16  : !strcmp(t, "bf16") ? ILM_TYPE_BF16
                   : !strcmp(t, "f32")  ? ILM_TYPE_F32  : -1;
            if (o.type < 0) return usage_error("--type must be q4_0, q8_0, f16 or bf16");
        } else if (!strcmp(a, "--hf")) {
            o.hf_dir = argv[++i];
        } else if (!strcmp(a, "--shards")) {
            if (!parse_int(argv[++i], 1, 99999, &n)) return usage_error("--shards needs a count 1..99999");
            o.shards = (int)n;
        } else if (!strcmp(a, "--w4a16")) {
            o.w4a16 = true;
        } else if (!strcmp(a, "-o")) {
            o.out = argv[++i];
        } else if (!strcmp(a, "--seed")) {
            char *end;
            o.seed = strtoull(argv[++i], &end, 10);
            if (*end || !*argv[i]) return usage_error("--seed needs an unsigned integer");
        } else if (!strcmp(a, "--layers")) {
            if (!parse_int(argv[++i], 1, ILM_SYNTH_MAX_LAYERS, &n)) return usage_error("--layers needs a count 1..64");
            o.layers = (int)n;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!parse_int(argv[++i], 1, 1024, &n)) return usage_error("-t needs a thread count 1..1024");
            o.n_threads = (int)n;
        } else if (!strcmp(a, "--vocab")) {
            if (!parse_int(argv[++i], 1, ILM_SYNTH_VOCAB, &n)) return usage_error("--vocab needs a size up to 262144");
            o.vocab = (int)n;
        } else if (!strcmp(a, "--drafter")) {
            o.drafter = true;
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = true;
        } else if (!strcmp(a, "--no-progress")) {
            o.progress = false;
        } else {
            snprintf(msg, sizeof msg, "unknown argument %s", a);
            return usage_error(msg);
        }
    }
    if (!o.variant) return usage_error("--variant is required");
    if (o.hf_dir && o.type < 0) o.type = ILM_TYPE_BF16;
    if (o.type < 0) return usage_error("--type is required");
    if (o.type == ILM_TYPE_F32 && !o.hf_dir) return usage_error("--type f32 needs --hf");
    if ((o.shards || o.w4a16) && !o.hf_dir) return usage_error("--shards and --w4a16 need --hf");
    if (o.hf_dir && o.out) return usage_error("-o and --hf exclude each other");
    if (!o.out && !o.hf_dir && !o.dry_run) return usage_error("-o FILE is required");
    ilm_err err;
    uint64_t bytes = 0;
    double t0 = ilm_now();
    if (ilm_synth_file(&o, &bytes, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    double dt = ilm_now() - t0;
    if (!o.dry_run)
        fprintf(stderr, "synth: wrote %s: %.2f GiB in %.1f s (%.0f MB/s)\n", o.hf_dir ? o.hf_dir : o.out, (double)bytes / (1 << 30), dt,
                dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
    return 0;
}

