// test_layout.c — the source tree keeps the shape docs/design.md §Layout describes:
// includes point only down the layers (simd < base < format < runtime < model < gen <
// tools < serve < cli), name their layer ("model/kv.h", never a bare "kv.h" from src/), simd/
// includes nothing from src/, no two modules include each other (directly or through a
// cycle), and a file longer than ILM_LONG_FILE lines says why in a "// Length:" line near
// its top. Reads the tree from the working directory (make test runs from the repository
// root); skipped where there is no source tree.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define ILM_LONG_FILE 600
#define MAX_FILES 512
#define MAX_INCLUDES 64

static const char *const layers[] = {"simd", "base", "format", "runtime", "model", "gen", "tools", "serve", "cli"};
enum { N_LAYERS = sizeof layers / sizeof layers[0] };

typedef struct {
    char path[256];    // "src/model/kv.c", "simd/avx2.c"
    char module[256];  // path without extension: a .c and its .h are one module
    int layer;
    int n_inc;
    char inc[MAX_INCLUDES][256];  // resolved paths of the quoted includes
} src_file;

static int layer_index(const char *name, size_t len) {
    for (int i = 0; i < N_LAYERS; i++)
        if (strlen(layers[i]) == len && strncmp(layers[i], name, len) == 0) return i;
    return -1;
}

static const char *layer_name(int i) { return i >= 0 && i < N_LAYERS ? layers[i] : "?"; }

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// Reads one file's quoted includes (resolved to repository paths) and checks the direction
// of each; returns the line count.
static int scan_file(src_file *f) {
    size_t size;
    char *text = t_read(f->path, &size);
    CHECK_MSG(text != NULL, "cannot read %s", f->path);
    if (!text) return 0;
    int lines = 0;
    bool long_ok = false;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lines++;
        if (lines <= 30 && strncmp(line, "// Length:", 10) == 0) long_ok = true;
        if (strncmp(line, "#include \"", 10) == 0) {
            const char *name = line + 10, *end = strchr(name, '"'), *slash = memchr(name, '/', (size_t)(end - name));
            char target[256];
            if (!end) {
                t_fail(__FILE__, __LINE__, "%s:%d: malformed include", f->path, lines);
            } else if (f->layer == 0) {
                CHECK_MSG(!slash, "%s:%d: simd/ includes from outside simd/: %s", f->path, lines, line);
                snprintf(target, sizeof target, "simd/%.*s", (int)(end - name), name);
            } else if (!slash) {
                t_fail(__FILE__, __LINE__, "%s:%d: include does not name its layer: %s", f->path, lines, line);
                target[0] = 0;
            } else {
                int to = layer_index(name, (size_t)(slash - name));
                CHECK_MSG(to >= 0, "%s:%d: include from an unknown folder: %s", f->path, lines, line);
                CHECK_MSG(to <= f->layer, "%s:%d: include points up (%s above %s): %s", f->path, lines,
                          layer_name(to), layer_name(f->layer), line);
                snprintf(target, sizeof target, "%s%.*s", to == 0 ? "" : "src/", (int)(end - name), name);
            }
            if (end && target[0] && f->n_inc < MAX_INCLUDES) snprintf(f->inc[f->n_inc++], 256, "%s", target);
        }
        line = nl ? nl + 1 : NULL;
    }
    CHECK_MSG(lines <= ILM_LONG_FILE || long_ok, "%s: %d lines and no \"// Length:\" reason near its top", f->path,
              lines);
    free(text);
    return lines;
}

static int add_dir(src_file *files, int n, const char *dir, int layer) {
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 3 || e->d_name[len - 2] != '.' || (e->d_name[len - 1] != 'c' && e->d_name[len - 1] != 'h')) continue;
        if (n >= MAX_FILES) {
            t_fail(__FILE__, __LINE__, "more than %d source files: raise MAX_FILES", MAX_FILES);
            break;
        }
        if (strlen(dir) + len + 2 > sizeof files[0].path) {
            t_fail(__FILE__, __LINE__, "%s/%s: path too long", dir, e->d_name);
            continue;
        }
        src_file *f = &files[n++];
        memset(f, 0, sizeof *f);
        memcpy(f->path, dir, strlen(dir));
        f->path[strlen(dir)] = '/';
        memcpy(f->path + strlen(dir) + 1, e->d_name, len + 1);
        snprintf(f->module, sizeof f->module, "%.*s", (int)(strlen(f->path) - 2), f->path);
        f->layer = layer;
    }
    closedir(d);
    return n;
}

