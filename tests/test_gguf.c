// test_gguf.c — GGUF reader/writer, inspect and strip; the corrupted-file corpus.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/strip.h"
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "harness.h"
#include "simd/kernels.h"

// --- a small hand-made GGUF with every value type, nested arrays, several tensor types --------

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_u32(buf *b, uint32_t v) { b_put(b, &v, 4); }
static void b_u64(buf *b, uint64_t v) { b_put(b, &v, 8); }
static void b_str(buf *b, const char *s) { b_u64(b, strlen(s)); b_put(b, s, strlen(s)); }

// Offsets of section boundaries inside the built file (for truncation tests).
typedef struct {
    size_t after_header, after_kv[16], n_kv, after_tinfo[8], n_t, data_start, size;
    size_t count_pos_tensors, count_pos_kv, first_str_len_pos, arr_count_pos, tinfo_type_pos, tinfo_off_pos,
        tinfo_ndims_pos, tinfo_ne0_pos;
} layout;

static buf make_small_gguf(layout *L) {
    buf b = {0};
    b_u32(&b, 0x46554747u);
    b_u32(&b, 3);
    L->count_pos_tensors = b.n;
    b_u64(&b, 3);  // tensors
    L->count_pos_kv = b.n;
    b_u64(&b, 9);  // kvs
    L->after_header = b.n;
    L->n_kv = 0;
    L->first_str_len_pos = b.n;
    b_str(&b, "general.architecture"); b_u32(&b, GGUF_STRING); b_str(&b, "gemma4");
    L->after_kv[L->n_kv++] = b.n;
    b_str(&b, "t.u8"); b_u32(&b, GGUF_U8); uint8_t u8 = 200; b_put(&b, &u8, 1);
    L->after_kv[L->n_kv++] = b.n;
    b_str(&b, "t.i16"); b_u32(&b, GGUF_I16); int16_t i16 = -300; b_put(&b, &i16, 2);
    L->after_kv[L->n_kv++] = b.n;
    b_str(&b, "t.f64"); b_u32(&b, GGUF_F64); double f64 = 2.5; b_put(&b, &f64, 8);
    L->after_kv[L->n_kv++] = b.n;
    b_str(&b, "t.i64"); b_u32(&b, GGUF_I64); int64_t i64 = -5; b_put(&b, &i64, 8);
    L->after_kv[L->n_kv++] = b.n;
    b_str(&b, "t.bool"); b_u32(&b, GGUF_BOOL); uint8_t bo = 1; b_put(&b, &bo, 1);
    L->after_kv[L->n_kv++] = b.n;
    b_str(&b, "t.arr_i32"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_I32);
    L->arr_count_pos = b.n;
    b_u64(&b, 3);
    int32_t a[3] = {1, -2, 3}; b_put(&b, a, 12);
    L->after_kv[L->n_kv++] = b.n;
    b_str(&b, "t.arr_str"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_STRING); b_u64(&b, 2); b_str(&b, "ab"); b_str(&b, "");
    L->after_kv[L->n_kv++] = b.n;
    // nested: array of 2 arrays of u16
    b_str(&b, "t.nested"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_ARRAY); b_u64(&b, 2);
    b_u32(&b, GGUF_U16); b_u64(&b, 2); uint16_t x[2] = {7, 8}; b_put(&b, x, 4);
    b_u32(&b, GGUF_U16); b_u64(&b, 1); b_put(&b, x, 2);
    L->after_kv[L->n_kv++] = b.n;
    // tensors: F32 [4] at 0; Q8_0 [32,2] at 32; scalar F32 at 128
    L->n_t = 0;
    b_str(&b, "a.weight"); 
    L->tinfo_ndims_pos = b.n;
    b_u32(&b, 1);
    L->tinfo_ne0_pos = b.n;
    b_u64(&b, 4);
    L->tinfo_type_pos = b.n;
    b_u32(&b, ILM_TYPE_F32);
    L->tinfo_off_pos = b.n;
    b_u64(&b, 0);
    L->after_tinfo[L->n_t++] = b.n;
    b_str(&b, "b.weight"); b_u32(&b, 2); b_u64(&b, 32); b_u64(&b, 2); b_u32(&b, ILM_TYPE_Q8_0); b_u64(&b, 32);
    L->after_tinfo[L->n_t++] = b.n;
    b_str(&b, "c.scale"); b_u32(&b, 0); b_u32(&b, ILM_TYPE_F32); b_u64(&b, 128);
    L->after_tinfo[L->n_t++] = b.n;
    while (b.n % 32) { uint8_t z = 0; b_put(&b, &z, 1); }
    L->data_start = b.n;
    uint8_t data[132];
    for (int i = 0; i < 132; i++) data[i] = (uint8_t)(i * 7 + 1);
    memset(data + 16, 0, 16);   // padding between tensor a (16 bytes) and b
    memset(data + 100, 0, 28);  // padding between b (68 bytes at 32) and c at 128
    b_put(&b, data, 132);
    L->size = b.n;
    return b;
}

