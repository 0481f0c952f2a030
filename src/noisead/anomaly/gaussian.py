"""Per-position multivariate Gaussians, fitted by streaming sums (PaDiM's statistics).

Each embedding vector belongs to a *position class*. In the thesis, a class is a pixel
position inside the P x P patch (P^2 Gaussians). Because the extractor is convolutional
and patches lie on the 8x8 JPEG grid, positions that share their phase modulo 8 have the
same statistics; tying them (``period=8``) gives 64 Gaussians with (P/8)^2 times more
samples each, which makes the fit usable with a few hundred pristine images and the model
small enough to ship. ``period=P`` reproduces the untied model.

Sums (count, sum, sum of outer products) are accumulated in float64, so thousands of images
fit in bounded memory and the result does not depend on the order of the updates.
The covariance is shrunk towards a scaled identity (OAS by default, or a fixed amount) and
then factorised once: scoring is a batched triangular matrix product.

Speed: an embedding tile whose sides are multiples of the period is regrouped once into
*phase blocks* (``period² x n x D``, :func:`to_blocks`): every position class is then one
contiguous matrix, and the fit (``update_blocks``) and the scoring (``score_blocks``) are
batched matrix products over all classes at once, in float32 on centred data, with the
running sums kept in float64.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from noisead.runtime import run_concurrently


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run small batched linear algebra on one thread: the factorisations (64 of 129 x
    129), and the per-class products of the fit and the scoring (64 of n x D by D x D).

    Multi-threaded kernels on matrices this small are all synchronisation: when another
    process keeps the cores busy, every barrier waits for a descheduled thread and the
    factorisations take orders of magnitude longer than on one thread
    (docs/BENCHMARKS.md, "Measurements behind implementation choices"); the scoring of a
    512 x 512 tile takes several times less CPU time on one thread than on two, idle
    machine or not ("Speed and memory").
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def position_classes(height: int, width: int, period: int, origin: tuple[int, int] = (0, 0)
                     ) -> Tensor:
    """H x W integer map of the position class of every pixel (row-major phase index)."""
    ys = (torch.arange(height) + origin[0]) % period
    xs = (torch.arange(width) + origin[1]) % period
    return ys[:, None] * period + xs[None, :]


def phase_classes(period: int, origin: tuple[int, int] = (0, 0)) -> Tensor:
    """Class of each of the ``period²`` local phases (row-major) of blocks at ``origin``."""
    return position_classes(period, period, period, origin).reshape(-1)


def to_blocks(embedding: Tensor, period: int) -> Tensor:
    """D x H x W map (H, W multiples of ``period``) → ``period² x (H·W/period²) x D`` float32.

    Row ``py * period + px`` holds the pixels of local phase (py, px), in raster order.
    """
    d, h, w = embedding.shape
    out = torch.empty(period, period, h // period, w // period, d, dtype=torch.float32)
    out.copy_(embedding.reshape(d, h // period, period, w // period, period)
              .permute(2, 4, 1, 3, 0))
    return out.view(period * period, -1, d)


def mask_to_blocks(mask: Tensor, period: int) -> Tensor:
    """H x W map → ``period² x n``, the pixel order of :func:`to_blocks`."""
    h, w = mask.shape
    return (mask.reshape(h // period, period, w // period, period).permute(1, 3, 0, 2)
            .reshape(period * period, -1))


def from_blocks(values: Tensor, period: int, height: int, width: int) -> Tensor:
    """``period² x n`` per-pixel values → H x W (inverse of :func:`to_blocks`' order)."""
    return (values.reshape(period, period, height // period, width // period)
            .permute(2, 0, 3, 1).reshape(height, width))


def _even_split(count: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` (at most ``count``) contiguous ranges covering ``range(count)``, sizes
    differing by at most one."""
    parts = max(1, min(parts, count))
    edges = [count * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def share_out(count: int, work: Callable[[int, int], None], device: torch.device) -> None:
    """Run ``work(start, stop)`` over contiguous ranges covering ``range(count)``: on the
    CPU one range per PyTorch thread, all at once, each running on one thread (see
    :func:`single_thread`); elsewhere one range. For the per-class products and the
    strided copies of phase blocks, whose values do not depend on how they are shared."""
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    with single_thread():
        run_concurrently([functools.partial(work, a, b) for a, b in _even_split(count, threads)],
                         workers=threads)


def _class_chunk(n: int, d: int, budget_bytes: int = 64 << 20) -> int:
    """How many classes of n x d float32 to process at once to bound temporaries."""
    return max(1, budget_bytes // max(1, n * d * 4))


class StreamingGaussian:
    """Running count, sum and scatter matrix per position class (float64)."""

    def __init__(self, n_classes: int, dim: int) -> None:
        self.n_classes, self.dim = n_classes, dim
        self.count = torch.zeros(n_classes, dtype=torch.float64)
        self.sum = torch.zeros(n_classes, dim, dtype=torch.float64)
        self.outer = torch.zeros(n_classes, dim, dim, dtype=torch.float64)

    def update(self, features: Tensor, classes: Tensor) -> None:
        """Add samples: ``features`` N x D, ``classes`` N class indices."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must be N x {self.dim}, got {tuple(features.shape)}")
        x = features.to(torch.float64)
        classes = classes.reshape(-1)
        order = torch.argsort(classes)
        x, classes = x[order], classes[order]
        uniq, counts = torch.unique_consecutive(classes, return_counts=True)
        start = 0
        for k, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            xs = x[start:start + c]
            start += c
            self.count[k] += c
            self.sum[k] += xs.sum(0)
            self.outer[k] += xs.T @ xs

    def update_map(self, embedding: Tensor, period: int, origin: tuple[int, int] = (0, 0),
                   exclude: Tensor | None = None) -> None:
        """Add a D x H x W embedding map whose top-left pixel is at absolute ``origin``.

        Pixels of one phase are gathered with strided slices, so no sort is needed; pixels
        where the optional H x W boolean ``exclude`` is True are left out.
        """
        d, h, w = embedding.shape
        for py in range(min(period, h)):
            for px in range(min(period, w)):
                k = ((py + origin[0]) % period) * period + (px + origin[1]) % period
                x = embedding[:, py::period, px::period].reshape(d, -1).T.to(torch.float64)
                if exclude is not None:
                    x = x[~exclude[py::period, px::period].reshape(-1)]
                self.count[k] += x.shape[0]
                self.sum[k] += x.sum(0)
                self.outer[k] += x.T @ x

    def update_blocks(self, blocks: Tensor, classes: Tensor, weights: Tensor | None = None
                      ) -> None:
        """Add phase blocks (``K x n x D``, any float dtype) whose row k is class ``classes[k]``.

        ``weights`` (``K x n`` bool) keeps only the True pixels; when they are a minority
        they are packed first, so the cost follows the pixels kept. Each class
        is centred on its own block mean before the scatter matrix is taken in float32 (so
        nothing cancels), and the result is folded into the float64 sums exactly:
        ``sum x x^T = M + c r^T + r c^T + n c c^T`` with ``r = sum (x - c)``.
        """
        k_all, n, d = blocks.shape
        if d != self.dim:
            raise ValueError(f"blocks must be K x n x {self.dim}, got {tuple(blocks.shape)}")
        with single_thread():  # the same sums whatever the number of threads, and faster
            self._update_blocks(blocks, classes, weights)

    def _update_blocks(self, blocks: Tensor, classes: Tensor, weights: Tensor | None) -> None:
        k_all, n, d = blocks.shape
        if weights is not None:
            weights = weights.to(blocks.device)
            kept = weights.sum(1)
            most = int(kept.max())
            if most == 0:
                return
            if most * 2 <= n:
                # Sparse: pack each class's kept pixels first (the mask is smooth, so every
                # class keeps about as many) and work on those columns only.
                order = torch.argsort((~weights).to(torch.uint8), dim=1, stable=True)[:, :most]
                blocks = torch.gather(blocks, 1, order[..., None].expand(-1, -1, d))
                weights = torch.gather(weights, 1, order)
                n = most
        step = _class_chunk(n, d)
        parts = [self._scatter(blocks[a:a + step],
                               None if weights is None else weights[a:a + step])
                 for a in range(0, k_all, step)]
        # the sums live on the CPU, whatever device the blocks are on
        cnt, total, outer = (torch.cat(z).cpu() for z in zip(*parts, strict=True))
        if classes.numel() == self.n_classes and bool(
                (classes.sort().values == torch.arange(self.n_classes)).all()):
            inv = torch.argsort(classes)  # a permutation of all classes: plain adds
            self.count += cnt[inv]
            self.sum += total[inv]
            self.outer += outer[inv]
        else:
            self.count.index_add_(0, classes, cnt)
            self.sum.index_add_(0, classes, total)
            self.outer.index_add_(0, classes, outer)

    @staticmethod
    def _scatter(blocks: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """float64 (count, sum, sum of x x^T) per row of ``blocks``, from centred float32."""
        if weights is not None and bool(weights.all()):
            weights = None
        if weights is None:
            cnt = torch.full((blocks.shape[0],), float(blocks.shape[1]), dtype=torch.float64,
                             device=blocks.device)
            c = blocks.mean(1, dtype=torch.float32)
            xc = blocks - c[:, None, :]  # float32 whatever the cache's dtype: one pass
        else:
            x = blocks.float()
            w = weights.to(torch.float32)
            cnt = w.sum(1, dtype=torch.float64)
            c = torch.bmm(w[:, None, :], x)[:, 0] / cnt.clamp_min(1).float()[:, None]
            xc = (x - c[:, None, :]).mul_(w[..., None])
        m = torch.bmm(xc.transpose(1, 2), xc).double()
        r = xc.sum(1).double()  # ~0 by construction: float32 is exact enough
        c64 = c.double()
        outer = (m + c64[:, :, None] * r[:, None, :] + r[:, :, None] * c64[:, None, :]
                 + cnt[:, None, None] * c64[:, :, None] * c64[:, None, :])
        return cnt, cnt[:, None] * c64 + r, outer

    def subtract(self, other: StreamingGaussian) -> StreamingGaussian:
        """New sums without ``other``'s samples (which must be among these): a refit that
        leaves out a minority of pixels costs only those pixels."""
        out = StreamingGaussian(self.n_classes, self.dim)
        out.count = self.count - other.count
        out.sum = self.sum - other.sum
        out.outer = self.outer - other.outer
        return out

    def merge(self, other: StreamingGaussian) -> None:
        self.count += other.count
        self.sum += other.sum
        self.outer += other.outer

    def finalize(self, shrinkage: float | str = "oas", eps: float = 1e-5) -> GaussianModel:
        return GaussianModel.from_sums(self.count, self.sum, self.outer, shrinkage, eps)


def oas_shrinkage(cov: Tensor, n: Tensor) -> Tensor:
    """Oracle Approximating Shrinkage coefficient (Chen et al., 2010), per class.

    Needs only the sample covariance and the sample count, so it works on streamed sums.
    The form is scikit-learn's (``sklearn.covariance.oas``, the corrected formula).
    """
    p = cov.shape[-1]
    tr = cov.diagonal(dim1=-2, dim2=-1).sum(-1)
    tr2 = (cov * cov).sum((-2, -1))
    num = tr2 + tr * tr
    den = (n + 1) * (tr2 - tr * tr / p)
    rho = torch.where(den > 0, num / den.clamp_min(1e-300), torch.ones_like(num))
    return rho.clamp(0.0, 1.0)


@dataclass
class GaussianModel:
    """Mean and whitening factor per class: ``d^2(x) = ||W (x - mean)||^2``.

    ``whitener`` is the inverse of the Cholesky factor of the (regularised) covariance,
    lower-triangular, so the Mahalanobis distance is one batched matrix product.
    """

    mean: Tensor        # K x D
    whitener: Tensor    # K x D x D
    count: Tensor       # K
    shrinkage: Tensor   # K (the amount applied)

    @property
    def n_classes(self) -> int:
        return self.mean.shape[0]

    @property
    def dim(self) -> int:
        return self.mean.shape[1]

    @staticmethod
    def covariance_from_sums(count: Tensor, total: Tensor, outer: Tensor
                             ) -> tuple[Tensor, Tensor]:
        n = count.clamp_min(2.0)[:, None]
        mean = total / n
        cov = (outer - n[..., None] * mean[:, :, None] * mean[:, None, :]) / (n[..., None] - 1)
        return mean, 0.5 * (cov + cov.transpose(-1, -2))

    @classmethod
    def from_sums(cls, count: Tensor, total: Tensor, outer: Tensor,
                  shrinkage: float | str = "oas", eps: float = 1e-5) -> GaussianModel:
        if (count < 2).any():
            empty = int((count < 2).sum())
            raise ValueError(f"{empty} position classes have fewer than 2 samples: "
                             "fit on more or larger pristine images")
        mean, cov = cls.covariance_from_sums(count, total, outer)
        return cls.from_covariance(mean, cov, count, shrinkage, eps)

    @classmethod
    def from_covariance(cls, mean: Tensor, cov: Tensor, count: Tensor,
                        shrinkage: float | str = "oas", eps: float = 1e-5) -> GaussianModel:
        d = cov.shape[-1]
        if shrinkage == "oas":
            rho = oas_shrinkage(cov, count.to(cov.dtype))
        else:
            rho = torch.full((cov.shape[0],), float(shrinkage), dtype=cov.dtype)
        mu = cov.diagonal(dim1=-2, dim2=-1).mean(-1)
        eye = torch.eye(d, dtype=cov.dtype)
        reg = (1 - rho)[:, None, None] * cov + (rho * mu)[:, None, None] * eye
        reg = reg + eps * (mu.mean() + 1e-12) * eye + 1e-12 * eye
        with single_thread():
            chol = torch.linalg.cholesky(reg)
            whitener = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
        return cls(mean.float(), whitener.float(), count.float(), rho.float())

    def covariance(self) -> Tensor:
        """The regularised covariance (for inspection and tests)."""
        w = self.whitener.double()
        with single_thread():
            inv = torch.linalg.inv(w)
            return (inv @ inv.transpose(-1, -2)).float()

    def score_blocks(self, blocks: Tensor, classes: Tensor, *, centered: bool = False
                     ) -> Tensor:
        """``K x n`` squared distances of phase blocks (``K x n x D``), row k of class
        ``classes[k]``: one batched product ``(x - mean) W^T`` per group of classes, on the
        blocks' device.

        ``centered``: the blocks already are ``x - mean``. On the CPU the classes are
        shared out between PyTorch's threads, each running its products on one thread
        (see :func:`single_thread`); each class's product is computed alone whatever the
        group, so the values do not depend on the thread count.
        """
        out = torch.empty(blocks.shape[0], blocks.shape[1], dtype=torch.float32,
                          device=blocks.device)
        share_out(blocks.shape[0], functools.partial(self._score_into, out, blocks, classes,
                                                     centered=centered), blocks.device)
        return out

    def _score_into(self, out: Tensor, blocks: Tensor, classes: Tensor, start: int,
                    stop: int, *, centered: bool) -> None:
        """Rows ``start:stop`` of :meth:`score_blocks`, written into ``out``."""
        n, d = blocks.shape[1], blocks.shape[2]
        device = blocks.device
        classes = classes[start:stop].to(device)
        mean = self.mean.to(device)[classes]
        wt = self.whitener.to(device)[classes].transpose(1, 2)
        # small chunks: each class's product is computed alone whatever the chunk (the
        # values do not depend on it), and the products of a whole tile are large
        step = _class_chunk(n, d, 16 << 20)
        for a in range(0, stop - start, step):
            b = min(a + step, stop - start)
            x = blocks[start + a:start + b]
            if not centered:
                x = x - mean[a:b, None, :]  # float32, one pass
            z = torch.bmm(x, wt[a:b])
            out[start + a:start + b] = torch.linalg.vector_norm(z, dim=2).square_()

    def state_dict(self, prefix: str = "gaussian.") -> dict[str, Tensor]:
        return {f"{prefix}mean": self.mean, f"{prefix}whitener": self.whitener,
                f"{prefix}count": self.count, f"{prefix}shrinkage": self.shrinkage}

    @classmethod
    def from_state_dict(cls, tensors: dict[str, Tensor], prefix: str = "gaussian."
                        ) -> GaussianModel:
        return cls(*(tensors[f"{prefix}{k}"].float()
                     for k in ("mean", "whitener", "count", "shrinkage")))

