"""jobs.yaml parsing and validation: the seed chain, the commented example, refused specs,
durations. Pure parsing; the runner itself (processes, SQLite history) is tested in
tests/integration/test_jobs_runner.py."""

import pytest

from lib.config import PROJECT_ROOT
from lib.jobs import JobError, load_spec, parse_spec


def test_the_seed_chain_is_in_jobs_yaml():
    spec = load_spec(PROJECT_ROOT / "jobs.yaml")
    assert spec.names[:4] == ["New Batch", "Retrain Models", "Redeploy Model", "Score Customers"]
    assert [j.script for j in spec.jobs[:4]] == [
        "05_newbatch.py", "06_retrain.py", "07_api_redeployment.py", "10_batch_scoring.py"
    ]  # fmt: skip
    assert spec.get("New Batch").depends_on == () and spec.get("New Batch").schedule is None
    assert spec.get("Retrain Models").depends_on == ("New Batch",)
    assert spec.get("Redeploy Model").depends_on == ("Retrain Models",)
    assert spec.get("Score Customers").depends_on == ("Redeploy Model",)
    assert spec.get("Score Customers").schedule is not None  # the nightly call list, on its own
    chain = ["New Batch", "Retrain Models", "Redeploy Model", "Score Customers"]
    assert [j.name for j in spec.chain("New Batch")] == chain
    assert [j.name for j in spec.chain("Retrain Models")] == chain[1:]
    assert [j.name for j in spec.chain("Score Customers")] == ["Score Customers"]
    for job in spec.jobs:
        assert job.timeout > 0
        assert job.script is None or (PROJECT_ROOT / job.script).is_file(), job.script


def test_commented_example_job_is_valid():
    """The nightly monitoring example in jobs.yaml parses when uncommented."""
    text = (PROJECT_ROOT / "jobs.yaml").read_text()
    example = [line.removeprefix("#") for line in text[text.index("#  - name:") :].splitlines()]
    import yaml

    spec = parse_spec({"jobs": yaml.safe_load("\n".join(example))})
    job = spec.jobs[0]
    assert job.module == "lib.monitoring" and job.args[0] == "check"
    assert job.schedule == "0 2 * * *" and job.ok_codes == (0, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "top-level 'jobs:'"),
        ({"jobs": [{"script": "a.py"}]}, "'name' is required"),
        ({"jobs": [{"name": "X"}]}, "exactly one of 'script'"),
        ({"jobs": [{"name": "X", "script": "a.py", "module": "m"}]}, "exactly one of 'script'"),
        ({"jobs": [{"name": "X", "script": "a.py", "dependson": "Y"}]}, "unknown key.*dependson"),
        ({"jobs": [{"name": "X", "script": "a.py", "depends_on": "Y"}]}, "unknown job.*'Y'"),
        ({"jobs": [{"name": "X", "script": "a.py"}, {"name": "X", "script": "b.py"}]}, "defined twice"),
        ({"jobs": [{"name": "X", "script": "a.py", "schedule": "every day"}]}, "not a cron expression"),
        ({"jobs": [{"name": "X", "script": "a.py", "timeout": "soon"}]}, "timeout 'soon'"),
        ({"jobs": [{"name": "X", "script": "a.py", "timeout": 0}]}, "must be positive"),
        ({"jobs": [{"name": "X", "script": "a.py", "ok_codes": ["0"]}]}, "ok_codes"),
        (
            {
                "jobs": [
                    {"name": "X", "script": "a.py", "depends_on": "Y"},
                    {"name": "Y", "script": "b", "depends_on": "X"},
                ]
            },
            "cycle",
        ),
    ],
)
def test_invalid_specs_are_refused(spec: dict, message: str):
    with pytest.raises(JobError, match=message):
        parse_spec(spec)


def test_timeouts_accept_durations():
    spec = parse_spec({"jobs": [{"name": n, "script": "a.py", "timeout": t} for n, t in
                                [("a", 90), ("b", "45s"), ("c", "15m"), ("d", "2h")]]})  # fmt: skip
    assert [j.timeout for j in spec.jobs] == [90, 45, 900, 7200]