TEST(gguf_reads_every_value_type) {
    layout L;
    buf b = make_small_gguf(&L);
    ilm_gguf *g;
    ilm_err err;
    CHECK_EQ(ilm_gguf_open_mem(&g, b.p, b.n, "small", &err), 0);
    if (!g) return;
    CHECK_EQ(g->n_kv, 9);
    CHECK_EQ(g->n_tensors, 3);
    CHECK_EQ(ilm_gguf_find_kv(g, "t.u8")->val.u64, 200);
    CHECK_EQ(ilm_gguf_find_kv(g, "t.i16")->val.i64, -300);
    CHECK_NEAR(ilm_gguf_find_kv(g, "t.f64")->val.f64, 2.5, 0);
    CHECK_EQ(ilm_gguf_find_kv(g, "t.i64")->val.i64, -5);
    CHECK_EQ(ilm_gguf_find_kv(g, "t.bool")->val.u64, 1);
    const ilm_gguf_value *arr = &ilm_gguf_find_kv(g, "t.arr_i32")->val;
    CHECK_EQ(arr->arr.count, 3);
    CHECK_EQ(ilm_gguf_arr_int(arr, 1), -2);
    const ilm_gguf_value *s = &ilm_gguf_find_kv(g, "t.arr_str")->val;
    CHECK_EQ(s->arr.count, 2);
    CHECK(s->arr.strs[0].len == 2 && !memcmp(s->arr.strs[0].ptr, "ab", 2));
    const ilm_gguf_value *n = &ilm_gguf_find_kv(g, "t.nested")->val;
    CHECK_EQ(n->arr.count, 2);
    CHECK_EQ(n->arr.vals[0].arr.count, 2);
    CHECK_EQ(ilm_gguf_arr_int(&n->arr.vals[0], 1), 8);
    CHECK_EQ(n->arr.vals[1].arr.count, 1);
    const ilm_gguf_tensor *c = ilm_gguf_find_tensor(g, "c.scale");
    CHECK(c && c->n_dims == 0 && c->bytes == 4);
    const ilm_gguf_tensor *q = ilm_gguf_find_tensor(g, "b.weight");
    CHECK(q && q->bytes == 68 && q->ne[1] == 2);
    CHECK(ilm_gguf_find_tensor(g, "nope") == NULL);
    // Required getters name a missing key; the _or getters give the default only for an
    // absent key and read a present one exactly like the required getter.
    uint32_t u = 0;
    float f = 0;
    bool v = false;
    CHECK(ilm_gguf_get_u32(g, "t.absent", &u, &err) != 0);
    CHECK_STR(err.msg, "small: missing metadata key t.absent");
    CHECK(ilm_gguf_get_u32_or(g, "t.absent", 7, &u, &err) == 0 && u == 7);
    CHECK(ilm_gguf_get_u32_or(g, "t.u8", 7, &u, &err) == 0 && u == 200);
    CHECK(ilm_gguf_get_u32_or(g, "t.i64", 7, &u, &err) != 0);
    CHECK_STR(err.msg, "small: key t.i64: value out of range (-5)");
    CHECK(ilm_gguf_get_f32_or(g, "t.absent", 1.5f, &f, &err) == 0 && f == 1.5f);
    CHECK(ilm_gguf_get_f32_or(g, "t.f64", 1.5f, &f, &err) == 0 && f == 2.5f);
    CHECK(ilm_gguf_get_bool_or(g, "t.absent", true, &v, &err) == 0 && v);
    CHECK(ilm_gguf_get_bool_or(g, "t.bool", false, &v, &err) == 0 && v);
    CHECK(ilm_gguf_get_bool_or(g, "t.u8", false, &v, &err) != 0);
    CHECK_STR(err.msg, "small: key t.u8: expected a bool (u8)");
    ilm_gguf_close(g);
    free(b.p);
}

