"""Research tools around the runtime: optimal-budget search, estimator training, calibration,
training-data export, plots, data sets and the method benchmark.

They import the runtime (:mod:`tale_shared`); the runtime never imports them, so what a
LangChain or LlamaIndex user loads at run time stays small.
"""
