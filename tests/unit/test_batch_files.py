"""Hostile batch files (property-based): read_batch_csv + validate_batch, the whole of 05's
`--from-file` check, run in-process without Spark.

Each example is a small valid UCI batch that hypothesis then damages (cells, headers, delimiter,
quoting, encoding, line ends, field counts, huge cells). The contract: the check either raises
BatchError with a one-line message, or returns exactly the rows written, typed; never anything
else. Where the damage keeps the file decidable (no quote, delimiter or line break inside a cell)
an independent oracle says which of the two it must be.
"""

from __future__ import annotations

import re
from pathlib import Path
from tempfile import TemporaryDirectory

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.batches import BatchError, generate_batch, read_batch_csv, validate_batch
from lib.features import CATEGORIES, NUMERIC, NUMERIC_RANGES, RAW_COLUMNS, TARGET, TARGET_VALUES, pandas_dtypes

HOSTILE_CELLS = [
    "", " ", "NaN", "nan", "NA", "null", "None", "inf", "-inf", "Infinity", "1e3", "1.5", "-0", "007", "+5",
    " 5", "5 ", "0x10", "true", "٣", "１２", "é", "\u00a0", "\x00",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "99999999999999999999999999999999", "-99999999999999999999",
    '"', "'", 'a"b', ";", "a;b", "\n", "\r\n", "yes\u2028", "x" * 200_000,
]  # fmt: skip
cells = st.one_of(
    st.sampled_from(HOSTILE_CELLS),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.sampled_from(sorted({v for values in CATEGORIES.values() for v in values} | set(TARGET_VALUES))),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)
UNDECIDABLE = re.compile(r"[\";\r\n]")  # the oracle does not model CSV quoting or embedded row breaks


def cell_valid(col: str, text: str) -> bool:
    """An independent oracle for one cell written without quotes."""
    if col in NUMERIC:
        low, high = NUMERIC_RANGES[col]
        return re.fullmatch(r"-?[0-9]+", text) is not None and low <= int(text) <= high
    if col == TARGET:
        return text in TARGET_VALUES
    return text in CATEGORIES[col]