// The type table (simd/types.c) as the reader sees it.
TEST(gguf_type_table) {
    CHECK_STR(ilm_ggml_type_name(ILM_TYPE_Q4_0), "Q4_0");
    CHECK_STR(ilm_ggml_type_name(3), "Q4_1");
    CHECK_STR(ilm_ggml_type_name(31), "unknown");
    CHECK_STR(ilm_ggml_type_name(-1), "unknown");
    CHECK_EQ(ilm_type(ILM_TYPE_Q8_0)->block, ILM_QK);
    CHECK_EQ(ilm_type(ILM_TYPE_Q8_0)->block_bytes, sizeof(ilm_block_q8_0));
    CHECK_EQ(ilm_type(ILM_TYPE_BF16)->block_bytes, 2);
    CHECK_EQ(ilm_type(3)->block_bytes, 0);   // named, not readable
    CHECK_EQ(ilm_type(99)->block, 1);
    CHECK(ilm_type(ILM_TYPE_F16)->weight && !ilm_type(ILM_TYPE_I32)->weight);
    CHECK(ilm_type(ILM_TYPE_Q4_0)->acts == (ILM_ACT_F32 | ILM_ACT_Q8 | ILM_ACT_FA));
    CHECK(ilm_type(ILM_TYPE_F32)->acts == ILM_ACT_F32);
    size_t bytes = 0;
    const int64_t ne[2] = {64, 3};
    CHECK(ilm_ggml_tensor_bytes(ILM_TYPE_Q4_0, 2, ne, &bytes) && bytes == 3 * 2 * sizeof(ilm_block_q4_0));
    const int64_t odd[1] = {33};
    CHECK(!ilm_ggml_tensor_bytes(ILM_TYPE_Q8_0, 1, odd, &bytes));
    CHECK(!ilm_ggml_tensor_bytes(3, 1, ne, &bytes));
}

