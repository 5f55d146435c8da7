"""Slicer's automatic threshold methods (Threshold effect, "Auto"), computed as Slicer computes
them: vtkITKImageThresholdCalculator builds ITK's 64-bin histogram of the source image
(ImageToHistogramFilter, automatic minimum and maximum, the maximum raised by a marginal
(max - min) / 64 / 100) and runs ITK's histogram threshold calculators on it.

The histogram is counted on the device (kernel ``edge_histogram``, with the bin edges ITK
computes: a float32 bin width, bin minima ``min + float32(j * width)``); the calculators run
on its 64 counts on the host, re-implemented here from their published definitions in the same
order of operations as ITK's, so that the thresholds equal ITK's (SimpleITK's
``*ThresholdImageFilter`` with 64 bins is the reference in the tests, docs/testing.md). Every
image type is supported (int16, uint16, int32, float32).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..image import Image
from ..kernels.histogram import EDGE_HISTOGRAM
from ..mask import Mask

__all__ = ["SLICER_METHODS", "NBINS", "itk_histogram", "itk_threshold", "image_range"]

#: Slicer's AutoThresholdMethod values (its combo box offers all but INTERMODES and LI)
SLICER_METHODS = ("OTSU", "HUANG", "ISO_DATA", "KITTLER_ILLINGWORTH", "MAXIMUM_ENTROPY", "MOMENTS",
                  "RENYI_ENTROPY", "SHANBHAG", "TRIANGLE", "YEN", "INTERMODES", "LI")
#: vtkITKImageThresholdCalculator's histogram size
NBINS = 64
_EPS = float(np.finfo(np.float64).eps)


def image_range(image: Image) -> tuple[float, float]:
    """The image's smallest and largest value (NaN ignored), computed on the device."""
    from .stats import segment_statistics

    st = segment_statistics(Mask.full(image.geometry, backend=image.backend), image, percentiles=())
    if st["min"] is None:
        raise InvalidInputError("the image has no finite values: nothing to threshold")
    return float(st["min"]), float(st["max"])


def itk_bin_edges(vmin: float, vmax: float, nbins: int = NBINS) -> tuple[np.ndarray, np.ndarray]:
    """ITK's bin minima and maxima for automatic bounds ``vmin``, ``vmax`` (float64 arrays)."""
    upper = vmax + ((vmax - vmin) / nbins) / 100.0
    width = np.float32(np.float32(upper) - np.float32(vmin)) / np.float32(nbins)
    width = np.float32(width)
    mins = np.array([vmin + float(np.float32(np.float32(j) * width)) for j in range(nbins)])
    maxs = np.array([vmin + float(np.float32(np.float32(j + 1) * width)) for j in range(nbins)])
    maxs[-1] = upper
    return mins, maxs


def itk_histogram(image: Image, nbins: int = NBINS):
    """``(counts, mins, maxs)``: ITK's histogram of the whole image (counts int64)."""
    vmin, vmax = image_range(image)
    mins, maxs = itk_bin_edges(vmin, vmax, nbins)
    b = image.backend
    edges = np.concatenate([mins, maxs[-1:]])
    hist = b.zeros((nbins,), np.uint32, what="histogram")
    full = Mask.full(image.geometry, backend=b)
    gk, gj, gi = image.shape
    b.run(EDGE_HISTOGRAM, full, image.data, gj, gi, b.asarray(edges), nbins, hist)
    return b.to_host(hist).astype(np.int64), mins, maxs


class _Hist:
    """The histogram as ITK's calculators see it."""

    def __init__(self, counts, mins, maxs) -> None:
        self.f = [int(c) for c in counts]
        self.mins = [float(v) for v in mins]
        self.maxs = [float(v) for v in maxs]
        self.n = len(self.f)
        self.total = sum(self.f)

    def centre(self, i: int) -> float:
        return (self.mins[i] + self.maxs[i]) / 2.0

    def index(self, v: float) -> int | None:
        """Histogram::GetIndex (clipping at the ends): the bin holding ``v``, None outside."""
        if v < self.mins[0]:
            return None
        if v >= self.maxs[-1]:
            return self.n - 1 if v == self.maxs[-1] else None
        lo, hi = 0, self.n - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if v >= self.mins[mid]:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def quantile(self, p: float) -> float:
        """Histogram::Quantile of dimension 0."""
        total = float(self.total)
        cum = 0.0
        if p < 0.5:
            n, pn = 0, 0.0
            while True:
                fn = float(self.f[n])
                cum += fn
                prev, pn = pn, cum / total
                n += 1
                if not (n < self.n and pn < p):
                    break
            lo, hi = self.mins[n - 1], self.maxs[n - 1]
            return lo + ((p - prev) / (fn / total)) * (hi - lo)
        n, m, pn = self.n - 1, 0, 1.0
        while True:
            fn = float(self.f[n])
            cum += fn
            prev, pn = pn, 1.0 - cum / total
            n -= 1
            m += 1
            if not (m < self.n and pn > p):
                break
        lo, hi = self.mins[n + 1], self.maxs[n + 1]
        return hi - ((prev - p) / (fn / total)) * (hi - lo)


