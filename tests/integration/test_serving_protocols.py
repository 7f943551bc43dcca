"""The rest of MLflow's scoring protocol (GET /ping, text/csv on /invocations), the registry's
decision threshold and the offline API docs, on a real registered model (in-process TestClient)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lib import registry
from lib.config import Settings
from lib.features import TARGET
from lib.metrics import DEFAULT_THRESHOLD
from lib.serving.app import create_app
from lib.serving.loader import THRESHOLD_TAG, ModelHolder, ServingError, decision_threshold
from lib.tracking import configure_mlflow

pytestmark = pytest.mark.integration

KEY = "protocols-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CSV = {**AUTH, "Content-Type": "text/csv"}
MAX_BATCH = 5
THRESHOLD = 0.05  # far from the default, so the decision visibly follows the tag


@pytest.fixture(scope="module")
def served(settings: Settings, train_runs, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Private settings whose champion carries a `decision_threshold` tag."""
    s = dataclasses.replace(
        settings,
        user="serving_protocols",
        max_batch_records=MAX_BATCH,
        metrics_db_url=f"sqlite:///{tmp_path_factory.mktemp('log') / 'metrics.db'}",
    )
    run = train_runs(s, s.experiment_name)[0]
    version = registry.register_run(s, run.run_id)[0].version
    configure_mlflow(s).set_model_version_tag(s.model_name, version, THRESHOLD_TAG, str(THRESHOLD))
    registry.promote(s, version)
    return s


@pytest.fixture(scope="module")
def client(served: Settings) -> Iterator[TestClient]:
    holder = ModelHolder(served)
    holder.reload()
    with TestClient(create_app(served, holder, access_key=KEY)) as c:
        yield c


@pytest.fixture(scope="module")
def frame(bank_sample: pd.DataFrame) -> pd.DataFrame:
    return bank_sample.drop(columns=[TARGET]).head(MAX_BATCH)


def as_csv(df: pd.DataFrame) -> bytes:
    out = io.StringIO()
    df.to_csv(out, index=False)
    return out.getvalue().encode()


# --- GET /ping ---------------------------------------------------------------------------------------


def test_ping_is_open_and_ready_with_a_model(client: TestClient, served: Settings) -> None:
    answer = client.get("/ping")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "model_version": registry.require_champion(served).version}


# --- text/csv on /invocations ------------------------------------------------------------------------


def test_csv_scores_like_json(client: TestClient, frame: pd.DataFrame) -> None:
    records = json.loads(frame.to_json(orient="records"))
    by_json = client.post("/invocations", json={"dataframe_records": records}, headers=AUTH)
    by_csv = client.post("/invocations", content=as_csv(frame), headers=CSV)
    assert by_csv.status_code == 200, by_csv.text
    assert by_csv.json() == by_json.json()
    assert len(by_csv.json()["predictions"]) == len(frame)


def test_csv_variants_mlflow_accepts(client: TestClient, frame: pd.DataFrame) -> None:
    text = as_csv(frame).decode()
    expected = client.post("/invocations", content=text.encode(), headers=CSV).json()
    variants = {
        "charset parameter": (text.encode(), {**AUTH, "Content-Type": "text/csv; charset=utf-8"}),
        "BOM and CRLF": (("\ufeff" + text.replace("\n", "\r\n")).encode(), CSV),
        "reordered columns": (as_csv(frame[list(reversed(frame.columns))]), CSV),
        "trailing blank lines": ((text + "\n\n").encode(), CSV),
        "integers written as floats": (as_csv(frame.astype({"age": "float64", "balance": "float64"})), CSV),
    }
    for name, (body, headers) in variants.items():
        answer = client.post("/invocations", content=body, headers=headers)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json() == expected, name


