// test_quantize.c — src/tools/quantize.c: ggml-exact rows, and `ironlm quantize` reproducing every
// quantized tensor of the ik/ fixtures (made by llama-quantize) byte for byte.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "format/gguf_write.h"
#include "simd/half.h"
#include "harness.h"
#include "tools/quantize.h"

// ---- helpers ---------------------------------------------------------------------------

// Runs `ironlm quantize IN OUT --type T EXTRA` through the binary, output (stdout+stderr) in *output.
static int quantize_cmd(const char *in, const char *out, const char *type, const char *extra, char **output) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' --type %s %s 2>&1", t_bin(), in, out, type, extra);
    char *o = NULL;
    int rc = t_run(cmd, &o);
    if (output) *output = o;
    else free(o);
    return rc;
}

static bool kv_equal(const ilm_gguf_kv *a, const ilm_gguf_kv *b) {
    return !strcmp(a->key, b->key) && a->raw_len == b->raw_len && !memcmp(a->raw, b->raw, a->raw_len);
}

// Compares a quantize output with a reference file: metadata identical (keys, order, bytes),
// tensor table identical (names, types, shapes, order) and every tensor's bytes identical.
static void check_same_file(const char *got_path, const char *want_path) {
    ilm_gguf *got = NULL, *want = NULL;
    ilm_err err;
    CHECK_MSG(ilm_gguf_open(&got, got_path, &err) == 0, "%s", err.msg);
    CHECK_MSG(ilm_gguf_open(&want, want_path, &err) == 0, "%s", err.msg);
    if (!got || !want) goto done;
    CHECK_EQ(got->n_kv, want->n_kv);
    for (int64_t i = 0; i < got->n_kv && i < want->n_kv; i++)
        CHECK_MSG(kv_equal(&got->kv[i], &want->kv[i]), "%s: key %lld: %s vs %s", got_path, (long long)i,
                  got->kv[i].key, want->kv[i].key);
    CHECK_EQ(got->n_tensors, want->n_tensors);
    int mismatched = 0;
    for (int64_t i = 0; i < got->n_tensors && i < want->n_tensors; i++) {
        const ilm_gguf_tensor *a = &got->tensors[i], *b = &want->tensors[i];
        CHECK_STR(a->name, b->name);
        CHECK_MSG(a->type == b->type, "%s: %s is %s, fixture %s", got_path, a->name, ilm_ggml_type_name(a->type),
                  ilm_ggml_type_name(b->type));
        CHECK_EQ(a->n_dims, b->n_dims);
        for (int d = 0; d < 4; d++) CHECK_EQ(a->ne[d], b->ne[d]);
        if (a->bytes != b->bytes || memcmp(a->data, b->data, a->bytes) != 0) {
            mismatched++;
            CHECK_MSG(0, "%s: tensor %s differs from the fixture", got_path, a->name);
        }
    }
    CHECK_EQ(mismatched, 0);
done:
    ilm_gguf_close(got);
    ilm_gguf_close(want);
}

static int count_type(const char *path, int type) {
    ilm_gguf *g;
    ilm_err err;
    if (ilm_gguf_open(&g, path, &err)) return -1;
    int n = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) n += g->tensors[i].type == type;
    ilm_gguf_close(g);
    return n;
}

static bool copy_file(const char *from, const char *to, size_t max_bytes) {
    size_t n;
    char *data = t_read(from, &n);
    if (!data) return false;
    if (max_bytes < n) n = max_bytes;
    FILE *f = fopen(to, "wb");
    bool ok = f && fwrite(data, 1, n, f) == n;
    if (f) fclose(f);
    free(data);
    return ok;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

// True if the directory holding `path` has a leftover "<basename>.tmp.*".
static bool temp_left(const char *path) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s'.tmp.* 2>/dev/null | wc -l", path);
    char *o = NULL;
    t_run(cmd, &o);
    bool left = o && atoi(o) > 0;
    free(o);
    return left;
}

// ---- rows ------------------------------------------------------------------------------

