// Fused multi-step CPU kernels of the arlif neurons (docs/backends.md): one pass over time forward, and a
// backward that recomputes the forward of a small block of neurons into a cache-resident scratch
// buffer, then runs BPTT over that block in reverse. Only x and the initial state are kept between
// forward and backward.
//
// The math is the one of src/arlif/ops/reference.py, in the same operation order, so float64 results
// agree with the reference to rounding. This file is plain C++ (no torch headers) so that it builds in
// about a second; arlif/ops/cpu_build.py compiles it on first use and loads it with ctypes.
//
// Layout: x, spikes and every sequence are contiguous [T, N]; states are [N]. Elements are processed in
// blocks of BLOCK neurons; inner loops run over the neurons of a block and are written branch-free so
// that the compiler vectorises them. Threads take contiguous ranges of blocks. Gradients of the scalar
// parameters are summed per block (in double) into `partial[block]`; the caller adds the partials, so the
// result does not depend on the number of threads.
//
// Performance (float32): LIF is bound by memory (its rows are read a few cache lines at a time, so every
// kernel prefetches the next block); AR-LIF by its arithmetic: three exponentials and two divisions per
// element and step, which the backward's recompute pays again, on the fused multiply-add units. The AR-LIF
// kernels compute the input-only terms σ(x), tanh(x), σ(c·x) of a whole block first (arlif_x_terms:
// independent iterations, explicit vectors with four interleaved chains where the target has AVX-512 or
// AVX2+FMA), then the state recurrence (varlif_step: explicit vectors too). Measured on a 2-vCPU Zen 4
// (AVX-512) machine, [8, 524288] float32, one thread, data in cache, forward + backward: 29 ms with a fused
// loop, Taylor exp and three divisions; 15.5 ms with the x-terms loop; 11.7 ms with the explicit state step,
// a degree-5 exp and fmas in the BPTT; 11.3 ms now (table exp), against 2.8 ms for LIF. Tried without gain:
// reciprocal approximations instead of divisions, both candidates σ(m' ± σ(x)) before the spike in the
// backward, -funroll-loops / -fschedule-insns / -fno-trapping-math, BLOCK 64 to 8192, prefetching two blocks
// ahead, AVX2 instead of AVX-512, adding 2^n to the exponent bits instead of scalef. At full size with 2 threads
// the memory traffic now hides behind AR-LIF's arithmetic (7.1-7.4 ms against 6.9 ms with the data in
// cache), while LIF is bound by memory: 3.3-3.6 ms.

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

#if defined(__GNUC__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#include <immintrin.h>
#endif

