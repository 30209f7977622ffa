// engine.h — what every model-running command sets up: kernels, thread pool, verifier,
// forward-pass scratch and one KV cache; plus the command-line options they share.
#pragma once
#include <stdbool.h>

#include "model/forward.h"
#include "model/kv.h"
#include "model/model.h"
#include "runtime/threadpool.h"

typedef struct {
    const char *model;     // -m
    int n_threads;         // -t (0: physical cores); capped at the CPUs of the affinity mask
    bool threads_force;    // --threads-force: keep an -t above the usable CPUs
    int numa;              // --numa
    int n_ctx;             // -c (0: 8192, capped at the model's)
    int kv_type;           // --kv-type f16|f32
    int act;               // --act q8|bf16|f32 (ilm_acts: Q8, W4A16 fast, W4A16 exact)
    bool act_given;        // --act was on the command line (else a W4A16 checkpoint picks bf16)
    int max_batch;         // -b
    int n_seq;             // KV caches to create (parallel sequences)
    bool verbose;          // log lines on stderr
} ilm_engine_opts;

typedef struct {
    ilm_engine_opts opt;
    ilm_pool *pool;
    ilm_model *model;
    ilm_fwd *fwd;
    ilm_kv *kv;            // [n_seq]
    int n_ctx;
} ilm_engine;

void ilm_engine_opts_default(ilm_engine_opts *o);
// Parses one shared option at argv[*i] (advancing *i past its value). Returns 1 if it was
// one, 0 if not, -1 on a bad value (message in err).
int ilm_engine_parse_opt(ilm_engine_opts *o, int argc, char **argv, int *i, ilm_err *err);
int ilm_engine_open(ilm_engine *e, const ilm_engine_opts *o, ilm_err *err);
void ilm_engine_close(ilm_engine *e);
// Initializes the kernel dispatch table once (IRONLM_ISA honoured).
int ilm_engine_init_kernels(ilm_err *err);
