/* Margin (dilation / erosion by an ellipsoid in mm) on packed masks.
 *
 * A ball of radius r mm on an anisotropic grid is, for each row offset (dk, dj), a run of
 * voxels |di| <= h(dk, dj) along i. Dilation is therefore: dilate the source rows along i by
 * each distinct h (row_dilate, bit shifts across neighbouring words), and OR the dilated rows
 * at every offset (dk, dj) that has that h into the output (or_offsets). OR is
 * order-independent, so every device gives the same bits.
 */

/* dst (box d) = src (box s) dilated along i by h bits (0 <= h <= 31), cut to i < ni. */
KERNEL void row_dilate(GLOBAL uint *dst, int k0, int j0, int w0, int nk, int nj, int nw,
                       GLOBAL const uint *src, int sk0, int sj0, int sw0, int snk, int snj, int snw,
                       int h, int ni)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int K = k0 + k, J = j0 + j, W = w0 + w;
    uint c = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, K, J, W);
    uint p = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, K, J, W - 1);
    uint n = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, K, J, W + 1);
    uint acc = c;
    for (int s = 1; s <= h; ++s)
        acc |= (c << s) | (p >> (32 - s)) | (c >> s) | (n << (32 - s));
    dst[gid] = acc & valid_bits(W, ni);
}

/* out (box o) |= src[K + dk, J + dj, W] for every (dk, dj) pair in offs[0 .. 2*noffs). */
KERNEL void or_offsets(GLOBAL uint *out, int k0, int j0, int w0, int nk, int nj, int nw,
                       GLOBAL const uint *src, int sk0, int sj0, int sw0, int snk, int snj, int snw,
                       GLOBAL const int *offs, int noffs)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int K = k0 + k, J = j0 + j, W = w0 + w;
    uint acc = out[gid];
    for (int q = 0; q < noffs; ++q)
        acc |= fetch_word(src, sk0, sj0, sw0, snk, snj, snw, K + offs[2 * q], J + offs[2 * q + 1], W);
    out[gid] = acc;
}
