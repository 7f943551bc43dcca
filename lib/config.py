"""Settings for every script and module, read from the environment in one place.

Nothing here touches the filesystem or global state on import: `load_settings()` only reads
environment variables and returns a frozen object that callers pass down.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lib.faults import FAULT_POINTS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The one default seed: split, booster, batches and simulation all start from it unless told otherwise.
DEFAULT_SEED = 42
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
# Where Debian's pinned `libpostgresql-jdbc-java` (installed by `make services-deps`) puts the driver.
DEBIAN_PG_JDBC_JAR = Path("/usr/share/java/postgresql.jar")


class ConfigError(ValueError):
    """A setting has a value the project cannot use."""


def sanitize_user(raw: str) -> str:
    """Lower-case a user name for SQL identifiers; reject anything outside [a-z0-9_].

    Names end up in Spark SQL and MLflow names, so we refuse rather than silently rewrite
    characters that would make two users collide.
    """
    user = raw.strip().lower().replace("-", "_").replace(".", "_")
    if not user or not _NAME_RE.fullmatch(user):
        raise ConfigError(f"PROJECT_OWNER={raw!r} is not usable in table names: use only letters, digits and '_'")
    return user


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


@dataclass(frozen=True)
class Settings:
    """Every path, name and knob the project uses."""

    root: Path  # where generated state lives; the code (and vendored data) stays at PROJECT_ROOT
    user: str
    data_dir: Path
    vendor_zip: Path
    download_url: str
    # Lakehouse
    warehouse: str
    catalog_name: str
    catalog_type: str
    catalog_uri: str | None
    spark_master: str
    spark_conf: Mapping[str, str]
    spark_conf_file: Path | None
    iceberg_spark_jar: Path | None
    # MLflow
    mlflow_tracking_uri: str
    mlflow_registry_uri: str | None
    mlflow_artifact_location: str | None
    # Serving
    serve_host: str
    serve_port: int
    run_dir: Path
    metrics_db_url: str
    max_batch_records: int
    max_body_bytes: int
    # Monitoring
    reports_dir: Path
    alert_min_accuracy: float
    alert_max_psi: float
    alert_max_p95_latency_ms: float
    # Jobs
    jobs_spec: Path
    jobs_log_dir: Path
    extra: Mapping[str, str] = field(default_factory=dict)
    # Serving: champion-alias polling interval (0 = off) and the redeploy gate's tolerance
    serve_watch_seconds: float = 0.0
    gate_tolerance: float = 0.01
    # Iceberg JDBC catalog: credentials (or `user=`/`password=` in the JDBC URL) and the driver jar for Spark
    catalog_user: str | None = None
    catalog_password: str | None = None
    jdbc_driver_jar: Path = DEBIAN_PG_JDBC_JAR
    # Reads of at most this many rows use pyiceberg (no JVM) where the catalog allows; 0 = always Spark
    pyiceberg_max_rows: int = 1_000_000
    # The local service stack (`python -m lib.stack`); its environment file is `<stack_dir>.env`
    stack_dir: Path = PROJECT_ROOT / "run" / "stack"
    # Test-only: the lib.faults crash point at which the process SIGKILLs itself (None = never)
    fault_point: str | None = None
    # Monitoring: port of the Prometheus exporter (`python -m lib.monitoring exporter`)
    exporter_port: int = 9808
    # Batch scoring (10): the campaign's economics that choose the call cut-off
    campaign_cost_per_call: float = 5.0
    campaign_value_per_deposit: float = 100.0
    # The web application (`python -m lib.app`): Explain, Monitoring, Models, Jobs
    app_port: int = 8850

    @property
    def namespace(self) -> str:
        """Iceberg namespace of this user's tables, so lab users can share one catalog."""
        return f"bnk_mlops_hol_{self.user}"

    @property
    def table_name(self) -> str:
        """Name of this user's campaign table inside `namespace`."""
        return f"bank_marketing_{self.user}"

    @property
    def table_ident(self) -> str:
        """Fully qualified Spark identifier `catalog.namespace.table`."""
        return f"{self.catalog_name}.{self.namespace}.{self.table_name}"

    @property
    def experiment_name(self) -> str:
        """MLflow experiment of the initial training runs (03)."""
        return f"xgb-bank-marketing-{self.user}"

    @property
    def retrain_experiment_name(self) -> str:
        """MLflow experiment of the retraining runs (06), kept apart from the first training's."""
        return f"xgb-bank-marketing-incremental-{self.user}"

    @property
    def model_name(self) -> str:
        """Registered model name, per user so lab users share one registry."""
        return f"bank-promo-{self.user}"

    @property
    def csv_path(self) -> Path:
        """The raw bank-marketing CSV the lab ingests."""
        return self.data_dir / "bank-full.csv"

    @property
    def batches_dir(self) -> Path:
        """Where the simulated new-data batches are written as CSV files."""
        return self.data_dir / "batches"

    @property
    def serve_url(self) -> str:
        """Base URL clients use to reach the model server."""
        return f"http://{self.serve_host}:{self.serve_port}"

    @property
    def access_key_file(self) -> Path:
        """File (mode 0600) holding the model server's access key, for clients on this machine."""
        return self.run_dir / "access_key"


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name)
    return Path(value).expanduser().resolve() if value else default


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} must be an integer") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} must be a number") from exc


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name}={value!r} must be a positive number")
    return value