namespace {

constexpr int64_t BLOCK = 128;

// ---- elementwise math ------------------------------------------------------------------------------
// float: a branch-free exp that the compiler vectorises (libm's expf/tanhf calls would keep the loops
// scalar), and sigmoids that share one division. AR-LIF is bound by this arithmetic (three exponentials
// per element and step), so every operation counts:
// - exp: range reduction with one constant, then a polynomial evaluated with fused multiply-adds where the
//   target has them, and a scale built from the bits of the rounding sum, without a conversion: with
//   AVX-512, n/16 steps, a 16-entry table and degree 3; otherwise n steps of ln2 and degree 5 (both within
//   4e-7 relative, 1e-8 on average).
// - division: one per element and step for the x-only terms σ(x), tanh(x), σ(c·x) (a common denominator,
//   see x_terms) and one for σ(m_t), instead of three.
// The explicit fmas only touch these float helpers: the state updates keep the reference's separate
// multiply and add (-ffp-contract=off), and float64 keeps libm for parity with the float64 reference.
// double: libm, for exact parity with the float64 reference.
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
inline float fmadd(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
#else
inline float fmadd(float a, float b, float c) { return a * b + c; }  // no fma unit: a libm call would be slow
#endif

// a·b + c for gradient arithmetic, fused where the target has an FMA unit. The state updates do not use
// it: they keep the reference's separate multiply and add (-ffp-contract=off) so that spikes match it.
inline float mad(float a, float b, float c) { return fmadd(a, b, c); }
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
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

#if defined(__AVX512F__)
// With AVX-512 a 16-entry table fits one register (vpermd looks it up), so exp(-x) takes a finer range
// reduction and a shorter polynomial (Math<float>::exp_neg): 6 fma-unit operations instead of 8.
#define ARLIF_EXP_TABLE 1
// 2^(j/16) rounded to float, as bits, minus j << 19 (see Math<float>::exp_neg)
alignas(64) constexpr uint32_t kExp2Table[16] = {
    0x3f800000u, 0x3f7daac3u, 0x3f7b95c2u, 0x3f79c3d3u, 0x3f7837f0u, 0x3f76f532u, 0x3f75fed7u, 0x3f75583fu,
    0x3f7504f3u, 0x3f7508a4u, 0x3f75672au, 0x3f76248cu, 0x3f7744fdu, 0x3f78ccdfu, 0x3f7ac0c7u, 0x3f7d257du};
#endif

template <>
struct Math<float> {
#ifdef ARLIF_EXP_TABLE
    // exp(-x) for |x| <= 87 (callers clamp) as 2^(n/16)·e^r: n = round(-x·16/ln2) from the low mantissa bits of
    // the rounding sum k (as below), r = -x - n·ln2/16 with |r| <= ln2/32, where the degree-3 Taylor polynomial
    // is within 9e-9 of e^r. With n = 16q + j, 2^(n/16) = 2^(j/16)·2^q is the table entry j with q added to its
    // exponent; bits(k) << 19 = (n << 19) mod 2^32 = (q << 23) + (j << 19), so the table holds
    // bits(2^(j/16)) - (j << 19) and one integer add makes the scale. Relative error: 4.0e-7 at |x| = 87,
    // 8e-9 on average (exp_neg_poly: 4.0e-7 and 1e-8); the AR-LIF kernels ran 4% faster with it. Only for
    // explicit vector code and its scalar twins: in a loop left to the auto-vectoriser the table lookup
    // stops GCC from vectorising the loop at all.
    static inline float exp_neg_table(float x) {
        const float k = fmadd(-x, 23.0831203460693359f, 12582912.0f);  // 16/ln2, 1.5·2^23
        const float n = k - 12582912.0f;
        const float r = fmadd(n, -0.0433216989040374756f, -x);  // ln2/16 rounded: off by 1.2e-10
        float p = fmadd(0.166666672f, r, 0.5f);
        p = fmadd(p, r, 1.0f);
        p = fmadd(p, r, 1.0f);
        uint32_t bits;
        std::memcpy(&bits, &k, sizeof bits);
        bits = kExp2Table[bits & 15u] + (bits << 19);
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
        // r = -x - n·ln2 with one fma: ln 2 rounded to float is off by 1.9e-9, so r is off by at most
        // |n|·1.9e-9 (1.1e-7 at the clamp of σ(m), |n| <= 126, where σ is within 1e-38 of 0 or 1; 5.5e-8 at the
        // ±20 clamp of the x terms)
        const float r = fmadd(n, -0.693147182464599609f, -x);
        float p = 8.312505669891834e-3f;  // degree-5 minimax on [-ln2/2, ln2/2] (relative error 1.05e-7)
        p = fmadd(p, r, 4.189009591937065e-2f);
        p = fmadd(p, r, 1.6667114198207855e-1f);
        p = fmadd(p, r, 4.99992311000824e-1f);
        p = fmadd(p, r, 1.0f);
        p = fmadd(p, r, 1.0f);
        // bits(k) = bits(1.5·2^23) + n, and bits(1.5·2^23) << 23 wraps to 0: 2^n = ((bits(k) + 127) << 23).
        // (Adding n << 23 to p's bits instead of multiplying was no faster, and loses NaN payloads.)
        uint32_t bits;
        std::memcpy(&bits, &k, sizeof bits);
        bits = (bits + 127u) << 23;
        float scale;
        std::memcpy(&scale, &bits, sizeof scale);
        return p * scale;
    }
    // the exp(-x) of the AR-LIF kernels, the scalar twin of vexp_neg
#ifdef ARLIF_EXP_TABLE
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
    // The input-only terms of one AR-LIF step from one division: with e = exp(-x), A = (1+e)(1+e²),
    // ec = exp(-c·x), B = 1 + ec and R = 1/(A·B): σ(x) = (1+e²)·B·R, tanh(x) = (1-e²)/(1+e²) =
    // (1-e²)(1+e)·B·R, σ(c·x) = A·R. x and c·x are clamped to ±20 so that A·B < 6e34 stays finite; there σ
    // and tanh are within 2.1e-9 of their limits (absolute). Without CARRY, B = 1 and g is not computed.
    template <bool CARRY>
    static inline void x_terms(float x, float c, float& sig, float& th, float& g) {
        const float xc = clamp_abs(x, 20.0f);
        const float e = exp_neg(xc), e2 = e * e;
        const float a1 = 1.0f + e, a2 = 1.0f + e2;
        const float A = a1 * a2;
        if (CARRY) {
            const float B = 1.0f + exp_neg(clamp_abs(c * x, 20.0f));
            const float R = 1.0f / (A * B);
            const float iA = B * R;
            sig = a2 * iA;
            th = ((1.0f - e2) * a1) * iA;
            g = A * R;
            // Beyond ±20 the clamp leaves σ(c·x) within 2e-9 of 0 or 1, but dL/dc multiplies σ'(c·x) by x, so
            // that error grew with |x| (a wrong c gradient for large inputs): take the sigmoid itself there
            // (rare: inputs are mostly BatchNorm outputs). vx_terms does the same per vector.
            if (std::abs(c * x) > 20.0f) g = sigmoid(c * x);
        } else {
            const float iA = 1.0f / A;
            sig = a2 * iA;
            th = ((1.0f - e2) * a1) * iA;
        }
        // σ(x) below -20 likewise (an error of 2e-9 in every m_t reaches dL/dc multiplied by later inputs);
        // above +20 σ(x) and tanh(x) round to 1 in float32 anyway
        if (std::abs(x) > 20.0f) sig = sigmoid(x);
    }
};

template <>
struct Math<double> {
    static inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
    static inline double sigmoid_autovec(double x) { return sigmoid(x); }
    template <bool CARRY>
    static inline void x_terms(double x, double c, double& sig, double& th, double& g) {
        sig = 1.0 / (1.0 + std::exp(-x));
        th = std::tanh(x);
        if (CARRY) g = 1.0 / (1.0 + std::exp(-(c * x)));
    }
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
// workers, which keep spinning for a while after every parallel torch operator (measured: the fused kernels
// ran up to 1.5x slower inside a model than alone).
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

inline int64_t block_len(int64_t b, int64_t N) { return std::min(BLOCK, N - b * BLOCK); }

// Distance (in elements) between the [T, BLOCK] arrays of a scratch buffer: T·BLOCK plus 48 elements, so
// that the arrays do not all start at the same offset modulo 4 KiB. At T·BLOCK·4 bytes (a multiple of
// 4 KiB for even T) the same element of each array fell into one L1 set, and loads that follow stores at
// an address equal modulo 4 KiB can stall on a false dependency ("4K aliasing"). Every backward kernel lays
// out its scratch this way. (CLIF's backward takes 3.8-4.2 or 5.6 ms depending on the process, with or
// without the padding: that variation has another cause, not found yet.)
inline int64_t scratch_stride(int64_t T) { return T * BLOCK + 48; }

// A block's initial state: dst[0, n) = s0[i0, i0 + n), or zeros where the state is absent (s0 null: at rest).
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
// lines (up to 256) filled the core's miss buffers and stalled the loads behind it (measured on the 2-vCPU
// Zen 4, [8, 524288], 2 threads: LIF's backward 3.0-3.2 -> 2.0-2.3 ms, AR-LIF's 4.8-5.0 -> 4.4-4.5 ms;
// prefetching two blocks ahead was no better). Every neuron's kernels do the same, so that the comparisons
// between neurons stay like for like (docs/backends.md#fused-kernels).
template <typename F, int K>
inline void prefetch_next(const F* const (&seqs)[K], int64_t t, int64_t N, int64_t b, int64_t b1, int rw) {
    constexpr int64_t line = 64 / sizeof(F);
    const int64_t nb = b + 1;
    if (nb >= b1) return;
    // the whole BLOCK even where the last block is shorter (a prefetch never faults). With the length as
    // the bound, GCC 12 proved the loop finite and removed it as free of side effects: no prefetch at all.
    const int64_t col = nb * BLOCK;
    for (const F* p : seqs) {
        if (!p) continue;
        for (int64_t i = 0; i < BLOCK; i += line) {
            if (rw) __builtin_prefetch(p + t * N + col + i, 1, 2);
            else __builtin_prefetch(p + t * N + col + i, 0, 2);
        }
    }
}

// ================================================================================================
// AR-LIF (docs/neurons.md#ar-lif). Template switches: TA threshold_adjust, AR adaptive_reset, CARRY carry_memory.
// ================================================================================================
template <typename F>
struct ArlifArgs {
    const F *x, *v0, *m0;                     // v0, m0 may be null (zeros)
    int64_t T, N;
    F ta, c, vth, decay;                      // ta = tanh(a)
    F *spikes, *vT, *mT, *vseq, *mseq;        // forward outputs (mT, vseq, mseq may be null)
    const F *gs, *gvT, *gmT, *gvseq, *gmseq;  // backward inputs (all but gs may be null)
    F *gx, *gv0, *gm0;                        // backward outputs (gv0, gm0 may be null)
    double *part_a, *part_c;                  // per-block partial sums (may be null)
    int kind;
    F width;
};

// The input-only terms σ(x), tanh(x), σ(c·x) of steps [0, T) of one block into TX, SX, G ([T, BLOCK]).
// A loop of its own: its iterations are independent, so the out-of-order core overlaps the long
// exp -> division chains of several of them; fused into the state update, one iteration is ~110
// vector instructions and the core ran out of window, waiting on latency (the kernels ran ~2x faster
// with two hyper-threads than with one).
#if defined(__GNUC__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
// Math<float>::x_terms on U·W consecutive elements with explicit vectors of W floats, the U vectors'
// operations interleaved: the exp -> division chains are long, and with one vector per loop iteration
// (what the auto-vectoriser makes of the scalar code) the out-of-order core waits on latency; U
// independent chains side by side keep its units busy (~20% faster than the auto-vectorised loop here).
// Same operations in the same order as the scalar code, so the results are bit for bit the same.
#if defined(__AVX512F__)
constexpr int VW = 16;
typedef __m512 vf;
inline vf vfmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vfnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }  // -(a·b) + c
inline vf vfnmsub(vf a, vf b, vf c) { return _mm512_fnmsub_ps(a, b, c); }  // -(a·b) - c
#else
constexpr int VW = 8;
typedef __m256 vf;
inline vf vfmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vfnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
inline vf vfnmsub(vf a, vf b, vf c) { return _mm256_fnmsub_ps(a, b, c); }
#endif
typedef uint32_t vu __attribute__((vector_size(sizeof(vf))));
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
#ifdef ARLIF_EXP_TABLE
    vf k[U], n[U], r[U], p[U];
    const __m512i tbl = _mm512_load_si512(kExp2Table);
    ARLIF_LANES k[u] = vfnmadd(x[u], vsplat(23.0831203460693359f), vsplat(12582912.0f));
    ARLIF_LANES n[u] = k[u] - 12582912.0f;
    ARLIF_LANES r[u] = vfnmsub(n[u], vsplat(0.0433216989040374756f), x[u]);
    ARLIF_LANES p[u] = vfmadd(vsplat(0.166666672f), r[u], vsplat(0.5f));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(1.0f));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(1.0f));
    ARLIF_LANES {
        const __m512i kb = _mm512_castps_si512(k[u]);  // vpermd reads the low 4 bits: j
        const __m512i sc = _mm512_add_epi32(_mm512_permutexvar_epi32(kb, tbl), _mm512_slli_epi32(kb, 19));
        out[u] = p[u] * _mm512_castsi512_ps(sc);
    }