@st.composite
def hostile_files(draw: st.DrawFn, base: pd.DataFrame) -> tuple[str, list[list[str]] | None]:
    """A file's text and, when the oracle can decide, the grid of cells the reader must see
    (header first, columns in file order) -- None when the file is undecidable."""
    n = draw(st.integers(min_value=0, max_value=4))
    rows = [[str(v) for v in row] for row in base.head(n).itertuples(index=False)]
    header = list(RAW_COLUMNS)
    decidable = True
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        kind = draw(st.sampled_from(["cell", "cell", "cell", "header", "ragged"]))
        if kind == "cell" and rows:
            r = draw(st.integers(0, len(rows) - 1))
            c = draw(st.integers(0, len(rows[r]) - 1))
            rows[r][c] = draw(cells)
            decidable &= not UNDECIDABLE.search(rows[r][c])
        elif kind == "header":
            what = draw(st.sampled_from(["duplicate", "drop", "rename", "upper"]))
            c = draw(st.integers(0, len(header) - 1))
            if what == "duplicate":
                header.append(header[c])
                rows = [row + [row[c] if c < len(row) else "x"] for row in rows]
            elif what == "drop":
                del header[c]
                rows = [row[:c] + row[c + 1 :] for row in rows]
            elif what == "rename":
                header[c] = draw(st.sampled_from(["score", "", "age ", "Unnamed: 0", "y.1"]))
            else:
                header[c] = header[c].upper()
        elif kind == "ragged" and rows:
            r = draw(st.integers(0, len(rows) - 1))
            rows[r] = rows[r][:-1] if draw(st.booleans()) else rows[r] + ["extra"]
    order = draw(st.permutations(range(len(header))))  # reordered columns are fine
    header = [header[i] for i in order]
    rows = [[row[i] for i in order if i < len(row)] + row[len(header) :] for row in rows]
    quote_text = draw(st.booleans())  # UCI style: text quoted, numbers bare
    delimiter = draw(st.sampled_from([";", ";", ";", ",", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))

    def field(col: str, value: str) -> str:
        return f'"{value}"' if quote_text and col not in NUMERIC else value

    lines = [delimiter.join(field("", h) for h in header)]
    lines += [delimiter.join(field(header[i] if i < len(header) else "", v) for i, v in enumerate(row)) for row in rows]
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    if delimiter != ";" and len(header) > 1:
        return text, [["<wrong delimiter>"]]  # decidable: always rejected
    return text, ([header, *rows] if decidable else None)


def expected_frame(grid: list[list[str]]) -> pd.DataFrame | None:
    """What the reader must return for a decidable file, or None if it must reject it."""
    header, rows = grid[0], grid[1:]
    if sorted(header) != sorted(RAW_COLUMNS) or not rows:
        return None
    if any(len(row) != len(header) for row in rows):
        return None
    if not all(cell_valid(h, v) for row in rows for h, v in zip(header, row, strict=True)):
        return None
    frame = pd.DataFrame(rows, columns=header, dtype=object).loc[:, list(RAW_COLUMNS)]
    for col in NUMERIC:
        frame[col] = [int(v) for v in frame[col]]
    return frame.astype(pandas_dtypes())


def check_file(path: Path) -> pd.DataFrame:
    """05's --from-file check, without the append."""
    batch = read_batch_csv(path)
    validate_batch(batch)
    return batch


@pytest.fixture(scope="module")
def base(bank_sample: pd.DataFrame) -> pd.DataFrame:
    return generate_batch(bank_sample, 4, seed=3)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_batch_file_is_rejected_in_one_line_or_read_exactly(base: pd.DataFrame, data: st.DataObject):
    text, grid = data.draw(hostile_files(base))
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.csv"
        path.write_bytes(text.encode("utf-8"))
        try:
            got = check_file(path)
        except BatchError as exc:
            got, message = None, str(exc)
            assert message and "\n" not in message and "\r" not in message, message
    if grid is not None:
        expected = expected_frame(grid) if grid != [["<wrong delimiter>"]] else None
        if expected is None:
            assert got is None, f"accepted a bad file:\n{text[:500]!r}"
        else:
            assert got is not None, f"rejected a good file: {message}\n{text[:500]!r}"
            pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
    elif got is not None:  # undecidable but accepted: it must still be a whole, typed, valid batch
        assert list(got.columns) == list(RAW_COLUMNS)
        assert {c: str(t) for c, t in got.dtypes.items()} == pandas_dtypes()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("age\n99999999999999999999\n", "age: 1 value.*outside"),
        ("\ufeffage;x\r\n1;2;3\r\n", "do not have the header's 2 fields \\(line 2 has 3\\)"),
        ("age;age\n1;2\n", "more than once: 'age'"),
        ('age\n"abc"d\n', "not a readable"),
        ("", "is empty"),
        ("\xff", None),
    ],
)
def test_file_level_problems_are_named(tmp_path: Path, text: str, message: str | None):
    path = tmp_path / "b.csv"
    path.write_bytes(text.encode("latin-1") if message is None else text.encode("utf-8"))
    with pytest.raises(BatchError, match=message or "not a readable ';'-separated UTF-8 CSV"):
        check_file(path)


def test_huge_integer_in_a_full_batch_is_out_of_range_not_an_overflow(tmp_path: Path, base: pd.DataFrame):
    frame = base.astype(object)
    frame.loc[1, "balance"] = "9" * 30
    path = tmp_path / "b.csv"
    path.write_text(frame.to_csv(sep=";", index=False))
    with pytest.raises(BatchError, match=r"balance: 1 value\(s\) outside \[-1000000, 10000000\]") as info:
        check_file(path)
    assert info.value.problems == [f"balance: 1 value(s) outside [-1000000, 10000000] (e.g. '{'9' * 30}')"]
