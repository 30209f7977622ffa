// cmd_inspect.c — `ironlm inspect FILE [--json] [--full]`: a GGUF file's metadata and tensor
// table, as text (long strings and arrays shortened unless --full) or as JSON.
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "format/gguf.h"
#include "format/json.h"

static void print_scalar(FILE *f, const ilm_gguf_value *v, bool json) {
    switch (v->type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: fprintf(f, "%" PRIu64, v->u64); break;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64: fprintf(f, "%" PRId64, v->i64); break;
    case GGUF_F32: case GGUF_F64: fprintf(f, "%.9g", v->f64); break;
    case GGUF_BOOL: fputs(v->u64 ? "true" : "false", f); break;
    case GGUF_STRING:
        if (json) ilm_json_write_str(f, v->str.ptr, v->str.len);
        else fprintf(f, "\"%.*s\"", (int)(v->str.len > 200 && !json ? 200 : v->str.len), v->str.ptr);
        break;
    default: break;
    }
}

static void print_value(FILE *f, const ilm_gguf_value *v, bool json, bool full) {
    if (v->type != GGUF_ARRAY) {
        print_scalar(f, v, json);
        return;
    }
    uint64_t n = v->arr.count, shown = full || json ? n : (n < 8 ? n : 8);
    if (!json) fprintf(f, "%s[%" PRIu64 "] ", ilm_gguf_vtype_name(v->arr.elem_type), n);
    if (json && !full && n > 64) shown = 64;
    fputc('[', f);
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", f);
        ilm_gguf_value e = {0};
        e.type = v->arr.elem_type;
        if (e.type == GGUF_STRING) e.str = v->arr.strs[i];
        else if (e.type == GGUF_ARRAY) e = v->arr.vals[i];
        else if (e.type == GGUF_F32 || e.type == GGUF_F64) e.f64 = ilm_gguf_arr_float(v, i);
        else if (e.type == GGUF_I8 || e.type == GGUF_I16 || e.type == GGUF_I32 || e.type == GGUF_I64)
            e.i64 = ilm_gguf_arr_int(v, i);
        else e.u64 = (uint64_t)ilm_gguf_arr_int(v, i);
        print_value(f, &e, json, full);
    }
    if (shown < n) fputs(json ? "" : ", ...", f);
    fputc(']', f);
}

static void shape_str(const ilm_gguf_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int d = 0; d < t->n_dims; d++) o += (size_t)snprintf(buf + o, n - o, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
    snprintf(buf + o, n - o, "]");
}

static const char INSPECT_HELP[] =
    "usage: ironlm inspect FILE [--json] [--full]\n"
    "  FILE       a GGUF file (model, drafter or vocabulary)\n"
    "  --json     metadata and tensors as JSON\n"
    "  --full     every array element and the whole vocabulary\n"
    "  -h, --help this help\n";

int ilm_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false, full = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(INSPECT_HELP, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--full")) full = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ironlm: error: inspect: unknown option %s\n", argv[i]);
            return 2;
        } else if (!path) path = argv[i];
        else {
            fprintf(stderr, "ironlm: error: inspect: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "ironlm: error: usage: ironlm inspect FILE [--json] [--full]\n");
        return 2;
    }
    ilm_err err;
    ilm_gguf *g;
    if (ilm_gguf_open(&g, path, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    uint64_t n_params = 0, n_bytes = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const ilm_gguf_tensor *t = &g->tensors[i];
        n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        n_bytes += t->bytes;
    }
    FILE *f = stdout;
    if (json) {
        fputs("{\"file\": ", f);
        ilm_json_write_str(f, path, strlen(path));
        fprintf(f, ", \"version\": %u, \"alignment\": %zu, \"data_offset\": %zu, \"metadata\": [", g->version,
                g->alignment, g->data_offset);
        for (int64_t i = 0; i < g->n_kv; i++) {
            const ilm_gguf_kv *kv = &g->kv[i];
            fputs(i ? ",\n  {\"key\": " : "\n  {\"key\": ", f);
            ilm_json_write_str(f, kv->key, strlen(kv->key));
            fprintf(f, ", \"type\": \"%s", ilm_gguf_vtype_name(kv->val.type));
            if (kv->val.type == GGUF_ARRAY)
                fprintf(f, "\", \"elem_type\": \"%s\", \"count\": %" PRIu64, ilm_gguf_vtype_name(kv->val.arr.elem_type),
                        kv->val.arr.count);
            else fputc('"', f);
            fputs(", \"value\": ", f);
            print_value(f, &kv->val, true, full);
            fputc('}', f);
        }
        fputs("],\n \"tensors\": [", f);
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const ilm_gguf_tensor *t = &g->tensors[i];
            fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
            ilm_json_write_str(f, t->name, strlen(t->name));
            fprintf(f, ", \"type\": \"%s\", \"shape\": [", ilm_ggml_type_name(t->type));
            for (int d = 0; d < t->n_dims; d++) fprintf(f, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
            fprintf(f, "], \"offset\": %" PRIu64 ", \"bytes\": %zu}", t->offset, t->bytes);
        }
        fprintf(f, "],\n \"n_tensors\": %" PRId64 ", \"n_params\": %" PRIu64 ", \"tensor_bytes\": %" PRIu64 "}\n",
                g->n_tensors, n_params, n_bytes);
    } else {
        fprintf(f, "%s: GGUF v%u, %" PRId64 " metadata keys, %" PRId64 " tensors, alignment %zu\n", path, g->version,
                g->n_kv, g->n_tensors, g->alignment);
        fputs("\nmetadata:\n", f);
        for (int64_t i = 0; i < g->n_kv; i++) {
            const ilm_gguf_kv *kv = &g->kv[i];
            fprintf(f, "  %-48s %-7s = ", kv->key, ilm_gguf_vtype_name(kv->val.type));
            print_value(f, &kv->val, false, full);
            fputc('\n', f);
        }
        fprintf(f, "\ntensors:\n  %-44s %-6s %-26s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const ilm_gguf_tensor *t = &g->tensors[i];
            char shape[128];
            shape_str(t, shape, sizeof shape);
            fprintf(f, "  %-44s %-6s %-26s %12" PRIu64 " %12zu\n", t->name, ilm_ggml_type_name(t->type), shape,
                    t->offset, t->bytes);
        }
        fprintf(f, "\ntotal: %" PRId64 " tensors, %" PRIu64 " parameters, %" PRIu64 " bytes (%.2f MiB), file %zu bytes\n",
                g->n_tensors, n_params, n_bytes, (double)n_bytes / (1024.0 * 1024.0), g->size);
    }
    ilm_gguf_close(g);
    return 0;
}
