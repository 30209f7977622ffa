// fuzz_json.c — libFuzzer target for the JSON reader and the string writer (make fuzz).
//
// Parses the input; on success walks the DOM and re-serialises every string and key with
// ilm_json_buf_str: the output must parse back as one JSON string, equal to the original when
// that was valid UTF-8. The raw input is also written as a string and read back the same way.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], len, cp, min;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000, cp = c & 0x07;
        else return false;
        if (n - i < len) return false;
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

// Writes s as a JSON string and parses it back; aborts when that fails or changes valid text.
static void roundtrip(const char *s, size_t n) {
    ilm_buf b = {0};
    ilm_json_buf_str(&b, s, n);
    if (b.oom) abort();
    if (!valid_utf8((const unsigned char *)b.p, b.len)) abort();
    ilm_err err;
    ilm_json *j = ilm_json_parse(b.p, b.len, &err);
    if (!j || j->type != JSON_STR) abort();
    if (valid_utf8((const unsigned char *)s, n)) {
        if (j->len != n || memcmp(j->str, s, n) != 0) abort();
    }
    if (!valid_utf8((const unsigned char *)j->str, j->len)) abort();
    ilm_json_free(j);
    ilm_buf_free(&b);
}

static void walk(const ilm_json *j, int depth) {
    if (depth > 200) abort();
    switch (j->type) {
    case JSON_STR:
        if (j->str[j->len] != 0) abort();
        roundtrip(j->str, j->len);
        break;
    case JSON_ARR:
    case JSON_OBJ:
        for (size_t i = 0; i < j->len; i++) {
            if (j->type == JSON_OBJ) {
                roundtrip(j->keys[i], strlen(j->keys[i]));
                if (ilm_json_get(j, j->keys[i]) == NULL) abort();
            }
            if (ilm_json_at(j, i) != &j->items[i]) abort();
            walk(&j->items[i], depth + 1);
        }
        if (ilm_json_at(j, j->len) != NULL) abort();
        break;
    case JSON_NULL:
    case JSON_BOOL:
    case JSON_NUM:
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ilm_err err;
    ilm_json *j = ilm_json_parse((const char *)data, size, &err);
    if (j) {
        walk(j, 0);
        ilm_json_free(j);
    } else if (!err.msg[0]) {
        abort();
    }
    roundtrip((const char *)data, size < 4096 ? size : 4096);
    return 0;
}
