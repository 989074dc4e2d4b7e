"""Static students' training defaults and the ``search_preset = "static"`` search space."""

from __future__ import annotations

# A static table wants a far larger learning rate than a transformer; these are the defaults the
# experiment schema applies to static students. lr: for a table initialised from a transformer's
# input embeddings (static-minilm), 0.01 was the best of 0.05/0.01/0.003/0.001 on 4,000 mini-medi
# pairs (reports/static-lr-probe/: mean STS 62.0 at 0.01 against 55.9 at 0.05, 54.8 untrained).
# A randomly initialised table wants more (sentence-transformers trains its static models at 0.2).
STATIC_DEFAULTS = {"lr": 0.01, "warmup_ratio": 0.1, "batch_size": 128, "max_seq_len": 256}

# ``search_preset = "static"`` in an experiment: the ranges that matter for a static table.
STATIC_SEARCH_SPACE = {
    "lr": {"type": "float", "low": 1e-3, "high": 0.5, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128, 256]},
    "temperature": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
}
