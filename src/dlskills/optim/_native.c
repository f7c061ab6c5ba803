/* Fused CPU kernels for the element-wise zoo optimizers (dlskills.optim._native builds this file
 * with the system C compiler on first use and calls it through ctypes).
 *
 * Each kernel applies one optimizer's whole per-coordinate update in a single pass over memory
 * (read the gradient and the state once, write the state and the parameter once), where the
 * torch.foreach path streams the tensors once per elementary op. The maths follows the Python
 * single-tensor kernels line by line, in the tensors' own precision, so the paths agree to
 * rounding. A step covers every tensor of a parameter group in one call: the concatenated
 * element range is split evenly over the OpenMP threads, a piece of a tensor per thread.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define MIN_ELEMENTS_PER_THREAD 32768
#define ALIGNMENT 16 /* split points on 64-byte boundaries for float, no false sharing */
#define BLOCK 256    /* AggMo: elements per block of the velocity sum */

typedef void (*piece_fn)(const void *args, int64_t tensor, int64_t begin, int64_t end);

typedef struct {
    piece_fn fn;
    const void *args;
    const int64_t *numels;
    int64_t n_tensors, first, last; /* this thread's range of the concatenated elements */
} span_t;

static void run_span(const span_t *span) {
    int64_t base = 0;
    for (int64_t t = 0; t < span->n_tensors && base < span->last; ++t) {
        int64_t n = span->numels[t];
        int64_t begin = span->first > base ? span->first - base : 0;
        int64_t end = span->last - base < n ? span->last - base : n;
        if (begin < end) span->fn(span->args, t, begin, end);
        base += n;
    }
}

/* OpenMP, not threads of our own: linked against libgomp.so.1, the library shares the runtime
 * torch has already loaded, so its regions run on torch's warm worker threads instead of
 * competing with them for the cores. */
static void parallel_pieces(piece_fn fn, const void *args, const int64_t *numels,
                            int64_t n_tensors, int n_threads) {
    int64_t total = 0;
    for (int64_t t = 0; t < n_tensors; ++t) total += numels[t];
    int64_t useful = total / MIN_ELEMENTS_PER_THREAD;
    if (n_threads > useful) n_threads = (int)useful;
    if (n_threads <= 1) {
        span_t span = {fn, args, numels, n_tensors, 0, total};
        run_span(&span);
        return;
    }
#pragma omp parallel num_threads(n_threads)
    {
        int count = omp_get_num_threads(), i = omp_get_thread_num();
        int64_t first = i == 0 ? 0 : (total / count * i) / ALIGNMENT * ALIGNMENT;
        int64_t last = i == count - 1 ? total : (total / count * (i + 1)) / ALIGNMENT * ALIGNMENT;
        span_t span = {fn, args, numels, n_tensors, first, last};
        run_span(&span);
    }
}

/* ---- AdaBound / AMSBound (adabound.py) ------------------------------------------------------
 *   g ← g + wd·θ;  m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²;  v̂ ← max(v̂, v) (AMSBound)
 *   θ ← θ − clip(α/(√v̂ + ε), lo, hi)·m           (α, lo, hi per tensor) */
