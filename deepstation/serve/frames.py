"""Requests to rows: a scoring request's body (MLflow's JSON orientations, CSV, or a multipart upload of files)
becomes a DataFrame of the task's input columns, checked value by value, so that a bad request is refused with one
line naming the field before the model sees it. Shared by the HTTP server, Ray Serve replicas and the pyfunc model.

Image and audio columns take a file's bytes in base64 (or a data: URL, or {"b64": ...}), and, for built-in sets
that hold arrays, nested lists of numbers; a path only when it resolves inside one of the `allowed` folders."""
from __future__ import annotations

import base64
import binascii
import json
import math
from numbers import Number
from pathlib import Path

import numpy as np
import pandas as pd

from deepstation.errors import DeepstationError

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class RequestError(DeepstationError):
    """A request the server refuses: `status` is the HTTP code (4xx), the message names the field."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(" ".join(str(message).split()))  # one line, whatever the parts held
        self.status = status


class Upload(bytes):
    """A file's bytes from a request. Its repr is short and names the column: errors quote values (a codec's
    "VALUE: cannot decode image"), and a file is no thing to quote."""

    column = None

    def __repr__(self) -> str:
        where = f" in column `{self.column}`" if self.column else ""
        return f"the file sent{where} ({len(self)} bytes)"


def input_columns(task) -> dict[str, str]:
    """{column: kind} for every column the task's inputs read; kind is number, category, image, audio, series,
    or key (a series' id, date or order)."""
    found: dict[str, str] = {}
    for inp in task.inputs:
        if inp.type == "table":
            found.update({c: "number" for c in inp.columns})
            found.update({c: "category" for c in inp.categorical})
        elif inp.type in ("image", "audio"):
            found[inp.column] = inp.type
        else:
            found.update({c: "series" for c in inp.columns})
            found.update({c: "key" for c in (inp.id, inp.date, inp.order) if c})
    return found


def request_frame(task, frame: pd.DataFrame, allowed: list[Path] | None = None) -> pd.DataFrame:
    """The request's rows, checked and converted for Run.predict: every input column present, numbers in numeric
    columns, image and audio values as file bytes (or arrays, or a path inside `allowed`); other columns kept as
    they are. Raises RequestError."""
    given = {str(c): frame[c].tolist() for c in frame.columns}
    checked = request_columns(task, given, len(frame), allowed)
    out = frame.reset_index(drop=True).copy()
    for column, values in columns_frame(checked, task).items():
        out[column] = values
    return out


def request_columns(task, columns: dict[str, list], rows: int, allowed: list[Path] | None = None) -> dict:
    """request_frame on columns of plain lists (the server's way: no DataFrame per request). Returns the input
    columns only, checked and converted."""
    kinds = input_columns(task)
    if not rows:
        raise RequestError("the request holds no rows; send at least one")
    missing = [c for c in kinds if c not in columns]
    if missing:
        have = ", ".join(map(str, columns)) or "none"
        raise RequestError(f"column `{missing[0]}`: missing from the request; expected columns "
                           f"{', '.join(kinds)} (got {have})")
    roots = [Path(a).resolve() for a in allowed or []]
    checked = {}
    for column, kind in kinds.items():
        values = columns[column]
        if kind == "number":
            checked[column] = [_number(v, column, row) for row, v in enumerate(values)]
        elif kind in ("category", "key"):
            checked[column] = [_scalar(v, column, row) for row, v in enumerate(values)]
        elif kind == "series":
            checked[column] = _series(values, column)
        else:
            checked[column] = [_media(v, column, row, kind, roots) for row, v in enumerate(values)]
    return checked


def columns_frame(columns: dict[str, list], task) -> pd.DataFrame:
    """Checked columns as the DataFrame Run.predict takes: numbers as float64, anything else as objects (arrays
    and file bytes stay whole in their cells)."""
    kinds = input_columns(task)
    data = {}
    for column, values in columns.items():
        if kinds.get(column) == "number" or kinds.get(column) == "series" and not _holds_arrays(values):
            data[column] = np.asarray(values, dtype=np.float64)
        else:
            cells = np.empty(len(values), dtype=object)
            for i, value in enumerate(values):
                cells[i] = value
            data[column] = pd.Series(cells, dtype=object, copy=False)  # text too: no Arrow strings (pandas 3)
    return pd.DataFrame(data)


def _holds_arrays(values: list) -> bool:
    return bool(values) and isinstance(values[0], np.ndarray)


def _where(column: str, row: int) -> str:
    return f"column `{column}`, row {row + 1}"


def _number(value, column: str, row: int) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None if not value.strip() else value
    if isinstance(value, bool) or not isinstance(value, Number) or not math.isfinite(float(value)):
        got = "nothing" if value is None else _show(value)
        raise RequestError(f"{_where(column, row)}: expected a number, got {got}")
    return float(value)


def _scalar(value, column: str, row: int):
    if value is None or isinstance(value, (str, Number)) and not isinstance(value, bool):
        return value
    raise RequestError(f"{_where(column, row)}: expected a text or a number, got {_show(value)}")


def _series(values: list, column: str) -> list:
    if not any(isinstance(v, (list, np.ndarray)) for v in values):  # one step per row: numbers
        return [_number(v, column, row) for row, v in enumerate(values)]
    out = []
    for row, v in enumerate(values):
        array = _numbers(v, column, row, "a list of numbers (a series)")
        if array.ndim not in (1, 2):
            raise RequestError(f"{_where(column, row)}: expected a list of numbers (a series), got an array of "
                               f"{array.ndim} dimensions")
        out.append(array)
    return out


def _numbers(value, column: str, row: int, what: str) -> np.ndarray:
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # 1e300 becomes inf, refused below
            array = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError):
        raise RequestError(f"{_where(column, row)}: expected {what}, got {_show(value)}") from None
    if array.size == 0 or not np.isfinite(array).all():
        raise RequestError(f"{_where(column, row)}: expected {what} of finite numbers, got {_show(value)}")
    return array