TEST(quantize_row_q4_0_rules) {
    float x[64];
    for (int j = 0; j < 64; j++) x[j] = 0.0f;
    // block 0: +3 and -3 tie; the first (+3) wins, so d = 3/-8 < 0 and +3 maps to nibble 0
    x[5] = 3.0f;
    x[20] = -3.0f;
    x[7] = 1.0f;
    ilm_block_q4_0 y[2];
    ilm_quantize_row_q4_0(x, y, 64);
    CHECK(ilm_f16_to_f32(y[0].d) == -0.375f);
    CHECK_EQ(y[0].qs[5] & 0x0F, 0);           // +3 -> -8*d
    CHECK_EQ(y[0].qs[20 - 16] >> 4, 15);      // -3 -> would be +8: saturates at 15
    CHECK_EQ(y[0].qs[7] & 0x0F, 5);           // 1/-0.375 = -2.67 + 8.5 = 5.83 -> 5
    CHECK_EQ(y[0].qs[0] & 0x0F, 8);           // zero -> 8
    // block 1: all zero -> d = 0/-8 = -0 (ggml stores the sign too), every nibble 8
    CHECK_EQ(y[1].d, 0x8000);
    for (int j = 0; j < 16; j++) CHECK_EQ(y[1].qs[j], 0x88);
}

TEST(quantize_row_q8_0_rules) {
    float x[32] = {0};
    x[0] = -2.54f;   // amax
    x[1] = 1.27f;    // half of amax -> 63.5 rounds away from zero
    x[2] = 0.005f;  // 0.25 -> 0
    ilm_block_q8_0 y;
    ilm_quantize_row_q8_0(x, &y, 32);
    float d = -2.54f / -127.0f;
    CHECK_EQ(y.d, ilm_f32_to_f16(d));
    CHECK_EQ(y.qs[0], -127);
    CHECK_EQ(y.qs[1], (int)roundf(1.27f * (1.0f / d)));
    CHECK_EQ(y.qs[2], 0);
    CHECK_EQ(y.qs[3], 0);
}

TEST(quantize_tensor_type_rules) {
    const int Q4 = ILM_TYPE_Q4_0, Q8 = ILM_TYPE_Q8_0, F32 = ILM_TYPE_F32, BF16 = ILM_TYPE_BF16;
    CHECK_EQ(ilm_quant_tensor_type("blk.0.attn_q.weight", 2, BF16, Q4, true, false), Q4);
    CHECK_EQ(ilm_quant_tensor_type("blk.0.ffn_gate_up_exps.weight", 3, F32, Q4, true, false), Q4);
    CHECK_EQ(ilm_quant_tensor_type("blk.0.ffn_gate_inp.weight", 2, F32, Q4, true, false), F32);
    CHECK_EQ(ilm_quant_tensor_type("blk.0.ffn_gate_inp.scale", 1, F32, Q4, true, false), F32);
    CHECK_EQ(ilm_quant_tensor_type("blk.0.attn_norm.weight", 1, F32, Q8, true, false), F32);
    CHECK_EQ(ilm_quant_tensor_type("rope_freqs.weight", 1, F32, Q8, false, false), F32);
    CHECK_EQ(ilm_quant_tensor_type("blk.3.layer_output_scale.weight", 0, F32, Q8, false, false), F32);
    CHECK_EQ(ilm_quant_tensor_type("mtp_pre_proj.weight", 2, F32, Q8, true, false), Q8);
    CHECK_EQ(ilm_quant_tensor_type("mtp_token_ordering.weight", 1, ILM_TYPE_I32, Q4, false, false), ILM_TYPE_I32);
    // default mix: the tied LM head stays Q8_0 under Q4_0
    CHECK_EQ(ilm_quant_tensor_type("token_embd.weight", 2, F32, Q4, true, false), Q4);
    CHECK_EQ(ilm_quant_tensor_type("token_embd.weight", 2, F32, Q4, false, false), Q8);
    CHECK_EQ(ilm_quant_tensor_type("token_embd.weight", 2, F32, Q4, false, true), Q4);
    CHECK_EQ(ilm_quant_tensor_type("output.weight", 2, F32, Q4, false, true), Q8);
    CHECK_EQ(ilm_quant_tensor_type("token_embd.weight", 2, F32, Q8, false, false), Q8);
    CHECK_EQ(ilm_ftype_of(Q4), 2);
    CHECK_EQ(ilm_ftype_of(Q8), 7);
}

