// test_convert.c — `ironlm convert` against the reference converter's GGUFs (fixtures hf/):
// tensors byte-identical, metadata equal (the tokenizer keys once tools/convert_tokenizer.c is
// built), W4A16 → Q4_0 logits against transformers, the memfd path, and broken checkpoints.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "format/gguf_write.h"
#include "format/json.h"
#include "fixture_util.h"
#include "harness.h"
#include "simd/types.h"
#include "tools/convert.h"
#include "tools/convert_tokenizer.h"

static bool have_fixture(const char *rel) {
    struct stat s;
    if (stat(t_fixture(rel), &s) == 0) return true;
    t_skip("hf/ checkpoint fixtures missing");
    return false;
}

static int convert(const char *ckpt, const char *out, int type, int layout, ilm_err *err) {
    ilm_convert_opts o;
    ilm_convert_opts_default(&o);
    o.hf_dir = ckpt;
    o.out = out;
    o.type = type;
    o.drafter_layout = layout;
    return ilm_convert(&o, err);
}

// Every key equal (raw bytes, same order), tokenizer keys only when that part is built; every
// tensor equal in name, type, shape and bytes.
static void compare_gguf(const char *got_path, const char *ref_rel) {
    ilm_gguf *a, *b;
    ilm_err err;
    if (ilm_gguf_open(&a, got_path, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    if (ilm_gguf_open(&b, t_fixture(ref_rel), &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        ilm_gguf_close(a);
        return;
    }
    int64_t i = 0, j = 0;
    for (;;) {  // every key, the tokenizer's included, in the reference's order
        if (i >= a->n_kv || j >= b->n_kv) break;
        CHECK_STR(a->kv[i].key, b->kv[j].key);
        CHECK_MSG(a->kv[i].raw_len == b->kv[j].raw_len && !memcmp(a->kv[i].raw, b->kv[j].raw, a->kv[i].raw_len),
                  "%s: key %s differs", ref_rel, a->kv[i].key);
        i++, j++;
    }
    CHECK_MSG(i == a->n_kv && j == b->n_kv, "%s: key counts differ (%lld/%lld vs %lld/%lld)", ref_rel, (long long)i,
              (long long)a->n_kv, (long long)j, (long long)b->n_kv);
    CHECK_EQ(a->n_tensors, b->n_tensors);
    for (int64_t t = 0; t < a->n_tensors && t < b->n_tensors; t++) {
        const ilm_gguf_tensor *x = &a->tensors[t], *y = &b->tensors[t];
        CHECK_STR(x->name, y->name);
        bool same = x->type == y->type && x->n_dims == y->n_dims && x->bytes == y->bytes &&
                    !memcmp(x->ne, y->ne, sizeof x->ne) && !memcmp(x->data, y->data, x->bytes);
        CHECK_MSG(same, "%s: tensor %s differs", ref_rel, x->name);
    }
    ilm_gguf_close(a);
    ilm_gguf_close(b);
}

TEST(convert_dense_matches_reference) {
    if (!have_fixture("hf/checkpoints/dense-hf")) return;
    ilm_err err;
    const char *out = t_tmp("conv-dense.gguf");
    CHECK_MSG(convert(t_fixture("hf/checkpoints/dense-hf"), out, -1, ILM_DRAFTER_ASSISTANT, &err) == 0, "%s", err.msg);
    compare_gguf(out, "hf/dense-f32.gguf");
    // --type f32 on an f32 checkpoint: the same file
    const char *out2 = t_tmp("conv-dense2.gguf");
    CHECK_MSG(convert(t_fixture("hf/checkpoints/dense-hf"), out2, ILM_TYPE_F32, 0, &err) == 0, "%s", err.msg);
    size_t n1, n2;
    char *a = t_read(out, &n1), *b = t_read(out2, &n2);
    CHECK(a && b && n1 == n2 && !memcmp(a, b, n1));
    free(a);
    free(b);
}

TEST(convert_drafters_match_reference) {
    if (!have_fixture("hf/checkpoints/mtp-hf")) return;
    ilm_err err;
    const char *o1 = t_tmp("conv-mtp.gguf"), *o2 = t_tmp("conv-plain-asst.gguf"), *o3 = t_tmp("conv-plain-mtp.gguf");
    CHECK_MSG(convert(t_fixture("hf/checkpoints/mtp-hf"), o1, -1, ILM_DRAFTER_MTP, &err) == 0, "%s", err.msg);
    compare_gguf(o1, "hf/mtp-f32.gguf");
    CHECK_MSG(convert(t_fixture("hf/checkpoints/mtp-plain-hf"), o2, -1, ILM_DRAFTER_ASSISTANT, &err) == 0, "%s", err.msg);
    compare_gguf(o2, "hf/mtp-plain-assistant-f32.gguf");
    CHECK_MSG(convert(t_fixture("hf/checkpoints/mtp-plain-hf"), o3, -1, ILM_DRAFTER_MTP, &err) == 0, "%s", err.msg);
    compare_gguf(o3, "hf/mtp-plain-f32.gguf");
    // the upstream layout keeps the centroid head too
    const char *o4 = t_tmp("conv-mtp-asst.gguf");
    CHECK_MSG(convert(t_fixture("hf/checkpoints/mtp-hf"), o4, -1, ILM_DRAFTER_ASSISTANT, &err) == 0, "%s", err.msg);
    ilm_gguf *g;
    if (ilm_gguf_open(&g, o4, &err) == 0) {
        CHECK(ilm_gguf_find_tensor(g, "mtp.centroids.weight") && ilm_gguf_find_tensor(g, "mtp.token_ordering.weight"));
        CHECK(ilm_gguf_find_tensor(g, "rope_freqs.weight") && ilm_gguf_find_tensor(g, "nextn.pre_projection.weight"));
        const ilm_gguf_tensor *a = ilm_gguf_find_tensor(g, "mtp.token_ordering.weight");
        ilm_gguf *ref;
        if (a && ilm_gguf_open(&ref, t_fixture("hf/mtp-f32.gguf"), &err) == 0) {
            const ilm_gguf_tensor *b = ilm_gguf_find_tensor(ref, "mtp_token_ordering.weight");
            CHECK(b && a->bytes == b->bytes && !memcmp(a->data, b->data, a->bytes));
            ilm_gguf_close(ref);
        }
        ilm_gguf_close(g);
    }
}

static float *read_floats(const char *path, size_t *n) {
    size_t bytes;
    char *b = t_read(path, &bytes);
    *n = b ? bytes / 4 : 0;
    return (float *)b;
}

TEST(convert_w4a16_to_q4_0_logits) {
    if (!have_fixture("hf/checkpoints/dense-w4a16-hf")) return;
    ilm_err err;
    char out[512];  // t_tmp's buffers rotate
    snprintf(out, sizeof out, "%s", t_tmp("conv-w4a16.gguf"));
    CHECK_MSG(convert(t_fixture("hf/checkpoints/dense-w4a16-hf"), out, -1, 0, &err) == 0, "%s", err.msg);
    ilm_gguf *g;
    if (ilm_gguf_open(&g, out, &err) == 0) {
        const ilm_gguf_tensor *t = ilm_gguf_find_tensor(g, "blk.0.attn_q.weight");
        CHECK(t && t->type == ILM_TYPE_Q4_0);
        ilm_gguf_close(g);
    }
    ilm_json *ref = t_load_json("hf/checkpoints/dense-w4a16-ref.json");
    const ilm_json *prompts = ilm_json_get(ref, "prompts");
    CHECK(prompts && prompts->len == 3);
    size_t n_ref;
    float *all = read_floats(t_fixture("hf/checkpoints/dense-w4a16-logits.f32"), &n_ref);
    for (size_t p = 0; prompts && all && p < prompts->len; p++) {
        const ilm_json *pr = &prompts->items[p], *ids = ilm_json_get(pr, "ids");
        char cmd[4096];
        int len = snprintf(cmd, sizeof cmd, "%s logits -m %s --act f32 --kv-type f32 -o %s --tokens ", t_bin(), out,
                           t_tmp("w4a16.f32"));
        for (size_t i = 0; i < ids->len; i++)
            len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s%d", i ? "," : "", (int)ids->items[i].num);
        CHECK_EQ(t_run(cmd, NULL), 0);
        size_t got_n;
        float *got = read_floats(t_tmp("w4a16.f32"), &got_n);
        size_t off = (size_t)ilm_json_get(pr, "logits_offset_bytes")->num / 4;
        size_t count = (size_t)(ilm_json_get(pr, "n_pos")->num * ilm_json_get(pr, "n_vocab")->num);
        CHECK(got && got_n == count && off + count <= n_ref);
        double worst = 0;
        for (size_t i = 0; got && got_n == count && off + count <= n_ref && i < count; i++) {
            double d = got[i] - all[off + i];
            if (d < 0) d = -d;
            if (d > worst) worst = d;
        }
        CHECK_MSG(worst <= 5e-3, "prompt %zu: max |logit diff| %g > 5e-3", p, worst);
        free(got);
    }
    // -m HF_DIR: converted in memory, the same logits as from the file
    if (prompts && prompts->len) {
        const ilm_json *ids = ilm_json_get(&prompts->items[0], "ids");
        char cmd[16384], list[2048] = "";
        for (size_t i = 0; i < ids->len; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", (int)ids->items[i].num);
        snprintf(cmd, sizeof cmd, "%s logits -m %s --act f32 --kv-type f32 -o %s --tokens %s && %s logits -m %s --act f32 "
                 "--kv-type f32 -o %s --tokens %s && cmp -s %s %s", t_bin(), out, t_tmp("w4a16-file.f32"), list, t_bin(),
                 t_fixture("hf/checkpoints/dense-w4a16-hf"), t_tmp("w4a16-dir.f32"), list, t_tmp("w4a16-file.f32"),
                 t_tmp("w4a16-dir.f32"));
        CHECK_EQ(t_run(cmd, NULL), 0);
    }
    free(all);
    ilm_json_free(ref);
}

TEST(convert_memfd_is_byte_identical) {
    if (!have_fixture("hf/checkpoints/mtp-hf")) return;
    ilm_err err;
    ilm_convert_opts o;
    ilm_convert_opts_default(&o);
    o.hf_dir = t_fixture("hf/checkpoints/mtp-hf");
    o.out = t_tmp("conv-memfd-ref.gguf");
    CHECK_MSG(ilm_convert(&o, &err) == 0, "%s", err.msg);
    int fd = ilm_convert_to_fd(&o, &err);
    CHECK_MSG(fd >= 0, "%s", err.msg);
    if (fd < 0) return;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    size_t n1, n2;
    char *a = t_read(o.out, &n1), *b = t_read(path, &n2);
    CHECK(a && b && n1 == n2 && !memcmp(a, b, n1));
    free(a);
    free(b);
    ilm_gguf *g;
    CHECK_MSG(ilm_gguf_open(&g, path, &err) == 0, "%s", err.msg);
    if (g) ilm_gguf_close(g);
    close(fd);
    // the -m resolution: a directory becomes a memfd path, a file stays itself
    char buf[256];
    CHECK_EQ(ilm_convert_resolve_model(o.hf_dir, buf, sizeof buf, &fd, NULL, &err), 0);
    CHECK(fd >= 0 && !strncmp(buf, "/proc/self/fd/", 14));
    if (fd >= 0) close(fd);
    CHECK_EQ(ilm_convert_resolve_model(o.out, buf, sizeof buf, &fd, NULL, &err), 0);
    CHECK(fd == -1 && !strcmp(buf, o.out));
}

// --- broken checkpoints: one error line, no output file, no temp file -----------------------

// Replaces the first `from` (n_from bytes) with `to` in dir/file.
static void edit(const char *dir, const char *file, const char *from, size_t n_from, const char *to, size_t n_to) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t n;
    char *d = t_read(path, &n), *p = NULL;
    for (size_t i = 0; d && i + n_from <= n && !p; i++)
        if (!memcmp(d + i, from, n_from)) p = d + i;
    CHECK_MSG(p != NULL, "'%.*s' not found in %s", (int)n_from, from, path);
    if (p) {
        FILE *f = fopen(path, "wb");
        fwrite(d, 1, (size_t)(p - d), f);
        fwrite(to, 1, n_to, f);
        fwrite(p + n_from, 1, n - (size_t)(p - d) - n_from, f);
        fclose(f);
    }
    free(d);
}
#define EDIT(dir, file, from, to) edit(dir, file, from, strlen(from), to, strlen(to))

// A copy of dense-hf in tmp/name, its safetensors cut to `cut` bytes (0: whole).
static const char *copy_ckpt(const char *name, size_t cut) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", t_tmp(name));
    mkdir(dir, 0700);
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        char src[512], dst[600];
        snprintf(src, sizeof src, "hf/checkpoints/dense-hf/%s", files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        size_t n;
        char *d = t_read(t_fixture(src), &n);
        if (!d) continue;
        if (cut && i == 1 && cut < n) n = cut;
        FILE *f = fopen(dst, "wb");
        if (f) {
            fwrite(d, 1, n, f);
            fclose(f);
        }
        free(d);
    }
    return dir;
}

static bool no_leftovers(const char *out) {
    struct stat s;
    if (stat(out, &s) == 0) return false;
    DIR *d = opendir(t_tmpdir());
    bool clean = true;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) clean = false;
    if (d) closedir(d);
    return clean;
}

static void expect_fail(const char *name, const char *dir, const char *want) {
    const char *out = t_tmp("broken-out.gguf");
    unlink(out);
    ilm_err err;
    int rc = convert(dir, out, -1, 0, &err);
    CHECK_MSG(rc != 0, "%s: converted a broken checkpoint", name);
    if (rc) {
        CHECK_MSG(strstr(err.msg, want) != NULL, "%s: error '%s' lacks '%s'", name, err.msg, want);
        CHECK_MSG(!strchr(err.msg, '\n'), "%s: error is not one line", name);
    }
    CHECK_MSG(no_leftovers(out), "%s: output or temp file left behind", name);
}

TEST(convert_rejects_broken_checkpoints) {
    if (!have_fixture("hf/checkpoints/dense-hf")) return;
    expect_fail("truncated", copy_ckpt("b-trunc", 2000000), "data_offsets");
    const char *d = copy_ckpt("b-hlen", 0);
    edit(d, "model.safetensors", "\x08\x28\0\0\0\0\0\0", 8, "\x08\x28\0\0\x01\0\0\0", 8);
    expect_fail("header length", d, "header length");
    d = copy_ckpt("b-overlap", 0);
    EDIT(d, "model.safetensors", "\"data_offsets\":[524288,524800]", "\"data_offsets\":[524200,524712]");
    expect_fail("overlap", d, "overlaps");
    d = copy_ckpt("b-dtype", 0);
    EDIT(d, "model.safetensors", "input_layernorm.weight\":{\"dtype\":\"F32\"", "input_layernorm.weight\":{\"dtype\":\"I32\"");
    expect_fail("dtype", d, "dtype I32");
    d = copy_ckpt("b-shape", 0);
    EDIT(d, "config.json", "\"intermediate_size\": 256", "\"intermediate_size\": 512");
    expect_fail("shape", d, "expected [128, 512]");
    d = copy_ckpt("b-missing", 0);
    EDIT(d, "config.json", "\"num_hidden_layers\": 6", "\"num_hidden_layers\": 7");
    EDIT(d, "config.json", "\"full_attention\"\n  ],", "\"full_attention\", \"full_attention\"\n  ],");
    expect_fail("missing tensor", d, "missing tensor model.language_model.layers.6.");
    d = copy_ckpt("b-arch", 0);
    EDIT(d, "config.json", "Gemma4ForConditionalGeneration", "LlamaForCausalLM");
    expect_fail("architecture", d, "architecture 'LlamaForCausalLM' is not supported");
    d = copy_ckpt("b-quant", 0);
    EDIT(d, "config.json", "\"torch_dtype\"", "\"quantization_config\": {\"quant_method\": \"bitsandbytes\"}, \"torch_dtype\"");
    expect_fail("quantization", d, "quant_method 'bitsandbytes'");
    d = copy_ckpt("b-unknown", 0);
    EDIT(d, "model.safetensors", "layers.0.mlp.up_proj.weight", "layers.0.mlp.up_prxj.weight");
    expect_fail("unknown tensor", d, "unknown name");
    expect_fail("no config", t_tmpdir(), "config.json");
}

TEST(convert_refuses_dangerous_outputs) {
    if (!have_fixture("hf/checkpoints/dense-hf")) return;
    const char *dir = copy_ckpt("c-out", 0);
    ilm_err err;
    char in[600];
    snprintf(in, sizeof in, "%s/model.safetensors", dir);
    CHECK(convert(dir, in, -1, 0, &err) != 0 && strstr(err.msg, "refusing to overwrite the input"));
    const char *fifo = t_tmp("c-out.fifo");
    unlink(fifo);
    CHECK_EQ(mkfifo(fifo, 0600), 0);
    CHECK(convert(dir, fifo, -1, 0, &err) != 0 && strstr(err.msg, "not a regular file"));
    struct stat s;
    CHECK(stat(fifo, &s) == 0 && S_ISFIFO(s.st_mode));
    unlink(fifo);
    // a FIFO where a shard should be: refused, never opened
    char shard[600];
    snprintf(shard, sizeof shard, "%s/model.safetensors", dir);
    unlink(shard);
    CHECK_EQ(mkfifo(shard, 0600), 0);
    CHECK(convert(dir, t_tmp("c-out.gguf"), -1, 0, &err) != 0 && strstr(err.msg, "not a regular file"));
}

TEST(convert_cli_usage_and_errors) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s convert 2>/dev/null", t_bin());
    CHECK_EQ(t_run(cmd, NULL), 2);
    snprintf(cmd, sizeof cmd, "%s convert a b --type q5_k 2>/dev/null", t_bin());
    CHECK_EQ(t_run(cmd, NULL), 2);
    snprintf(cmd, sizeof cmd, "%s convert a b --drafter-layout x 2>/dev/null", t_bin());
    CHECK_EQ(t_run(cmd, NULL), 2);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s convert %s %s --no-progress 2>&1", t_bin(), t_tmp("no-such-dir"), t_tmp("x.gguf"));
    CHECK_EQ(t_run(cmd, &out), 1);
    CHECK(out && strstr(out, "ironlm: error: ") && strstr(out, "not a checkpoint directory"));
    free(out);
}

