"""Hyperparameter search (Optuna): spaces over config paths, shared storage, parallel workers.

    result = wordconv.tune("mr", "textcnn", "configs/spaces/textcnn.yaml", trials=20, sampler="random",
                           output="runs/tune-mr")
    result.best_params, result.best_value      # -> {"training.lr": 0.0012, ...}, 0.781

See :mod:`wordconv.tuning.search` for the rules workers sharing a study follow, and
:mod:`wordconv.tuning.space` for the space file.
"""

from wordconv.tuning.search import TuneResult, tune
from wordconv.tuning.space import Dimension, Space, load_space, parse_space

__all__ = ["Dimension", "Space", "TuneResult", "load_space", "parse_space", "tune"]
