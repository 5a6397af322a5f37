"""How the generator is put to sampling (`evaluate`, `sample`): BatchNorm's two ways of normalizing.

- "batch": every BatchNorm layer normalizes by the statistics of the batch it is given, as in training. The
  reference code samples so (its evaluation never leaves training mode, batches of 100), and it is the
  default: the EMA's weights are averaged, while running statistics are averages of what the raw G's
  activations were, so the two need not fit each other. The running averages are neither read nor moved
  (the layer's forward is given no running buffers), so sampling changes nothing a checkpoint holds. A
  sample then depends on the batch it was drawn in, so every forward draws a whole batch (the last one's
  surplus is dropped, as the reference draws only whole batches): each sample is normalized with
  batchSize - 1 others however many are asked for, and the first k of n samples are the same for every
  n >= k. The same `batchSize` and seed give the same samples.
- "running": eval mode, BatchNorm normalizes by the running averages (what ddst did before the setting;
  config.json of runs from then lacks `eval.batchNorm`, and they keep sampling so).

Every other layer is in eval mode either way (spectral norm on a generator does not step its power
iteration). Networks without BatchNorm sample identically in both.
"""

from contextlib import contextmanager

from torch import nn

from .errors import WorkerError

BATCH_NORM_MODES = ("batch", "running")


def check_batch_norm(batch_norm) -> None:
    """A request's `batchNorm`, refused as bad_value unless it is one of the modes."""
    if batch_norm not in BATCH_NORM_MODES:
        raise WorkerError("bad_value", f"batchNorm must be one of {BATCH_NORM_MODES}", {"batchNorm": batch_norm})


@contextmanager
def sampling(G: nn.Module, batch_norm: str):
    check_batch_norm(batch_norm)
    was_training = G.training
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if batch_norm == "batch" else []
    tracked = [m.track_running_stats for m in norms]
    G.eval()
    for m in norms:
        # Training mode without tracking: batch statistics, and no running buffers passed to the kernel.
        m.train()
        m.track_running_stats = False
    try:
        yield G
    finally:
        for m, t in zip(norms, tracked):
            m.track_running_stats = t
        G.train(was_training)


def forwards(n: int, batch: int, batch_norm: str):
    """(draw, keep) for each forward that gives `n` samples `batch` at a time: under "batch" every forward draws
    a whole batch and keeps what is still wanted; under "running" a sample does not depend on its batch, so
    the last forward draws only what is left."""
    for start in range(0, n, batch):
        keep = min(batch, n - start)
        yield (batch if batch_norm == "batch" else keep), keep
