"""Where a training run's batches come from: one sampler, worker processes, or a share.

One process (the default) draws each batch with one sampler (:func:`make_sampler`); with
``loader_workers > 0`` the batches come from that many worker processes
(:func:`batch_stream`), each with its own sampler seeded from (``seed``, worker, first
step). Under DistributedDataParallel (:mod:`noisead.train.distributed`) every process
draws only its *share* of each global batch (:class:`RankShareSampler`): ``1/world`` of
its camera models, with all their images and positions, so that the positive pairs of a
share are complete. Drawing is split, not repeated: on a GPU it is the bottleneck.

Why the global batch of W shares is drawn as one process draws it. One process picks
``models_per_batch`` distinct models; W independent shares could pick the same model
twice. So at every step the usable models are dealt into W disjoint parts by a
permutation drawn from (``seed``, step), the same in every process without any message,
and each process picks its models in its own part. The union of the W picks is then
uniform over the sets of ``models_per_batch`` models (the permutation is uniform, so the
draw does not depend on the models' names), as in one process; images and positions are
drawn per model the same way. What differs: the augmentation (JPEG, resampling) is drawn
once per share, where one process draws one for the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from noisead.data.fresh_cameras import FreshCameraSampler, load_scenes
from noisead.data.patches import BatchSpec, PatchBatch, PatchPairSampler

if TYPE_CHECKING:
    from noisead.train.distributed import Ranks
    from noisead.train.extractor import TrainConfig

Sampler = PatchPairSampler | FreshCameraSampler


def make_sampler(images: dict[str, list[np.ndarray]], config: TrainConfig, seed: int
                 ) -> Sampler:
    """The training batches' sampler: folder cameras alone, or mixed with fresh ones."""
    fresh = config.fresh_cameras
    if fresh.share <= 0:
        return PatchPairSampler(images, config.batch, config.augment, seed=seed)
    return FreshCameraSampler(images, config.batch, config.augment, fresh,
                              load_scenes(fresh.scenes, fresh.crop), seed=seed)