def _media(value, column: str, row: int, kind: str, roots: list[Path]):
    """An image or audio value as the codecs take it: file bytes (Upload), an array, or a path (str)."""
    if isinstance(value, (bytes, bytearray)):
        data = Upload(value)
    elif isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        data = _base64(value["b64"], column, row, kind, strict=True)
    elif isinstance(value, (list, np.ndarray)) and kind == "image":
        return _image_array(value, column, row)
    elif isinstance(value, str) and value.strip():
        data = _base64(value, column, row, kind, strict=False)
        if data is None:
            return _path(value.strip(), column, row, kind, roots)
    else:
        raise RequestError(f"{_where(column, row)}: expected an {kind} file in "
                           f"base64{', or an image as nested lists of numbers' if kind == 'image' else ''}; got "
                           f"{_show(value)}")
    _check_file(data, column, row, kind)
    data.column = column
    return data


def _base64(text: str, column: str, row: int, kind: str, strict: bool):
    """The bytes a base64 text (or data: URL) holds; None when it is no base64 and may be a path (strict: error)."""
    text = text.strip()
    if text.startswith("data:") and "," in text[:200]:
        text, strict = text.split(",", 1)[1], True
    if len(text) < 16 and not strict:  # too short for any image or sound file: a path
        return None
    try:
        return Upload(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        if strict:
            raise RequestError(f"{_where(column, row)}: not valid base64 (of an {kind} file)") from None
        return None


def _path(text: str, column: str, row: int, kind: str, roots: list[Path]) -> str:
    if not roots:
        raise RequestError(f"{_where(column, row)}: expected an {kind} file in base64; file paths are refused by "
                           f"this server (start it with --allow-dir DIR to read files inside DIR)")
    shown = repr(text if len(text) <= 100 else text[:97] + "...")
    try:
        path = Path(text).expanduser()
        candidates = [path.resolve()] if path.is_absolute() else [(root / path).resolve() for root in roots]
        for found in candidates:  # symbolic links followed: a link inside pointing outside is outside
            if any(found == root or found.is_relative_to(root) for root in roots):
                if not found.is_file():
                    raise RequestError(f"{_where(column, row)}: no such file {shown} inside the allowed folders")
                return str(found)
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, a loop of links
        raise RequestError(f"{_where(column, row)}: {shown} is no usable path") from None
    raise RequestError(f"{_where(column, row)}: the path {shown} is outside the allowed folders "
                       f"({', '.join(map(str, roots))}); send the file in base64")


def _image_array(value, column: str, row: int) -> np.ndarray:
    array = _numbers(value, column, row, "an image as nested lists of numbers (rows of pixels)")
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) or array.ndim not in (2, 3) or min(array.shape) < 1:
        raise RequestError(f"{_where(column, row)}: expected an image as HEIGHT x WIDTH (or x CHANNELS: 1, 3 or 4) "
                           f"numbers, got shape {list(array.shape)}")
    return array


def _check_file(data: bytes, column: str, row: int, kind: str) -> None:
    """Refuse a file the codec could not read, with the field named (cheap: headers and checksums, no decoding)."""
    import io

    if not data:
        raise RequestError(f"{_where(column, row)}: the {kind} file is empty")
    try:
        if kind == "image":
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.verify()
        else:
            import soundfile as sf

            info = sf.info(io.BytesIO(data))
            if info.frames < 1:
                raise ValueError("no samples")
    except Exception as err:  # Pillow and libsndfile raise many types for a damaged file
        name = "image (PNG, JPEG, ...)" if kind == "image" else "sound file (WAV, FLAC, OGG, ...)"
        raise RequestError(f"{_where(column, row)}: not a readable {name} ({_short(err)})") from None


def _short(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    text = text.split(" <_io.BytesIO")[0].split(": <_io.BytesIO")[0]
    return text[:120]


def _show(value) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, np.ndarray) else repr(value.tolist())
    return text if len(text) <= 40 else text[:37] + "..."