def _ulps_close(a: float, b: float) -> bool:
    """itk::Math::FloatAlmostEqual(a, b, maxUlps=1) for doubles."""
    if abs(a - b) <= 0.1 * _EPS:
        return True
    if math.copysign(1.0, a) != math.copysign(1.0, b):
        return False
    ia = int(np.array(a, np.float64).view(np.int64))
    ib = int(np.array(b, np.float64).view(np.int64))
    return abs(ia - ib) <= 1


def _otsu(h: _Hist) -> float:
    n, N = h.n, h.total
    g = 0.0
    for i in range(n):
        g += h.centre(i) * float(h.f[i])
    g /= float(N)
    t = 0
    cf0 = h.f[0]
    cf1 = N - cf0
    cm0 = h.centre(0) if cf0 > 0 else 0.0
    cm1 = (g * float(N) - cm0 * float(cf0)) / float(cf1) if cf1 > 0 else 0.0
    best = (float(cf0) * (cm0 * cm0) + float(cf1) * (cm1 * cm1)) / float(N)
    arg = 0
    while t < n - 2:
        t += 1
        old_m, old_f = cm0, cf0
        cf0 += h.f[t]
        cm0 = (old_m * float(old_f) + h.centre(t) * float(h.f[t])) / float(cf0) if cf0 > 0 else 0.0
        cf1 = N - cf0
        cm1 = g * float(N)
        cm1 -= cm0 * float(cf0)
        cm1 = cm1 / float(cf1) if cf1 > 0 else 0.0
        var = (float(cf0) * (cm0 * cm0) + float(cf1) * (cm1 * cm1)) / float(N)
        if var > best and not _ulps_close(best, var):
            best, arg = var, t
    return h.maxs[arg]


def _huang(h: _Hist) -> float:
    n = h.n
    first = 0
    while first < n and h.f[first] == 0:
        first += 1
    last = n - 1
    while last > first and h.f[last] == 0:
        last -= 1
    S = [0.0] * (last + 1)
    W = [0.0] * (last + 1)
    S[0] = float(h.f[0])
    for i in range(max(1, first), last + 1):
        S[i] = S[i - 1] + h.f[i]
        W[i] = W[i - 1] + h.centre(i) * h.f[i]
    C = float(last - first)
    smu = [0.0] * (last + 1 - first)
    for i in range(1, len(smu)):
        mu = 1.0 / (1.0 + i / C)
        smu[i] = -mu * math.log(mu) - (1.0 - mu) * math.log(1.0 - mu)
    best_t, best_e = 0, float(np.finfo(np.float64).max)
    for t in range(first, last):
        e = 0.0
        mu_idx = h.index(math.floor(W[t] / S[t] + 0.5))
        if mu_idx is None:
            continue
        for i in range(first, t + 1):
            e += smu[abs(i - mu_idx)] * h.f[i]
        mu_idx = h.index(math.floor((W[last] - W[t]) / (S[last] - S[t]) + 0.5))
        if mu_idx is None:
            raise InvalidInputError("Huang threshold: histogram lookup failed")
        for i in range(t + 1, last + 1):
            e += smu[abs(i - mu_idx)] * h.f[i]
        if best_e > e:
            best_e, best_t = e, t
    return h.centre(best_t)


