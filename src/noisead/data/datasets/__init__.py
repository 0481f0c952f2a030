"""Readers for image-forgery benchmarks: one list of samples, one way to read their masks.

Every reader returns a :class:`ForgeryDataset`: an ordered list of :class:`Sample` records
(image path, mask path or ``None``, a unique stable name, forged or pristine, and the
*mask convention* that says how the stored mask file becomes a ``bool`` array).
Listing a dataset reads directory entries only; pixels are decoded lazily, through
:func:`noisead.io.load_image` like every other user-supplied file, when
:meth:`ForgeryDataset.load_image` or :meth:`ForgeryDataset.load_mask` is called. Masks are
never resized: a mask whose size differs from its image raises ``ValueError``, because a
resized mask silently shifts every localization score.

Names are the image path relative to the dataset root (or to the JSON file's folder),
without extension, in POSIX form (``"Canon_60D/tampered-realistic/r0a4e0f4bt"``): unique
even where a dataset stores a forgery and its pristine original under the same file name
(Korus), and stable across machines.

Layouts (folder and file names are matched case-insensitively on extensions; files that
are not images, hidden files and sub-folders not named below are ignored):

``folder`` (:func:`read_folder`) -- our own benchmark builder's layout, also used by many
  public copy-move sets (CVIP in ``../shared/forgeries/cvip-copymove``)::

      <root>/images/<stem>.<ext>        forged, or pristine when no mask matches
      <root>/masks/<stem>[_mask|_gt|-mask|-gt].<ext>   nonzero = tampered
      <root>/pristine/<stem>.<ext>      optional, always pristine

``DSO-1`` (:func:`read_dso1`) -- Carvalho et al., TIFS 2013, distributed as
  ``tifs-database``; layout as read by photoholmes (``datasets/dso1.py``)::

      <root>/DSO-1/splicing-XX.png      forged
      <root>/DSO-1/normal-XX.png        pristine
      <root>/DSO-1-Fake-Images-Masks/splicing-XX.png   (or <root>/masks/)

  The masks are inverted: BLACK = tampered, white = authentic (photoholmes binarizes
  with ``mask == 0``).

``Columbia`` uncompressed (:func:`read_columbia`) -- Hsu & Chang, ICME 2006; layout from
  the dataset's page (ee.columbia.edu/ln/dvmm/downloads/authsplcuncmp) and photoholmes::

      <root>/4cam_splc/<cam1>_<cam2>_sub_NN.tif   forged (TIFF or BMP)
      <root>/4cam_splc/edgemask/<stem>_edgemask.jpg
      <root>/4cam_auth/*.tif                      pristine

  Some copies nest the folders once more (``4cam_splc/4cam_splc``); both are accepted.
  The edge mask colours each pixel by the camera it came from: red (bright 255 near the
  splicing boundary, regular 200 elsewhere) for the first camera of the file name, green
  for the second. Tampered = the **green** (second-camera) region, as photoholmes
  (``TAMPERED_COLOR_INDEX = 1  # Green``) and other public loaders read it. Which region
  is the "host" is not fixed by the dataset itself (some loaders take the red one), which
  is one reason to report the sign-agnostic metrics of :mod:`noisead.evaluate.metrics`
  beside the plain ones on Columbia. The masks are JPEGs, so a pixel is tampered where
  its green channel exceeds its red one and is not dark (``G > R`` and ``G > 0.25``).
  The ``_edgemask_3.jpg`` variants are not used.

``CASIA v2`` (:func:`read_casia2`) -- Dong et al. 2013, ground truth by N. T. Pham
  (github.com/namtpham/casia2groundtruth)::

      <root>/Tp/Tp_*.jpg|tif            forged
      <root>/CASIA 2 Groundtruth/<stem>_gt.png    (also ``Gt/`` as in IMDL-BenCo)
      <root>/Au/Au_*.jpg|bmp|tif        pristine

  Masks are thresholded at mid-grey (> 0.5), which ignores the faint noise some
  ground-truth files carry.

``Korus`` realistic tampering (:func:`read_korus`) -- Korus & Huang, TIFS 2017; layout
  from the dataset's readme and photoholmes (``datasets/realistic_tampering.py``)::

      <root>[/<camera>]/tampered-realistic/<stem>.TIF   forged
      <root>[/<camera>]/ground-truth/<stem>.PNG         nonzero = tampered
      <root>[/<camera>]/pristine/<stem>.TIF             pristine

  Camera folders (``Canon_60D``, ``Nikon_D90``, ...) are optional. The ground truth has
  three levels (black authentic, white semantic change, grey collateral damage); following
  the dataset's readme ("both gray and white areas can be considered as tampered"), every
  nonzero pixel is tampered.

``IMDL-BenCo`` JSON (:func:`read_imdlbenco`) -- the ``JsonDataset`` format of IMDL-BenCo
  (docs: guide/quickstart/0_dataprepare)::

      [["Tp/a.jpg", "Gt/a_gt.png"], ["Au/b.jpg", "Negative"], ...]

  ``"Negative"`` (or ``null`` / ``""``) means a pristine image. Relative paths are resolved
  against the JSON file's folder; absolute paths are kept.

Mask conventions, applied by :func:`binarize_mask` to decoded pixels in ``[0, 1]``:
``"nonzero"`` (any channel > 0; lossless masks), ``"threshold"`` (brightest channel > 0.5;
used for JPEG-compressed masks in the generic readers, where ringing would otherwise turn
into tampered pixels), ``"inverted"`` (brightest channel < 0.5 is tampered; DSO-1),
``"columbia_green"`` (see above) and ``"none"`` (pristine: no mask file).

One module a job: :mod:`~noisead.data.datasets.samples` (samples, conventions, the dataset
list), :mod:`~noisead.data.datasets.listing` (folders), :mod:`~noisead.data.datasets.readers`
(one per layout) and :mod:`~noisead.data.datasets.dispatch` (choosing the reader).
"""

# Each module lists its public names in __all__; the package re-exports them all.
from noisead.data.datasets import dispatch, readers, samples
from noisead.data.datasets.dispatch import *  # noqa: F403
from noisead.data.datasets.readers import *  # noqa: F403
from noisead.data.datasets.samples import *  # noqa: F403
from noisead.io import IMAGE_EXTENSIONS

__all__ = ["IMAGE_EXTENSIONS", *samples.__all__, *readers.__all__, *dispatch.__all__]
