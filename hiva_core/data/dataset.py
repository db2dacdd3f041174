"""The one dataset type every source (list files, manifests, SynthAU) turns into, and checks shared by the readers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from augtext.errors import UserError
from augtext.facs import au_label
from hiva_core.faces.media import open_rgb

# (subject, sequence, frame) of row i; "" where the source does not say.
MetaFn = Callable[[int], tuple[str, str, str]]


class AUDataset(Dataset):
    """Face images with per-AU labels.

    `aus` are the FACS codes of the label columns; `labels` is float32 (N, A): 1 present, 0 absent, NaN unknown.
    Item i is `{"image": (3,H,W) float, "labels": (A,) float (unknown -> 0), "mask": (A,) bool (False = unknown),
    "meta": {"path", "subject", "sequence", "frame"}}` (meta values are strings, so the default collate keeps them);
    with `geometry` (N, G) float32 (the expression's geometry, hiva_core.geometry; NaN unknown) also "geometry": (G,)
    float (unknown -> 0) and "geometry_mask": (G,) bool; with `intensity` (N, A) float32 (each AU's intensity in
    [0, 1], NaN unknown) also "intensity": (A,) and "intensity_mask": (A,) bool.
    Without a transform the image is uint8 (3,H,W) as loaded. Images are opened only when an item is read: a missing
    or unreadable one is a UserError naming its path.
    `references`: each row's neutral frame of the same person (a manifest's `neutral` column; "" unknown); after
    `pair_references()` "image" is the face and its neutral frame stacked on the channels, (6,H,W), both through one
    draw of the transform (the same crop, flip and colour change), what a model with `model.reference` reads.
    """

    def __init__(
        self,
        files: Sequence[str],
        labels: np.ndarray,
        aus: Sequence[int],
        *,
        root: str | os.PathLike = "",
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        meta: MetaFn | None = None,
        source: str = "",
        geometry: np.ndarray | None = None,
        intensity: np.ndarray | None = None,
        origins: Sequence[str] | None = None,
        references: Sequence[str] | None = None,
        paired: bool = False,
    ) -> None:
        labels = np.asarray(labels, dtype=np.float32)
        if labels.ndim != 2 or labels.shape != (len(files), len(aus)):
            raise ValueError(f"labels must be (N={len(files)}, A={len(aus)}), got {labels.shape}")
        self.files = list(files)  # as the source wrote them: relative to `root`, or absolute
        self.root = str(root)
        self.labels = labels
        self.aus = [int(a) for a in aus]
        self.transform = transform
        self.source = source
        self._meta = meta
        if geometry is not None:
            geometry = np.asarray(geometry, dtype=np.float32)
            if geometry.ndim != 2 or len(geometry) != len(files):
                raise ValueError(f"geometry must be (N={len(files)}, G), got {geometry.shape}")
        self.geometry = geometry
        self.intensity = None if intensity is None else np.asarray(intensity, dtype=np.float32)
        self._origins = None if origins is None else list(origins)
        self.references = None if references is None else list(references)
        self.paired = paired

    def unknown_traces(self) -> int:
        """Leave unknown every absent label whose intensity is above 0 (a trace: visible, below the occurrence cut),
        and that intensity; returns how many labels. Without intensities nothing changes (`data.traces=unknown`)."""
        if self.intensity is None:
            return 0
        traces = (self.labels == 0) & (self.intensity > 0)
        self.labels[traces] = np.nan
        self.intensity[traces] = np.nan
        return int(traces.sum())

    def pair_references(self) -> AUDataset:
        """Read every row beside its neutral frame from now on (this dataset, returned); a UserError when the source
        names none for some row."""
        refs = self.references
        if refs is None:
            raise UserError(
                f"{self.source} names no neutral frames: a model with model.reference reads each face beside a neutral "
                "frame of the same person, a manifest column `neutral` (paths, as `hiva_core synth --neutral` writes)"
            )
        missing = [i for i, r in enumerate(refs) if not str(r).strip()]
        if missing:
            raise UserError(
                f"{self.source}: {len(missing)} of {len(self)} rows have no neutral frame (the first: "
                f"{self.path(missing[0])}); a model with model.reference needs one for every face"
            )
        self.paired = True
        return self

    def __len__(self) -> int:
        return len(self.files)

    def path(self, index: int) -> str:
        return os.path.join(self.root, self.files[index])

    def origin(self, index: int) -> str:
        """The image file row `index` came from: its path, or for a row whose image was replaced (`subset` with
        `files`, e.g. its aligned crop) the file it replaced."""
        return self._origins[index] if self._origins is not None else self.path(index)

    @cached_property
    def paths(self) -> list[Path]:
        """Full image paths (built on first use: list files hold 100k+ frames)."""
        return [Path(self.root, f) for f in self.files]

    def subjects(self) -> list[str]:
        """Each row's subject, in row order ("" where the source does not say): the validation slice holds out whole
        ones, and thresholds are checked on halves of them."""
        return [self._meta(i)[0] if self._meta else "" for i in range(len(self))]

    def meta(self, index: int) -> dict[str, str]:
        subject, sequence, frame = self._meta(index) if self._meta else ("", "", "")
        return {"path": self.path(index), "subject": subject, "sequence": sequence, "frame": frame}

    def reference_path(self, index: int) -> str:
        assert self.references is not None
        return os.path.join(self.root, self.references[index])

    def load_image(self, index: int, path: str | None = None) -> Image.Image:
        """Row `index`'s image (or `path`, an image of that row such as its neutral frame)."""
        path = self.path(index) if path is None else path
        try:
            return open_rgb(path)
        except FileNotFoundError:
            raise UserError(f"image not found: {path} (frame {index} of {self.source}); check the image root") from None
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            raise UserError(f"cannot read image {path} ({exc}); replace or remove it from {self.source}") from None

    def __getitem__(self, index: int) -> dict:
        images = [self.load_image(index)]
        if self.paired:  # the neutral frame at the face's size: one draw of the transform crops both alike
            rest = self.load_image(index, self.reference_path(index))
            images.append(rest if rest.size == images[0].size else rest.resize(images[0].size, Image.BILINEAR))
        if self.transform is not None:
            tensor = torch.cat(_same_draw(self.transform, images), 0) if self.paired else self.transform(images[0])
        else:  # uint8 (3, H, W), as loaded
            tensor = torch.cat([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1) for im in images]).contiguous()
        item = {"image": tensor, **_known("labels", "mask", self.labels[index]), "meta": self.meta(index)}
        if self.geometry is not None:
            item.update(_known("geometry", "geometry_mask", self.geometry[index]))
        if self.intensity is not None:
            item.update(_known("intensity", "intensity_mask", self.intensity[index]))
        return item

    def subset(
        self,
        indices: Sequence[int],
        files: Sequence[str] | None = None,
        source: str = "",
        references: Sequence[str] | None = None,
    ) -> AUDataset:
        """The rows `indices` (in that order) as a dataset with the same AUs and transform. `files`: other image
        files for those rows (absolute, or relative to this root), e.g. their aligned crops; meta stays the rows'.
        `references`: other neutral frames for those rows (e.g. their aligned crops), else the rows' own."""
        indices = [int(i) for i in indices]
        chosen = [self.files[i] for i in indices] if files is None else list(files)
        return AUDataset(
            chosen,
            self.labels[indices] if indices else self.labels[:0],
            self.aus,
            root=self.root,
            transform=self.transform,
            meta=partial(_subset_meta, self._meta, indices),
            source=source or self.source,
            geometry=self.geometry[indices] if self.geometry is not None else None,
            intensity=self.intensity[indices] if self.intensity is not None else None,
            origins=None if files is None and self._origins is None else [self.origin(i) for i in indices],
            references=list(references) if references is not None else self._references_of(indices),
            paired=self.paired,
        )

    def _references_of(self, indices: list[int]) -> list[str] | None:
        return None if self.references is None else [self.references[i] for i in indices]

    def __repr__(self) -> str:
        aus = " ".join(au_label(a) for a in self.aus)
        return f"AUDataset({len(self)} frames, {aus}, from {self.source or self.root})"


