// engine.c — shared set-up of the model-running commands. See engine.h.
#include "gen/engine.h"

#include <sched.h>
#include <sys/stat.h>

#include "runtime/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ilm_engine_opts_default(ilm_engine_opts *o) {
    memset(o, 0, sizeof *o);
    o->kv_type = ILM_TYPE_F16;
    o->max_batch = 512;
    o->n_seq = 1;
    o->verbose = true;
}

static int int_arg(int argc, char **argv, int *i, long lo, long hi, int *out, ilm_err *err) {
    if (*i + 1 >= argc) return ilm_fail(err, "%s needs a value", argv[*i]);
    long v;
    if (ilm_parse_long(argv[*i], argv[*i + 1], lo, hi, &v, err)) return -1;
    *out = (int)v;
    (*i)++;
    return 0;
}

int ilm_engine_parse_opt(ilm_engine_opts *o, int argc, char **argv, int *i, ilm_err *err) {
    const char *a = argv[*i];
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (*i + 1 >= argc) return ilm_fail(err, "%s needs a file", a);
        o->model = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) return int_arg(argc, argv, i, 1, 4096, &o->n_threads, err) ? -1 : 1;
    if (!strcmp(a, "--threads-force")) {
        o->threads_force = true;
        return 1;
    }
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) return int_arg(argc, argv, i, 1, 1 << 24, &o->n_ctx, err) ? -1 : 1;
    if (!strcmp(a, "-b") || !strcmp(a, "--batch-size"))
        return int_arg(argc, argv, i, 1, 1 << 16, &o->max_batch, err) ? -1 : 1;
    if (!strcmp(a, "--kv-type")) {
        if (*i + 1 >= argc) return ilm_fail(err, "--kv-type needs f16 or f32");
        const char *v = argv[++*i];
        if (!strcmp(v, "f16")) o->kv_type = ILM_TYPE_F16;
        else if (!strcmp(v, "f32")) o->kv_type = ILM_TYPE_F32;
        else return ilm_fail(err, "--kv-type: expected f16 or f32 (%s)", v);
        return 1;
    }
    if (!strcmp(a, "--act")) {
        if (*i + 1 >= argc) return ilm_fail(err, "--act needs q8, bf16 or f32");
        const char *v = argv[++*i];
        if (!strcmp(v, "f32")) o->act = ILM_ACTS_F32;
        else if (!strcmp(v, "bf16")) o->act = ILM_ACTS_BF16;
        else if (!strcmp(v, "q8") || !strcmp(v, "q8_0")) o->act = ILM_ACTS_Q8;
        else return ilm_fail(err, "--act: expected q8, bf16 or f32 (%s)", v);
        o->act_given = true;
        return 1;
    }
    if (!strcmp(a, "--numa")) {
        if (*i + 1 >= argc) return ilm_fail(err, "--numa needs off|distribute|interleave|replicate");
        const char *v = argv[++*i];
        if (!strcmp(v, "off")) o->numa = ILM_NUMA_OFF;
        else if (!strcmp(v, "distribute")) o->numa = ILM_NUMA_DISTRIBUTE;
        else if (!strcmp(v, "interleave")) o->numa = ILM_NUMA_INTERLEAVE;
        else if (!strcmp(v, "replicate")) o->numa = ILM_NUMA_REPLICATE;
        else return ilm_fail(err, "--numa: expected off|distribute|interleave|replicate (%s)", v);
        return 1;
    }
    return 0;
}

int ilm_engine_init_kernels(ilm_err *err) {
    char msg[256];
    if (ilm_kernels_init(msg, sizeof msg)) return ilm_fail(err, "%s", msg);
    return 0;
}

