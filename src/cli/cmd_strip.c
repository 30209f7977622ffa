// cmd_strip.c — `ironlm strip IN OUT [--key K]...`: ilm_gguf_strip_file (src/tools/strip.h)
// with the keys given, by default the build-host paths that imatrix quantization leaves.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "tools/strip.h"

static const char STRIP_HELP[] =
    "usage: ironlm strip IN.gguf OUT.gguf [--key K]...\n"
    "  IN.gguf      the GGUF to rewrite (tensors copied byte-identical)\n"
    "  OUT.gguf     the output (temp file + rename; an OUT that is not a regular file is refused)\n"
    "  --key K      drop metadata key K (repeatable; default: the quantize.imatrix.* path keys)\n"
    "  -h, --help   this help\n";

int ilm_cmd_strip(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(STRIP_HELP, stdout);
            return 0;
        }
    const char *in = NULL, *out = NULL;
    const char **keys = calloc((size_t)argc + 2, sizeof *keys);
    int n_keys = 0;
    if (!keys) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--key")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ironlm: error: strip: --key needs a value\n");
                free(keys);
                return 2;
            }
            keys[n_keys++] = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ironlm: error: strip: unknown option %s\n", argv[i]);
            free(keys);
            return 2;
        } else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else {
            fprintf(stderr, "ironlm: error: strip: unexpected argument %s\n", argv[i]);
            free(keys);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "ironlm: error: usage: ironlm strip IN OUT [--key K]...\n");
        free(keys);
        return 2;
    }
    if (!n_keys) {  // the build-host path leaks of imatrix quantization
        keys[n_keys++] = "quantize.imatrix.file";
        keys[n_keys++] = "quantize.imatrix.dataset";
    }
    ilm_err err;
    int removed;
    int rc = ilm_gguf_strip_file(in, out, keys, n_keys, &removed, &err);
    free(keys);
    if (rc) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "strip: removed %d metadata key%s, wrote %s\n", removed, removed == 1 ? "" : "s", out);
    return 0;
}