#define DEFINE_ADABOUND(T, SQRT, SUFFIX)                                                          \
    typedef struct {                                                                              \
        T **params, **grads, **exp_avgs, **exp_avg_sqs, **max_exp_avg_sqs;                        \
        const double *step_sizes, *lower_bounds, *upper_bounds;                                   \
        double beta1, beta2, eps, weight_decay;                                                   \
    } adabound_args_##SUFFIX;                                                                     \
                                                                                                  \
    /* amsbound/decayed are constants at each call below, so every variant is its own tight,   \
     * vectorised loop (a run-time test inside the loop costs a factor of ~4) */                 \
    static inline __attribute__((always_inline)) void adabound_loop_##SUFFIX(                     \
        const adabound_args_##SUFFIX *a, int64_t t, int64_t begin, int64_t end,                   \
        const int amsbound, const int decayed) {                                                  \
        T *restrict p = a->params[t], *restrict m = a->exp_avgs[t], *restrict v = a->exp_avg_sqs[t]; \
        T *restrict vmax = amsbound ? a->max_exp_avg_sqs[t] : 0;                                  \
        const T *restrict g = a->grads[t];                                                        \
        const T weight1 = (T)(1.0 - a->beta1), beta2 = (T)a->beta2, weight2 = (T)(1.0 - a->beta2); \
        const T eps = (T)a->eps, decay = (T)a->weight_decay, step = (T)a->step_sizes[t];          \
        const T lo = (T)a->lower_bounds[t], hi = (T)a->upper_bounds[t];                           \
        for (int64_t i = begin; i < end; ++i) {                                                   \
            T grad = decayed ? g[i] + decay * p[i] : g[i];                                        \
            T mi = m[i] + weight1 * (grad - m[i]);                                                \
            T vi = v[i] * beta2 + weight2 * grad * grad;                                          \
            m[i] = mi;                                                                            \
            v[i] = vi;                                                                            \
            if (amsbound) {                                                                       \
                vi = vmax[i] > vi ? vmax[i] : vi;                                                 \
                vmax[i] = vi;                                                                     \
            }                                                                                     \
            T ratio = ((T)1 / (SQRT(vi) + eps)) * step;                                           \
            ratio = ratio < lo ? lo : ratio;                                                      \
            ratio = ratio > hi ? hi : ratio;                                                      \
            p[i] = p[i] - ratio * mi;                                                             \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static void adabound_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin, int64_t end) { \
        const adabound_args_##SUFFIX *a = raw;                                                    \
        const int amsbound = a->max_exp_avg_sqs != 0, decayed = a->weight_decay != 0;            \
        if (amsbound && decayed)                                                                  \
            adabound_loop_##SUFFIX(a, t, begin, end, 1, 1);                                       \
        else if (amsbound)                                                                        \
            adabound_loop_##SUFFIX(a, t, begin, end, 1, 0);                                       \
        else if (decayed)                                                                         \
            adabound_loop_##SUFFIX(a, t, begin, end, 0, 1);                                       \
        else                                                                                      \
            adabound_loop_##SUFFIX(a, t, begin, end, 0, 0);                                       \
    }                                                                                             \
                                                                                                  \
    void adabound_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **params, T **grads,       \
                           T **exp_avgs, T **exp_avg_sqs, T **max_exp_avg_sqs,                    \
                           const double *step_sizes, const double *lower_bounds,                  \
                           const double *upper_bounds, double beta1, double beta2, double eps,    \
                           double weight_decay, int n_threads) {                                  \
        adabound_args_##SUFFIX args = {params,       grads,        exp_avgs,     exp_avg_sqs,     \
                                       max_exp_avg_sqs, step_sizes, lower_bounds, upper_bounds,   \
                                       beta1,        beta2,        eps,          weight_decay};   \
        parallel_pieces(adabound_piece_##SUFFIX, &args, numels, n_tensors, n_threads);            \
    }

/* ---- AggMo (aggmo.py): v_k ← β_k·v_k + g, θ ← θ − (lr/K)·v_k for k < K
 *   (velocities[k·n_tensors + t]: velocity k of tensor t) */
#define DEFINE_AGGMO(T, SUFFIX)                                                                   \
    typedef struct {                                                                              \
        T **params, **grads, **velocities;                                                        \
        const double *betas;                                                                      \
        int64_t n_tensors, count;                                                                 \
        double lr, weight_decay;                                                                  \
    } aggmo_args_##SUFFIX;                                                                        \
                                                                                                  \
    static inline __attribute__((always_inline)) void aggmo_loop_##SUFFIX(                        \
        const aggmo_args_##SUFFIX *a, int64_t t, int64_t begin, int64_t end, const int decayed) { \
        T *restrict p = a->params[t];                                                             \
        const T *restrict g = a->grads[t];                                                        \
        const T decay = (T)a->weight_decay, scale = (T)(a->lr / (double)a->count);                \
        T grad[BLOCK], updated[BLOCK];                                                            \
        for (int64_t start = begin; start < end; start += BLOCK) {                                \
            const int64_t width = end - start < BLOCK ? end - start : BLOCK;                      \
            for (int64_t j = 0; j < width; ++j) {                                                 \
                grad[j] = decayed ? g[start + j] + decay * p[start + j] : g[start + j];           \
                updated[j] = p[start + j];                                                        \
            }                                                                                     \
            /* velocity by velocity, as the authors subtract them (rounds like their code) */    \
            for (int64_t k = 0; k < a->count; ++k) {                                              \
                T *restrict v = a->velocities[k * a->n_tensors + t] + start;                      \
                const T beta = (T)a->betas[k];                                                    \
                for (int64_t j = 0; j < width; ++j) {                                             \
                    v[j] = v[j] * beta + grad[j];                                                 \
                    updated[j] = updated[j] - scale * v[j];                                       \
                }                                                                                 \
            }                                                                                     \
            for (int64_t j = 0; j < width; ++j) p[start + j] = updated[j];                        \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static void aggmo_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin, int64_t end) {    \
        const aggmo_args_##SUFFIX *a = raw;                                                       \
        if (a->weight_decay != 0)                                                                 \
            aggmo_loop_##SUFFIX(a, t, begin, end, 1);                                             \
        else                                                                                      \
            aggmo_loop_##SUFFIX(a, t, begin, end, 0);                                             \
    }                                                                                             \
                                                                                                  \
    void aggmo_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **params, T **grads,          \
                        T **velocities, const double *betas, int64_t count, double lr,            \
                        double weight_decay, int n_threads) {                                     \
        aggmo_args_##SUFFIX args = {params,    grads, velocities, betas,                            \
                                    n_tensors, count, lr,         weight_decay};                  \
        parallel_pieces(aggmo_piece_##SUFFIX, &args, numels, n_tensors, n_threads);               \
    }

