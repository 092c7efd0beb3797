// Tensor-train core kernels, compiled at run time by cupy.RawModule (see _tt_cuda.py).
//
// tt_hadamard_core: face-splitting product of two TT cores,
//   out[i*s + j, m, k*t + l] = a[i, m, k] * b[j, m, l]
// for a of shape (r, n, q) and b of shape (s, n, t), all C-contiguous. One
// thread per output entry (grid-stride loop); consecutive threads write
// consecutive entries, so the stores coalesce and the kernel runs at memory
// bandwidth. The reads of a and b hit L2: both cores are tiny next to out.

template <typename T>
__global__ void tt_hadamard_core(const T* __restrict__ a, const T* __restrict__ b,
                                 T* __restrict__ out, long long r, long long n, long long q,
                                 long long s, long long t) {
    const long long qt = q * t;
    const long long total = r * s * n * qt;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += stride) {
        long long rest = idx;
        const long long l = rest % t;
        rest /= t;
        const long long k = rest % q;
        rest /= q;
        const long long m = rest % n;
        rest /= n;
        const long long j = rest % s;
        const long long i = rest / s;
        out[idx] = a[(i * n + m) * q + k] * b[(j * n + m) * t + l];
    }
}

#ifdef TENSORPAR_NVCC_CHECK
template __global__ void tt_hadamard_core<float>(const float*, const float*, float*, long long,
                                                 long long, long long, long long, long long);
template __global__ void tt_hadamard_core<double>(const double*, const double*, double*,
                                                  long long, long long, long long, long long,
                                                  long long);
#endif
