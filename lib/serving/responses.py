"""Response bodies of the model server, as documented in OpenAPI (every error has `ErrorResponse`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    uuid: str = Field(description="quote it in POST /feedback to report the true outcome")
    prediction: Literal[0, 1]
    probability: float
    model_name: str
    model_version: str


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[Prediction]


class InvocationRow(BaseModel):
    prediction: Literal[0, 1]
    probability: float


class InvocationsResponse(BaseModel):
    predictions: list[InvocationRow]


class ExplainResponse(BaseModel):
    model_name: str
    model_version: str
    probability: float
    prediction: Literal[0, 1]
    contributions: dict[str, float] = Field(description="SHAP log-odds per feature, plus 'bias'")


class FeedbackResponse(BaseModel):
    matched: int
    unknown: list[str] = Field(description="uuids no logged prediction has (not stored)")


class HealthResponse(BaseModel):
    status: Literal["ok"]
    pid: int


class ReadyResponse(BaseModel):
    status: str
    model_version: str | None


class VersionResponse(BaseModel):
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


class ReloadResponse(BaseModel):
    reloaded: bool
    previous_version: str | None
    model_version: str


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    detail: str = Field(description="what was wrong, naming the field")
    errors: list[ErrorItem] | None = None
