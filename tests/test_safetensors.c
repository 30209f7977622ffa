// test_safetensors.c — the safetensors reader: a valid file, sharded checkpoints, and the
// corrupted-file corpus (each variant gives one error line naming what is wrong).
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "harness.h"

// Writes u64 len(header) + header + data to tmp/name; returns the path.
static const char *write_st(const char *name, const char *header, const void *data, size_t n) {
    const char *path = t_tmp(name);
    FILE *f = fopen(path, "wb");
    uint64_t len = strlen(header);
    fwrite(&len, 8, 1, f);
    fwrite(header, 1, len, f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

static const char *VALID =
    "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[22,30]},"
    "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[30,30]}}";

TEST(safetensors_reads_valid_file) {
    uint8_t data[30];
    float a[4] = {1, 2, 3, -4};
    memcpy(data, a, 16);
    uint16_t b[3] = {0x3f80, 0x4000, 0xc040};  // 1, 2, -3 in bf16
    memcpy(data + 16, b, 6);
    int64_t c = -7;
    memcpy(data + 22, &c, 8);
    const char *p = write_st("ok.safetensors", VALID, data, sizeof data);
    ilm_st *s;
    ilm_err err;
    CHECK_EQ(ilm_st_open_file(&s, p, &err), 0);
    if (!s) return;
    CHECK_EQ(s->n_tensors, 4);
    const ilm_st_tensor *t = ilm_st_find(s, "a");
    CHECK(t && t->dtype == ILM_ST_F32 && t->n_dims == 2 && t->shape[0] == 2 && t->n_elem == 4);
    CHECK(t && ((const float *)t->data)[3] == -4);
    t = ilm_st_find(s, "b");
    CHECK(t && t->dtype == ILM_ST_BF16 && t->bytes == 6 && ((const uint16_t *)t->data)[2] == 0xc040);
    t = ilm_st_find(s, "c");
    CHECK(t && t->n_dims == 0 && t->n_elem == 1);
    CHECK(ilm_st_find(s, "z") && ilm_st_find(s, "z")->bytes == 0);
    CHECK(!ilm_st_find(s, "__metadata__") && !ilm_st_find(s, "q"));
    CHECK_STR(s->tensors[0].name, "a");  // by name
    ilm_st_close(s);
}

// One corrupted variant: the open must fail with one line containing `want`.
static void expect_error(const char *name, const char *header, const void *data, size_t n, const char *want) {
    const char *p = write_st(name, header, data, n);
    ilm_st *s = NULL;
    ilm_err err;
    int rc = ilm_st_open_file(&s, p, &err);
    CHECK_MSG(rc != 0, "%s: opened a corrupted file", name);
    if (rc == 0) {
        ilm_st_close(s);
        return;
    }
    CHECK_MSG(strstr(err.msg, want) != NULL, "%s: error '%s' lacks '%s'", name, err.msg, want);
    CHECK_MSG(!strchr(err.msg, '\n'), "%s: error is not one line", name);
}

TEST(safetensors_rejects_corrupted_files) {
    uint8_t data[64] = {0};
    // truncated data section
    expect_error("trunc.st", VALID, data, 20, "data_offsets");
    // header length beyond the file / absurd
    {
        const char *p = t_tmp("hlen.st");
        FILE *f = fopen(p, "wb");
        uint64_t len = 1000;
        fwrite(&len, 8, 1, f);
        fwrite("{}", 1, 2, f);
        fclose(f);
        ilm_st *s;
        ilm_err err;
        CHECK(ilm_st_open_file(&s, p, &err) != 0 && strstr(err.msg, "exceeds"));
        f = fopen(p, "wb");
        len = (uint64_t)1 << 40;
        fwrite(&len, 8, 1, f);
        fclose(f);
        CHECK(ilm_st_open_file(&s, p, &err) != 0 && strstr(err.msg, "bad header length"));
        f = fopen(p, "wb");
        fwrite("abc", 1, 3, f);
        fclose(f);
        CHECK(ilm_st_open_file(&s, p, &err) != 0 && strstr(err.msg, "truncated"));
    }
    expect_error("overlap.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                 data, 24, "overlaps");
    expect_error("gap.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
                 data, 24, "gap");
    expect_error("tail.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 12,
                 "tensors cover 8");
    expect_error("dsize.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data, 8,
                 "do not fill");
    expect_error("dup.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                 data, 16, "duplicate tensor name a");
    expect_error("dtype.st", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", data, 2,
                 "unknown dtype F8_E4M3");
    expect_error("huge.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", data,
                 8, "overflows");
    expect_error("neg.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", data, 8, "bad shape");
    expect_error("offs.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data, 8,
                 "bad data_offsets");
    expect_error("json.st", "{\"a\":{\"dtype\":", data, 8, "bad header JSON");
    expect_error("noobj.st", "[1,2]", data, 0, "not a JSON object");
    expect_error("fields.st", "{\"a\":{\"dtype\":\"F32\"}}", data, 0, "needs dtype, shape and data_offsets");
}

TEST(safetensors_refuses_fifo_and_directories) {
    const char *p = t_tmp("st.fifo");
    unlink(p);
    CHECK_EQ(mkfifo(p, 0600), 0);
    ilm_st *s;
    ilm_err err;
    CHECK(ilm_st_open_file(&s, p, &err) != 0 && strstr(err.msg, "not a regular file"));  // must not block
    CHECK(ilm_st_open_file(&s, t_tmpdir(), &err) != 0 && strstr(err.msg, "not a regular file"));
    unlink(p);
}

TEST(safetensors_sharded_index) {
    const char *dir = t_tmp("shards");
    mkdir(dir, 0700);
    uint8_t data[16] = {0};
    char name[600], idx[600];
    snprintf(name, sizeof name, "shards/m-00001.safetensors");
    write_st(name, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    snprintf(name, sizeof name, "shards/m-00002.safetensors");
    write_st(name, "{\"y\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", data, 8);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(idx, "w");
    fprintf(f, "{\"metadata\":{},\"weight_map\":{\"y\":\"m-00002.safetensors\",\"x\":\"m-00001.safetensors\"}}");
    fclose(f);
    ilm_st *s;
    ilm_err err;
    CHECK_EQ(ilm_st_open_dir(&s, dir, &err), 0);
    if (s) {
        CHECK_EQ(s->n_shards, 2);
        CHECK(ilm_st_find(s, "y") && ilm_st_find(s, "y")->shard == 1);
        CHECK_STR(s->tensors[0].name, "x");
        ilm_st_close(s);
    }
    // a tensor listed under the wrong shard
    f = fopen(idx, "w");
    fprintf(f, "{\"weight_map\":{\"y\":\"m-00001.safetensors\",\"x\":\"m-00001.safetensors\"}}");
    fclose(f);
    CHECK(ilm_st_open_dir(&s, dir, &err) != 0 && strstr(err.msg, "tensor y"));
    // a shard tensor missing from the index
    f = fopen(idx, "w");
    fprintf(f, "{\"weight_map\":{\"y\":\"m-00002.safetensors\"}}");
    fclose(f);
    write_st("shards/m-00002.safetensors",
             "{\"y\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
             "\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[8,16]}}", data, 16);
    CHECK(ilm_st_open_dir(&s, dir, &err) != 0 && strstr(err.msg, "not in the index"));
    // a shard name with a path in it
    f = fopen(idx, "w");
    fprintf(f, "{\"weight_map\":{\"y\":\"../m-00002.safetensors\"}}");
    fclose(f);
    CHECK(ilm_st_open_dir(&s, dir, &err) != 0 && strstr(err.msg, "bad shard file name"));
}