def _iso_data(h: _Hist) -> float:
    n = h.n
    pos = 0
    while True:
        for i in range(pos, n):
            if h.f[i] > 0:
                pos = i
                break
        else:
            pos = n
        if pos >= n:
            return sum(float(v) for v in h.f) / float(h.total)  # ITK's Histogram::Mean (sic)
        l = totl = 0.0
        for i in range(0, pos + 1):
            totl += float(h.f[i])
            l += h.centre(i) * float(h.f[i])
        hh = toth = 0.0
        for i in range(pos + 1, n):
            toth += float(h.f[i])
            hh += h.centre(i) * float(h.f[i])
        if totl > _EPS and toth > _EPS:
            l /= totl
            hh /= toth
            if h.centre(pos) >= (l + hh) * 0.5:
                return h.centre(pos)
        pos += 1


def _kittler(h: _Hist) -> float:
    n = h.n

    def A(j):
        x = 0.0
        for i in range(j + 1):
            x += float(h.f[i])
        return x

    def B(j):
        x = 0.0
        for i in range(j + 1):
            x += h.centre(i) * float(h.f[i])
        return x

    def C(j):
        x = 0.0
        for i in range(j + 1):
            c = h.centre(i)
            x += c * c * float(h.f[i])
        return x

    s = 0.0
    for i in range(n):
        s += h.centre(i) * h.f[i]
    t = h.index(s / float(h.total))
    prev = -2
    As1, Bs1, Cs1 = A(n - 1), B(n - 1), C(n - 1)
    while t != prev:
        At, Bt, Ct = A(t), B(t), C(t)
        if abs(At) < _EPS:
            raise InvalidInputError("Kittler-Illingworth threshold did not converge (At = 0)")
        mu = Bt / At
        if abs(As1 - At) < _EPS:
            break
        nu = (Bs1 - Bt) / (As1 - At)
        p = At / As1
        q = (As1 - At) / As1
        sigma2 = Ct / At - (mu * mu)
        tau2 = (Cs1 - Ct) / (As1 - At) - (nu * nu)
        if sigma2 < _EPS or abs(tau2) < _EPS or abs(p) < _EPS:
            raise InvalidInputError("Kittler-Illingworth threshold did not converge (a class has no spread)")
        w0 = 1.0 / sigma2 - 1.0 / tau2
        w1 = mu / sigma2 - nu / tau2
        w2 = (mu * mu) / sigma2 - (nu * nu) / tau2 + math.log10((sigma2 * (q * q)) / (tau2 * p * p))
        sq = w1 * w1 - w0 * w2
        if sq < _EPS:
            break
        if abs(w0) < _EPS:
            idx = h.index(-w2 / w1)
        else:
            prev = t
            temp = (w1 + math.sqrt(sq)) / w0
            if math.isnan(temp):
                t = prev
                break
            idx = h.index(temp)
        if idx is None:
            raise InvalidInputError("Kittler-Illingworth threshold: histogram lookup failed")
        t = idx
    return h.centre(t)


def _normalised(h: _Hist):
    norm = [float(v) / h.total for v in h.f]
    P1 = [0.0] * h.n
    P2 = [0.0] * h.n
    P1[0] = norm[0]
    P2[0] = 1.0 - P1[0]
    for i in range(1, h.n):
        P1[i] = P1[i - 1] + norm[i]
        P2[i] = 1.0 - P1[i]
    first = 0
    for i in range(h.n):
        if not abs(P1[i]) < _EPS:
            first = i
            break
    last = h.n - 1
    for i in range(h.n - 1, first - 1, -1):
        if not abs(P2[i]) < _EPS:
            last = i
            break
    return norm, P1, P2, first, last


def _max_entropy_index(h, norm, P1, P2, first, last, tol):
    best, t = float(np.finfo(np.float64).tiny), 0
    for it in range(first, last + 1):
        eb = 0.0
        for i in range(it + 1):
            if h.f[i] != 0:
                x = norm[i] / P1[it]
                eb -= x * math.log(x)
        eo = 0.0
        for i in range(it + 1, h.n):
            if h.f[i] != 0:
                x = norm[i] / P2[it]
                eo -= x * math.log(x)
        tot = eb + eo
        if best < tot - tol:
            best, t = tot, it
    return t


def _maximum_entropy(h: _Hist) -> float:
    norm, P1, P2, first, last = _normalised(h)
    return h.centre(_max_entropy_index(h, norm, P1, P2, first, last, 0.00001))


