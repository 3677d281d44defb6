"""The layouts a delivery's zip can hold at its root (``downloader.choices.PACKS``):

- ``zip``: the images, ``manifest.csv`` and ``manifest.jsonl``;
- ``imagefolder``: Hugging Face's image folder: the images and ``metadata.jsonl``
  (``file_name``, every manifest field, ``text`` = the caption);
- ``parquet``: ``data/train-00000-of-0000N.parquet`` files of at most ``parquet_mb``
  with an ``image`` column in the Hugging Face Image feature's layout (a struct of
  ``bytes`` and ``path``) and every manifest field; row groups are written as they
  fill, so the job is never held in memory;
- ``webdataset``: tar shards ``shards/shard-000000.tar`` of at most ``shard_mb``, with
  ``<key>.<ext>``, ``<key>.json`` (the manifest row) and ``<key>.txt`` (the caption).

Every layout also has ``manifest.csv``; the archive adds CREDITS.html and README.md.
Parquet files and shards are streamed into their zip entries (no copy on disk).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import zipfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from downloader.choices import DEFAULT_SHARD_MB, PACK_DEFAULT, PACKS
from downloader.manifest import (
    INTEGER,
    MANIFEST_CSV,
    MANIFEST_FIELDS,
    MANIFEST_JSONL,
    STRING,
    manifest_csv,
    manifest_jsonl,
)

MB = 1 << 20
PARQUET_MAX_MB = 500  # Hugging Face's advice for a Parquet file of a dataset
ROW_GROUP_ROWS = 100  # and for the rows of a row group of images
ROW_GROUP_BYTES = 8 * MB  # bounds the writer's memory: a row group is held until written
PAGE_BYTES = 1 * MB  # a data page of the image column
PAGE_BATCH_ROWS = 4  # values handed to the page encoder at a time
COPY_BYTES = 1 * MB  # an image file is copied into the zip this much at a time
TAR_OVERHEAD = 3 * 1024 + 1024  # headers and padding of a sample's three members, about
IMAGEFOLDER_METADATA = "metadata.jsonl"
PARQUET_FOLDER = "data"
SHARD_FOLDER = "shards"


@dataclass(frozen=True)
class PackOptions:
    """How a delivery is laid out: one of PACKS, the WebDataset shards' and the Parquet
    files' largest size in MB."""

    layout: str = PACK_DEFAULT
    shard_mb: int = DEFAULT_SHARD_MB
    parquet_mb: int = PARQUET_MAX_MB

    def __post_init__(self) -> None:
        if self.layout not in PACKS:
            raise ValueError(f"unknown layout {self.layout!r}: choose from {', '.join(PACKS)}")
        if self.shard_mb < 1 or self.parquet_mb < 1:
            raise ValueError("shard and file sizes are at least 1 MB")


@dataclass(frozen=True)
class Entry:
    """One image to pack: its name in the delivery, its file, its manifest row."""

    name: str
    path: Path
    row: dict[str, object]

    @property
    def key(self) -> str:
        """The WebDataset sample key: the name without its extension (no dot in it)."""
        return self.name.rpartition(".")[0]


def layout_write(archive: zipfile.ZipFile, entries: Sequence[Entry], options: PackOptions) -> bool:
    """Write ``entries`` into ``archive`` in ``options.layout``; True when the images are
    files of their own at the zip's root (CREDITS.html can link them)."""
    writer: Callable[[zipfile.ZipFile, Sequence[Entry], PackOptions], None] = {
        "zip": _zip_layout,
        "imagefolder": _imagefolder_layout,
        "parquet": _parquet_layout,
        "webdataset": _webdataset_layout,
    }[options.layout]
    writer(archive, entries, options)
    return options.layout in ("zip", "imagefolder")


def _write_csv(archive: zipfile.ZipFile, entries: Sequence[Entry]) -> None:
    archive.writestr(MANIFEST_CSV, manifest_csv(entry.row for entry in entries))


