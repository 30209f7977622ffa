// dispatch.c — picks the kernel set for this CPU and holds ilm_k, the dispatch table.
//
// The ISA files (simd/avx2.c, avx512.c, avx512vnni.c, avx512bf16.c on x86-64; neon.c, neondot.c on
// aarch64) are compiled only for their architecture; each defines one `ilm_kernels`
// constant. They are referenced weakly here, so "compiled in" simply means "linked in".
// This file itself is built for the baseline CPU and never executes a vector instruction.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "scalar.h"

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif

// Weak: a set whose file is not compiled for this architecture has address NULL.
extern const ilm_kernels ilm_kernels_avx2 __attribute__((weak));
extern const ilm_kernels ilm_kernels_avx512 __attribute__((weak));
extern const ilm_kernels ilm_kernels_avx512vnni __attribute__((weak));
extern const ilm_kernels ilm_kernels_avx512bf16 __attribute__((weak));
extern const ilm_kernels ilm_kernels_neon __attribute__((weak));
extern const ilm_kernels ilm_kernels_neondot __attribute__((weak));

// Scalar until ilm_kernels_init() runs, so an early call is slow but never wrong.
const ilm_kernels *ilm_k = &ilm_kernels_scalar;

// ---- what the CPU (and the OS) supports ------------------------------------------------

typedef struct {
    int avx2, avx512, avx512vnni, avx512bf16, neon, neondot;
} cpu_features;

