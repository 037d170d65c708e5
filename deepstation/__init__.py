"""deepstation: declarative deep learning that learns its own features.

Nothing heavy is imported here: `import deepstation` does not import torch.

    run = deepstation.train("examples/digits.yaml")
    run.metrics["test"]["accuracy"]
    deepstation.load(run.dir).predict("new.csv")
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["train", "load", "Run", "__version__"]


def train(task, **overrides):
    """Train the task (a YAML path or a dict) and return the finished Run.

    Overrides: epochs, device, runs_dir, resume (a run folder to continue), progress (see
    deepstation.training.progress; silent by default).
    """
    from deepstation.run import train as _train

    return _train(task, **overrides)


def load(run_dir):
    """Load a finished run folder, or a registered model (models:/NAME/VERSION), for predict() and evaluate()."""
    from deepstation.run import Run

    return Run.load(run_dir)


def __getattr__(name):
    if name == "Run":
        from deepstation.run import Run

        return Run
    raise AttributeError(f"module 'deepstation' has no attribute {name!r}")
