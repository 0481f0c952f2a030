"""Training loop of the fingerprint extractor (Siamese, distance-based logistic loss).

``train_extractor()`` reads camera-labelled folders, holds back some images of every model
for validation, draws batches of models x images x positions, and minimises the DBL loss.
It checkpoints (weights, optimiser, random state) so an interrupted run resumes where it
stopped, seeds everything, logs the loss and a validation figure (pair-verification AUC:
how well the distance between two fingerprints tells "same model, same position" from
"different models") to ``log.jsonl``, and shows a progress bar.

On a GPU (``device``), a training step takes milliseconds and drawing the batch (crops,
JPEG recompression, resampling) becomes the bottleneck: ``loader_workers > 0`` draws
batches in that many worker processes, each with its own sampler seeded from
(``seed``, worker, first step), so a run is reproducible for a given worker count; with
``loader_workers = 0`` (the default) the batches come from the main process and a resumed
run continues the very same random stream.

On several processes (``noisead train-extractor --ddp``, :mod:`noisead.train.launch`),
each process draws its share of the global batch (:mod:`noisead.train.batches`) and the
loss is the global batch's (:mod:`noisead.train.distributed`): one step from the same
weights on the same global batch gives what one process gives. Rank 0 alone validates and
writes the files; a checkpoint holds every process's random stream and resumes with the
same number of processes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from noisead.data.augment import AugmentConfig
from noisead.data.cameras import list_camera_images, split_images
from noisead.data.fresh_cameras import FreshCameraSpec
from noisead.data.patches import BatchSpec, PatchBatch, PatchPairSampler, load_camera_arrays
from noisead.models.dncnn import DnCNN, load_pretrained_denoiser
from noisead.models.registry import (
    create_model,
    load_extractor,
    load_tensors_with_sidecar,
    save_extractor,
    save_tensors_with_sidecar,
)
from noisead.runtime import resolve_device, resolve_precision
from noisead.train.batches import (  # noqa: F401 (make_sampler, _SamplerStream: also here)
    _SamplerStream,
    batch_stream,
    make_sampler,
    restore_sampler,
    sampler_state,
    training_sampler,
)
from noisead.train.checkpoint import optimizer_tensors, restore_optimizer
from noisead.train.distributed import (
    any_process,
    current_ranks,
    gather_objects,
    process_device,
    wrap_model,
)
from noisead.train.step import training_step
from noisead.train.validation import pair_verification_auc


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved beside its outputs."""

    model: str = "dncnn"
    init_from: str | None = None
    steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 0.0
    # clip the gradient's norm (None: no clipping): a guard against the large steps that
    # can drive a DnCNN into a collapse (see collapse_patience)
    grad_clip: float | None = None
    # stop when every patch of the batch has had the same fingerprint for this many steps
    # in a row: the loss then sits at log(N / positives) and the gradient carries nothing
    # (raw-DBL runs on a GPU ended so: docs/BENCHMARKS.md, "What was tried"; see
    # is_collapsed). 0: never stop
    collapse_patience: int = 50
    temperature: float = 0.1
    # "patch": standardize each patch's fingerprint before the loss (see
    # standardize_patches); "none": the paper's raw distances
    fingerprint_norm: str = "none"
    positives: str = "position"  # or "model": see noisead.train.loss.training_positives
    scale_penalty: float = 0.0   # weight of noisead.train.loss.scale_penalty (0: none)
    # weight of the DBL loss among the cells of simulated splices (two cameras inside one
    # patch, see noisead.train.localization); 0: off. K composites per step, cells of
    # localization_cell x localization_cell pixels (a multiple of the 8-pixel grid)
    localization_weight: float = 0.0
    localization_composites: int = 8
    localization_cell: int = 16
    # > 0: ``init_from`` is a denoiser of another shape (the 17x64 one for a small model):
    # first teach the model to reproduce it for this many steps (see train.distill)
    distill_steps: int = 0
    batch: BatchSpec = field(default_factory=BatchSpec)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # a share of each batch's models simulated afresh (see noisead.data.fresh_cameras)
    fresh_cameras: FreshCameraSpec = field(default_factory=FreshCameraSpec)
    val_fraction: float = 0.2
    val_batches: int = 6
    val_every: int = 100
    checkpoint_every: int = 100
    # > 0: also keep the extractor every so many steps (extractor-step<N>.safetensors), so
    # that the step can be chosen later on a localization benchmark, not only on pair AUC
    snapshot_every: int = 0
    seed: int = 0
    precision: str = "auto"
    max_images_per_camera: int | None = None
    holdout_cameras: tuple[str, ...] = ()   # whole models kept out (for testing on unseen ones)
    time_limit_s: float | None = None
    time_limit_cpu: bool = False  # count time_limit_s in this process's CPU seconds
    device: str = "cpu"          # "cpu", "cuda", "auto" (a GPU when there is one)
    tf32: bool = False           # TF32 on a GPU (see noisead.runtime.resolve_device)
    loader_workers: int = 0      # > 0: batches drawn in worker processes (for GPUs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        batch = BatchSpec(**d.pop("batch", {}))
        aug = d.pop("augment", {})
        aug = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()})
        d["holdout_cameras"] = tuple(d.get("holdout_cameras", ()))
        fresh = FreshCameraSpec(**d.pop("fresh_cameras", {}))
        return cls(batch=batch, augment=aug, fresh_cameras=fresh, **d)


