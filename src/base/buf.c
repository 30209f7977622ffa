// buf.c — the growable byte buffer. See buf.h.
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ilm_buf_free(ilm_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

int ilm_buf_reserve(ilm_buf *b, size_t n) {
    if (b->oom) return -1;
    if (n > ((size_t)-1) / 2 - b->len - 1) {
        b->oom = true;
        return -1;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void ilm_buf_add(ilm_buf *b, const void *s, size_t n) {
    if (ilm_buf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void ilm_buf_puts(ilm_buf *b, const char *s) { ilm_buf_add(b, s, strlen(s)); }

void ilm_buf_putc(ilm_buf *b, char c) { ilm_buf_add(b, &c, 1); }

void ilm_buf_printf(ilm_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        ilm_buf_add(b, small, (size_t)n);
        return;
    }
    if (ilm_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ilm_buf_consume(ilm_buf *b, size_t n) {
    if (n >= b->len) {
        ilm_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = 0;
}
