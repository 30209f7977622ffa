// cmd_loadtest.c — `ironlm loadtest --url URL [--concurrency 1,2,4,8] ...`: runs
// ilm_loadtest_run_level (src/serve/loadtest.h) per concurrency level and prints one row each
// (markdown table, or JSON lines with --json); the first distinct errors go to stderr.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "serve/loadtest.h"

// A number with prec decimals, "-" for NaN.
static const char *num(char *b, size_t cap, double v, int prec) {
    if (isnan(v)) snprintf(b, cap, "-");
    else snprintf(b, cap, "%.*f", prec, v);
    return b;
}

// The same for JSON: null for NaN.
static const char *jnum(char *b, size_t cap, double v) {
    if (isnan(v) || isinf(v)) snprintf(b, cap, "null");
    else snprintf(b, cap, "%.3f", v);
    return b;
}

static void print_row(const ilm_loadtest_level *l) {
    char b[12][32];
    double acc = l->has_draft && l->draft_n > 0 ? 100.0 * (double)l->draft_accepted / (double)l->draft_n : NAN;
    printf("| %4d | %4d | %3d | %6d | %7.2f | %8s | %10s | %8s | %8s | %8s | %7s | %7s | %7s | %6s |\n",
           l->concurrency, l->ok, l->errors, l->cancelled, l->wall_s, num(b[0], 32, l->agg_tps, 1),
           num(b[1], 32, l->stream_tps, 1), num(b[2], 32, l->ttft_ms[0], 1), num(b[3], 32, l->ttft_ms[1], 1),
           num(b[4], 32, l->ttft_ms[2], 1), num(b[5], 32, l->itl_ms[0], 1), num(b[6], 32, l->itl_ms[1], 1),
           num(b[7], 32, l->itl_ms[2], 1), isnan(acc) ? "-" : (snprintf(b[8], 32, "%.1f%%", acc), b[8]));
    fflush(stdout);
}

static void print_json(const ilm_loadtest_level *l) {
    char b[16][32];
    double acc = l->has_draft && l->draft_n > 0 ? (double)l->draft_accepted / (double)l->draft_n : NAN;
    printf("{\"concurrency\":%d,\"requests\":%d,\"ok\":%d,\"errors\":%d,\"cancelled\":%d,\"wall_s\":%s,"
           "\"tokens\":%lld,\"gen_tps\":%s,\"stream_tps\":%s,"
           "\"ttft_ms\":{\"p50\":%s,\"p90\":%s,\"p99\":%s},\"itl_ms\":{\"p50\":%s,\"p90\":%s,\"p99\":%s},"
           "\"e2e_ms\":{\"p50\":%s,\"p90\":%s,\"p99\":%s},",
           l->concurrency, l->requests, l->ok, l->errors, l->cancelled, jnum(b[0], 32, l->wall_s),
           (long long)l->tokens, jnum(b[1], 32, l->agg_tps), jnum(b[2], 32, l->stream_tps),
           jnum(b[3], 32, l->ttft_ms[0]), jnum(b[4], 32, l->ttft_ms[1]), jnum(b[5], 32, l->ttft_ms[2]),
           jnum(b[6], 32, l->itl_ms[0]), jnum(b[7], 32, l->itl_ms[1]), jnum(b[8], 32, l->itl_ms[2]),
           jnum(b[9], 32, l->e2e_ms[0]), jnum(b[10], 32, l->e2e_ms[1]), jnum(b[11], 32, l->e2e_ms[2]));
    if (l->has_draft)
        printf("\"draft_n\":%lld,\"draft_n_accepted\":%lld,\"acceptance\":%s}\n", (long long)l->draft_n,
               (long long)l->draft_accepted, jnum(b[12], 32, acc));
    else
        printf("\"draft_n\":null,\"draft_n_accepted\":null,\"acceptance\":null}\n");
    fflush(stdout);
}

int ilm_cmd_loadtest(int argc, char **argv) {
    ilm_loadtest_opts o;
    ilm_err err;
    if (ilm_loadtest_parse_args(argc, argv, &o, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 2;
    }
    if (o.help) {
        fputs(ilm_loadtest_usage, stdout);
        return 0;
    }
    char **prompts, *store;
    int n_prompts;
    if (ilm_loadtest_prompts(&o, &prompts, &n_prompts, &store, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    if (!o.json) {
        printf("loadtest: %s%s, %d requests per level, max_tokens %d, temperature %g, %d prompts%s\n\n", o.url,
               o.chat ? "/v1/chat/completions" : "/v1/completions", o.requests, o.max_tokens, o.temperature,
               n_prompts, o.cancel_frac > 0 ? ", some cancelled by the client" : "");
        printf("| conc |   ok | err | cancel |  wall s |  gen t/s | stream t/s | TTFT p50 | TTFT p90 | TTFT p99 |"
               " ITL p50 | ITL p90 | ITL p99 | accept |\n");
        printf("|-----:|-----:|----:|-------:|--------:|---------:|-----------:|---------:|---------:|---------:|"
               "--------:|--------:|--------:|-------:|\n");
        fflush(stdout);
    }
    int total_errors = 0, rc = 0;
    for (int i = 0; i < o.n_levels; i++) {
        ilm_loadtest_level l;
        if (ilm_loadtest_run_level(&o, prompts, n_prompts, o.levels[i], &l, &err)) {
            fprintf(stderr, "ironlm: error: %s\n", err.msg);
            rc = 1;
            break;
        }
        if (o.json) print_json(&l);
        else print_row(&l);
        for (int k = 0; k < l.n_errs; k++)
            fprintf(stderr, "loadtest: concurrency %d: error: %s\n", l.concurrency, l.errs[k]);
        total_errors += l.errors;
    }
    if (!o.json && !rc)
        printf("\nms: TTFT = time to the first content token, ITL = gap between content chunks; gen t/s = all "
               "tokens / wall; stream t/s = mean per-request decode speed; accept = draft tokens accepted / drafted\n");
    if (total_errors) {
        fprintf(stderr, "ironlm: error: loadtest: %d request%s failed\n", total_errors, total_errors == 1 ? "" : "s");
        rc = 1;
    }
    free(prompts);
    free(store);
    return rc;
}
