"""wordconv: word-level convolutional networks for text.

    import wordconv
    model = wordconv.train("mr", "textcnn", "runs/mr")      # train, evaluate, save
    model.predict(["a gripping, funny film"])               # -> [Prediction(label='positive', ...)]
    model = wordconv.load("runs/mr")                        # later, anywhere
"""

from wordconv.errors import ConfigError, DataError, ModelError, WordconvError

__version__ = "0.1.0"


def train(*args, **kwargs):
    """Train, evaluate and (with ``output``) save a model; see :func:`wordconv.pipeline.train`."""
    from wordconv.pipeline import train as _train

    return _train(*args, **kwargs)


def evaluate(*args, **kwargs) -> dict:
    """Evaluate a saved model; see :func:`wordconv.pipeline.evaluate`."""
    from wordconv.pipeline import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def tune(*args, **kwargs):
    """Search hyperparameters with Optuna; see :func:`wordconv.tuning.search.tune`."""
    from wordconv.tuning.search import tune as _tune

    return _tune(*args, **kwargs)


def distill(*args, **kwargs):
    """Distil a fine-tuned teacher into a word CNN; see :func:`wordconv.distillation.distill`."""
    from wordconv.distillation import distill as _distill

    return _distill(*args, **kwargs)


def load(path):
    """Load a model directory into a :class:`~wordconv.inference.Predictor`."""
    from wordconv.inference import Predictor

    return Predictor.load(path)


def __getattr__(name: str):
    # heavy classes are imported on first use, so `import wordconv` stays light
    if name == "TextClassifier":
        from wordconv.estimator import TextClassifier

        return TextClassifier
    if name == "Predictor":
        from wordconv.inference import Predictor

        return Predictor
    raise AttributeError(f"module 'wordconv' has no attribute {name!r}")


__all__ = ["train", "evaluate", "tune", "load", "TextClassifier", "Predictor", "WordconvError", "DataError", "ConfigError", "ModelError", "__version__"]
