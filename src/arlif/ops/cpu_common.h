// What the fused CPU kernels of every neuron family share (docs/backends.md): constants, elementwise math,
// the surrogate derivatives, the block and thread runner, state loads and stores, prefetching and the explicit
// vector helpers. Each family's cpu_kernels.cpp includes it; arlif/ops/cpu_build.py compiles them into one
// library and loads it with ctypes. Plain C++ (no torch headers), so that it builds in seconds.
//
// Layout: x, spikes and every sequence are contiguous [T, N]; states are [N]. Elements are processed in
// blocks of BLOCK neurons; inner loops run over the neurons of a block and are written branch-free so
// that the compiler vectorises them. Threads take contiguous ranges of blocks. Gradients of the scalar
// parameters are summed per block (in double) into `partial[block]`; the caller adds the partials, so the
// result does not depend on the number of threads.
//
// The math is that of the family's reference.py, in the same operation order, so float64 results agree with
// the reference to rounding. Everything here has internal linkage (an unnamed namespace): each family's
// translation unit gets its own copy, and the library exports only the families' extern "C" entry points.

#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

// x86 intrinsics: the explicit vectors (AVX2+FMA, AVX-512) and the non-temporal stores of stream_row (SSE2,
// part of every x86-64 target)
#if defined(__GNUC__) && defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef ARLIF_BLOCK
#error "build with -DARLIF_BLOCK=<n> (arlif/ops/cpu_build.py passes it)"
#endif

// Each entry point is defined for both compute dtypes: M(float, f32) and M(double, f64), the suffixes the
// host side (arlif/ops/cpu_host.py) asks for.
#define ARLIF_FOR_COMPUTE_DTYPES(M) M(float, f32) M(double, f64)

