"""textdiff: train, sample and evaluate text diffusion models side by side.

``textdiff.load("models/ROW")`` gives a trained row to sample, infill, guide and score (textdiff.api);
it is imported on first use, so ``import textdiff.config`` stays light.
"""


def __getattr__(name: str):
    if name == "load":
        from textdiff.api import load

        return load
    raise AttributeError(f"module 'textdiff' has no attribute {name!r}")
