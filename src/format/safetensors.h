// safetensors.h — validated, mmap'd reader of Hugging Face safetensors checkpoints: one file,
// or a sharded checkpoint through model.safetensors.index.json. Knows nothing about Gemma.
//
// File layout: u64 little-endian header length N, N bytes of JSON header
// {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
// then the data section; offsets are relative to its start. Every violation (header length,
// offsets not sorted / contiguous / in bounds, element count × dtype size ≠ extent, duplicate
// names, unknown dtypes, ...) is one error line "PATH: what (value)", never a crash.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

enum ilm_st_dtype { ILM_ST_F32, ILM_ST_F16, ILM_ST_BF16, ILM_ST_I64, ILM_ST_I32, ILM_ST_I8, ILM_ST_U8 };

#define ILM_ST_MAX_DIMS 8
#define ILM_ST_MAX_HEADER (100u << 20)  // header length limit (the reference library's)

typedef struct {
    char *name;                    // NUL-terminated copy
    int dtype;                     // enum ilm_st_dtype
    int n_dims;                    // 0..ILM_ST_MAX_DIMS
    int64_t shape[ILM_ST_MAX_DIMS];  // outermost first (PyTorch order)
    size_t n_elem, bytes;
    const void *data;              // into the shard's mapping
    int shard;                     // index into ilm_st.shards
} ilm_st_tensor;

typedef struct {
    char *path;
    const uint8_t *map;
    size_t size;
    bool owns_map;
} ilm_st_shard;

typedef struct {
    ilm_st_shard *shards;
    int n_shards;
    ilm_st_tensor *tensors;        // shard by shard, by name within a shard
    size_t n_tensors;
    ilm_st_tensor **by_name;       // sorted by name (lookup)
} ilm_st;

// One .safetensors file. Refuses a non-regular file (a FIFO, a directory) before opening it.
int ilm_st_open_file(ilm_st **out, const char *path, ilm_err *err);
// A caller-owned buffer (the fuzzer); `name` is used in messages.
int ilm_st_open_mem(ilm_st **out, const void *data, size_t size, const char *name, ilm_err *err);
// A checkpoint directory: DIR/model.safetensors.index.json (weight_map → shards, each opened
// once; every listed tensor must be in its shard and every shard tensor listed), else
// DIR/model.safetensors.
int ilm_st_open_dir(ilm_st **out, const char *dir, ilm_err *err);
void ilm_st_close(ilm_st *s);

const ilm_st_tensor *ilm_st_find(const ilm_st *s, const char *name);
const char *ilm_st_dtype_name(int dtype);
size_t ilm_st_dtype_size(int dtype);
// Opens path for reading only if it is a regular file (stat first: opening a FIFO would block).
// Returns the descriptor or -1 with err set.
int ilm_open_regular(const char *path, size_t *size, ilm_err *err);
