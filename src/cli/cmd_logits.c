// cmd_logits.c — `ironlm logits`: raw float32 logits after every position of a token list
// (docs/design.md, the numerical interface). No BOS is added.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "gen/engine.h"
#include "tools/convert.h"

int ilm_cmd_logits(int argc, char **argv) {
    ilm_engine_opts eo;
    ilm_engine_opts_default(&eo);
    eo.verbose = false;
    const char *tokens = NULL, *out = NULL;
    ilm_err err;
    for (int i = 1; i < argc; i++) {
        int r = ilm_engine_parse_opt(&eo, argc, argv, &i, &err);
        if (r < 0) goto bad;
        if (r) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs("usage: ironlm logits -m MODEL.gguf --tokens IDS -o OUT.f32 [options]\n"
                  "  -m, --model FILE     the model\n"
                  "  --tokens IDS         token ids 2,17,300 (no BOS added)\n"
                  "  -o OUT.f32           [n_tokens][n_vocab] float32 (temp file + rename)\n"
                  "  -t, --threads N      threads, 1..4096\n"
                  "  --threads-force      keep -t above the usable CPUs\n"
                  "  --kv-type f16|f32    KV cache type\n"
                  "  --act q8|bf16|f32    activations of Q4_0/Q8_0 matmuls\n"
                  "  -b, --batch-size N   tokens per forward pass\n"
                  "  -c, --ctx-size N     context length (default: the token count)\n"
                  "  --numa MODE          off|distribute|interleave|replicate\n"
                  "  -v                   log lines on stderr\n"
                  "  -h, --help           this help\n",
                  stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "-v")) eo.verbose = true;
        else {
            ilm_fail(&err, "logits: unknown or incomplete option %s", argv[i]);
            goto bad;
        }
    }
    if (!tokens || !out || !eo.model) {
        ilm_fail(&err, "usage: ironlm logits -m MODEL.gguf --tokens 2,17,300 -o OUT.f32 [--kv-type f16|f32] [--act q8|bf16|f32] [-t N]");
        goto bad;
    }
    int32_t *ids;
    int n;
    if (ilm_parse_int_list(tokens, &ids, &n, &err)) goto bad;
    if (n == 0) {
        free(ids);
        ilm_fail(&err, "logits: --tokens is empty");
        goto bad;
    }
    if (!eo.n_ctx) eo.n_ctx = n;
    ilm_engine e;
    // -m HF_DIR: converted into a memfd, loaded as /proc/self/fd/N (the mapping outlives the fd)
    char mpath[4096];
    bool w4a16;
    int mfd, orc = ilm_convert_resolve_model(eo.model, mpath, sizeof mpath, &mfd, &w4a16, &err);
    if (!orc) ilm_convert_pick_act(&eo, w4a16);
    if (!orc) {
        eo.model = mpath;
        orc = ilm_engine_open(&e, &eo, &err);
    }
    if (mfd >= 0) close(mfd);
    if (orc) {
        free(ids);
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    const int V = e.model->n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)V);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n);
    int rc = 1;
    ilm_outfile of = {0};
    if (!logits || !pos) {
        ilm_fail(&err, "out of memory for %d x %d logits", n, V);
        goto done;
    }
    for (int i = 0; i < n; i++) pos[i] = i;
    ilm_kv *kvp = &e.kv[0];
    ilm_batch b = {n, ids, pos, NULL, NULL};
    if (ilm_forward(e.fwd, &kvp, 1, &b, logits, NULL, &err)) goto done;
    // Through a temp file + rename (base/util.h ilm_out_open): a full disk leaves no partial
    // OUT, and a device, FIFO or directory at OUT is refused.
    if (ilm_out_open(&of, out, &err)) goto done;
    if (fwrite(logits, sizeof(float), (size_t)n * (size_t)V, of.f) != (size_t)n * (size_t)V) {
        ilm_fail(&err, "cannot write %s: %s", out, strerror(errno));
        goto done;
    }
    if (ilm_out_commit(&of, &err)) goto done;
    rc = 0;
done:
    ilm_out_abort(&of);
    free(logits);
    free(pos);
    free(ids);
    ilm_engine_close(&e);
    if (rc) fprintf(stderr, "ironlm: error: %s\n", err.msg);
    return rc;
bad:
    fprintf(stderr, "ironlm: error: %s\n", err.msg);
    return 2;
}
