"""The model server in-process (FastAPI TestClient) on a real registered model and a temp SQLite
prediction log: both payload protocols, auth, every validation case, explain, feedback, metrics."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lib import registry
from lib.config import Settings
from lib.features import RAW_COLUMNS, TARGET
from lib.metrics import DEFAULT_THRESHOLD
from lib.metrics_store import MetricsStore
from lib.serving.app import create_app
from lib.serving.deps import get_current_model
from lib.serving.loader import ModelHolder

pytestmark = pytest.mark.integration

KEY = "test-access-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_BATCH = 5
MAX_BODY = 20_000


@pytest.fixture(scope="module")
def served(settings: Settings, train_runs, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Private settings whose model has a registered champion; small request limits."""
    s = dataclasses.replace(
        settings,
        user="serving_app",
        max_batch_records=MAX_BATCH,
        max_body_bytes=MAX_BODY,
        metrics_db_url=f"sqlite:///{tmp_path_factory.mktemp('log') / 'metrics.db'}",
    )
    run = train_runs(s, s.experiment_name, snapshot_id=777)[0]
    registry.promote(s, registry.register_run(s, run.run_id)[0].version)
    return s


@pytest.fixture(scope="module")
def client(served: Settings) -> Iterator[TestClient]:
    holder = ModelHolder(served)
    holder.reload()
    assert holder.wait_compiled(), "the served model should score with the compiled forest"
    with TestClient(create_app(served, holder, access_key=KEY)) as c:
        yield c


@pytest.fixture(scope="module")
def open_client(served: Settings) -> Iterator[TestClient]:
    holder = ModelHolder(served)
    holder.reload()
    holder.wait_compiled()
    with TestClient(create_app(served, holder, access_key=None)) as c:
        yield c


@pytest.fixture(scope="module")
def records(bank_sample: pd.DataFrame) -> list[dict]:
    rows = bank_sample.drop(columns=[TARGET]).head(MAX_BATCH)
    return json.loads(rows.to_json(orient="records"))


def post(client: TestClient, path: str, body, headers=AUTH):
    return client.post(path, json=body, headers=headers)


def raw(client: TestClient, path: str, content: bytes, headers=AUTH):
    return client.post(path, content=content, headers={**headers, "Content-Type": "application/json"})


# --- predictions ---------------------------------------------------------------------------------


def test_predict_matches_the_pyfunc_model(client: TestClient, served: Settings, records: list[dict]) -> None:
    answer = post(client, "/predict", {"request": records})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    champion = registry.require_champion(served)
    assert body["model_name"] == served.model_name and body["model_version"] == champion.version
    preds = body["predictions"]
    assert len({p["uuid"] for p in preds}) == len(records)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{served.model_name}@champion")
    expected = pyfunc.predict(pd.DataFrame(records))
    # the server scores with the compiled forest: XGBoost's probabilities within 1e-6
    np.testing.assert_allclose([p["probability"] for p in preds], expected["probability"], rtol=0, atol=1e-6)
    assert [p["prediction"] for p in preds] == expected["prediction"].tolist()
    assert all(p["model_version"] == champion.version for p in preds)


def test_single_record_and_extra_raw_columns(client: TestClient, records: list[dict]) -> None:
    one = post(client, "/predict", {"request": {**records[0], "y": "no"}})
    assert one.status_code == 200, one.text
    assert len(one.json()["predictions"]) == 1


def test_invocations_speaks_the_mlflow_protocols(client: TestClient, records: list[dict]) -> None:
    frame = pd.DataFrame(records)
    split = json.loads(frame.to_json(orient="split", index=False))
    bodies = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {c: frame[c].tolist() for c in frame.columns}},
    }
    answers = {}
    for name, body in bodies.items():
        response = post(client, "/invocations", body)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.json()["predictions"]
    expected = post(client, "/predict", {"request": records}).json()["predictions"]
    for name, preds in answers.items():
        assert [p["probability"] for p in preds] == [p["probability"] for p in expected], name
        assert set(preds[0]) == {"prediction", "probability"}


