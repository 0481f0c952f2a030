"""Tiles with a halo of reflected context, and embeddings from tapped layers."""

import numpy as np
import torch
from plain_algorithms import embed, pad_reflect

from noisead.anomaly.detector import Detector, DetectorConfig
from noisead.anomaly.embed import tapped
from noisead.anomaly.tiling import TileSource, iter_tiles, plan_tiles
from noisead.models.registry import create_model


def test_tiles_cover_every_pixel_once():
    cover = np.zeros((70, 131), int)
    for t in iter_tiles(70, 131, 32):
        cover[t.y0:t.y1, t.x0:t.x1] += 1
    assert (cover == 1).all()


def test_pad_reflect_handles_images_smaller_than_the_halo():
    img = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    out = pad_reflect(img, 12)
    assert out.shape == (29, 31, 3)
    np.testing.assert_array_equal(out[12:17, 12:19], img)


def test_tile_source_cuts_what_pad_reflect_pads(rng):
    for shape, halo in (((30, 41, 3), 7), ((5, 9, 3), 12), ((1, 6, 3), 4)):
        img = rng.random(shape).astype(np.float32)
        padded = pad_reflect(img, halo)
        src = TileSource(img, halo)
        for t in iter_tiles(shape[0], shape[1], 16):
            got = src.tile(t)[0].permute(1, 2, 0).numpy()
            want = padded[t.y0:t.y1 + 2 * halo, t.x0:t.x1 + 2 * halo]
            np.testing.assert_array_equal(got, want)


def test_plan_tiles_cover_the_rounded_image():
    tiles = plan_tiles(70, 131, 36, 8)  # tile rounded up to 40
    cover = np.zeros((72, 136), int)
    for t in tiles:
        assert (t.y1 - t.y0) % 8 == 0 and (t.x1 - t.x0) % 8 == 0
        cover[t.y0:t.y1, t.x0:t.x1] += 1
    assert (cover == 1).all()


def test_tiled_embedding_equals_whole_image_embedding():
    """Stitching by tiles with a halo gives what one pass over the image gives."""
    torch.manual_seed(0)
    model = create_model("dncnn-tiny")
    det = Detector(model, DetectorConfig(patch_size=32, crop_size=64, tile=40))
    img = np.random.default_rng(1).random((90, 110, 3)).astype(np.float32)
    halo = det.halo
    padded = torch.from_numpy(pad_reflect(img, halo).transpose(2, 0, 1).copy())[None]
    whole = embed(det.extractor, padded, det.taps)[0, :, halo:-halo, halo:-halo]
    stitched = torch.zeros_like(whole)
    for t, emb, _ in det.iter_embeddings(img):
        stitched[:, t.y0:t.y1, t.x0:t.x1] = emb
    torch.testing.assert_close(stitched, whole, atol=1e-5, rtol=1e-5)


def test_embed_concatenates_taps_and_upsamples():
    model = create_model("restormer-tiny")
    taps = [model.tap_names()[1], "fingerprint"]
    x = torch.rand(1, 3, 32, 32)
    with tapped(model, taps) as store:
        model(x)
    e = embed(model, x, taps)
    assert e.shape[-2:] == (32, 32)
    assert e.shape[1] == sum(store[t].shape[1] for t in taps)


def test_channel_subset_is_applied():
    model = create_model("dncnn-tiny")
    x = torch.rand(1, 3, 16, 16)
    full = embed(model, x, model.default_taps)
    idx = torch.tensor([0, 5, 20, full.shape[1] - 1])
    sub = embed(model, x, model.default_taps, channel_index=idx)
    torch.testing.assert_close(sub, full[:, idx])


def test_blocks_centred_as_they_are_laid_out_equal_the_blocks_minus_their_means(rng):
    """Centring in the layout pass (reference scoring, the blind cache) computes exactly
    ``blocks - mean``, in float32 and rounded once to float16."""
    from noisead.anomaly.gaussian import phase_classes
    from noisead.anomaly.tiling import Tile
    from noisead.infer import load_detector

    det = load_detector()
    img = rng.random((70, 64, 3)).astype(np.float32)
    source = TileSource(img, det.halo)
    t = Tile(3, 43, 5, 53)  # 40 x 48 at a phase other than (0, 0)
    plain, fp = det.embed_blocks(source, t)
    centred, fp_centred = det.embed_blocks(source, t, center=True)
    half, _ = det.embed_blocks(source, t, torch.float16, center=True)
    classes = phase_classes(det.config.position_period, (t.y0, t.x0))
    means = det.gaussian.mean[classes][:, None, :]
    assert torch.equal(centred, plain - means)
    assert half.dtype == torch.float16 and torch.equal(half, (plain - means).half())
    np.testing.assert_array_equal(fp, fp_centred)
    assert torch.equal(det.gaussian.score_blocks(centred, classes, centered=True),
                       det.gaussian.score_blocks(plain, classes))