// Every model command takes a checkpoint directory: bench (-m and --draft) and serve load the
// converted model in memory (serve answers a completion naming the directory's model).
TEST(convert_direct_load_bench_serve) {
    if (!have_fixture("hf/checkpoints/dense-hf")) return;
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s bench -m %s --draft %s -p 8 -n 4 -r 1 --draft-max 2 -o csv 2>/dev/null", t_bin(),
             t_fixture("hf/checkpoints/dense-hf"), t_fixture("hf/checkpoints/mtp-hf"));
    CHECK_EQ(t_run(cmd, &out), 0);
    CHECK_MSG(out && strstr(out, "dense-hf") && strstr(out, "tg4"), "bench output: %s", out ? out : "-");
    free(out);
    out = NULL;
    // serve: start, one greedy completion, stop (the port comes from the log)
    snprintf(cmd, sizeof cmd,
             "log=%s; %s serve -m %s --draft %s --port 0 -np 2 2>$log & pid=$!; "
             "for i in $(seq 1 100); do grep -q ready $log && break; sleep 0.1; done; "
             "port=$(sed -n 's/.*listening on http:[/][/][^:]*:\\([0-9]*\\).*/\\1/p' $log | head -1); "
             "curl -s --max-time 20 http://127.0.0.1:$port/v1/completions -d '{\"prompt\":\"hello\",\"max_tokens\":4,"
             "\"temperature\":0}'; kill $pid; wait $pid",
             t_tmp("serve-hf.log"), t_bin(), t_fixture("hf/checkpoints/dense-hf"), t_fixture("hf/checkpoints/mtp-hf"));
    CHECK_EQ(t_run(cmd, &out), 0);
    CHECK_MSG(out && strstr(out, "\"model\":\"dense-hf\"") && strstr(out, "\"completion_tokens\":4"), "serve: %s",
              out ? out : "-");
    free(out);
}

// A W4A16 checkpoint directory runs with float activations unless --act says otherwise: its
// default logits equal those of --act bf16 (and differ from --act q8).
TEST(convert_w4a16_direct_default_act) {
    if (!have_fixture("hf/checkpoints/dense-w4a16-hf")) return;
    const char *dir = t_fixture("hf/checkpoints/dense-w4a16-hf");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s logits -m %s --tokens 2,10,20,30 -o %s && %s logits -m %s --act bf16 --tokens 2,10,20,30 -o %s && "
             "cmp -s %s %s && %s logits -m %s --act q8 --tokens 2,10,20,30 -o %s && ! cmp -s %s %s",
             t_bin(), dir, t_tmp("w-def.f32"), t_bin(), dir, t_tmp("w-bf16.f32"), t_tmp("w-def.f32"), t_tmp("w-bf16.f32"),
             t_bin(), dir, t_tmp("w-q8.f32"), t_tmp("w-def.f32"), t_tmp("w-q8.f32"));
    CHECK_EQ(t_run(cmd, NULL), 0);
}