_CATALOG_TYPES = ("hadoop", "rest", "hive", "jdbc")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from environment variables (or the mapping given, for tests)."""
    env = os.environ if env is None else env
    root = _path(env, "PROJECT_ROOT", PROJECT_ROOT)
    user = sanitize_user(env.get("PROJECT_OWNER") or _default_user())
    data_dir = _path(env, "DATA_DIR", root / "data")
    catalog_type = env.get("ICEBERG_CATALOG_TYPE", "hadoop").lower()
    if catalog_type not in _CATALOG_TYPES:
        raise ConfigError(f"ICEBERG_CATALOG_TYPE={catalog_type!r} is not one of {', '.join(_CATALOG_TYPES)}")
    catalog_name = env.get("ICEBERG_CATALOG_NAME", "lake")
    if not _NAME_RE.fullmatch(catalog_name):
        raise ConfigError(f"ICEBERG_CATALOG_NAME={catalog_name!r} must match [a-z0-9_]+")
    warehouse = env.get("ICEBERG_WAREHOUSE") or str(root / "lakehouse" / "warehouse")
    spark_conf = {
        key.removeprefix("SPARK_CONF_").lower().replace("__", "-").replace("_", "."): value
        for key, value in env.items()
        if key.startswith("SPARK_CONF_") and key != "SPARK_CONF_FILE"
    }
    conf_file = env.get("SPARK_CONF_FILE")
    jar = env.get("ICEBERG_SPARK_JAR")
    mlflow_uri = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
    artifact_location = env.get("MLFLOW_ARTIFACT_LOCATION")
    if artifact_location is None and mlflow_uri.startswith("sqlite:"):
        artifact_location = (root / "mlartifacts").as_uri()
    run_dir = _path(env, "SERVE_RUN_DIR", root / "run")
    fault_point = env.get("FAULT_POINT") or None
    if fault_point is not None and fault_point not in FAULT_POINTS:
        raise ConfigError(f"FAULT_POINT={fault_point!r} is not one of {', '.join(FAULT_POINTS)} (test-only setting)")
    return Settings(
        root=root,
        user=user,
        data_dir=data_dir,
        vendor_zip=_path(env, "BANK_VENDOR_ZIP", PROJECT_ROOT / "data" / "vendor" / "bank.zip"),
        download_url=env.get(
            "BANK_DATA_URL",
            "https://archive.ics.uci.edu/ml/machine-learning-databases/00222/bank.zip",
        ),
        warehouse=warehouse,
        catalog_name=catalog_name,
        catalog_type=catalog_type,
        catalog_uri=env.get("ICEBERG_CATALOG_URI") or None,
        spark_master=env.get("SPARK_MASTER", "local[*]"),
        spark_conf=spark_conf,
        spark_conf_file=Path(conf_file).expanduser() if conf_file else None,
        iceberg_spark_jar=Path(jar).expanduser() if jar else None,
        mlflow_tracking_uri=mlflow_uri,
        mlflow_registry_uri=env.get("MLFLOW_REGISTRY_URI") or None,
        mlflow_artifact_location=artifact_location,
        serve_host=env.get("SERVE_HOST", "127.0.0.1"),
        serve_port=_int(env, "SERVE_PORT", 8808),
        run_dir=run_dir,
        metrics_db_url=env.get("METRICS_DB_URL") or f"sqlite:///{root / 'metrics.db'}",
        max_batch_records=_int(env, "SERVE_MAX_BATCH", 1000),
        max_body_bytes=_int(env, "SERVE_MAX_BODY_BYTES", 1_000_000),
        reports_dir=_path(env, "REPORTS_DIR", root / "reports"),
        alert_min_accuracy=_float(env, "ALERT_MIN_ACCURACY", 0.85),
        alert_max_psi=_float(env, "ALERT_MAX_PSI", 0.2),
        alert_max_p95_latency_ms=_float(env, "ALERT_MAX_P95_LATENCY_MS", 50.0),
        jobs_spec=_path(env, "JOBS_SPEC", PROJECT_ROOT / "jobs.yaml"),
        jobs_log_dir=_path(env, "JOBS_LOG_DIR", root / "run" / "jobs"),
        serve_watch_seconds=_float(env, "SERVE_WATCH_SECONDS", 0.0),
        gate_tolerance=_float(env, "GATE_TOLERANCE", 0.01),
        catalog_user=env.get("ICEBERG_CATALOG_USER") or None,
        catalog_password=env.get("ICEBERG_CATALOG_PASSWORD") or None,
        jdbc_driver_jar=_path(env, "ICEBERG_JDBC_DRIVER_JAR", DEBIAN_PG_JDBC_JAR),
        pyiceberg_max_rows=_int(env, "LAKE_PYICEBERG_MAX_ROWS", 1_000_000),
        stack_dir=_path(env, "STACK_DIR", root / "run" / "stack"),
        fault_point=fault_point,
        exporter_port=_int(env, "MONITORING_EXPORTER_PORT", 9808),
        campaign_cost_per_call=_positive(env, "CAMPAIGN_COST_PER_CALL", 5.0),
        campaign_value_per_deposit=_positive(env, "CAMPAIGN_VALUE_PER_DEPOSIT", 100.0),
        app_port=_int(env, "APP_PORT", 8850),
    )


_JDBC_DIALECTS = {"postgresql": "postgresql+psycopg", "sqlite": "sqlite"}


def sqlalchemy_catalog_url(uri: str, user: str | None = None, password: str | None = None) -> str:
    """The SQLAlchemy URL for pyiceberg's SQL catalog that opens the same database as Iceberg's JDBC URL.

    Spark's `JdbcCatalog` wants `jdbc:postgresql://host:port/db` plus `jdbc.user`/`jdbc.password`;
    pyiceberg's `SqlCatalog` wants `postgresql+psycopg://user:password@host:port/db`. A URL that is
    not a `jdbc:` one is taken as a SQLAlchemy URL already and returned unchanged.
    """
    if not uri.startswith("jdbc:"):
        return uri
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit

    scheme, sep, rest = uri.removeprefix("jdbc:").partition(":")
    if not sep or scheme not in _JDBC_DIALECTS:
        raise ConfigError(
            f"ICEBERG_CATALOG_URI={uri!r}: only jdbc:postgresql://host:port/db and jdbc:sqlite:PATH are supported"
        )
    if scheme == "sqlite":
        return "sqlite:///" + rest.removeprefix("file:").split("?", 1)[0]
    parts = urlsplit(f"{scheme}:{rest}")
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(
            f"ICEBERG_CATALOG_URI={uri!r} must name a host and a database: jdbc:postgresql://host:port/db"
        )
    query = dict(parse_qsl(parts.query))
    user = user or query.pop("user", None)
    password = password or query.pop("password", None)
    query.pop("user", None)
    query.pop("password", None)
    auth = ""
    if user:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
    port = f":{parts.port}" if parts.port else ""
    tail = f"?{urlencode(query)}" if query else ""
    return f"{_JDBC_DIALECTS[scheme]}://{auth}{parts.hostname}{port}{parts.path}{tail}"


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`: for servers started with settings of their own (lib.stack)."""
    return {**os.environ, **extra}


def cli_settings() -> Settings:
    """`load_settings` for a command's entry point: a bad value ends it with one `error:` line, exit 1."""
    try:
        return load_settings()
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
