// Fused multi-step CLIF kernels (docs/neurons.md#clif): one pass over time forward, and a backward that
// recomputes the forward of a small block of neurons into a cache-resident scratch buffer, then runs BPTT over
// that block in reverse. Shared layout, math and threading: ../cpu_common.h.

#include "../cpu_common.h"

namespace {

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
    F v[BLOCK], m[BLOCK], sb[BLOCK];
    const bool around = stream_outputs(A.T * N * int64_t(sizeof(F)) * (2 + !!A.vseq + !!A.mseq));
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        load_state(A.m0, i0, n, m);
        for (int64_t t = 0; t < A.T; ++t) {
            prefetch_next<F, 1>({A.x}, t, N, b, b1, 0);
            if (!around) prefetch_next<F, 3>({A.spikes, A.vseq, A.mseq}, t, N, b, b1, 1);
            const F* __restrict__ xt = A.x + t * N + i0;
            F* __restrict__ st = around ? sb : A.spikes + t * N + i0;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                F u, q, sm;
                clif_step(v[i], m[i], xt[i], kc, tau, vth, u, q, sm);
                st[i] = u >= F(0) ? F(1) : F(0);
            }
            if (around) stream_row(A.spikes + t * N + i0, sb, n);
            if (A.vseq) put_row(A.vseq + t * N + i0, v, n, around);
            if (A.mseq) put_row(A.mseq + t * N + i0, m, n, around);
        }
        std::memcpy(A.vT + i0, v, n * sizeof(F));
        std::memcpy(A.mT + i0, m, n * sizeof(F));
    }
    end_streaming(around);
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
    F v[BLOCK], m[BLOCK], gv[BLOCK], gm[BLOCK], sg[BLOCK], gb[BLOCK];
    const bool around = stream_outputs(T * N * int64_t(sizeof(F)) * (3 + !!A.gvseq + !!A.gmseq));
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
        load_state(A.gvT, i0, n, gv);
        load_state(A.gmT, i0, n, gm);
        for (int64_t t = T - 1; t >= 0; --t) {
            if (!around) prefetch_next<F, 1>({A.gx}, t, N, b, b1, 1);
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
            F* __restrict__ gxt = around ? gb : A.gx + off;
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
            if (around) stream_row(A.gx + off, gb, n);
        }
        store_state(A.gv0, i0, n, gv);
        store_state(A.gm0, i0, n, gm);
    }
    end_streaming(around);
}

}  // namespace

// ================================================================================================
// C entry points (ctypes; declared once in cpu.py). Suffix f32/f64 is the compute dtype; null pointers mean
// "absent".
// ================================================================================================
#define CLIF_EXPORTS(F, SUF)                                                                               \
    extern "C" void clif_fwd_##SUF(const F* x, const F* v0, const F* m0, int64_t T, int64_t N, double kc,  \
                                   double tau, double vth, F* spikes, F* vT, F* mT, F* vseq, F* mseq,      \
                                   int nthreads) {                                                         \
        ClifArgs<F> A{};                                                                                   \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N; A.kc = F(kc); A.tau = F(tau); A.vth = F(vth);     \
        A.spikes = spikes; A.vT = vT; A.mT = mT; A.vseq = vseq; A.mseq = mseq;                             \
        run_blocks(A, nthreads, [&](int64_t b0, int64_t b1) { clif_fwd_blocks<F>(A, b0, b1); });           \
    }                                                                                                      \
    extern "C" void clif_bwd_##SUF(const F* gs, const F* gvT, const F* gmT, const F* gvseq,                \
                                   const F* gmseq, const F* x, const F* v0, const F* m0, int64_t T,        \
                                   int64_t N, double kc, double tau, double vth, int kind, double width,   \
                                   F* gx, F* gv0, F* gm0, int nthreads) {                                  \
        ClifArgs<F> A{};                                                                                   \
        A.x = x; A.v0 = v0; A.m0 = m0; A.T = T; A.N = N; A.kc = F(kc); A.tau = F(tau); A.vth = F(vth);     \
        A.gs = gs; A.gvT = gvT; A.gmT = gmT; A.gvseq = gvseq; A.gmseq = gmseq;                             \
        A.gx = gx; A.gv0 = gv0; A.gm0 = gm0; A.kind = kind; A.width = F(width);                            \
        run_blocks(A, nthreads, [&](int64_t b0, int64_t b1) { clif_bwd_blocks<F>(A, b0, b1); });           \
    }

ARLIF_FOR_COMPUTE_DTYPES(CLIF_EXPORTS)
