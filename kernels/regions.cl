/* neighborhood_threshold: the "inside" test of VTK's vtkImageThresholdConnectivity with a
 * neighbourhood (Slicer's Flood filling; docs in gpuseg/ops/regions.py). A voxel is set when
 * lo <= v <= hi and at least `fraction` of the voxels of the ellipsoid `offs` (n_off (dk, dj, di)
 * triples, the voxel itself included) that lie inside the grid are in range too:
 * !((double)in_range < (double)total * fraction), VTK's comparison. AND mask if use_mask.
 * Specialised with -D IMAGE_T=<short|ushort|int|float>. One thread per output word.
 */
KERNEL void neighborhood_threshold(GLOBAL const IMAGE_T *img, int img_nj, int ni,
                                   int bk0, int bk1, int bj0, int bj1, int bi0, int bi1,
                                   GLOBAL uint *out, int k0, int j0, int w0, int nk, int nj, int nw,
                                   IMAGE_T lo, IMAGE_T hi, GLOBAL const int *offs, int n_off, double fraction,
                                   GLOBAL const uint *mask, int mk0, int mj0, int mw0, int mnk, int mnj, int mnw,
                                   int use_mask)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int K = k0 + k, J = j0 + j, W = w0 + w;
    uint m = valid_bits(W, ni);
    if (use_mask) m &= fetch_word(mask, mk0, mj0, mw0, mnk, mnj, mnw, K, J, W);
    uint bits = 0u;
    for (int b = 0; b < 32; ++b) {
        if (((m >> b) & 1u) == 0u) continue;
        int I = W * 32 + b;
        IMAGE_T v = img[((i64)K * img_nj + J) * ni + I];
        if (!((v >= lo) && (v <= hi))) continue;
        int total = 0, good = 0;
        for (int q = 0; q < n_off; ++q) {
            int kk = K + offs[3 * q], jj = J + offs[3 * q + 1], ii = I + offs[3 * q + 2];
            if (kk < bk0 || kk >= bk1 || jj < bj0 || jj >= bj1 || ii < bi0 || ii >= bi1) continue;
            total += 1;
            IMAGE_T u = img[((i64)kk * img_nj + jj) * ni + ii];
            good += ((u >= lo) && (u <= hi)) ? 1 : 0;
        }
        if (!((double)good < (double)total * fraction)) bits |= 1u << b;
    }
    out[gid] = bits;
}
