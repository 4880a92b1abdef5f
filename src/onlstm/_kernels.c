/*
 * Fused element-wise ON-LSTM step (forward and backward), one call per time step.
 *
 * The matrix products stay in PyTorch; everything between them — the two cumax master
 * gates, the ordinary gates, the overlap, the cell update and tanh — runs here in one pass
 * over each row, instead of ~20 separate tensor ops per step. Compiled at first use by
 * onlstm/kernels.py and called through ctypes with raw pointers; rows are contiguous.
 *
 * Layout of a gate row (G = 4n + 2m): [a_i (m) | a_f (m) | o (n) | c^ (n) | i (n) | f (n)].
 * After the forward step the gate buffer holds [p_i | p_f | o | c^ | i | f]: the softmax
 * probabilities and the activated gate values, which is what the backward step reads.
 *
 * Equations: SPEC §1 (see onlstm/cell.py for the same maths in PyTorch).
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#define DEFINE_KERNELS(T, SUFFIX, EXP)                                                        \
                                                                                              \
/* arguments clamped so that EXP never overflows (the code is built with -ffast-math) */    \
static inline T sigm_##SUFFIX(T x) { x = x < (T)-80 ? (T)-80 : (x > (T)80 ? (T)80 : x); return (T)1 / ((T)1 + EXP(-x)); }                       \
static inline T tanh_##SUFFIX(T x) { x = x < (T)-40 ? (T)-40 : (x > (T)40 ? (T)40 : x); return (T)1 - (T)2 / (EXP((T)2 * x) + (T)1); }          \
                                                                                              \
/* softmax of a[0..m) into p, then cumulative sum into cum */                                 \
static void softmax_cumsum_##SUFFIX(const T *a, T *p, T *cum, int m) {                        \
    T mx = a[0];                                                                              \
    for (int k = 1; k < m; k++) mx = a[k] > mx ? a[k] : mx;                                    \
    T s = 0;                                                                                  \
    for (int k = 0; k < m; k++) { p[k] = EXP(a[k] - mx); s += p[k]; }                          \
    T inv = (T)1 / s, run = 0;                                                                \
    for (int k = 0; k < m; k++) { p[k] *= inv; run += p[k]; cum[k] = run; }                    \
}                                                                                             \
                                                                                              \
