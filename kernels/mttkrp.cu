// Blocked MTTKRP kernels, compiled at run time by cupy.RawModule (see _mttkrp_cuda.py).
// The GEMMs of the algorithm run on cuBLAS through cupy.matmul; these two
// kernels do the rest (same contracts as kernels/_mttkrp_numba.py).
//
// mttkrp_khatri_rao_t: transposed Khatri-Rao product of K matrices, last fastest,
//   out[r, (i_0 I_1 + i_1) I_2 + ...] = prod_k FT[r, offsets[k] + i_k]
// where FT (R, ldf) holds the transposed factors side by side. One thread per
// output entry (grid-stride loop); consecutive threads write consecutive
// entries of a row, so the stores coalesce; FT is tiny and stays in L1/L2.
//
// mttkrp_multi_ttv: second step of the 2-step MTTKRP,
//   MT[r, i0 + i] += sum_{a < na, b < B} Tm[r, (a ni + i) B + b] KA[r, a0 + a] KB[r, b]
// One warp per output entry (r, i); its lanes split the flattened (a, b)
// range, so for B >= 32 consecutive lanes read consecutive entries of Tm and
// for small B every lane still has work. Sums are kept in double and reduced
// with warp shuffles; MT is double for every input type.

template <typename T>
__global__ void mttkrp_khatri_rao_t(const T* __restrict__ FT, long long ldf,
                                    const long long* __restrict__ dims,
                                    const long long* __restrict__ offsets, int nmats,
                                    long long P, long long R, T* __restrict__ out) {
    const long long total = R * P;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += stride) {
        const long long r = t / P;
        long long rem = t - r * P;
        T v = T(1);
        for (int k = nmats - 1; k >= 0; --k) {
            const long long d = dims[k];
            const long long q = rem / d;
            v *= FT[r * ldf + offsets[k] + (rem - q * d)];
            rem = q;
        }
        out[t] = v;
    }
}

template <typename T>
__global__ void mttkrp_multi_ttv(const T* __restrict__ Tm, long long ncols,
                                 const T* __restrict__ KA, long long A,
                                 const T* __restrict__ KB, long long B, long long a0,
                                 long long na, long long i0, long long ni, long long I,
                                 long long R, double* __restrict__ MT) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (warp >= R * ni) {
        return;  // whole warps leave together: blockDim is a multiple of 32
    }
    const long long r = warp / ni;
    const long long i = warp - r * ni;
    const T* row = Tm + r * ncols;
    const T* ka = KA + r * A + a0;
    const T* kb = KB + r * B;
    double s = 0.0;
    const long long n = na * B;
    for (long long idx = lane; idx < n; idx += 32) {
        const long long a = idx / B;
        const long long b = idx - a * B;
        s += (double)row[(a * ni + i) * B + b] * (double)ka[a] * (double)kb[b];
    }
    for (int off = 16; off > 0; off >>= 1) {
        s += __shfl_down_sync(0xffffffffu, s, off);
    }
    if (lane == 0) {
        MT[r * I + i0 + i] += s;
    }
}

#ifdef TENSORPAR_NVCC_CHECK
template __global__ void mttkrp_khatri_rao_t<float>(const float*, long long, const long long*,
                                                    const long long*, int, long long, long long,
                                                    float*);
template __global__ void mttkrp_khatri_rao_t<double>(const double*, long long, const long long*,
                                                     const long long*, int, long long, long long,
                                                     double*);
template __global__ void mttkrp_multi_ttv<float>(const float*, long long, const float*, long long,
                                                 const float*, long long, long long, long long,
                                                 long long, long long, long long, long long,
                                                 double*);
template __global__ void mttkrp_multi_ttv<double>(const double*, long long, const double*,
                                                  long long, const double*, long long, long long,
                                                  long long, long long, long long, long long,
                                                  long long, double*);
#endif
