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

static void usage(void) {
    fprintf(stderr,
            "usage: ironlm serve -m MODEL.gguf [options]\n"
            "  --draft D.gguf (-md)  --draft-max N  --draft-p-min P  --spec-autotune\n"
            "  --parallel N (-np)  -c TOTAL_CTX  -t N  -b N  --kv-type f16|f32  --act q8|f32  --numa MODE\n"
            "  --host ADDR (127.0.0.1)  --port N (8080; 0: any)  --api-key KEY  --api-key-file F  --alias NAME\n"
            "  --max-body BYTES  --timeout S  --max-conn N  --max-queue N  -n N (default max_tokens)  --quiet\n");
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
            usage();
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
        usage();
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
