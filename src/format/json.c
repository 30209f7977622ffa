// json.c — recursive-descent JSON parser with depth and size limits, and string escaping.
#include "format/json.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *p, *end, *start;
    ilm_err *err;
} jp;

static void ws(jp *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int fail(jp *s, const char *what) {
    return ilm_fail(s->err, "malformed JSON: %s at offset %ld", what, (long)(s->p - s->start));
}

static int put_utf8(char *o, size_t *n, unsigned cp) {
    if (cp < 0x80) o[(*n)++] = (char)cp;
    else if (cp < 0x800) { o[(*n)++] = (char)(0xC0 | (cp >> 6)); o[(*n)++] = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xE0 | (cp >> 12)); o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*n)++] = (char)(0xF0 | (cp >> 18)); o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
    return 0;
}

static int hex4(jp *s, unsigned *v) {
    if (s->end - s->p < 4) return fail(s, "short \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s->p[i];
        *v <<= 4;
        if (c >= '0' && c <= '9') *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') *v |= (unsigned)(c - 'A' + 10);
        else return fail(s, "bad \\u escape");
    }
    s->p += 4;
    return 0;
}

static int parse_str(jp *s, char **out, size_t *len) {
    s->p++;  // opening quote
    const char *q = s->p;
    while (q < s->end && *q != '"') q += (*q == '\\') ? 2 : 1;
    if (q >= s->end) return fail(s, "unterminated string");
    char *o = malloc((size_t)(q - s->p) + 1);
    if (!o) return ilm_fail(s->err, "out of memory");
    size_t n = 0;
    while (*s->p != '"') {
        char c = *s->p++;
        if ((unsigned char)c < 0x20) { free(o); return fail(s, "control character in string"); }
        if (c != '\\') { o[n++] = c; continue; }
        char e = *s->p++;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(s, &cp)) { free(o); return -1; }
            if (cp >= 0xD800 && cp < 0xDC00 && s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u') {
                unsigned lo;
                s->p += 2;
                if (hex4(s, &lo)) { free(o); return -1; }
                if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else { put_utf8(o, &n, 0xFFFD); cp = lo; }
            }
            put_utf8(o, &n, cp);  // \uXXXX expands to at most 3 bytes, a pair (12 chars) to 4
            break;
        }
        default: free(o); return fail(s, "bad escape");
        }
    }
    s->p++;
    o[n] = 0;
    *out = o;
    *len = n;
    return 0;
}

static int parse_val(jp *s, ilm_json *v, int depth);