namespace {

// neurons per block (set by cpu_build.py: the host allocates one gradient partial per block)
constexpr int64_t BLOCK = ARLIF_BLOCK;

// ---- elementwise math ------------------------------------------------------------------------------
// float: a branch-free exp that the compiler vectorises (libm's expf/tanhf calls would keep the loops
// scalar), and sigmoids that share one division. AR-LIF is bound by this arithmetic (three exponentials
// per element and step), so every operation counts:
// - exp: range reduction with one constant, then a polynomial evaluated with fused multiply-adds where the
//   target has them, and a scale built from the bits of the rounding sum, without a conversion. With explicit
//   vectors (AVX-512, or AVX2 with FMA) a table of 2^(j/L) in one register (L = 16 or 8 entries) gives n/L
//   steps and a degree-3 polynomial; otherwise n steps of ln2 and degree 5 (each within 4.0e-7 relative on
//   [-87, 87], 1.2e-7 on average).
// - division: one per element and step for the x-only terms σ(x), tanh(x), σ(c·x) (a common denominator,
//   see x_terms in arlif/cpu_kernels.cpp) and one for σ(m_t), instead of three.
// The explicit fmas only touch these float helpers: the state updates keep the reference's separate
// multiply and add (-ffp-contract=off), and float64 keeps libm for parity with the float64 reference.
// double: libm, for exact parity with the float64 reference.
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
#define ARLIF_FMA 1  // the target has a fused multiply-add unit
#endif
#ifdef ARLIF_FMA
inline float fmadd(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
#else
inline float fmadd(float a, float b, float c) { return a * b + c; }  // no fma unit: a libm call would be slow
#endif

// a·b + c for gradient arithmetic, fused where the target has an FMA unit. The state updates do not use
// it: they keep the reference's separate multiply and add (-ffp-contract=off) so that spikes match it.
inline float mad(float a, float b, float c) { return fmadd(a, b, c); }
#ifdef ARLIF_FMA
inline double mad(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
inline double mad(double a, double b, double c) { return a * b + c; }
#endif

// The n values of a in double, summed in a fixed order (eight running lanes, then pairwise): vectorises,
// where one running sum is a chain of dependent scalar adds, and stays independent of the thread count.
template <typename F>
inline double block_sum(const F* a, int64_t n) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(a[i + j]);
    for (int j = 0; i < n; ++i, ++j) lane[j] += static_cast<double>(a[i]);
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

template <typename F>
struct Math;

// Explicit vector code (the vf helpers below, and the kernels' vector loops) where the target has AVX-512, or
// AVX2 with FMA.
#if defined(__GNUC__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#define ARLIF_HAVE_VECTORS 1
#endif

// Those targets have a one-instruction lookup in a register of 32-bit entries (vpermd: 16 entries with AVX-512, 8
// with AVX2), so exp(-x) takes a finer range reduction and a shorter polynomial (Math<float>::exp_neg): 6 fma-unit
// operations instead of 8. kExp2 holds the table and the constants of that reduction.
#ifdef ARLIF_HAVE_VECTORS
#if defined(__AVX512F__)
constexpr int kExp2Entries = 16;
#else
constexpr int kExp2Entries = 8;
#endif
struct Exp2Table {
    static constexpr int L = kExp2Entries;  // 2^(j/L) for j = n mod L
    static constexpr int SHIFT = L == 16 ? 19 : 20;  // 23 - log2(L)
    float l_over_ln2, ln2_over_l;  // L/ln2, and ln2/L rounded (off by 1.2e-10 for L = 16, 2.4e-10 for 8)
    float c3, c2;  // e^r ≈ 1 + r·(1 + r·(c2 + r·c3)) on |r| <= ln2/(2L)
    // 2^(j/L) rounded to float, as bits, minus j << SHIFT (see Math<float>::exp_neg_table)
    alignas(64) uint32_t entry[L];
};
constexpr Exp2Table kExp2 = {
#if defined(__AVX512F__)
    // |r| <= ln2/32: the Taylor polynomial, within 9e-9
    23.0831203460693359f, 0.0433216989040374756f, 0.166666672f, 0.5f,
    {0x3f800000u, 0x3f7daac3u, 0x3f7b95c2u, 0x3f79c3d3u, 0x3f7837f0u, 0x3f76f532u, 0x3f75fed7u, 0x3f75583fu,
     0x3f7504f3u, 0x3f7508a4u, 0x3f75672au, 0x3f76248cu, 0x3f7744fdu, 0x3f78ccdfu, 0x3f7ac0c7u, 0x3f7d257du}};
#else
    // |r| <= ln2/16: a minimax fit of the relative error (2.5e-8; Taylor's would be 1.5e-7)
    11.541560173034668f, 0.08664339780807495f, 0.16664297878742218f, 0.5000647902488708f,
    {0x3f800000u, 0x3f7b95c2u, 0x3f7837f0u, 0x3f75fed7u, 0x3f7504f3u, 0x3f75672au, 0x3f7744fdu, 0x3f7ac0c7u}};
#endif
#endif

template <>
struct Math<float> {
#ifdef ARLIF_HAVE_VECTORS
    // exp(-x) for |x| <= 87 (callers clamp) as 2^(n/L)·e^r (L = kExp2.L): n = round(-x·L/ln2) from the low mantissa
    // bits of the rounding sum k (as below), r = -x - n·ln2/L, and a degree-3 polynomial for e^r. With n = Lq + j,
    // 2^(n/L) = 2^(j/L)·2^q is the table entry j with q added to its exponent; bits(k) << SHIFT = (n << SHIFT)
    // mod 2^32 = (q << 23) + (j << SHIFT), so the table holds bits(2^(j/L)) - (j << SHIFT) and one integer add
    // makes the scale. Relative error on [-87, 87]: at most 4.0e-7 (near |x| = 87: the rounding of ln2/L times n),
    // 1.2e-7 on average, for L = 16 and 8 alike (exp_neg_poly: 4.0e-7 and 1.3e-7), in fewer operations on the fma
    // units. Only for explicit vector code and its scalar twins: in a loop left to the auto-vectoriser the table
    // lookup stops GCC from vectorising the loop at all.
    static inline float exp_neg_table(float x) {
        const float k = fmadd(-x, kExp2.l_over_ln2, 12582912.0f);  // 1.5·2^23
        const float n = k - 12582912.0f;
        const float r = fmadd(n, -kExp2.ln2_over_l, -x);
        float p = fmadd(kExp2.c3, r, kExp2.c2);
        p = fmadd(p, r, 1.0f);
        p = fmadd(p, r, 1.0f);
        uint32_t bits;
        std::memcpy(&bits, &k, sizeof bits);
        bits = kExp2.entry[bits & (kExp2.L - 1)] + (bits << kExp2.SHIFT);
        float scale;
        std::memcpy(&scale, &bits, sizeof scale);
        return p * scale;
    }
#endif
    // exp(-x) for |x| <= 87 (callers clamp). The argument's negation is folded into the first fmas
    // (exactly: negating is exact), which saves an instruction per call in the hot loops.
    static inline float exp_neg_poly(float x) {
        // round -x·log2(e) to the nearest integer n by adding 1.5·2^23: the sum's low mantissa bits are n
        const float k = fmadd(-x, 1.44269504088896341f, 12582912.0f);
        const float n = k - 12582912.0f;
#ifdef ARLIF_FMA
        // r = -x - n·ln2 with one fma: ln 2 rounded to float is off by 1.9e-9, so r is off by at most
        // |n|·1.9e-9 (1.1e-7 at the clamp of σ(m), |n| <= 126, where σ is within 1e-38 of 0 or 1; 5.5e-8 at the
        // ±20 clamp of the x terms)
        const float r = fmadd(n, -0.693147182464599609f, -x);
#else
        // Without an fma the product n·ln2 is rounded (an error of up to 4e-6 in exp at |x| = 87): ln 2 is taken in
        // two parts (Cody and Waite), the first with 9 significant bits, so that n times it is exact
        const float r = (-x - n * 0.693359375f) + n * 2.12194440e-4f;
#endif
        float p = 8.312505669891834e-3f;  // degree-5 minimax on [-ln2/2, ln2/2] (relative error 1.05e-7)
        p = fmadd(p, r, 4.189009591937065e-2f);
        p = fmadd(p, r, 1.6667114198207855e-1f);
        p = fmadd(p, r, 4.99992311000824e-1f);
        p = fmadd(p, r, 1.0f);
        p = fmadd(p, r, 1.0f);
        // bits(k) = bits(1.5·2^23) + n, and bits(1.5·2^23) << 23 wraps to 0: 2^n = ((bits(k) + 127) << 23).
        // Multiplying by the scale (rather than adding n << 23 to p's bits) keeps NaN payloads.
        uint32_t bits;
        std::memcpy(&bits, &k, sizeof bits);
        bits = (bits + 127u) << 23;
        float scale;
        std::memcpy(&scale, &bits, sizeof scale);
        return p * scale;
    }
    // the exp(-x) of the AR-LIF kernels, the scalar twin of vexp_neg
#ifdef ARLIF_HAVE_VECTORS
    static inline float exp_neg(float x) { return exp_neg_table(x); }
#else
    static inline float exp_neg(float x) { return exp_neg_poly(x); }
#endif
    // x clamped to [-L, L] (L > 0) with integer operations on the bits: |x|'s bits are shifted by 2^23 - 1 so
    // that the NaNs wrap to negative int32 values, a signed min with L's (shifted) bits clamps the finite
    // magnitudes and leaves a NaN, then the shift is undone and x's sign put back. Float selects would not
    // become min/max instructions when vectorised (signed zeros and NaNs forbid it without -ffast-math) but a
    // longer mask-and-blend sequence. The explicit vector code (vclamp_abs) uses min/max: same results.
    static inline float clamp_abs(float x, float L) {
        uint32_t bx, bl;
        std::memcpy(&bx, &x, sizeof bx);
        std::memcpy(&bl, &L, sizeof bl);
        const uint32_t sign = bx & 0x80000000u;
        const int32_t mag = static_cast<int32_t>((bx & 0x7fffffffu) + 0x7fffffu);
        const int32_t lim = static_cast<int32_t>(bl + 0x7fffffu);
        bx = (static_cast<uint32_t>(mag < lim ? mag : lim) - 0x7fffffu) | sign;
        std::memcpy(&x, &bx, sizeof x);
        return x;
    }
    // exp(-x) is clamped to [e^-87, e^87]: beyond that σ is within 2e-38 of 0 or 1 (absolute). `sigmoid` is
    // the twin of vsigmoid; `sigmoid_autovec` is for loops left to the auto-vectoriser (CLIF, surrogates).
    static inline float sigmoid(float x) { return 1.0f / (1.0f + exp_neg(clamp_abs(x, 87.0f))); }
    static inline float sigmoid_autovec(float x) { return 1.0f / (1.0f + exp_neg_poly(clamp_abs(x, 87.0f))); }
};

template <>
struct Math<double> {
    static inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
    static inline double sigmoid_autovec(double x) { return sigmoid(x); }
};

// dS/du of the surrogate `kind` (ids of arlif.surrogate.KIND_IDS) for n values of u.
template <typename F>
void surrogate_grad(int kind, F width, const F* u, F* out, int64_t n) {
    switch (kind) {
        case 0: {  // rectangle: 1/α inside the window (the reference's 1/α, not a division per element)
            const F half = width / F(2), inv = F(1) / width;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) out[i] = std::abs(u[i]) <= half ? inv : F(0);
            break;
        }
        case 1: {  // triangle: a multiply by 1/γ² instead of a division per element (within an ulp)
            const F inv_w2 = F(1) / (width * width);
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                F d = width - std::abs(u[i]);
                out[i] = (d > F(0) ? d : F(0)) * inv_w2;
            }
            break;
        }
        case 2: {  // sigmoid
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                F s = Math<F>::sigmoid_autovec(width * u[i]);
                out[i] = width * s * (F(1) - s);
            }
            break;
        }
        default: {  // atan
            const F k = static_cast<F>(3.14159265358979323846 * static_cast<double>(width) / 2.0);
            const F half = width / F(2);
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                F z = k * u[i];
                out[i] = half / (F(1) + z * z);
            }
            break;
        }
    }
}