void onlstm_forward_step_##SUFFIX(                                                            \
    int b, int n, int m, int C, int symmetric,                                                \
    const T *xp, long xp_stride, /* x_proj rows, or NULL if pre already holds them */         \
    const T *pre,   /* (b, G) pre-activations (U h, or W x + U h + b when xp is NULL) */      \
    T *gates,       /* (b, G) out: p_i, p_f, o, c^, i, f */                                   \
    const T *c_prev, T *c, T *tanh_c, T *h, T *f_hat, T *i_hat, /* (b, n) */                 \
    T *mf, T *mi,   /* (b, m) master forget / input gates */                                  \
    T *work)        /* 3n scratch */                                                          \
{                                                                                             \
    const int G = 4 * n + 2 * m;                                                              \
    T *w_n = work, *fw_n = work + n, *iw_n = work + 2 * n;                                    \
    for (int r = 0; r < b; r++) {                                                             \
        const T *z = pre + (size_t)r * G;                                                     \
        const T *x = xp ? xp + (size_t)r * xp_stride : NULL;                                  \
        T *g = gates + (size_t)r * G;                                                         \
        T *mfr = mf + (size_t)r * m, *mir = mi + (size_t)r * m;                               \
        if (x) { for (int k = 0; k < 2 * m; k++) g[k] = z[k] + x[k]; }                        \
        else if (g != z) { for (int k = 0; k < 2 * m; k++) g[k] = z[k]; }                     \
        /* master input: p_i in g[0..m), master forget: p_f in g[m..2m) */                    \
        softmax_cumsum_##SUFFIX(g, g, mir, m);                                                \
        softmax_cumsum_##SUFFIX(g + m, g + m, mfr, m);                                        \
        for (int k = 0; k < m; k++)                                                           \
            mir[k] = symmetric ? (T)1 - (mir[k] - g[k]) : (T)1 - mir[k];                      \
        /* per-level overlap w = f~ i~, expanded over the C units of each level */            \
        for (int l = 0; l < m; l++) {                                                         \
            T w = mfr[l] * mir[l], fw = mfr[l] - w, iw = mir[l] - w;                           \
            for (int k = 0; k < C; k++) {                                                     \
                w_n[l * C + k] = w; fw_n[l * C + k] = fw; iw_n[l * C + k] = iw;                \
            }                                                                                 \
        }                                                                                     \
        const T *zo = z + 2 * m, *zc = zo + n, *zi = zc + n, *zf = zi + n;                    \
        const T *xo = x ? x + 2 * m : NULL;                                                   \
        T *go = g + 2 * m, *gc = go + n, *gi = gc + n, *gf = gi + n;                          \
        const T *cp = c_prev + (size_t)r * n;                                                 \
        T *cr = c + (size_t)r * n, *tr = tanh_c + (size_t)r * n, *hr = h + (size_t)r * n;     \
        T *fhr = f_hat + (size_t)r * n, *ihr = i_hat + (size_t)r * n;                         \
        _Pragma("omp simd")                                                                   \
        for (int u = 0; u < n; u++) {                                                         \
            T ao = zo[u], ac = zc[u], ai = zi[u], af = zf[u];                                 \
            if (xo) { ao += xo[u]; ac += xo[n + u]; ai += xo[2 * n + u]; af += xo[3 * n + u]; } \
            T o = sigm_##SUFFIX(ao), ch = tanh_##SUFFIX(ac);                                  \
            T ig = sigm_##SUFFIX(ai), fg = sigm_##SUFFIX(af);                                 \
            T fh = fg * w_n[u] + fw_n[u], ih = ig * w_n[u] + iw_n[u];                          \
            T cn = fh * cp[u] + ih * ch, tc = tanh_##SUFFIX(cn);                               \
            go[u] = o; gc[u] = ch; gi[u] = ig; gf[u] = fg;                                    \
            fhr[u] = fh; ihr[u] = ih; cr[u] = cn; tr[u] = tc; hr[u] = o * tc;                  \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
void onlstm_backward_step_##SUFFIX(                                                           \
    int b, int n, int m, int C, int symmetric,                                                \
    const T *gates, const T *mf, const T *mi, const T *f_hat, const T *i_hat,                 \
    const T *tanh_c, const T *c_prev,                                                         \
    const T *grad_h, /* (b, n) gradient of the output at this step */                         \
    const T *dh,     /* (b, n) gradient flowing back from step t+1 */                          \
    T *dc,           /* (b, n) in: dL/dc_t from t+1; out: dL/dc_{t-1} */                      \
    const T *grad_mf, const T *grad_mi, /* (b, m) */                                          \
    T *dg,           /* (b, G) out: gradient of the pre-activations */                        \
    T *work)         /* 4n + 2m scratch */                                                    \
{                                                                                             \
    const int G = 4 * n + 2 * m;                                                              \
    T *dfh_n = work, *dih_n = work + n, *dw_n = work + 2 * n, *w_n = work + 3 * n;             \
    for (int r = 0; r < b; r++) {                                                             \
        const T *g = gates + (size_t)r * G;                                                   \
        const T *mfr = mf + (size_t)r * m, *mir = mi + (size_t)r * m;                         \
        const T *go = g + 2 * m, *gc = go + n, *gi = gc + n, *gf = gi + n;                    \
        T *dgr = dg + (size_t)r * G;                                                          \
        T *d_o = dgr + 2 * m, *d_c = d_o + n, *d_i = d_c + n, *d_f = d_i + n;                 \
        const T *fhr = f_hat + (size_t)r * n, *ihr = i_hat + (size_t)r * n;                   \
        const T *tr = tanh_c + (size_t)r * n, *cp = c_prev + (size_t)r * n;                   \
        const T *ghr = grad_h + (size_t)r * n, *dhr = dh + (size_t)r * n;                     \
        T *dcr = dc + (size_t)r * n;                                                          \
        for (int l = 0; l < m; l++) {                                                         \
            T w = mfr[l] * mir[l];                                                            \
            for (int k = 0; k < C; k++) w_n[l * C + k] = w;                                   \
        }                                                                                     \
        _Pragma("omp simd")                                                                   \
        for (int u = 0; u < n; u++) {                                                         \
            T o = go[u], ch = gc[u], ig = gi[u], fg = gf[u], tc = tr[u];                      \
            T dht = ghr[u] + dhr[u];                                                          \
            d_o[u] = dht * tc * o * ((T)1 - o);                                               \
            T dct = dht * o * ((T)1 - tc * tc) + dcr[u];                                      \
            T dfh = dct * cp[u], dih = dct * ch;                                              \
            d_c[u] = dct * ihr[u] * ((T)1 - ch * ch);                                         \
            dcr[u] = dct * fhr[u];                                                            \
            d_f[u] = dfh * w_n[u] * fg * ((T)1 - fg);                                         \
            d_i[u] = dih * w_n[u] * ig * ((T)1 - ig);                                         \
            dfh_n[u] = dfh; dih_n[u] = dih;                                                   \
            dw_n[u] = dfh * (fg - (T)1) + dih * (ig - (T)1);                                  \
        }                                                                                     \
        /* per level: gradients of f~ and i~, then back through cumsum and softmax */         \
        T *dmf = work + 4 * n, *dmi = work + 4 * n + m;                                        \
        for (int l = 0; l < m; l++) {                                                         \
            T sf = 0, si = 0, sw = 0;                                                         \
            for (int k = 0; k < C; k++) {                                                     \
                sf += dfh_n[l * C + k]; si += dih_n[l * C + k]; sw += dw_n[l * C + k];         \
            }                                                                                 \
            dmf[l] = sf + sw * mir[l] + (grad_mf ? grad_mf[(size_t)r * m + l] : (T)0);         \
            dmi[l] = si + sw * mfr[l] + (grad_mi ? grad_mi[(size_t)r * m + l] : (T)0);         \
        }                                                                                     \
        const T *pi = g, *pf = g + m;                                                         \
        T *dai = dgr, *daf = dgr + m;                                                         \
        T run_f = 0, run_i = 0, dot_f = 0, dot_i = 0;                                         \
        for (int l = m - 1; l >= 0; l--) {                                                    \
            run_f += dmf[l];            /* f~ = cumsum(p_f): dp_f = revcumsum(d f~) */        \
            run_i += dmi[l];            /* i~ = 1 - cumsum(p_i) (+ p_i if symmetric) */        \
            daf[l] = run_f;                                                                   \
            dai[l] = -run_i + (symmetric ? dmi[l] : (T)0);                                    \
            dot_f += pf[l] * daf[l]; dot_i += pi[l] * dai[l];                                 \
        }                                                                                     \
        for (int l = 0; l < m; l++) {                                                         \
            daf[l] = pf[l] * (daf[l] - dot_f);                                                \
            dai[l] = pi[l] * (dai[l] - dot_i);                                                \
        }                                                                                     \
    }                                                                                         \
}

DEFINE_KERNELS(float, f32, expf)
DEFINE_KERNELS(double, f64, exp)
