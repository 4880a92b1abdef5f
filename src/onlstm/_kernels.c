/*
 * Fused element-wise ON-LSTM step (forward and backward), one call per time step.
 *
 * The matrix products stay in PyTorch; everything between them — the two cumax master
 * gates, the ordinary gates, the overlap, the cell update and tanh — runs here in one pass
 * over each row, instead of ~20 separate tensor ops per step.
 *
 * Interface: each entry point takes ONE pointer to a named structure (onlstm_forward_args,
 * onlstm_backward_args) that describes whole-sequence buffers, all contiguous (T, B, width)
 * arrays of the same float type, and the step t with its b active rows. onlstm/kernels.py
 * is the only caller: it mirrors these structures field by field with ctypes, compares
 * their layout with onlstm_*_args_layout() after loading, and checks every tensor (dtype,
 * device, shape, contiguity) before it fills them in. The entry points return 0, or -1
 * when the sizes in the structure are inconsistent (nothing is written then).
 *
 * Layout of a gate row (G = 4n + 2m): [a_i (m) | a_f (m) | o (n) | c^ (n) | i (n) | f (n)].
 * After the forward step the gate buffer holds [p_i | p_f | o | c^ | i | f]: the softmax
 * probabilities and the activated gate values, which is what the backward step reads.
 *
 * Equations: docs/spec.md §1 (onlstm/cell.py has the same maths in PyTorch).
 *
 * Built without finite-math assumptions, so NaN and infinity propagate as through the
 * PyTorch ops; on x86-64 glibc the exp calls are still vectorised through libmvec.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Rows are independent, so a step splits its rows over threads (OpenMP, the runtime PyTorch
   has already loaded: same soname, same thread pool) when built with -fopenmp and the step is
   big enough; each row is computed exactly as in one thread, so results do not depend on the
   thread count. Each thread has its own slice of the scratch buffer. */
#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() ((int64_t)omp_get_thread_num())
#else
#define THREAD_ID() ((int64_t)0)
#endif
#define PARALLEL_MIN_UNITS 4096  /* b * n below this: one thread (the fork costs more) */

#ifndef ONLSTM_BUILD_KEY
#error "compile with -DONLSTM_BUILD_KEY=\"...\" (onlstm/kernels.py does)"
#endif

/* glibc declares the libmvec vector variants of exp/expf only under -ffast-math's
   finite-math assumptions; declare them here so the loops stay vectorised without them. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__) && !defined(__clang__) && !defined(__FAST_MATH__)
__attribute__((__simd__("notinbranch"))) extern float expf(float);
__attribute__((__simd__("notinbranch"))) extern double exp(double);
#endif

/* The string the cached library is checked against after loading. */
const char *onlstm_build_key(void) { return "onlstm-build-key:" ONLSTM_BUILD_KEY; }

typedef struct {
    int64_t T, B;           /* steps and rows of the sequence buffers */
    int64_t n, m, C;        /* hidden units, levels, units per level (n = m * C) */
    int64_t symmetric;      /* 1: i~ = revcumsum(softmax(a_i)); 0: i~ = 1 - cumax(a_i) */
    int64_t t, b;           /* this step and its active rows (b <= B) */
    int64_t threads;        /* at most this many threads; work holds threads slices */
    const void *x_proj;     /* (T, B, G) W x + b; added to pre when pre is not NULL */
    const void *pre;        /* (b, G) U h_{t-1}, or NULL when gates[t] already holds z_t */
    const void *c0;         /* (B, n) initial cell state */
    void *gates;            /* (T, B, G) in/out, see above */
    void *c, *tanh_c, *h, *f_hat, *i_hat;  /* (T, B, n) out */
    void *mf, *mi;          /* (T, B, m) out: master forget / input gates */
    void *work;             /* (threads, 3n) scratch, one slice per thread */
} onlstm_forward_args;

typedef struct {
    int64_t T, B, n, m, C, symmetric, t, b, threads;  /* as in onlstm_forward_args */
    const void *gates;      /* (T, B, G) p_i, p_f, o, c^, i, f from the forward step */
    const void *mf, *mi;    /* (T, B, m) */
    const void *f_hat, *i_hat, *tanh_c, *c;  /* (T, B, n) */
    const void *c0;         /* (B, n) */
    const void *grad_h;     /* (T, B, n) gradient of the outputs */
    const void *grad_mf, *grad_mi;  /* (T, B, m) gradients of the master gates */
    const void *dh;         /* (B, n) gradient flowing back from step t+1 into h_t */
    void *dc;               /* (B, n) in: dL/dc_t from t+1; out: dL/dc_{t-1} */
    void *grad_gates;       /* (T, B, G) out at step t: gradient of the pre-activations */
    void *work;             /* (threads, 4n + 2m) scratch, one slice per thread */
} onlstm_backward_args;

