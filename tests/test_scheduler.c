// test_scheduler.c — the slot scheduler: several slots sharing each verifier pass give every
// slot exactly the tokens a single run gives (greedy and sampled, with and without the drafter,
// staggered starts, mixed lengths); prompt-cache reuse gives the cold output and is refused
// once a sliding-window ring has overwritten what it needs; cancel and context-full end a job.
#include <stdlib.h>
#include <string.h>

#include "fixture_util.h"
#include "gen/scheduler.h"
#include "harness.h"

static int open_engine(const char *target, const char *drafter, int n_seq, int n_ctx, int max_batch, ilm_engine *e,
                       ilm_drafter **d) {
    ilm_engine_opts o;
    ilm_engine_opts_default(&o);
    o.n_ctx = n_ctx;
    o.n_seq = n_seq;
    o.max_batch = max_batch;
    return t_open_pair_with(target, drafter, &o, e, d);
}

typedef struct {
    int32_t prompt[64];
    int n_prompt, n_gen, draft_max;
    float temp;
    uint64_t seed;
} job_spec;

static void sampler_for(const job_spec *j, ilm_sampler *s) {
    ilm_sampler_params sp = ilm_sampler_default_params();
    sp.temperature = j->temp;
    sp.seed = j->seed;
    ilm_err err;
    ilm_sampler_init(s, &sp, &err);
}

// The single-run reference: the job alone on slot 0 from an empty cache.
static int32_t *single(ilm_engine *e, ilm_drafter *d, const job_spec *j, int *n_out) {
    ilm_sampler s;
    sampler_for(j, &s);
    t_collect c = {calloc((size_t)j->n_gen + 1, sizeof(int32_t)), 0};
    ilm_gen_opts o = {.n_predict = j->n_gen, .ignore_eos = true, .draft_max = j->draft_max, .on_token = t_collect_token, .ctx = &c};
    ilm_kv_truncate(&e->kv[0], 0);
    ilm_gen_stats st;
    ilm_err err;
    if (ilm_generate(e, j->draft_max ? d : NULL, &s, j->prompt, j->n_prompt, &o, &st, &err))
        t_fail(__FILE__, __LINE__, "%s", err.msg);
    ilm_sampler_free(&s);
    *n_out = c.n;
    return c.out;
}

typedef struct {
    t_collect c;
    ilm_end why;
    int ended;
    ilm_sampler s;
} running;

static void on_end(void *ctx, ilm_end why, const ilm_gen_stats *st, const char *error) {
    (void)st;
    (void)error;
    running *r = ctx;
    r->why = why;
    r->ended++;
}

static int submit(ilm_sched *s, int slot, const job_spec *j, running *r, bool reuse) {
    memset(r, 0, sizeof *r);
    sampler_for(j, &r->s);
    r->c.out = calloc((size_t)j->n_gen + 1, sizeof(int32_t));
    ilm_job job = {j->prompt, j->n_prompt, &r->s,
                   {.n_predict = j->n_gen, .ignore_eos = true, .draft_max = j->draft_max, .on_token = t_collect_token, .ctx = r},
                   false, reuse, on_end};
    ilm_err err;
    int rc = ilm_sched_submit(s, slot, &job, &err);
    if (rc) t_fail(__FILE__, __LINE__, "%s", err.msg);
    return rc;
}

