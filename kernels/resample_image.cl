/* Linear (trilinear) resampling of an image onto another grid (gpuseg/ops/resample.py,
 * docs/geometry.md). Specialised with -D IMAGE_T=<short|ushort|int|float>; the output has the
 * input's type. `a` is the 3x4 target-to-source index map of resample.cl, evaluated in the same
 * order. A target voxel whose source index p lies outside [-0.5, n - 0.5] on an axis gets
 * `background`; otherwise p is clamped to [0, n - 1] (the edge half-voxel repeats the edge
 * voxel), base = floor(p), d = p - base, the upper neighbour is clamped to n - 1, and the value
 * is interpolated along i, then j, then k in double, in ITK LinearInterpolateImageFunction's
 * order (v0 + (v1 - v0) * d). Integer outputs are rounded half up, floor(v + 0.5), as
 * vtkImageReslice rounds; float outputs are the nearest float. One thread per target voxel.
 */
KERNEL void resample_linear(GLOBAL const IMAGE_T *img, GLOBAL IMAGE_T *out, GLOBAL const double *a,
                            int sni, int snj, int snk, int ni, int nj, double background, int is_int, i64 n)
{
    i64 gid = GLOBAL_ID;
    if (gid >= n) return;
    i64 row = gid / ni;
    int I = (int)(gid - row * ni);
    int J = (int)(row % nj);
    int K = (int)(row / nj);
    double di = (double)I, dj = (double)J, dk = (double)K;
    double p[3];
    for (int r = 0; r < 3; ++r) {
        double s = a[4 * r] * di;
        s = s + a[4 * r + 1] * dj;
        s = s + a[4 * r + 2] * dk;
        p[r] = s + a[4 * r + 3];
    }
    int sn[3] = {sni, snj, snk};
    int lo[3], hi[3];
    double d[3];
    for (int r = 0; r < 3; ++r) {
        double top = (double)sn[r] - 0.5;
        if (!(p[r] >= -0.5 && p[r] <= top)) {
            double v = background;
            out[gid] = is_int ? (IMAGE_T)floor(v + 0.5) : (IMAGE_T)v;
            return;
        }
        double q = p[r] < 0.0 ? 0.0 : p[r];
        double last = (double)(sn[r] - 1);
        q = q > last ? last : q;
        double f = floor(q);
        lo[r] = (int)f;
        hi[r] = lo[r] + 1 < sn[r] ? lo[r] + 1 : lo[r];
        d[r] = q - f;
    }
    i64 sj = (i64)sni, sk = (i64)sni * snj;
    double v000 = (double)img[lo[2] * sk + lo[1] * sj + lo[0]];
    double v100 = (double)img[lo[2] * sk + lo[1] * sj + hi[0]];
    double v010 = (double)img[lo[2] * sk + hi[1] * sj + lo[0]];
    double v110 = (double)img[lo[2] * sk + hi[1] * sj + hi[0]];
    double v001 = (double)img[hi[2] * sk + lo[1] * sj + lo[0]];
    double v101 = (double)img[hi[2] * sk + lo[1] * sj + hi[0]];
    double v011 = (double)img[hi[2] * sk + hi[1] * sj + lo[0]];
    double v111 = (double)img[hi[2] * sk + hi[1] * sj + hi[0]];
    double x00 = v000 + (v100 - v000) * d[0];
    double x10 = v010 + (v110 - v010) * d[0];
    double xx0 = x00 + (x10 - x00) * d[1];
    double x01 = v001 + (v101 - v001) * d[0];
    double x11 = v011 + (v111 - v011) * d[0];
    double xx1 = x01 + (x11 - x01) * d[1];
    double v = xx0 + (xx1 - xx0) * d[2];
    out[gid] = is_int ? (IMAGE_T)floor(v + 0.5) : (IMAGE_T)v;
}