#else
    vf k[U], n[U], r[U], p[U];
    ARLIF_LANES k[u] = vfnmadd(x[u], vsplat(1.44269504088896341f), vsplat(12582912.0f));  // -x·log2e + magic
    ARLIF_LANES n[u] = k[u] - 12582912.0f;
    ARLIF_LANES r[u] = vfnmsub(n[u], vsplat(0.693147182464599609f), x[u]);  // -n·ln2 - x
    ARLIF_LANES p[u] = vfmadd(vsplat(8.312505669891834e-3f), r[u], vsplat(4.189009591937065e-2f));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(1.6667114198207855e-1f));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(4.99992311000824e-1f));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(1.0f));
    ARLIF_LANES p[u] = vfmadd(p[u], r[u], vsplat(1.0f));
    ARLIF_LANES out[u] = p[u] * (vf)(((vu)k[u] + 127u) << 23);
#endif
}

inline vf vsigmoid(vf x);

// σ(z) of the lanes where |z| > 20 (see Math<float>::x_terms), others from g; the test is one compare per
// vector, and the sigmoid runs only when a lane needs it
inline vf vfar_sigmoid(vf z, vf g) {
#if defined(__AVX512F__)
    const __mmask16 far = _mm512_cmp_ps_mask(_mm512_abs_ps(z), vsplat(20.0f), _CMP_GT_OQ);
    return far ? _mm512_mask_blend_ps(far, g, vsigmoid(z)) : g;
#else
    // |z| by clearing the sign bit (vsplat(-0.0f) would be +0.0: 0 + -0 = +0)
    const __m256 far = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), z), vsplat(20.0f), _CMP_GT_OQ);
    return _mm256_movemask_ps(far) ? _mm256_blendv_ps(g, vsigmoid(z), far) : g;
#endif
}

template <bool CARRY, int U>
inline void vx_terms(const float* x, float c, float* tx, float* sx, float* g) {  // Math<float>::x_terms
    vf xv[U], e[U], ec[U], arg[U], cx[U];
    ARLIF_LANES std::memcpy(&xv[u], x + u * VW, sizeof(vf));
    ARLIF_LANES arg[u] = vclamp_abs(xv[u], 20.0f);
    vexp_neg<U>(arg, e);
    if (CARRY) {
        ARLIF_LANES cx[u] = c * xv[u];
        ARLIF_LANES arg[u] = vclamp_abs(cx[u], 20.0f);
        vexp_neg<U>(arg, ec);
    }
    vf e2[U], a1[U], a2[U], A[U], B[U], R[U], iA[U];
    ARLIF_LANES e2[u] = e[u] * e[u];
    ARLIF_LANES a1[u] = 1.0f + e[u];
    ARLIF_LANES a2[u] = 1.0f + e2[u];
    ARLIF_LANES A[u] = a1[u] * a2[u];
    if (CARRY) {
        ARLIF_LANES B[u] = 1.0f + ec[u];
        ARLIF_LANES R[u] = 1.0f / (A[u] * B[u]);
        ARLIF_LANES iA[u] = B[u] * R[u];
        ARLIF_LANES {
            const vf gu = vfar_sigmoid(cx[u], A[u] * R[u]);
            std::memcpy(g + u * VW, &gu, sizeof(vf));
        }
    } else {
        ARLIF_LANES iA[u] = 1.0f / A[u];
    }
    ARLIF_LANES {
        const vf su = vfar_sigmoid(xv[u], a2[u] * iA[u]);
        std::memcpy(sx + u * VW, &su, sizeof(vf));
    }
    ARLIF_LANES {
        const vf tu = ((1.0f - e2[u]) * a1[u]) * iA[u];
        std::memcpy(tx + u * VW, &tu, sizeof(vf));
    }
}

