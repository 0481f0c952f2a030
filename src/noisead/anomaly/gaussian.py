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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def position_classes(height: int, width: int, period: int, origin: tuple[int, int] = (0, 0)
                     ) -> Tensor:
    """H x W integer map of the position class of every pixel (row-major phase index)."""
    ys = (torch.arange(height) + origin[0]) % period
    xs = (torch.arange(width) + origin[1]) % period
    return ys[:, None] * period + xs[None, :]


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
        chol = torch.linalg.cholesky(reg)
        whitener = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
        return cls(mean.float(), whitener.float(), count.float(), rho.float())

    def covariance(self) -> Tensor:
        """The regularised covariance (for inspection and tests)."""
        w = self.whitener.double()
        inv = torch.linalg.inv(w)
        return (inv @ inv.transpose(-1, -2)).float()

    def squared_mahalanobis(self, features: Tensor, classes: Tensor) -> Tensor:
        """Squared distances of N x D ``features`` to the Gaussians of their ``classes``."""
        x = features.float() - self.mean[classes]
        z = torch.einsum("nd,ned->ne", x, self.whitener[classes]) if x.shape[0] < 64 else None
        if z is None:
            z = torch.empty_like(x)
            order = torch.argsort(classes)
            sorted_cls = classes[order]
            uniq, counts = torch.unique_consecutive(sorted_cls, return_counts=True)
            start = 0
            for k, c in zip(uniq.tolist(), counts.tolist(), strict=True):
                idx = order[start:start + c]
                start += c
                z[idx] = x[idx] @ self.whitener[k].T
        return (z * z).sum(1)

    def score_map(self, embedding: Tensor, period: int, origin: tuple[int, int] = (0, 0)
                  ) -> Tensor:
        """H x W squared Mahalanobis distances of a D x H x W embedding map.

        Pixels of one phase are gathered with strided slices (no sort), then whitened
        with one matrix product per phase.
        """
        d, h, w = embedding.shape
        out = torch.empty(h, w, dtype=torch.float32)
        emb = embedding.float()
        for py in range(min(period, h)):
            for px in range(min(period, w)):
                k = ((py + origin[0]) % period) * period + (px + origin[1]) % period
                block = emb[:, py::period, px::period]
                x = block.reshape(d, -1).T - self.mean[k]
                z = x @ self.whitener[k].T
                out[py::period, px::period] = (z * z).sum(1).reshape(block.shape[1:])
        return out

    def state_dict(self, prefix: str = "gaussian.") -> dict[str, Tensor]:
        return {f"{prefix}mean": self.mean, f"{prefix}whitener": self.whitener,
                f"{prefix}count": self.count, f"{prefix}shrinkage": self.shrinkage}

    @classmethod
    def from_state_dict(cls, tensors: dict[str, Tensor], prefix: str = "gaussian."
                        ) -> GaussianModel:
        return cls(*(tensors[f"{prefix}{k}"].float()
                     for k in ("mean", "whitener", "count", "shrinkage")))