/* DropConnect: dst = keep ? src * scale : 0, element-wise over numel entries (the masked
   weight in the forward, the same map of its gradient in the backward). */
typedef struct {
    int64_t numel;          /* entries of src, keep and dst */
    double scale;           /* 1 ("published") or 1/(1-p) ("rescaled"), cast to the float type */
    const void *src;        /* (numel) weight or gradient */
    const void *keep;       /* (numel) bool bytes: 1 kept, 0 dropped */
    void *dst;              /* (numel) out; may be src itself */
} onlstm_mask_args;

#define FIELD_OFFSETS_FORWARD(S)                                                                \
    sizeof(S), offsetof(S, T), offsetof(S, B), offsetof(S, n), offsetof(S, m), offsetof(S, C),  \
    offsetof(S, symmetric), offsetof(S, t), offsetof(S, b), offsetof(S, threads), offsetof(S, x_proj), \
    offsetof(S, pre), offsetof(S, c0), offsetof(S, gates), offsetof(S, c), offsetof(S, tanh_c), \
    offsetof(S, h), offsetof(S, f_hat), offsetof(S, i_hat), offsetof(S, mf), offsetof(S, mi),   \
    offsetof(S, work)

#define FIELD_OFFSETS_BACKWARD(S)                                                               \
    sizeof(S), offsetof(S, T), offsetof(S, B), offsetof(S, n), offsetof(S, m), offsetof(S, C),  \
    offsetof(S, symmetric), offsetof(S, t), offsetof(S, b), offsetof(S, threads), offsetof(S, gates), \
    offsetof(S, mf),                                                                            \
    offsetof(S, mi), offsetof(S, f_hat), offsetof(S, i_hat), offsetof(S, tanh_c),               \
    offsetof(S, c), offsetof(S, c0), offsetof(S, grad_h), offsetof(S, grad_mf),                 \
    offsetof(S, grad_mi), offsetof(S, dh), offsetof(S, dc), offsetof(S, grad_gates),            \
    offsetof(S, work)

#define FIELD_OFFSETS_MASK(S) \
    sizeof(S), offsetof(S, numel), offsetof(S, scale), offsetof(S, src), offsetof(S, keep), offsetof(S, dst)

/* sizeof, then the offset of every field in declaration order (compared by kernels.py) */
static const int64_t forward_layout[] = {FIELD_OFFSETS_FORWARD(onlstm_forward_args)};
static const int64_t backward_layout[] = {FIELD_OFFSETS_BACKWARD(onlstm_backward_args)};
static const int64_t mask_layout[] = {FIELD_OFFSETS_MASK(onlstm_mask_args)};
const int64_t *onlstm_forward_args_layout(void) { return forward_layout; }
const int64_t *onlstm_backward_args_layout(void) { return backward_layout; }
const int64_t *onlstm_mask_args_layout(void) { return mask_layout; }
int64_t onlstm_forward_args_fields(void) { return sizeof(forward_layout) / sizeof(int64_t) - 1; }
int64_t onlstm_backward_args_fields(void) { return sizeof(backward_layout) / sizeof(int64_t) - 1; }
int64_t onlstm_mask_args_fields(void) { return sizeof(mask_layout) / sizeof(int64_t) - 1; }

/* sizes that every step relies on: n = m C, 0 <= t < T, 0 < b <= B, threads >= 1 */
static int sizes_ok(int64_t T, int64_t B, int64_t n, int64_t m, int64_t C, int64_t t, int64_t b, int64_t threads) {
    return m > 0 && C > 0 && n == m * C && t >= 0 && t < T && b > 0 && b <= B && threads >= 1;
}

/* Sizes of step a->t, offsets of that step in the (T, B, width) buffers, and c_{t-1}
   (a->c at t-1, or a->c0); returns -1 from the step function when the sizes do not fit. */
