# ironlm — build, test, sanitize, cross-compile, fuzz, bench.
#   make            ./ironlm (gcc or clang: CC=clang make)
#   make test       all tests, last line "N passed, N failed"
#   make check      tests under ASan + UBSan
#   make tsan       thread-pool tests under TSan
#   make cross-arm  aarch64 build (gcc-aarch64-linux-gnu);  make test-arm: tests under qemu
#   make fuzz       libFuzzer targets (clang): builds gguf/http/json/safetensors, runs gguf; make fuzz-run: all
#   make demo       run the bundled pycoder model
#   make golden-compare REF=rev   every logits/greedy/speculative hash on the fixtures equal to
#                   a build of git revision REF (for behaviour-preserving changes)
#   HWLOC=1 make    take the CPU topology from hwloc
CC      ?= cc
BUILD   ?= build/$(notdir $(CC))
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) -fno-math-errno -I src -I .
CFLAGS  += $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS  += -lm -lpthread
FIXTURES ?= ../shared/fixtures

ifeq ($(HWLOC),1)
CFLAGS  += -DILM_HWLOC=1
LDLIBS  += -lhwloc
endif

MACHINE := $(shell $(CC) -dumpmachine)
ifneq (,$(findstring x86_64,$(MACHINE)))
SIMD_SRC = simd/dispatch.c simd/types.c simd/scalar.c $(wildcard simd/avx2.c simd/avx512.c simd/avx512vnni.c simd/avx512bf16.c)
else ifneq (,$(findstring aarch64,$(MACHINE)))
SIMD_SRC = simd/dispatch.c simd/types.c simd/scalar.c $(wildcard simd/neon.c simd/neondot.c)
else
SIMD_SRC = simd/dispatch.c simd/types.c simd/scalar.c
endif

# Each ISA file gets its own flags; everything else is built for the baseline CPU.
ISA_avx2       = -mavx2 -mfma -mf16c -mbmi2
ISA_avx512     = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c -mbmi2
ISA_avx512vnni = $(ISA_avx512) -mavx512vnni
ISA_avx512bf16 = $(ISA_avx512vnni) -mavx512bf16
ISA_neon       =
ISA_neondot    = -march=armv8.2-a+dotprod

