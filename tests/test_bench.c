// test_bench.c — `ironlm bench` (src/tools/bench.c, src/cli/cmd_bench.c): the real binary on the tiny
// hf/ fixtures; checks every column of the json/md/csv outputs is present with sane types and
// values. Never speed: that is what the benchmark itself is for.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "format/json.h"

static bool have(const char *rel) { return access(t_fixture(rel), R_OK) == 0; }

// Runs a bench command line (after "ironlm bench"), returns stdout (malloc'd) and the status.
static int bench(const char *args, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s bench %s 2>/dev/null", t_bin(), args);
    return t_run(cmd, out);
}

static const ilm_json *num(const ilm_json *o, const char *k) {
    const ilm_json *v = ilm_json_get(o, k);
    CHECK_MSG(v && v->type == JSON_NUM, "field %s missing or not a number", k);
    return v && v->type == JSON_NUM ? v : NULL;
}

static const char *str(const ilm_json *o, const char *k) {
    const ilm_json *v = ilm_json_get(o, k);
    CHECK_MSG(v && v->type == JSON_STR && v->len > 0, "field %s missing or not a non-empty string", k);
    return v && v->type == JSON_STR ? v->str : "";
}

// The llama-bench fields plus ironlm's, with types and values a reader can rely on.
static void check_row(const ilm_json *r, int reps) {
    CHECK_STR(str(r, "model_filename"), "dense-f32.gguf");
    CHECK(strstr(str(r, "model_type"), "gemma4") != NULL);
    str(r, "kernels");
    str(r, "test");
    const ilm_json *v;
    if ((v = num(r, "model_size"))) CHECK(v->num > 1e6 && v->num < 1e8);     // 4 MB of f32 weights
    if ((v = num(r, "model_n_params"))) CHECK(v->num > 1e5 && v->num < 1e8);
    if ((v = num(r, "n_threads"))) CHECK(v->num >= 1);
    if ((v = num(r, "n_prompt"))) CHECK(v->num >= 0);
    if ((v = num(r, "n_gen"))) CHECK(v->num >= 0);
    if ((v = num(r, "n_depth"))) CHECK(v->num >= 0);
    const ilm_json *avg = num(r, "avg_ts"), *sd = num(r, "stddev_ts");
    if (avg) CHECK(avg->num > 0 && isfinite(avg->num));
    if (sd) CHECK(sd->num >= 0 && isfinite(sd->num));
    const ilm_json *s = ilm_json_get(r, "samples_ts");
    CHECK_MSG(s && s->type == JSON_ARR, "samples_ts missing or not an array");
    if (s && s->type == JSON_ARR) {
        CHECK_EQ(s->len, reps);
        double mean = 0;
        for (size_t i = 0; i < s->len; i++) {
            CHECK(s->items[i].type == JSON_NUM && s->items[i].num > 0);
            mean += s->items[i].num / (double)s->len;
        }
        if (avg) CHECK_NEAR(mean, avg->num, 1e-3 * avg->num);
    }
    if ((v = num(r, "gb_s"))) CHECK(v->num > 0 && isfinite(v->num));
    if ((v = num(r, "bw_pct"))) CHECK(v->num > 0 && isfinite(v->num));
}

static ilm_json *parse(const char *out) {
    ilm_err err;
    ilm_json *j = ilm_json_parse(out, strlen(out), &err);
    CHECK_MSG(j != NULL, "bench json does not parse: %s", j ? "" : err.msg);
    if (j && j->type != JSON_ARR) {
        CHECK_MSG(0, "bench json is not an array");
        ilm_json_free(j);
        return NULL;
    }
    return j;
}

