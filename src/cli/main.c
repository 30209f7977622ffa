// main.c — the ironlm command line: one binary, sub-commands (docs/design.md).
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "simd/kernels.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"run", ilm_cmd_run, "generate text from a prompt or chat, optionally with --draft DRAFTER.gguf"},
    {"serve", ilm_cmd_serve, "OpenAI-compatible HTTP server; --parallel N slots, each with the --draft drafter"},
    {"bench", ilm_cmd_bench, "llama-bench-style speed table (pp/tg, GB/s, % of bandwidth); --kernels"},
    {"logits", ilm_cmd_logits, "raw float32 logits after every position of --tokens (numerical interface)"},
    {"tokenize", ilm_cmd_tokenize, "text -> token ids"},
    {"detokenize", ilm_cmd_detokenize, "token ids -> text"},
    {"inspect", ilm_cmd_inspect, "GGUF metadata and tensor table (--json, --full)"},
    {"strip", ilm_cmd_strip, "rewrite a GGUF without chosen metadata keys (default: imatrix path leaks)"},
    {"quantize", ilm_cmd_quantize, "F32/F16/BF16 -> Q8_0/Q4_0, bit-exact with ggml"},
    {"convert", ilm_cmd_convert, "Hugging Face checkpoint (safetensors: Gemma 4, MTP drafter, W4A16) -> GGUF"},
    {"synth", ilm_cmd_synth, "write a random-weight GGUF with the exact shapes of a Gemma 4 variant"},
    {"loadtest", ilm_cmd_loadtest, "concurrent streaming requests against an OpenAI-compatible server: TTFT, ITL, t/s"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ironlm COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nironlm COMMAND --help lists the command's options; ironlm --version. See README.md.\n");
}

// --version: the version, the compiler, the kernel sets compiled in (those this CPU runs
// marked) and whether the topology comes from hwloc.
static void version(void) {
    printf("ironlm %s\n", ILM_VERSION);
#if defined(__clang__)
    printf("compiler: clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    printf("compiler: gcc %s\n", __VERSION__);
#else
    printf("compiler: unknown\n");
#endif
    printf("kernel sets:");
    for (const char *const *n = ilm_kernels_all(); *n; n++) printf(" %s%s", *n, ilm_kernels_get(*n) ? "" : " (not on this CPU)");
#if defined(ILM_HWLOC) && ILM_HWLOC
    printf("\nhwloc: yes\n");
#else
    printf("\nhwloc: no\n");
#endif
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        version();
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ironlm: error: unknown command '%s' (try ironlm --help)\n", argv[1]);
    return 2;
}
