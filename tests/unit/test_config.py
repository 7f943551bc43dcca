from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT, ConfigError, load_settings, sanitize_user


def test_defaults_derive_lab_names_from_owner():
    s = load_settings({"PROJECT_OWNER": "Alice"})
    assert s.root == PROJECT_ROOT
    assert s.namespace == "bnk_mlops_hol_alice"
    assert s.table_name == "bank_marketing_alice"
    assert s.table_ident == "lake.bnk_mlops_hol_alice.bank_marketing_alice"
    assert s.model_name == "bank-promo-alice"
    assert s.experiment_name == "xgb-bank-marketing-alice"
    assert s.retrain_experiment_name == "xgb-bank-marketing-incremental-alice"
    assert s.warehouse == str(PROJECT_ROOT / "lakehouse" / "warehouse")
    assert s.catalog_type == "hadoop"
    assert s.spark_master == "local[*]"
    assert s.mlflow_tracking_uri == f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    assert s.serve_host == "127.0.0.1"
    assert s.exporter_port == 9808


def test_overrides_point_at_other_engines(tmp_path: Path):
    s = load_settings(
        {
            "PROJECT_ROOT": str(tmp_path),
            "PROJECT_OWNER": "bob",
            "SPARK_MASTER": "spark://head:7077",
            "ICEBERG_CATALOG_TYPE": "REST",
            "ICEBERG_CATALOG_URI": "http://catalog:8181",
            "ICEBERG_WAREHOUSE": "s3://bucket/wh",
            "SPARK_CONF_SPARK_EXECUTOR_MEMORY": "4g",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "SERVE_PORT": "9000",
            "MONITORING_EXPORTER_PORT": "9100",
        }
    )
    assert s.catalog_type == "rest"
    assert s.catalog_uri == "http://catalog:8181"
    assert s.warehouse == "s3://bucket/wh"
    assert s.spark_master == "spark://head:7077"
    assert s.spark_conf == {"spark.executor.memory": "4g"}
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.mlflow_artifact_location is None  # a tracking server decides its own artifact root
    assert s.serve_port == 9000
    assert s.exporter_port == 9100
    assert s.data_dir == tmp_path / "data"


@pytest.mark.parametrize("raw, expected", [("alice", "alice"), ("Jane.Doe", "jane_doe"), ("u-42", "u_42")])
def test_sanitize_user_accepts_safe_names(raw: str, expected: str):
    assert sanitize_user(raw) == expected


@pytest.mark.parametrize("raw", ["", "a b", "x;drop table", "ünï", "a/b", "'"])
def test_sanitize_user_rejects_unsafe_names(raw: str):
    with pytest.raises(ConfigError, match="PROJECT_OWNER"):
        sanitize_user(raw)


@pytest.mark.parametrize(
    "env, match",
    [
        ({"ICEBERG_CATALOG_TYPE": "glue"}, "ICEBERG_CATALOG_TYPE"),
        ({"SERVE_PORT": "http"}, "SERVE_PORT"),
        ({"MONITORING_EXPORTER_PORT": "nine"}, "MONITORING_EXPORTER_PORT"),
        ({"ALERT_MAX_PSI": "high"}, "ALERT_MAX_PSI"),
        ({"ICEBERG_CATALOG_NAME": "My-Cat"}, "ICEBERG_CATALOG_NAME"),
    ],
)
def test_bad_values_raise_naming_the_variable(env: dict, match: str):
    with pytest.raises(ConfigError, match=match):
        load_settings({"PROJECT_OWNER": "x", **env})


def test_settings_are_frozen():
    s = load_settings({"PROJECT_OWNER": "x"})
    with pytest.raises(AttributeError):
        s.user = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("jdbc", "user", "password", "expected"),
    [
        ("jdbc:postgresql://h:5432/iceberg", "lab", "s3cr/t", "postgresql+psycopg://lab:s3cr%2Ft@h:5432/iceberg"),
        ("jdbc:postgresql://h/iceberg?user=u&password=p", None, None, "postgresql+psycopg://u:p@h/iceberg"),
        (
            "jdbc:postgresql://h:1/db?user=u&sslmode=require",
            "other",
            None,
            "postgresql+psycopg://other@h:1/db?sslmode=require",
        ),
        ("jdbc:sqlite:/tmp/cat.db", None, None, "sqlite:////tmp/cat.db"),
        ("postgresql+psycopg://a:b@h/db", "x", "y", "postgresql+psycopg://a:b@h/db"),
    ],
)
def test_sqlalchemy_catalog_url_opens_the_same_database(jdbc, user, password, expected) -> None:
    from lib.config import sqlalchemy_catalog_url

    assert sqlalchemy_catalog_url(jdbc, user, password) == expected


@pytest.mark.parametrize("bad", ["jdbc:mysql://h/db", "jdbc:postgresql://h:5432/", "jdbc:postgresql:"])
def test_sqlalchemy_catalog_url_rejects_what_it_cannot_translate(bad: str) -> None:
    from lib.config import ConfigError, sqlalchemy_catalog_url

    with pytest.raises(ConfigError):
        sqlalchemy_catalog_url(bad)
