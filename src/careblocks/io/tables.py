"""Text tables as people save them: encodings and local number formats.

* Encodings: UTF-8 (with or without BOM) and UTF-16 with a BOM are read; text that is not
  UTF-8 is read as Latin-1 (Windows-1252) with a warning; UTF-16 without a BOM is refused.
* Numbers: thousands separators (``4.600``, ``4,600``), decimal commas (``0,35``) and both
  (``4.600,5``) are read where the column leaves no doubt, with a warning naming the column;
  a column where ``4.600`` could be 4.6 or 4600 is refused with one line.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from careblocks.errors import DataQualityWarning, InputDataError

_DOT_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(\.\d{3})+$")
_COMMA_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(,\d{3})+$")
_INT = re.compile(r"^-?\d+$")
_DECIMAL_COMMA = re.compile(r"^-?\d*,\d+$")
_EU = re.compile(r"^-?[1-9]\d{0,2}(\.\d{3})+,\d+$")
_EN = re.compile(r"^-?[1-9]\d{0,2}(,\d{3})+\.\d+$")
_CP1252_ONLY = re.compile("[\u20ac\u201a-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u02c6\u02dc]")


def decode_text(path: Path, *, what: str) -> str:
    """The text of a CSV file, decoded as described in the module docstring."""
    data = Path(path).read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data[:4096].count(b"\x00") > len(data[:4096]) // 4:
        raise InputDataError(
            f"{what}: {path}: looks like UTF-16 text without a byte-order mark; save it as UTF-8 "
            "(in Excel: CSV UTF-8)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("cp1252", errors="replace")
        warnings.warn(
            f"{what}: {path}: not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "read as Latin-1/Windows-1252: check names with accents, or save the file as UTF-8",
            DataQualityWarning,
            stacklevel=3,
        )
        return text


def parse_numbers(raw: pd.Series, *, what: str, path: Path, column: str) -> pd.Series:
    """A column of text as numbers when it holds numbers (in any format this module reads),
    else the text unchanged (empty strings as missing)."""
    s = raw.astype("string").str.strip()
    s = s.mask(s == "")
    vals = s.dropna()
    if vals.empty:
        return pd.to_numeric(s, errors="coerce") if s.isna().all() else s.astype(object)
    v = vals.to_numpy(dtype=object)
    n = len(v)

    def share(rx: re.Pattern) -> np.ndarray:
        return np.fromiter((bool(rx.match(x)) for x in v), dtype=bool, count=n)

    dot_k, comma_k, ints = share(_DOT_THOUSANDS), share(_COMMA_THOUSANDS), share(_INT)
    dec_comma, eu, en = share(_DECIMAL_COMMA), share(_EU), share(_EN)

    def note(kind: str, example: str, read: float) -> None:
        warnings.warn(
            f"{what}: {path}: column '{column}' uses {kind} (e.g. {example!r} read as {read:g})",
            DataQualityWarning, stacklevel=4)

    def refuse(example: str) -> None:
        raise InputDataError(
            f"{what}: {path}: column '{column}' holds numbers such as {example!r} that could be "
            "read two ways (a decimal point or a thousands separator); write numbers without "
            "thousands separators, e.g. 4600 or 4.6"
        )

    # "4.600" among plain integers: thousands separators (a decimal writer would not pad to
    # exactly three decimals only on values of 1,000 and more)
    if (dot_k.any() or eu.any()) and (dot_k | ints | eu).all():
        small_ints = all(abs(int(x)) < 1000 for x in v[ints])
        two_groups = any(x.count(".") > 1 for x in v[dot_k])
        if (ints.any() and small_ints) or two_groups or eu.any():
            out = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
            res = pd.to_numeric(out, errors="coerce")
            ex = v[dot_k | eu][0]
            note("'.' as a thousands separator", ex,
                 float(ex.replace(".", "").replace(",", ".")))
            return res
        if any(x.endswith("0") for x in v[dot_k]):
            refuse(v[dot_k][0])
    if comma_k.any() and (comma_k | ints | en).all():
        if (ints.any() and all(abs(int(x)) < 1000 for x in v[ints])) or en.any() or any(
                x.count(",") > 1 for x in v[comma_k]):
            res = pd.to_numeric(s.str.replace(",", "", regex=False), errors="coerce")
            ex = v[comma_k][0]
            note("',' as a thousands separator", ex, float(ex.replace(",", "")))
            return res
        refuse(v[comma_k][0])
    if dec_comma.any() and (dec_comma | ints).all():
        res = pd.to_numeric(s.str.replace(",", ".", regex=False), errors="coerce")
        ex = v[dec_comma][0]
        note("a decimal comma", ex, float(ex.replace(",", ".")))
        return res
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().sum() == len(vals):
        return num
    return s.astype(object).where(s.notna(), None)
