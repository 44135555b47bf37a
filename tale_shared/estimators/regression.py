from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tale_shared._io import atomic_writer
from tale_shared._validation import require_question
from tale_shared.budget import TokenBudget
from tale_shared.estimators.base import BudgetEstimator
from tale_shared.estimators.heuristic import question_features
from tale_shared.local.registry import DEFAULT_LOCAL_MODEL, LOCAL_PREFIX

FORMAT = "tale-regression-estimator"
FORMAT_VERSION = 1
_TOKEN_PATTERN = r"(?u)\b\w+\b"  # keeps single characters and digits
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+, zip (joblib/skops/torch)


class EstimatorFileError(ValueError):
    """A saved estimator that tale refuses to load: not our format, tampered with, or a pickle."""


class _Params(BaseModel):
    """Everything a fitted estimator is, as plain data: loading it runs no code."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ngram_max: int = Field(ge=1, le=3)
    vocabulary: dict[str, int]
    idf: list[float]
    numeric_mean: list[float]
    numeric_scale: list[float]
    coef: list[float]
    intercept: float
    min_tokens: int = Field(ge=1)
    max_tokens: int = Field(ge=1)
    fallback_tokens: int = Field(ge=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _in_schema(self) -> _Params:
        # a file whose checksum was recomputed by hand still has to make sense
        if self.max_tokens < self.min_tokens:
            raise ValueError("max_tokens is below min_tokens")
        if not self.min_tokens <= self.fallback_tokens <= self.max_tokens:
            raise ValueError("fallback_tokens is outside [min_tokens, max_tokens]")
        if any(v <= 0 for v in self.idf):
            raise ValueError("idf weights must be positive")
        if any(v <= 0 for v in self.numeric_scale):
            raise ValueError("numeric scales must be positive")
        if len(self.numeric_mean) != len(self.numeric_scale):
            raise ValueError("numeric_mean and numeric_scale differ in length")
        return self


def _digest(params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _vectorizer(ngram_max: int, vocabulary: dict[str, int] | None = None) -> Any:
    """The text features: the same TF-IDF settings for fitting and for loading."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, ngram_max),
        sublinear_tf=True,
        token_pattern=_TOKEN_PATTERN,
        vocabulary=vocabulary,
        dtype=np.float64,
    )


def _numeric_features(questions: Sequence[str]) -> np.ndarray:
    rows = []
    for q in questions:
        f = question_features(q)
        rows.append([math.log1p(f.words), f.quantities, f.operations, f.sentences])
    return np.asarray(rows, dtype=float)