// Runs jobs[0..n) on a scheduler of n_slots, submitting each as soon as a slot is free, and
// checks every output against its single run.
static void check_against_single(const char *target, const char *drafter, job_spec *jobs, int n, int n_slots) {
    ilm_engine e;
    ilm_drafter *d;
    if (open_engine(target, drafter, n_slots, 256, 16, &e, &d)) return;
    int32_t *ref[16];
    int n_ref[16];
    for (int i = 0; i < n; i++) ref[i] = single(&e, d, &jobs[i], &n_ref[i]);
    ilm_sched *s;
    ilm_err err;
    if (ilm_sched_create(&s, &e, d, n_slots, 4, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        goto out;
    }
    running run[16];
    int on_slot[16], next = 0, done = 0, steps = 0, max_active = 0;
    for (int k = 0; k < n_slots; k++) on_slot[k] = -1;
    while (done < n && steps < 10000) {
        for (int k = 0; k < n_slots && next < n; k++)
            if (!ilm_sched_busy(s, k)) {
                // stagger: a new job only every other step, so prefill meets decoding
                if (steps % 2) break;
                if (submit(s, k, &jobs[next], &run[next], false)) goto out_s;
                on_slot[k] = next++;
            }
        int a = ilm_sched_active(s);
        if (a > max_active) max_active = a;
        if (ilm_sched_step(s, &err)) {
            t_fail(__FILE__, __LINE__, "%s", err.msg);
            break;
        }
        steps++;
        for (int k = 0; k < n_slots; k++)
            if (on_slot[k] >= 0 && run[on_slot[k]].ended) {
                running *r = &run[on_slot[k]];
                int i = on_slot[k];
                CHECK_EQ(r->ended, 1);
                CHECK_EQ(r->why, ILM_END_LENGTH);
                CHECK_EQ(r->c.n, n_ref[i]);
                CHECK_MSG(r->c.n == n_ref[i] && !memcmp(r->c.out, ref[i], sizeof(int32_t) * (size_t)n_ref[i]),
                          "%s: job %d (draft-max %d, temp %.1f) differs from its single run", target, i,
                          jobs[i].draft_max, (double)jobs[i].temp);
                free(r->c.out);
                ilm_sampler_free(&r->s);
                on_slot[k] = -1;
                done++;
            }
    }
    CHECK_EQ(done, n);
    CHECK_EQ(max_active, n_slots);
out_s:
    ilm_sched_free(s);
out:
    for (int i = 0; i < n; i++) free(ref[i]);
    ilm_drafter_free(d);
    ilm_engine_close(&e);
}

static void make_jobs(job_spec *jobs, int n, int vocab, uint64_t seed, bool sampled) {
    for (int i = 0; i < n; i++) {
        job_spec *j = &jobs[i];
        memset(j, 0, sizeof *j);
        j->n_prompt = 3 + (int)(t_rand_u64(&seed) % 40);
        j->prompt[0] = 2;
        for (int k = 1; k < j->n_prompt; k++) j->prompt[k] = 3 + (int32_t)(t_rand_u64(&seed) % (uint64_t)(vocab - 3));
        j->n_gen = 5 + (int)(t_rand_u64(&seed) % 30);
        j->draft_max = (int)(i % 4);  // 0 (plain) .. 3
        j->temp = sampled && i % 2 ? 0.9f : 0.0f;
        j->seed = 77 + (uint64_t)i;
    }
}

TEST(scheduler_slots_equal_single_runs_pycoder) {
    job_spec jobs[10];
    make_jobs(jobs, 10, 1000, 1, true);
    check_against_single("models/pycoder/pycoder-bf16.gguf", "models/pycoder/pycoder-mtp-bf16.gguf", jobs, 10, 4);
}

TEST(scheduler_slots_equal_single_runs_hf_window8) {
    job_spec jobs[8];
    make_jobs(jobs, 8, 200, 2, false);
    check_against_single("hf/dense-f32.gguf", "hf/mtp-plain-f32.gguf", jobs, 8, 3);
}

TEST(scheduler_slots_equal_single_runs_moe) {
    job_spec jobs[6];
    make_jobs(jobs, 6, 200, 3, true);
    for (int i = 0; i < 6; i++) jobs[i].draft_max = 0;
    check_against_single("hf/moe-f32.gguf", NULL, jobs, 6, 2);
}

// Runs one job to its end on the scheduler; returns its tokens.
static int32_t *run_one(ilm_sched *s, int slot, const job_spec *j, bool reuse, int *n_out, int *cached) {
    running r;
    if (submit(s, slot, j, &r, reuse)) return NULL;
    *cached = ilm_sched_stats(s, slot)->n_cached;
    ilm_err err;
    for (int k = 0; k < 10000 && !r.ended; k++)
        if (ilm_sched_step(s, &err)) {
            t_fail(__FILE__, __LINE__, "%s", err.msg);
            break;
        }
    ilm_sampler_free(&r.s);
    *n_out = r.c.n;
    return r.c.out;
}

// Multi-turn reuse: the second prompt extends the first prompt + its answer. With the cache
// kept (warm) the output equals a cold run on another slot; the ring of a sliding layer
// (window 8 + batch 4 = 12 slots) still holds what the continuation needs when the shared
// prefix is recent, and reuse is refused (0 kept) when it has overwritten it.
TEST(scheduler_prompt_cache_warm_equals_cold) {
    ilm_engine e;
    ilm_drafter *d;
    if (open_engine("hf/dense-f32.gguf", "hf/mtp-plain-f32.gguf", 2, 256, 4, &e, &d)) return;
    ilm_sched *s;
    ilm_err err;
    if (ilm_sched_create(&s, &e, d, 2, 3, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        goto out;
    }
    job_spec a = {.n_prompt = 20, .n_gen = 10, .draft_max = 3}, b, c;
    uint64_t seed = 9;
    a.prompt[0] = 2;
    for (int k = 1; k < a.n_prompt; k++) a.prompt[k] = 3 + (int32_t)(t_rand_u64(&seed) % 190);
    int n, cached;
    int32_t *ga = run_one(s, 0, &a, true, &n, &cached);
    CHECK_EQ(cached, 0);
    // b = a's prompt + a's answer + 6 new tokens: everything but the last answer token is cached
    b = a;
    memcpy(b.prompt + a.n_prompt, ga, sizeof(int32_t) * (size_t)n);
    b.n_prompt = a.n_prompt + n;
    for (int k = 0; k < 6; k++) b.prompt[b.n_prompt++] = 3 + (int32_t)(t_rand_u64(&seed) % 190);
    CHECK_EQ(ilm_sched_pick(s, b.prompt, b.n_prompt), 0);
    CHECK_EQ(ilm_sched_reusable(s, 0, b.prompt, b.n_prompt), a.n_prompt + n - 1);
    int nw, nc, cw;
    int32_t *warm = run_one(s, 0, &b, true, &nw, &cw);
    int32_t *cold = run_one(s, 1, &b, false, &nc, &cached);
    CHECK_EQ(cw, a.n_prompt + n - 1);
    CHECK_EQ(cached, 0);
    CHECK(nw == nc && !memcmp(warm, cold, sizeof(int32_t) * (size_t)nc));
    // c shares only a's first 10 tokens: the sliding rings of slot 0 have moved on (they hold
    // the last 12 positions), so nothing may be kept, and the output is still the cold one
    c = a;
    for (int k = 10; k < c.n_prompt; k++) c.prompt[k] = 3 + (int32_t)(t_rand_u64(&seed) % 190);
    CHECK_EQ(ilm_sched_reusable(s, 0, c.prompt, c.n_prompt), 0);
    int n1, n2, c1, c2;
    int32_t *w2 = run_one(s, 0, &c, true, &n1, &c1);
    int32_t *k2 = run_one(s, 1, &c, false, &n2, &c2);
    CHECK_EQ(c1, 0);
    CHECK(n1 == n2 && !memcmp(w2, k2, sizeof(int32_t) * (size_t)n2));
    free(ga);
    free(warm);
    free(cold);
    free(w2);
    free(k2);
    ilm_sched_free(s);
out:
    ilm_drafter_free(d);
    ilm_engine_close(&e);
}

TEST(scheduler_prompt_cache_full_attention_reuses_long_prefix) {
    // pycoder with a large batch: every sliding ring covers the whole context, so any common
    // prefix is kept; warm equals cold
    ilm_engine e;
    ilm_drafter *d;
    if (open_engine("models/pycoder/pycoder-bf16.gguf", "models/pycoder/pycoder-mtp-bf16.gguf", 2, 256, 256, &e, &d))
        return;
    ilm_sched *s;
    ilm_err err;
    if (ilm_sched_create(&s, &e, d, 2, 3, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        goto out;
    }
    job_spec a = {.n_prompt = 40, .n_gen = 12, .draft_max = 3}, b;
    uint64_t seed = 5;
    a.prompt[0] = 2;
    for (int k = 1; k < a.n_prompt; k++) a.prompt[k] = 3 + (int32_t)(t_rand_u64(&seed) % 900);
    int n, c0, c1, c2, n1, n2;
    free(run_one(s, 0, &a, true, &n, &c0));
    b = a;
    b.prompt[30] = 5;  // diverges at 30
    int32_t *w = run_one(s, 0, &b, true, &n1, &c1);
    int32_t *k = run_one(s, 1, &b, false, &n2, &c2);
    CHECK_EQ(c1, 30);
    CHECK(n1 == n2 && !memcmp(w, k, sizeof(int32_t) * (size_t)n2));
    free(w);
    free(k);
    ilm_sched_free(s);
out:
    ilm_drafter_free(d);
    ilm_engine_close(&e);
}

TEST(scheduler_cancel_and_context_full) {
    ilm_engine e;
    ilm_drafter *d;
    if (open_engine("models/pycoder/pycoder-bf16.gguf", "models/pycoder/pycoder-mtp-bf16.gguf", 2, 64, 16, &e, &d))
        return;
    ilm_sched *s;
    ilm_err err;
    if (ilm_sched_create(&s, &e, d, 2, 3, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        goto out;
    }
    job_spec j = {.n_prompt = 4, .prompt = {2, 621, 2797, 271}, .n_gen = 1000, .draft_max = 3};
    running r0, r1;
    submit(s, 0, &j, &r0, false);
    submit(s, 1, &j, &r1, false);
    CHECK(ilm_sched_submit(s, 0, &(ilm_job){j.prompt, 4, &r0.s, {.n_predict = 1}, false, false, on_end}, &err) != 0);
    for (int k = 0; k < 3; k++) ilm_sched_step(s, &err);
    ilm_sched_cancel(s, 0);
    ilm_sched_step(s, &err);
    CHECK_EQ(r0.ended, 1);
    CHECK_EQ(r0.why, ILM_END_CANCEL);
    CHECK(!ilm_sched_busy(s, 0));
    CHECK(ilm_sched_busy(s, 1));
    for (int k = 0; k < 200 && !r1.ended; k++) ilm_sched_step(s, &err);
    CHECK_EQ(r1.ended, 1);
    CHECK_EQ(r1.why, ILM_END_CONTEXT);
    CHECK_EQ(r1.c.n, 64 - 4 + 1);  // every position filled, plus the last token
    // a prompt longer than the context is refused
    job_spec big = {.n_prompt = 65, .n_gen = 1};
    CHECK(ilm_sched_submit(s, 0, &(ilm_job){big.prompt, 65, &r0.s, {.n_predict = 1}, false, false, on_end}, &err) != 0);
    CHECK(strstr(err.msg, "does not fit") != NULL);
    free(r0.c.out);
    free(r1.c.out);
    ilm_sampler_free(&r0.s);
    ilm_sampler_free(&r1.s);
    ilm_sched_free(s);
out:
    ilm_drafter_free(d);
    ilm_engine_close(&e);
}