#define STEP_PROLOGUE(T_, a)                                                                   \
    const int64_t n = (a)->n, m = (a)->m, C = (a)->C, B = (a)->B, t = (a)->t, b = (a)->b;       \
    if (!sizes_ok((a)->T, B, n, m, C, t, b, (a)->threads)) return -1;                          \
    const int nt = (int)((a)->threads < b ? (a)->threads : b);                                  \
    const int64_t G = 4 * n + 2 * m;                                                           \
    const size_t step_g = (size_t)t * B * G, step_n = (size_t)t * B * n, step_m = (size_t)t * B * m; \
    const T_ *c_prev = t > 0 ? (const T_ *)(a)->c + step_n - (size_t)B * n : (const T_ *)(a)->c0

#define DEFINE_KERNELS(T_, SUFFIX, EXP)                                                       \
                                                                                              \
/* IEEE semantics: exp overflows to inf: sigm(-inf) = 0, tanh(+-inf) = +-1, NaN -> NaN */   \
static inline T_ sigm_##SUFFIX(T_ x) { return (T_)1 / ((T_)1 + EXP(-x)); }                   \
static inline T_ tanh_##SUFFIX(T_ x) { return (T_)1 - (T_)2 / (EXP((T_)2 * x) + (T_)1); }    \
                                                                                              \
/* softmax of a[0..m) into p, then cumulative sum into cum */                                 \
static void softmax_cumsum_##SUFFIX(const T_ *a, T_ *p, T_ *cum, int64_t m) {                 \
    T_ mx = a[0];                                                                             \
    for (int64_t k = 1; k < m; k++) mx = a[k] > mx ? a[k] : mx;                                \
    T_ s = 0;                                                                                 \
    _Pragma("omp simd")                                                                       \
    for (int64_t k = 0; k < m; k++) p[k] = EXP(a[k] - mx);  /* vectorised: no reduction here */ \
    for (int64_t k = 0; k < m; k++) s += p[k];              /* in order, as before */          \
    T_ inv = (T_)1 / s, run = 0;                                                              \
    for (int64_t k = 0; k < m; k++) { p[k] *= inv; run += p[k]; cum[k] = run; }                \
}                                                                                             \
                                                                                              \
