"""gist-harness: ablation studies of guided in-batch negatives (GISTEmbed, arXiv 2402.16829).

Only the version lives here, so that importing the report layer never pulls in torch.

Module map
----------
Imports point down this list; modules on one line never import each other. ``tox -e lint``
enforces it with import-linter (``[tool.importlinter]`` in pyproject.toml: the same layers, and no
import cycle between sibling modules at any depth); ``tests/test_module_map.py`` keeps this map and
that contract naming the same modules.

========================  ==========================================================================
layer                     owns
========================  ==========================================================================
``__main__``,             ``python -m harness`` (the ``gist-harness`` command); the docs site's
``reference``             reference pages, generated from the registries, the CLI and the schema
``cli``                   the command line: thin handlers; every file write, env and device choice
``bench``                 benchmark programs behind ``gist-harness bench`` (timings, lite validity)
``study``                 Optuna studies: **where a trial is orchestrated** (``study.pipeline`` wires
                          prepare / fit / score, ``study.rounds`` trains in rounds and co-trains,
                          ``study.trial`` is the objective, ``study.runner`` runs or resumes a study)
``train``                 ``train()``: one fine-tuning run over sentence-transformers' Trainer
``train_record``          what a training run records (loss curve, diagnostics, step times)
``config``                experiments as data: the TOML schema, its cross-field checks, presets
``evaluate``, ``guides``  suites and ``evaluate()``; guides: **where a guide is built**
                          (``guides.GuideFactory``: none, self, partner, online, cached, lexical)
``loss``                  the guided in-batch loss over embeddings: maths (``blocks``,
                          ``objectives``), glue (GradCache, gathering, guide vectors), diagnostics
``tasks``, ``data``,      local MTEB tasks; training sources, mixtures and leakage checks; masking
``masking``, ``models``,  strategies; models: **where a model is loaded** (``models.load_model``),
``embedding_cache``,      with pairs, truncation and the three model identities; the per-model
``guide_cache``           embedding cache of evaluation; the persisted guide-vector cache
``files``                 the data folder and readers of every offline file format in it
``report``                stored results in, tables, figures, Markdown and HTML out (no torch)
``results``               result records (pydantic) and their JSON files
``params``                named parameters shared by masking strategies and loss objectives
``registry``, ``errors``  ``Registry[T]``; ``UserError``
========================  ==========================================================================
"""

__version__ = "0.1.0"
