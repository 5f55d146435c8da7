/* threshold: out = (lo <= image <= hi) [AND mask], packed 32 voxels per word.
 * Specialised with -D IMAGE_T=<short|ushort|int|float>. NaN is never inside the range,
 * because every comparison with NaN is false. One thread per output word.
 */
KERNEL void threshold(GLOBAL const IMAGE_T *img, int img_nj, int ni,
                      GLOBAL uint *out, int k0, int j0, int w0, int nk, int nj, int nw,
                      IMAGE_T lo, IMAGE_T hi,
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
    if (m != 0u) {
        int i0 = W * 32;
        int cnt = ni - i0 < 32 ? ni - i0 : 32;
        GLOBAL const IMAGE_T *row = img + ((i64)K * img_nj + J) * ni + i0;
        for (int b = 0; b < cnt; ++b) {
            IMAGE_T v = row[b];
            bits |= ((uint)((v >= lo) && (v <= hi))) << b;
        }
        bits &= m;
    }
    out[gid] = bits;
}
