"""The benchmark programs behind ``gist-harness bench``: measured timings and the lite suite's validity.

Experiment tooling, kept apart from the training and scoring code it measures. One module per
benchmark, each with one entry point that the command's handler in :mod:`harness.cli` calls:

* :mod:`harness.bench.step`: one train step per loss and per loss objective (``bench step``);
* :mod:`harness.bench.eval` and :mod:`harness.bench.eval_tasks`: a suite's evaluation, with and
  without the shared embedding cache, and per task (``bench eval``);
* :mod:`harness.bench.epoch`: one training epoch per student and arm (``bench epoch``);
* :mod:`harness.bench.lite` and :mod:`harness.bench.lite_validity`: is the lite suite a valid proxy
  for the full suite (``bench lite``).
"""
