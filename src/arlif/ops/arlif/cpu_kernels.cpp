// Fused multi-step AR-LIF kernels (docs/neurons.md#ar-lif): one pass over time forward, and a backward that
// recomputes the forward of a small block of neurons into a cache-resident scratch buffer, then runs BPTT over
// that block in reverse. Only x and the initial state are kept between forward and backward. Shared layout,
// math and threading: ../cpu_common.h.
//
// AR-LIF is bound by its arithmetic: three exponentials and two divisions per element and step, which the
// backward's recompute pays again. So the kernels compute the input-only terms σ(x), tanh(x), σ(c·x) of a
// whole block first (arlif_x_terms: independent iterations, explicit vectors where the target has them),
// then the state recurrence (varlif_step: explicit vectors too), and the BPTT uses fused multiply-adds.
// The measurements behind these choices are in benchmarks/RESULTS.md.

#include "../cpu_common.h"

namespace {

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

// The input-only terms of one AR-LIF step from one division: with e = exp(-x), A = (1+e)(1+e²),
// ec = exp(-c·x), B = 1 + ec and R = 1/(A·B): σ(x) = (1+e²)·B·R, tanh(x) = (1-e²)/(1+e²) =
// (1-e²)(1+e)·B·R, σ(c·x) = A·R. x and c·x are clamped to ±20 so that A·B < 6e34 stays finite; there σ
// and tanh are within 2.1e-9 of their limits (absolute). Without CARRY, B = 1 and g is not computed.
template <bool CARRY>
inline void x_terms(float x, float c, float& sig, float& th, float& g) {
    using M = Math<float>;
    const float xc = M::clamp_abs(x, 20.0f);
    const float e = M::exp_neg(xc), e2 = e * e;
    const float a1 = 1.0f + e, a2 = 1.0f + e2;
    const float A = a1 * a2;
    if (CARRY) {
        const float B = 1.0f + M::exp_neg(M::clamp_abs(c * x, 20.0f));
        const float R = 1.0f / (A * B);
        const float iA = B * R;
        sig = a2 * iA;
        th = ((1.0f - e2) * a1) * iA;
        g = A * R;
        // Beyond ±20 the clamp leaves σ(c·x) within 2e-9 of 0 or 1, but dL/dc multiplies σ'(c·x) by x, so
        // that error would grow with |x| (a wrong c gradient for large inputs): take the sigmoid itself there
        // (rare: inputs are mostly BatchNorm outputs). vx_terms does the same per vector.
        if (std::abs(c * x) > 20.0f) g = M::sigmoid(c * x);
    } else {
        const float iA = 1.0f / A;
        sig = a2 * iA;
        th = ((1.0f - e2) * a1) * iA;
    }
    // σ(x) below -20 likewise (an error of 2e-9 in every m_t reaches dL/dc multiplied by later inputs);
    // above +20 σ(x) and tanh(x) round to 1 in float32 anyway
    if (std::abs(x) > 20.0f) sig = M::sigmoid(x);
}

// float64: libm, for exact parity with the float64 reference
template <bool CARRY>
inline void x_terms(double x, double c, double& sig, double& th, double& g) {
    sig = 1.0 / (1.0 + std::exp(-x));
    th = std::tanh(x);
    if (CARRY) g = 1.0 / (1.0 + std::exp(-(c * x)));
}

// Inputs with |x| <= this bound need neither x_terms' clamps nor its far sigmoids: |x| <= 20 and, with CARRY,
// |c·x| < 20 (19.98 leaves room for the rounding of the product and of the bound; 20/0 = inf for c = 0).
// Most inputs are far inside it (BatchNorm outputs), so the vector code tests whole vectors against it.
inline float x_terms_near_limit(bool carry, float c) { return carry ? std::min(20.0f, 19.98f / std::abs(c)) : 20.0f; }

#ifdef ARLIF_HAVE_VECTORS
// σ(z) of the lanes where |z| > 20 (see x_terms), others from g; the test is one compare per
// vector, and the sigmoid runs only when a lane needs it
inline vf vfar_sigmoid(vf z, vf g) {
#if defined(__AVX512F__)
    const __mmask16 far = _mm512_cmp_ps_mask(vabs(z), vsplat(20.0f), _CMP_GT_OQ);
    return far ? _mm512_mask_blend_ps(far, g, vsigmoid(z)) : g;
#else
    const __m256 far = _mm256_cmp_ps(vabs(z), vsplat(20.0f), _CMP_GT_OQ);
    return _mm256_movemask_ps(far) ? _mm256_blendv_ps(g, vsigmoid(z), far) : g;
#endif
}

// x_terms on U·VW consecutive elements with explicit vectors, the U vectors' operations interleaved: the
// exp -> division chains are long, and with one vector per loop iteration (what the auto-vectoriser makes of
// the scalar code) the out-of-order core waits on latency; U independent chains side by side keep its units
// busy. Same operations in the same order as the scalar code, so the results are bit for bit the same.
// FAR=false is for inputs known to be within the clamps (x_terms_near_limit): it leaves out the clamps and
// the far-sigmoid tests, which change nothing there, 8 of the ~45 vector instructions per vector.
template <bool CARRY, int U, bool FAR>
inline void vx_terms(const float* x, float c, float* tx, float* sx, float* g) {
    vf xv[U], e[U], ec[U], arg[U], cx[U];
    ARLIF_LANES std::memcpy(&xv[u], x + u * VW, sizeof(vf));
    ARLIF_LANES arg[u] = FAR ? vclamp_abs(xv[u], 20.0f) : xv[u];
    vexp_neg<U>(arg, e);
    if (CARRY) {
        ARLIF_LANES cx[u] = c * xv[u];
        ARLIF_LANES arg[u] = FAR ? vclamp_abs(cx[u], 20.0f) : cx[u];
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
            const vf gu = FAR ? vfar_sigmoid(cx[u], A[u] * R[u]) : A[u] * R[u];
            std::memcpy(g + u * VW, &gu, sizeof(vf));
        }
    } else {
        ARLIF_LANES iA[u] = 1.0f / A[u];
    }
    ARLIF_LANES {
        const vf su = FAR ? vfar_sigmoid(xv[u], a2[u] * iA[u]) : a2[u] * iA[u];
        std::memcpy(sx + u * VW, &su, sizeof(vf));
    }
    ARLIF_LANES {
        const vf tu = ((1.0f - e2[u]) * a1[u]) * iA[u];
        std::memcpy(tx + u * VW, &tu, sizeof(vf));
    }
}

