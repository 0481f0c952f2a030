"""Arrays in and out of the house format: image_from_array and to_uint8."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from noisead.io import image_from_array, to_uint8

_DTYPES = [
    np.uint8,
    np.uint16,
    np.float32,
    np.float64,
    np.float16,
    np.int32,
    np.int64,
    np.bool_,
    np.int8,
]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_image_from_array_property(data: st.DataObject) -> None:
    dtype = np.dtype(data.draw(st.sampled_from(_DTYPES)))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
    if dtype.kind == "f":
        elements = st.one_of(
            st.floats(-0.5, 1.5, width=min(dtype.itemsize * 8, 64)),
            st.sampled_from([float("nan"), float("inf"), -float("inf")]),
        )
    else:
        elements = None
    arr = data.draw(hnp.arrays(dtype, shape, elements=elements))
    ok_shape = (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))) and (
        arr.shape[0] > 0 and arr.shape[1] > 0
    )
    ok_dtype = dtype in (np.uint8, np.uint16) or (
        dtype.kind == "f"
        and arr.size > 0
        and bool(np.isfinite(arr).all())
        and float(arr.min()) >= -1e-3
        and float(arr.max()) <= 1 + 1e-3
    )
    if not (ok_shape and ok_dtype):
        with pytest.raises(ValueError):
            image_from_array(arr)
        return
    out = image_from_array(arr)
    h, w = arr.shape[:2]
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    assert not np.shares_memory(out, arr)
    a3 = arr.reshape(h, w, -1)
    src = a3[..., :3] if a3.shape[2] >= 3 else np.repeat(a3, 3, axis=2)
    if dtype == np.uint8:
        expected = src / 255.0
    elif dtype == np.uint16:
        expected = src / 65535.0
    else:
        expected = np.clip(src.astype(np.float64), 0, 1)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)



def test_image_from_array_cases() -> None:
    assert image_from_array(np.full((2, 2), 255, np.uint8)).tolist() == np.ones((2, 2, 3)).tolist()
    assert image_from_array(np.full((1, 1, 1), 65535, np.uint16))[0, 0].tolist() == [1, 1, 1]
    rgba = np.zeros((1, 1, 4), np.float32)
    rgba[..., 3] = 1
    assert image_from_array(rgba).shape == (1, 1, 3)
    np.testing.assert_array_equal(image_from_array(np.array([[1.0005]])), np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match="divide by 255"):
        image_from_array(np.full((2, 2, 3), 200.0))
    with pytest.raises(ValueError, match="mask"):
        image_from_array(np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="dtype"):
        image_from_array(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="shape"):
        image_from_array(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        image_from_array(np.zeros((0, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        image_from_array(np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ValueError):
        image_from_array([[0.5]])  # type: ignore[arg-type]


def test_to_uint8() -> None:
    every = np.arange(256, dtype=np.uint8)
    assert (to_uint8(every.astype(np.float32) / 255) == every).all()
    assert to_uint8(np.array([-0.2, 0.0, 0.5, 0.999, 1.7, np.nan])).tolist() == [
        0,
        0,
        128,
        255,
        255,
        0,
    ]
    assert to_uint8(np.array([True, False])).tolist() == [255, 0]
    u = np.array([3], np.uint8)
    assert to_uint8(u).tolist() == [3] and not np.shares_memory(to_uint8(u), u)
    with pytest.raises(ValueError):
        to_uint8(np.array([1], np.int32))


def test_to_uint8_rounds_in_the_input_precision() -> None:
    # 0.5/255 + a hair above it in float64 is closer to level 1, but the hair is lost in
    # float32, where the product lands on the tie 0.5 and rounds to even (0)
    x = np.array([0.5 / 255 + 1e-12])
    assert float(np.float32(x[0]) * np.float32(255)) == 0.5
    assert to_uint8(x).tolist() == [1]
    assert to_uint8(x.astype(np.float32)).tolist() == [0]
    # the one-liner it replaced in the data builders gives the same for both precisions
    for a in (x, x.astype(np.float32), np.linspace(-0.1, 1.1, 1001)):
        assert np.array_equal(to_uint8(a), np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8))


def test_to_uint8_converts_large_images_in_bands(rng: np.random.Generator) -> None:
    big = rng.random((600, 2500, 3), dtype=np.float32)  # more rows than one band holds
    assert np.array_equal(to_uint8(big), np.clip(np.rint(big * 255.0), 0, 255).astype(np.uint8))
