"""The toolkit plugins may import: everything the built-in plugins use besides :mod:`prorlbench.api`.

A plugin imports ``prorlbench.hookimpl``, :mod:`prorlbench.api` (specs, protocols, data types) and
this module; nothing else of ``prorlbench`` is a promise (the RL family plugin also uses
:mod:`prorlbench.rl`, the RL library, as its own). ``tests/test_architecture.py`` checks that the
built-ins keep to it. The names below are re-exported from where they live:

* config and errors: ``opt`` (a documented config field), ``ConfigError``, ``DataError``,
  ``UserError`` (one-line errors, exit code 2);
* cases: ``split_users`` (the user-disjoint train/valid/test split);
* scoring: ``PathScores`` / ``score_paths`` (one simulator pass per path), ``attribute_matrix``,
  ``histories_tensor``, ``item_embedding_matrix``, ``last_states``, ``model_device``;
* decoding: the module ``decoding`` (``Rows``, ``pick``, ``advance``, ``collect``,
  ``in_batches``: the candidate rule of the greedy baselines);
* sequence training: ``SeqTrainConfig``, ``SharedEmbeddingHead``, ``train_or_load``,
  ``simulator_build``, ``train_model``, ``evaluate_next_item`` (next-item simulators, trained once and cached);
* executors: ``CellJob``, ``ExecutorContext`` (what an executor plugin receives);
* progress: ``tqdm`` (a bar in a terminal, plain periodic lines in a batch job);
* cache files: ``entry_lock`` (an exclusive lock while one process writes an entry) and
  ``atomic_write`` (write to a temporary file, then replace);
* data files: ``regular_file`` (refuses ``/dev/zero``, a FIFO or a socket before a loader reads
  it whole or blocks on it).
"""

from __future__ import annotations

from .config import opt
from .console.progress import tqdm
from .errors import ConfigError, DataError, UserError
from .executors import CellJob, ExecutorContext
from .folder.files import atomic_write, entry_lock, regular_file
from .seq import decoding
from .seq.cases import split_users
from .seq.scoring import (PathScores, attribute_matrix, histories_tensor, item_embedding_matrix, last_states,
                          model_device, score_paths)
from .seq.seqtrain import (SeqTrainConfig, SharedEmbeddingHead, evaluate_next_item, simulator_build, train_model,
                           train_or_load)

__all__ = [
    "opt", "ConfigError", "DataError", "UserError", "atomic_write", "entry_lock", "regular_file",
    "split_users",
    "PathScores", "score_paths", "attribute_matrix", "histories_tensor", "item_embedding_matrix",
    "last_states", "model_device",
    "decoding",
    "SeqTrainConfig", "SharedEmbeddingHead", "train_or_load", "simulator_build", "train_model",
    "evaluate_next_item",
    "CellJob", "ExecutorContext",
    "tqdm",
]