inline vf vload(const float* p) {
    vf r;
    std::memcpy(&r, p, sizeof r);
    return r;
}
inline void vstore(float* p, vf a) { std::memcpy(p, &a, sizeof a); }

inline vf vsigmoid(vf x) {  // Math<float>::sigmoid
    vf arg[1] = {vclamp_abs(x, 87.0f)}, e[1];
    vexp_neg<1>(arg, e);
    return 1.0f / (1.0f + e[0]);
}

// One AR-LIF step of VW neurons in explicit vectors: the operations of the scalar step (arlif_step, below)
// in the same order (so the same results bit for bit), with the
// clamp of σ(m) as min/max and 2^n as scalef, which the auto-vectoriser does not find (48 -> ~35
// instructions per vector). `v`, `m` are updated; returns u = H - θ and the spikes, and σ(m_t) unless SPECULATE.
// V_t = H - S·(θ + σ(m_t)) is written V_t = S ? H - (θ + σ(m_t)) : H (the same value: 0·(θ + σ) = 0 for
// finite θ). SPECULATE (the forward): σ(m_t) only matters where the neuron fires, where m_t = m' + σ(x), so
// σ(m' + σ(x)) is computed before the spike is known, off the chain V_{t-1} -> S_t -> V_t that the
// steps wait on. The backward's recompute needs σ(m_t) for every neuron and computes it after S_t.
template <bool TA, bool AR, bool CARRY, bool SPECULATE>
inline void varlif_step(vf& v, vf& m, vf x, const float* tx, const float* sx, const float* g, float decay,
                        float vth, float ta, vf& u, vf& s, vf& sm) {
    vf mp = vsplat(0.0f), sxv = vsplat(0.0f), sp = vsplat(0.0f);
    if (AR) {
        if (CARRY) {
            const vf gv = vload(g);
            mp = m * (m > 0.0f ? gv : 1.0f - gv);
        }
        sxv = vload(sx);
        if (SPECULATE) sp = vsigmoid(mp + sxv);
    }
    const vf h = decay * v + x;
    const vf theta = TA ? vth + ta * vload(tx) : vsplat(vth);
    u = h - theta;
    const auto spk = u >= 0.0f;
    s = spk ? vsplat(1.0f) : vsplat(0.0f);
    if (AR) {
        const vf mn = spk ? mp + sxv : mp - sxv;
        if (!SPECULATE) sp = sm = vsigmoid(mn);
        v = spk ? h - (theta + sp) : h;
        m = mn;
    } else {
        v = spk ? h - theta : h;
    }
}
#undef ARLIF_LANES
#define ARLIF_HAVE_VX_TERMS 1
#endif

// One AR-LIF step of one neuron: the scalar twin of varlif_step (float64, and the neurons of a block after its
// last full vector), shared by the forward and the backward's recompute so that both take the same steps.
// `v`, `m` are updated; returns u = H - θ, the spike and σ(m_t) (AR only). tx, sx, g point at this step's
// input terms and are read only where the switches use them.
template <typename F, bool TA, bool AR, bool CARRY>
inline void arlif_step(F& v, F& m, F x, const F* tx, const F* sx, const F* g, F decay, F vth, F ta, F& u, bool& spk,
                       F& sm) {
    const F h = decay * v + x;
    const F theta = TA ? vth + ta * *tx : vth;
    u = h - theta;
    spk = u >= F(0);
    if (AR) {
        F mp = F(0);
        if (CARRY) mp = m * (m > F(0) ? *g : F(1) - *g);
        const F mn = spk ? mp + *sx : mp - *sx;
        sm = Math<F>::sigmoid(mn);
        v = spk ? h - (theta + sm) : h;  // = H - S·(θ + σ(m_t)), see varlif_step
        m = mn;
    } else {
        v = spk ? h - theta : h;
    }
}

template <typename F, bool TA, bool AR, bool CARRY>
void arlif_x_terms(const F* x, int64_t T, int64_t N, int64_t n, F c, F* TX, F* SX, F* G) {
    for (int64_t t = 0; t < T; ++t) {
        const F* __restrict__ xt = x + t * N;
        F *__restrict__ tx_ = TX + t * BLOCK, *__restrict__ sx_ = SX + t * BLOCK, *__restrict__ g_ = G + t * BLOCK;
        int64_t i = 0;
#ifdef ARLIF_HAVE_VX_TERMS
        if constexpr (std::is_same<F, float>::value) {
            constexpr int U = 4;
            for (; i + U * VW <= n; i += U * VW) vx_terms<AR && CARRY, U>(xt + i, c, tx_ + i, sx_ + i, g_ + i);
            for (; i + VW <= n; i += VW) vx_terms<AR && CARRY, 1>(xt + i, c, tx_ + i, sx_ + i, g_ + i);
        }
#endif
        #pragma GCC ivdep
        for (; i < n; ++i) {
            F sx = F(0), tx = F(0), g = F(0);
            Math<F>::template x_terms<AR && CARRY>(xt[i], c, sx, tx, g);
            tx_[i] = tx;
            if (AR) sx_[i] = sx;
            if (AR && CARRY) g_[i] = g;
        }
    }
}

