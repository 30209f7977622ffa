// cmd_serve.c — `ironlm serve`: the OpenAI-compatible server (serve/server.h). Parses the
// flags, blocks SIGINT/SIGTERM in every thread (the server takes them through a signalfd) and
// runs it. See README.md "serve" for every flag.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "gen/spec.h"
#include "serve/server.h"

static void usage(FILE *f) {
    fputs("usage: ironlm serve -m MODEL.gguf [options]\n"
          "  -m, --model FILE        the model\n"
          "  --draft, -md FILE       MTP drafter for speculative decoding\n"
          "  --draft-max N           drafts per round\n"
          "  --draft-p-min P         end a chain below this drafter probability, 0..1\n"
          "  --spec-autotune         choose the draft length from measured costs\n"
          "  --parallel, -np N       slots (parallel sequences)\n"
          "  -c, --ctx-size N        total context, shared by the slots\n"
          "  -t, --threads N         threads (capped at the usable CPUs)\n"
          "  --threads-force         keep -t above the usable CPUs\n"
          "  -b, --batch-size N      tokens per forward pass\n"
          "  --kv-type f16|f32       KV cache type\n"
          "  --act q8|bf16|f32       activations of Q4_0/Q8_0 matmuls\n"
          "  --numa MODE             off|distribute|interleave|replicate\n"
          "  --host ADDR             listen address (default 127.0.0.1)\n"
          "  --port N                port (default 8080; 0: any)\n"
          "  --api-key KEY           require Authorization: Bearer KEY\n"
          "  --api-key-file F        the key from the first line of F\n"
          "  --alias NAME            the model name in the API\n"
          "  --max-body BYTES        largest request body\n"
          "  --timeout S             read timeout per connection\n"
          "  --max-conn N            open connections at most\n"
          "  --max-queue N           queued requests at most\n"
          "  -n N                    default max_tokens\n"
          "  --quiet                 no log lines\n"
          "  -h, --help              this help\n",
          f);
}

// The key is the file's first line (surrounding whitespace removed).
static char *read_key_file(const char *path, ilm_err *err) {
    char *data;
    size_t n;
    if (ilm_read_file(path, &data, &n, err)) return NULL;
    size_t a = 0;
    while (a < n && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r' || data[a] == '\n')) a++;
    size_t b = a;
    while (b < n && data[b] != '\n' && data[b] != '\r') b++;
    while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t')) b--;
    if (b == a) {
        free(data);
        ilm_fail(err, "--api-key-file %s: the file is empty", path);
        return NULL;
    }
    memmove(data, data + a, b - a);
    data[b - a] = 0;
    return data;
}

int ilm_cmd_serve(int argc, char **argv) {
    ilm_serve_opts o;
    ilm_serve_opts_default(&o);
    o.engine.verbose = true;
    ilm_err err;
    char *key_from_file = NULL;
    for (int i = 1; i < argc; i++) {
        int r = ilm_engine_parse_opt(&o.engine, argc, argv, &i, &err);
        if (r < 0) goto bad;
        if (r) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        if (!strcmp(a, "--spec-autotune")) o.autotune = true;
        else if (!strcmp(a, "--quiet")) o.verbose = o.engine.verbose = false;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!v) {
            ilm_fail(&err, "serve: unknown option or missing value: %s", a);
            goto bad;
        } else if (!strcmp(a, "--draft") || !strcmp(a, "-md")) o.draft = argv[++i];
        else if (!strcmp(a, "--host")) o.host = argv[++i];
        else if (!strcmp(a, "--alias")) o.alias = argv[++i];
        else if (!strcmp(a, "--api-key")) o.api_key = argv[++i];
        else if (!strcmp(a, "--api-key-file")) {
            free(key_from_file);
            if (!(key_from_file = read_key_file(argv[++i], &err))) goto bad;
            o.api_key = key_from_file;
        } else {
            static const struct {
                const char *name, *alt;
                long lo, hi;
            } ints[] = {{"--draft-max", NULL, 0, ILM_SPEC_MAX_DRAFT}, {"--parallel", "-np", 1, 256},
                        {"--port", NULL, 0, 65535},                   {"--max-body", NULL, 1024, 1L << 30},
                        {"--timeout", NULL, 1, 86400},                {"--max-conn", NULL, 1, 65536},
                        {"--max-queue", NULL, 0, 1 << 20},            {"-n", "--n-predict", -1, 1 << 24}};
            int k = -1;
            for (int j = 0; j < (int)(sizeof ints / sizeof ints[0]); j++)
                if (!strcmp(a, ints[j].name) || (ints[j].alt && !strcmp(a, ints[j].alt))) k = j;
            if (k >= 0) {
                if (ilm_parse_long(a, argv[++i], ints[k].lo, ints[k].hi, &x, &err)) goto bad;
                switch (k) {
                case 0: o.draft_max = (int)x; break;
                case 1: o.n_parallel = (int)x; break;
                case 2: o.port = (int)x; break;
                case 3: o.max_body = (size_t)x; break;
                case 4: o.timeout_s = (int)x; break;
                case 5: o.max_conn = (int)x; break;
                case 6: o.max_queue = (int)x; break;
                case 7: o.n_predict = (int)x; break;
                }
            } else if (!strcmp(a, "--draft-p-min")) {
                if (ilm_parse_float(a, argv[++i], 0, 1, &o.draft_p_min, &err)) goto bad;
            } else {
                ilm_fail(&err, "serve: unknown option %s", a);
                goto bad;
            }
        }
    }
    if (!o.engine.model) {
        usage(stderr);
        ilm_fail(&err, "serve: need -m MODEL.gguf");
        goto bad;
    }
    // -c is the total context (llama.cpp's meaning): the engine gets each slot's share
    o.n_ctx_total = o.engine.n_ctx;
    o.engine.n_ctx = 0;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int rc = ilm_serve(&o, &err);
    free(key_from_file);
    if (rc) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    return 0;
bad:
    free(key_from_file);
    fprintf(stderr, "ironlm: error: %s\n", err.msg);
    return 2;
}