// Writes the buffer, opens it through the file path (mmap) and expects a clean failure.
static int corrupt_case(const char *label, const uint8_t *data, size_t n) {
    char name[128];
    snprintf(name, sizeof name, "corrupt-%s.gguf", label);
    const char *path = t_tmp(name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(data, 1, n, f);
    fclose(f);
    ilm_gguf *g = NULL;
    ilm_err err = {{0}};
    int rc = ilm_gguf_open(&g, path, &err);
    if (rc == 0) {
        ilm_gguf_close(g);
        t_fail(__FILE__, __LINE__, "corrupt case %s was accepted", label);
        return 0;
    }
    // One line naming the file.
    CHECK_MSG(strstr(err.msg, path) != NULL && !strchr(err.msg, '\n'), "case %s: message '%s'", label, err.msg);
    return 1;
}

static void patch_u64(uint8_t *p, size_t pos, uint64_t v) { memcpy(p + pos, &v, 8); }
static void patch_u32(uint8_t *p, size_t pos, uint32_t v) { memcpy(p + pos, &v, 4); }

TEST(gguf_corrupt_corpus_rejected_cleanly) {
    layout L;
    buf b = make_small_gguf(&L);
    uint8_t *c = malloc(b.n + 64);
    int cases = 0;
    char label[64];
    // Truncation at every section boundary and at every byte of the header region.
    size_t cuts[64];
    int nc = 0;
    cuts[nc++] = 0; cuts[nc++] = 3; cuts[nc++] = 4; cuts[nc++] = 8; cuts[nc++] = 16; cuts[nc++] = L.after_header;
    for (size_t i = 0; i < L.n_kv; i++) cuts[nc++] = L.after_kv[i];
    for (size_t i = 0; i < L.n_t; i++) cuts[nc++] = L.after_tinfo[i];
    cuts[nc++] = L.data_start;
    cuts[nc++] = L.size - 1;
    for (int i = 0; i < nc; i++) {
        snprintf(label, sizeof label, "trunc-%zu", cuts[i]);
        cases += corrupt_case(label, b.p, cuts[i]);
    }
    for (size_t cut = 1; cut < L.data_start; cut += 7) {
        snprintf(label, sizeof label, "trunc-byte-%zu", cut);
        cases += corrupt_case(label, b.p, cut);
    }
    struct { const char *label; size_t pos; int is64; uint64_t val; } flips[] = {
        {"magic", 0, 0, 0x46554746u},
        {"version1", 4, 0, 1},
        {"version99", 4, 0, 99},
        {"version-bigendian", 4, 0, 0x03000000u},
        {"huge-tensor-count", L.count_pos_tensors, 1, UINT64_MAX},
        {"huge-kv-count", L.count_pos_kv, 1, UINT64_MAX / 2},
        {"kv-count-plus-one", L.count_pos_kv, 1, 10},
        {"huge-string-len", L.first_str_len_pos, 1, UINT64_MAX - 3},
        {"zero-key-len", L.first_str_len_pos, 1, 0},
        {"huge-array-count", L.arr_count_pos, 1, UINT64_MAX / 4},
        {"bad-tensor-type", L.tinfo_type_pos, 0, 77},
        {"unsupported-q4_1", L.tinfo_type_pos, 0, 3},
        {"misaligned-offset", L.tinfo_off_pos, 1, 4},
        {"offset-past-eof", L.tinfo_off_pos, 1, 1u << 30},
        {"offset-wraps", L.tinfo_off_pos, 1, UINT64_MAX - 31},
        {"overlap", L.tinfo_off_pos, 1, 32},
        {"five-dims", L.tinfo_ndims_pos, 0, 5},
        {"zero-dim", L.tinfo_ne0_pos, 1, 0},
        {"huge-dim", L.tinfo_ne0_pos, 1, UINT64_MAX / 2},
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(c, b.p, b.n);
        if (flips[i].is64) patch_u64(c, flips[i].pos, flips[i].val);
        else patch_u32(c, flips[i].pos, (uint32_t)flips[i].val);
        cases += corrupt_case(flips[i].label, c, b.n);
    }
    // Bad value type of the first kv, bad bool, duplicate key, duplicate tensor name.
    memcpy(c, b.p, b.n);
    patch_u32(c, L.after_header + 8 + strlen("general.architecture"), 13);
    cases += corrupt_case("bad-value-type", c, b.n);
    memcpy(c, b.p, b.n);
    c[L.after_kv[5] - 1] = 2;  // t.bool = 2
    cases += corrupt_case("bad-bool", c, b.n);
    memcpy(c, b.p, b.n);
    memcpy(c + L.after_kv[3] + 8, "t.f64", 5);  // rename "t.i64" to an existing key
    cases += corrupt_case("duplicate-key", c, b.n);
    memcpy(c, b.p, b.n);
    memcpy(c + L.after_tinfo[0] + 8, "a.weight", 8);  // b.weight -> a.weight
    cases += corrupt_case("duplicate-tensor", c, b.n);
    // Mutated bytes all over the header: must never crash (acceptance is allowed here).
    uint64_t seed = 42;
    for (int it = 0; it < 400; it++) {
        memcpy(c, b.p, b.n);
        for (int k = 0; k < 3; k++) c[t_rand_u64(&seed) % L.data_start] ^= (uint8_t)(1u << (t_rand_u64(&seed) % 8));
        ilm_gguf *g = NULL;
        ilm_err err;
        if (ilm_gguf_open_mem(&g, c, b.n, "mutated", &err) == 0) ilm_gguf_close(g);
    }
    CHECK(cases > 40);
    free(c);
    free(b.p);
}

TEST(gguf_cli_reports_corrupt_file) {
    const char *path = t_tmp("cli-bad.gguf");
    FILE *f = fopen(path, "wb");
    fwrite("GGUF\3\0\0\0garbage", 1, 15, f);
    fclose(f);
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s inspect %s 2>&1", t_bin(), path);
    int rc = t_run(cmd, &out);
    CHECK(rc != 0 && rc < 128);
    CHECK(out && strncmp(out, "ironlm: error: ", 15) == 0 && strstr(out, path));
    free(out);
}

TEST(gguf_inspect_reads_every_fixture) {
    const char *files[] = {
        "hf/dense-f32.gguf", "hf/ple-f32.gguf", "hf/ple2-f32.gguf", "hf/moe-f32.gguf", "hf/mtp-f32.gguf",
        "hf/mtp-plain-f32.gguf", "hf/mtp-plain-assistant-f32.gguf", "tokenizer/gemma4-vocab.gguf",
        "models/pycoder/pycoder-bf16.gguf", "models/pycoder/pycoder-mtp-bf16.gguf", "models/pyc80m/pyc80m-q8_0.gguf",
        "models/pyc80m/pyc80m-mtp-q8_0.gguf", "ik/models/gemma4-tiny-dense-q4_0.gguf",
        "ik/models/gemma4-tiny-moe-bf16.gguf", "ik/models/gemma4-tiny-dense-mtp-q8_0.gguf",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char cmd[1024], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s inspect %s", t_bin(), t_fixture(files[i]));
        int rc = t_run(cmd, &out);
        CHECK_MSG(rc == 0, "inspect %s exited %d", files[i], rc);
        CHECK_MSG(out && strstr(out, "general.architecture") && strstr(out, "total:"), "inspect %s output", files[i]);
        free(out);
        snprintf(cmd, sizeof cmd, "%s inspect --json %s", t_bin(), t_fixture(files[i]));
        rc = t_run(cmd, &out);
        CHECK_MSG(rc == 0 && out && strstr(out, "\"tensors\""), "inspect --json %s", files[i]);
        free(out);
    }
}

// Expected tensor table of the ik/ fixtures, written from ik/README.md (not from the files).
typedef struct {
    char name[64];
    int64_t ne[3];
    int nd;
    int is_weight;  // 2-D/3-D weight (quantized in q8_0/q4_0 files) unless router
} expect_t;

static int ik_expected(int moe, expect_t *e) {
    int n = 0;
    const int H = 128, V = 1024, NH = 4, L = 6, FF = moe ? 192 : 512;
#define ADD(nm, a, b, c, dims, w)                                                   \
    do {                                                                            \
        snprintf(e[n].name, sizeof e[n].name, "%s", nm);                            \
        e[n].ne[0] = a; e[n].ne[1] = b; e[n].ne[2] = c; e[n].nd = dims; e[n].is_weight = w; n++; \
    } while (0)
    ADD("rope_freqs.weight", 64, 1, 1, 1, 0);
    ADD("token_embd.weight", H, V, 1, 2, 1);
    ADD("output_norm.weight", H, 1, 1, 1, 0);
    for (int l = 0; l < L; l++) {
        int full = l == 5, hd = full ? 128 : 64, kv = full ? 1 : 2;
        char nm[64];
#define B(suffix) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), nm)
        ADD(B("attn_norm.weight"), H, 1, 1, 1, 0);
        ADD(B("attn_q.weight"), H, NH * hd, 1, 2, 1);
        ADD(B("attn_k.weight"), H, kv * hd, 1, 2, 1);
        if (!full) ADD(B("attn_v.weight"), H, kv * hd, 1, 2, 1);
        ADD(B("attn_q_norm.weight"), hd, 1, 1, 1, 0);
        ADD(B("attn_k_norm.weight"), hd, 1, 1, 1, 0);
        ADD(B("attn_output.weight"), NH * hd, H, 1, 2, 1);
        ADD(B("post_attention_norm.weight"), H, 1, 1, 1, 0);
        ADD(B("ffn_norm.weight"), H, 1, 1, 1, 0);
        ADD(B("ffn_gate.weight"), H, FF, 1, 2, 1);
        ADD(B("ffn_up.weight"), H, FF, 1, 2, 1);
        ADD(B("ffn_down.weight"), FF, H, 1, 2, 1);
        ADD(B("post_ffw_norm.weight"), H, 1, 1, 1, 0);
        ADD(B("layer_output_scale.weight"), 1, 1, 1, 1, 0);
        if (moe) {
            ADD(B("ffn_gate_inp.weight"), H, 8, 1, 2, 0);
            ADD(B("ffn_gate_inp.scale"), H, 1, 1, 1, 0);
            ADD(B("ffn_down_exps.scale"), 8, 1, 1, 1, 0);
            ADD(B("pre_ffw_norm_2.weight"), H, 1, 1, 1, 0);
            ADD(B("post_ffw_norm_1.weight"), H, 1, 1, 1, 0);
            ADD(B("post_ffw_norm_2.weight"), H, 1, 1, 1, 0);
            ADD(B("ffn_gate_up_exps.weight"), H, 2 * 64, 8, 3, 1);
            ADD(B("ffn_down_exps.weight"), 64, H, 8, 3, 1);
        }
#undef B
    }
#undef ADD
    return n;
}

TEST(gguf_ik_tensor_tables_match_readme) {
    const char *kinds[] = {"f32", "bf16", "q8_0", "q4_0"};
    const int wtype[] = {ILM_TYPE_F32, ILM_TYPE_BF16, ILM_TYPE_Q8_0, ILM_TYPE_Q4_0};
    static expect_t e[256];
    for (int moe = 0; moe < 2; moe++)
        for (int k = 0; k < 4; k++) {
            char rel[128];
            snprintf(rel, sizeof rel, "ik/models/gemma4-tiny-%s-%s.gguf", moe ? "moe" : "dense", kinds[k]);
            ilm_gguf *g;
            ilm_err err;
            if (ilm_gguf_open(&g, t_fixture(rel), &err)) {
                t_fail(__FILE__, __LINE__, "%s", err.msg);
                continue;
            }
            int n = ik_expected(moe, e);
            CHECK_MSG(g->n_tensors == n, "%s: %lld tensors, expected %d", rel, (long long)g->n_tensors, n);
            for (int i = 0; i < n; i++) {
                const ilm_gguf_tensor *t = ilm_gguf_find_tensor(g, e[i].name);
                if (!t) {
                    t_fail(__FILE__, __LINE__, "%s: missing %s", rel, e[i].name);
                    continue;
                }
                CHECK_MSG(t->n_dims == e[i].nd && t->ne[0] == e[i].ne[0] && t->ne[1] == e[i].ne[1] &&
                              t->ne[2] == e[i].ne[2],
                          "%s: %s shape", rel, e[i].name);
                int want = e[i].is_weight ? wtype[k] : ILM_TYPE_F32;
                CHECK_MSG(t->type == want, "%s: %s type %s, expected %s", rel, e[i].name, ilm_ggml_type_name(t->type),
                          ilm_ggml_type_name(want));
            }
            ilm_gguf_close(g);
        }
}

static uint64_t fnv(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

TEST(gguf_rewrite_unchanged_is_byte_identical) {
    const char *srcs[] = {"hf/dense-f32.gguf", "ik/models/gemma4-tiny-moe-q4_0.gguf", "hf/ple2-f32.gguf"};
    for (int i = 0; i < 3; i++) {
        const char *out = t_tmp("rewrite.gguf");
        const char *none[] = {"no.such.key"};
        int removed = -1;
        ilm_err err;
        CHECK_EQ(ilm_gguf_strip_file(t_fixture(srcs[i]), out, none, 1, &removed, &err), 0);
        CHECK_EQ(removed, 0);
        size_t na, nb;
        char *a = t_read(t_fixture(srcs[i]), &na), *b = t_read(out, &nb);
        CHECK_MSG(a && b && na == nb && !memcmp(a, b, na), "%s: rewrite differs", srcs[i]);
        free(a);
        free(b);
    }
}

TEST(gguf_strip_removes_exactly_the_imatrix_keys) {
    // Build a copy of a fixture with the two leaking keys added in the middle of the metadata.
    ilm_gguf *g;
    ilm_err err;
    const char *src = t_fixture("ik/models/gemma4-tiny-dense-q8_0.gguf");
    if (ilm_gguf_open(&g, src, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    const char *leaky = t_tmp("leaky.gguf"), *clean = t_tmp("clean.gguf");
    ilm_gguf_writer *w = ilm_gguf_writer_new(&err);
    for (int64_t i = 0; i < g->n_kv; i++) {
        ilm_gguf_writer_copy_kv(w, &g->kv[i], &err);
        if (i == 3) {
            ilm_gguf_writer_add_str(w, "quantize.imatrix.file", "/home/builder/secret/imatrix.dat", &err);
            ilm_gguf_writer_add_str(w, "quantize.imatrix.dataset", "/srv/data/calib.txt", &err);
        }
    }
    for (int64_t i = 0; i < g->n_tensors; i++)
        ilm_gguf_writer_add_tensor(w, g->tensors[i].name, g->tensors[i].type, g->tensors[i].n_dims, g->tensors[i].ne,
                                   &err);
    CHECK_EQ(ilm_gguf_writer_begin(w, leaky, &err), 0);
    for (int64_t i = 0; i < g->n_tensors; i++) ilm_gguf_writer_data(w, g->tensors[i].data, g->tensors[i].bytes, &err);
    CHECK_EQ(ilm_gguf_writer_finish(w, &err), 0);
    ilm_gguf_writer_free(w);

    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s strip %s %s 2>&1", t_bin(), leaky, clean);
    CHECK_EQ(t_run(cmd, &out), 0);
    free(out);
    ilm_gguf *a, *c;
    CHECK_EQ(ilm_gguf_open(&a, leaky, &err), 0);
    CHECK_EQ(ilm_gguf_open(&c, clean, &err), 0);
    CHECK_EQ(a->n_kv, g->n_kv + 2);
    CHECK_EQ(c->n_kv, g->n_kv);
    CHECK(ilm_gguf_find_kv(c, "quantize.imatrix.file") == NULL);
    CHECK(ilm_gguf_find_kv(c, "quantize.imatrix.dataset") == NULL);
    for (int64_t i = 0; i < c->n_kv; i++) CHECK_STR(c->kv[i].key, g->kv[i].key);  // order kept
    CHECK_EQ(c->n_tensors, g->n_tensors);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const ilm_gguf_tensor *tc = ilm_gguf_find_tensor(c, g->tensors[i].name);
        CHECK(tc && tc->bytes == g->tensors[i].bytes &&
              fnv(tc->data, tc->bytes) == fnv(g->tensors[i].data, g->tensors[i].bytes));
    }
    // The stripped file equals the original byte for byte.
    size_t n1, n2;
    char *o = t_read(src, &n1), *s = t_read(clean, &n2);
    CHECK(o && s && n1 == n2 && !memcmp(o, s, n1));
    free(o);
    free(s);
    // Refuses to overwrite its input; a named key is removed.
    snprintf(cmd, sizeof cmd, "%s strip %s %s 2>&1", t_bin(), clean, clean);
    CHECK(t_run(cmd, NULL) != 0);
    snprintf(cmd, sizeof cmd, "%s strip %s %s --key general.name 2>/dev/null", t_bin(), clean, t_tmp("noname.gguf"));
    CHECK_EQ(t_run(cmd, NULL), 0);
    ilm_gguf *nn;
    if (ilm_gguf_open(&nn, t_tmp("noname.gguf"), &err) == 0) {
        CHECK(ilm_gguf_find_kv(nn, "general.name") == NULL);
        CHECK_EQ(nn->n_kv, g->n_kv - 1);
        ilm_gguf_close(nn);
    } else t_fail(__FILE__, __LINE__, "%s", err.msg);
    // A failing strip (corrupt input) leaves no output and no temp file behind.
    snprintf(cmd, sizeof cmd, "head -c 3000 %s > %s; %s strip %s %s 2>/dev/null", leaky, t_tmp("cut.gguf"), t_bin(),
             t_tmp("cut.gguf"), t_tmp("never.gguf"));
    CHECK(t_run(cmd, NULL) != 0);
    CHECK(access(t_tmp("never.gguf"), F_OK) != 0);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", t_tmpdir());
    char *cnt = NULL;
    t_run(cmd, &cnt);
    CHECK(cnt && atoi(cnt) == 0);
    free(cnt);
    ilm_gguf_close(a);
    ilm_gguf_close(c);
    ilm_gguf_close(g);
}
