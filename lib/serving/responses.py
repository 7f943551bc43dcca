"""Response bodies of the model server, as documented in OpenAPI (every error has `ErrorResponse`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    """One scored record of POST /predict, with the uuid that feedback refers to."""

    uuid: str = Field(description="quote it in POST /feedback to report the true outcome")
    prediction: Literal[0, 1]
    probability: float
    model_name: str
    model_version: str


class PredictResponse(BaseModel):
    """POST /predict's answer: the serving model and one prediction per record, in order."""

    model_name: str
    model_version: str
    predictions: list[Prediction]


class InvocationRow(BaseModel):
    """One scored row of POST /invocations."""

    prediction: Literal[0, 1]
    probability: float


class InvocationsResponse(BaseModel):
    """POST /invocations' answer, shaped like MLflow's scoring server's."""

    predictions: list[InvocationRow]


class ExplainResponse(BaseModel):
    """POST /explain's answer: the score of one record and what each feature added to it."""

    model_name: str
    model_version: str
    probability: float
    prediction: Literal[0, 1]
    contributions: dict[str, float] = Field(description="SHAP log-odds per feature, plus 'bias'")


class FeedbackResponse(BaseModel):
    """POST /feedback's answer: how many outcomes matched a logged prediction."""

    matched: int
    unknown: list[str] = Field(description="uuids no logged prediction has (not stored)")


class HealthResponse(BaseModel):
    """GET /health's answer: the process is up."""

    status: Literal["ok"]
    pid: int


class ReadyResponse(BaseModel):
    """GET /ready and /ping's answer: whether a model is loaded, and which version."""

    status: str
    model_version: str | None


class VersionResponse(BaseModel):
    """GET /version's answer: the served version's registry facts and decision threshold."""

    model_name: str
    model_version: str
    run_id: str
    iceberg_snapshot_id: str
    git_commit: str
    experiment: str
    model_uri: str
    loaded_at: str
    decision_threshold: float = Field(
        description="prediction = probability >= this (the version's decision_threshold tag, else 0.5)"
    )
    engine: Literal["compiled", "xgboost"] = Field(
        description="what scores: the booster compiled to C (once built after a load) or XGBoost itself; "
        "the same probabilities within 1e-6"
    )


class ReloadResponse(BaseModel):
    """POST /admin/reload's answer: whether the served version changed."""

    reloaded: bool
    previous_version: str | None
    model_version: str
    decision_threshold: float = Field(description="the threshold serving now (the version's tag, else 0.5)")


class ErrorItem(BaseModel):
    """One field problem of a rejected request."""

    field: str
    message: str


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    detail: str = Field(description="what was wrong, naming the field")
    errors: list[ErrorItem] | None = None
