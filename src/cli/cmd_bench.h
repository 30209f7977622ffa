// cmd_bench.h — internal to src/cli/cmd_bench*.c (`ironlm bench`), not an API: the options,
// the tests they ask for, the result rows and the calls between the three files:
//   cmd_bench.c        the entry point and the runs (models x threads x tests)
//   cmd_bench_opts.c   the options and the test list
//   cmd_bench_table.c  the tables (md, json, csv; the speculative sweep's summary)
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "gen/engine.h"
#include "gen/spec.h"
#include "tools/bench.h"

enum { OUT_MD, OUT_JSON, OUT_CSV };   // -o
enum { T_PP, T_TG, T_PG, T_SPEC };     // prefill, decode, prompt+generation, speculative

// One test: a kind and its sizes (draft_max -1 outside the speculative sweep).
typedef struct {
    int kind, n_prompt, n_gen, depth, draft_max;
} test_spec;

// One table row: a test on one model with one thread count, over its repetitions.
typedef struct {
    int model, n_threads;
    test_spec t;
    char test[64];
    double *ts;                 // [reps] tokens/s per repetition
    int reps;
    double avg, sd, gb_s, bw_pct;
    double peak_pct;            // prefill rows: int8 ops/s (2·matmul weights·t/s) of the int8 peak; else 0
    bool cache_resident;        // the streamed weights fit the LLC: bw% may exceed 100
    // speculative rows
    double accept_rate, mean_accepted;
    double accept_at[ILM_SPEC_MAX_DRAFT];
    int n_accept_at;
    const ilm_bench_costs *costs;
    // accumulated over the repetitions
    double bytes_sum, secs_sum;
    long drafted_at[ILM_SPEC_MAX_DRAFT], accepted_at[ILM_SPEC_MAX_DRAFT], drafted, accepted, rounds;
} bench_row;

// A model on the command line and what the table says about it.
typedef struct {
    const char *path, *name;  // path: what the engine opens (a memfd path for an HF directory)
    char resolved[4096];
    int fd;                   // the memfd of a converted HF directory, else -1
    bool w4a16;               // a W4A16 checkpoint directory (default --act bf16)
    ilm_bench_model_info info;
    char kernels[32];
} model_entry;

// The command line.
typedef struct {
    ilm_engine_opts eo;
    bool ctx_given, warmup;
    const char **models;
    int n_models;
    int32_t *threads, *pp, *tg, *depth, *dmax;
    int n_threads, n_pp, n_tg, n_depth, n_dmax;
    int32_t pg[64][2];
    int n_pg;
    int reps, out;
    double read_bw;             // --read-bw: given bandwidth (GB/s), no probe
    const char *draft, *prompt_file;
    const char *draft_name;  // --draft as given (draft may be a memfd path)
} bench_opts;

// What a run has measured: the rows, the models, the read bandwidth per thread count and the
// speculative component costs.
typedef struct {
    bench_row *rows;
    int n_rows, cap_rows;
    model_entry *models;
    int n_models;
    int bw_threads[64];
    double bw[64];
    char bw_method[64][192];    // how the probe got bw[i] (or "given")
    double peak[64];            // int8 dot peak in GOPS at bw_threads[i] (0: none)
    size_t llc;                 // last-level cache bytes
    int n_bw;
    double load_start, load_end;  // 1-minute load average around the run (-1: unknown)
    ilm_bench_costs costs[64];  // one per (model, threads) in speculative mode
    char costs_label[64][160];
    int n_costs;
} bench_state;

// Fills *o from the command line (argv[0] = "bench"). Returns 0, 1 after printing the usage
// (-h), or -1 with err set.
int ilm_benchcli_parse(bench_opts *o, int argc, char **argv, ilm_err *err);
// The tests in run order (*out malloc'd).
int ilm_benchcli_tests(const bench_opts *o, test_spec **out, int *n_out, ilm_err *err);
// A test's name in the table: "pp512", "tg128@d4096", "pp512+tg128", "tg128 dm3".
void ilm_benchcli_test_name(const test_spec *t, char *buf, size_t n);
// Context positions a test needs (with room for a verification past the end).
int ilm_benchcli_test_ctx(const test_spec *t, int n_spec_prompt);

// The tables of a finished run: md on stdout; or json / csv on stdout with the load line and
// the speculative summary on stderr.
void ilm_benchcli_print(const bench_state *S, int out);