TEST(bench_json_plain) {
    if (!have("hf/dense-f32.gguf")) {
        t_skip("fixture hf/dense-f32.gguf missing");
        return;
    }
    char args[1024], *out = NULL;
    snprintf(args, sizeof args, "-m %s -p 16 -n 8 -pg 8,4 -r 2 -t 1 -o json", t_fixture("hf/dense-f32.gguf"));
    CHECK_EQ(bench(args, &out), 0);
    ilm_json *j = out ? parse(out) : NULL;
    if (j) {
        CHECK_EQ(j->len, 3);
        const char *tests[] = {"pp16", "tg8", "pp8+tg4"};
        const int np[] = {16, 0, 8}, ng[] = {0, 8, 4};
        for (size_t i = 0; i < j->len && i < 3; i++) {
            const ilm_json *r = &j->items[i];
            check_row(r, 2);
            CHECK_STR(str(r, "test"), tests[i]);
            const ilm_json *v;
            if ((v = num(r, "n_prompt"))) CHECK_EQ(v->num, np[i]);
            if ((v = num(r, "n_gen"))) CHECK_EQ(v->num, ng[i]);
            if ((v = num(r, "n_threads"))) CHECK_EQ(v->num, 1);
            CHECK(ilm_json_get(r, "draft_max") == NULL);
        }
    }
    ilm_json_free(j);
    free(out);
}

TEST(bench_json_depth) {
    if (!have("hf/dense-f32.gguf")) {
        t_skip("fixture hf/dense-f32.gguf missing");
        return;
    }
    char args[1024], *out = NULL;
    snprintf(args, sizeof args, "-m %s -n 4 --depth 0,20 -r 1 --read-bw 10 -o json",
             t_fixture("hf/dense-f32.gguf"));
    CHECK_EQ(bench(args, &out), 0);
    ilm_json *j = out ? parse(out) : NULL;
    if (j) {
        CHECK_EQ(j->len, 2);
        if (j->len == 2) {
            check_row(&j->items[0], 1);
            check_row(&j->items[1], 1);
            CHECK_STR(str(&j->items[1], "test"), "tg4@d20");
            const ilm_json *v = num(&j->items[1], "n_depth");
            if (v) CHECK_EQ(v->num, 20);
        }
    }
    ilm_json_free(j);
    free(out);
}

TEST(bench_json_speculative) {
    if (!have("hf/dense-f32.gguf") || !have("hf/mtp-plain-f32.gguf")) {
        t_skip("hf/ fixtures missing");
        return;
    }
    char args[1024], *out = NULL;
    snprintf(args, sizeof args, "-m %s --draft %s --draft-max 0,2 -n 8 -r 2 --read-bw 10 -o json",
             t_fixture("hf/dense-f32.gguf"), t_fixture("hf/mtp-plain-f32.gguf"));
    CHECK_EQ(bench(args, &out), 0);
    ilm_json *j = out ? parse(out) : NULL;
    if (j) {
        CHECK_EQ(j->len, 2);
        for (size_t i = 0; i < j->len && i < 2; i++) {
            const ilm_json *r = &j->items[i], *v;
            check_row(r, 2);
            if ((v = num(r, "n_gen"))) CHECK_EQ(v->num, 8);
            if ((v = num(r, "draft_max"))) CHECK_EQ(v->num, i ? 2 : 0);
            if ((v = num(r, "accept_rate"))) CHECK(v->num >= 0 && v->num <= 1);
            if ((v = num(r, "mean_accepted"))) CHECK(v->num >= 0 && v->num <= 2);
            if ((v = num(r, "decode_ms"))) CHECK(v->num > 0);
            if ((v = num(r, "draft_step_ratio"))) CHECK(v->num > 0);
            const ilm_json *acc = ilm_json_get(r, "accept_at"), *vr = ilm_json_get(r, "verify_ratio");
            CHECK(acc && acc->type == JSON_ARR && acc->len == (i ? 2u : 0u));
            CHECK(vr && vr->type == JSON_ARR && vr->len == 4);  // N = 1..4 always
            for (size_t k = 0; vr && k < vr->len; k++) CHECK(vr->items[k].num > 0);
        }
    }
    ilm_json_free(j);
    free(out);
}

