// tile.h — the one column-tile driver of the SIMD matrix products (mm_q8, mm_f32 of every set).
//
// A product y[c*ldy + r] = Σ_k W[r][k]·x_c[k] is cut into tiles of ng packed row groups
// (simd/pack.h; ng <= the set's row groups per tile) x nc activation columns (nc <= 4).
// ilm_tile_drive walks the tiles, row groups outer and columns inner, and calls
// tiles[ng-1][nc-1]: a per-set table of tile kernels indexed by group and column count, as
// ik_llama.cpp's iqk calls funcs[ncols]. A kernel keeps its ng x nc accumulators in
// registers over all of K and stores them itself, so the driver never sees a vector type.
//
// Each set builds its table with ILM_TILES_1x4 / ILM_TILES_2x4 from one always-inline
// kernel(const ilm_tile *, ng, nc): every entry is that kernel with ng and nc constants,
// compiled with the including file's -m flags, so its group and column loops unroll into
// registers (rolled, the sums live on the stack: 2-5x slower). The call through the table is
// once per tile, which runs over all of K.
//
// Bit-exactness (kernels.h): a column's result does not depend on which tile it fell in,
// because every kernel runs per (row, column) the scalar reference's sequence whatever nc.
#pragma once
#include <stddef.h>

#include "kernels.h"
#include "pack.h"

#define ILM_TILE_COLS 4  // columns per tile: 4 x 2 groups of accumulators fit every set's registers

// One tile, as the driver hands it to a kernel.
typedef struct {
    int type, K;          // weight type and columns (the matrix's)
    const char *grp;      // first packed group; group i of the tile at grp + i*gbytes
    size_t gbytes;        // bytes per packed group
    int valid;            // output rows left from the tile's first row (may exceed ng*rows)
    const void *x;        // activations of the tile's first column (ilm_q8a or float rows)
    float *y;             // output of the tile's first row and column; column t at y + t*ldy
    int ldy;
} ilm_tile;

typedef void (*ilm_tile_fn)(const ilm_tile *t);

// table[ng-1][nc-1] = kernel(t, ng, nc) with constant ng and nc.
#define ILM_TILE_FN_(table, kernel, NG, NC) \
    static void table##_##NG##x##NC(const ilm_tile *t) { kernel(t, NG, NC); }
#define ILM_TILE_ROW_(table, kernel, NG)                                               \
    ILM_TILE_FN_(table, kernel, NG, 1) ILM_TILE_FN_(table, kernel, NG, 2)              \
    ILM_TILE_FN_(table, kernel, NG, 3) ILM_TILE_FN_(table, kernel, NG, 4)
#define ILM_TILE_ENTRIES_(table, NG) \
    {table##_##NG##x1, table##_##NG##x2, table##_##NG##x3, table##_##NG##x4}
#define ILM_TILES_1x4(table, kernel)  \
    ILM_TILE_ROW_(table, kernel, 1)   \
    static const ilm_tile_fn table[1][ILM_TILE_COLS] = {ILM_TILE_ENTRIES_(table, 1)};
#define ILM_TILES_2x4(table, kernel)                                   \
    ILM_TILE_ROW_(table, kernel, 1) ILM_TILE_ROW_(table, kernel, 2)    \
    static const ilm_tile_fn table[2][ILM_TILE_COLS] = {ILM_TILE_ENTRIES_(table, 1), ILM_TILE_ENTRIES_(table, 2)};

// The cases of a switch over the weight types mm_f32 takes: each calls f(TYPE, ...) with
// TYPE a constant, so one always-inline f gives a tile specialized per type.
#define ILM_TILE_TYPE_CASES(f, ...)                                  \
    case ILM_TYPE_F32: f(ILM_TYPE_F32, __VA_ARGS__); break;          \
    case ILM_TYPE_F16: f(ILM_TYPE_F16, __VA_ARGS__); break;          \
    case ILM_TYPE_BF16: f(ILM_TYPE_BF16, __VA_ARGS__); break;        \
    case ILM_TYPE_Q4_0: f(ILM_TYPE_Q4_0, __VA_ARGS__); break;        \
    case ILM_TYPE_Q8_0: f(ILM_TYPE_Q8_0, __VA_ARGS__); break;

// Groups per tile of a table made by ILM_TILES_1x4 / ILM_TILES_2x4 (its height).
#define ILM_TILE_GROUPS(table) ((int)(sizeof(table) / sizeof((table)[0])))

// Rows [r0, r1) of w (r0 a multiple of rows) against n columns of x, column c at
// x + c*x_col_bytes. rows: the set's interleave; max_ng: ILM_TILE_GROUPS(tiles).
static inline void ilm_tile_drive(const ilm_tile_fn (*tiles)[ILM_TILE_COLS], int rows, int max_ng,
                                  const ilm_matrix *w, int r0, int r1, const void *x, size_t x_col_bytes,
                                  int n, float *y, int ldy) {
    const int rend = r1 < w->rows ? r1 : w->rows;
    const int g_end = (rend + rows - 1) / rows;
    ilm_tile t = {.type = w->type, .K = w->cols, .gbytes = pk_group_bytes(w->type, w->cols, rows), .ldy = ldy};
    for (int g = r0 / rows; g < g_end; g += max_ng) {
        const int ng = g_end - g < max_ng ? g_end - g : max_ng;
        t.grp = (const char *)w->data + (size_t)g * t.gbytes;
        t.valid = rend - g * rows;
        for (int c0 = 0; c0 < n; c0 += ILM_TILE_COLS) {
            const int nc = n - c0 < ILM_TILE_COLS ? n - c0 : ILM_TILE_COLS;
            t.x = (const char *)x + (size_t)c0 * x_col_bytes;
            t.y = y + (size_t)c0 * ldy + (size_t)g * rows;
            tiles[ng - 1][nc - 1](&t);
        }
    }
}
