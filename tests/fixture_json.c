// fixture_json.c — see fixture_json.h.
#include "fixture_json.h"

#include <stdlib.h>

#include "harness.h"

ilm_json *t_load_json(const char *rel) {
    size_t n;
    char *s = t_read(t_fixture(rel), &n);
    if (!s) {
        t_fail(__FILE__, __LINE__, "cannot read %s", rel);
        return NULL;
    }
    ilm_err err;
    ilm_json *j = ilm_json_parse(s, n, &err);
    free(s);
    if (!j) t_fail(__FILE__, __LINE__, "%s: %s", rel, err.msg);
    return j;
}

int32_t *t_json_ids(const ilm_json *a, int *n) {
    *n = a ? (int)a->len : 0;
    int32_t *v = malloc(sizeof *v * (size_t)(*n + 1));
    for (int i = 0; v && i < *n; i++) v[i] = (int32_t)a->items[i].num;
    return v;
}