class RegressionEstimator(BudgetEstimator):
    """A learned map from question text to budget, with no model call at all.

    TF-IDF of word n-grams plus the heuristic's features, ridge regression on the log of the
    budget. ``save`` writes plain JSON of the fitted parameters with a sha256 of them; ``load``
    refuses pickles, other formats and files whose parameters do not match their checksum.

    Example:
        >>> est = RegressionEstimator().fit(["What is 2+2?", "A long one ..."] * 5, [40, 200] * 5)
        >>> est.estimate("What is 3+3?").estimator
        'regression'
    """

    name = "regression"

    def __init__(self, *, alpha: float = 1.0, ngram_max: int = 2, **bounds: int) -> None:
        super().__init__(**bounds)
        self.alpha = alpha
        self.ngram_max = ngram_max
        self._params: _Params | None = None
        self._vectorizer: Any = None
        self.metadata: dict[str, Any] = {}
        self.path: Path | None = None  # the file it was loaded from or saved to

    @property
    def spec(self) -> str | None:
        return f"regression:{self.path}" if self.path is not None else None

    @property
    def is_fitted(self) -> bool:
        return self._params is not None

    def fit(
        self,
        questions: Sequence[str],
        budgets: Sequence[float],
        *,
        metadata: dict[str, Any] | None = None,
    ) -> RegressionEstimator:
        """Fit on (question, optimal budget) pairs; returns ``self``."""
        from sklearn.linear_model import Ridge

        if len(questions) != len(budgets):
            raise ValueError(f"{len(questions)} questions but {len(budgets)} budgets")
        if len(questions) < 2:
            raise ValueError("fitting needs at least two examples")
        texts = [require_question(q) for q in questions]
        y = np.asarray(budgets, dtype=float)
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise ValueError("budgets must be positive, finite numbers of tokens")
        vectorizer = _vectorizer(self.ngram_max)
        text_x = vectorizer.fit_transform(texts).toarray()
        numeric = _numeric_features(texts)
        mean = numeric.mean(axis=0)
        scale = numeric.std(axis=0)
        scale[scale == 0] = 1.0
        x = np.hstack([text_x, (numeric - mean) / scale])
        ridge = Ridge(alpha=self.alpha).fit(x, np.log(y))
        self._set_params(
            _Params(
                ngram_max=self.ngram_max,
                vocabulary={k: int(v) for k, v in vectorizer.vocabulary_.items()},
                idf=[float(v) for v in vectorizer.idf_],
                numeric_mean=[float(v) for v in mean],
                numeric_scale=[float(v) for v in scale],
                coef=[float(v) for v in ridge.coef_],
                intercept=float(ridge.intercept_),
                min_tokens=self.min_tokens,
                max_tokens=self.max_tokens,
                fallback_tokens=self.fallback_tokens,
                metadata=dict(metadata or {}, n_train=len(texts)),
            )
        )
        return self

    def _set_params(self, params: _Params) -> None:
        n_text = len(params.vocabulary)
        if len(params.idf) != n_text or len(params.coef) != n_text + len(params.numeric_mean):
            raise EstimatorFileError("the saved estimator's parameters have inconsistent sizes")
        if sorted(params.vocabulary.values()) != list(range(n_text)):
            raise EstimatorFileError("the saved estimator's vocabulary indices are corrupt")
        vectorizer = _vectorizer(params.ngram_max, params.vocabulary)
        vectorizer.idf_ = np.asarray(params.idf, dtype=float)
        self._vectorizer = vectorizer
        self._params = params
        self.metadata = dict(params.metadata)

    def predict(self, questions: Sequence[str]) -> list[float]:
        """Raw (unclamped) budget predictions."""
        if self._params is None:
            raise RuntimeError("this RegressionEstimator is not fitted: call fit() or load()")
        texts = [require_question(q) for q in questions]
        text_x = self._vectorizer.transform(texts).toarray()
        numeric = (_numeric_features(texts) - np.asarray(self._params.numeric_mean)) / np.asarray(
            self._params.numeric_scale
        )
        x = np.hstack([text_x, numeric])
        log_pred = x @ np.asarray(self._params.coef) + self._params.intercept
        return [float(v) for v in np.exp(np.clip(log_pred, -20, 20))]

    def estimate(self, question: str) -> TokenBudget:
        value = self.predict([question])[0]
        return TokenBudget(tokens=self.clamp(value), estimator=self.name)

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted parameters as JSON (with their sha256) to ``path``."""
        if self._params is None:
            raise RuntimeError("cannot save an estimator that is not fitted")
        params = self._params.model_dump(mode="json")
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "sha256": _digest(params),
            "params": params,
        }
        path = Path(path)
        with atomic_writer(path) as fh:
            fh.write(json.dumps(document))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> RegressionEstimator:
        """Load an estimator written by :meth:`save`. Never unpickles anything.

        Raises:
            EstimatorFileError: the file is a pickle or zip archive, is not JSON, is not a
                tale estimator, or its parameters do not match their checksum.
        """
        path = Path(path)
        raw = path.read_bytes()
        if raw.startswith(_PICKLE_MAGIC):
            raise EstimatorFileError(
                f"{path} looks like a pickle or zip archive; tale never unpickles files "
                "(they can run code). Save estimators with RegressionEstimator.save()."
            )
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EstimatorFileError(f"{path} is not a saved tale estimator (not JSON)") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise EstimatorFileError(f"{path} is not a saved tale estimator (format missing)")
        if document.get("version") != FORMAT_VERSION:
            raise EstimatorFileError(
                f"{path} has estimator format version {document.get('version')!r}; "
                f"this tale reads version {FORMAT_VERSION}"
            )
        params = document.get("params")
        if not isinstance(params, dict) or _digest(params) != document.get("sha256"):
            raise EstimatorFileError(
                f"{path} was modified or corrupted: its parameters do not match their sha256"
            )
        try:
            parsed = _Params.model_validate(params)
        except ValidationError as exc:
            raise EstimatorFileError(f"{path} has invalid estimator parameters: {exc}") from exc
        est = cls(
            ngram_max=parsed.ngram_max,
            min_tokens=parsed.min_tokens,
            max_tokens=parsed.max_tokens,
            fallback_tokens=parsed.fallback_tokens,
        )
        est._set_params(parsed)
        est.path = path
        return est


def packaged_estimator_path(model: str = DEFAULT_LOCAL_MODEL) -> Path:
    """Where the package ships the regression estimator fitted for ``model``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model.removeprefix(LOCAL_PREFIX))
    return Path(str(resources.files("tale_shared") / "data" / f"regression-{name}.json"))


def default_regression_estimator(model: str = DEFAULT_LOCAL_MODEL) -> RegressionEstimator:
    """The regression estimator shipped in the package for ``model``."""
    path = packaged_estimator_path(model)
    if not path.is_file():
        raise FileNotFoundError(
            f"no packaged regression estimator for {model}; train one with "
            "`tale search` then `tale train-estimator` and pass regression:PATH"
        )
    return RegressionEstimator.load(path)
