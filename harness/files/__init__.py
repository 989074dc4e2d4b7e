"""The bottom layer for files: the data folder and readers for every offline file format in it.

:func:`data_dir` resolves the data folder (explicit > ``$GIST_HARNESS_DATA``), the one resolver
every caller uses. The readers (see the folder's ``README.md`` and ``MANIFEST.md``) are pure
functions over one file (or one parallel set of files) returning plain lists of dicts; no torch, no
``datasets``. The evaluation tasks (``harness.tasks``) and the training sources
(``harness.data.sources``) both build on this package, so each quirk of the shared copies is handled
once:

* BOMs (MSRP train/test) and CRLF (SICK test, MSRP, TrecQA, Banking77, ...) are dropped.
* STS-B lines carry 2 extra source columns on some lines and contain ``"``: read with quoting off.
* SemEval STS 2015/2016 lines and senteval ``STS.gs`` files mark unscored pairs with an empty
  score (returned as ``score=None``; callers keep or drop them).
* Banking77 has quoted fields spanning several lines (kept verbatim, as MTEB does).
* Emotion lines are split on the *last* ``;``.
* AmazonCounterfactual uses standard CSV double-quote handling with a tab delimiter.
* BIOSSES files have no final newline; pair *i* is sentence lines ``2i`` and ``2i+1``.
* stsb-multi-mt: CSV without a header (standard quoting, CRLF); Tatoeba: two parallel line files.
* PIT2015 columns are in file order (Label 5th, not 1st as its README says); ``test.label``
  holds the test labels.
* SciFact abstracts are numpy-repr lists of Python string literals, ``cited_doc_ids`` numpy int
  arrays, and the corpus needs a raised ``csv.field_size_limit`` (set in :mod:`harness.files.text`).

A missing file, bytes that are not UTF-8, a malformed line or a missing column raises a one-line
:class:`~harness.errors.UserError` naming ``file:line`` and what was expected.

Text is returned exactly as stored (no stripping), except SNLI's trailing space, which SentEval's
preprocessing appended to every line.
"""

from harness.files._fields import Row
from harness.files.classification import (
    EMOTION_LABELS,
    TWEET_SENTIMENT_LABELS,
    read_amazon_counterfactual,
    read_banking77,
    read_banking77_categories,
    read_emotion,
    read_tweet_sentiment,
)
from harness.files.folder import ENV_DATA, data_dir
from harness.files.multilingual import read_stsb_multi, read_tatoeba
from harness.files.scifact import (
    parse_string_list,
    read_beir_qrels,
    read_beir_queries,
    read_scifact_claims,
    read_scifact_corpus,
)
from harness.files.sentence_pairs import SNLI_LABELS, read_msrp, read_pit2015, read_snli, read_trecqa
from harness.files.sts import (
    read_biosses,
    read_semeval_sts,
    read_sick,
    read_sts_folder,
    read_sts_input,
    read_stsb,
)

__all__ = [
    "EMOTION_LABELS",
    "ENV_DATA",
    "SNLI_LABELS",
    "TWEET_SENTIMENT_LABELS",
    "Row",
    "data_dir",
    "parse_string_list",
    "read_amazon_counterfactual",
    "read_banking77",
    "read_banking77_categories",
    "read_beir_qrels",
    "read_beir_queries",
    "read_biosses",
    "read_emotion",
    "read_msrp",
    "read_pit2015",
    "read_scifact_claims",
    "read_scifact_corpus",
    "read_semeval_sts",
    "read_sick",
    "read_snli",
    "read_sts_folder",
    "read_sts_input",
    "read_stsb",
    "read_stsb_multi",
    "read_tatoeba",
    "read_tweet_sentiment",
    "read_trecqa",
]
