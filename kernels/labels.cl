/* Labelmap layers <-> packed masks. Specialised with -D LABEL_T=<uchar|ushort>.
 *
 * A layer is a dense (nk, nj, ni) array over an output box (ok0, oj0, oi0) of the grid.
 * paint_label writes `value` at every set voxel of a mask that falls inside the box.
 * label_conflicts counts the set voxels of a mask whose layer voxel is already non-zero
 * (so a segment is put on a layer only where it overlaps nothing). One thread per mask word.
 */

KERNEL void paint_label(GLOBAL const uint *words, int k0, int j0, int w0, int nk, int nj, int nw,
                        GLOBAL LABEL_T *out, int ok0, int oj0, int oi0, int onk, int onj, int oni,
                        int value)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    uint x = words[gid];
    if (x == 0u) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int W = w0 + w, J = j0 + j - oj0, K = k0 + k - ok0;
    if (K < 0 || J < 0 || K >= onk || J >= onj) return;
    GLOBAL LABEL_T *row = out + ((i64)K * onj + J) * oni;
    while (x != 0u) {
        int b = lowest_bit(x);
        x &= x - 1u;
        int I = W * 32 + b - oi0;
        if (I >= 0 && I < oni) row[I] = (LABEL_T)value;
    }
}

KERNEL void label_conflicts(GLOBAL const uint *words, int k0, int j0, int w0, int nk, int nj, int nw,
                            GLOBAL const LABEL_T *out, int ok0, int oj0, int oi0, int onk, int onj, int oni,
                            GLOBAL uint *count)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    uint x = words[gid];
    if (x == 0u) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int W = w0 + w, J = j0 + j - oj0, K = k0 + k - ok0;
    if (K < 0 || J < 0 || K >= onk || J >= onj) return;
    GLOBAL const LABEL_T *row = out + ((i64)K * onj + J) * oni;
    uint c = 0u;
    while (x != 0u) {
        int b = lowest_bit(x);
        x &= x - 1u;
        int I = W * 32 + b - oi0;
        if (I >= 0 && I < oni && row[I] != 0) c += 1u;
    }
    if (c) ATOMIC_ADD(count, c);
}