// ---- files: bit-exact with llama-quantize on every fixture -------------------------------

static void reproduce(const char *model, const char *type, const char *src_kind, const char *threads) {
    char in_rel[128], want_rel[128], out_name[128], extra[64];
    snprintf(in_rel, sizeof in_rel, "ik/models/gemma4-tiny-%s-%s.gguf", model, src_kind);
    snprintf(want_rel, sizeof want_rel, "ik/models/gemma4-tiny-%s-%s.gguf", model, type);
    snprintf(out_name, sizeof out_name, "q-%s-%s-from-%s.gguf", model, type, src_kind);
    snprintf(extra, sizeof extra, "--pure -t %s", threads);
    const char *in = t_fixture(in_rel), *want = t_fixture(want_rel), *out = t_tmp(out_name);
    if (!exists(in) || !exists(want)) {
        t_skip("fixtures missing (set IRONLM_FIXTURES)");
        return;
    }
    char *o = NULL;
    int rc = quantize_cmd(in, out, type, extra, &o);
    CHECK_MSG(rc == 0, "quantize %s -> %s failed: %s", in, type, o ? o : "");
    free(o);
    if (rc == 0) check_same_file(out, want);
    unlink(out);
}

TEST(quantize_dense_q8_0_matches_fixture) { reproduce("dense", "q8_0", "f32", "2"); }
TEST(quantize_dense_q4_0_matches_fixture) { reproduce("dense", "q4_0", "f32", "3"); }
TEST(quantize_moe_q8_0_matches_fixture) { reproduce("moe", "q8_0", "f32", "2"); }
TEST(quantize_moe_q4_0_matches_fixture) { reproduce("moe", "q4_0", "f32", "1"); }
TEST(quantize_mtp_q8_0_matches_fixture) { reproduce("dense-mtp", "q8_0", "f32", "2"); }
// The bf16 files hold the same (bf16-rounded) values: same result through the BF16 path.
TEST(quantize_bf16_input_matches_fixture) {
    reproduce("dense", "q4_0", "bf16", "2");
    reproduce("moe", "q8_0", "bf16", "2");
}

// Default mix (no --pure) with q4_0: everything as --pure except the tied LM head in Q8_0,
// whose bytes are then those of the q8_0 fixture.
TEST(quantize_default_mix_q4_0) {
    const char *in = t_fixture("ik/models/gemma4-tiny-dense-f32.gguf");
    const char *q4 = t_fixture("ik/models/gemma4-tiny-dense-q4_0.gguf");
    const char *q8 = t_fixture("ik/models/gemma4-tiny-dense-q8_0.gguf");
    const char *out = t_tmp("q-mix.gguf");
    if (!exists(in)) {
        t_skip("fixtures missing");
        return;
    }
    CHECK_EQ(quantize_cmd(in, out, "q4_0", "", NULL), 0);
    ilm_gguf *g = NULL, *g4 = NULL, *g8 = NULL;
    ilm_err err;
    if (ilm_gguf_open(&g, out, &err) || ilm_gguf_open(&g4, q4, &err) || ilm_gguf_open(&g8, q8, &err)) {
        CHECK_MSG(0, "%s", err.msg);
    } else {
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const ilm_gguf_tensor *t = &g->tensors[i];
            bool head = !strcmp(t->name, "token_embd.weight");
            const ilm_gguf_tensor *ref = ilm_gguf_find_tensor(head ? g8 : g4, t->name);
            CHECK(ref != NULL);
            if (!ref) continue;
            CHECK_MSG(t->type == ref->type, "%s: %s", t->name, ilm_ggml_type_name(t->type));
            CHECK_MSG(t->bytes == ref->bytes && !memcmp(t->data, ref->data, t->bytes), "%s differs", t->name);
        }
        uint32_t ft = 0;
        CHECK(ilm_gguf_get_u32(g, "general.file_type", &ft, &err) == 0);
        CHECK_EQ(ft, 2);
    }
    ilm_gguf_close(g);
    ilm_gguf_close(g4);
    ilm_gguf_close(g8);
    unlink(out);
}

