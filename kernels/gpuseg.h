/* gpuseg kernel prelude: the only place where OpenCL C and CUDA C differ.
 *
 * Every kernel in this folder is written once, in the subset of C both languages share,
 * using the names defined here. The OpenCL backend compiles "gpuseg.h + kernel" as OpenCL C
 * (PoCL in CI); the CUDA backend compiles the same text as CUDA C (CuPy/NVRTC, and nvcc in
 * the tests). Floating-point contraction is off in both (identical results: docs/architecture.md, invariant 4).
 * The constants shared with Python (OP_*, APPLY_*, KEY_*) are generated from
 * gpuseg/kernels/constants.py and prepended by the registry; the numba twin of this header is
 * kernels/prelude.py.
 *
 * Mask layout (docs/architecture.md, invariant 2): a mask box is (k0, j0, w0, nk, nj, nw) in units of
 * (slices, rows, 32-bit words); its words are a C-contiguous (nk, nj, nw) array; bit b of
 * word w is voxel i = 32*w + b, least significant bit first; bits past ni are zero.
 */
#ifndef GPUSEG_H
#define GPUSEG_H

#if defined(__OPENCL_VERSION__)
  #pragma OPENCL FP_CONTRACT OFF
  #pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
  #pragma OPENCL EXTENSION cl_khr_int64_extended_atomics : enable
  #ifdef cl_khr_fp64
    #pragma OPENCL EXTENSION cl_khr_fp64 : enable
  #endif
  #define KERNEL __kernel
  #define GLOBAL __global
  #define LOCAL __local
  #define DEVICE_FN static inline
  #define GLOBAL_ID ((long)get_global_id(0))
  #define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
  #define POPCOUNT(x) popcount(x)
  #define CLZ(x) clz(x)
  #define ATOMIC_OR(p, v) atomic_or(p, v)
  #define ATOMIC_AND(p, v) atomic_and(p, v)
  #define ATOMIC_ADD(p, v) atomic_add(p, v)
  #define ATOMIC_MIN_U64(p, v) atom_min(p, v)
  #define ATOMIC_MIN_U32(p, v) atomic_min(p, v)
  typedef long i64;
  typedef ulong u64;
#elif defined(__CUDACC__) || defined(__CUDACC_RTC__)
  #define KERNEL extern "C" __global__
  #define GLOBAL
  #define LOCAL __shared__
  #define DEVICE_FN __device__ __forceinline__
  #define GLOBAL_ID ((long long)blockIdx.x * (long long)blockDim.x + (long long)threadIdx.x)
  #define BARRIER() __syncthreads()
  #define POPCOUNT(x) __popc(x)
  #define CLZ(x) __clz((int)(x))
  #define ATOMIC_OR(p, v) atomicOr(p, v)
  #define ATOMIC_AND(p, v) atomicAnd(p, v)
  #define ATOMIC_ADD(p, v) atomicAdd(p, v)
  #define ATOMIC_MIN_U64(p, v) atomicMin((unsigned long long *)(p), (unsigned long long)(v))
  #define ATOMIC_MIN_U32(p, v) atomicMin((unsigned int *)(p), (unsigned int)(v))
  typedef unsigned int uint;
  typedef unsigned short ushort;
  typedef unsigned char uchar;
  typedef long long i64;
  typedef unsigned long long u64;
#else
  #error "gpuseg kernels compile as OpenCL C or CUDA C only"
#endif

/* The word of mask `a` (box k0, j0, w0, nk, nj, nw) at absolute (K, J, W), or 0 outside its box. */
DEVICE_FN uint fetch_word(GLOBAL const uint *a, int k0, int j0, int w0, int nk, int nj, int nw,
                          int K, int J, int W)
{
    int k = K - k0, j = J - j0, w = W - w0;
    if (k < 0 || j < 0 || w < 0 || k >= nk || j >= nj || w >= nw) return 0u;
    return a[((i64)k * nj + j) * nw + w];
}

/* Bits of absolute word W that lie inside the grid (i < ni). */
DEVICE_FN uint valid_bits(int W, int ni)
{
    int rem = ni - W * 32;
    if (rem >= 32) return 0xffffffffu;
    if (rem <= 0) return 0u;
    return (1u << rem) - 1u;
}

/* Bits of absolute word W for voxels ilo <= i < ihi. */
DEVICE_FN uint range_bits(int W, int ilo, int ihi)
{
    return valid_bits(W, ihi) & ~valid_bits(W, ilo);
}

/* Decode thread gid of a one-thread-per-word launch over an (nk, nj, nw) box into the word's
 * (k, j, w) relative to the box. The caller checks gid < nk * nj * nw first. */
DEVICE_FN void decode_word(i64 gid, int nj, int nw, int *k, int *j, int *w)
{
    *w = (int)(gid % nw);
    i64 t = gid / nw;
    *j = (int)(t % nj);
    *k = (int)(t / nj);
}

/* Decode row index r of an (nk, nj) box into (k, j). */
DEVICE_FN void decode_row(i64 r, int nj, int *k, int *j)
{
    *j = (int)(r % nj);
    *k = (int)(r / nj);
}

/* Index of the lowest / highest set bit of a non-zero word. */
DEVICE_FN int lowest_bit(uint x) { return (int)POPCOUNT((x & (~x + 1u)) - 1u); }
DEVICE_FN int highest_bit(uint x) { return 31 - (int)CLZ(x); }

#endif /* GPUSEG_H */