// Run fn(first_block, end_block) over all blocks on up to nthreads threads, each taking one contiguous range.
// Built with OpenMP (the default where the compiler supports it), the threads are those of the OpenMP runtime
// that PyTorch itself uses: the dynamic loader reuses the libgomp.so.1 that torch has already loaded, so our
// kernels and torch's operators share one pool. Threads of our own would compete for the cores with torch's
// workers, which keep spinning for a while after every parallel torch operator.
template <typename Fn>
void parallel_blocks(int64_t nblocks, int nthreads, Fn fn) {
    const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(nthreads, nblocks));
    if (nt == 1) {
        fn(0, nblocks);
        return;
    }
#ifdef _OPENMP
    #pragma omp parallel num_threads(static_cast<int>(nt))
    {
        const int64_t k = omp_get_thread_num(), got = omp_get_num_threads();
        const int64_t per = (nblocks + got - 1) / got;
        const int64_t b0 = k * per, b1 = std::min(nblocks, b0 + per);
        if (b0 < b1) fn(b0, b1);
    }
#else
    std::vector<std::thread> pool;
    const int64_t per = (nblocks + nt - 1) / nt;
    for (int64_t k = 1; k < nt; ++k) {
        const int64_t b0 = k * per, b1 = std::min(nblocks, b0 + per);
        if (b0 < b1) pool.emplace_back(fn, b0, b1);
    }
    fn(0, std::min(nblocks, per));
    for (auto& th : pool) th.join();