@dataclass
class TrainResult:
    extractor_path: Path
    history: list[dict[str, float]]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def build_initial_model(config: TrainConfig) -> torch.nn.Module:
    """The preset model, initialised from a denoiser or an extractor if asked."""
    model = create_model(config.model)
    if config.init_from:
        path = Path(config.init_from)
        side = path.with_suffix(".json")
        if side.is_file() and json.loads(side.read_text()).get("kind") == "extractor":
            src, _ = load_extractor(path)
            model.load_state_dict(src.state_dict())
        elif isinstance(model, DnCNN):
            loaded = load_pretrained_denoiser(model, path)
            if not loaded:
                raise ValueError(f"{path}: no layer matched the model {config.model}")
        else:
            raise ValueError(f"{path}: cannot initialise {config.model} from a DnCNN denoiser")
    return model


def is_collapsed(fingerprints: torch.Tensor, tol: float = 1e-7) -> bool:
    """True when every input of the batch got the same fingerprint (to ``tol``): the
    extractor has collapsed. Its output may still vary over the pixels (the padding)."""
    if fingerprints.shape[0] < 2:
        return False
    return float(fingerprints.detach().float().std(dim=0).max()) < tol


def read_training_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's ``log.jsonl``: step, loss, seconds, and val_auc/val_loss."""
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def distilled_model(config: TrainConfig, images: list[np.ndarray], progress: bool = True,
                    device: torch.device | str = "cpu") -> torch.nn.Module:
    """The preset model, first trained to reproduce the denoiser ``config.init_from``."""
    from noisead.train.distill import distill_denoiser

    if not config.init_from:
        raise ValueError("distill_steps needs init_from: the denoiser to distil")
    teacher = create_model("dncnn")
    if not load_pretrained_denoiser(teacher, config.init_from):
        raise ValueError(f"{config.init_from}: not a 17x64 DnCNN denoiser")
    teacher.to(memory_format=torch.channels_last)
    student = create_model(config.model)
    student.to(memory_format=torch.channels_last)
    distill_denoiser(student, teacher, images, steps=config.distill_steps,
                     patch_size=config.batch.patch_size, seed=config.seed, progress=progress,
                     device=device)
    return student