// One AR-LIF step of VW neurons in explicit vectors: the operations of the scalar step (arlif_step, below)
// in the same order (so the same results bit for bit), with the clamp of σ(m) as min/max and 2^n as scalef,
// which the auto-vectoriser does not find. `v`, `m` are updated; returns u = H - θ and the spikes, and σ(m_t)
// unless SPECULATE. V_t = H - S·(θ + σ(m_t)) is written V_t = S ? H - (θ + σ(m_t)) : H (the same value: 0·(θ + σ) = 0 for
// finite θ). SPECULATE (the forward): σ(m_t) only matters where the neuron fires, where m_t = m' + σ(x), so
// σ(m' + σ(x)) is computed before the spike is known, off the chain V_{t-1} -> S_t -> V_t that the
// steps wait on. The backward's recompute needs σ(m_t) for every neuron and computes it after S_t.
// CLAMP_M=false leaves out the clamp of σ's argument, for blocks whose memory stays small (memory_stays_small).
template <bool TA, bool AR, bool CARRY, bool SPECULATE, bool CLAMP_M>
inline void varlif_step(vf& v, vf& m, vf x, const float* tx, const float* sx, const float* g, float decay,
                        float vth, float ta, vf& u, vf& s, vf& sm) {
    vf mp = vsplat(0.0f), sxv = vsplat(0.0f), sp = vsplat(0.0f);
    if (AR) {
        if (CARRY) {
            const vf gv = vload(g);
            mp = m * (m > 0.0f ? gv : 1.0f - gv);
        }
        sxv = vload(sx);
        if (SPECULATE) sp = vsigmoid<CLAMP_M>(mp + sxv);
    }
    const vf h = decay * v + x;
    const vf theta = TA ? vth + ta * vload(tx) : vsplat(vth);
    u = h - theta;
    const auto spk = u >= 0.0f;
    s = spk ? vsplat(1.0f) : vsplat(0.0f);
    if (AR) {
        const vf mn = spk ? mp + sxv : mp - sxv;
        if (!SPECULATE) sp = sm = vsigmoid<CLAMP_M>(mn);
        v = spk ? h - (theta + sp) : h;
        m = mn;
    } else {
        v = spk ? h - theta : h;
    }
}