def test_bad_csv_is_a_4xx_naming_the_problem(client: TestClient, frame: pd.DataFrame) -> None:
    text = as_csv(frame).decode()
    header, first = text.splitlines()[:2]
    cases = {
        "": "empty",
        header + "\n": "no records",
        f"{header}\n{first},extra\n": "line 2",
        f"{header}\n{first.replace(first.split(',')[0], 'forty', 1)}\n": "'forty' is not an integer",
        f"{header}\n{first.replace(first.split(',')[0], '41.5', 1)}\n": "'41.5' is not an integer",
        f"{header}\n{first.replace(first.split(',')[0], 'nan', 1)}\n": "'nan' is not an integer",
        f"{header}\n{first.replace(first.split(',')[0], '9' * 5000, 1)}\n": "out of range",
        f"{header}\n{first.replace(first.split(',')[0], '9' * 19, 1)}\n": "between 18 and 120",
        f"{header}\n{first.replace(first.split(',')[0], '', 1)}\n": "column age",
        f'{header}\n"{first}\n': "CSV",
        f"{header},{header.split(',')[0]}\n{first},1\n": "duplicate column",
        f",{header}\n1,{first}\n": "every column needs a name",
        f"{header.replace('age', 'bogus')}\n{first}\n": "bogus",
        f"{header}\n" + f"{first}\n" * (MAX_BATCH + 1): f"more than {MAX_BATCH} rows",
    }
    for body, words in cases.items():
        answer = client.post("/invocations", content=body.encode(), headers=CSV)
        assert 400 <= answer.status_code < 500, (body[:80], answer.status_code, answer.text)
        assert words in answer.json()["detail"], (words, answer.text)
    not_utf8 = client.post("/invocations", content=header.encode() + b"\n\xff\xfe\n", headers=CSV)
    assert not_utf8.status_code == 422 and "not UTF-8" in not_utf8.json()["detail"]


def test_csv_needs_the_key(client: TestClient, frame: pd.DataFrame) -> None:
    answer = client.post("/invocations", content=as_csv(frame), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 401


def test_openapi_documents_the_csv_body(client: TestClient) -> None:
    content = client.get("/openapi.json").json()["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv"} <= set(content)


# --- the decision threshold from the registry ----------------------------------------------------------


def test_the_decision_follows_the_versions_threshold_tag(client: TestClient, frame: pd.DataFrame) -> None:
    assert client.get("/version").json()["decision_threshold"] == THRESHOLD
    records = json.loads(frame.to_json(orient="records"))
    predictions = client.post("/predict", json={"request": records}, headers=AUTH).json()["predictions"]
    proba = np.array([p["probability"] for p in predictions])
    assert [p["prediction"] for p in predictions] == (proba >= THRESHOLD).astype(int).tolist()
    assert any(THRESHOLD <= p < DEFAULT_THRESHOLD for p in proba), "no record tells the two thresholds apart"


def test_threshold_tag_default_and_bad_values(served: Settings) -> None:
    info = registry.require_champion(served)
    assert decision_threshold(dataclasses.replace(info, tags={})) == DEFAULT_THRESHOLD
    assert decision_threshold(dataclasses.replace(info, tags={THRESHOLD_TAG: "0.3"})) == 0.3
    for bad in ("0", "1", "1.5", "-0.1", "nan", "high", ""):
        with pytest.raises(ServingError, match=THRESHOLD_TAG):
            decision_threshold(dataclasses.replace(info, tags={THRESHOLD_TAG: bad}))


def test_reload_takes_a_changed_threshold_tag_without_reloading_the_model(served: Settings) -> None:
    # 10_batch_scoring.py tags the champion after it went live; the running server must follow
    holder = ModelHolder(served)
    holder.reload()
    loaded = holder.current
    version = registry.require_champion(served).version
    tracking = configure_mlflow(served)
    tracking.set_model_version_tag(served.model_name, version, THRESHOLD_TAG, "0.2")
    try:
        with TestClient(create_app(served, holder, access_key=KEY)) as c:
            answer = c.post("/admin/reload", headers=AUTH).json()
            assert answer["reloaded"] is False and answer["model_version"] == version
            assert answer["decision_threshold"] == 0.2
            assert c.get("/version").json()["decision_threshold"] == 0.2
        assert holder.current is not None and holder.current.model is loaded.model  # same booster, no reload
    finally:
        tracking.set_model_version_tag(served.model_name, version, THRESHOLD_TAG, str(THRESHOLD))


# --- offline API docs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", html), "the page names another host"
    urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url