/* ---- PTS-SGD (pts_sgd.py): S ← α·S + g − αʷ·g_old;  g_old ← g;  θ ← θ − (lr/W)·S */
#define DEFINE_PTS_SGD(T, SUFFIX)                                                                 \
    typedef struct {                                                                              \
        T **params, **grads, **oldest, **grad_sums;                                               \
        double alpha, expiring_weight, scale, weight_decay;                                       \
    } pts_sgd_args_##SUFFIX;                                                                      \
                                                                                                  \
    static inline __attribute__((always_inline)) void pts_sgd_loop_##SUFFIX(                      \
        const pts_sgd_args_##SUFFIX *a, int64_t t, int64_t begin, int64_t end, const int decayed) { \
        T *restrict p = a->params[t], *restrict old = a->oldest[t], *restrict s = a->grad_sums[t]; \
        const T *restrict g = a->grads[t];                                                        \
        const T alpha = (T)a->alpha, expiring = (T)a->expiring_weight, scale = (T)a->scale;       \
        const T decay = (T)a->weight_decay;                                                       \
        for (int64_t i = begin; i < end; ++i) {                                                   \
            T grad = decayed ? g[i] + decay * p[i] : g[i];                                     \
            T sum = s[i] * alpha + grad; /* ·1 is exact: no α = 1 case */                             \
            sum = sum - expiring * old[i];                                                        \
            s[i] = sum;                                                                           \
            old[i] = grad;                                                                        \
            p[i] = p[i] - scale * sum;                                                            \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static void pts_sgd_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin, int64_t end) {  \
        const pts_sgd_args_##SUFFIX *a = raw;                                                     \
        if (a->weight_decay != 0)                                                                 \
            pts_sgd_loop_##SUFFIX(a, t, begin, end, 1);                                           \
        else                                                                                      \
            pts_sgd_loop_##SUFFIX(a, t, begin, end, 0);                                           \
    }                                                                                             \
                                                                                                  \
    void pts_sgd_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **params, T **grads,        \
                          T **oldest, T **grad_sums, double alpha, double expiring_weight,        \
                          double scale, double weight_decay, int n_threads) {                     \
        pts_sgd_args_##SUFFIX args = {params, grads, oldest, grad_sums,                           \
                                      alpha,  expiring_weight, scale, weight_decay};              \
        parallel_pieces(pts_sgd_piece_##SUFFIX, &args, numels, n_tensors, n_threads);             \
    }

/* x^(−1/3) for STORM, vectorisable (libm's cbrt has no vector form, and a scalar call per
 * element made STORM's step 5× slower): the exponent-halving bit trick of the fast inverse
 * square root, adapted to the cube root (magic constant (4/3)·2^m·(bias − 0.0450466)), then
 * Newton steps y ← y·(4 − x·y³)/3, 3 in float (≤ 2 ulp), 4 in double (≤ 2 ulp). Inputs below
 * TINY (subnormals among them) are scaled by 2^(3s) first and the result by 2^s; 0, ∞, NaN and
 * x < 0 give what pow(x, −1/3) gives. torch's pow(x, −1/3) rounds the exponent to the tensor's
 * dtype, so it is off the true root by |ln x|·2^−25 relative in float: the two agree to 1e-6 for
 * every float32 x (to 1.4e-14 in float64; tested). */
