"""Evaluation of BYOL representations: features, k-NN, linear probes, collapse monitors, report."""

from byol.eval.features import Features, extract_features
from byol.eval.knn import KNNResult, knn_class_probabilities, knn_classify
from byol.eval.linear import (
    LinearClassifier,
    LinearProbeResult,
    linear_probe,
    load_linear_classifier,
    save_linear_classifier,
)
from byol.eval.linear_official import linear_eval_official, linear_eval_official_on_splits
from byol.eval.monitors import CollapseDetector, CollapseReport, effective_rank, projection_std
from byol.eval.report import retrieval_grid_html, write_report

__all__ = [
    "CollapseDetector",
    "CollapseReport",
    "Features",
    "KNNResult",
    "LinearClassifier",
    "LinearProbeResult",
    "effective_rank",
    "extract_features",
    "knn_class_probabilities",
    "knn_classify",
    "linear_eval_official",
    "linear_eval_official_on_splits",
    "linear_probe",
    "load_linear_classifier",
    "projection_std",
    "retrieval_grid_html",
    "save_linear_classifier",
    "write_report",
]