template <typename F, bool TA, bool AR, bool CARRY>
void arlif_fwd_blocks(const ArlifArgs<F>& A, int64_t b0, int64_t b1) {
    // scalars in locals: the compiler cannot prove that stores through the output pointers leave A alone
    const int64_t N = A.N, T = A.T;
    const F ta = A.ta, c = A.c, vth = A.vth, decay = A.decay;
    const int64_t S = scratch_stride(T);
    std::vector<F> scratch((TA || AR) ? 3 * S : 0);
    F* TX = scratch.data();  // tanh(x)
    F* SX = TX + S;          // σ(x)
    F* G = SX + S;           // σ(c·x)
    F v[BLOCK], m[BLOCK];
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        load_state(A.m0, i0, n, m);
        if (TA || AR) arlif_x_terms<F, TA, AR, CARRY>(A.x + i0, T, N, n, c, TX, SX, G);
        for (int64_t t = 0; t < T; ++t) {
            prefetch_next<F, 1>({A.x}, t, N, b, b1, 0);
            prefetch_next<F, 3>({A.spikes, A.vseq, A.mseq}, t, N, b, b1, 1);
            const F* __restrict__ xt = A.x + t * N + i0;
            const F *__restrict__ tx_ = TX + t * BLOCK, *__restrict__ sx_ = SX + t * BLOCK,
                    *__restrict__ g_ = G + t * BLOCK;
            F* __restrict__ st = A.spikes + t * N + i0;
            int64_t i = 0;
#ifdef ARLIF_HAVE_VX_TERMS
            if constexpr (std::is_same<F, float>::value) {
                for (; i + VW <= n; i += VW) {
                    vf vv = vload(v + i), mv = vload(m + i), u, s, sm;
                    varlif_step<TA, AR, CARRY, true>(vv, mv, vload(xt + i), tx_ + i, sx_ + i, g_ + i, decay, vth,
                                                     ta, u, s, sm);
                    vstore(v + i, vv);
                    if (AR) vstore(m + i, mv);
                    vstore(st + i, s);
                }
            }
#endif
            #pragma GCC ivdep
            for (; i < n; ++i) {
                F u, sm = F(0);
                bool spk;
                arlif_step<F, TA, AR, CARRY>(v[i], m[i], xt[i], tx_ + i, sx_ + i, g_ + i, decay, vth, ta, u, spk, sm);
                st[i] = spk ? F(1) : F(0);
            }
            if (A.vseq) std::memcpy(A.vseq + t * N + i0, v, n * sizeof(F));
            if (AR && A.mseq) std::memcpy(A.mseq + t * N + i0, m, n * sizeof(F));
        }
        std::memcpy(A.vT + i0, v, n * sizeof(F));
        if (AR) store_state(A.mT, i0, n, m);
    }
}

template <typename F, bool TA, bool AR, bool CARRY>
void arlif_bwd_blocks(const ArlifArgs<F>& A, int64_t b0, int64_t b1) {
    const int64_t N = A.N, T = A.T;
    const F ta = A.ta, c = A.c, vth = A.vth, decay = A.decay;
    // per-step intermediates of one block, recomputed here instead of saved by the forward
    const int64_t S = scratch_stride(T);
    std::vector<F> scratch(6 * S);
    F* U = scratch.data();  // u = H - θ
    F* TX = U + S;          // tanh(x)
    F* SX = TX + S;         // σ(x)
    F* G = SX + S;          // σ(c·x)
    F* MP = G + S;          // m_{t-1}
    F* SM = MP + S;         // σ(m_t)
    F v[BLOCK], m[BLOCK], gv[BLOCK], gm[BLOCK], sg[BLOCK], acc_a[BLOCK], acc_c[BLOCK];
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        load_state(A.m0, i0, n, m);
        // 1. forward again, keeping what the reverse pass needs
        if (TA || AR) arlif_x_terms<F, TA, AR, CARRY>(A.x + i0, T, N, n, c, TX, SX, G);
        for (int64_t t = 0; t < T; ++t) {
            prefetch_next<F, 4>({A.x, A.gs, A.gvseq, A.gmseq}, t, N, b, b1, 0);
            const F* __restrict__ xt = A.x + t * N + i0;
            const F *__restrict__ tx_ = TX + t * BLOCK, *__restrict__ sx_ = SX + t * BLOCK,
                    *__restrict__ g_ = G + t * BLOCK;
            F *__restrict__ u_ = U + t * BLOCK, *__restrict__ mp_ = MP + t * BLOCK, *__restrict__ sm_ = SM + t * BLOCK;
            int64_t i = 0;
#ifdef ARLIF_HAVE_VX_TERMS
            if constexpr (std::is_same<F, float>::value) {
                for (; i + VW <= n; i += VW) {
                    vf vv = vload(v + i), mv = vload(m + i), u, s, sm;
                    if (AR && CARRY) vstore(mp_ + i, mv);
                    varlif_step<TA, AR, CARRY, false>(vv, mv, vload(xt + i), tx_ + i, sx_ + i, g_ + i, decay, vth,
                                                      ta, u, s, sm);
                    vstore(u_ + i, u);
                    if (AR) vstore(sm_ + i, sm);
                    vstore(v + i, vv);
                    if (AR) vstore(m + i, mv);
                }
            }
#endif
            #pragma GCC ivdep
            for (; i < n; ++i) {
                F u, sm = F(0);
                bool spk;
                if (AR && CARRY) mp_[i] = m[i];
                arlif_step<F, TA, AR, CARRY>(v[i], m[i], xt[i], tx_ + i, sx_ + i, g_ + i, decay, vth, ta, u, spk, sm);
                u_[i] = u;
                if (AR) sm_[i] = sm;
            }
        }
        // 2. BPTT over the block, last step first
        #pragma GCC ivdep
        for (int64_t i = 0; i < n; ++i) {
            gv[i] = A.gvT ? A.gvT[i0 + i] : F(0);
            gm[i] = (AR && A.gmT) ? A.gmT[i0 + i] : F(0);
            acc_a[i] = F(0);
            acc_c[i] = F(0);
        }
        for (int64_t t = T - 1; t >= 0; --t) {
            prefetch_next<F, 1>({A.gx}, t, N, b, b1, 1);
            const int64_t off = t * N + i0;
            if (A.gvseq)
                #pragma GCC ivdep
                for (int64_t i = 0; i < n; ++i) gv[i] += A.gvseq[off + i];
            if (AR && A.gmseq)
                #pragma GCC ivdep
                for (int64_t i = 0; i < n; ++i) gm[i] += A.gmseq[off + i];
            const F *__restrict__ u_ = U + t * BLOCK, *__restrict__ tx_ = TX + t * BLOCK,
                    *__restrict__ sx_ = SX + t * BLOCK, *__restrict__ g_ = G + t * BLOCK,
                    *__restrict__ mp_ = MP + t * BLOCK, *__restrict__ sm_ = SM + t * BLOCK;
            surrogate_grad<F>(A.kind, A.width, u_, sg, n);
            const F* __restrict__ xt = A.x + off;
            const F* __restrict__ gst = A.gs + off;
            F* __restrict__ gxt = A.gx + off;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                // gradient arithmetic with fused multiply-adds (mad): fewer instructions, and the spikes are
                // already fixed by the recompute above, so the one rounding instead of two changes nothing else
                // (selects on the spike instead of products with S ∈ {0, 1}: the multiply unit is the busy one)
                const bool spk = u_[i] >= F(0);
                const F tx = tx_[i];
                const F theta = TA ? mad(ta, tx, vth) : vth;
                const F gV = gv[i];
                F gS, gmn = F(0);
                if (AR) {
                    const F sm = sm_[i];
                    gmn = spk ? mad(-gV, mad(-sm, sm, sm), gm[i]) : gm[i];  // σ'(m) = σ - σ²
                    gS = mad(gmn + gmn, sx_[i], mad(-gV, theta + sm, gst[i]));
                } else {
                    gS = mad(-gV, theta, gst[i]);
                }
                const F gu = gS * sg[i];
                const F gh = gV + gu;
                F gx = gh;
                if (TA) {
                    const F gth = spk ? -gu - gV : -gu;
                    gx = mad(gth, mad(-ta * tx, tx, ta), gx);  // ta·(1 - tanh²(x))
                    acc_a[i] = mad(gth, tx, acc_a[i]);
                }
                if (AR) {
                    const F sx = sx_[i];
                    gx = mad(spk ? gmn : -gmn, mad(-sx, sx, sx), gx);
                    if (CARRY) {
                        const F mp = mp_[i], g = g_[i];
                        const bool pos = mp > F(0);
                        const F gk = gmn * mp;
                        const F dz = (pos ? gk : -gk) * mad(-g, g, g);  // d/d(c·x)
                        gx = mad(dz, c, gx);
                        // m_{t-1} = 0 (the first step from rest) adds no c-term, even for an infinite input (0·inf)
                        acc_c[i] = mad(dz, mp != F(0) ? xt[i] : F(0), acc_c[i]);
                        gm[i] = gmn * (pos ? g : F(1) - g);
                    } else {
                        gm[i] = F(0);
                    }
                }
                gv[i] = decay * gh;
                gxt[i] = gx;
            }
        }
        store_state(A.gv0, i0, n, gv);
        store_state(A.gm0, i0, n, gm);
        if (A.part_a) A.part_a[b] = block_sum(acc_a, n);
        if (A.part_c) A.part_c[b] = block_sum(acc_c, n);
    }
}