// One BPTT step of VW neurons at offset i in explicit vectors: the operations of the scalar loop in
// arlif_bwd_blocks in the same order, so the same results (NaNs aside, whose sign may differ). Written out
// because the auto-vectorised loop spent a third more instructions: it branched around masked loads and
// stores for the conditional x of the c-gradient, and negated before selecting. Here the negated selects are
// folded into fnmadd (fma(-a, b, c) is fnmadd(a, b, c), bit for bit) and x is loaded unconditionally.
template <bool TA, bool AR, bool CARRY>
inline void vbptt_step(int64_t i, const float* u_, const float* tx_, const float* sx_, const float* g_,
                       const float* mp_, const float* sm_, const float* sg, const float* gst, const float* xt,
                       float* gxt, float* gv, float* gm, float* acc_a, float* acc_c, float ta, float vth, float c,
                       float decay) {
    const auto spk = vload(u_ + i) >= 0.0f;
    const vf tx = vload(tx_ + i);
    const vf theta = TA ? vfmadd(vsplat(ta), tx, vsplat(vth)) : vsplat(vth);
    const vf gV = vload(gv + i);
    vf gS, gmn = vsplat(0.0f);
    if (AR) {
        const vf sm = vload(sm_ + i), gm0 = vload(gm + i);
        gmn = spk ? vfnmadd(gV, vfnmadd(sm, sm, sm), gm0) : gm0;
        gS = vfmadd(gmn + gmn, vload(sx_ + i), vfnmadd(gV, theta + sm, vload(gst + i)));
    } else {
        gS = vfnmadd(gV, theta, vload(gst + i));
    }
    const vf gu = gS * vload(sg + i);
    const vf gh = gV + gu;
    vf gx = gh;
    if (TA) {
        const vf gthn = spk ? gu + gV : gu;  // minus the scalar loop's gth
        gx = vfnmadd(gthn, vfnmadd(ta * tx, tx, vsplat(ta)), gx);
        vstore(acc_a + i, vfnmadd(gthn, tx, vload(acc_a + i)));
    }
    if (AR) {
        const vf sx = vload(sx_ + i);
        gx = vfmadd(spk ? gmn : -gmn, vfnmadd(sx, sx, sx), gx);
        if (CARRY) {
            const vf mp = vload(mp_ + i), g = vload(g_ + i);
            const auto pos = mp > 0.0f;
            const vf gk = gmn * mp;
            const vf dz = (pos ? gk : -gk) * vfnmadd(g, g, g);
            gx = vfmadd(dz, vsplat(c), gx);
            vstore(acc_c + i, vfmadd(dz, mp != 0.0f ? vload(xt + i) : vsplat(0.0f), vload(acc_c + i)));
            vstore(gm + i, gmn * (pos ? g : 1.0f - g));
        } else {
            vstore(gm + i, vsplat(0.0f));
        }
    }
    vstore(gv + i, decay * gh);
    vstore(gxt + i, gx);
}
#endif

// Whether the reset memory of a block starting from m0 (null: zeros) keeps |m_t| <= 80 for all T steps, so
// that σ(m_t) needs no clamp to ±87 (vsigmoid<false>): each step leaks |m| (by g or 1 - g, both in [0, 1]
// up to rounding) and adds at most σ(x) <= 1, so |m_t| <= max|m0| + t, up to a relative 2e-7 per step.
// False where m0 holds a NaN. Almost always true in training (rest states, T of 4 to 16).
template <typename F>
inline bool memory_stays_small(const F* m0, int64_t i0, int64_t n, int64_t T) {
    if (T > 80) return false;
    if (!m0) return true;
    const F lim = F(80 - T);
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= std::abs(m0[i0 + i]) <= lim;
    return ok;
}

// Calls body(std::true_type) or body(std::false_type): a run-time switch made a compile-time one
template <typename Body>
inline void with_switch(bool on, Body body) {
    if (on) body(std::true_type{});
    else body(std::false_type{});
}

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

