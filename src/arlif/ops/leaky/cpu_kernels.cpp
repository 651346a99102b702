// Fused multi-step LIF (soft/hard reset) and PLIF kernels (docs/neurons.md#lif, #plif): one pass over time
// forward, and a backward that recomputes the forward of a small block of neurons into a cache-resident
// scratch buffer, then runs BPTT over that block in reverse. LIF is bound by memory, not arithmetic: its loops
// are left to the auto-vectoriser; prefetching the next block, and streaming stores for outputs too large for
// the cache, are what matter. Shared layout, math, threading and stores: ../cpu_common.h.

#include "../cpu_common.h"

namespace {

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
    F v[BLOCK], sb[BLOCK];
    const bool around = stream_outputs(A.T * N * int64_t(sizeof(F)) * (A.vseq ? 3 : 2));
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * BLOCK, n = block_len(b, N);
        load_state(A.v0, i0, n, v);
        for (int64_t t = 0; t < A.T; ++t) {
            prefetch_next<F, 1>({A.x}, t, N, b, b1, 0);
            if (!around) prefetch_next<F, 2>({A.spikes, A.vseq}, t, N, b, b1, 1);
            const F* __restrict__ xt = A.x + t * N + i0;
            F* __restrict__ st = around ? sb : A.spikes + t * N + i0;
            #pragma GCC ivdep
            for (int64_t i = 0; i < n; ++i) {
                const F h = k * v[i] + xt[i];
                const F s = (h - vth) >= F(0) ? F(1) : F(0);
                v[i] = HARD ? h * (F(1) - s) : h - s * vth;
                st[i] = s;
            }
            if (around) stream_row(A.spikes + t * N + i0, sb, n);
            if (A.vseq) put_row(A.vseq + t * N + i0, v, n, around);
        }
        std::memcpy(A.vT + i0, v, n * sizeof(F));
    }
    end_streaming(around);
}

template <typename F, bool HARD>
void leaky_bwd_blocks(const LeakyArgs<F>& A, int64_t b0, int64_t b1) {
    const int64_t N = A.N, T = A.T;
    const F k = A.k, vth = A.vth;
    const int64_t S = scratch_stride(T);
    std::vector<F> scratch(2 * S);
    F* U = scratch.data();  // u = H - V_th
    F* VP = U + S;          // V_{t-1}
    F v[BLOCK], gv[BLOCK], sg[BLOCK], acc[BLOCK], gb[BLOCK];
    const bool around = stream_outputs(T * N * int64_t(sizeof(F)) * (A.gvseq ? 4 : 3));
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
        load_state(A.gvT, i0, n, gv);
        std::fill(acc, acc + n, F(0));
        for (int64_t t = T - 1; t >= 0; --t) {
            if (!around) prefetch_next<F, 1>({A.gx}, t, N, b, b1, 1);
            const int64_t off = t * N + i0;
            if (A.gvseq)
                #pragma GCC ivdep
                for (int64_t i = 0; i < n; ++i) gv[i] += A.gvseq[off + i];
            const F *__restrict__ u_ = U + t * BLOCK, *__restrict__ vp_ = VP + t * BLOCK;
            surrogate_grad<F>(A.kind, A.width, u_, sg, n);
            const F* __restrict__ gst = A.gs + off;
            const F* __restrict__ xt = A.x + off;
            F* __restrict__ gxt = around ? gb : A.gx + off;
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
            if (around) stream_row(A.gx + off, gb, n);
        }
        store_state(A.gv0, i0, n, gv);
        if (A.part_k) A.part_k[b] = block_sum(acc, n);
    }
    end_streaming(around);
}

}  // namespace

// ================================================================================================
// C entry points (ctypes; declared once in cpu.py). Suffix f32/f64 is the compute dtype; null pointers mean
// "absent".
// ================================================================================================
#define LEAKY_EXPORTS(F, SUF)                                                                              \
    extern "C" void leaky_fwd_##SUF(const F* x, const F* v0, int64_t T, int64_t N, double k, double vth,   \
                                    int hard, F* spikes, F* vT, F* vseq, int nthreads) {                   \
        LeakyArgs<F> A{};                                                                                  \
        A.x = x; A.v0 = v0; A.T = T; A.N = N; A.k = F(k); A.vth = F(vth);                                  \
        A.spikes = spikes; A.vT = vT; A.vseq = vseq;                                                       \
        run_blocks(A, nthreads, [&](int64_t b0, int64_t b1) {                                              \
            if (hard) leaky_fwd_blocks<F, true>(A, b0, b1);                                                \
            else leaky_fwd_blocks<F, false>(A, b0, b1);                                                    \
        });                                                                                                \
    }                                                                                                      \
    extern "C" void leaky_bwd_##SUF(const F* gs, const F* gvT, const F* gvseq, const F* x, const F* v0,    \
                                    int64_t T, int64_t N, double k, double vth, int hard, int kind,        \
                                    double width, F* gx, F* gv0, double* part_k, int nthreads) {           \
        LeakyArgs<F> A{};                                                                                  \
        A.x = x; A.v0 = v0; A.T = T; A.N = N; A.k = F(k); A.vth = F(vth);                                  \
        A.gs = gs; A.gvT = gvT; A.gvseq = gvseq; A.gx = gx; A.gv0 = gv0; A.part_k = part_k;                \
        A.kind = kind; A.width = F(width);                                                                 \
        run_blocks(A, nthreads, [&](int64_t b0, int64_t b1) {                                              \
            if (hard) leaky_bwd_blocks<F, true>(A, b0, b1);                                                \
            else leaky_bwd_blocks<F, false>(A, b0, b1);                                                    \
        });                                                                                                \
    }

ARLIF_FOR_COMPUTE_DTYPES(LEAKY_EXPORTS)