LIB_SRC  = $(filter-out src/cli/main.c,$(wildcard src/*/*.c)) $(SIMD_SRC)
TEST_SRC = $(filter-out tests/fuzz_%.c,$(wildcard tests/*.c))
BENCH_SRC = $(wildcard bench/*.c)

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all test check tsan cross-arm test-arm fuzz fuzz-build fuzz-run demo bench golden-compare clean
all: ironlm

ironlm: $(BUILD)/ironlm
	cp $< $@

$(BUILD)/ironlm: $(BUILD)/src/cli/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/run: $(TEST_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_$(basename $(notdir $<))) -MMD -MP -c -o $@ $<

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/src/cli/main.d

# The test runner finds the binary and the fixtures through these variables.
test: ironlm $(BUILD)/tests/run
	IRONLM_BIN=./ironlm IRONLM_FIXTURES=$(FIXTURES) $(BUILD)/tests/run $(T)

check:
	$(MAKE) BUILD=build/sanitize OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" build/sanitize/ironlm build/sanitize/tests/run
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  IRONLM_BIN=build/sanitize/ironlm IRONLM_FIXTURES=$(FIXTURES) build/sanitize/tests/run $(T)

tsan:
	$(MAKE) BUILD=build/tsan OPT=-O1 EXTRA_CFLAGS="-fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	  build/tsan/ironlm build/tsan/tests/run
	TSAN_OPTIONS=halt_on_error=1 IRONLM_BIN=build/tsan/ironlm IRONLM_FIXTURES=$(FIXTURES) \
	  build/tsan/tests/run $(or $(T),pool)

ARM_CC ?= aarch64-linux-gnu-gcc
cross-arm:
	$(MAKE) CC=$(ARM_CC) BUILD=build/arm64 LDFLAGS=-static build/arm64/ironlm build/arm64/tests/run
	cp build/arm64/ironlm ironlm-arm64

# The kernel tests run twice: with the dot-product extension (-cpu max) and without (cortex-a72).
test-arm: cross-arm
	IRONLM_BIN="qemu-aarch64-static -cpu max ./ironlm-arm64" IRONLM_FIXTURES=$(FIXTURES) \
	  qemu-aarch64-static -cpu max build/arm64/tests/run $(or $(T),kernels)
	IRONLM_BIN="qemu-aarch64-static -cpu cortex-a72 ./ironlm-arm64" IRONLM_FIXTURES=$(FIXTURES) \
	  qemu-aarch64-static -cpu cortex-a72 build/arm64/tests/run $(or $(T),kernels)

# Each fuzz target links only what it tests: the GGUF reader (gguf.c + util.c, no writer), the
# HTTP parser (http.c + buf.c), the JSON reader/writer (json.c + buf.c + util.c), the safetensors
# reader (safetensors.c + json.c + buf.c + util.c).
#   make fuzz        builds all four, runs fuzz_gguf for FUZZ_SECONDS (corpus build/fuzz-corpus)
#   make fuzz-run    runs each for FUZZ_SECONDS, one after another (new inputs in
#                    build/fuzz-corpus[-http|-json|-st], seeds from tests/data/fuzz/http|json|st)
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = $(CFLAGS_BASE) -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_BIN = build/fuzz/fuzz_gguf build/fuzz/fuzz_http build/fuzz/fuzz_json build/fuzz/fuzz_safetensors
FUZZ_gguf = tests/fuzz_gguf.c src/format/gguf.c src/base/util.c simd/types.c
FUZZ_http = tests/fuzz_http.c src/serve/http.c src/base/buf.c
FUZZ_json = tests/fuzz_json.c src/format/json.c src/base/buf.c src/base/util.c
FUZZ_safetensors = tests/fuzz_safetensors.c src/format/safetensors.c src/format/json.c src/base/buf.c src/base/util.c

.SECONDEXPANSION:
build/fuzz/fuzz_%: $$(FUZZ_$$*) $$(wildcard src/*/*.h simd/*.h)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $(FUZZ_$*) -lm

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@mkdir -p build/fuzz-corpus
	build/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz-corpus

fuzz-run: fuzz-build
	@mkdir -p build/fuzz-corpus build/fuzz-corpus-http build/fuzz-corpus-json build/fuzz-corpus-st
	build/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz-corpus
	build/fuzz/fuzz_http -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build/fuzz-corpus-http tests/data/fuzz/http
	build/fuzz/fuzz_json -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz-corpus-json tests/data/fuzz/json
	build/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build/fuzz-corpus-st tests/data/fuzz/st

demo: ironlm
	./ironlm run -m models/pycoder-q8_0.gguf --draft models/pycoder-mtp-q8_0.gguf -f models/demo-prompt.txt -n 96 --temp 0

bench: ironlm
	./ironlm bench --kernels

# Builds REF in build/golden-ref (from git archive, so the work tree is untouched) and
# compares tests/golden.sh's hashes of both binaries on every kernel set this CPU runs.
REF ?= HEAD
golden-compare: ironlm
	rm -rf build/golden-ref && mkdir -p build/golden-ref
	git archive $(REF) | tar -x -C build/golden-ref
	$(MAKE) -C build/golden-ref ironlm
	tests/golden.sh build/golden-ref/ironlm $(abspath $(FIXTURES)) > build/golden-ref.txt
	tests/golden.sh ./ironlm $(abspath $(FIXTURES)) > build/golden-new.txt
	diff build/golden-ref.txt build/golden-new.txt
	@echo "golden-compare: $$(wc -l < build/golden-new.txt) hashes identical to $(REF)"

clean:
	rm -rf build ironlm ironlm-arm64
