/* Bit-packed mask kernels: logical operators across boxes, counts, effective extent,
 * pack / unpack, and display-slice extraction. One thread per output element.
 */

/* OP_* and APPLY_* come from gpuseg/kernels/constants.py (generated preamble). */

/* out[box o] = op(a[box a], b[box b]) for voxels with ilo <= i < ihi, 0 elsewhere;
 * words outside an input's box read as 0. */
KERNEL void logic(GLOBAL uint *out, int k0, int j0, int w0, int nk, int nj, int nw,
                  GLOBAL const uint *a, int ak0, int aj0, int aw0, int ank, int anj, int anw,
                  GLOBAL const uint *b, int bk0, int bj0, int bw0, int bnk, int bnj, int bnw,
                  int op, int ilo, int ihi)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int K = k0 + k, J = j0 + j, W = w0 + w;
    uint x = 0u;
    if (op != OP_CLEAR && op != OP_FILL) x = fetch_word(a, ak0, aj0, aw0, ank, anj, anw, K, J, W);
    uint y = 0u;
    if (op == OP_OR || op == OP_AND || op == OP_ANDNOT || op == OP_XOR)
        y = fetch_word(b, bk0, bj0, bw0, bnk, bnj, bnw, K, J, W);
    uint r;
    switch (op) {
        case OP_COPY: r = x; break;
        case OP_OR: r = x | y; break;
        case OP_AND: r = x & y; break;
        case OP_ANDNOT: r = x & ~y; break;
        case OP_INVERT: r = ~x; break;
        case OP_FILL: r = 0xffffffffu; break;
        case OP_XOR: r = x ^ y; break;
        default: r = 0u; break;
    }
    out[gid] = r & range_bits(W, ilo, ihi);
}

/* Per-row population count: counts[row] = popcount of the row's nw words. */
KERNEL void count_rows(GLOBAL const uint *words, i64 nrows, int nw, GLOBAL uint *counts)
{
    i64 r = GLOBAL_ID;
    if (r >= nrows) return;
    GLOBAL const uint *p = words + r * nw;
    uint c = 0u;
    for (int w = 0; w < nw; ++w) c += (uint)POPCOUNT(p[w]);
    counts[r] = c;
}

/* Per-slice sums of row counts (fixed order: integer, so identical on every device). */
KERNEL void sum_slices(GLOBAL const uint *counts, int nk, int nj, GLOBAL u64 *out)
{
    i64 k = GLOBAL_ID;
    if (k >= nk) return;
    GLOBAL const uint *p = counts + k * nj;
    u64 s = 0;
    for (int j = 0; j < nj; ++j) s += p[j];
    out[k] = s;
}

/* Per-row lowest and highest set bit index (relative to the box's first bit); -1 if empty. */
KERNEL void row_extent(GLOBAL const uint *words, i64 nrows, int nw, GLOBAL int *lo, GLOBAL int *hi)
{
    i64 r = GLOBAL_ID;
    if (r >= nrows) return;
    GLOBAL const uint *p = words + r * nw;
    int first = -1, last = -1;
    for (int w = 0; w < nw; ++w) {
        if (p[w] != 0u) { first = w * 32 + lowest_bit(p[w]); break; }
    }
    if (first >= 0) {
        for (int w = nw - 1; w >= 0; --w) {
            if (p[w] != 0u) { last = w * 32 + highest_bit(p[w]); break; }
        }
    }
    lo[r] = first;
    hi[r] = last;
}