# -- bodies -----------------------------------------------------------------------------------------------------

def parse_body(content_type: str, body: bytes, task) -> tuple[dict[str, list], int]:
    """The rows a request's body holds, as ({column: values}, rows): JSON (dataframe_split, dataframe_records,
    instances or inputs), CSV, or a multipart/form-data upload of files. Raises RequestError (415 for a content
    type it does not read)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not body:
        raise RequestError("the request has no body; send JSON such as {\"dataframe_records\": [{...}]}")
    if kind == "application/json":
        return json_columns(_json(body), task)
    if kind == "text/csv":
        import io

        try:
            frame = pd.read_csv(io.BytesIO(body))
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
            raise RequestError(f"body: not readable CSV ({_short(err)})") from None
        return {str(c): frame[c].tolist() for c in frame.columns}, len(frame)
    if kind == "multipart/form-data":
        return multipart_columns(content_type, body, task)
    raise RequestError(f"Content-Type: expected application/json, text/csv or multipart/form-data, got "
                       f"{kind or 'none'!r}", status=415)


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(f"body: not valid JSON ({_short(err)})") from None
    except RecursionError:
        raise RequestError("body: JSON nested too deeply") from None


def json_columns(data, task) -> tuple[dict[str, list], int]:
    """MLflow's scoring JSON as ({column: values}, rows)."""
    if not isinstance(data, dict) or len(set(data) & set(FORMATS)) != 1:
        got = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise RequestError(f"body: expected a JSON object with one of {', '.join(FORMATS)}; got {got or 'nothing'}")
    (key,) = set(data) & set(FORMATS)
    value = data[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) \
                or not isinstance(value.get("data"), list):
            raise RequestError("dataframe_split: expected {\"columns\": [...], \"data\": [[...], ...]}")
        names = [str(c) for c in value["columns"]]
        if len(set(names)) != len(names):
            raise RequestError(f"dataframe_split.columns: a column is named twice ({', '.join(names)})")
        for row, values in enumerate(value["data"]):
            if not isinstance(values, list) or len(values) != len(names):
                raise RequestError(f"dataframe_split.data[{row}]: expected a list of {len(names)} values (one per "
                                   f"column)")
        return {c: [r[i] for r in value["data"]] for i, c in enumerate(names)}, len(value["data"])
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise RequestError("dataframe_records: expected a list of objects, one per row")
        return _records(value), len(value)
    # instances / inputs: a list of rows (objects, or bare values for a task with one input column), or an object
    # of columns
    columns = list(input_columns(task))
    if isinstance(value, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise RequestError(f"{key}: an object of columns needs a list of the same length in each column")
        return {str(c): v for c, v in value.items()}, lengths.pop()
    if not isinstance(value, list):
        raise RequestError(f"{key}: expected a list of rows, or an object of columns")
    if all(isinstance(r, dict) for r in value):
        return _records(value), len(value)
    if len(columns) == 1 and not any(isinstance(r, dict) for r in value):
        return {columns[0]: value}, len(value)
    raise RequestError(f"{key}: expected a list of objects such as {{{', '.join(f'{c!r}: ...' for c in columns)}}}"
                       .replace("'", '"'))


def _records(records: list[dict]) -> dict[str, list]:
    names = dict.fromkeys(str(k) for r in records for k in r)
    return {name: [r.get(name) for r in records] for name in names}


def multipart_columns(content_type: str, body: bytes, task) -> tuple[dict[str, list], int]:
    """Files upload (curl -F image=@7.png): each file is one row of the task's image or audio column (the field
    name picks the column when there are more); other fields give the same value to every row."""
    from email.parser import BytesParser
    from email.policy import HTTP

    if "boundary=" not in content_type:
        raise RequestError("Content-Type: multipart/form-data without a boundary")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise RequestError("body: not a multipart/form-data body")
    columns = input_columns(task)
    media = [c for c, kind in columns.items() if kind in ("image", "audio")]
    files: dict[str, list] = {}
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            raise RequestError("body: a multipart part has no name (Content-Disposition: form-data; name=...)")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            column = name if name in media else media[0] if len(media) == 1 else None
            if column is None:
                raise RequestError(f"field `{name}`: a file, but this model reads files only in "
                                   f"{', '.join(media) or 'no column'}; name the field after the column")
            files.setdefault(column, []).append(Upload(payload))
        else:
            fields[name] = payload.decode("utf-8", "replace")
    if not files:
        raise RequestError(f"body: no file uploaded; send one with -F {media[0] if media else 'FIELD'}=@FILE")
    counts = {len(v) for v in files.values()}
    if len(counts) > 1:
        raise RequestError(f"body: each file field needs the same number of files ({', '.join(files)})")
    rows = counts.pop()
    return {**files, **{name: [value] * rows for name, value in fields.items()}}, rows
