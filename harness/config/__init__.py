"""Experiments as data: the TOML schema, ``load_experiment`` and ``ConfigError``.

``load_experiment(path)`` parses a TOML file into a frozen ``Experiment`` and reports every problem
(schema, consistency, unknown registered names with close matches) in one ``ConfigError``, before any
model loads. The schema lives in ``schema`` (its ``[report]`` record, ``ReportConfig``, in
``harness.report.settings``, which reads it back), cross-section and name checks over the typed
experiment in ``checks``, and ``draft`` gives those checks what pydantic accepted of a refused file.
"""

from harness.config.load import ConfigError, load_experiment, validate_experiment
from harness.config.schema import (
    PRUNERS,
    SAMPLERS,
    AblationConfig,
    ArmConfig,
    CategoricalParam,
    CotrainingConfig,
    DataConfig,
    Experiment,
    FinalConfig,
    FloatParam,
    IntParam,
    MineConfig,
    ModelConfig,
    ObjectiveConfig,
    StudyConfig,
    SuiteRef,
    TrainConfig,
    optuna_class,
)

__all__ = [
    "optuna_class",
    "PRUNERS",
    "SAMPLERS",
    "AblationConfig",
    "ArmConfig",
    "CategoricalParam",
    "CotrainingConfig",
    "ConfigError",
    "DataConfig",
    "Experiment",
    "FinalConfig",
    "FloatParam",
    "IntParam",
    "MineConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "StudyConfig",
    "SuiteRef",
    "TrainConfig",
    "load_experiment",
    "validate_experiment",
]
