"""The training steps replayed as CUDA graphs (`train.cudaGraphs`): the same kernels, launched as one graph.

A paper-setting iteration launches thousands of small kernels (spectral norm's power iterations, Adam,
masking, the EMA) and the GPU idles between them; a graph replays a captured step with one launch. What is
captured is a step's body from its inputs on: the forward passes, the backward, the gradient masking, the
optimizer step (adam.py keeps Adam's step count on the device on CUDA) and, for G, the EMA update.
Drawing the inputs (the real batch and z) stays outside, eager and in the same order as without graphs, so
the random streams are the eager path's and a graph needs no generator of its own.

Lifecycle of one step's graph:
  - the first WARMUP calls run the body eagerly, on a side stream as CUDA graph capture requires (lazy
    state, e.g. cuDNN's plans and autograd's accumulators, is set up there); they are real training steps;
  - the next call captures the body on its static input buffers (capture runs no kernel) and replays it;
    `before_capture` runs first: autograd state that outlives a step (spectral norm's cached weight, see
    train.forget_cached_weights) was made on other streams and must not reach into the capture;
  - every later call copies its inputs into the static buffers and replays;
  - when `key()` changes (the masks: `MaskSet.version` moves at every mask change and checkpoint load, which
    also replaces the optimizer's state tensors), both graphs are dropped and the cycle starts again.
A captured graph holds its tensors' addresses: the parameters, the optimizer state and the masks' tensors.
Nothing between two replays may replace those tensors except through a mask change or a load, which moves
the key. Gradients are the graph's own (captured from `grad=None` into the graph's memory pool) and are
written and read within one replay. An eager backward in between (growth gradients) replaces `p.grad` and
returns the graph's gradient memory to the pool; nothing else allocates from that pool until the next
capture, and growth gradients are only taken for a mask change, which drops both graphs and their pool.
"""

from typing import Callable, Hashable

import torch

from .errors import execution_failed

WARMUP = 2  # eager calls before capture (PyTorch's whole-network capture recipe warms up on a side stream)


class StepGraph:
    """One step's body `body(*inputs) -> tuple of tensors`, replayed as a CUDA graph. Returns clones of the
    outputs: the static ones are overwritten by the next replay."""

    def __init__(self, name: str, body: Callable[..., tuple], pool, before_capture: Callable[[], None]):
        self.name = name
        self.body = body
        self.pool = pool
        self.before_capture = before_capture
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: list[torch.Tensor] = []
        self.outputs: tuple = ()
        self.warm = 0

    def __call__(self, *inputs: torch.Tensor) -> tuple:
        if self.graph is None and self.warm < WARMUP:
            self.warm += 1
            return _on_side_stream(self.body, inputs)
        if self.graph is None:
            self._capture(inputs)
        for static, x in zip(self.inputs, inputs):
            static.copy_(x)
        self.graph.replay()
        return tuple(o.clone() for o in self.outputs)

    def _capture(self, inputs) -> None:
        self.before_capture()
        self.inputs = [x.clone() for x in inputs]
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool):  # the backward runs on autograd's device thread: global mode
                self.outputs = self.body(*self.inputs)
        except Exception as e:  # nothing ran during the capture: the weights are as the last eager step left them
            raise execution_failed(f"capturing the {self.name} as a CUDA graph failed ({type(e).__name__}: {e})",
                                   "cudaGraphs", "graphs", "capture", step=self.name, error=type(e).__name__) from e
        self.graph = graph


def _on_side_stream(fn, inputs) -> tuple:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = fn(*inputs)
    torch.cuda.current_stream().wait_stream(side)
    return out


class StepGraphs:
    """The D step's and the G step's graphs, sharing one memory pool (they never replay concurrently and
    always in the order they were captured relative to each other), dropped together when `key()` changes."""

    def __init__(self, d_body: Callable[..., tuple], g_body: Callable[..., tuple], key: Callable[[], Hashable],
                 before_capture: Callable[[], None] = lambda: None):
        self.d_body, self.g_body, self.key, self.before_capture = d_body, g_body, key, before_capture
        self.captures = 0  # graphs captured so far (tests and the benchmark read it)
        self._reset(None)

    def _reset(self, key) -> None:
        self._key = key
        pool = torch.cuda.graph_pool_handle()
        self._d = StepGraph("D step", self.d_body, pool, self.before_capture)
        self._g = StepGraph("G step", self.g_body, pool, self.before_capture)

    def _current(self) -> None:
        key = self.key()
        if key != self._key:
            self._reset(key)

    def d(self, *inputs) -> tuple:
        self._current()
        return self._counted(self._d, inputs)

    def g(self, *inputs) -> tuple:
        self._current()
        return self._counted(self._g, inputs)

    def _counted(self, step: StepGraph, inputs) -> tuple:
        before = step.graph
        out = step(*inputs)
        if step.graph is not before:
            self.captures += 1
        return out
