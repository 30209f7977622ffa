// json.h — a small JSON reader (DOM) and string escaping for writers.
// Used by tests (fixture references), bench output and the server.
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "base/buf.h"
#include "base/util.h"

enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

typedef struct ilm_json {
    int type;
    double num;               // JSON_NUM, JSON_BOOL (0/1)
    char *str;                // JSON_STR (NUL-terminated, may contain NULs: see len)
    size_t len;               // string length, or element count for ARR/OBJ
    struct ilm_json *items;   // ARR/OBJ elements
    char **keys;              // OBJ keys (parallel to items)
} ilm_json;

// Parses text[0..n). Returns NULL with err set on malformed input.
ilm_json *ilm_json_parse(const char *text, size_t n, ilm_err *err);
void ilm_json_free(ilm_json *j);
// Object member by key (NULL if absent or j is not an object).
const ilm_json *ilm_json_get(const ilm_json *j, const char *key);
// Array element (NULL if out of range).
const ilm_json *ilm_json_at(const ilm_json *j, size_t i);
// Writes s as a quoted, escaped JSON string.
void ilm_json_write_str(FILE *f, const char *s, size_t len);
// Appends s as a quoted JSON string: escapes quotes, backslashes and control characters, and
// replaces each byte that is not part of valid UTF-8 with U+FFFD (so the output always parses).
void ilm_json_buf_str(ilm_buf *b, const char *s, size_t len);
// A value as compact JSON (numbers: integers below 1e15 without a fraction, else %.17g).
void ilm_json_buf_value(ilm_buf *b, const ilm_json *v);