#define DEFINE_INV_CBRT(T, UINT, MAGIC, NEWTON_STEPS, TINY, UP, DOWN, SUFFIX)                     \
    static inline T inv_cbrt_##SUFFIX(T x) {                                                      \
        const T tiny = (T)TINY, up = (T)UP, down = (T)DOWN;                                       \
        const T scaled = x < tiny ? x * up : x;                                                   \
        UINT bits;                                                                                \
        memcpy(&bits, &scaled, sizeof bits);                                                      \
        bits = (UINT)MAGIC - bits / 3;                                                            \
        T y;                                                                                      \
        memcpy(&y, &bits, sizeof y);                                                              \
        for (int step = 0; step < NEWTON_STEPS; ++step)                                           \
            y = y * ((T)4 - scaled * y * y * y) * ((T)1 / (T)3);                                  \
        y = x < tiny ? y * down : y;                                                              \
        y = x == 0 ? (T)INFINITY : y;                                                             \
        y = x == (T)INFINITY ? (T)0 : y;                                                          \
        y = x < 0 || x != x ? (T)NAN : y;                                                         \
        return y;                                                                                 \
    }

DEFINE_INV_CBRT(float, uint32_t, 0x54a2fa8dU, 3, 0x1p-100, 0x1p48, 0x1p16, f32)
DEFINE_INV_CBRT(double, uint64_t, 0x553f09fc49d9b000ULL, 4, 0x1p-1000, 0x1p150, 0x1p50, f64)

/* ---- STORM (storm.py): G ← G + g²;  η = k·(w + G)^(−1/3);  a = min(1, c·η²);
 *   d ← clip(g + (1 − a)·(d − g_prev), −M, M);  θ ← θ_t − η·d     (M per tensor; θ_t read
 *   from ``iterates``: the parameters hold θ_{t−1} after the second closure call) */