// Lines of `out` that start with `prefix`.
static int count_lines(const char *out, const char *prefix) {
    int n = 0;
    for (const char *p = out; p && *p;) {
        if (!strncmp(p, prefix, strlen(prefix))) n++;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

TEST(bench_md_and_csv) {
    if (!have("hf/dense-f32.gguf")) {
        t_skip("fixture hf/dense-f32.gguf missing");
        return;
    }
    char args[1024], *out = NULL;
    snprintf(args, sizeof args, "-m %s -p 8 -n 4 -r 1 --read-bw 10", t_fixture("hf/dense-f32.gguf"));
    CHECK_EQ(bench(args, &out), 0);
    CHECK(out && strstr(out, "read bandwidth: 10.0 GB/s"));
    CHECK(out && strstr(out, "| model | size | params | kernels | threads | test | t/s | GB/s | bw% |"));
    CHECK_EQ(count_lines(out, "| dense-f32.gguf |"), 2);
    CHECK(out && strstr(out, "| pp8 |") && strstr(out, "| tg4 |"));
    free(out);
    out = NULL;
    // -p 0 skips prefill (llama-bench's convention)
    snprintf(args, sizeof args, "-m %s -p 0 -n 4 -r 1 --read-bw 10", t_fixture("hf/dense-f32.gguf"));
    CHECK_EQ(bench(args, &out), 0);
    CHECK_EQ(count_lines(out, "| dense-f32.gguf |"), 1);
    CHECK(out && !strstr(out, "| pp") && strstr(out, "| tg4 |"));
    free(out);
    out = NULL;
    snprintf(args, sizeof args, "-m %s -p 8 -n 4 -r 2 --read-bw 10 -o csv", t_fixture("hf/dense-f32.gguf"));
    CHECK_EQ(bench(args, &out), 0);
    CHECK_EQ(count_lines(out, "model_filename,model_type,model_size,model_n_params,kernels,n_threads,test,n_prompt,"
                              "n_gen,n_depth,avg_ts,stddev_ts,samples_ts,gb_s,bw_pct,draft_max,accept_rate"),
             1);
    CHECK_EQ(count_lines(out, "\"dense-f32.gguf\","), 2);
    // every row has the header's 17 fields (samples_ts is quoted and ';'-separated)
    for (const char *p = out ? strchr(out, '\n') : NULL; p && p[1];) {
        p++;
        int commas = 0;
        bool q = false;
        for (; *p && *p != '\n'; p++) {
            if (*p == '"') q = !q;
            else if (*p == ',' && !q) commas++;
        }
        CHECK_EQ(commas, 16);
    }
    free(out);
}

TEST(bench_md_speculative_tables) {
    if (!have("hf/dense-f32.gguf") || !have("hf/mtp-plain-f32.gguf")) {
        t_skip("hf/ fixtures missing");
        return;
    }
    char args[1024], *out = NULL;
    snprintf(args, sizeof args, "-m %s --draft %s --draft-max 0,1 -n 4 -r 1 --read-bw 10 --no-warmup",
             t_fixture("hf/dense-f32.gguf"), t_fixture("hf/mtp-plain-f32.gguf"));
    CHECK_EQ(bench(args, &out), 0);
    CHECK(out && strstr(out, "| test | draft-max | t/s | speedup | acceptance | accepted/round | acc@1 |"));
    CHECK(out && strstr(out, "| tg4 | 0 (baseline) |"));
    CHECK(out && strstr(out, "| N | verify(N+1) ms | verify(N+1)/decode(1) |"));
    CHECK_EQ(count_lines(out, "| 4 | "), 1);  // cost rows N = 1..4
    free(out);
}

TEST(bench_bad_options) {
    char cmd[1024];
    const char *bad[] = {"", "-m x.gguf -o xml", "-m x.gguf -r 0", "-m x.gguf -pg 512", "-m x.gguf --bogus",
                         "-m x.gguf --draft-max 2", "-m /nonexistent.gguf -n 1 -r 1 --read-bw 1",
                         "-m x.gguf -p 0 -n 0", "-m x.gguf -n -1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s bench %s 2>&1", t_bin(), bad[i]);
        char *out = NULL;
        int rc = t_run(cmd, &out);
        CHECK_MSG(rc != 0, "bench %s: exit 0", bad[i]);
        CHECK_MSG(out && strstr(out, "ironlm: error: "), "bench %s: no error line", bad[i]);
        free(out);
    }
}