def _same_draw(transform: Callable[[Image.Image], torch.Tensor], images: list[Image.Image]) -> list[torch.Tensor]:
    """`transform` of each image with the same random draws (torch's generator replayed): a face and its neutral frame
    get the same crop, flip, RandAugment ops and erased patch, so what differs between them is the face's."""
    state = torch.get_rng_state()
    out = []
    for image in images:
        torch.set_rng_state(state)
        out.append(transform(image))
    return out


def _known(values: str, mask: str, row: np.ndarray) -> dict[str, torch.Tensor]:
    """A row with NaN for unknown as {values: (unknown -> 0), mask: (False = unknown)}."""
    known = ~np.isnan(row)
    return {values: torch.from_numpy(np.where(known, row, 0.0).astype(np.float32)), mask: torch.from_numpy(known)}


def _subset_meta(meta: MetaFn | None, indices: list[int], index: int) -> tuple[str, str, str]:
    return meta(indices[index]) if meta else ("", "", "")


class MissingAUs(UserError):
    """AUs asked for that the data does not label (select_aus); `common`: those asked for that it does label."""

    def __init__(self, message: str, common: list[int]) -> None:
        super().__init__(message)
        self.common = common


def select_aus(labels: np.ndarray, data_aus: Sequence[int], aus: Sequence[int] | None, source: str):
    """Pick and order label columns: `aus=None` keeps the data's own; an AU the data lacks is a UserError."""
    data_aus = [int(a) for a in data_aus]
    if aus is None:
        return labels, data_aus
    wanted = [int(a) for a in aus]
    if len(set(wanted)) != len(wanted):
        raise UserError(f"AU list has duplicates: {', '.join(au_label(a) for a in wanted)}")
    missing = [a for a in wanted if a not in data_aus]
    if missing:
        have = ", ".join(au_label(a) for a in data_aus)
        raise MissingAUs(
            f"{', '.join(au_label(a) for a in missing)} not labelled in {source}; its AUs are: {have}",
            [a for a in wanted if a in data_aus],
        )
    index = [data_aus.index(a) for a in wanted]
    return labels[:, index], wanted