// ---- files: metadata hygiene -----------------------------------------------------------

// An input carrying llama.cpp's imatrix keys (a host path and a dataset path): the output
// must drop them, and every other key must come through byte for byte.
TEST(quantize_no_path_metadata) {
    const char *src = t_fixture("ik/models/gemma4-tiny-dense-mtp-f32.gguf");
    const char *in = t_tmp("q-leaky-in.gguf"), *out = t_tmp("q-leaky-out.gguf");
    if (!exists(src)) {
        t_skip("fixtures missing");
        return;
    }
    ilm_gguf *g = NULL;
    ilm_err err;
    CHECK_MSG(ilm_gguf_open(&g, src, &err) == 0, "%s", err.msg);
    if (!g) return;
    ilm_gguf_writer *w = ilm_gguf_writer_new(&err);
    int rc = 0;
    for (int64_t i = 0; i < g->n_kv && !rc; i++) rc = ilm_gguf_writer_copy_kv(w, &g->kv[i], &err);
    rc = rc || ilm_gguf_writer_add_str(w, "quantize.imatrix.file", "/home/alice/build-host-7/imatrix.dat", &err);
    rc = rc || ilm_gguf_writer_add_str(w, "quantize.imatrix.dataset", "/srv/data/calibration.txt", &err);
    rc = rc || ilm_gguf_writer_add_i32(w, "quantize.imatrix.entries_count", 42, &err);
    for (int64_t i = 0; i < g->n_tensors && !rc; i++)
        rc = ilm_gguf_writer_add_tensor(w, g->tensors[i].name, g->tensors[i].type, g->tensors[i].n_dims,
                                        g->tensors[i].ne, &err);
    rc = rc || ilm_gguf_writer_begin(w, in, &err);
    for (int64_t i = 0; i < g->n_tensors && !rc; i++)
        rc = ilm_gguf_writer_data(w, g->tensors[i].data, g->tensors[i].bytes, &err);
    rc = rc || ilm_gguf_writer_finish(w, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    ilm_gguf_writer_free(w);
    ilm_gguf_close(g);

    CHECK_EQ(quantize_cmd(in, out, "q8_0", "", NULL), 0);
    ilm_gguf *gi = NULL, *go = NULL;
    CHECK(ilm_gguf_open(&gi, in, &err) == 0);
    CHECK(ilm_gguf_open(&go, out, &err) == 0);
    if (gi && go) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        const char *user = getenv("USER");
        for (int64_t i = 0; i < go->n_kv; i++) {
            const ilm_gguf_kv *kv = &go->kv[i];
            CHECK_MSG(strncmp(kv->key, "quantize.imatrix.", 17) != 0, "%s kept", kv->key);
            const ilm_gguf_kv *src_kv = ilm_gguf_find_kv(gi, kv->key);
            bool copied = src_kv && kv_equal(kv, src_kv);
            bool ours = !strcmp(kv->key, "general.file_type") || !strcmp(kv->key, "general.quantization_version");
            CHECK_MSG(copied || ours, "key %s is not a copy of the input's", kv->key);
            if (!copied) {
                // a value we wrote: no path, host or user name in it
                const char *raw = (const char *)kv->raw;
                for (size_t k = 0; k < kv->raw_len; k++) CHECK(raw[k] != '/');
                if (strlen(host) >= 4) CHECK(!memmem(kv->raw, kv->raw_len, host, strlen(host)));
                if (user && strlen(user) >= 4) CHECK(!memmem(kv->raw, kv->raw_len, user, strlen(user)));
            }
        }
        // every string value with a '/' was already in the input
        for (int64_t i = 0; i < go->n_kv; i++) {
            const ilm_gguf_kv *kv = &go->kv[i];
            if (kv->val.type == GGUF_STRING && memchr(kv->val.str.ptr, '/', kv->val.str.len)) {
                const ilm_gguf_kv *src_kv = ilm_gguf_find_kv(gi, kv->key);
                CHECK_MSG(src_kv && kv_equal(kv, src_kv), "%s has a new '/'", kv->key);
            }
        }
    }
    ilm_gguf_close(gi);
    ilm_gguf_close(go);
    unlink(in);
    unlink(out);
}

