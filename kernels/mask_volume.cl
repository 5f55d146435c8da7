/* Mask volume (Slicer's Mask volume effect, gpuseg/ops/mask_volume.py). Specialised with
 * -D IMAGE_T=<short|ushort|int|float>. `weight` is a dense uchar block (nk, nj, wni), wni >= ni,
 * over the whole grid: the segment (0/1) for a hard edge, or its Gaussian-smoothed 0..255
 * version for a soft edge. mode: 0 fill outside, 1 fill inside, 2 binary mask (a inside, b outside).
 * Hard edge (soft == 0) selects; soft edge blends in double with w = weight / 255 in Slicer's
 * order (x * w + a * (1 - w) for fill outside), no contraction, and casts to IMAGE_T (truncation
 * toward zero for integers, as numpy's astype). One thread per image voxel.
 */
KERNEL void mask_blend(GLOBAL const IMAGE_T *img, GLOBAL IMAGE_T *out, GLOBAL const uchar *weight, int nj, int ni,
                       int wni, int mode, int soft, double a, double b, i64 n)
{
    i64 gid = GLOBAL_ID;
    if (gid >= n) return;
    i64 r = gid / ni;
    int i = (int)(gid - r * ni);
    uchar m = weight[r * wni + i];
    IMAGE_T x = img[gid];
    if (!soft) {
        int in = m != 0;
        if (mode == 0) out[gid] = in ? x : (IMAGE_T)a;
        else if (mode == 1) out[gid] = in ? (IMAGE_T)a : x;
        else out[gid] = in ? (IMAGE_T)a : (IMAGE_T)b;
        return;
    }
    double w = (double)m / 255.0;
    double v;
    if (mode == 0) v = (double)x * w + a * (1.0 - w);
    else if (mode == 1) v = (double)x * (1.0 - w) + a * w;
    else v = a * w + b * (1.0 - w);
    out[gid] = (IMAGE_T)v;
}

/* Split volume (Slicer's Split volume effect, gpuseg/ops/split_volume.py): one output voxel per
 * thread over an (onk, onj, oni) box whose voxel (0, 0, 0) is image voxel (k0, j0, i0); the box
 * may reach past the image (vtkImageConstantPad). The output is the image where the voxel lies
 * inside the image and inside the segment (bit set in `m`, a packed mask box), `a` elsewhere. */
KERNEL void crop_fill(GLOBAL const IMAGE_T *img, GLOBAL IMAGE_T *out, GLOBAL const uint *m, int mk0, int mj0,
                      int mw0, int mnk, int mnj, int mnw, int nk, int nj, int ni, int k0, int j0, int i0,
                      int onj, int oni, double a, i64 n)
{
    i64 gid = GLOBAL_ID;
    if (gid >= n) return;
    i64 r = gid / oni;
    int I = i0 + (int)(gid - r * oni);
    i64 ok = r / onj;
    int J = j0 + (int)(r - ok * onj);
    int K = k0 + (int)ok;
    IMAGE_T v = (IMAGE_T)a;
    if (K >= 0 && K < nk && J >= 0 && J < nj && I >= 0 && I < ni) {
        uint w = fetch_word(m, mk0, mj0, mw0, mnk, mnj, mnw, K, J, I >> 5);
        if ((w >> (I & 31)) & 1u) v = img[((i64)K * nj + J) * ni + I];
    }
    out[gid] = v;
}