static int grow(ilm_json *v, size_t *cap, int with_keys) {
    if (v->len < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    ilm_json *it = realloc(v->items, nc * sizeof *it);
    if (!it) return -1;
    v->items = it;
    if (with_keys) {
        char **k = realloc(v->keys, nc * sizeof *k);
        if (!k) return -1;
        v->keys = k;
    }
    *cap = nc;
    return 0;
}

static int parse_val(jp *s, ilm_json *v, int depth) {
    memset(v, 0, sizeof *v);
    if (depth > JSON_MAX_DEPTH) return fail(s, "nesting too deep");
    ws(s);
    if (s->p >= s->end) return fail(s, "unexpected end");
    char c = *s->p;
    if (c == '"') {
        v->type = JSON_STR;
        return parse_str(s, &v->str, &v->len);
    }
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v->type = obj ? JSON_OBJ : JSON_ARR;
        s->p++;
        size_t cap = 0;
        ws(s);
        if (s->p < s->end && *s->p == (obj ? '}' : ']')) { s->p++; return 0; }
        for (;;) {
            if (grow(v, &cap, obj)) return ilm_fail(s->err, "out of memory");
            ws(s);
            if (obj) {
                size_t kl;
                if (s->p >= s->end || *s->p != '"') return fail(s, "expected key");
                if (parse_str(s, &v->keys[v->len], &kl)) return -1;
                ws(s);
                if (s->p >= s->end || *s->p != ':') { free(v->keys[v->len]); return fail(s, "expected ':'"); }
                s->p++;
            }
            int rc = parse_val(s, &v->items[v->len], depth + 1);
            v->len++;
            if (rc) return -1;
            ws(s);
            if (s->p < s->end && *s->p == ',') { s->p++; continue; }
            if (s->p < s->end && *s->p == (obj ? '}' : ']')) { s->p++; return 0; }
            return fail(s, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (s->end - s->p >= 4 && !strncmp(s->p, "true", 4)) {
        v->type = JSON_BOOL; v->num = 1; s->p += 4; return 0;
    }
    if (s->end - s->p >= 5 && !strncmp(s->p, "false", 5)) { v->type = JSON_BOOL; s->p += 5; return 0; }
    if (s->end - s->p >= 4 && !strncmp(s->p, "null", 4)) { v->type = JSON_NULL; s->p += 4; return 0; }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t n = 0;
        while (s->p + n < s->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", s->p[n])) n++;
        memcpy(buf, s->p, n);
        buf[n] = 0;
        char *e;
        v->num = strtod(buf, &e);
        if (e == buf) return fail(s, "bad number");
        s->p += e - buf;
        v->type = JSON_NUM;
        return 0;
    }
    return fail(s, "unexpected character");
}

static void ilm_json_free_inner(ilm_json *j) {
    if (j->type == JSON_STR) free(j->str);
    if (j->type == JSON_ARR || j->type == JSON_OBJ) {
        for (size_t i = 0; i < j->len; i++) {
            ilm_json_free_inner(&j->items[i]);
            if (j->keys) free(j->keys[i]);
        }
        free(j->items);
        free(j->keys);
    }
}

ilm_json *ilm_json_parse(const char *text, size_t n, ilm_err *err) {
    ilm_json *j = calloc(1, sizeof *j);
    if (!j) { ilm_fail(err, "out of memory"); return NULL; }
    jp s = {text, text + n, text, err};
    if (parse_val(&s, j, 0)) { ilm_json_free(j); return NULL; }
    ws(&s);
    if (s.p != s.end) { fail(&s, "trailing characters"); ilm_json_free(j); return NULL; }
    return j;
}

void ilm_json_free(ilm_json *j) {
    if (!j) return;
    ilm_json_free_inner(j);
    free(j);
}

const ilm_json *ilm_json_get(const ilm_json *j, const char *key) {
    if (!j || j->type != JSON_OBJ) return NULL;
    for (size_t i = 0; i < j->len; i++)
        if (!strcmp(j->keys[i], key)) return &j->items[i];
    return NULL;
}

const ilm_json *ilm_json_at(const ilm_json *j, size_t i) {
    if (!j || (j->type != JSON_ARR && j->type != JSON_OBJ) || i >= j->len) return NULL;
    return &j->items[i];
}

void ilm_json_write_str(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') fputs("\\\"", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

// Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when it is not one.
static size_t utf8_valid(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

void ilm_json_buf_str(ilm_buf *b, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    ilm_buf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c == '"') ilm_buf_add(b, "\\\"", 2);
        else if (c == '\\') ilm_buf_add(b, "\\\\", 2);
        else if (c == '\n') ilm_buf_add(b, "\\n", 2);
        else if (c == '\r') ilm_buf_add(b, "\\r", 2);
        else if (c == '\t') ilm_buf_add(b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f) ilm_buf_printf(b, "\\u%04x", c);
        else if (c < 0x80) ilm_buf_putc(b, (char)c);
        else {
            size_t n = utf8_valid(u + i, len - i);
            if (n) {
                ilm_buf_add(b, u + i, n);
                i += n;
                continue;
            }
            ilm_buf_add(b, "\xef\xbf\xbd", 3);  // U+FFFD
        }
        i++;
    }
    ilm_buf_putc(b, '"');
}

void ilm_json_buf_value(ilm_buf *b, const ilm_json *v) {
    switch (v->type) {
    case JSON_NULL: ilm_buf_puts(b, "null"); break;
    case JSON_BOOL: ilm_buf_puts(b, v->num ? "true" : "false"); break;
    case JSON_NUM:
        if (v->num == floor(v->num) && fabs(v->num) < 1e15) ilm_buf_printf(b, "%.0f", v->num);
        else ilm_buf_printf(b, "%.17g", v->num);
        break;
    case JSON_STR: ilm_json_buf_str(b, v->str, v->len); break;
    default:
        ilm_buf_putc(b, v->type == JSON_ARR ? '[' : '{');
        for (size_t i = 0; i < v->len; i++) {
            if (i) ilm_buf_putc(b, ',');
            if (v->type == JSON_OBJ) {
                ilm_json_buf_str(b, v->keys[i], strlen(v->keys[i]));
                ilm_buf_putc(b, ':');
            }
            ilm_json_buf_value(b, &v->items[i]);
        }
        ilm_buf_putc(b, v->type == JSON_ARR ? ']' : '}');
    }
}
