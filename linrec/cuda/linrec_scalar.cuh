// Scalar types and the affine-pair algebra shared by the linrec CUDA kernels.
//
// Standalone on purpose: no system or CUDA headers, so the same text compiles with nvcc
// and with NVRTC inside CuPy (which has no standard library headers).
//
//   cplx<R>             complex number with NumPy's layout (real, imag), aligned like it
//   traits<T>           lift a real to T, conj, real part
//   grad_cast<TA, TB>   a gradient of type TB as the gradient of a TA (real part if real)
//   is_zero             v == 0 (both parts of a complex)
//   Pair<TA, TB>        the affine map h -> a * h + b; compose(p, q) = "first p, then q",
//                       extend(p, a, b) = "first p, then one step"
//   shfl_*              warp shuffles for float, double and cplx<R>
//   load_volatile       a load that bypasses the (incoherent) L1 cache: look-back values
#ifndef LINREC_SCALAR_CUH
#define LINREC_SCALAR_CUH

#define LINREC_FULL_MASK 0xffffffffu
#define LINREC_WARP 32

template <typename R>
struct alignas(2 * sizeof(R)) cplx {
    R re;
    R im;
};

typedef cplx<float> complex64;
typedef cplx<double> complex128;

template <typename R>
__device__ __forceinline__ cplx<R> operator+(cplx<R> x, cplx<R> y) {
    cplx<R> z;
    z.re = x.re + y.re;
    z.im = x.im + y.im;
    return z;
}

template <typename R>
__device__ __forceinline__ cplx<R> operator*(cplx<R> x, cplx<R> y) {
    cplx<R> z;
    z.re = x.re * y.re - x.im * y.im;
    z.im = x.re * y.im + x.im * y.re;
    return z;
}

template <typename R>
__device__ __forceinline__ cplx<R> operator*(R x, cplx<R> y) {
    cplx<R> z;
    z.re = x * y.re;
    z.im = x * y.im;
    return z;
}

template <typename T>
struct traits {
    typedef T real;
    static __device__ __forceinline__ T lift(real v) { return v; }
    static __device__ __forceinline__ T conj(T v) { return v; }
};

template <typename R>
struct traits<cplx<R> > {
    typedef R real;
    static __device__ __forceinline__ cplx<R> lift(R v) {
        cplx<R> z;
        z.re = v;
        z.im = R(0);
        return z;
    }
    static __device__ __forceinline__ cplx<R> conj(cplx<R> v) {
        v.im = -v.im;
        return v;
    }
};

template <typename T>
__device__ __forceinline__ bool is_zero(T v) { return v == T(0); }

template <typename R>
__device__ __forceinline__ bool is_zero(cplx<R> v) { return v.re == R(0) && v.im == R(0); }

template <typename TA, typename TB>
struct grad_cast {
    static __device__ __forceinline__ TA of(TB v) { return v; }
};

template <typename R>
struct grad_cast<R, cplx<R> > {
    static __device__ __forceinline__ R of(cplx<R> v) { return v.re; }
};

template <typename T>
__device__ __forceinline__ T one() { return traits<T>::lift(1); }

template <typename T>
__device__ __forceinline__ T zero() { return traits<T>::lift(0); }

template <typename TA, typename TB>
struct Pair {
    TA a;
    TB b;
};

template <typename TA, typename TB>
__device__ __forceinline__ Pair<TA, TB> identity_pair() {
    Pair<TA, TB> p;
    p.a = one<TA>();
    p.b = zero<TB>();
    return p;
}

// The map "first p, then q": h -> q.a * (p.a * h + p.b) + q.b, for spans of several steps.
// A span's b is its scan from a zero state; the product of a over a span (q.a) may
// overflow to inf where the loop's states stay finite, so a zero p.b gives q.b exactly,
// as the loop does, instead of inf * 0 = NaN. (The per-step folds use extend instead.)
template <typename TA, typename TB>
__device__ __forceinline__ Pair<TA, TB> compose(Pair<TA, TB> p, Pair<TA, TB> q) {
    Pair<TA, TB> r;
    r.a = q.a * p.a;
    const TB through = q.a * p.b + q.b;
    r.b = is_zero(p.b) ? q.b : through;
    return r;
}

// The map "first p, then the step h -> a * h + b": the sequential loop's own arithmetic
// (an inf or NaN a meets a zero state as in the loop).
template <typename TA, typename TB>
__device__ __forceinline__ Pair<TA, TB> extend(Pair<TA, TB> p, TA a, TB b) {
    Pair<TA, TB> r;
    r.a = a * p.a;
    r.b = a * p.b + b;
    return r;
}

// The state after span p entered with state h: a zero h gives p.b exactly (see compose).
template <typename TA, typename TB>
__device__ __forceinline__ TB apply(Pair<TA, TB> p, TB h) {
    return is_zero(h) ? p.b : p.a * h + p.b;
}

__device__ __forceinline__ float shfl_up(float v, int d) {
    return __shfl_up_sync(LINREC_FULL_MASK, v, d);
}
__device__ __forceinline__ double shfl_up(double v, int d) {
    return __shfl_up_sync(LINREC_FULL_MASK, v, d);
}
template <typename R>
__device__ __forceinline__ cplx<R> shfl_up(cplx<R> v, int d) {
    v.re = shfl_up(v.re, d);
    v.im = shfl_up(v.im, d);
    return v;
}

__device__ __forceinline__ float shfl_idx(float v, int lane) {
    return __shfl_sync(LINREC_FULL_MASK, v, lane);
}
__device__ __forceinline__ double shfl_idx(double v, int lane) {
    return __shfl_sync(LINREC_FULL_MASK, v, lane);
}
template <typename R>
__device__ __forceinline__ cplx<R> shfl_idx(cplx<R> v, int lane) {
    v.re = shfl_idx(v.re, lane);
    v.im = shfl_idx(v.im, lane);
    return v;
}

__device__ __forceinline__ float shfl_xor(float v, int m) {
    return __shfl_xor_sync(LINREC_FULL_MASK, v, m);
}
__device__ __forceinline__ double shfl_xor(double v, int m) {
    return __shfl_xor_sync(LINREC_FULL_MASK, v, m);
}
template <typename R>
__device__ __forceinline__ cplx<R> shfl_xor(cplx<R> v, int m) {
    v.re = shfl_xor(v.re, m);
    v.im = shfl_xor(v.im, m);
    return v;
}

__device__ __forceinline__ float load_volatile(const float* p) {
    return *(const volatile float*)p;
}
__device__ __forceinline__ double load_volatile(const double* p) {
    return *(const volatile double*)p;
}
template <typename R>
__device__ __forceinline__ cplx<R> load_volatile(const cplx<R>* p) {
    cplx<R> v;
    v.re = load_volatile(&p->re);
    v.im = load_volatile(&p->im);
    return v;
}

#endif  // LINREC_SCALAR_CUH
