"""tale's framework-free core: budgets, estimators, prompt styles, answers, usage and cost.

    from tale_shared import HeuristicEstimator, TalePipeline
    from tale_shared.local import load_local_model

    result = TalePipeline(load_local_model(), estimator="heuristic").solve("...")
    result.answer, result.budget.tokens, result.record.usage

Nothing here imports LangChain or LlamaIndex; llama-cpp-python is imported only when a local
model is loaded.
"""

from importlib import metadata as _metadata

from tale_shared.answers import extract_answer, is_correct, normalize_answer
from tale_shared.budget import TokenBudget
from tale_shared.estimators import (
    BudgetEstimator,
    EstimatorFileError,
    FixedBudgetEstimator,
    HeuristicEstimator,
    RegressionEstimator,
    ZeroShotEstimator,
    make_estimator,
)
from tale_shared.loading import load_model
from tale_shared.methods import Method, parse_method
from tale_shared.models import ChatModel, Completion, ModelCallError
from tale_shared.pipeline import TalePipeline, TaleResult, hard_cap
from tale_shared.pricing import ModelPrice, PriceTable
from tale_shared.profiles import ModelProfile, method_for, profile_for
from tale_shared.prompts import Message, PromptStyle, get_style, list_styles, register_style
from tale_shared.run_budget import RunBudget, RunSpending, TaleBudgetExceededError
from tale_shared.tokens import count_tokens, get_token_counter
from tale_shared.usage import CallRecord, QueryRecord, TokenUsage, UsageLedger, UsageSummary

DISTRIBUTION = "tale-reasoning"
"""The name tale is installed by (``pip install tale-reasoning``); ``tale`` on the package
index is another project."""

try:
    __version__ = _metadata.version(DISTRIBUTION)
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BudgetEstimator",
    "CallRecord",
    "ChatModel",
    "Completion",
    "EstimatorFileError",
    "FixedBudgetEstimator",
    "HeuristicEstimator",
    "Message",
    "Method",
    "ModelCallError",
    "ModelPrice",
    "ModelProfile",
    "PriceTable",
    "PromptStyle",
    "QueryRecord",
    "RegressionEstimator",
    "RunBudget",
    "RunSpending",
    "TaleBudgetExceededError",
    "TalePipeline",
    "TaleResult",
    "TokenBudget",
    "TokenUsage",
    "UsageLedger",
    "UsageSummary",
    "ZeroShotEstimator",
    "count_tokens",
    "extract_answer",
    "get_style",
    "get_token_counter",
    "hard_cap",
    "is_correct",
    "list_styles",
    "load_model",
    "make_estimator",
    "method_for",
    "normalize_answer",
    "parse_method",
    "profile_for",
    "register_style",
]
