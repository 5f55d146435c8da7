/* One axis pass of a separable Gaussian on a dense uchar block (vtkImageGaussianSmooth
 * semantics, gpuseg/ops/smoothing.py): out = (uchar) sum_t weights[p, t] * in[p - radius + t] * in_scale,
 * summed in ascending t in double (no contraction), truncated toward zero as VTK's
 * static_cast<unsigned char>. `weights` holds one normalised row of 2*radius+1 per position p
 * along `axis` (0 k, 1 j, 2 i) of the block; the host clips and renormalises the rows at the
 * grid border as VTK does and leaves 0 where an offset leaves the grid. Offsets outside the
 * block read as 0 (the block is padded by the radius, so they are 0 in the grid too).
 * With thresh >= 0 the result is 1 where the truncated value is >= thresh, else 0.
 * One thread per voxel of the block.
 */
KERNEL void gauss_axis(GLOBAL const uchar *src, GLOBAL uchar *dst, int nk, int nj, int ni, int axis,
                       GLOBAL const double *weights, int radius, int in_scale, int thresh, i64 n)
{
    i64 gid = GLOBAL_ID;
    if (gid >= n) return;
    int i = (int)(gid % ni);
    i64 r = gid / ni;
    int j = (int)(r % nj);
    int k = (int)(r / nj);
    int p = axis == 0 ? k : (axis == 1 ? j : i);
    int len = axis == 0 ? nk : (axis == 1 ? nj : ni);
    i64 stride = axis == 0 ? (i64)nj * ni : (axis == 1 ? (i64)ni : (i64)1);
    int width = 2 * radius + 1;
    GLOBAL const double *wrow = weights + (i64)p * width;
    double sum = 0.0;
    for (int t = 0; t < width; ++t) {
        int q = p - radius + t;
        if (q < 0 || q >= len) continue;
        double w = wrow[t];
        double v = (double)((int)src[gid + (i64)(q - p) * stride] * in_scale);
        sum += w * v;
    }
    uchar o = (uchar)sum;
    if (thresh >= 0) o = (uchar)((int)o >= thresh ? 1 : 0);
    dst[gid] = o;
}