int onlstm_forward_step_##SUFFIX(const onlstm_forward_args *a)                                \
{                                                                                             \
    STEP_PROLOGUE(T_, a);                                                                     \
    const T_ *xp_t = a->pre ? (const T_ *)a->x_proj + step_g : NULL;                          \
    T_ *gates_t = (T_ *)a->gates + step_g;                                                    \
    const T_ *pre = a->pre ? (const T_ *)a->pre : gates_t;                                    \
    T_ *c = (T_ *)a->c + step_n, *tanh_c = (T_ *)a->tanh_c + step_n, *h = (T_ *)a->h + step_n; \
    T_ *f_hat = (T_ *)a->f_hat + step_n, *i_hat = (T_ *)a->i_hat + step_n;                    \
    T_ *mf = (T_ *)a->mf + step_m, *mi = (T_ *)a->mi + step_m;                                \
    _Pragma("omp parallel for schedule(static) num_threads(nt) if(nt > 1 && b * n >= PARALLEL_MIN_UNITS)") \
    for (int64_t r = 0; r < b; r++) {                                                         \
        T_ *w_n = (T_ *)a->work + (size_t)THREAD_ID() * 3 * n, *fw_n = w_n + n, *iw_n = w_n + 2 * n; \
        const T_ *z = pre + (size_t)r * G;                                                    \
        const T_ *x = xp_t ? xp_t + (size_t)r * G : NULL;                                     \
        T_ *g = gates_t + (size_t)r * G;                                                      \
        T_ *mfr = mf + (size_t)r * m, *mir = mi + (size_t)r * m;                              \
        if (x) { for (int64_t k = 0; k < 2 * m; k++) g[k] = z[k] + x[k]; }                    \
        /* master input: p_i in g[0..m), master forget: p_f in g[m..2m) */                    \
        softmax_cumsum_##SUFFIX(g, g, mir, m);                                                \
        softmax_cumsum_##SUFFIX(g + m, g + m, mfr, m);                                        \
        for (int64_t k = 0; k < m; k++)                                                       \
            mir[k] = a->symmetric ? (T_)1 - (mir[k] - g[k]) : (T_)1 - mir[k];                 \
        /* per-level overlap w = f~ i~, expanded over the C units of each level */            \
        for (int64_t l = 0; l < m; l++) {                                                     \
            T_ w = mfr[l] * mir[l], fw = mfr[l] - w, iw = mir[l] - w;                          \
            for (int64_t k = 0; k < C; k++) {                                                 \
                w_n[l * C + k] = w; fw_n[l * C + k] = fw; iw_n[l * C + k] = iw;                \
            }                                                                                 \
        }                                                                                     \
        const T_ *zo = z + 2 * m, *zc = zo + n, *zi = zc + n, *zf = zi + n;                   \
        const T_ *xo = x ? x + 2 * m : NULL;                                                  \
        T_ *go = g + 2 * m, *gc = go + n, *gi = gc + n, *gf = gi + n;                         \
        const T_ *cp = c_prev + (size_t)r * n;                                                \
        T_ *cr = c + (size_t)r * n, *tr = tanh_c + (size_t)r * n, *hr = h + (size_t)r * n;    \
        T_ *fhr = f_hat + (size_t)r * n, *ihr = i_hat + (size_t)r * n;                        \
        _Pragma("omp simd")                                                                   \
        for (int64_t u = 0; u < n; u++) {                                                     \
            T_ ao = zo[u], ac = zc[u], ai = zi[u], af = zf[u];                                \
            if (xo) { ao += xo[u]; ac += xo[n + u]; ai += xo[2 * n + u]; af += xo[3 * n + u]; } \
            T_ o = sigm_##SUFFIX(ao), ch = tanh_##SUFFIX(ac);                                 \
            T_ ig = sigm_##SUFFIX(ai), fg = sigm_##SUFFIX(af);                                \
            T_ fh = fg * w_n[u] + fw_n[u], ih = ig * w_n[u] + iw_n[u];                         \
            T_ cn = fh * cp[u] + ih * ch, tc = tanh_##SUFFIX(cn);                              \
            go[u] = o; gc[u] = ch; gi[u] = ig; gf[u] = fg;                                    \
            fhr[u] = fh; ihr[u] = ih; cr[u] = cn; tr[u] = tc; hr[u] = o * tc;                  \
        }                                                                                     \
    }                                                                                         \
    return 0;                                                                                 \
}                                                                                             \
                                                                                              \