template <typename F, bool FWD>
void arlif_run(const ArlifArgs<F>& A, int ta_on, int ar, int carry, int nthreads) {
    const int64_t nblocks = (A.N + BLOCK - 1) / BLOCK;
#define ARLIF_CASE(TA_, AR_, CA_)                                                                   \
    if (!!ta_on == TA_ && !!ar == AR_ && !!carry == CA_) {                                          \
        parallel_blocks(nblocks, nthreads, [&](int64_t b0, int64_t b1) {                           \
            if (FWD) arlif_fwd_blocks<F, TA_, AR_, CA_>(A, b0, b1);                                 \
            else arlif_bwd_blocks<F, TA_, AR_, CA_>(A, b0, b1);                                     \
        });                                                                                         \
        return;                                                                                     \
    }
    ARLIF_CASE(true, true, true)
    ARLIF_CASE(true, true, false)
    ARLIF_CASE(false, true, true)
    ARLIF_CASE(false, true, false)
    ARLIF_CASE(true, false, false)
    ARLIF_CASE(false, false, false)
#undef ARLIF_CASE
    // adaptive_reset=False has no memory: carry_memory is irrelevant there
    arlif_run<F, FWD>(A, ta_on, ar, 0, nthreads);
}

// ================================================================================================
// LIF (soft/hard reset) and PLIF share one leaky integrator: H = k·V + x (k = λ, or 1 - σ(w) for PLIF).
// ================================================================================================
template <typename F>
struct LeakyArgs {
    const F *x, *v0;  // v0 may be null (zeros)
    int64_t T, N;
    F k, vth;
    F *spikes, *vT, *vseq;
    const F *gs, *gvT, *gvseq;
    F *gx, *gv0;      // gv0 may be null
    double* part_k;  // per-block partial sums of dL/dk (PLIF), may be null
    int kind;
    F width;
};

template <typename F, bool HARD>
void leaky_fwd_blocks(const LeakyArgs<F>& A, int64_t b0, int64_t b1) {
    const int64_t N = A.N;
    const F k = A.k, vth = A.vth;
    F v[BLOCK];
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        for (int64_t t = 0; t < A.T; ++t) {
            prefetch_next<F, 1>({A.x}, t, N, b, b1, 0);
            prefetch_next<F, 2>({A.spikes, A.vseq}, t, N, b, b1, 1);
            const F* __restrict__ xt = A.x + t * N + i0;
            F* __restrict__ st = A.spikes + t * N + i0;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                const F h = k * v[i] + xt[i];
                const F s = (h - vth) >= F(0) ? F(1) : F(0);
                v[i] = HARD ? h * (F(1) - s) : h - s * vth;
                st[i] = s;
            }
            if (A.vseq) std::memcpy(A.vseq + t * N + i0, v, n * sizeof(F));
        }
        std::memcpy(A.vT + i0, v, n * sizeof(F));
    }
}

template <typename F, bool HARD>
void leaky_bwd_blocks(const LeakyArgs<F>& A, int64_t b0, int64_t b1) {
    const int64_t N = A.N, T = A.T;
    const F k = A.k, vth = A.vth;
    const int64_t S = scratch_stride(T);
    std::vector<F> scratch(2 * S);
    F* U = scratch.data();  // u = H - V_th
    F* VP = U + S;          // V_{t-1}
    F v[BLOCK], gv[BLOCK], sg[BLOCK], acc[BLOCK];
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        for (int64_t t = 0; t < T; ++t) {
            prefetch_next<F, 3>({A.x, A.gs, A.gvseq}, t, N, b, b1, 0);
            const F* __restrict__ xt = A.x + t * N + i0;
            F *__restrict__ u_ = U + t * BLOCK, *__restrict__ vp_ = VP + t * BLOCK;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                const F h = k * v[i] + xt[i];
                const F u = h - vth;
                const F s = u >= F(0) ? F(1) : F(0);
                u_[i] = u;
                vp_[i] = v[i];
                v[i] = HARD ? h * (F(1) - s) : h - s * vth;
            }
        }
        #pragma GCC ivdep
        for (int64_t i = 0; i < n; ++i) {
            gv[i] = A.gvT ? A.gvT[i0 + i] : F(0);
            acc[i] = F(0);
        }
        for (int64_t t = T - 1; t >= 0; --t) {
            prefetch_next<F, 1>({A.gx}, t, N, b, b1, 1);
            const int64_t off = t * N + i0;
            if (A.gvseq)
                #pragma GCC ivdep
                for (int64_t i = 0; i < n; ++i) gv[i] += A.gvseq[off + i];
            const F *__restrict__ u_ = U + t * BLOCK, *__restrict__ vp_ = VP + t * BLOCK;
            surrogate_grad<F>(A.kind, A.width, u_, sg, n);
            const F* __restrict__ gst = A.gs + off;
            const F* __restrict__ xt = A.x + off;
            F* __restrict__ gxt = A.gx + off;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                const F s = u_[i] >= F(0) ? F(1) : F(0);
                const F gV = gv[i];
                F gh;
                if (HARD) {
                    const F h = k * vp_[i] + xt[i];
                    gh = gV * (F(1) - s) + (gst[i] - gV * h) * sg[i];
                } else {
                    gh = gV + (gst[i] - gV * vth) * sg[i];
                }
                acc[i] += gh * vp_[i];
                gv[i] = k * gh;
                gxt[i] = gh;
            }
        }
        store_state(A.gv0, i0, n, gv);
        if (A.part_k) A.part_k[b] = block_sum(acc, n);
    }
}