// The input-only terms σ(x), tanh(x), σ(c·x) of steps [0, T) of one block into TX, SX, G ([T, BLOCK]).
// A loop of its own: its iterations are independent, so the out-of-order core overlaps the long
// exp -> division chains of several of them; fused into the state update, one iteration would be ~110 vector
// instructions, more than the core's window, and the core would wait on latency.
template <typename F, bool TA, bool AR, bool CARRY>
void arlif_x_terms(const F* x, int64_t T, int64_t N, int64_t n, F c, F* TX, F* SX, F* G) {
    for (int64_t t = 0; t < T; ++t) {
        const F* __restrict__ xt = x + t * N;
        F *__restrict__ tx_ = TX + t * BLOCK, *__restrict__ sx_ = SX + t * BLOCK, *__restrict__ g_ = G + t * BLOCK;
        int64_t i = 0;
#ifdef ARLIF_HAVE_VECTORS
        if constexpr (std::is_same<F, float>::value) {
            // vx_terms keeps about 7 vectors per lane group live, plus its constants: 4 groups fit in AVX-512's
            // 32 registers, 2 in AVX2's 16 (with 4 there, a quarter of its instructions were spills and reloads,
            // and it ran 8-10% slower: benchmarks/RESULTS.md)
            constexpr int U = VREGS / 8;
            const float lim = x_terms_near_limit(AR && CARRY, c);
            for (; i + U * VW <= n; i += U * VW) {
                if (vall_within<U>(xt + i, lim)) vx_terms<AR && CARRY, U, false>(xt + i, c, tx_ + i, sx_ + i, g_ + i);
                else vx_terms<AR && CARRY, U, true>(xt + i, c, tx_ + i, sx_ + i, g_ + i);
            }
            for (; i + VW <= n; i += VW) vx_terms<AR && CARRY, 1, true>(xt + i, c, tx_ + i, sx_ + i, g_ + i);
        }
#endif
        #pragma GCC ivdep
        for (; i < n; ++i) {
            F sx = F(0), tx = F(0), g = F(0);
            x_terms<AR && CARRY>(xt[i], c, sx, tx, g);
            tx_[i] = tx;
            if (AR) sx_[i] = sx;
            if (AR && CARRY) g_[i] = g;
        }
    }
}

// The forward computes the input terms of a block FWD_CHUNK steps at a time, then runs those steps: 3 scratch
// rows of BLOCK floats per step, 24 KiB for 16 steps, stay in any L1 cache, where the terms of all T steps at
// once left L1 from T = 32 on (the forward took 1.5x longer per element at T = 64 and 3x at T = 1024). The
// backward keeps its whole-block scratch: it runs through the steps in reverse, which needs them all.
constexpr int64_t FWD_CHUNK = 16;