def _add_image(archive: zipfile.ZipFile, entry: Entry, buffer: bytearray) -> None:
    """Copy an image's file into the zip as it is (stored), through ``buffer``: one read
    and one write for most images (ZipFile.write copies 8 KB at a time)."""
    info = zipfile.ZipInfo.from_file(entry.path, entry.name)
    info.compress_type = zipfile.ZIP_STORED
    view = memoryview(buffer)
    with open(entry.path, "rb", buffering=0) as source, archive.open(info, "w") as target:
        while got := source.readinto(buffer):
            target.write(view[:got])


def _add_images(archive: zipfile.ZipFile, entries: Sequence[Entry]) -> None:
    buffer = bytearray(COPY_BYTES)
    for entry in entries:
        _add_image(archive, entry, buffer)


def _zip_layout(archive: zipfile.ZipFile, entries: Sequence[Entry], options: PackOptions) -> None:
    _add_images(archive, entries)
    _write_csv(archive, entries)
    archive.writestr(MANIFEST_JSONL, manifest_jsonl(entry.row for entry in entries))


def _imagefolder_layout(archive: zipfile.ZipFile, entries: Sequence[Entry], options: PackOptions) -> None:
    _add_images(archive, entries)
    _write_csv(archive, entries)
    rows = (entry.row for entry in entries)
    archive.writestr(IMAGEFOLDER_METADATA, manifest_jsonl(rows, file_name="file", text="caption"))


def groups_by_size(entries: Sequence[Entry], limit: int, overhead: int = 0) -> list[list[Entry]]:
    """``entries`` in order, cut into groups whose bytes (plus ``overhead`` each) stay
    within ``limit``; an image larger than the limit makes a group of its own."""
    groups: list[list[Entry]] = []
    size = 0
    for entry in entries:
        need = int(entry.row["bytes"]) + overhead  # type: ignore[call-overload]
        if not groups or (size + need > limit and groups[-1]):
            groups.append([])
            size = 0
        groups[-1].append(entry)
        size += need
    return groups


# --- Parquet -----------------------------------------------------------------------


def parquet_name(index: int, total: int) -> str:
    return f"{PARQUET_FOLDER}/train-{index:05d}-of-{total:05d}.parquet"


def _parquet_schema():
    import pyarrow as pa

    kinds = {STRING: pa.string(), INTEGER: pa.int64()}
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [pa.field("image", image)]
    fields += [pa.field(name, kinds.get(kind, pa.int64())) for name, kind in MANIFEST_FIELDS.items()]
    # The features as the `datasets` library reads them: the image column is an Image.
    features = {"image": {"_type": "Image"}}
    for name, kind in MANIFEST_FIELDS.items():
        features[name] = {"dtype": "string" if kind == STRING else "int64", "_type": "Value"}
    metadata = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    return pa.schema(fields, metadata=metadata)


def _parquet_layout(archive: zipfile.ZipFile, entries: Sequence[Entry], options: PackOptions) -> None:
    pool = _parquet_memory_pool()
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    # Images are compressed already: their bytes are stored as they are, the rest zstd;
    # no statistics of the image bytes (min/max of whole files say nothing).
    compression = {name: "zstd" for name in MANIFEST_FIELDS} | {"image.bytes": "none", "image.path": "zstd"}
    groups = groups_by_size(entries, options.parquet_mb * MB)
    for index, group in enumerate(groups):
        with archive.open(parquet_name(index, len(groups)), "w", force_zip64=True) as raw:
            writer = pq.ParquetWriter(
                _Counting(raw),
                schema,
                compression=compression,
                use_dictionary=False,
                write_statistics=list(MANIFEST_FIELDS),
                # Pages of about 1 MB, filled a few values at a time: the encoder's and
                # the sink's buffers hold a page, not the whole row group.
                data_page_size=PAGE_BYTES,
                write_batch_size=PAGE_BATCH_ROWS,
                memory_pool=pool,
            )
            try:
                for batch in _row_groups(group):
                    writer.write_batch(_parquet_batch(batch, schema, pool), row_group_size=len(batch))
            finally:
                writer.close()
    _write_csv(archive, entries)