def share_spec(spec: BatchSpec, world: int) -> BatchSpec:
    """One process's share of the global batch ``spec``: ``1/world`` of its models."""
    if spec.models_per_batch % world:
        raise ValueError(f"{spec.models_per_batch} camera models per batch cannot be split "
                         f"evenly over {world} processes: choose models_per_batch as a "
                         f"multiple of {world}")
    return replace(spec, models_per_batch=spec.models_per_batch // world)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s sampler: deterministic from the run's seed and rank."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


class RankShareSampler:
    """Process ``ranks.rank``'s share of every global batch (see the module's docstring).

    ``sample()`` draws the share of step ``step`` and moves on by ``stride`` steps (the
    number of worker processes that take turns, 1 without workers). ``rng`` is the share
    sampler's random stream: a checkpoint saves it and a resumed run restores it.
    """

    def __init__(self, images: dict[str, list[np.ndarray]], config: TrainConfig,
                 ranks: Ranks, seed: int, first_step: int = 0, stride: int = 1) -> None:
        world = ranks.world
        fresh = config.fresh_cameras
        spec = share_spec(config.batch, world)
        fresh_total = int(round(config.batch.models_per_batch * fresh.share))
        fresh_share = int(round(spec.models_per_batch * fresh.share))
        if fresh.share > 0 and fresh_share * world != fresh_total:
            raise ValueError(f"{fresh_total} fresh cameras per batch cannot be split evenly "
                             f"over {world} processes ({fresh_share} each)")
        self.inner = make_sampler(images, replace(config, batch=spec), seed)
        self.rng = self.inner.rng
        self.cameras = list(self.inner.cameras)
        folder_models = spec.models_per_batch - (fresh_share if fresh.share > 0 else 0)
        if len(self.cameras) // world < folder_models:
            raise ValueError(f"{len(self.cameras)} usable camera models cannot give each of "
                             f"{world} processes {folder_models} models of its own per batch")
        self.rank, self.world, self.seed = ranks.rank, world, config.seed
        self.step, self.stride = first_step, stride

    def cameras_at(self, step: int) -> list[str]:
        """This process's part of the models at ``step`` (the parts are disjoint)."""
        order = np.random.default_rng([self.seed, step]).permutation(len(self.cameras))
        return sorted(self.cameras[int(i)] for i in order[self.rank::self.world])

    def sample(self) -> PatchBatch:
        self.inner.cameras = self.cameras_at(self.step)
        self.step += self.stride
        return self.inner.sample()


class _SamplerStream(torch.utils.data.IterableDataset):
    """Endless batches from a :class:`PatchPairSampler` per worker process (or from a
    :class:`RankShareSampler` per worker under DistributedDataParallel)."""

    def __init__(self, images: dict[str, list[np.ndarray]], config: TrainConfig,
                 first_step: int, ranks: Ranks | None = None) -> None:
        self.images, self.config, self.first_step = images, config, first_step
        self.ranks = ranks

    def __iter__(self) -> Iterator[PatchBatch]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        workers = info.num_workers if info is not None else 1
        key = [self.config.seed, worker, self.first_step]
        if self.ranks is not None:
            key.append(self.ranks.rank)
        seed = int(np.random.SeedSequence(key).generate_state(1)[0])
        sampler: Sampler | RankShareSampler
        if self.ranks is None:
            sampler = make_sampler(self.images, self.config, seed)
        else:  # the workers take turns: worker w draws steps first + w, first + w + n, ...
            sampler = RankShareSampler(self.images, self.config, self.ranks, seed,
                                       self.first_step + worker, workers)
        while True:
            yield sampler.sample()


def batch_stream(sampler: Sampler | RankShareSampler,
                 images: dict[str, list[np.ndarray]], config: TrainConfig,
                 first_step: int, ranks: Ranks | None = None) -> Iterator[PatchBatch]:
    """Training batches: from ``sampler`` itself, or from ``config.loader_workers``
    processes (see the module's docstring)."""
    if config.loader_workers <= 0:
        while True:
            yield sampler.sample()
    loader = torch.utils.data.DataLoader(
        _SamplerStream(images, config, first_step, ranks), batch_size=None,
        num_workers=config.loader_workers, prefetch_factor=4, persistent_workers=False)
    yield from loader


def training_sampler(images: dict[str, list[np.ndarray]], config: TrainConfig,
                     ranks: Ranks | None) -> Sampler | RankShareSampler:
    """The main process's sampler: the run's own, or this process's share under DDP."""
    if ranks is None:
        return make_sampler(images, config, config.seed)
    return RankShareSampler(images, config, ranks, rank_seed(config.seed, ranks.rank))


def sampler_state(sampler: Sampler | RankShareSampler) -> dict[str, Any]:
    """The sampler's random state, as a checkpoint stores it."""
    return sampler.rng.bit_generator.state


def restore_sampler(sampler: Sampler | RankShareSampler, meta: dict[str, Any],
                    ranks: Ranks | None) -> None:
    """Put back the random state a checkpoint's ``meta`` saved for this process, and the
    step to draw next. A checkpoint resumes only with the number of processes that wrote
    it: every process's share has its own random stream."""
    world = ranks.world if ranks is not None else 1
    written_by = int(meta.get("world_size", 1))
    if written_by != world:
        raise ValueError(f"the checkpoint was written by a run on {written_by} process(es); "
                         f"resume it with the same number, not {world}")
    if ranks is None:
        sampler.rng.bit_generator.state = meta["numpy_rng"]
        return
    if not isinstance(sampler, RankShareSampler):
        raise TypeError("a process of a distributed run draws with a RankShareSampler")
    sampler.rng.bit_generator.state = meta["numpy_rng_ranks"][ranks.rank]
    sampler.step = int(meta["step"])
