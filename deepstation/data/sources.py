"""Where rows come from: a CSV, TSV or Parquet file, a UCR/UEA archive file (.tsv without a header, sktime's .ts),
a folder of images with an index CSV, builtin:NAME, a SQL database (deepstation.data.sql), or one of these per
split ({train: FILE, test: FILE}) for data that comes split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deepstation.errors import DeepstationError, did_you_mean

BUILTINS = {
    # name -> "module:function"; imported only when asked for
    "digits": "deepstation.data.builtin.digits:load",
    "digit-strips": "deepstation.data.builtin.strips:load",
    "airline": "deepstation.data.builtin.series:airline",
    "cpi": "deepstation.data.builtin.series:cpi",
    "copper": "deepstation.data.builtin.series:copper",
    "m4-weekly": "deepstation.data.builtin.m4:weekly",
    "ucr": "deepstation.data.builtin.series:ucr",  # builtin:ucr/NAME
    "speech": "deepstation.data.builtin.speech:load",
}


@dataclass
class Table:
    """Rows plus where they came from: `origin` names them in errors, relative paths resolve in `base_dir`."""

    frame: pd.DataFrame
    origin: str
    base_dir: Path


GIVEN_SPLIT = "__given_split__"  # the column marking each row's file when data.source names one file per split


def read_task_source(task) -> Table:
    """The rows of a task's `data` section (its column patterns are expanded against them by
    deepstation.data.patterns)."""
    d = task.data
    files = [i.column for i in task.inputs if i.type in ("image", "audio")]
    return read_source(d.source, d.index, d.options, header=d.header, file_columns=files)


def read_source(source, index: str = "index.csv", options: dict | None = None, header: bool = True,
                file_columns=()) -> Table:
    """The rows of `data.source`: a path (str), builtin:NAME, a SqlSource (deepstation.data.sql), or a file per
    split (their rows marked in GIVEN_SPLIT; `file_columns`, paths relative to each file's folder, made absolute)."""
    if options and not (isinstance(source, str) and source.startswith("builtin:")):
        raise DeepstationError(f"data.options: {', '.join(options)} set, but options are settings of a builtin: "
                               f"source and {describe_source(source)} is not one; remove data.options")
    if hasattr(source, "sql"):
        from deepstation.data.sql import read_sql

        table = read_sql(source.sql)
    elif hasattr(source, "train"):
        table = _read_splits(source, index, header, file_columns)
    elif source.startswith("builtin:"):
        table = _builtin(source.split(":", 1)[1], options or {})
    else:
        table = _read_path(Path(source), index, header)
    if len(table.frame) == 0:
        raise DeepstationError(f"{table.origin}: the data set has no rows; point data.source at a file with data")
    table.frame = table.frame.reset_index(drop=True)
    return table


def describe_source(source) -> str:
    """`data.source` as one line for people and JSON: the path or builtin:NAME, or a SQL source with its URL's
    password masked."""
    if isinstance(source, str):
        return source
    if hasattr(source, "train"):
        return ", ".join(f"{k}: {v}" for k, v in source.model_dump(exclude_none=True).items())
    from deepstation.data.sql import describe

    return describe(source)


def _builtin(name: str, options: dict) -> Table:
    import importlib
    import inspect

    name, _, arg = name.partition("/")  # builtin:ucr/GunPoint -> ucr(name="GunPoint")
    if arg:
        options = {"name": arg, **options}
    if name not in BUILTINS:
        raise DeepstationError(f"data.source: no built-in data set `builtin:{name}`; available: "
                               + ", ".join(f"builtin:{n}" for n in BUILTINS) + "." + did_you_mean(name, BUILTINS))
    module, func = BUILTINS[name].split(":")
    loader = getattr(importlib.import_module(module), func)
    allowed = [p for p in inspect.signature(loader).parameters]
    for key in options:
        if key not in allowed:
            raise DeepstationError(f"data.options.{key}: builtin:{name} has no such option; its options are "
                                   f"{', '.join(allowed) or 'none'}." + did_you_mean(key, allowed))
    frame = loader(**options)
    return Table(frame, f"builtin:{name}" + (f"/{arg}" if arg else ""), Path.cwd())


def _read_splits(source, index: str, header: bool, file_columns) -> Table:
    """One table of the given splits' rows, each marked with its split in GIVEN_SPLIT. Their columns must agree."""
    parts, first = [], None
    for split in ("train", "valid", "test"):
        name = getattr(source, split)
        if name is None:
            continue
        table = _read_path(Path(name), index, header, f"data.source.{split}")
        frame = table.frame.copy()
        if first is not None:
            missing = [c for c in first.frame.columns if c not in frame.columns]
            extra = [c for c in frame.columns if c not in first.frame.columns]
            if missing or extra:
                what = f"lacks column `{missing[0]}`" if missing else f"has column `{extra[0]}`, not in the train file"
                raise DeepstationError(f"{table.origin} (data.source.{split}) {what}; every split's file needs the "
                                       f"columns of the train file ({first.origin})")
            frame = frame[list(first.frame.columns)]  # the same columns, maybe in another order
        for column in file_columns:  # paths relative to this file's folder, where it is not the train file's
            if column in frame and first is not None and table.base_dir != first.base_dir:
                frame[column] = [str(table.base_dir / v) if isinstance(v, str) and v and not Path(v).is_absolute()
                                 else v for v in frame[column]]
        frame[GIVEN_SPLIT] = split
        first = first or table
        parts.append(frame)
    frame = pd.concat(parts, ignore_index=True)
    frame.attrs = {}
    origin = " + ".join(str(getattr(source, s)) for s in ("train", "valid", "test") if getattr(source, s))
    return Table(frame, origin, first.base_dir)


def _read_path(path: Path, index: str, header: bool = True, field: str = "data.source") -> Table:
    if path.is_dir():
        index_path = path / index
        if not index_path.is_file():
            raise DeepstationError(f"{path}: a folder source needs an index CSV `{index}` with path,label rows "
                                   f"(or set data.index to the CSV's name)")
        return Table(_read_file(index_path, header), str(index_path), path)
    if not path.exists():
        raise DeepstationError(f"{field}: file {path} does not exist; check the path (relative paths are "
                               f"read from the task file's folder)")
    return Table(_read_file(path, header), str(path), path.parent)


def _read_file(path: Path, header: bool = True) -> pd.DataFrame:
    from deepstation.data import archives

    suffix = path.suffix.lower()
    try:
        if suffix == ".ts":
            return archives.read_ts(path)
        if suffix == ".tsv" and header and archives.headerless_numbers(path):
            return archives.read_ucr_tsv(path)
        if suffix in (".csv", ".tsv", ".txt"):
            return _read_csv(path, "\t" if suffix == ".tsv" else ",", header)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except pd.errors.EmptyDataError as err:
        raise DeepstationError(f"{path}: the file is empty; it needs a header row and data rows") from err
    except UnicodeDecodeError:
        raise DeepstationError(f"{path}: not UTF-8 text ({_first_bad_byte(path)}); save it as UTF-8 (e.g. "
                               f"`iconv -f latin1 -t utf-8`, or choose UTF-8 when exporting)") from None
    except (pd.errors.ParserError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeepstationError(f"{path}: cannot be read as {suffix[1:]} ({first})") from err
    raise DeepstationError(f"{path}: unknown file type `{suffix}`; use .csv, .tsv, .parquet, .ts or a folder of images")


def _first_bad_byte(path: Path) -> str:
    """Where a file stops being UTF-8: 'byte 0xe9 at position 329, line 7' (pandas' own position is within a
    chunk)."""
    import codecs
    import itertools

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 0
    with open(path, "rb") as f:
        for chunk in itertools.chain(iter(lambda: f.read(1 << 20), b""), [None]):  # None: the end of the file
            pending = len(decoder.getstate()[0])  # the start of a character cut by the previous chunk
            try:
                decoder.decode(chunk or b"", final=chunk is None)
            except UnicodeDecodeError as err:
                where = offset - pending + err.start
                line = lines + err.object.count(b"\n", 0, err.start) + 1
                return f"byte 0x{err.object[err.start]:02x} at position {where}, line {line}"
            if chunk:
                offset, lines = offset + len(chunk), lines + chunk.count(b"\n")
    return "an invalid byte"


def _read_csv(path: Path, sep: str, header: bool = True) -> pd.DataFrame:
    import warnings

    if not header:  # data.header: false: columns col_0, col_1, ...
        frame = pd.read_csv(path, sep=sep, header=None, index_col=False)
        return frame.rename(columns=lambda i: f"col_{i}")
    with warnings.catch_warnings():
        # index_col=False: a row with one field more than the header (a comma at the end of each line) would
        # otherwise make pandas read the first column as the index, shifting every column's values one to the left
        warnings.filterwarnings("error", message="Length of header", category=pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, sep=sep, index_col=False)
        except pd.errors.ParserWarning:
            raise DeepstationError(f"{path}: the rows have more fields than the header has names; name every column "
                                   f"in the header row, or remove the extra fields") from None


def resolve_file(value, base_dir: Path, what: str) -> Path:
    """A path from a data column: absolute, or relative to the index file's folder. ValueError when empty."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected {what} path, got {value!r}")
    path = Path(value)
    return path if path.is_absolute() else base_dir / path


def describe_file(value, base_dir: Path) -> str:
    """The path as an error message should name it."""
    try:
        return str(resolve_file(value, base_dir, "a file"))
    except ValueError:
        return repr(value)


def decode_rows(table: Table, column: str, decode, kind: str, errors: tuple, reason, on_bad_sample: str):
    """decode(value, base_dir) for every row of `column`: (results, with None where a row failed; bad-row mask).
    A failure stops with the file and row named, unless on_bad_sample is skip. Shared by the image and audio
    codecs; `reason(err)` words the failure."""
    import numpy as np

    values = table.frame[column].tolist()
    found, bad = [], np.zeros(len(values), dtype=bool)
    for row, value in enumerate(values):
        try:
            found.append(decode(value, table.base_dir))
        except errors as err:
            if on_bad_sample != "skip":
                raise DeepstationError(
                    f"{describe_file(value, table.base_dir)}: cannot decode {kind} ({reason(err)}; row {row + 1} of "
                    f"{table.origin}); fix or remove it, or set data.on_bad_sample: skip") from err
            bad[row] = True
            found.append(None)
    return found, bad


def require_columns(table: Table, columns: dict[str, str]) -> None:
    """columns: {column: the task field that names it}. Raises naming the first missing one."""
    present = set(table.frame.columns)  # a set: a new frame's Index builds a hash table for `in`
    for column, field in columns.items():
        if column not in present:
            have = [str(c) for c in table.frame.columns]
            raise DeepstationError(f"{table.origin}: column `{column}` (named by {field}) is missing; the columns "
                                   f"are {', '.join(have)}." + did_you_mean(column, have))


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


def read_inputs(path, file_column: str | None, index: str = "index.csv", header: bool = True) -> Table:
    """Rows to predict: a CSV or Parquet file, a folder (with an index CSV, or just images or sound files), or
    one image or sound file. `file_column`: the column of a task whose one input is an image or audio."""
    from deepstation.data.image import IMAGE_SUFFIXES

    media = IMAGE_SUFFIXES | AUDIO_SUFFIXES
    path = Path(path)
    if not path.exists():
        raise DeepstationError(f"{path}: no such file or folder; pass the CSV or Parquet file, image, sound file or "
                               f"folder of them to predict")
    if path.is_dir() and not (path / index).is_file():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in media)
        if not found:
            raise DeepstationError(f"{path}: no images or sound files ({', '.join(sorted(media))}) and no `{index}` "
                                   f"here")
        return Table(pd.DataFrame({_file_column(file_column, path): found}), str(path), path)
    if path.suffix.lower() in media:
        return Table(pd.DataFrame({_file_column(file_column, path): [path.name]}), str(path), path.parent)
    return read_source(str(path), index, header=header)


def _file_column(column: str | None, path: Path) -> str:
    if column is None:
        raise DeepstationError(f"{path}: files alone can be predicted only by a task whose one input is an image or "
                               f"audio; pass a CSV or Parquet file with the input columns instead")
    return column
