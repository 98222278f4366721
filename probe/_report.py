"""Reports: markdown tables and JSON files, shared by ``probe eval``, ``probe bench`` and the
tables of the evaluation results (agreement, faithfulness, sanity).

Base layer: the standard library and :mod:`probe._errors` only; tensors and arrays are
recognised by duck typing (``tolist``), so importing this module never imports torch.

* :func:`format_value`: one table cell (fixed decimals, a placeholder for missing values);
* :func:`markdown_table`: a GitHub markdown table from a header and rows;
* :func:`jsonable`: plain JSON values from tensors, arrays, paths and dataclasses;
* :func:`write_json`: write a JSON document atomically.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from probe._atomic import atomic_write, creation_error, nearest_existing
from probe._errors import ProbeError

__all__ = [
    "check_output_dir",
    "check_output_file",
    "format_value",
    "jsonable",
    "markdown_table",
    "write_json",
]

Align = Literal["left", "right"]

#: Placeholder of a missing value (``None``, NaN, infinity) in a table cell.
MISSING = "–"


def format_value(
    value: Any, digits: int = 3, *, suffix: str = "", missing: str | None = MISSING
) -> str:
    """One table cell: floats with ``digits`` decimals, anything else as ``str``.

    Args:
        value: the cell.
        digits: decimals of floats (``0.1234`` -> ``"0.123"`` with 3).
        suffix: appended to every present value, e.g. ``"x"`` for ratios.
        missing: the text of ``None``, NaN and infinities (no suffix); ``None`` writes them as
            Python does (``"None"``, ``"nan"``, ``"inf"``).
    """
    if missing is not None and (
        value is None or (isinstance(value, float) and not math.isfinite(value))
    ):
        return missing
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def markdown_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    digits: int = 3,
    *,
    align: Sequence[Align] | None = None,
    missing: str | None = MISSING,
) -> str:
    """A GitHub markdown table, one line per row, cells written with :func:`format_value`.

    Args:
        header: the column names.
        rows: the rows, each with one value per column (strings are written as they are).
        digits: decimals of float cells.
        align: ``"left"`` or ``"right"`` per column; default: the first column left (a
            label), the others right (numbers). ``"left"`` is markdown's default ``---``.
        missing: the text of ``None`` and non-finite floats (see :func:`format_value`).

    Returns:
        The table without a trailing newline.

    Raises:
        ProbeError: ``align`` or a row has not one entry per column.
    """
    if align is None:
        align = ["left"] + ["right"] * (len(header) - 1)
    if len(align) != len(header) or any(a not in ("left", "right") for a in align):
        raise ProbeError(
            f"align needs 'left' or 'right' for each of the {len(header)} columns, got {align!r}"
        )
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "right" else "---" for a in align) + "|",
    ]
    for row in rows:
        if len(row) != len(header):
            raise ProbeError(
                f"a table row has {len(row)} cells but the header {len(header)} columns: "
                "pass one value per column"
            )
        lines.append(
            "| " + " | ".join(format_value(v, digits, missing=missing) for v in row) + " |"
        )
    return "\n".join(lines)


def jsonable(obj: Any) -> Any:
    """Plain JSON values: tensors and arrays to (nested) lists, NaN and infinity to ``None``,
    tuples and sets to lists, paths to strings, dataclasses to dicts, keys to strings.

    Anything else is returned as it is (``json.dumps`` then says what it cannot write).
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [jsonable(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    tolist = getattr(obj, "tolist", None)  # torch tensors, numpy arrays and scalars
    if callable(tolist):
        return jsonable(tolist())
    return obj


def _absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute; a relative path in a deleted working folder is a ProbeError (the
    folder's files are gone, and ``os.getcwd`` raises FileNotFoundError)."""
    try:
        return Path(os.path.abspath(os.fspath(path)))
    except FileNotFoundError:
        raise ProbeError(
            f"cannot write {os.fspath(path)!r}: the current folder no longer exists (it was "
            "deleted); cd to an existing folder or pass an absolute path"
        ) from None


def _refuse_dash(path: str | os.PathLike[str], option: str, kind: str) -> None:
    """``-`` means standard output to a shell user; probe writes files, so it is refused rather
    than taken for a file or folder named ``-`` in the current folder (``./-`` still is)."""
    if not os.fspath(path).strip():
        raise ProbeError(f"{option} is empty: pass a {kind} name, or drop {option}")
    if os.fspath(path) == "-":
        raise ProbeError(
            f"{option} - is not standard output here: probe writes a {kind}; pass a {kind} "
            f"name (./- for a {kind} literally named '-')"
        )


def _folder_syntax(path: str | os.PathLike[str]) -> bool:
    """``path`` is written as a folder: it ends with a separator, ``.`` or ``..`` (``Path``
    drops a trailing ``/``, so ``--json results/`` wrote a file named ``results``)."""
    text = os.fspath(path)
    seps = tuple(s for s in (os.sep, os.altsep) if s)
    return text.endswith(seps) or os.path.basename(text) in (".", "..")


def _refuse_folder_syntax(path: str | os.PathLike[str], what: str) -> None:
    if _folder_syntax(path):
        text = os.fspath(path)
        why = f"{os.path.basename(text)!r} is a folder" if os.path.basename(text) else (
            f"it ends with {text[-1]!r}")
        example = os.path.join(text.rstrip(os.sep) or os.sep, "results.json")
        raise ProbeError(
            f"{what} {text!r} names a folder ({why}): pass a file name, e.g. {example!r}"
        )


def _check_length(target: Path, option: str) -> None:
    """A path the file system cannot name (a part over 255 bytes, ``ENAMETOOLONG``) is one
    ProbeError; ``Path.exists`` raised it as an OSError."""
    try:
        target.exists()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        longest = max(target.parts, key=lambda part: len(os.fsencode(part)))
        shown = longest if len(longest) <= 24 else longest[:20] + "..."
        raise ProbeError(
            f"{option} is too long for the file system ({exc.strerror}: {shown!r} is "
            f"{len(os.fsencode(longest))} bytes); choose a shorter name"
        ) from None


def check_output_file(path: str | os.PathLike[str], *, option: str = "--json",
                      json_file: bool = True) -> None:
    """Fail fast, before any work, when :func:`write_json` could not write ``path``.

    Besides ``os.access``, a temporary file (a folder when folders are missing) is created in
    the nearest existing folder and removed (:func:`probe._atomic.creation_error`): as root,
    ``os.access`` calls ``/proc`` writable.

    With ``json_file`` (the default; ``False`` for other files, such as weights), a name
    ending like a figure or page probe writes (``--json results.png``) is refused too: JSON
    would be written under a name that image viewers and browsers fail to open.

    Raises:
        ProbeError: ``path`` is ``-`` (``option`` is named), a folder or written as one
            (``results/``), an existing file that is not a regular one (``/dev/null``), lies
            under a regular file, or its nearest existing folder is not writable.
    """
    _refuse_dash(path, option, "file")
    _refuse_folder_syntax(path, option)
    suffix = Path(os.fspath(path)).suffix
    if json_file and suffix.lower() in FILE_SUFFIXES - {".json"}:
        text = os.fspath(path)
        raise ProbeError(f"{option} {text!r} ends with {suffix!r}, but {option} writes JSON: "
                         f"name it {text[: len(text) - len(suffix)] + '.json'!r}")
    target = _absolute(path)
    _check_length(target, option)
    if target.is_dir():
        raise ProbeError(f"cannot write {path}: it is a folder; pass a file name")
    if target.exists() and not target.is_file():  # /dev/null: the rename would replace it
        raise ProbeError(f"cannot write {path}: it is not a regular file (a device, pipe or "
                         "socket) and would be replaced by one; pass a file name")
    ancestor = nearest_existing(target.parent)
    if not ancestor.is_dir():
        raise ProbeError(
            f"cannot write {path}: {ancestor} is not a folder (a file is in the way); "
            "choose another output path"
        )
    reason = _unwritable(ancestor, directory=ancestor != target.parent)
    if reason is not None:
        raise ProbeError(f"cannot write {path}: {ancestor} {reason}; choose another output path")


def check_output_dir(path: str | os.PathLike[str], *, option: str = "--out") -> None:
    """Fail fast, before any work, when files could not be written into the folder ``path``.

    Nothing is left behind: the folder (and missing parents) is made later, by the writer;
    the check creates and removes a temporary file (or folder, when ``path`` is missing) in
    the nearest existing folder, since as root ``os.access`` calls ``/proc`` writable.

    Raises:
        ProbeError: ``path`` is ``-``, a regular file, lies under a regular file, or its
            nearest existing folder is not writable; the message names ``option``.
    """
    _refuse_dash(path, option, "folder")
    target = _absolute(path)
    _check_length(target, option)
    if target.exists() and not target.is_dir():
        raise ProbeError(f"{option} {os.fspath(path)!r} is a file: pass a folder")
    _refuse_file_name(path, target, option)
    if target.is_symlink() and not target.exists():  # was "cannot create --out (File exists)"
        raise ProbeError(
            f"{option} {os.fspath(path)!r} is a link to {os.readlink(target)!r}, which does not "
            "exist: create that folder or pass another output folder"
        )
    ancestor = nearest_existing(target)
    if not ancestor.is_dir():
        raise ProbeError(
            f"cannot create {option} {os.fspath(path)!r}: {str(ancestor)!r} is a file; "
            "choose another output folder"
        )
    reason = _unwritable(ancestor, directory=ancestor != target)
    if reason is not None:
        raise ProbeError(
            f"cannot write to {option} {os.fspath(path)!r}: {str(ancestor)!r} {reason}; "
            "choose another output folder"
        )


#: Suffixes of the files probe writes (figures, pages, JSON): a missing ``--out`` folder named
#: ``fig.png`` is a file name taken for a folder (it became a folder holding the figure).
FILE_SUFFIXES = frozenset((".png", ".svg", ".pdf", ".html", ".htm", ".json", ".jpg", ".jpeg",
                           ".gif", ".webp", ".eps", ".ps", ".tif", ".tiff"))


def _refuse_file_name(path: str | os.PathLike[str], target: Path, option: str) -> None:
    """A missing output folder whose name ends with a file suffix (``--out fig.png``) is
    refused: the files' names are chosen by probe, so that folder would hold ``fig.png/x.png``.
    An existing folder of that name is used as it is."""
    text = os.fspath(path)
    if os.path.lexists(target) or target.suffix.lower() not in FILE_SUFFIXES or _folder_syntax(
            text):  # fig.png/ is written as a folder: taken as one
        return
    stem = text[: len(text) - len(target.suffix)] or "probe-out"
    raise ProbeError(
        f"{option} {text!r} looks like a file name, but {option} is the folder the files go "
        f"into (probe names them from the view, model and input and prints their paths): pass "
        f"a folder, e.g. {option} {stem!r}, or create the folder {text!r} first to use that name"
    )


def _unwritable(folder: Path, *, directory: bool) -> str | None:
    """Why nothing can be written into the existing ``folder`` (``"is not writable"``, or
    ``"cannot hold new files (reason)"``), else ``None``. ``os.access`` trusts permission bits,
    which root bypasses (``/proc``), so a temporary file (``directory``: folder) is also
    created and removed there, as the writer will."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "is not writable"
    reason = creation_error(folder, directory=directory)
    return None if reason is None else f"cannot hold new files ({reason})"


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (strict: no NaN) to ``path`` atomically and return the path.

    The text goes to a temporary file in the target folder, which then replaces ``path``
    (``os.replace``): readers never see a half-written file, and on any error ``path`` is
    left as it was. Missing folders are created. Pass :func:`jsonable` output for documents
    holding tensors or NaN.

    Raises:
        ProbeError: ``path`` is a folder or written as one (``results/``), lies under a
            regular file, or cannot be written.
        ValueError, TypeError: ``obj`` is not JSON (a non-finite float, an unknown type);
            nothing is written.
    """
    _refuse_folder_syntax(path, "cannot write JSON:")
    target = Path(os.fspath(path))
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    if target.is_dir():
        raise ProbeError(f"cannot write {target}: it is a folder; pass a file name")
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ProbeError(
            f"cannot write {target}: {directory} is not a folder (a file is in the way); "
            "choose another output path"
        ) from None
    except OSError as exc:
        raise ProbeError(
            f"cannot write {target}: cannot create {directory} ({exc.strerror or exc}); "
            "choose another output path"
        ) from None
    return atomic_write(target, lambda fh: fh.write(text), what="JSON", binary=False)