static bool is_c(const char *path) { return path[strlen(path) - 1] == 'c'; }

// Does the module have a .c file?
static bool has_c(const src_file *files, int n, const char *module) {
    for (int i = 0; i < n; i++)
        if (is_c(files[i].path) && strcmp(files[i].module, module) == 0) return true;
    return false;
}

// Module graph: A -> B when a file of A includes B's header. Depth-first search for a
// cycle; state 0 = unseen, 1 = on the stack, 2 = done.
static int find_module(char (*mods)[256], int n_mod, const char *path) {
    char m[256];
    snprintf(m, sizeof m, "%.*s", (int)(strlen(path) - 2), path);
    for (int i = 0; i < n_mod; i++)
        if (strcmp(mods[i], m) == 0) return i;
    return -1;
}

static int dfs(int v, const unsigned char *adj, int n_mod, char *state, int *stack, int depth, char (*mods)[256]) {
    int cycles = 0;
    state[v] = 1;
    stack[depth] = v;
    for (int w = 0; w < n_mod; w++) {
        if (!adj[v * n_mod + w] || w == v) continue;
        if (state[w] == 1) {
            char msg[1024] = "";
            size_t used = 0;
            int from = 0;
            while (stack[from] != w) from++;
            for (int i = from; i <= depth && used < sizeof msg - 300; i++)
                used += (size_t)snprintf(msg + used, sizeof msg - used, "%s -> ", mods[stack[i]]);
            snprintf(msg + used, sizeof msg - used, "%s", mods[w]);
            t_fail(__FILE__, __LINE__, "include cycle: %s", msg);
            cycles++;
        } else if (state[w] == 0) {
            cycles += dfs(w, adj, n_mod, state, stack, depth + 1, mods);
        }
    }
    state[v] = 2;
    return cycles;
}

TEST(layout_includes_point_down_without_cycles) {
    if (!is_dir("src") || !is_dir("simd")) {
        t_skip("no source tree in the working directory");
        return;
    }
    src_file *files = calloc(MAX_FILES, sizeof *files);
    int n = add_dir(files, 0, "simd", 0);
    for (int l = 1; l < N_LAYERS; l++) {
        char dir[64];
        snprintf(dir, sizeof dir, "src/%s", layers[l]);
        if (is_dir(dir)) n = add_dir(files, n, dir, l);
    }
    // Nothing directly under src/: every file lives in its layer's folder.
    DIR *d = opendir("src");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[300];
        snprintf(p, sizeof p, "src/%s", e->d_name);
        CHECK_MSG(is_dir(p) && layer_index(e->d_name, strlen(e->d_name)) > 0, "src/%s is not a layer folder",
                  e->d_name);
    }
    if (d) closedir(d);

    int total_lines = 0;
    for (int i = 0; i < n; i++) total_lines += scan_file(&files[i]);

    char (*mods)[256] = calloc(n > 0 ? (size_t)n : 1, 256);
    int n_mod = 0;
    for (int i = 0; i < n; i++)
        if (find_module(mods, n_mod, files[i].path) < 0) snprintf(mods[n_mod++], 256, "%s", files[i].module);
    unsigned char *adj = calloc((size_t)n_mod * (size_t)n_mod, 1);
    int edges = 0;
    for (int i = 0; i < n; i++) {
        int a = find_module(mods, n_mod, files[i].path);
        for (int k = 0; k < files[i].n_inc; k++) {
            int b = find_module(mods, n_mod, files[i].inc[k]);
            CHECK_MSG(b >= 0, "%s includes %s, which does not exist", files[i].path, files[i].inc[k]);
            // A .c file including a header-only body (a kernel template such as
            // avx512_body.h) is that body's implementation, not a dependency on it.
            if (b >= 0 && is_c(files[i].path) && !has_c(files, n, mods[b])) continue;
            if (b >= 0 && b != a && !adj[a * n_mod + b]) adj[a * n_mod + b] = 1, edges++;
        }
    }
    char *state = calloc((size_t)n_mod, 1);
    int *stack = calloc((size_t)n_mod + 1, sizeof *stack);
    int cycles = 0;
    for (int v = 0; v < n_mod; v++)
        if (state[v] == 0) cycles += dfs(v, adj, n_mod, state, stack, 0, mods);
    printf("  %d files, %d modules, %d include edges, %d lines, %d include cycles\n", n, n_mod, edges, total_lines,
           cycles);
    CHECK_MSG(n > 40, "only %d source files found", n);
    free(state);
    free(stack);
    free(adj);
    free(mods);
    free(files);
}
