// loadtest.h — `ironlm loadtest`: concurrent streaming requests against an OpenAI-compatible
// server (ironlm serve, llama.cpp, ik_llama.cpp), measuring TTFT, inter-token latency,
// throughput and the server's draft acceptance per concurrency level.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

#define ILM_LT_MAX_LEVELS 32
#define ILM_LT_MAX_ERRS 4      // distinct error messages kept per level
#define ILM_LT_CANCEL_AFTER 3  // a cancelled request closes the connection after this many content chunks

typedef struct {
    char host[256], base[512];  // from --url
    int port;
    const char *url;
    int levels[ILM_LT_MAX_LEVELS], n_levels;  // --concurrency (default 1)
    int requests;                             // --requests per level (default 16)
    const char *prompt_file;                  // NULL: the built-in prompts
    int max_tokens;                           // default 64
    const char *api_key, *model;              // NULL: no Authorization header / no "model" field
    bool chat;                                // --endpoint chat (default) or completions
    double cancel_frac;                       // 0..1
    double temperature;                       // default 0
    uint64_t seed;                            // request selection for --cancel-frac, and the request's "seed"
    double timeout_s;                         // connect / read / write timeout (default 120)
    bool json;
    bool help;
} ilm_loadtest_opts;

// Parses argv (argv[0] is the command name). Returns 0 (o->help set for -h/--help), or -1 with
// err naming the option and the bad value.
int ilm_loadtest_parse_args(int argc, char **argv, ilm_loadtest_opts *o, ilm_err *err);
extern const char ilm_loadtest_usage[];

// The prompts: one per non-empty line of o->prompt_file, or the built-in list. *prompts is a
// malloc'd array of pointers into *store (also malloc'd; NULL for the built-in list).
int ilm_loadtest_prompts(const ilm_loadtest_opts *o, char ***prompts, int *n, char **store, ilm_err *err);

// Whether request idx (0-based, within a level) is one the client cancels: evenly spread picks,
// floor or ceil of n * cancel_frac among any n consecutive requests, their phase set by the seed.
bool ilm_loadtest_cancels(uint64_t seed, int idx, double cancel_frac);

// Nearest-rank percentile (p in [0, 100]) of v[0..n) sorted ascending; NAN when n == 0.
double ilm_percentile_sorted(const double *v, size_t n, double p);
void ilm_sort_doubles(double *v, size_t n);

// One level's result. Latency figures cover the completed (ok) requests; NAN where none.
typedef struct {
    int concurrency, requests;
    int ok, errors, cancelled;
    double wall_s;
    int64_t tokens;      // generated tokens of the ok requests (usage.completion_tokens, else chunks)
    double agg_tps;      // tokens / wall_s
    double stream_tps;   // mean over ok requests of (tokens - 1) / (last chunk - first chunk)
    double ttft_ms[3];   // p50, p90, p99
    double itl_ms[3];    // p50, p90, p99 over every gap between content chunks
    double e2e_ms[3];    // p50, p90, p99 end-to-end
    int64_t draft_n, draft_accepted;  // sums over requests whose final chunk had timings.draft_n
    bool has_draft;
    int n_errs;                             // distinct error messages kept (first ILM_LT_MAX_ERRS)
    char errs[ILM_LT_MAX_ERRS][400];
} ilm_loadtest_level;

// Runs o->requests streaming requests with `concurrency` client threads. Returns 0 (request
// failures are counted in out, not returned), or -1 with err when the run could not start.
int ilm_loadtest_run_level(const ilm_loadtest_opts *o, char *const *prompts, int n_prompts, int concurrency,
                           ilm_loadtest_level *out, ilm_err *err);
