// gguf.h — GGUF v2/v3 container: a validated, mmap'd reader (the writer: gguf_write.h).
// Knows the file format and nothing about Gemma (docs/gemma4.md §3.1).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/util.h"
#include "simd/types.h"  // tensor types: ilm_type(), ilm_ggml_type_name()

#define GGUF_MAGIC 0x46554747u  // "GGUF" little-endian

enum ilm_gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12,
};

typedef struct {
    const char *ptr;   // not NUL-terminated; points into the file
    uint64_t len;
} ilm_gguf_str;

typedef struct ilm_gguf_value {
    int type;                     // enum ilm_gguf_vtype
    union {
        uint64_t u64;             // every unsigned integer type and bool
        int64_t i64;              // every signed integer type
        double f64;               // f32 and f64
        ilm_gguf_str str;
        struct {
            int elem_type;
            uint64_t count;
            const void *data;     // fixed-size elements: raw little-endian bytes in the file
            ilm_gguf_str *strs;   // string elements
            struct ilm_gguf_value *vals;  // nested-array elements
        } arr;
    };
} ilm_gguf_value;

typedef struct {
    char *key;                    // NUL-terminated copy
    ilm_gguf_value val;
    const uint8_t *raw;           // the type tag and value bytes exactly as in the file
    size_t raw_len;
} ilm_gguf_kv;

typedef struct {
    char *name;                   // NUL-terminated copy
    int type;                     // ggml type (ILM_TYPE_*)
    int n_dims;                   // 0..4 (0 = scalar)
    int64_t ne[4];                // ne[i] = 1 for i >= n_dims
    uint64_t offset;              // relative to the data section
    size_t bytes;
    const void *data;             // into the mapping
} ilm_gguf_tensor;

typedef struct {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    size_t alignment;
    size_t data_offset;           // start of the tensor data section in the file
    int64_t n_kv, n_tensors;
    ilm_gguf_kv *kv;
    ilm_gguf_tensor *tensors;
    bool owns_map;                // mapped by ilm_gguf_open (unmapped on close)
    // private: name hash index
    int32_t *index;
    size_t index_cap;
} ilm_gguf;

// Maps and validates a file. Every violation is a one-line error "PATH: what (value)".
int ilm_gguf_open(ilm_gguf **out, const char *path, ilm_err *err);
// Same, over a caller-owned buffer (the fuzzer uses this); `name` is used in messages.
int ilm_gguf_open_mem(ilm_gguf **out, const void *data, size_t size, const char *name, ilm_err *err);
void ilm_gguf_close(ilm_gguf *g);

const ilm_gguf_kv *ilm_gguf_find_kv(const ilm_gguf *g, const char *key);
const ilm_gguf_tensor *ilm_gguf_find_tensor(const ilm_gguf *g, const char *name);

// Typed metadata getters: return 0 and set *out, or -1 with an error naming the key
// (missing, or a type that cannot be converted without loss).
int ilm_gguf_get_u32(const ilm_gguf *g, const char *key, uint32_t *out, ilm_err *err);
int ilm_gguf_get_f32(const ilm_gguf *g, const char *key, float *out, ilm_err *err);
int ilm_gguf_get_bool(const ilm_gguf *g, const char *key, bool *out, ilm_err *err);
// Optional keys: absent, *out = def and 0; present, exactly as the getters above.
int ilm_gguf_get_u32_or(const ilm_gguf *g, const char *key, uint32_t def, uint32_t *out, ilm_err *err);
int ilm_gguf_get_f32_or(const ilm_gguf *g, const char *key, float def, float *out, ilm_err *err);
int ilm_gguf_get_bool_or(const ilm_gguf *g, const char *key, bool def, bool *out, ilm_err *err);
// Returns a malloc'd NUL-terminated copy.
int ilm_gguf_get_str(const ilm_gguf *g, const char *key, char **out, ilm_err *err);
// Integer array element i as int64 (any integer/bool element type).
int64_t ilm_gguf_arr_int(const ilm_gguf_value *v, uint64_t i);
double ilm_gguf_arr_float(const ilm_gguf_value *v, uint64_t i);
// Integer-or-array metadata (docs/gemma4.md §3.1): fills out[0..n) from a scalar (broadcast)
// or an array of exactly n elements.
int ilm_gguf_get_u32_per_layer(const ilm_gguf *g, const char *key, int n, int32_t *out, ilm_err *err);

const char *ilm_gguf_vtype_name(int t);
size_t ilm_gguf_vtype_size(int t);      // bytes of one value of a fixed-size type (0: string, array)
// Bytes of a tensor of this type and shape; false on overflow or a bad shape.
bool ilm_ggml_tensor_bytes(int type, int n_dims, const int64_t *ne, size_t *out);