int onlstm_backward_step_##SUFFIX(const onlstm_backward_args *a)                              \
{                                                                                             \
    STEP_PROLOGUE(T_, a);                                                                     \
    const T_ *gates = (const T_ *)a->gates + step_g;                                          \
    const T_ *mf = (const T_ *)a->mf + step_m, *mi = (const T_ *)a->mi + step_m;              \
    const T_ *f_hat = (const T_ *)a->f_hat + step_n, *i_hat = (const T_ *)a->i_hat + step_n;  \
    const T_ *tanh_c = (const T_ *)a->tanh_c + step_n;                                        \
    const T_ *grad_h = (const T_ *)a->grad_h + step_n, *dh = (const T_ *)a->dh;               \
    const T_ *grad_mf = (const T_ *)a->grad_mf + step_m, *grad_mi = (const T_ *)a->grad_mi + step_m; \
    T_ *dc = (T_ *)a->dc, *dg = (T_ *)a->grad_gates + step_g;                                 \
    _Pragma("omp parallel for schedule(static) num_threads(nt) if(nt > 1 && b * n >= PARALLEL_MIN_UNITS)") \
    for (int64_t r = 0; r < b; r++) {                                                         \
        T_ *work = (T_ *)a->work + (size_t)THREAD_ID() * (4 * n + 2 * m);                     \
        T_ *dfh_n = work, *dih_n = work + n, *dw_n = work + 2 * n, *w_n = work + 3 * n;        \
        const T_ *g = gates + (size_t)r * G;                                                  \
        const T_ *mfr = mf + (size_t)r * m, *mir = mi + (size_t)r * m;                        \
        const T_ *go = g + 2 * m, *gc = go + n, *gi = gc + n, *gf = gi + n;                   \
        T_ *dgr = dg + (size_t)r * G;                                                         \
        T_ *d_o = dgr + 2 * m, *d_c = d_o + n, *d_i = d_c + n, *d_f = d_i + n;                \
        const T_ *fhr = f_hat + (size_t)r * n, *ihr = i_hat + (size_t)r * n;                  \
        const T_ *tr = tanh_c + (size_t)r * n, *cp = c_prev + (size_t)r * n;                  \
        const T_ *ghr = grad_h + (size_t)r * n, *dhr = dh + (size_t)r * n;                    \
        T_ *dcr = dc + (size_t)r * n;                                                         \
        for (int64_t l = 0; l < m; l++) {                                                     \
            T_ w = mfr[l] * mir[l];                                                           \
            for (int64_t k = 0; k < C; k++) w_n[l * C + k] = w;                               \
        }                                                                                     \
        _Pragma("omp simd")                                                                   \
        for (int64_t u = 0; u < n; u++) {                                                     \
            T_ o = go[u], ch = gc[u], ig = gi[u], fg = gf[u], tc = tr[u];                     \
            T_ dht = ghr[u] + dhr[u];                                                         \
            d_o[u] = dht * tc * o * ((T_)1 - o);                                              \
            T_ dct = dht * o * ((T_)1 - tc * tc) + dcr[u];                                    \
            T_ dfh = dct * cp[u], dih = dct * ch;                                             \
            d_c[u] = dct * ihr[u] * ((T_)1 - ch * ch);                                        \
            dcr[u] = dct * fhr[u];                                                            \
            d_f[u] = dfh * w_n[u] * fg * ((T_)1 - fg);                                        \
            d_i[u] = dih * w_n[u] * ig * ((T_)1 - ig);                                        \
            dfh_n[u] = dfh; dih_n[u] = dih;                                                   \
            dw_n[u] = dfh * (fg - (T_)1) + dih * (ig - (T_)1);                                \
        }                                                                                     \
        /* per level: gradients of f~ and i~, then back through cumsum and softmax */         \
        T_ *dmf = work + 4 * n, *dmi = work + 4 * n + m;                                       \
        for (int64_t l = 0; l < m; l++) {                                                     \
            T_ sf = 0, si = 0, sw = 0;                                                        \
            for (int64_t k = 0; k < C; k++) {                                                 \
                sf += dfh_n[l * C + k]; si += dih_n[l * C + k]; sw += dw_n[l * C + k];         \
            }                                                                                 \
            dmf[l] = sf + sw * mir[l] + grad_mf[(size_t)r * m + l];                           \
            dmi[l] = si + sw * mfr[l] + grad_mi[(size_t)r * m + l];                           \
        }                                                                                     \
        const T_ *pi = g, *pf = g + m;                                                        \
        T_ *dai = dgr, *daf = dgr + m;                                                        \
        T_ run_f = 0, run_i = 0, dot_f = 0, dot_i = 0;                                        \
        for (int64_t l = m - 1; l >= 0; l--) {                                                \
            run_f += dmf[l];            /* f~ = cumsum(p_f): dp_f = revcumsum(d f~) */        \
            run_i += dmi[l];            /* i~ = 1 - cumsum(p_i) (+ p_i if symmetric) */        \
            daf[l] = run_f;                                                                   \
            dai[l] = -run_i + (a->symmetric ? dmi[l] : (T_)0);                                \
            dot_f += pf[l] * daf[l]; dot_i += pi[l] * dai[l];                                 \
        }                                                                                     \
        for (int64_t l = 0; l < m; l++) {                                                     \
            daf[l] = pf[l] * (daf[l] - dot_f);                                                \
            dai[l] = pi[l] * (dai[l] - dot_i);                                                \
        }                                                                                     \
    }                                                                                         \
    return 0;                                                                                 \
}

#define DEFINE_MASK(T_, SUFFIX)                                                                \
int onlstm_mask_apply_##SUFFIX(const onlstm_mask_args *a)                                     \
{                                                                                             \
    if (a->numel < 0) return -1;                                                              \
    const T_ *src = (const T_ *)a->src;                                                       \
    const uint8_t *keep = (const uint8_t *)a->keep;                                           \
    T_ *dst = (T_ *)a->dst;                                                                   \
    const T_ scale = (T_)a->scale;                                                            \
    _Pragma("omp simd")                                                                       \
    for (int64_t k = 0; k < a->numel; k++) dst[k] = keep[k] ? src[k] * scale : (T_)0;         \
    return 0;                                                                                 \
}

DEFINE_MASK(float, f32)
DEFINE_MASK(double, f64)
DEFINE_KERNELS(float, f32, expf)
DEFINE_KERNELS(double, f64, exp)