#define DEFINE_STORM(T, SUFFIX)                                                             \
    typedef struct {                                                                              \
        T **params, **grads, **prev_grads, **iterates, **estimates, **sums;                       \
        const double *max_norms;                                                                  \
        double k, w, c;                                                                           \
    } storm_args_##SUFFIX;                                                                        \
                                                                                                  \
    static void storm_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin, int64_t end) {    \
        const storm_args_##SUFFIX *a = raw;                                                       \
        T *restrict d = a->estimates[t], *restrict G = a->sums[t];                                \
        const T *restrict g = a->grads[t], *restrict gp = a->prev_grads[t];                       \
        T *restrict p = a->params[t];                                                             \
        const T *restrict current = a->iterates[t];                                               \
        const T k = (T)a->k, w = (T)a->w, c = (T)a->c, bound = (T)a->max_norms[t];                \
        /* seven streams are past gcc's alias-check budget: it would not vectorise */             \
        _Pragma("GCC ivdep") for (int64_t i = begin; i < end; ++i) {                              \
            T sum = G[i] + g[i] * g[i];                                                           \
            G[i] = sum;                                                                           \
            T lr = inv_cbrt_##SUFFIX(sum + w) * k;                                                  \
            T correction = lr * lr * c;                                                           \
            T keep = (T)1 - (correction > (T)1 ? (T)1 : correction);                              \
            T estimate = (d[i] - gp[i]) * keep + g[i];                                            \
            estimate = estimate < -bound ? -bound : estimate;                                     \
            estimate = estimate > bound ? bound : estimate;                                       \
            d[i] = estimate;                                                                      \
            p[i] = current[i] - lr * estimate;                                                    \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void storm_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **params, T **grads,          \
                        T **prev_grads, T **iterates, T **estimates, T **sums,                    \
                        const double *max_norms,                                                  \
                        double k, double w, double c, int n_threads) {                            \
        storm_args_##SUFFIX args = {params, grads, prev_grads, iterates, estimates, sums,         \
                                    max_norms, k, w, c};                                          \
        parallel_pieces(storm_piece_##SUFFIX, &args, numels, n_tensors, n_threads);               \
    }

/* ---- EASGD (easgd.py). The parameters move from worker to worker; while worker k is out, its
 * row holds the centre x̃ (with momentum δ, ``scratch`` holds x_k and the parameters x_k + δ·v_k,
 * the point where its gradient is taken). Every buffer a kernel writes it also reads, so no
 * write costs a read-for-ownership besides: K = 1, δ = 0 streams 9 parameter-sized buffers a step.
 * Enter (before the first worker):   row_1 ← x̃;  θ ← x_1 (+ δ·v_1, scratch ← x_1);
 *   synchronous communication step:  pending ← x̃ as well
 * Leave worker k (its closure left g at θ; x is x_k as the closure saw it, before any update):
 *   g ← g + wd·θ
 *   on a communication step:  d = α·(x − x̃);  x_k ← x − d;
 *                             x̃ ← x̃ + d (asynchronous)  or  pending ← pending + d (synchronous,
 *                             every worker's d against the same x̃_t)
 *   v_k ← δ·v_k − η·g;  x_k ← x_k + v_k     (δ = 0: x_k ← x_k − η·g, no v)
 *   row_k ← x_k;  then row_{k+1} ← x̃, θ ← x_{k+1} (+ δ·v_{k+1}, scratch ← x_{k+1}),
 *   or θ ← x̃ (synchronous communication step: θ ← pending) after the last worker.
 * A tensor without a gradient (grads == NULL) skips the local step (not the elastic one).
 * The elastic update of one worker against the centre alone (elastic_average_):
 *   d = α·(x_k − x̃);  x_k ← x_k − d;  x̃ ← x̃ + d */
#define DEFINE_EASGD(T, SUFFIX)                                                                   \
    typedef struct {                                                                              \
        T **params, **workers, **velocities, **scratch, **pending;                                \
        double momentum;                                                                          \
    } easgd_enter_args_##SUFFIX;                                                                  \
                                                                                                  \
    static void easgd_enter_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin,             \
                                           int64_t end) {                                         \
        const easgd_enter_args_##SUFFIX *a = raw;                                                 \
        T *restrict p = a->params[t], *restrict w = a->workers[t];                                \
        if (a->pending) {                                                                         \
            T *restrict q = a->pending[t];                                                        \
            for (int64_t i = begin; i < end; ++i) q[i] = p[i];                                    \
        }                                                                                         \
        if (a->momentum == 0) {                                                                   \
            for (int64_t i = begin; i < end; ++i) {                                               \
                T centre = p[i];                                                                  \
                p[i] = w[i];                                                                      \
                w[i] = centre;                                                                    \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        T *restrict s = a->scratch[t];                                                            \
        const T *restrict v = a->velocities[t];                                                   \
        const T momentum = (T)a->momentum;                                                        \
        for (int64_t i = begin; i < end; ++i) {                                                   \
            T x = w[i];                                                                           \
            w[i] = p[i];                                                                          \
            s[i] = x;                                                                             \
            p[i] = x + momentum * v[i];                                                           \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void easgd_enter_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **params, T **workers,  \
                              T **velocities, T **scratch, T **pending, double momentum,          \
                              int n_threads) {                                                    \
        easgd_enter_args_##SUFFIX args = {params, workers, velocities, scratch, pending,          \
                                          momentum};                                              \
        parallel_pieces(easgd_enter_piece_##SUFFIX, &args, numels, n_tensors, n_threads);         \
    }                                                                                             \
                                                                                                  \
    typedef struct {                                                                              \
        T **params, **grads, **velocities, **workers, **scratch, **pending, **next_workers,       \
            **next_velocities;                                                                    \
        double momentum, lr, weight_decay, alpha;                                                 \
        int communicate;                                                                          \
    } easgd_leave_args_##SUFFIX;                                                                  \
                                                                                                  \
    /* every flag a constant at its call below: each variant is its own vectorised loop */       \
    static inline __attribute__((always_inline)) void easgd_leave_loop_##SUFFIX(                  \
        const easgd_leave_args_##SUFFIX *a, int64_t t, int64_t begin, int64_t end,                \
        const int stepped, const int momentum_on, const int decayed, const int communicate,       \
        const int last, const int synchronous) {                                                  \
        T *restrict p = a->params[t], *restrict w = a->workers[t];                                \
        T *restrict s = momentum_on ? a->scratch[t] : 0;                                          \
        T *restrict v = momentum_on ? a->velocities[t] : 0;                                       \
        T *restrict q = synchronous ? a->pending[t] : 0;                                          \
        T *restrict next_w = last ? 0 : a->next_workers[t];                                       \
        const T *restrict g = stepped ? a->grads[t] : 0;                                          \
        const T *restrict next_v = last || !momentum_on ? 0 : a->next_velocities[t];              \
        const T momentum = (T)a->momentum, lr = (T)a->lr, decay = (T)a->weight_decay;             \
        const T alpha = (T)a->alpha;                                                              \
        _Pragma("GCC ivdep") for (int64_t i = begin; i < end; ++i) {                              \
            T x = momentum_on ? s[i] : p[i], centre = w[i], grad = 0;                             \
            if (stepped) grad = decayed ? g[i] + decay * p[i] : g[i];                             \
            if (communicate) {                                                                    \
                T diff = (x - centre) * alpha;                                                    \
                x = x - diff;                                                                     \
                if (synchronous)                                                                  \
                    q[i] = q[i] + diff;                                                           \
                else                                                                              \
                    centre = centre + diff;                                                       \
            }                                                                                     \
            if (stepped) {                                                                        \
                if (momentum_on) {                                                                \
                    T vi = v[i] * momentum - lr * grad;                                           \
                    v[i] = vi;                                                                    \
                    x = x + vi;                                                                   \
                } else {                                                                          \
                    x = x - lr * grad;                                                            \
                }                                                                                 \
            }                                                                                     \
            w[i] = x;                                                                             \
            if (last) {                                                                           \
                p[i] = synchronous ? q[i] : centre;                                               \
            } else {                                                                              \
                T next = next_w[i];                                                               \
                next_w[i] = centre;                                                               \
                if (momentum_on) {                                                                \
                    s[i] = next;                                                                  \
                    p[i] = next + momentum * next_v[i];                                           \
                } else {                                                                          \
                    p[i] = next;                                                                  \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static void easgd_leave_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin,             \
                                           int64_t end) {                                         \
        const easgd_leave_args_##SUFFIX *a = raw;                                                 \
        const int communicate = a->communicate != 0;                                              \
        const int variant = (a->grads != 0) | (a->momentum != 0) << 1                             \
                            | (a->weight_decay != 0) << 2 | communicate << 3                      \
                            | (a->next_workers == 0) << 4                                         \
                            | (communicate && a->pending != 0) << 5;                              \
        switch (variant) {                                                                        \
            EASGD_VARIANTS(SUFFIX)                                                                \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void easgd_leave_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **params, T **grads,    \
                              T **velocities, T **workers, T **scratch, T **pending,              \
                              T **next_workers, T **next_velocities, double momentum, double lr,  \
                              double weight_decay, double alpha, int communicate,                 \
                              int n_threads) {                                                    \
        easgd_leave_args_##SUFFIX args = {params,       grads,           velocities, workers,     \
                                          scratch,      pending,         next_workers,            \
                                          next_velocities, momentum,     lr,                      \
                                          weight_decay, alpha,           communicate};            \
        parallel_pieces(easgd_leave_piece_##SUFFIX, &args, numels, n_tensors, n_threads);         \
    }                                                                                             \
                                                                                                  \
    typedef struct {                                                                              \
        T **workers, **centres;                                                                   \
        double alpha;                                                                             \
    } elastic_args_##SUFFIX;                                                                      \
                                                                                                  \
    static void elastic_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin, int64_t end) {  \
        const elastic_args_##SUFFIX *a = raw;                                                     \
        T *restrict w = a->workers[t], *restrict c = a->centres[t];                               \
        const T alpha = (T)a->alpha;                                                              \
        for (int64_t i = begin; i < end; ++i) {                                                   \
            T diff = (w[i] - c[i]) * alpha;                                                       \
            w[i] = w[i] - diff;                                                                   \
            c[i] = c[i] + diff;                                                                   \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void elastic_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **workers, T **centres,     \
                          double alpha, int n_threads) {                                          \
        elastic_args_##SUFFIX args = {workers, centres, alpha};                                   \
        parallel_pieces(elastic_piece_##SUFFIX, &args, numels, n_tensors, n_threads);             \
    }

/* ---- One EASGD worker's local step given its elastic difference d (easgd.py's worker_step_,
 * used by dlskills.distributed.easgd): θ holds x (δ = 0) or the look-ahead point x + δ·v where the
 * gradient g was taken, ``xs`` holds x when δ > 0.
 *   g ← g + wd·θ;  x ← x − d (when d is given);  v ← δ·v − η·g;  x ← x + v;  θ ← x + δ·v
 *   (δ = 0: x ← x − η·g, θ is x) */
#define DEFINE_EASGD_WORKER(T, SUFFIX)                                                            \
    typedef struct {                                                                              \
        T **params, **grads, **xs, **velocities, **diffs;                                         \
        double momentum, lr, weight_decay;                                                        \
    } easgd_worker_args_##SUFFIX;                                                                 \
                                                                                                  \
    static inline __attribute__((always_inline)) void easgd_worker_loop_##SUFFIX(                 \
        const easgd_worker_args_##SUFFIX *a, int64_t t, int64_t begin, int64_t end,               \
        const int momentum_on, const int decayed, const int elastic) {                            \
        T *restrict p = a->params[t];                                                             \
        const T *restrict g = a->grads[t];                                                        \
        T *restrict xs = momentum_on ? a->xs[t] : 0;                                              \
        T *restrict v = momentum_on ? a->velocities[t] : 0;                                       \
        const T *restrict d = elastic ? a->diffs[t] : 0;                                          \
        const T momentum = (T)a->momentum, lr = (T)a->lr, decay = (T)a->weight_decay;             \
        _Pragma("GCC ivdep") for (int64_t i = begin; i < end; ++i) {                              \
            T grad = decayed ? g[i] + decay * p[i] : g[i];                                        \
            T x = momentum_on ? xs[i] : p[i];                                                     \
            if (elastic) x = x - d[i];                                                            \
            if (momentum_on) {                                                                    \
                T vi = v[i] * momentum - lr * grad;                                               \
                v[i] = vi;                                                                        \
                x = x + vi;                                                                       \
                xs[i] = x;                                                                        \
                p[i] = x + momentum * vi;                                                         \
            } else {                                                                              \
                p[i] = x - lr * grad;                                                             \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static void easgd_worker_piece_##SUFFIX(const void *raw, int64_t t, int64_t begin,            \
                                            int64_t end) {                                        \
        const easgd_worker_args_##SUFFIX *a = raw;                                                \
        const int variant = (a->momentum != 0) | (a->weight_decay != 0) << 1                      \
                            | (a->diffs != 0) << 2;                                               \
        switch (variant) {                                                                        \
            case 0: easgd_worker_loop_##SUFFIX(a, t, begin, end, 0, 0, 0); break;                 \
            case 1: easgd_worker_loop_##SUFFIX(a, t, begin, end, 1, 0, 0); break;                 \
            case 2: easgd_worker_loop_##SUFFIX(a, t, begin, end, 0, 1, 0); break;                 \
            case 3: easgd_worker_loop_##SUFFIX(a, t, begin, end, 1, 1, 0); break;                 \
            case 4: easgd_worker_loop_##SUFFIX(a, t, begin, end, 0, 0, 1); break;                 \
            case 5: easgd_worker_loop_##SUFFIX(a, t, begin, end, 1, 0, 1); break;                 \
            case 6: easgd_worker_loop_##SUFFIX(a, t, begin, end, 0, 1, 1); break;                 \
            case 7: easgd_worker_loop_##SUFFIX(a, t, begin, end, 1, 1, 1); break;                 \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void easgd_worker_##SUFFIX(int64_t n_tensors, const int64_t *numels, T **params, T **grads,   \
                               T **xs, T **velocities, T **diffs, double momentum, double lr,     \
                               double weight_decay, int n_threads) {                              \
        easgd_worker_args_##SUFFIX args = {params,   grads, xs,          velocities, diffs,       \
                                           momentum, lr,    weight_decay};                        \
        parallel_pieces(easgd_worker_piece_##SUFFIX, &args, numels, n_tensors, n_threads);        \
    }

/* the 64 cases of easgd_leave's switch: bit 0 stepped, 1 momentum, 2 decay, 3 communicate,
 * 4 last, 5 synchronous (set only with communicate: the other 16 cases never run) */
#define EASGD_CASE(SUFFIX, V)                                                                     \
    case V:                                                                                       \
        easgd_leave_loop_##SUFFIX(a, t, begin, end, (V)&1, (V) >> 1 & 1, (V) >> 2 & 1,            \
                                  (V) >> 3 & 1, (V) >> 4 & 1, (V) >> 5 & 1);                      \
        break;
#define EASGD_CASES_8(SUFFIX, B)                                                                  \
    EASGD_CASE(SUFFIX, B + 0) EASGD_CASE(SUFFIX, B + 1) EASGD_CASE(SUFFIX, B + 2)                 \
    EASGD_CASE(SUFFIX, B + 3) EASGD_CASE(SUFFIX, B + 4) EASGD_CASE(SUFFIX, B + 5)                 \
    EASGD_CASE(SUFFIX, B + 6) EASGD_CASE(SUFFIX, B + 7)
#define EASGD_VARIANTS(SUFFIX)                                                                    \
    EASGD_CASES_8(SUFFIX, 0) EASGD_CASES_8(SUFFIX, 8) EASGD_CASES_8(SUFFIX, 16)                   \
    EASGD_CASES_8(SUFFIX, 24) EASGD_CASES_8(SUFFIX, 40) EASGD_CASES_8(SUFFIX, 56)

/* ---- FG-SGD (fg_sgd.py's _sphere_step), one unit-sphere row w of length n with gradient g:
 *   t = g − (g·w)·w;  ν = ‖t‖;  angle = lr·ν/max(ν, 1);  u = t/max(ν, tiny);
 *   m = cos(angle)·w − sin(angle)·u;  w ← m/max(‖m‖, tiny);   a zero row: w ← −u.
 * One row at a time, its passes after the first read from cache (a conv kernel's row is at most
 * a few thousand elements), so memory sees w and g read once and w written once: the torch rule
 * streams the whole tensor once per elementary op (≈ 20 passes). Rows are split over the
 * threads; the sums accumulate in T with OpenMP's vector reduction. */
#define DEFINE_FG_SGD(T, SQRT, COS, SIN, TINY, SUFFIX)                                            \
    static void fg_sgd_row_##SUFFIX(T *restrict w, const T *restrict g, int64_t n, T lr) {       \
        T dot = 0, mass = 0;                                                                      \
        _Pragma("omp simd reduction(+ : dot, mass)") for (int64_t i = 0; i < n; ++i) {           \
            dot += g[i] * w[i];                                                                   \
            mass += w[i] * w[i];                                                                  \
        }                                                                                         \
        T tangent = 0;                                                                            \
        _Pragma("omp simd reduction(+ : tangent)") for (int64_t i = 0; i < n; ++i) {             \
            T t = g[i] - dot * w[i];                                                              \
            tangent += t * t;                                                                     \
        }                                                                                         \
        const T norm = SQRT(tangent), tiny = (T)TINY;                                             \
        const T inverse = (T)1 / (norm > tiny ? norm : tiny);                                     \
        if (mass == 0) { /* a zero row enters the sphere at −t/‖t‖ */                             \
            for (int64_t i = 0; i < n; ++i) w[i] = -((g[i] - dot * w[i]) * inverse);             \
            return;                                                                               \
        }                                                                                         \
        const T angle = lr * (norm / (norm > (T)1 ? norm : (T)1));                                \
        const T c = COS(angle), s = SIN(angle);                                                   \
        T moved = 0;                                                                              \
        _Pragma("omp simd reduction(+ : moved)") for (int64_t i = 0; i < n; ++i) {               \
            T m = c * w[i] - s * ((g[i] - dot * w[i]) * inverse);                                 \
            moved += m * m;                                                                       \
        }                                                                                         \
        const T length = SQRT(moved);                                                             \
        const T scale = (T)1 / (length > tiny ? length : tiny);                                   \
        _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) {                                     \
            T m = c * w[i] - s * ((g[i] - dot * w[i]) * inverse);                                 \
            w[i] = m * scale;                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void fg_sgd_##SUFFIX(int64_t n_tensors, const int64_t *numels, const int64_t *rows,           \
                         T **params, T **grads, double lr, int n_threads) {                       \
        int64_t total = 0, elements = 0;                                                          \
        for (int64_t t = 0; t < n_tensors; ++t) {                                                 \
            total += rows[t];                                                                     \
            elements += numels[t];                                                                \
        }                                                                                         \
        if (elements / MIN_ELEMENTS_PER_THREAD < n_threads)                                       \
            n_threads = (int)(elements / MIN_ELEMENTS_PER_THREAD);                                \
        if (n_threads < 1) n_threads = 1;                                                         \
        _Pragma("omp parallel for num_threads(n_threads) schedule(static)")                      \
        for (int64_t r = 0; r < total; ++r) {                                                     \
            int64_t t = 0, row = r;                                                               \
            while (row >= rows[t]) row -= rows[t++];                                              \
            const int64_t length = numels[t] / rows[t];                                           \
            fg_sgd_row_##SUFFIX(params[t] + row * length, grads[t] + row * length, length,        \
                                (T)lr);                                                           \
        }                                                                                         \
    }

DEFINE_ADABOUND(float, sqrtf, f32)
DEFINE_ADABOUND(double, sqrt, f64)
DEFINE_AGGMO(float, f32)
DEFINE_AGGMO(double, f64)
DEFINE_PTS_SGD(float, f32)
DEFINE_PTS_SGD(double, f64)
DEFINE_STORM(float, f32)
DEFINE_STORM(double, f64)
DEFINE_EASGD(float, f32)
DEFINE_EASGD(double, f64)
DEFINE_EASGD_WORKER(float, f32)
DEFINE_EASGD_WORKER(double, f64)
DEFINE_FG_SGD(float, sqrtf, cosf, sinf, 0x1p-126f, f32)
DEFINE_FG_SGD(double, sqrt, cos, sin, 0x1p-1022, f64)