def _parquet_memory_pool():
    """The C library's allocator for what pyarrow allocates. Its default here, mimalloc,
    keeps what each row group frees in its own pages, and the Parquet writer takes some
    buffers from Arrow's default pool whatever pool it is given: packing the realistic
    corpus peaked about 45 MB higher. Arrow reads ARROW_DEFAULT_MEMORY_POOL when it first
    needs its default pool, so it is set before pyarrow is imported (only this module
    uses pyarrow; a value set by the operator is kept)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    import pyarrow as pa

    return pa.system_memory_pool()


def _row_groups(group: Sequence[Entry]) -> Iterator[list[Entry]]:
    batch: list[Entry] = []
    size = 0
    for entry in group:
        batch.append(entry)
        size += int(entry.row["bytes"])  # type: ignore[call-overload]
        if len(batch) >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _parquet_batch(batch: Sequence[Entry], schema, pool):
    """One row group as a record batch. The image bytes are read from their files
    straight into one Arrow buffer (no bytes object per image, no builder growing by
    doubling): the only copy of the group's images in memory."""
    import pyarrow as pa

    sizes = [entry.path.stat().st_size for entry in batch]
    offsets = array("i", [0])
    for size in sizes:
        offsets.append(offsets[-1] + size)
    data = pa.allocate_buffer(offsets[-1], memory_pool=pool)
    view = memoryview(data).cast("B")  # type: ignore[arg-type]
    for entry, start, size in zip(batch, offsets, sizes, strict=False):
        with open(entry.path, "rb") as image:
            if image.readinto(view[start : start + size]) != size:
                raise OSError(f"{entry.name} changed while it was packed")
    del view
    images = pa.StructArray.from_arrays(
        [
            pa.Array.from_buffers(pa.binary(), len(batch), [None, pa.py_buffer(offsets), data]),
            pa.array([entry.name for entry in batch], pa.string(), memory_pool=pool),
        ],
        fields=list(schema.field("image").type),
    )
    columns = [images] + [
        pa.array([entry.row[name] for entry in batch], schema.field(name).type, memory_pool=pool)
        for name in MANIFEST_FIELDS
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


class _Counting(io.RawIOBase):
    """A write-only stream that knows its position (a zip entry being written cannot
    tell it; Parquet's writer asks)."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        written = self._target.write(data)
        self._position += len(data)
        return written if written is not None else len(data)

    def tell(self) -> int:
        return self._position


# --- WebDataset --------------------------------------------------------------------


def shard_name(index: int) -> str:
    return f"{SHARD_FOLDER}/shard-{index:06d}.tar"


def _webdataset_layout(archive: zipfile.ZipFile, entries: Sequence[Entry], options: PackOptions) -> None:
    now = int(time.time())
    for index, group in enumerate(groups_by_size(entries, options.shard_mb * MB, TAR_OVERHEAD)):
        with (
            archive.open(shard_name(index), "w", force_zip64=True) as raw,
            tarfile.open(fileobj=raw, mode="w|", format=tarfile.USTAR_FORMAT) as shard,
        ):
            for entry in group:
                extension = entry.name.rpartition(".")[2]
                with open(entry.path, "rb") as image:
                    _tar_add(shard, f"{entry.key}.{extension}", image, entry.path.stat().st_size, now)
                meta = json.dumps(entry.row, ensure_ascii=False, separators=(",", ":")).encode()
                _tar_add(shard, f"{entry.key}.json", io.BytesIO(meta), len(meta), now)
                caption = str(entry.row["caption"]).encode()
                _tar_add(shard, f"{entry.key}.txt", io.BytesIO(caption), len(caption), now)
    _write_csv(archive, entries)


def _tar_add(shard: tarfile.TarFile, name: str, data: BinaryIO, size: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    shard.addfile(info, data)