#endif
}

// ---- Streaming (non-temporal) stores of outputs --------------------------------------------------------
// A normal store to a line that is not in cache first reads the line from memory (write-allocate), so writing
// a fresh output costs a read and a write of it. Non-temporal stores write whole lines straight to memory: a
// third less traffic for a kernel that reads x and writes spikes. They also leave the output out of the cache,
// which costs a consumer that would have found it there; so a call uses them only where its [T, N] arrays
// together are larger than arlif_streaming_threshold() bytes (cpu_abi.cpp): by default 3/4 of the last-level
// cache (arlif/ops/cpu_build.py sets it when it loads the library), where they could not stay in cache anyway.
// Only the kind of store changes, never a value.
extern "C" int64_t arlif_streaming_threshold();

// Whether a call whose [T, N] arrays (inputs and outputs) together hold `bytes` writes them around the cache.
inline bool stream_outputs(int64_t bytes) { return bytes > arlif_streaming_threshold(); }

// dst[0, n) = src[0, n): with non-temporal stores for the whole 64-byte lines of dst where the target has
// them (x86-64), plain stores for the partial lines at either end (a row of a block need not start on a line).
template <typename F>
inline void stream_row(F* __restrict__ dst, const F* __restrict__ src, int64_t n) {
#if defined(__GNUC__) && defined(__SSE2__)
    constexpr int64_t line = 64 / sizeof(F);
    int64_t i = 0;
    for (; i < n && (reinterpret_cast<uintptr_t>(dst + i) & 63); ++i) dst[i] = src[i];
    for (; i + line <= n; i += line) {
#if defined(__AVX512F__)
        _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), _mm512_loadu_si512(src + i));
#elif defined(__AVX__)
        auto* d = reinterpret_cast<__m256i*>(dst + i);
        const auto* q = reinterpret_cast<const __m256i*>(src + i);
        _mm256_stream_si256(d, _mm256_loadu_si256(q));
        _mm256_stream_si256(d + 1, _mm256_loadu_si256(q + 1));
#else
        auto* d = reinterpret_cast<__m128i*>(dst + i);
        const auto* q = reinterpret_cast<const __m128i*>(src + i);
        for (int k = 0; k < 4; ++k) _mm_stream_si128(d + k, _mm_loadu_si128(q + k));
