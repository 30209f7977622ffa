// weight.h — a weight matrix as the matmuls (matmul.h) multiply it: its GGUF tensor, the
// kernel-layout matrix and the placed packed copies.
//
// Defined in runtime/ so that matmul.h needs nothing from model/; model.h includes this
// header for its layer tables. Include order in runtime/: topology.h <- threadpool.h <-
// placement.h <- weight.h <- matmul.h.
#pragma once
#include "format/gguf.h"
#include "runtime/placement.h"
#include "simd/kernels.h"

// A weight matrix: its GGUF tensor and the kernel-layout copy the matmuls read.
typedef struct {
    const ilm_gguf_tensor *t;   // NULL when absent
    ilm_matrix m;               // type, rows (out), cols (K); m.data = file data or packed copy 0
    const void *file_data;      // GGUF-layout rows (embedding lookups, dequantization)
    ilm_placed placed;          // packed copies (empty when the kernel set uses the file layout)
} ilm_weight;
