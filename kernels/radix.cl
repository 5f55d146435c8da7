/* key_histogram: a 16-bit digit histogram of the order-preserving uint32 keys of 32-bit values
 * under a mask (exact medians and percentiles of int32/float32 images, gpuseg/ops/stats.py).
 * img holds the values' bits; key = bits ^ 0x80000000 for int32, and for float32 the same for
 * positive values and ~bits for negative ones (NaN skipped). Counts digit (key >> shift) & 0xFFFF
 * of the voxels whose high digit (key >> 16) equals prefix when use_prefix.
 */
KERNEL void key_histogram(GLOBAL const uint *words, int k0, int j0, int w0, int nk, int nj, int nw,
                          GLOBAL const uint *img, int img_nj, int ni, int is_float, int shift, i64 prefix,
                          int use_prefix, GLOBAL uint *hist)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)nk * nj) return;
    int k, j;
    decode_row(r, nj, &k, &j);
    GLOBAL const uint *row = words + r * nw;
    GLOBAL const uint *irow = img + ((i64)(k0 + k) * img_nj + (j0 + j)) * ni;
    for (int w = 0; w < nw; ++w) {
        uint x = row[w];
        while (x != 0u) {
            int b = lowest_bit(x);
            x &= x - 1u;
            uint u = irow[(w0 + w) * 32 + b];
            uint key;
            if (is_float) {
                if ((u & 0x7FFFFFFFu) > 0x7F800000u) continue;
                key = (u & 0x80000000u) ? ~u : (u ^ 0x80000000u);
            } else {
                key = u ^ 0x80000000u;
            }
            if (use_prefix && (i64)(key >> 16) != prefix) continue;
            ATOMIC_ADD(&hist[(key >> shift) & 0xFFFFu], 1u);
        }
    }
}