// ================================================================================================
// CLIF: H = V·(1 - 1/τ) + x; m' = m·σ(H/τ); S = Θ(H - V_th); m = m' + S; V = H - S·(V_th + σ(m)).
// ================================================================================================
template <typename F>
struct ClifArgs {
    const F *x, *v0, *m0;  // v0, m0 may be null (zeros)
    int64_t T, N;
    F kc, tau, vth;  // kc = 1 - 1/τ
    F *spikes, *vT, *mT, *vseq, *mseq;
    const F *gs, *gvT, *gmT, *gvseq, *gmseq;
    F *gx, *gv0, *gm0;     // gv0, gm0 may be null
    int kind;
    F width;
};

// One CLIF step of one neuron, shared by the forward and the backward's recompute so that both take the
// same steps: `v`, `m` are updated; returns u = H - V_th, q = σ(H/τ) and σ(m_t).
template <typename F>
inline void clif_step(F& v, F& m, F x, F kc, F tau, F vth, F& u, F& q, F& sm) {
    const F h = v * kc + x;
    q = Math<F>::sigmoid_autovec(h / tau);
    u = h - vth;
    const F s = u >= F(0) ? F(1) : F(0);
    const F mn = m * q + s;  // m' + S with m' = m·σ(H/τ)
    sm = Math<F>::sigmoid_autovec(mn);
    v = h - s * (vth + sm);
    m = mn;
}

template <typename F>
void clif_fwd_blocks(const ClifArgs<F>& A, int64_t b0, int64_t b1) {
    const int64_t N = A.N;
    const F kc = A.kc, tau = A.tau, vth = A.vth;
    F v[BLOCK], m[BLOCK];
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        load_state(A.m0, i0, n, m);
        for (int64_t t = 0; t < A.T; ++t) {
            prefetch_next<F, 1>({A.x}, t, N, b, b1, 0);
            prefetch_next<F, 3>({A.spikes, A.vseq, A.mseq}, t, N, b, b1, 1);
            const F* __restrict__ xt = A.x + t * N + i0;
            F* __restrict__ st = A.spikes + t * N + i0;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                F u, q, sm;
                clif_step(v[i], m[i], xt[i], kc, tau, vth, u, q, sm);
                st[i] = u >= F(0) ? F(1) : F(0);
            }
            if (A.vseq) std::memcpy(A.vseq + t * N + i0, v, n * sizeof(F));
            if (A.mseq) std::memcpy(A.mseq + t * N + i0, m, n * sizeof(F));
        }
        std::memcpy(A.vT + i0, v, n * sizeof(F));
        std::memcpy(A.mT + i0, m, n * sizeof(F));
    }
}

template <typename F>
void clif_bwd_blocks(const ClifArgs<F>& A, int64_t b0, int64_t b1) {
    const int64_t N = A.N, T = A.T;
    const F kc = A.kc, tau = A.tau, vth = A.vth;
    const int64_t S = scratch_stride(T);
    std::vector<F> scratch(4 * S);
    F* U = scratch.data();  // u = H - V_th
    F* Q = U + S;           // σ(H/τ)
    F* MP = Q + S;          // m_{t-1}
    F* SM = MP + S;         // σ(m_t)
    F v[BLOCK], m[BLOCK], gv[BLOCK], gm[BLOCK], sg[BLOCK];
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        load_state(A.m0, i0, n, m);
        for (int64_t t = 0; t < T; ++t) {
            prefetch_next<F, 4>({A.x, A.gs, A.gvseq, A.gmseq}, t, N, b, b1, 0);
            const F* __restrict__ xt = A.x + t * N + i0;
            F *__restrict__ u_ = U + t * BLOCK, *__restrict__ q_ = Q + t * BLOCK,
              *__restrict__ mp_ = MP + t * BLOCK, *__restrict__ sm_ = SM + t * BLOCK;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                mp_[i] = m[i];
                clif_step(v[i], m[i], xt[i], kc, tau, vth, u_[i], q_[i], sm_[i]);
            }
        }
        #pragma GCC ivdep
        for (int64_t i = 0; i < n; ++i) {
            gv[i] = A.gvT ? A.gvT[i0 + i] : F(0);
            gm[i] = A.gmT ? A.gmT[i0 + i] : F(0);
        }
        for (int64_t t = T - 1; t >= 0; --t) {
            prefetch_next<F, 1>({A.gx}, t, N, b, b1, 1);
            const int64_t off = t * N + i0;
            if (A.gvseq)
                #pragma GCC ivdep
                for (int64_t i = 0; i < n; ++i) gv[i] += A.gvseq[off + i];
            if (A.gmseq)
                #pragma GCC ivdep
                for (int64_t i = 0; i < n; ++i) gm[i] += A.gmseq[off + i];
            const F *__restrict__ u_ = U + t * BLOCK, *__restrict__ q_ = Q + t * BLOCK,
                    *__restrict__ mp_ = MP + t * BLOCK, *__restrict__ sm_ = SM + t * BLOCK;
            surrogate_grad<F>(A.kind, A.width, u_, sg, n);
            const F* __restrict__ gst = A.gs + off;
            F* __restrict__ gxt = A.gx + off;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                const F s = u_[i] >= F(0) ? F(1) : F(0);
                const F gV = gv[i], sm = sm_[i], q = q_[i];
                const F gmn = gm[i] - gV * s * (sm * (F(1) - sm));
                const F gS = gst[i] - gV * (vth + sm) + gmn;
                const F gh = gV + gS * sg[i] + (gmn * mp_[i]) * (q * (F(1) - q)) / tau;
                gm[i] = gmn * q;
                gv[i] = kc * gh;
                gxt[i] = gh;
            }
        }
        store_state(A.gv0, i0, n, gv);
        store_state(A.gm0, i0, n, gm);
    }
}

