/* Nearest-neighbour resampling of a packed mask onto another grid (gpuseg/ops/resample.py,
 * docs/geometry.md). `a` holds the 3x4 affine map from target (i, j, k) to source continuous
 * (i, j, k), row-major (12 doubles, computed once on the host). For each target voxel the
 * source index is p = ((a0*i + a1*j) + a2*k) + a3 per row, evaluated in that order without
 * contraction, rounded half up, floor(p + 0.5), as ITK's nearest-neighbour interpolator does.
 * Source indices outside [0, sn) read as 0. One thread per word of the target box.
 */
KERNEL void resample_nearest(GLOBAL uint *out, int k0, int j0, int w0, int nk, int nj, int nw,
                             GLOBAL const uint *src, int sk0, int sj0, int sw0, int snk_b, int snj_b, int snw_b,
                             GLOBAL const double *a, int sni, int snj, int snk, int ni)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int K = k0 + k, J = j0 + j, W = w0 + w;
    double dj = (double)J, dk = (double)K;
    uint r = 0u;
    for (int b = 0; b < 32; ++b) {
        int I = W * 32 + b;
        if (I >= ni) break;
        double di = (double)I;
        double pi = a[0] * di;
        pi = pi + a[1] * dj;
        pi = pi + a[2] * dk;
        pi = pi + a[3];
        double pj = a[4] * di;
        pj = pj + a[5] * dj;
        pj = pj + a[6] * dk;
        pj = pj + a[7];
        double pk = a[8] * di;
        pk = pk + a[9] * dj;
        pk = pk + a[10] * dk;
        pk = pk + a[11];
        double fi = floor(pi + 0.5), fj = floor(pj + 0.5), fk = floor(pk + 0.5);
        if (fi < 0.0 || fj < 0.0 || fk < 0.0 || fi >= (double)sni || fj >= (double)snj || fk >= (double)snk)
            continue;
        int si = (int)fi, sj = (int)fj, sk = (int)fk;
        uint x = fetch_word(src, sk0, sj0, sw0, snk_b, snj_b, snw_b, sk, sj, si >> 5);
        r |= ((x >> (si & 31)) & 1u) << b;
    }
    out[gid] = r;
}