#if defined(__x86_64__)
// XCR0 says which register states the OS saves on a context switch; without it the
// instructions exist but a context switch would corrupt the upper register halves.
static unsigned long long read_xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static cpu_features detect_cpu(void) {
    cpu_features f = {0};
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
              f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return f;
    const unsigned long long xcr0 = read_xcr0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;      // XMM + YMM state
    const int os_zmm = (xcr0 & 0xe6) == 0xe6;    // + opmask, ZMM_Hi256, Hi16_ZMM
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
              avx512vl = (b >> 31) & 1, avx512vnni = (c >> 11) & 1;
    f.avx2 = os_ymm && avx2 && fma && f16c && bmi2;
    f.avx512 = f.avx2 && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
    f.avx512vnni = f.avx512 && avx512vnni;
    // AVX512_BF16 (VDPBF16PS, VCVTNE2PS2BF16): CPUID.(EAX=7, ECX=1):EAX bit 5.
    if (f.avx512vnni && a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = (a >> 5) & 1;
#elif defined(__aarch64__)
    // Advanced SIMD is mandatory on aarch64; the dot-product extension (ARMv8.2+, optional
    // before v8.4) is announced by the kernel in AT_HWCAP.
    const unsigned long hwcap_asimddp = 1ul << 20;  // HWCAP_ASIMDDP, <asm/hwcap.h>
    f.neon = 1;
    f.neondot = (getauxval(AT_HWCAP) & hwcap_asimddp) != 0;
#endif
    return f;
}

// ---- the ladder --------------------------------------------------------------------------

typedef struct {
    const char *name;
    const ilm_kernels *set;  // NULL: not compiled into this binary
    int supported;           // the CPU and OS can run it
} kernel_choice;

// Best last, so the ladder picks the last supported entry.
static int list_choices(kernel_choice out[7]) {
    const cpu_features f = detect_cpu();
    int n = 0;
    // Anything: the reference, also the fallback for pre-2013 x86 and other architectures.
    out[n++] = (kernel_choice){"scalar", &ilm_kernels_scalar, 1};
    // Haswell (2013) / Zen 1 (2017) and later: AVX2 + FMA + F16C, the 2016 Xeon floor.
    out[n++] = (kernel_choice){"avx2", &ilm_kernels_avx2, f.avx2};
    // Skylake-SP (2017): AVX-512 F/BW/VL/DQ, int8 dots through vpmaddubsw/vpmaddwd.
    out[n++] = (kernel_choice){"avx512", &ilm_kernels_avx512, f.avx512};
    // Cascade Lake (2019), Ice Lake, Sapphire Rapids, Zen 4/5: VPDPBUSD int8 dots.
    out[n++] = (kernel_choice){"avx512vnni", &ilm_kernels_avx512vnni, f.avx512vnni};
    // Cooper Lake (2020), Sapphire Rapids, Zen 4/5: + VDPBF16PS for float activations (--act bf16).
    out[n++] = (kernel_choice){"avx512bf16", &ilm_kernels_avx512bf16, f.avx512bf16};
    // Any aarch64 (Cortex-A53/A72, Graviton 1): Advanced SIMD, vmull/vpadal int8 dots.
    out[n++] = (kernel_choice){"neon", &ilm_kernels_neon, f.neon};
    // ARMv8.2+ with dotprod (Cortex-A76, Neoverse N1/V1, Apple M1, Graviton 2/3): SDOT.
    out[n++] = (kernel_choice){"neondot", &ilm_kernels_neondot, f.neondot};
    return n;
}

const ilm_kernels *ilm_kernels_get(const char *name) {
    kernel_choice ch[7];
    const int n = list_choices(ch);
    for (int i = 0; i < n; i++)
        if (name && strcmp(name, ch[i].name) == 0) return ch[i].set && ch[i].supported ? ch[i].set : NULL;
    return NULL;
}

int ilm_kernels_select(const char *name, char *errbuf, size_t errlen) {
    kernel_choice ch[7];
    const int n = list_choices(ch);
    for (int i = 0; i < n; i++) {
        if (!name || strcmp(name, ch[i].name) != 0) continue;
        if (!ch[i].set) {
            snprintf(errbuf, errlen, "kernel set '%s' is not compiled into this binary", name);
            return -1;
        }
        if (!ch[i].supported) {
            snprintf(errbuf, errlen, "this CPU does not support the '%s' kernel set", name);
            return -1;
        }
        ilm_k = ch[i].set;
        return 0;
    }
    snprintf(errbuf, errlen,
             "unknown kernel set '%s' (expected scalar, avx2, avx512, avx512vnni, avx512bf16, neon or neondot)",
             name ? name : "(null)");
    return -1;
}

int ilm_kernels_init(char *errbuf, size_t errlen) {
    const char *forced = getenv("IRONLM_ISA");
    if (forced && *forced) {
        if (ilm_kernels_select(forced, errbuf, errlen) != 0) {
            // Name the variable, so the user knows where the request came from.
            char inner[256];
            snprintf(inner, sizeof inner, "%s", errbuf);
            snprintf(errbuf, errlen, "IRONLM_ISA=%s: %s", forced, inner);
            return -1;
        }
        return 0;
    }
    kernel_choice ch[7];
    const int n = list_choices(ch);
    for (int i = n - 1; i >= 0; i--) {
        if (ch[i].set && ch[i].supported) {
            ilm_k = ch[i].set;
            return 0;
        }
    }
    ilm_k = &ilm_kernels_scalar;
    return 0;
}

const char *const *ilm_kernels_all(void) {
    // Chosen from the link-time addresses of the sets: no mutable state.
    static const char *const names_x86_avx2[] = {"scalar", "avx2", NULL};
    static const char *const names_x86[] = {"scalar", "avx2", "avx512", "avx512vnni", "avx512bf16", NULL};
    static const char *const names_arm[] = {"scalar", "neon", "neondot", NULL};
    static const char *const names_arm_neon[] = {"scalar", "neon", NULL};
    static const char *const names_scalar[] = {"scalar", NULL};
    if (&ilm_kernels_avx2 && &ilm_kernels_avx512 && &ilm_kernels_avx512vnni && &ilm_kernels_avx512bf16) return names_x86;
    if (&ilm_kernels_avx2) return names_x86_avx2;
    if (&ilm_kernels_neon && &ilm_kernels_neondot) return names_arm;
    if (&ilm_kernels_neon) return names_arm_neon;
    return names_scalar;
}