def _renyi(h: _Hist) -> float:
    norm, P1, P2, first, last = _normalised(h)
    t2 = _max_entropy_index(h, norm, P1, P2, first, last, 0.0)

    def renyi(alpha, start):
        term = 1.0 / (1.0 - alpha)
        best, t = start, 0
        for it in range(first, last + 1):
            eb = eo = 0.0
            for i in range(it + 1):
                eb += math.sqrt(norm[i] / P1[it]) if alpha == 0.5 else (norm[i] / P1[it]) ** 2
            for i in range(it + 1, h.n):
                eo += math.sqrt(norm[i] / P2[it]) if alpha == 0.5 else (norm[i] / P2[it]) ** 2
            prod = eb * eo
            tot = term * math.log(prod) if prod > 0.0 else 0.0
            if tot > best:
                best, t = tot, it
        return t

    t1 = renyi(0.5, float(np.finfo(np.float64).tiny))
    t3 = renyi(2.0, 0.0)
    if t2 < t1:
        t1, t2 = t2, t1
    if t3 < t2:
        t2, t3 = t3, t2
    if t2 < t1:
        t1, t2 = t2, t1
    if abs(t1 - t2) <= 5.0:
        b1, b2, b3 = (1.0, 2.0, 1.0) if abs(t2 - t3) <= 5.0 else (0.0, 1.0, 3.0)
    else:
        b1, b2, b3 = (3.0, 1.0, 0.0) if abs(t2 - t3) <= 5.0 else (1.0, 2.0, 1.0)
    omega = P1[t3] - P1[t1]
    opt = float(t1) * (P1[t1] + 0.25 * omega * b1) + float(t2) * 0.25 * omega * b2 \
        + float(t3) * (P2[t3] + 0.25 * omega * b3)
    return h.centre(int(opt))


def _shanbhag(h: _Hist) -> float:
    norm, P1, P2, first, last = _normalised(h)
    best, t = float(np.finfo(np.float64).max), 0
    for it in range(first, last + 1):
        eb = 0.0
        term = 0.5 / P1[it]
        for i in range(1, it + 1):
            eb -= norm[i] * math.log(1.0 - term * P1[i - 1])
        eb *= term
        eo = 0.0
        term = 0.5 / P2[it]
        for i in range(it + 1, h.n):
            eo -= norm[i] * math.log(1.0 - term * P2[i])
        eo *= term
        tot = abs(eb - eo)
        if tot < best:
            best, t = tot, it
    return h.centre(t)


def _triangle(h: _Hist) -> float:
    n = h.n
    mx, mx_i = float(np.finfo(np.float64).tiny), 0
    for j in range(n):
        if h.f[j] > mx:
            mx_i, mx = j, float(h.f[j])
    one = h.index(h.quantile(0.01))
    nn = h.index(h.quantile(0.99))
    tri = [0.0] * n
    if abs(float(np.float32(mx_i) - np.float32(one))) > abs(float(np.float32(mx_i) - np.float32(nn))):
        slope = mx / (mx_i - one)
        for k in range(one, mx_i):
            line = float(np.float32(slope * (k - one)))
            tri[k] = line - h.f[k]
        seg = tri[one:mx_i]
        t = one + (int(np.argmax(seg)) if seg else 0)
    else:
        slope = -mx / (nn - mx_i)
        for k in range(mx_i, nn):
            line = float(np.float32(slope * (k - mx_i) + mx))
            tri[k] = line - h.f[k]
        seg = tri[mx_i:nn]
        t = mx_i + (int(np.argmax(seg)) if seg else 0)
    return h.centre(t + 1)


def _yen(h: _Hist) -> float:
    n = h.n
    norm = [float(v) / h.total for v in h.f]
    P1 = [0.0] * n
    P1[0] = norm[0]
    for i in range(1, n):
        P1[i] = P1[i - 1] + norm[i]
    P1s = [0.0] * n
    P1s[0] = norm[0] * norm[0]
    for i in range(1, n):
        P1s[i] = P1s[i - 1] + norm[i] * norm[i]
    P2s = [0.0] * n
    for i in range(n - 2, -1, -1):
        P2s[i] = P2s[i + 1] + norm[i + 1] * norm[i + 1]
    best, t = -float(np.finfo(np.float64).max), 0
    for it in range(n):
        a = P1s[it] * P2s[it]
        c = P1[it] * (1.0 - P1[it])
        crit = -1.0 * (math.log(a) if a > 0.0 else 0.0) + 2 * (math.log(c) if c > 0.0 else 0.0)
        if crit > best:
            best, t = crit, it
    return h.centre(t)


