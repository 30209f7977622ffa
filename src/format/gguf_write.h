// gguf_write.h — the streaming GGUF v3 writer (src/format/gguf_write.c), used by quantize,
// strip and synth. The reader is gguf.h; the writer uses its types and value tags.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "format/gguf.h"

// Usage: w = ilm_gguf_writer_new(); add kvs; add tensor infos; ilm_gguf_writer_begin(path)
// writes the header to a temp file beside PATH (ilm_out_open in base/util.h: a PATH that
// exists and is not a regular file is refused, a symlink is written through to its target,
// an existing file's mode is kept); then the data of each tensor in order with
// ilm_gguf_writer_data (any number of chunks per tensor); ilm_gguf_writer_finish pads,
// flushes, fsyncs and renames to PATH. On any failure ilm_gguf_writer_free removes the temp file,
// so a half-written file never appears under PATH.
typedef struct ilm_gguf_writer ilm_gguf_writer;

ilm_gguf_writer *ilm_gguf_writer_new(ilm_err *err);
void ilm_gguf_writer_free(ilm_gguf_writer *w);
// Copies a key/value exactly (its raw bytes) from a reader.
int ilm_gguf_writer_copy_kv(ilm_gguf_writer *w, const ilm_gguf_kv *kv, ilm_err *err);
int ilm_gguf_writer_add_u32(ilm_gguf_writer *w, const char *key, uint32_t v, ilm_err *err);
int ilm_gguf_writer_add_i32(ilm_gguf_writer *w, const char *key, int32_t v, ilm_err *err);
int ilm_gguf_writer_add_f32(ilm_gguf_writer *w, const char *key, float v, ilm_err *err);
int ilm_gguf_writer_add_bool(ilm_gguf_writer *w, const char *key, bool v, ilm_err *err);
int ilm_gguf_writer_add_str(ilm_gguf_writer *w, const char *key, const char *v, ilm_err *err);
// Array of fixed-size elements (elem_type not STRING/ARRAY): count elements of raw LE data.
int ilm_gguf_writer_add_arr(ilm_gguf_writer *w, const char *key, int elem_type, const void *data,
                            uint64_t count, ilm_err *err);
int ilm_gguf_writer_add_str_arr(ilm_gguf_writer *w, const char *key, const char *const *strs,
                                uint64_t count, ilm_err *err);
// Alignment of the data section (default 32, or general.alignment when copied/added).
void ilm_gguf_writer_set_alignment(ilm_gguf_writer *w, size_t alignment);
int ilm_gguf_writer_add_tensor(ilm_gguf_writer *w, const char *name, int type, int n_dims,
                               const int64_t *ne, ilm_err *err);
// Total bytes the finished file will have (valid after all tensors are added).
uint64_t ilm_gguf_writer_file_size(const ilm_gguf_writer *w);
int ilm_gguf_writer_begin(ilm_gguf_writer *w, const char *path, ilm_err *err);
// The same into an open descriptor (a memfd): writes at its current position, no temp file and
// no rename; ilm_gguf_writer_finish flushes and closes only the writer's own duplicate of fd.
// `name` is used in messages.
int ilm_gguf_writer_begin_fd(ilm_gguf_writer *w, int fd, const char *name, ilm_err *err);
int ilm_gguf_writer_data(ilm_gguf_writer *w, const void *data, size_t bytes, ilm_err *err);
int ilm_gguf_writer_finish(ilm_gguf_writer *w, ilm_err *err);