#endif
    }
    for (; i < n; ++i) dst[i] = src[i];
#else
    std::memcpy(dst, src, n * sizeof(F));  // no non-temporal stores for GCC to emit here (e.g. aarch64)
#endif
}

// A block's row of an output from the block's buffer: streamed around the cache, or copied.
template <typename F>
inline void put_row(F* dst, const F* src, int64_t n, bool around) {
    if (around) stream_row(dst, src, n);
    else std::memcpy(dst, src, n * sizeof(F));
}

// Non-temporal stores are weakly ordered: each thread that made them fences before its part of a kernel ends,
// so that they are visible to whoever reads the outputs after the kernel returns.
inline void end_streaming(bool around) {
#if defined(__GNUC__) && defined(__SSE2__)
    if (around) _mm_sfence();
#else
    (void)around;
#endif
}

inline int64_t block_len(int64_t b, int64_t N) { return std::min(BLOCK, N - b * BLOCK); }

// Distance (in elements) between the [T, BLOCK] arrays of a scratch buffer: T·BLOCK plus 48 elements, so
// that the arrays do not all start at the same offset modulo 4 KiB. At T·BLOCK·4 bytes (a multiple of
// 4 KiB for even T) the same element of each array fell into one L1 set, and loads that follow stores at
// an address equal modulo 4 KiB can stall on a false dependency ("4K aliasing"). Every backward kernel lays
// out its scratch this way.
inline int64_t scratch_stride(int64_t T) { return T * BLOCK + 48; }

// A block's initial state, or the incoming gradient of a final state: dst[0, n) = s0[i0, i0 + n), or zeros where
// it is absent (s0 null: at rest, or no gradient).
template <typename F>
inline void load_state(const F* s0, int64_t i0, int64_t n, F* dst) {
    if (s0) std::memcpy(dst, s0 + i0, n * sizeof(F));
    else std::fill(dst, dst + n, F(0));
}

// A block's part of an optional [N] output (a final state, or the gradient of an initial state):
// out[i0, i0 + n) = src[0, n), nothing where out is null (not asked for, or no initial state given).
template <typename F>
inline void store_state(F* out, int64_t i0, int64_t n, const F* src) {
    if (out) std::memcpy(out + i0, src, n * sizeof(F));
}

// Prefetch row t of the sequences `seqs` for the block after b (up to b1) into L2 (rw: for writing). The
// blocked kernels read each row of a block from a different place (rows are N elements apart) and only
// a few cache lines per row, which the hardware prefetchers do not pick up; asking for the next block's
// rows hides the memory latency behind the work of the current block. The requests go out one row per
// step of the current block's time loops rather than all at its start, where a burst of a whole block's
// lines (up to 256) would fill the core's miss buffers and stall the loads behind it. Every neuron's kernels
// do the same, so that the comparisons between neurons stay like for like (docs/backends.md#fused-kernels).
template <typename F, int K>
inline void prefetch_next(const F* const (&seqs)[K], int64_t t, int64_t N, int64_t b, int64_t b1, int rw) {
    constexpr int64_t line = 64 / sizeof(F);
    const int64_t nb = b + 1;
    if (nb >= b1) return;
    // the whole BLOCK even where the last block is shorter (a prefetch never faults): with the block's length
    // as the bound, the compiler can prove the loop finite and drop it as free of side effects.
    const int64_t col = nb * BLOCK;
    for (const F* p : seqs) {
        if (!p) continue;
        for (int64_t i = 0; i < BLOCK; i += line) {
            if (rw) __builtin_prefetch(p + t * N + col + i, 1, 2);
            else __builtin_prefetch(p + t * N + col + i, 0, 2);
        }
    }
}

// Explicit vectors of VW floats where the target has AVX-512, or AVX2 with FMA: the exp and sigmoid of
// Math<float> in the same operations and order (so the same results bit for bit), for kernels whose loops the
// auto-vectoriser does not turn into the code wanted.
#ifdef ARLIF_HAVE_VECTORS
#if defined(__AVX512F__)
constexpr int VW = 16;
constexpr int VREGS = 32;  // vector registers
typedef __m512 vf;
inline vf vfmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vfnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }  // -(a·b) + c
inline vf vfnmsub(vf a, vf b, vf c) { return _mm512_fnmsub_ps(a, b, c); }  // -(a·b) - c
#else
constexpr int VW = 8;
constexpr int VREGS = 16;
typedef __m256 vf;
inline vf vfmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vfnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
inline vf vfnmsub(vf a, vf b, vf c) { return _mm256_fnmsub_ps(a, b, c); }
#endif
#define ARLIF_LANES _Pragma("GCC unroll 8") for (int u = 0; u < U; ++u)