template <typename F, typename Args, typename Fn>
void run_blocks(const Args& A, int nthreads, Fn fn) {
    parallel_blocks((A.N + BLOCK - 1) / BLOCK, nthreads, fn);
}

}  // namespace

// ================================================================================================
// C entry points (ctypes). Suffix f32/f64 is the compute dtype; null pointers mean "absent".
// ================================================================================================
#define ARLIF_EXPORTS(F, SUF)                                                                               \
    extern "C" void arlif_fwd_##SUF(const F* x, const F* v0, const F* m0, int64_t T, int64_t N, double ta, \
                                    double c, double vth, double decay, int ta_on, int ar, int carry,      \
                                    F* spikes, F* vT, F* mT, F* vseq, F* mseq, int nthreads) {             \
        ArlifArgs<F> A{};                                                                                   \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N;                                                    \
        A.ta = F(ta); A.c = F(c); A.vth = F(vth); A.decay = F(decay);                                       \
        A.spikes = spikes; A.vT = vT; A.mT = mT; A.vseq = vseq; A.mseq = mseq;                              \
        arlif_run<F, true>(A, ta_on, ar, carry, nthreads);                                                  \
    }                                                                                                       \
    extern "C" void arlif_bwd_##SUF(const F* gs, const F* gvT, const F* gmT, const F* gvseq,               \
                                    const F* gmseq, const F* x, const F* v0, const F* m0, int64_t T,       \
                                    int64_t N, double ta, double c, double vth, double decay, int ta_on,   \
                                    int ar, int carry, int kind, double width, F* gx, F* gv0, F* gm0,      \
                                    double* part_a, double* part_c, int nthreads) {                        \
        ArlifArgs<F> A{};                                                                                   \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N;                                                    \
        A.ta = F(ta); A.c = F(c); A.vth = F(vth); A.decay = F(decay);                                       \
        A.gs = gs; A.gvT = gvT; A.gmT = gmT; A.gvseq = gvseq; A.gmseq = gmseq;                              \
        A.gx = gx; A.gv0 = gv0; A.gm0 = gm0; A.part_a = part_a; A.part_c = part_c;                          \
        A.kind = kind; A.width = F(width);                                                                  \
        arlif_run<F, false>(A, ta_on, ar, carry, nthreads);                                                 \
    }                                                                                                       \
    extern "C" void leaky_fwd_##SUF(const F* x, const F* v0, int64_t T, int64_t N, double k, double vth,   \
                                    int hard, F* spikes, F* vT, F* vseq, int nthreads) {                   \
        LeakyArgs<F> A{};                                                                                   \
        A.x = x; A.v0 = v0; A.T = T; A.N = N; A.k = F(k); A.vth = F(vth);                                   \
        A.spikes = spikes; A.vT = vT; A.vseq = vseq;                                                        \
        run_blocks<F>(A, nthreads, [&](int64_t b0, int64_t b1) {                                           \
            if (hard) leaky_fwd_blocks<F, true>(A, b0, b1);                                                 \
            else leaky_fwd_blocks<F, false>(A, b0, b1);                                                     \
        });                                                                                                 \
    }                                                                                                       \
    extern "C" void leaky_bwd_##SUF(const F* gs, const F* gvT, const F* gvseq, const F* x, const F* v0,    \
                                    int64_t T, int64_t N, double k, double vth, int hard, int kind,        \
                                    double width, F* gx, F* gv0, double* part_k, int nthreads) {           \
        LeakyArgs<F> A{};                                                                                   \
        A.x = x; A.v0 = v0; A.T = T; A.N = N; A.k = F(k); A.vth = F(vth);                                   \
        A.gs = gs; A.gvT = gvT; A.gvseq = gvseq; A.gx = gx; A.gv0 = gv0; A.part_k = part_k;                 \
        A.kind = kind; A.width = F(width);                                                                  \
        run_blocks<F>(A, nthreads, [&](int64_t b0, int64_t b1) {                                           \
            if (hard) leaky_bwd_blocks<F, true>(A, b0, b1);                                                 \
            else leaky_bwd_blocks<F, false>(A, b0, b1);                                                     \
        });                                                                                                 \
    }                                                                                                       \
    extern "C" void clif_fwd_##SUF(const F* x, const F* v0, const F* m0, int64_t T, int64_t N, double kc,  \
                                   double tau, double vth, F* spikes, F* vT, F* mT, F* vseq, F* mseq,      \
                                   int nthreads) {                                                         \
        ClifArgs<F> A{};                                                                                    \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N; A.kc = F(kc); A.tau = F(tau); A.vth = F(vth);      \
        A.spikes = spikes; A.vT = vT; A.mT = mT; A.vseq = vseq; A.mseq = mseq;                              \
        run_blocks<F>(A, nthreads, [&](int64_t b0, int64_t b1) { clif_fwd_blocks<F>(A, b0, b1); });        \
    }                                                                                                       \
    extern "C" void clif_bwd_##SUF(const F* gs, const F* gvT, const F* gmT, const F* gvseq,                \
                                   const F* gmseq, const F* x, const F* v0, const F* m0, int64_t T,        \
                                   int64_t N, double kc, double tau, double vth, int kind, double width,   \
                                   F* gx, F* gv0, F* gm0, int nthreads) {                                  \
        ClifArgs<F> A{};                                                                                    \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N; A.kc = F(kc); A.tau = F(tau); A.vth = F(vth);      \
        A.gs = gs; A.gvT = gvT; A.gmT = gmT; A.gvseq = gvseq; A.gmseq = gmseq;                              \
        A.gx = gx; A.gv0 = gv0; A.gm0 = gm0; A.kind = kind; A.width = F(width);                             \
        run_blocks<F>(A, nthreads, [&](int64_t b0, int64_t b1) { clif_bwd_blocks<F>(A, b0, b1); });        \
    }

ARLIF_EXPORTS(float, f32)
ARLIF_EXPORTS(double, f64)

extern "C" int arlif_kernels_abi_version() { return 1; }