/* Per-slice reduction of row extents: out[k] = (jmin, jmax, imin, imax), all -1 if empty. */
KERNEL void slice_extent(GLOBAL const int *lo, GLOBAL const int *hi, int nk, int nj, GLOBAL int *out)
{
    i64 k = GLOBAL_ID;
    if (k >= nk) return;
    int jmin = -1, jmax = -1, imin = 2147483647, imax = -1;
    for (int j = 0; j < nj; ++j) {
        int a = lo[k * nj + j];
        if (a < 0) continue;
        if (jmin < 0) jmin = j;
        jmax = j;
        int b = hi[k * nj + j];
        if (a < imin) imin = a;
        if (b > imax) imax = b;
    }
    out[4 * k + 0] = jmin;
    out[4 * k + 1] = jmax;
    out[4 * k + 2] = jmin < 0 ? -1 : imin;
    out[4 * k + 3] = imax;
}

/* Pack a dense uint8 array (nk, nj, ni_src), non-zero = set, whose voxel (0,0,0) is the
 * box's first bit, into the box's words. Bits past ni_src are zero. */
KERNEL void pack(GLOBAL const uchar *src, int ni_src, GLOBAL uint *out, int nk, int nj, int nw)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int w = (int)(gid % nw);
    i64 row = gid / nw;
    int i0 = w * 32;
    int cnt = ni_src - i0 < 32 ? ni_src - i0 : 32;
    GLOBAL const uchar *p = src + row * ni_src + i0;
    uint bits = 0u;
    for (int b = 0; b < cnt; ++b) bits |= ((uint)(p[b] != 0)) << b;
    out[gid] = bits;
}

/* Unpack the box's words into a dense uint8 array (nk, nj, ni_dst) of 0/1. One thread per word. */
KERNEL void unpack(GLOBAL const uint *words, int nk, int nj, int nw, GLOBAL uchar *dst, int ni_dst)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int w = (int)(gid % nw);
    i64 row = gid / nw;
    int i0 = w * 32;
    int cnt = ni_dst - i0 < 32 ? ni_dst - i0 : 32;
    uint x = words[gid];
    GLOBAL uchar *p = dst + row * ni_dst + i0;
    for (int b = 0; b < cnt; ++b) p[b] = (uchar)((x >> b) & 1u);
}

/* Display slice over the full grid: axis 0 -> (nj, ni) at k=index, axis 1 -> (nk, ni) at
 * j=index, axis 2 -> (nk, nj) at i=index. Voxels outside the box are 0. One thread per pixel. */
KERNEL void extract_slice(GLOBAL const uint *words, int k0, int j0, int w0, int nk, int nj, int nw,
                          int axis, int index, int grid_nk, int grid_nj, int grid_ni, GLOBAL uchar *out)
{
    i64 gid = GLOBAL_ID;
    int rows, cols;
    if (axis == 0) { rows = grid_nj; cols = grid_ni; }
    else if (axis == 1) { rows = grid_nk; cols = grid_ni; }
    else { rows = grid_nk; cols = grid_nj; }
    if (gid >= (i64)rows * cols) return;
    int r = (int)(gid / cols), c = (int)(gid % cols);
    int K, J, I;
    if (axis == 0) { K = index; J = r; I = c; }
    else if (axis == 1) { K = r; J = index; I = c; }
    else { K = r; J = c; I = index; }
    uint x = fetch_word(words, k0, j0, w0, nk, nj, nw, K, J, I >> 5);
    out[gid] = (uchar)((x >> (I & 31)) & 1u);
}

/* In place: words of mask `m` (box m) inside the block's box (which must lie inside box m)
 * become op(m, block). One thread per block word. */
KERNEL void apply_block(GLOBAL uint *m, int mk0, int mj0, int mw0, int mnk, int mnj, int mnw,
                        GLOBAL const uint *blk, int k0, int j0, int w0, int nk, int nj, int nw, int op)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    i64 idx = ((i64)(k0 + k - mk0) * mnj + (j0 + j - mj0)) * mnw + (w0 + w - mw0);
    uint x = m[idx], y = blk[gid];
    uint r = op == APPLY_OR ? (x | y) : op == APPLY_ANDNOT ? (x & ~y) : op == APPLY_XOR ? (x ^ y) : y;
    m[idx] = r;
}
