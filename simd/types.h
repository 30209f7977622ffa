// types.h — the tensor element types ironlm knows and every fact about them, in one table
// (ilm_type(), like ggml's type_traits), with their block formats.
//
// It sits at the bottom of the layer order: simd/ includes it (through kernels.h) and so
// does every layer above. The GGUF reader (sizes, names), the loaders (which types may be
// weights) and the matmul dispatch (which activations a weight takes) read their facts here.
//
// RULE: adding a quant type touches this table (simd/types.c) and the kernels (simd/: the
// block struct below, dequant_row, packed_size/pack and mm_q8/mm_f32 of every kernel set)
// and nothing else. A fact about a type that is needed elsewhere becomes a column here.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Tensor element types, numbered as ggml/GGUF number them.
enum {
    ILM_TYPE_F32 = 0,
    ILM_TYPE_F16 = 1,
    ILM_TYPE_Q4_0 = 2,
    ILM_TYPE_Q8_0 = 8,
    ILM_TYPE_I32 = 26,
    ILM_TYPE_BF16 = 30,
    ILM_TYPE_COUNT = 36,  // ggml ids below this have a name in the table
};

#define ILM_QK 32  // elements per quantization block

// GGUF block formats (docs/gemma4.md §5.2, §5.3), byte-exact.
typedef struct {
    uint16_t d;       // fp16 scale
    uint8_t qs[16];   // element j: low nibble of qs[j] (j<16), high nibble of qs[j-16]; value (q-8)*d
} ilm_block_q4_0;     // 18 bytes
typedef struct {
    uint16_t d;       // fp16 scale
    int8_t qs[32];
} ilm_block_q8_0;     // 34 bytes

// Activation kinds a matmul kernel takes (bit set).
enum {
    ILM_ACT_F32 = 1,  // mm_f32: f32 activations (W4A16/W8A16 for quantized weights)
    ILM_ACT_Q8 = 2,   // mm_q8: run-time Q8 activations (ilm_q8a)
    ILM_ACT_FA = 4,   // mm_fa: float activations, per-block dot (bf16-rounded where the set says)
};

// The activation mode of a run (`--act`): which of a weight's kernels it gets.
typedef enum {
    ILM_ACTS_Q8 = 0,    // Q8 activations for weights that take them (default)
    ILM_ACTS_BF16 = 1,  // W4A16, fast: mm_fa for weights that take it (bf16 activations on sets
                        // with bf16 dots, f32 on the others; simd/kernels.h states the error)
    ILM_ACTS_F32 = 2,   // W4A16, exact: mm_f32 for every weight (the reference)
} ilm_acts;

typedef struct {
    const char *name;     // ggml spelling, "F32", "Q4_0", ...; "unknown" outside the table
    int block;            // elements per block (1: a plain element type)
    size_t block_bytes;   // bytes per block; 0: ironlm cannot read tensors of this type
    bool weight;          // allowed as a model weight (a matrix, or a vector converted to f32)
    unsigned acts;        // ILM_ACT_* the kernels multiply weights of this type with; a
                          // weight that takes ILM_ACT_Q8 gets Q8 activations unless the run
                          // asks for float ones (ilm_acts); ILM_ACT_FA: mm_fa under bf16
} ilm_type_traits;

// Facts of ggml type t; never NULL (an id outside the table reads as "unknown", no size).
const ilm_type_traits *ilm_type(int t);
// "F32", "Q4_0", ... or "unknown".
const char *ilm_ggml_type_name(int t);
// Bytes per row of a GGUF-layout matrix with K columns of `type` (0 if K is not valid).
size_t ilm_row_bytes(int type, int K);