// ---- files: refusals -------------------------------------------------------------------

TEST(quantize_refuses_in_equals_out) {
    const char *src = t_fixture("ik/models/gemma4-tiny-dense-mtp-f32.gguf");
    const char *in = t_tmp("q-self.gguf");
    if (!exists(src)) {
        t_skip("fixtures missing");
        return;
    }
    CHECK(copy_file(src, in, (size_t)-1));
    size_t n0 = 0, n1 = 0;
    char *before = t_read(in, &n0);
    char *o = NULL;
    CHECK(quantize_cmd(in, in, "q8_0", "", &o) != 0);
    CHECK_MSG(o && strstr(o, "ironlm: error:") && strstr(o, "input"), "message: %s", o ? o : "");
    free(o);
    // the same file under another spelling
    char alias[600];
    snprintf(alias, sizeof alias, "%s/./q-self.gguf", t_tmpdir());
    CHECK(quantize_cmd(in, alias, "q8_0", "", NULL) != 0);
    char *after = t_read(in, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0));
    CHECK(!temp_left(in));
    free(before);
    free(after);
    unlink(in);
}

TEST(quantize_truncated_input_leaves_nothing) {
    const char *src = t_fixture("ik/models/gemma4-tiny-dense-f32.gguf");
    const char *in = t_tmp("q-trunc.gguf"), *out = t_tmp("q-trunc-out.gguf");
    if (!exists(src)) {
        t_skip("fixtures missing");
        return;
    }
    CHECK(copy_file(src, in, 3000000));  // cut inside the tensor data
    char *o = NULL;
    CHECK(quantize_cmd(in, out, "q4_0", "", &o) != 0);
    CHECK_MSG(o && strstr(o, "ironlm: error:") && strstr(o, "q-trunc.gguf"), "message: %s", o ? o : "");
    free(o);
    CHECK(!exists(out));
    CHECK(!temp_left(out));
    // a corrupt magic
    CHECK(copy_file(src, in, 4096));
    FILE *f = fopen(in, "r+b");
    if (f) {
        fputs("GGUX", f);
        fclose(f);
    }
    CHECK(quantize_cmd(in, out, "q8_0", "", &o) != 0);
    CHECK_MSG(o && strstr(o, "ironlm: error:"), "message: %s", o ? o : "");
    free(o);
    CHECK(!exists(out));
    CHECK(!temp_left(out));
    unlink(in);
}

// A Q8_0 weight would have to be requantized to make Q4_0: refused. Q8_0 -> Q8_0 copies.
TEST(quantize_refuses_requantizing) {
    const char *in = t_fixture("ik/models/gemma4-tiny-dense-mtp-q8_0.gguf");
    const char *out = t_tmp("q-requant.gguf");
    if (!exists(in)) {
        t_skip("fixtures missing");
        return;
    }
    char *o = NULL;
    CHECK(quantize_cmd(in, out, "q4_0", "--pure", &o) != 0);
    CHECK_MSG(o && strstr(o, "Q8_0") && strstr(o, "F32/F16/BF16"), "message: %s", o ? o : "");
    free(o);
    CHECK(!exists(out));
    CHECK_EQ(quantize_cmd(in, out, "q8_0", "--pure", NULL), 0);
    check_same_file(out, in);
    CHECK(count_type(out, ILM_TYPE_Q8_0) > 0);
    unlink(out);
}

TEST(quantize_cli_errors) {
    char cmd[1024], *o = NULL;
    snprintf(cmd, sizeof cmd, "%s quantize a.gguf b.gguf --type q5_k 2>&1", t_bin());
    CHECK(t_run(cmd, &o) != 0);
    CHECK_MSG(o && strstr(o, "ironlm: error:") && strstr(o, "--type"), "%s", o ? o : "");
    free(o);
    snprintf(cmd, sizeof cmd, "%s quantize only-one.gguf --type q8_0 2>&1", t_bin());
    CHECK(t_run(cmd, &o) != 0);
    CHECK(o && strstr(o, "ironlm: error:"));
    free(o);
}
