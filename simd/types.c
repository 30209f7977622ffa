// types.c — the type table (see types.h for the rule on adding a type). Built for the
// baseline CPU; plain data, no state.
#include "types.h"

#define F ILM_ACT_F32
#define Q ILM_ACT_Q8
#define A ILM_ACT_FA
#define N(name) {name, 1, 0, false, 0}

static const ilm_type_traits types[ILM_TYPE_COUNT] = {
    //                name     block   block_bytes              weight  acts
    [ILM_TYPE_F32]  = {"F32",  1,      4,                       true,   F},
    [ILM_TYPE_F16]  = {"F16",  1,      2,                       true,   F},
    [ILM_TYPE_BF16] = {"BF16", 1,      2,                       true,   F},
    [ILM_TYPE_Q4_0] = {"Q4_0", ILM_QK, sizeof(ilm_block_q4_0),  true,   F | Q | A},
    [ILM_TYPE_Q8_0] = {"Q8_0", ILM_QK, sizeof(ilm_block_q8_0),  true,   F | Q | A},
    [ILM_TYPE_I32]  = {"I32",  1,      4,                       false,  0},  // token orderings
    // ggml types ironlm only names (GGUF listings, error messages): no size, no kernels
    [3] = N("Q4_1"), [6] = N("Q5_0"), [7] = N("Q5_1"), [9] = N("Q8_1"), [10] = N("Q2_K"), [11] = N("Q3_K"),
    [12] = N("Q4_K"), [13] = N("Q5_K"), [14] = N("Q6_K"), [15] = N("Q8_K"), [16] = N("IQ2_XXS"),
    [17] = N("IQ2_XS"), [18] = N("IQ3_XXS"), [19] = N("IQ1_S"), [20] = N("IQ4_NL"), [21] = N("IQ3_S"),
    [22] = N("IQ2_S"), [23] = N("IQ4_XS"), [24] = N("I8"), [25] = N("I16"), [27] = N("I64"),
    [28] = N("F64"), [29] = N("IQ1_M"), [34] = N("TQ1_0"), [35] = N("TQ2_0"),
};
static const ilm_type_traits unknown = N("unknown");

#undef F
#undef Q
#undef A
#undef N

const ilm_type_traits *ilm_type(int t) {
    return t >= 0 && t < ILM_TYPE_COUNT && types[t].name ? &types[t] : &unknown;
}

const char *ilm_ggml_type_name(int t) { return ilm_type(t)->name; }

size_t ilm_row_bytes(int type, int K) {
    const ilm_type_traits *tt = ilm_type(type);
    if (K < 0 || K % tt->block) return 0;
    return (size_t)(K / tt->block) * tt->block_bytes;
}
