"""Test instrumentation: SIGKILL this process at a named moment.

The reliability tests (`tests/test_reliability.py`,
`benchmarks/fault_injection.py`) set `KERAS_LOTTERY_FAULT` to kill a run
exactly where a crash is most likely to leave a half-written state, then
rerun the same command and check that it ends as an uninterrupted run does.
Unset (always, outside those tests), every call here is a dictionary lookup
and nothing more.

    KERAS_LOTTERY_FAULT=<point>[@<n>]   SIGKILL at the n-th (default: 1st)
                                        time this process reaches <point>

Kills at random moments come from outside the process (the tests send
SIGKILL themselves); these are the moments a random kill rarely hits.

Points (see docs/RELIABILITY.md):
    train                  after each `steps_per_loop` chunk of steps
    checkpoint_files       a checkpoint's files are written, TensorFlow's
                           `checkpoint` index does not name it yet
    checkpoint_saved       the checkpoint and its history are complete
    scored                 a criterion read one more batch (gradients,
                           activations), masks not pruned yet
    pruned                 a round's masks are pruned, weights not rewound
    early_bird             an early-bird check computed the next mask, the
                           round does not yet know whether it ends
    model_saved            model.keras is in place, metrics.json is not
    round_done             metrics.json is in place (the round is done)
    write:<name>           the temporary copy of file or folder <name> (a
                           base name: masks.npz, model.keras, metrics.json,
                           ckpt-20.history.json, 1 for the export...) is
                           complete and not yet renamed into place
"""

from __future__ import annotations

import collections
import os
import signal

ENV = "KERAS_LOTTERY_FAULT"

_hits: collections.Counter = collections.Counter()


def point(name: str) -> None:
    """SIGKILLs this process if `KERAS_LOTTERY_FAULT` names this moment."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    wanted, _, count = spec.partition("@")
    if wanted != name:
        return
    _hits[name] += 1
    if _hits[name] == int(count or 1):
        _kill()


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