inline vf vsplat(float a) { return vf{} + a; }

inline vf vclamp_abs(vf x, float L) {  // Math<float>::clamp_abs: min then max, x second (NaN stays)
#if defined(__AVX512F__)
    return _mm512_max_ps(vsplat(-L), _mm512_min_ps(vsplat(L), x));
#else
    return _mm256_max_ps(vsplat(-L), _mm256_min_ps(vsplat(L), x));
#endif
}

template <int U>
inline void vexp_neg(const vf (&x)[U], vf (&out)[U]) {  // Math<float>::exp_neg
    vf k[U], n[U], r[U], p[U];
    ARLIF_LANES k[u] = vfnmadd(x[u], vsplat(kExp2.l_over_ln2), vsplat(12582912.0f));
    ARLIF_LANES n[u] = k[u] - 12582912.0f;
    ARLIF_LANES r[u] = vfnmsub(n[u], vsplat(kExp2.ln2_over_l), x[u]);
    ARLIF_LANES p[u] = vfmadd(vsplat(kExp2.c3), r[u], vsplat(kExp2.c2));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(1.0f));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(1.0f));
#if defined(__AVX512F__)
    const __m512i tbl = _mm512_load_si512(kExp2.entry);
    ARLIF_LANES {
        const __m512i kb = _mm512_castps_si512(k[u]);  // vpermd reads the low 4 bits: j
        const __m512i sc = _mm512_add_epi32(_mm512_permutexvar_epi32(kb, tbl), _mm512_slli_epi32(kb, kExp2.SHIFT));
        out[u] = p[u] * _mm512_castsi512_ps(sc);
    }
#else
    const __m256i tbl = _mm256_load_si256(reinterpret_cast<const __m256i*>(kExp2.entry));
    ARLIF_LANES {
        const __m256i kb = _mm256_castps_si256(k[u]);  // vpermd reads the low 3 bits: j
        const __m256i sc = _mm256_add_epi32(_mm256_permutevar8x32_epi32(tbl, kb), _mm256_slli_epi32(kb, kExp2.SHIFT));
        out[u] = p[u] * _mm256_castsi256_ps(sc);
    }
#endif
}

inline vf vload(const float* p) {
    vf r;
    std::memcpy(&r, p, sizeof r);
    return r;
}
inline void vstore(float* p, vf a) { std::memcpy(p, &a, sizeof a); }

// |x| by clearing the sign bit (with AVX2, vsplat(-0.0f) would be +0.0: 0 + -0 = +0)
inline vf vabs(vf x) {
#if defined(__AVX512F__)
    return _mm512_abs_ps(x);
#else
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
#endif
}

// Whether |x| <= lim in every lane of the U vectors at x (false where a lane is NaN): one compare per vector
// and one branch for all U
template <int U>
inline bool vall_within(const float* x, float lim) {
#if defined(__AVX512F__)
    __mmask16 out = 0;
    ARLIF_LANES out |= _mm512_cmp_ps_mask(vabs(vload(x + u * VW)), vsplat(lim), _CMP_NLE_UQ);
    return out == 0;
#else
    __m256 out = _mm256_setzero_ps();
    ARLIF_LANES out = _mm256_or_ps(out, _mm256_cmp_ps(vabs(vload(x + u * VW)), vsplat(lim), _CMP_NLE_UQ));
    return _mm256_movemask_ps(out) == 0;
#endif
}

// Math<float>::sigmoid; CLAMP=false leaves out its clamp of x to ±87, for callers that know |x| <= 87 (the
// same result there, two instructions fewer)
template <bool CLAMP = true>
inline vf vsigmoid(vf x) {
    vf arg[1] = {CLAMP ? vclamp_abs(x, 87.0f) : x}, e[1];
    vexp_neg<1>(arg, e);
    return 1.0f / (1.0f + e[0]);
}
#endif

// Run fn(first_block, end_block) over the blocks of the N neurons of A (see parallel_blocks).
template <typename Args, typename Fn>
void run_blocks(const Args& A, int nthreads, Fn fn) {
    parallel_blocks((A.N + BLOCK - 1) / BLOCK, nthreads, fn);
}

}  // namespace