def _moments(h: _Hist) -> float:
    total = float(h.total)
    histo = [float(v) / total for v in h.f]
    m1 = m2 = m3 = 0.0
    for i in range(h.n):
        m = h.centre(i)
        m1 += m * histo[i]
        m2 += m * m * histo[i]
        m3 += m * m * m * histo[i]
    cd = 1.0 * m2 - m1 * m1
    c0 = (-m2 * m2 + m1 * m3) / cd
    c1 = (1.0 * -m3 + m2 * m1) / cd
    z0 = 0.5 * (-c1 - math.sqrt(c1 * c1 - 4.0 * c0))
    z1 = 0.5 * (-c1 + math.sqrt(c1 * c1 - 4.0 * c0))
    p0 = (z1 - m1) / (z1 - z0)
    s, t = 0.0, 0
    for i in range(h.n):
        s += histo[i]
        if s > p0:
            t = i
            break
    return h.centre(t)


def _bimodal(y) -> bool:
    modes = 0
    for k in range(1, len(y) - 1):
        if y[k - 1] < y[k] and y[k + 1] < y[k]:
            modes += 1
            if modes > 2:
                return False
    return modes == 2


def _intermodes(h: _Hist, max_iterations: int = 10000) -> float:
    y = [float(v) for v in h.f]
    it = 0
    while not _bimodal(y):
        prev = cur = 0.0
        nxt = y[0]
        for i in range(len(y) - 1):
            prev, cur, nxt = cur, nxt, y[i + 1]
            y[i] = (prev + cur + nxt) / 3.0
        y[-1] = (cur + nxt) / 3.0
        it += 1
        if it > max_iterations:
            raise InvalidInputError("Intermodes threshold: the histogram did not become bimodal")
    tt = 0
    for i in range(1, len(y) - 1):
        if y[i - 1] < y[i] and y[i + 1] < y[i]:
            tt += i
    return h.centre(tt // 2)


def _li(h: _Hist) -> float:
    bin_min = min(h.mins[0], 0.0)
    mean = 0.0
    for i in range(h.n):
        mean += h.centre(i) * h.f[i]
    mean /= h.total
    new = mean
    while True:
        old = new
        idx = h.index(float(int(old + 0.5)))
        if idx is None:
            break
        ht = idx
        sb = 0.0
        nb = 0
        for i in range(ht + 1):
            sb += h.centre(i) * h.f[i]
            nb += h.f[i]
        mb = 0.0 if nb == 0 else sb / float(nb)
        so = 0.0
        no = 0
        for i in range(ht + 1, h.n):
            so += h.centre(i) * h.f[i]
            no += h.f[i]
        mo = 0.0 if no == 0 else so / float(no)
        mb -= bin_min
        mo -= bin_min
        temp = (mb - mo) / (math.log(mb) - math.log(mo))
        new = float(int(temp - 0.5)) if temp < -_EPS else float(int(temp + 0.5))
        new += bin_min
        if not abs(new - old) > 0.5:
            break
    return h.centre(ht)


_CALCULATORS = {"OTSU": _otsu, "HUANG": _huang, "ISO_DATA": _iso_data, "KITTLER_ILLINGWORTH": _kittler,
                "MAXIMUM_ENTROPY": _maximum_entropy, "MOMENTS": _moments, "RENYI_ENTROPY": _renyi,
                "SHANBHAG": _shanbhag, "TRIANGLE": _triangle, "YEN": _yen, "INTERMODES": _intermodes, "LI": _li}


def itk_threshold(image: Image, method: str = "OTSU") -> float:
    """The threshold value of Slicer's auto-threshold ``method`` (one of :data:`SLICER_METHODS`)
    for the whole image, as a float64 (vtkITKImageThresholdCalculator's output type)."""
    m = str(method).upper()
    if m not in _CALCULATORS:
        raise InvalidInputError(f"unknown auto-threshold method {method!r}; choose one of {', '.join(SLICER_METHODS)}")
    counts, mins, maxs = itk_histogram(image)
    h = _Hist(counts, mins, maxs)
    if h.total == 0:
        raise InvalidInputError("the image has no values to threshold")
    try:
        return float(_CALCULATORS[m](h))
    except (ZeroDivisionError, ValueError) as exc:  # e.g. a constant image: no two classes
        raise InvalidInputError(f"auto-threshold {m} is undefined for this image's histogram ({exc})") from None