int ilm_engine_open(ilm_engine *e, const ilm_engine_opts *o, ilm_err *err) {
    memset(e, 0, sizeof *e);
    e->opt = *o;
    if (!o->model) return ilm_fail(err, "no model given (-m MODEL.gguf)");
    if (ilm_engine_init_kernels(err)) return -1;
    // More threads than CPUs this process may use (sched_getaffinity) only time-slice and
    // spin against each other: capped with a warning unless --threads-force (or a fake
    // machine from IRONLM_TOPOLOGY, which tests use to simulate larger ones).
    int n_threads = o->n_threads;
    cpu_set_t cs;
    const char *fake = getenv("IRONLM_TOPOLOGY");
    if (n_threads > 0 && !o->threads_force && !(fake && *fake) && sched_getaffinity(0, sizeof cs, &cs) == 0 &&
        CPU_COUNT(&cs) > 0 && n_threads > CPU_COUNT(&cs)) {
        fprintf(stderr, "ironlm: warning: -t %d is more than the %d CPUs this process may use; using %d "
                "(--threads-force keeps it)\n", n_threads, CPU_COUNT(&cs), CPU_COUNT(&cs));
        n_threads = CPU_COUNT(&cs);
        e->opt.n_threads = n_threads;
    }
    ilm_pool_opts po = {n_threads, o->numa, 1};
    if (ilm_pool_create(&e->pool, &po, err)) return -1;
    double t0 = ilm_now();
    // The packed weights are about the size of the file; check a placement (replicate: one
    // copy per node) fits before spending time on it.
    struct stat st;
    size_t weight_bytes = stat(o->model, &st) == 0 ? (size_t)st.st_size : 0;
    if (ilm_k->interleave > 1 && ilm_pool_placement_fits(e->pool, weight_bytes, err)) goto fail;
    if (ilm_model_load(&e->model, o->model, e->pool, err)) goto fail;
    const ilm_model *m = e->model;
    e->n_ctx = o->n_ctx ? o->n_ctx : 8192;
    if (m->n_ctx_train > 0 && e->n_ctx > m->n_ctx_train) {
        if (o->n_ctx && o->verbose)
            fprintf(stderr, "ironlm: context %d capped at the model's %d\n", e->n_ctx, m->n_ctx_train);
        e->n_ctx = m->n_ctx_train;
    }
    ilm_fwd_opts fo = {o->max_batch, e->n_ctx, o->act};
    if (ilm_fwd_create(&e->fwd, m, e->pool, &fo, err)) goto fail;
    e->kv = calloc((size_t)(o->n_seq > 0 ? o->n_seq : 1), sizeof *e->kv);
    if (!e->kv) {
        ilm_fail(err, "out of memory");
        goto fail;
    }
    size_t kv_bytes = 0;
    for (int s = 0; s < (o->n_seq > 0 ? o->n_seq : 1); s++) {
        if (ilm_kv_init(&e->kv[s], m, e->n_ctx, o->max_batch, o->kv_type, err)) goto fail;
        kv_bytes += e->kv[s].bytes;
    }
    if (o->verbose && o->numa != ILM_NUMA_OFF) {
        char place[256];
        ilm_pool_placement_describe(e->pool, m->packed_bytes, place, sizeof place);
        fprintf(stderr, "ironlm: %s\n", place);
    }
    if (o->verbose)
        fprintf(stderr,
                "ironlm: %s: %d layers, hidden %d, vocab %d; kernels %s; %s; load %.0f ms\n"
                "ironlm: KV cache %s, %d positions x %d sequence%s: %.1f MiB; packed weights %.1f MiB\n",
                o->model, m->n_layer, m->n_embd, m->n_vocab, ilm_k->name, ilm_pool_describe(e->pool),
                (ilm_now() - t0) * 1e3, o->kv_type == ILM_TYPE_F16 ? "f16" : "f32", e->n_ctx, o->n_seq,
                o->n_seq == 1 ? "" : "s", (double)kv_bytes / 1048576.0, (double)m->packed_bytes / 1048576.0);
    return 0;
fail:
    ilm_engine_close(e);
    return -1;
}

void ilm_engine_close(ilm_engine *e) {
    if (e->kv)
        for (int s = 0; s < (e->opt.n_seq > 0 ? e->opt.n_seq : 1); s++) ilm_kv_free(&e->kv[s]);
    free(e->kv);
    ilm_fwd_free(e->fwd);
    ilm_model_free(e->model);
    if (e->pool) ilm_pool_destroy(e->pool);
    memset(e, 0, sizeof *e);
}
