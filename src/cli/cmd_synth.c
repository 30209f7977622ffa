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

static bool parse_int(const char *opt, const char *s, long lo, long hi, long *out, ilm_err *err) {
    return ilm_parse_long(opt, s, lo, hi, out, err) == 0;
}

static const char SYNTH_HELP[] =
    "usage: ironlm synth --variant V --type T -o FILE [options]\n"
    "       ironlm synth --variant V --hf DIR [--type bf16|f16|f32] [--shards N] [--w4a16] [options]\n"
    "  --variant V      e2b, e4b, 12b, 26b-a4b or 31b\n"
    "  --type T         q4_0, q8_0, f16 or bf16\n"
    "  -o FILE          the output (temp file + rename; an OUT that is not a regular file is refused)\n"
    "  --seed S         0..18446744073709551615 (default 1)\n"
    "  --layers N       1..64 layers instead of the variant's\n"
    "  --vocab N        vocabulary size, a multiple of 2048 up to 262144\n"
    "  --drafter        write the variant's MTP drafter instead\n"
    "  --hf DIR         write a Hugging Face checkpoint directory instead (config, safetensors, tokenizer)\n"
    "  --shards N       with --hf: N safetensors shards + model.safetensors.index.json, 1..99999\n"
    "  --w4a16          with --hf: the projections as a compressed-tensors W4A16 checkpoint\n"
    "  -t, --threads N  threads, 1..1024\n"
    "  --dry-run        print the plan, write nothing\n"
    "  --no-progress    no progress lines\n"
    "  -h, --help       this help\n";

int ilm_cmd_synth(int argc, char **argv) {
    ilm_synth_opts o = {.type = -1, .seed = 1, .progress = true};
    char msg[300];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(SYNTH_HELP, stdout);
            return 0;
        }
        long n;
        ilm_err e;
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
            if (!parse_int(a, argv[++i], 1, 99999, &n, &e)) return usage_error(e.msg);
            o.shards = (int)n;
        } else if (!strcmp(a, "--w4a16")) {
            o.w4a16 = true;
        } else if (!strcmp(a, "-o")) {
            o.out = argv[++i];
        } else if (!strcmp(a, "--seed")) {
            uint64_t seed;
            if (ilm_parse_u64(a, argv[++i], &seed, &e)) return usage_error(e.msg);
            o.seed = seed;
        } else if (!strcmp(a, "--layers")) {
            if (!parse_int(a, argv[++i], 1, ILM_SYNTH_MAX_LAYERS, &n, &e)) return usage_error(e.msg);
            o.layers = (int)n;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!parse_int(a, argv[++i], 1, 1024, &n, &e)) return usage_error(e.msg);
            o.n_threads = (int)n;
        } else if (!strcmp(a, "--vocab")) {
            if (!parse_int(a, argv[++i], 1, ILM_SYNTH_VOCAB, &n, &e)) return usage_error(e.msg);
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

