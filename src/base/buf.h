// buf.h — a growable byte buffer for building text (HTTP responses, JSON, SSE events).
//
// Allocation failure is sticky: the buffer sets `oom`, drops further appends and the caller
// checks once at the end. p is NUL-terminated whenever it is non-NULL.
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} ilm_buf;

void ilm_buf_free(ilm_buf *b);
static inline void ilm_buf_reset(ilm_buf *b) {
    b->len = 0;
    b->oom = false;
    if (b->p) b->p[0] = 0;
}
// Makes room for n more bytes (plus the terminating NUL). Returns 0, or -1 (oom set).
int ilm_buf_reserve(ilm_buf *b, size_t n);
void ilm_buf_add(ilm_buf *b, const void *s, size_t n);
void ilm_buf_puts(ilm_buf *b, const char *s);
void ilm_buf_putc(ilm_buf *b, char c);
void ilm_buf_printf(ilm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Removes the first n bytes (a consumed prefix of an input or output queue).
void ilm_buf_consume(ilm_buf *b, size_t n);