# How a whole file of these formats ends: JPEG's end-of-image marker, PNG's IEND chunk. A file cut off (a copy or a
# download that stopped) lacks it while its header opens fine.
_ENDINGS = {"JPEG": b"\xff\xd9", "MPO": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


def _unreadable(path: str) -> str | None:
    """Why an existing image file cannot be read as an image, or None.

    Pillow opens the header without decoding; a JPEG or PNG whose last bytes are not its format's ending (trailing
    zeros aside) is then decoded in full, which tells a cut-off file from one with data appended after its end."""
    try:
        with Image.open(path) as im:
            ending = _ENDINGS.get(im.format or "")
        if ending is None:
            return None
        with open(path, "rb") as f:
            f.seek(max(os.path.getsize(path) - 64, 0))
            if f.read().rstrip(b"\0").endswith(ending):
                return None
        with Image.open(path) as im:
            im.load()
        return None
    except UnidentifiedImageError:
        return "an empty file" if os.path.getsize(path) == 0 else "not an image file Pillow can read"
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        return f"cut off or damaged ({exc})" if "truncated" in str(exc) else str(exc) or type(exc).__name__


def check_images(
    dataset: AUDataset,
    limit: int | None = None,
    *,
    progress: bool | None = None,
    raise_missing: bool = True,
    show: int = 5,
    headers: bool = False,
) -> list[str]:
    """Check that the dataset's image files exist (existence only: fast enough for BP4D's 146k frames).

    limit: check only that many paths, spread evenly over the dataset (None: all). Returns the missing paths; with
    raise_missing (default) a UserError names how many are missing and the first `show` of them.
    headers: also open every image's header and read its last bytes (no decoding; about 65 us an image on this
    2-core machine, 10 s for BP4D's 146k frames from a warm disk), so that an empty, cut-off or non-image file is a
    UserError naming it now, not when a loader reaches it (`train`: after a whole epoch, for a test image).
    progress: a progress bar on stderr (default: when stderr is a terminal).
    """
    n = len(dataset)
    indices = range(n) if limit is None or limit >= n else np.linspace(0, n - 1, num=max(limit, 0), dtype=int)
    if progress is None:
        progress = sys.stderr.isatty()
    missing: list[str] = []
    broken: list[tuple[str, str]] = []
    exists, root, files = os.path.exists, dataset.root, dataset.files
    join = os.path.join

    refs = dataset.references if dataset.paired else None

    def scan(chunk) -> None:
        paths = [join(root, files[i]) for i in chunk]
        if refs is not None:  # the neutral frames too
            paths += [join(root, refs[i]) for i in chunk]
        for path in paths:
            if not exists(path):
                missing.append(path)
            elif headers and (why := _unreadable(path)) is not None:
                broken.append((path, why))

    step = 2000
    chunks = [indices[i : i + step] for i in range(0, len(indices), step)]
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("checking images", total=len(indices))
            for chunk in chunks:
                scan(chunk)
                bar.advance(task, len(chunk))
    else:
        for chunk in chunks:
            scan(chunk)
    if missing and raise_missing:
        first = ", ".join(missing[:show])
        more = f" and {len(missing) - show} more" if len(missing) > show else ""
        raise UserError(
            f"{len(missing)} of {len(indices)} checked images are missing ({dataset.source}): {first}{more}; "
            f"check the image root {dataset.root or '(paths as listed)'}"
        )
    if broken:
        (path, why), more = broken[0], f" ({len(broken) - 1} more after it)" if len(broken) > 1 else ""
        them = "the files, or remove their rows" if len(broken) > 1 else "the file, or remove its row"
        raise UserError(
            f"{len(broken)} of {len(indices)} images cannot be read ({dataset.source}): {path} is {why}{more}; "
            f"replace {them} from {dataset.source}"
        )
    return missing