def test_predictions_are_logged_with_event_time(client: TestClient, served: Settings, records: list[dict]) -> None:
    when = datetime(2024, 3, 1, 12, 30, tzinfo=timezone.utc)
    answer = post(client, "/predict", {"request": records[:2], "event_time": when.isoformat()})
    uuids = [p["uuid"] for p in answer.json()["predictions"]]
    client.app.state.writer.flush()
    log = MetricsStore(served.metrics_db_url).read_predictions().set_index("uuid")
    assert set(uuids) <= set(log.index)
    row = log.loc[uuids[0]]
    assert row["event_ts"] == pd.Timestamp(when)
    assert row["ts"] > row["event_ts"]
    assert row["age"] == records[0]["age"] and row["job"] == records[0]["job"]
    assert row["latency_ms"] > 0
    assert pd.isna(row["label"])


# --- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/predict", "/invocations", "/explain", "/feedback", "/admin/reload"])
def test_protected_routes_need_the_key(client: TestClient, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        answer = client.post(path, json={}, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert "access key" in answer.json()["detail"]
        assert answer.headers["www-authenticate"] == "Bearer"
        assert KEY not in answer.text


def test_access_key_in_the_body(client: TestClient, records: list[dict]) -> None:
    assert post(client, "/predict", {"request": records[0], "accessKey": KEY}, headers={}).status_code == 200
    assert post(client, "/predict", {"request": records[0], "accessKey": "nope"}, headers={}).status_code == 401


def test_auth_is_checked_before_validation(client: TestClient) -> None:
    assert raw(client, "/predict", b"{not json", headers={}).status_code == 401


@pytest.mark.parametrize("path", ["/health", "/ready", "/ping", "/version", "/metrics", "/openapi.json", "/docs"])
def test_operational_routes_are_open(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_no_auth_server_needs_no_key(open_client: TestClient, records: list[dict]) -> None:
    assert post(open_client, "/predict", {"request": records[0]}, headers={}).status_code == 200


# --- validation: every bad input is a 4xx JSON naming the problem ----------------------------------


def bad_record_cases(record: dict) -> list[tuple[str, dict, str]]:
    missing = {k: v for k, v in record.items() if k != "balance"}
    return [
        ("unknown field", {"request": {**record, "agee": 41}}, "request.agee"),
        ("missing field", {"request": missing}, "request.balance"),
        ("string for number", {"request": {**record, "age": "41"}}, "request.age"),
        ("bool for number", {"request": {**record, "age": True}}, "request.age"),
        ("number for category", {"request": {**record, "job": 3}}, "request.job"),
        ("fraction", {"request": {**record, "campaign": 1.5}}, "request.campaign"),
        ("out of range", {"request": {**record, "age": 300}}, "request.age"),
        ("null", {"request": {**record, "month": None}}, "request.month"),
        ("bad record in batch", {"request": [record, {**record, "day": "x"}]}, "request[1].day"),
        ("empty batch", {"request": []}, "request"),
        ("batch over limit", {"request": [record] * (MAX_BATCH + 1)}, "request"),
        ("no request", {"records": [record]}, "request"),
        ("bad event_time", {"request": record, "event_time": "yesterday"}, "event_time"),
        ("event_time out of range", {"request": record, "event_time": "1900-01-01T00:00:00Z"}, "event_time"),
        ("record is a string", {"request": "age=41"}, "request"),
    ]


def test_bad_predict_bodies(client: TestClient, records: list[dict]) -> None:
    for name, body, field in bad_record_cases(records[0]):
        answer = post(client, "/predict", body)
        assert answer.status_code == 422, (name, answer.text)
        detail = answer.json()["detail"]
        assert detail.startswith(field), (name, detail)
    fields = [e["field"] for e in post(client, "/predict", {"records": [records[0]]}).json()["errors"]]
    assert fields == ["request", "records"]
    bad_feedback = post(client, "/feedback", {"feedback": [{"uuid": "x", "label": 1}]}).json()
    assert bad_feedback["detail"].startswith("feedback[0].uuid")


@pytest.mark.parametrize(
    "content, status, words",
    [
        (b'{"request": {"age": NaN}}', 422, "request.age: Input should be a valid integer"),
        (b'{"request": {"age": -Infinity}}', 422, "request.age: Input should be a valid integer"),
        (b'{"request": ', 422, "malformed JSON"),
        (b"", 422, "JSON object body is required"),
        (b"[1, 2]", 422, "body"),
        (b'"just a string"', 422, "body"),
        (b"42", 422, "body"),
        (b"[" * 50_00 + b"]" * 50_00, 400, "parsing the body"),
    ],
)
def test_malformed_bodies(client: TestClient, content: bytes, status: int, words: str) -> None:
    answer = raw(client, "/predict", content)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]


def test_invocations_bad_bodies(client: TestClient, records: list[dict]) -> None:
    record = records[0]
    cases = [
        ({}, "exactly one of"),
        ({"dataframe_records": [record], "instances": [record]}, "exactly one of"),
        ({"dataframe_split": {"columns": list(record), "data": [[1, 2]]}}, "dataframe_split.data[0]"),
        ({"dataframe_records": [{**record, "age": float("nan")}]}, "finite"),
        ({"dataframe_records": [{**record, "age": 10**400}]}, "between 18 and 120"),
        ({"dataframe_records": [{**record, "bogus": 1}]}, "unknown field(s): bogus"),
        ({"dataframe_records": [{k: v for k, v in record.items() if k != "age"}]}, "missing field: age"),
        ({"dataframe_records": []}, "dataframe_records"),
        ({"instances": {"age": [41], "job": []}}, "same number of values"),
        ({"inputs": [record] * (MAX_BATCH + 1)}, "exceed the limit"),
        ({"dataframe_records": [record], "params": {"k": 1}}, "no params"),
    ]
    for body, words in cases:
        text = json.dumps(body, allow_nan=True)
        answer = raw(client, "/invocations", text.encode())
        assert answer.status_code == 422, (body, answer.text)
        assert words in answer.text, (words, answer.text)


def test_body_over_the_limit_is_413(client: TestClient, records: list[dict]) -> None:
    big = json.dumps({"request": records[0], "accessKey": "x" * MAX_BODY}).encode()
    answer = raw(client, "/predict", big)
    assert answer.status_code == 413
    assert f"{MAX_BODY:,} bytes" in answer.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while streaming too
        yield b'{"request": '
        yield b" " * MAX_BODY
        yield b"}"

    streamed = client.post("/predict", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_lone_surrogates_do_not_break_the_error(client: TestClient, records: list[dict]) -> None:
    record = json.dumps(records[0])[1:-1]
    for path, body in [
        ("/predict", '{"request": {"\\ud800": 1}}'),
        ("/predict", '{"request": {' + record + ', "\\udfff": 1}}'),
        ("/invocations", '{"dataframe_records": [{' + record + ', "\\ud800x": 1}]}'),
    ]:
        answer = raw(client, path, body.encode())
        assert answer.status_code == 422, (path, body, answer.text)
        assert answer.json()["detail"]
    # as a category value it is just an unknown category: scored, and logged without breaking the log
    odd = json.dumps({"dataframe_records": [{**records[0], "job": "\ud800"}]}).encode()
    assert raw(client, "/invocations", odd).status_code == 200
    client.app.state.writer.flush()


# --- explain, feedback, metrics, docs --------------------------------------------------------------


def test_explain_contributions_add_up_to_the_probability(client: TestClient, records: list[dict]) -> None:
    answer = post(client, "/explain", {"request": records[0]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    contributions = body["contributions"]
    assert "bias" in contributions and "age" in contributions and "duration" not in contributions
    logit = sum(contributions.values())
    assert math.isclose(1 / (1 + math.exp(-logit)), body["probability"], rel_tol=1e-4)
    assert post(client, "/explain", {"request": [records[0]]}).status_code == 422


def test_feedback_single_batch_and_unknown(client: TestClient, served: Settings, records: list[dict]) -> None:
    uuids = [p["uuid"] for p in post(client, "/predict", {"request": records[:3]}).json()["predictions"]]
    one = post(client, "/feedback", {"uuid": uuids[0], "label": "yes", "event_time": "2024-03-02T00:00:00Z"})
    assert one.status_code == 200, one.text
    assert one.json() == {"matched": 1, "unknown": []}
    unknown = "00000000-0000-4000-8000-000000000000"
    missing = post(client, "/feedback", {"uuid": unknown, "label": 0})
    assert missing.status_code == 404 and unknown in missing.json()["detail"]
    items = [{"uuid": uuids[1], "label": 0}, {"uuid": uuids[2], "label": "no"}, {"uuid": unknown, "label": 1}]
    batch = post(client, "/feedback", {"feedback": items})
    assert batch.status_code == 200, batch.text
    assert batch.json() == {"matched": 2, "unknown": [unknown]}
    log = MetricsStore(served.metrics_db_url).read_predictions().set_index("uuid")
    assert log.loc[uuids[0], "label"] == 1 and log.loc[uuids[0], "label_ts"] == pd.Timestamp("2024-03-02", tz="UTC")
    assert log.loc[uuids[1], "label"] == 0 and log.loc[uuids[2], "label"] == 0
    bad_bodies = [
        {"uuid": uuids[0], "label": 2},
        {"uuid": uuids[0], "label": True},
        {"uuid": "nope", "label": 1},
        {"feedback": []},
        {"uuid": uuids[0]},
    ]
    for bad in bad_bodies:
        assert post(client, "/feedback", bad).status_code == 422, bad


def test_metrics_count_requests_errors_and_latency(client: TestClient, served: Settings, records: list[dict]) -> None:
    post(client, "/predict", {"request": records[0]})
    client.post("/predict", json={})
    text = client.get("/metrics").text
    version = registry.require_champion(served).version
    assert f'bank_model_requests_total{{model_version="{version}",route="/predict",status="200"}}' in text
    assert 'bank_model_errors_total{route="/predict",status="401"}' in text
    assert f'bank_model_request_latency_seconds_bucket{{le="0.005",model_version="{version}",route="/predict"}}' in text
    assert f'bank_model_predictions_total{{model_version="{version}"}}' in text
    assert f'bank_model_info{{model_name="{served.model_name}",model_version="{version}"}} 1.0' in text
    assert "bank_prediction_log_writer_up 1.0" in text


def test_version_ready_and_reload(client: TestClient, served: Settings) -> None:
    champion = registry.require_champion(served)
    version = client.get("/version").json()
    assert version["model_version"] == champion.version and version["run_id"] == champion.run_id
    assert version["iceberg_snapshot_id"] == "777"
    assert version["decision_threshold"] == DEFAULT_THRESHOLD  # no tag on this version
    assert version["engine"] == "compiled"  # the fixture waited for the compiled forest
    assert client.get("/ready").json() == {"status": "ready", "model_version": champion.version}
    reload = client.post("/admin/reload", headers=AUTH).json()
    assert reload == {
        "reloaded": False,
        "previous_version": champion.version,
        "model_version": champion.version,
        "decision_threshold": DEFAULT_THRESHOLD,
    }


def test_openapi_documents_every_body_from_the_feature_definition(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/predict", "/invocations", "/explain", "/feedback"):
        op = spec["paths"][path]["post"]
        assert "requestBody" in op, path
        assert op["security"] == [{"AccessKey": []}]
        assert {"200", "401", "422"} <= set(op["responses"]), path
    record = spec["components"]["schemas"]["BankRecord"]
    assert list(record["properties"]) == list(RAW_COLUMNS)
    assert "duration" not in record["required"] and "age" in record["required"]
    assert record["additionalProperties"] is False
    assert record["properties"]["age"]["minimum"] == 18
    assert spec["components"]["securitySchemes"]["AccessKey"]["scheme"] == "bearer"


def test_without_a_model_the_server_is_not_ready(client: TestClient, records: list[dict]) -> None:
    client.app.dependency_overrides[get_current_model] = lambda: None
    try:
        assert client.get("/ready").status_code == 503
        assert client.get("/ping").status_code == 503
        answer = post(client, "/predict", {"request": records[0]})
        assert answer.status_code == 503 and answer.json()["detail"] == "no model loaded"
        assert client.get("/health").status_code == 200
    finally:
        client.app.dependency_overrides.clear()


def test_watcher_swaps_when_the_champion_alias_moves(
    settings: Settings, train_runs, tmp_path_factory: pytest.TempPathFactory, records: list[dict]
) -> None:
    s = dataclasses.replace(
        settings, user="serving_watch", metrics_db_url=f"sqlite:///{tmp_path_factory.mktemp('w') / 'm.db'}"
    )
    runs = train_runs(s, s.experiment_name, grid=[{"max_depth": 2}, {"max_depth": 3}])
    v1, v2 = (registry.register_run(s, r.run_id)[0].version for r in runs)
    registry.promote(s, v1)
    holder = ModelHolder(s)
    holder.reload()
    with TestClient(create_app(s, holder, access_key=None, watch_seconds=0.2)) as c:
        assert c.get("/version").json()["model_version"] == v1
        registry.promote(s, v2)
        deadline = time.monotonic() + 60
        while c.get("/version").json()["model_version"] != v2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.get("/version").json()["model_version"] == v2
        answer = post(c, "/predict", {"request": records[0]}, headers={})
        assert answer.json()["model_version"] == v2
        metrics = c.get("/metrics").text
        assert "bank_model_swaps_total 1.0" in metrics
        assert f'model_version="{v1}"' not in metrics.split("# HELP bank_model_info")[1].split("# HELP")[0]


def test_an_unavailable_prediction_log_is_a_503(client: TestClient, served: Settings, records: list[dict]) -> None:
    from lib.metrics_store import ground_truth, metadata

    uuid = post(client, "/predict", {"request": records[0]}).json()["predictions"][0]["uuid"]
    store = MetricsStore(served.metrics_db_url)
    ground_truth.drop(store.engine)
    try:
        answer = post(client, "/feedback", {"uuid": uuid, "label": 1})
        assert answer.status_code == 503, answer.text
        assert "prediction log unavailable" in answer.json()["detail"]
    finally:
        metadata.create_all(store.engine)
    assert post(client, "/feedback", {"uuid": uuid, "label": 1}).status_code == 200


def _fast_answers(client: TestClient) -> float:
    line = next(
        x for x in client.get("/metrics").text.splitlines() if x.startswith("bank_model_fast_path_requests_total")
    )
    return float(line.split()[-1])


def test_the_fast_path_answers_what_the_routes_answer(
    client: TestClient, served: Settings, records: list[dict]
) -> None:
    """Valid JSON bodies are answered by lib.serving.fastpath; forcing FastAPI's route (any dependency
    override turns the fast path off) gives the same answer, logged the same way; refusals are the app's."""
    from lib.serving.deps import get_scorer

    frame = pd.DataFrame(records)
    bodies = [
        ("/predict", {"request": records, "event_time": "2024-03-01T12:30:00Z"}),
        ("/predict", {"request": {**records[0], "y": "yes"}, "accessKey": KEY}),
        ("/invocations", {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}),
        ("/invocations", {"dataframe_records": records}),
        ("/invocations", {"dataframe_split": {"columns": [*records[0], "y"], "data": [[*records[0].values(), "no"]]}}),
        ("/predict", {"request": {**records[0], "job": "astronaut"}}),
    ]
    store = MetricsStore(served.metrics_db_url)
    for path, body in bodies:
        before = _fast_answers(client)
        fast = post(client, path, body)
        assert fast.status_code == 200, fast.text
        assert _fast_answers(client) == before + 1, path
        client.app.dependency_overrides[get_scorer] = lambda: client.app.state.scorer
        try:
            routed = post(client, path, body)
        finally:
            client.app.dependency_overrides.clear()
        assert routed.status_code == 200 and _fast_answers(client) == before + 1
        strip = [{k: v for k, v in p.items() if k != "uuid"} for p in fast.json()["predictions"]]
        assert strip == [{k: v for k, v in p.items() if k != "uuid"} for p in routed.json()["predictions"]]
        assert fast.headers["content-type"] == routed.headers["content-type"]
        # the same log rows, down to the feature text, whether the columnar check or pydantic took the body
        client.app.state.writer.flush()
        n = len(strip)
        with store.engine.connect() as conn:
            logged = conn.exec_driver_sql(
                "SELECT features, probability, prediction, model_version FROM predictions ORDER BY rowid DESC LIMIT ?",
                (2 * n,),
            ).all()
        assert logged[n:] == logged[:n], path
        if path == "/predict":
            client.app.state.writer.flush()
            log = store.read_predictions().set_index("uuid")
            ids = [[p["uuid"] for p in answer.json()["predictions"]] for answer in (fast, routed)]
            columns = ["model_version", "probability", "prediction", "age", "job"]
            columns += ["event_ts"] if "event_time" in body else []  # else: when each was received
            assert (
                log.loc[ids[0], columns].reset_index(drop=True).equals(log.loc[ids[1], columns].reset_index(drop=True))
            )
    # refusals and other content types go on to the app, which answers them as always
    before = _fast_answers(client)
    assert post(client, "/predict", {"request": {**records[0], "age": 7}}).status_code == 422
    assert raw(client, "/predict", b'{"request": ').status_code == 422
    csv = client.post(
        "/invocations", content=frame.to_csv(index=False).encode(), headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert csv.status_code == 200
    assert post(client, "/predict", {"request": records[0]}, headers={}).status_code == 401
    assert _fast_answers(client) == before