def train_extractor(camera_roots: list[str | Path], out_dir: str | Path,
                    config: TrainConfig | None = None, *, resume: bool = True,
                    progress: bool = True) -> TrainResult:
    """Train a fingerprint extractor; returns the saved extractor's path and the log.

    ``camera_roots`` are ``ROOT/<camera-model>/<image>`` folders (real or simulated).
    Outputs in ``out_dir``: ``extractor.safetensors`` (last step, + JSON sidecar),
    ``extractor-best.safetensors`` (highest validation pair AUC), ``checkpoint`` files for
    resuming, ``log.jsonl`` and ``train_config.json``.
    """
    from noisead.io import save_json

    config = config or TrainConfig()
    ranks = current_ranks()  # None: one process
    main = ranks is None or ranks.is_main
    progress = progress and main
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device, tf32=config.tf32)
    if ranks is not None:
        device = process_device(device, ranks)
    # the bfloat16 autocast of noisead.runtime is the CPU's; on a GPU, float32
    precision = resolve_precision(config.precision) if device.type == "cpu" else "fp32"
    seed_everything(config.seed)

    cameras = list_camera_images(*camera_roots)
    cameras = {c: ps for c, ps in cameras.items() if c not in set(config.holdout_cameras)}
    if config.max_images_per_camera:
        cameras = {c: ps[:config.max_images_per_camera] for c, ps in cameras.items()}
    train_set, val_set = split_images(cameras, config.val_fraction, seed=config.seed)
    arrays = load_camera_arrays(cameras, progress=progress)
    index = {c: {p: i for i, p in enumerate(ps)} for c, ps in cameras.items()}

    def pick(split: dict[str, list[Path]]) -> dict[str, list[np.ndarray]]:
        return {c: [arrays[c][index[c][p]] for p in ps] for c, ps in split.items()}

    train_arrays = pick(train_set)
    sampler = training_sampler(train_arrays, config, ranks)
    val_batches: list[PatchBatch] = []
    if val_set and main:
        val_arrays = {c: v for c, v in pick(val_set).items() if len(v) >= 2}
        if len(val_arrays) >= 2:
            val_sampler = PatchPairSampler(val_arrays, config.batch, None, seed=config.seed + 1)
            val_batches = [val_sampler.sample() for _ in range(config.val_batches)]

    ckpt = out_dir / "checkpoint.safetensors"
    if config.distill_steps and not (resume and ckpt.is_file()):
        model = distilled_model(config, [im for ims in train_arrays.values() for im in ims],
                                progress, device)
    else:
        model = build_initial_model(config)
    model.to(device, memory_format=torch.channels_last)  # several times faster on x86 CPUs
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start_step, history = 0, []
    log_path = out_dir / "log.jsonl"
    if resume and ckpt.is_file():
        tensors, meta = load_tensors_with_sidecar(ckpt)
        restore_sampler(sampler, meta, ranks)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt.param_groups[0]["step"] = meta["step"]
        restore_optimizer(opt, {k: v.to(device) if v.ndim else v
                                 for k, v in tensors.items() if k.startswith("opt.")})
        torch.set_rng_state(tensors["rng.torch"])
        start_step = meta["step"]
        if log_path.is_file():
            history = [h for h in read_training_log(log_path) if h["step"] <= start_step]
    net = model if ranks is None else wrap_model(model, device)
    if main:
        save_json(out_dir / "train_config.json", config.to_dict())

    def save_checkpoint(step: int) -> None:
        meta = {"kind": "checkpoint", "step": step, "numpy_rng": sampler_state(sampler)}
        if ranks is not None:  # every process's stream (all processes take part)
            states = gather_objects(sampler_state(sampler), ranks)
            meta.update(numpy_rng=states[0], numpy_rng_ranks=states, world_size=ranks.world)
        if not main:
            return
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(optimizer_tensors(opt))
        tensors["rng.torch"] = torch.get_rng_state()
        save_tensors_with_sidecar(ckpt, tensors, meta)
        log_path.write_text("".join(json.dumps(h) + "\n" for h in history))

    t0, c0 = time.monotonic(), time.process_time()
    bar = tqdm(range(start_step, config.steps), initial=start_step, total=config.steps,
               desc="training extractor", disable=not progress)
    step = start_step
    flat_steps = 0  # consecutive steps with a constant fingerprint (collapse)
    collapsed = False
    batches = batch_stream(sampler, train_arrays, config, start_step, ranks)
    for step in bar:
        loss, fp = training_step(net, opt, next(batches), config, device, precision, ranks)
        record: dict[str, float] = {"step": step + 1, "loss": float(loss.item()),
                                    "seconds": time.monotonic() - t0,
                                    "cpu_seconds": time.process_time() - c0,
                                    # the loss ignores the scale: watch it drift
                                    "fp_rms": float(fp.detach().float().pow(2).mean().sqrt())}
        flat_steps = flat_steps + 1 if is_collapsed(fp) else 0
        collapsed = bool(config.collapse_patience) and flat_steps >= config.collapse_patience
        if collapsed:
            record["collapsed"] = True
        done = step + 1 == config.steps
        spent = record["cpu_seconds" if config.time_limit_cpu else "seconds"]
        out_of_time = config.time_limit_s is not None and spent > config.time_limit_s
        if ranks is not None and config.time_limit_s is not None:
            out_of_time = any_process(out_of_time, device)  # all stop at the same step
        if val_batches and ((step + 1) % config.val_every == 0 or done or out_of_time):
            auc, vloss = pair_verification_auc(model, val_batches, precision,
                                               config.fingerprint_norm, device)
            record.update(val_auc=auc, val_loss=vloss)
            best = max((h["val_auc"] for h in history if "val_auc" in h), default=-1.0)
            if auc > best:  # model selection on validation: keep the best weights
                save_extractor(model, out_dir / "extractor-best.safetensors",
                               training={"step": step + 1, "config": config.to_dict()},
                               metrics={"val_pair_auc": auc, "val_loss": vloss})
        history.append(record)
        if main and config.snapshot_every and (step + 1) % config.snapshot_every == 0:
            save_extractor(model, out_dir / f"extractor-step{step + 1}.safetensors",
                           training={"step": step + 1, "config": config.to_dict()},
                           metrics={k: v for k, v in record.items() if k.startswith("val_")})
        bar.set_postfix(loss=f"{record['loss']:.3f}",
                        **({"val_auc": f"{record['val_auc']:.3f}"} if "val_auc" in record else {}))
        if (step + 1) % config.checkpoint_every == 0 or done or out_of_time or collapsed:
            save_checkpoint(step + 1)
        if collapsed and main:
            bar.write(f"step {step + 1}: the fingerprint has been constant for "
                      f"{flat_steps} steps (collapsed); stopping. extractor-best.safetensors "
                      "holds the best weights before it")
        if out_of_time or collapsed:
            break
    final_step = history[-1]["step"] if history else start_step
    vals = [h for h in history if "val_auc" in h]
    metrics = {"steps": final_step, "final_loss": history[-1]["loss"] if history else None,
               "collapsed": collapsed,
               "val_pair_auc": vals[-1]["val_auc"] if vals else None,
               "val_loss": vals[-1]["val_loss"] if vals else None}
    training = {"camera_roots": [str(r) for r in camera_roots], "cameras": sorted(cameras),
                "n_images": sum(len(v) for v in cameras.values()), "config": config.to_dict()}
    if ranks is not None:
        training["processes"] = ranks.world
    path = out_dir / "extractor.safetensors"
    if main:
        save_extractor(model, path, training=training, metrics=metrics)
    if ranks is not None:
        torch.distributed.barrier()  # the files are written when any process returns
    return TrainResult(path, history)
