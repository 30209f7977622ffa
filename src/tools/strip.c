// strip.c — rewrite a GGUF file without chosen metadata keys (see strip.h): the other keys'
// raw bytes, the alignment and every tensor are copied unchanged.
#include "tools/strip.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/gguf_write.h"

int ilm_gguf_strip_file(const char *in, const char *out, const char *const *keys, int n_keys, int *n_removed,
                        ilm_err *err) {
    struct stat si, so;
    if (stat(in, &si) == 0 && stat(out, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        return ilm_fail(err, "%s: refusing to overwrite the input file", out);
    ilm_gguf *g;
    if (ilm_gguf_open(&g, in, err)) return -1;
    ilm_gguf_writer *w = ilm_gguf_writer_new(err);
    int rc = -1;
    *n_removed = 0;
    if (!w) goto done;
    ilm_gguf_writer_set_alignment(w, g->alignment);
    for (int64_t i = 0; i < g->n_kv; i++) {
        bool drop = false;
        for (int k = 0; k < n_keys; k++)
            if (!strcmp(g->kv[i].key, keys[k])) drop = true;
        if (drop) {
            (*n_removed)++;
            continue;
        }
        if (ilm_gguf_writer_copy_kv(w, &g->kv[i], err)) goto done;
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const ilm_gguf_tensor *t = &g->tensors[i];
        if (ilm_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, err)) goto done;
    }
    if (ilm_gguf_writer_begin(w, out, err)) goto done;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (ilm_gguf_writer_data(w, g->tensors[i].data, g->tensors[i].bytes, err)) goto done;
    if (ilm_gguf_writer_finish(w, err)) goto done;
    rc = 0;
done:
    ilm_gguf_writer_free(w);
    ilm_gguf_close(g);
    return rc;
}
