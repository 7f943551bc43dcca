"""The logged model's pip requirements name the packages installed here, xgboost's included."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution, version

import pytest
import xgboost

from lib.model import XGBOOST_DISTRIBUTIONS, installed_distribution, pip_requirements


def test_the_installed_candidate_is_named() -> None:
    assert installed_distribution(["no-such-distribution-here", "numpy"]) == "numpy"
    assert installed_distribution(["PyYAML"]) == "PyYAML"  # the distribution's own spelling


def test_no_installed_candidate_is_an_error_naming_them() -> None:
    with pytest.raises(PackageNotFoundError, match="no-such-a, no-such-b"):
        installed_distribution(["no-such-a", "no-such-b"])


def test_the_xgboost_requirement_is_the_distribution_that_provides_import_xgboost() -> None:
    [xgb_requirement] = [r for r in pip_requirements() if r.split("==")[0] in XGBOOST_DISTRIBUTIONS]
    name, pinned = xgb_requirement.split("==")
    assert "xgboost/__init__.py" in {str(path) for path in distribution(name).files or []}
    assert pinned == version(name) == xgboost.__version__


def test_every_requirement_is_pinned_to_the_installed_version() -> None:
    requirements = dict(r.split("==") for r in pip_requirements())
    assert {"mlflow", "numpy", "pandas", "scikit-learn"} <= set(requirements)
    assert all(version(name) == pinned for name, pinned in requirements.items())
