"""The sentence-transformers internals the loss builds on, imported in this one place.

sentence-transformers exports ``CachedLossMixin`` and ``RandContext`` (``base.losses``) but keeps the
helpers below private: ``_create_minibatch`` (slicing features into GradCache mini-batches) and
``embed_columns`` (one merged forward over an anchor and its candidates, exactly as ``GISTEmbedLoss``
embeds). They can move or change in any release; ``tests/test_st_private.py`` checks their names and
signatures against the installed version, so an upgrade fails there, loudly, not deep in a training step.
Written against sentence-transformers 6.3.0.
"""

from __future__ import annotations

from sentence_transformers.base.losses import CachedLossMixin, RandContext
from sentence_transformers.base.losses.gradcache import _create_minibatch as create_minibatch
from sentence_transformers.base.losses.merged_forward import embed_columns

__all__ = ["CachedLossMixin", "RandContext", "create_minibatch", "embed_columns"]