template <typename F, bool TA, bool AR, bool CARRY>
void arlif_fwd_blocks(const ArlifArgs<F>& A, int64_t b0, int64_t b1) {
    // scalars in locals: the compiler cannot prove that stores through the output pointers leave A alone
    const int64_t N = A.N, T = A.T;
    const F ta = A.ta, c = A.c, vth = A.vth, decay = A.decay;
    // the input terms of at most FWD_CHUNK steps at a time (see below)
    const int64_t TC = std::min<int64_t>(T, FWD_CHUNK);
    const int64_t S = scratch_stride(TC);
    std::vector<F> scratch((TA || AR) ? 3 * S : 0);
    F* TX = scratch.data();  // tanh(x)
    F* SX = TX + S;          // σ(x)
    F* G = SX + S;           // σ(c·x)
    F v[BLOCK], m[BLOCK], sb[BLOCK];
    const bool around = stream_outputs(T * N * int64_t(sizeof(F)) * (2 + !!A.vseq + (AR && A.mseq)));
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        load_state(A.m0, i0, n, m);
        with_switch(!AR || !memory_stays_small(A.m0, i0, n, T), [&]([[maybe_unused]] auto clamp_m) {
          for (int64_t c0 = 0; c0 < T; c0 += TC) {
            const int64_t c1 = std::min(T, c0 + TC);
            if (TA || AR) arlif_x_terms<F, TA, AR, CARRY>(A.x + c0 * N + i0, c1 - c0, N, n, c, TX, SX, G);
            for (int64_t t = c0; t < c1; ++t) {
                prefetch_next<F, 1>({A.x}, t, N, b, b1, 0);
                if (!around) prefetch_next<F, 3>({A.spikes, A.vseq, A.mseq}, t, N, b, b1, 1);
                const F* __restrict__ xt = A.x + t * N + i0;
                const F *__restrict__ tx_ = TX + (t - c0) * BLOCK, *__restrict__ sx_ = SX + (t - c0) * BLOCK,
                        *__restrict__ g_ = G + (t - c0) * BLOCK;
                F* __restrict__ st = around ? sb : A.spikes + t * N + i0;
                int64_t i = 0;
#ifdef ARLIF_HAVE_VECTORS
                if constexpr (std::is_same<F, float>::value) {
                    for (; i + VW <= n; i += VW) {
                        vf vv = vload(v + i), mv = vload(m + i), u, s, sm;
                        varlif_step<TA, AR, CARRY, true, decltype(clamp_m)::value>(
                            vv, mv, vload(xt + i), tx_ + i, sx_ + i, g_ + i, decay, vth, ta, u, s, sm);
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
                    arlif_step<F, TA, AR, CARRY>(v[i], m[i], xt[i], tx_ + i, sx_ + i, g_ + i, decay, vth, ta, u, spk,
                                                 sm);
                    st[i] = spk ? F(1) : F(0);
                }
                if (around) stream_row(A.spikes + t * N + i0, sb, n);
                if (A.vseq) put_row(A.vseq + t * N + i0, v, n, around);
                if (AR && A.mseq) put_row(A.mseq + t * N + i0, m, n, around);
            }
          }
        });
        std::memcpy(A.vT + i0, v, n * sizeof(F));
        if (AR) store_state(A.mT, i0, n, m);
    }
    end_streaming(around);
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
    F v[BLOCK], m[BLOCK], gv[BLOCK], gm[BLOCK], sg[BLOCK], acc_a[BLOCK], acc_c[BLOCK], gb[BLOCK];
    const bool around = stream_outputs(T * N * int64_t(sizeof(F)) * (3 + !!A.gvseq + (AR && A.gmseq)));
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        load_state(A.m0, i0, n, m);
        // 1. forward again, keeping what the reverse pass needs
        if (TA || AR) arlif_x_terms<F, TA, AR, CARRY>(A.x + i0, T, N, n, c, TX, SX, G);
        with_switch(!AR || !memory_stays_small(A.m0, i0, n, T), [&]([[maybe_unused]] auto clamp_m) {
            for (int64_t t = 0; t < T; ++t) {
                prefetch_next<F, 4>({A.x, A.gs, A.gvseq, A.gmseq}, t, N, b, b1, 0);
                const F* __restrict__ xt = A.x + t * N + i0;
                const F *__restrict__ tx_ = TX + t * BLOCK, *__restrict__ sx_ = SX + t * BLOCK,
                        *__restrict__ g_ = G + t * BLOCK;
                F *__restrict__ u_ = U + t * BLOCK, *__restrict__ mp_ = MP + t * BLOCK,
                  *__restrict__ sm_ = SM + t * BLOCK;
                int64_t i = 0;
#ifdef ARLIF_HAVE_VECTORS
                if constexpr (std::is_same<F, float>::value) {
                    for (; i + VW <= n; i += VW) {
                        vf vv = vload(v + i), mv = vload(m + i), u, s, sm;
                        if (AR && CARRY) vstore(mp_ + i, mv);
                        varlif_step<TA, AR, CARRY, false, decltype(clamp_m)::value>(
                            vv, mv, vload(xt + i), tx_ + i, sx_ + i, g_ + i, decay, vth, ta, u, s, sm);
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
                    arlif_step<F, TA, AR, CARRY>(v[i], m[i], xt[i], tx_ + i, sx_ + i, g_ + i, decay, vth, ta, u, spk,
                                                 sm);
                    u_[i] = u;
                    if (AR) sm_[i] = sm;
                }
            }
        });
        // 2. BPTT over the block, last step first
        load_state(A.gvT, i0, n, gv);
        load_state(AR ? A.gmT : nullptr, i0, n, gm);
        std::fill(acc_a, acc_a + n, F(0));
        std::fill(acc_c, acc_c + n, F(0));
        for (int64_t t = T - 1; t >= 0; --t) {
            if (!around) prefetch_next<F, 1>({A.gx}, t, N, b, b1, 1);
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
            F* __restrict__ gxt = around ? gb : A.gx + off;
            int64_t i0v = 0;
#ifdef ARLIF_HAVE_VECTORS
            if constexpr (std::is_same<F, float>::value) {
                for (; i0v + VW <= n; i0v += VW)
                    vbptt_step<TA, AR, CARRY>(i0v, u_, tx_, sx_, g_, mp_, sm_, sg, gst, xt, gxt, gv, gm, acc_a, acc_c,
                                              ta, vth, c, decay);
            }
#endif
            #pragma GCC ivdep
            for (int64_t i = i0v; i < n; ++i) {
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
            if (around) stream_row(A.gx + off, gb, n);
        }
        store_state(A.gv0, i0, n, gv);
        store_state(A.gm0, i0, n, gm);
        if (A.part_a) A.part_a[b] = block_sum(acc_a, n);
        if (A.part_c) A.part_c[b] = block_sum(acc_c, n);
    }
    end_streaming(around);
}

template <typename F, bool FWD>
void arlif_run(const ArlifArgs<F>& A, int ta_on, int ar, int carry, int nthreads) {
#define ARLIF_CASE(TA_, AR_, CA_)                                                                          \
    if (!!ta_on == TA_ && !!ar == AR_ && !!carry == CA_) {                                                 \
        run_blocks(A, nthreads, [&](int64_t b0, int64_t b1) {                                              \
            if (FWD) arlif_fwd_blocks<F, TA_, AR_, CA_>(A, b0, b1);                                        \
            else arlif_bwd_blocks<F, TA_, AR_, CA_>(A, b0, b1);                                            \
        });                                                                                                \
        return;                                                                                            \
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

}  // namespace

// ================================================================================================
// C entry points (ctypes; declared once in cpu.py). Suffix f32/f64 is the compute dtype; null pointers mean
// "absent".
// ================================================================================================
#define ARLIF_EXPORTS(F, SUF)                                                                              \
    extern "C" void arlif_fwd_##SUF(const F* x, const F* v0, const F* m0, int64_t T, int64_t N, double ta, \
                                    double c, double vth, double decay, int ta_on, int ar, int carry,      \
                                    F* spikes, F* vT, F* mT, F* vseq, F* mseq, int nthreads) {             \
        ArlifArgs<F> A{};                                                                                  \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N;                                                   \
        A.ta = F(ta); A.c = F(c); A.vth = F(vth); A.decay = F(decay);                                      \
        A.spikes = spikes; A.vT = vT; A.mT = mT; A.vseq = vseq; A.mseq = mseq;                             \
        arlif_run<F, true>(A, ta_on, ar, carry, nthreads);                                                 \
    }                                                                                                      \
    extern "C" void arlif_bwd_##SUF(const F* gs, const F* gvT, const F* gmT, const F* gvseq,               \
                                    const F* gmseq, const F* x, const F* v0, const F* m0, int64_t T,       \
                                    int64_t N, double ta, double c, double vth, double decay, int ta_on,   \
                                    int ar, int carry, int kind, double width, F* gx, F* gv0, F* gm0,      \
                                    double* part_a, double* part_c, int nthreads) {                        \
        ArlifArgs<F> A{};                                                                                  \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N;                                                   \
        A.ta = F(ta); A.c = F(c); A.vth = F(vth); A.decay = F(decay);                                      \
        A.gs = gs; A.gvT = gvT; A.gmT = gmT; A.gvseq = gvseq; A.gmseq = gmseq;                             \
        A.gx = gx; A.gv0 = gv0; A.gm0 = gm0; A.part_a = part_a; A.part_c = part_c;                         \
        A.kind = kind; A.width = F(width);                                                                 \
        arlif_run<F, false>(A, ta_on, ar, carry, nthreads);                                                \
    }

ARLIF_FOR_COMPUTE_DTYPES(ARLIF_EXPORTS)
