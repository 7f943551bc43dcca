import io
import zipfile
from pathlib import Path

import pytest

from lib import dataset
from lib.config import PROJECT_ROOT
from lib.dataset import DatasetError, extract_and_validate, fetch, validate_csv_bytes

HEADER = '"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";"month";"duration";"campaign";"pdays";"previous";"poutcome";"y"\n'  # noqa: E501
ROW = '58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;"unknown";"no"\n'
ROW_YES = '33;"services";"single";"secondary";"no";10;"no";"no";"cellular";7;"jun";500;2;-1;0;"unknown";"yes"\n'


def small_csv(rows: int = 3) -> bytes:
    return (HEADER + ROW * (rows - 1) + ROW_YES).encode()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


@pytest.fixture
def small_expected(monkeypatch: pytest.MonkeyPatch):
    """Pretend bank-full has 3 rows so tests can use tiny files."""
    monkeypatch.setattr(dataset, "EXPECTED_ROWS", {"bank-full.csv": 3, "bank.csv": 3})


def test_valid_csv_counts_rows_and_positives(small_expected):
    assert validate_csv_bytes(small_csv()) == (3, 1)


def test_real_vendored_file_is_valid():
    with zipfile.ZipFile(PROJECT_ROOT / "data" / "vendor" / "bank.zip") as zf:
        rows, positives = validate_csv_bytes(zf.read("bank-full.csv"))
    assert (rows, positives) == (45_211, 5_289)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty"),
        (HEADER.replace('"y"', '"target"').encode() + ROW.encode(), "unexpected header"),
        ((HEADER + ROW + '58;"management";"married"\n').encode(), "line 3 has 3 fields"),
        ((HEADER + ROW.replace('"no"\n', '"maybe"\n')).encode(), "target 'y' is 'maybe'"),
        ((HEADER + ROW.replace("2143", "12.5")).encode(), "balance is not an integer"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_invalid_csv_is_rejected_with_a_reason(content: bytes, match: str):
    with pytest.raises(DatasetError, match=match):
        validate_csv_bytes(content)


def test_truncated_file_fails_row_count(small_expected):
    with pytest.raises(DatasetError, match="2 data rows, expected 3"):
        validate_csv_bytes(small_csv(2))


def test_extract_plain_zip(tmp_path: Path, small_expected):
    summary = extract_and_validate(make_zip({"bank-full.csv": small_csv(), "bank-names.txt": b"notes"}), tmp_path)
    assert summary.rows == 3 and summary.positives == 1
    assert (tmp_path / "bank-full.csv").read_bytes() == small_csv()
    assert (tmp_path / "bank-names.txt").exists()
    assert len(summary.sha256) == 64


def test_extract_nested_zip_layout(tmp_path: Path, small_expected):
    inner = make_zip({"bank-full.csv": small_csv(), "bank.csv": small_csv()})
    outer = make_zip({"bank.zip": inner, "bank-additional.zip": make_zip({"x.csv": b"x"})})
    assert extract_and_validate(outer, tmp_path).rows == 3
    assert (tmp_path / "bank.csv").exists()


def test_corrupt_zip_leaves_no_file(tmp_path: Path):
    blob = make_zip({"bank-full.csv": small_csv()})
    with pytest.raises(DatasetError, match="not a valid zip"):
        extract_and_validate(b"PK\x03\x04garbage" + blob[:20], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_invalid_content_leaves_no_file(tmp_path: Path, small_expected):
    with pytest.raises(DatasetError):
        extract_and_validate(make_zip({"bank-full.csv": small_csv(2)}), tmp_path)
    assert not (tmp_path / "bank-full.csv").exists()


def test_zip_without_bank_files_is_rejected(tmp_path: Path):
    with pytest.raises(DatasetError, match="neither bank-full.csv"):
        extract_and_validate(make_zip({"other.csv": b"a"}), tmp_path)


def test_fetch_falls_back_to_vendored_copy_when_download_fails(tmp_path: Path, small_expected):
    vendor = tmp_path / "vendor.zip"
    vendor.write_bytes(make_zip({"bank-full.csv": small_csv()}))
    result = fetch(tmp_path / "data", "http://127.0.0.1:9/bank.zip", vendor, retries=1, timeout=1)
    assert result.source == "vendored"
    assert "download failed" in result.note
    assert (tmp_path / "data" / "bank-full.csv").exists()


def test_fetch_keeps_valid_existing_file_unless_forced(tmp_path: Path, small_expected):
    vendor = tmp_path / "vendor.zip"
    vendor.write_bytes(make_zip({"bank-full.csv": small_csv()}))
    data = tmp_path / "data"
    assert fetch(data, "unused", vendor, offline=True).source == "vendored"
    assert fetch(data, "unused", vendor, offline=True).source == "existing"
    assert fetch(data, "unused", vendor, offline=True, force=True).source == "vendored"


def test_fetch_replaces_an_invalid_existing_file(tmp_path: Path, small_expected):
    vendor = tmp_path / "vendor.zip"
    vendor.write_bytes(make_zip({"bank-full.csv": small_csv()}))
    data = tmp_path / "data"
    data.mkdir()
    (data / "bank-full.csv").write_text("broken")
    assert fetch(data, "unused", vendor, offline=True).source == "vendored"
    assert (data / "bank-full.csv").read_bytes() == small_csv()


def test_fetch_without_vendored_copy_names_the_fix(tmp_path: Path):
    with pytest.raises(DatasetError, match="vendored copy .* is missing"):
        fetch(tmp_path / "data", "unused", tmp_path / "missing.zip", offline=True)
