"""What a stretch of training costs in operators, kernel launches, GPU time and host waits (`train` with
`profile: true`, for `ddst bench --paper`).

torch.profiler records the host's operator calls and CUDA runtime calls and, through CUPTI, every kernel,
copy and memset the GPU ran. From them:
  cpuOps    aten operators dispatched (nested ones included: aten::linear and the aten::addmm it calls);
  launches  host calls that start GPU work: kernel launches, graph launches (one per replayed CUDA graph),
            memcpy/memset calls;
  kernels   kernels the GPU ran (a replayed graph's kernels included);
  kernelS   their summed duration; busyS: the time at least one GPU activity ran (the union of their
            intervals), so busyS / wall time is the GPU's busy fraction;
  syncs     host calls that wait for the GPU (stream, device and event synchronizes, synchronous memcpy),
            less the one this module makes at the end;
  topOps    the aten operators dispatched most often, [name, calls] (where launches come from);
  topKernels the kernels with the most GPU time, [name, count, seconds] (null on the CPU).
Only what happens inside a marked window counts: from just before `fn` to the synchronize after it. The
profiler's own start-up, its closing synchronize and its flush stay out of wallS and syncs, and a GPU record
whose timestamps lie far outside the window (CUPTI has been seen to misdate the first records of a second
profiling session in one process by ~1e14 ns) is dropped rather than summed.
The profiler slows the host side; time iterations without it and take the fractions from these totals.
"""

import time
from collections import Counter

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

SYNCS = {"cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy",
         "cuStreamSynchronize", "cuCtxSynchronize", "cuEventSynchronize"}
WINDOW = "ddst::profiled"
SLACK_US = 1e6  # GPU records may straddle the window's ends by clock skew, never by a second
TOP = 12


def _launch(name: str) -> bool:
    return name.startswith(("cudaLaunch", "cuLaunch", "cudaGraphLaunch", "cudaMemcpy", "cudaMemset", "cuMemcpy",
                            "cuMemset"))


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of [start, end) intervals (microseconds in, seconds out)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total / 1e6


def profiled(fn, device: str):
    """-> (fn(), totals as the module docstring describes; the GPU's are None on the CPU)."""
    cuda = device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    if cuda:
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        with record_function(WINDOW):
            t0 = time.perf_counter()
            out = fn()
            if cuda:
                torch.cuda.synchronize()
            wall = time.perf_counter() - t0
    events = prof.events()
    # The marker is recorded twice with CUDA on: on the host and as a GPU "user annotation" spanning the GPU work
    # inside it. Only the host's bounds the window, and neither counts as work.
    window = next((e.time_range for e in events if e.name == WINDOW and e.device_type == DeviceType.CPU), None)
    if window is None:
        raise RuntimeError("the profiler returned no record of its own window (a partial trace); profile again")
    lo, hi = window.start, window.end
    host = [e for e in events if e.device_type == DeviceType.CPU and e.name != WINDOW
            and lo <= e.time_range.start and e.time_range.end <= hi]
    ops = Counter(e.name for e in host if e.name.startswith("aten::"))
    totals = {"wallS": wall, "cpuOps": sum(ops.values()), "topOps": [[n, c] for n, c in ops.most_common(TOP)],
              "launches": None, "kernels": None, "kernelS": None, "busyS": None, "syncs": None, "topKernels": None}
    if cuda:
        gpu = [e for e in events if e.device_type == DeviceType.CUDA and e.name != WINDOW
               and not getattr(e, "is_user_annotation", False)
               and lo - SLACK_US <= e.time_range.start and e.time_range.end <= hi + SLACK_US]
        kernels = [e for e in gpu if not e.name.startswith(("Memcpy", "Memset"))]
        totals.update(
            launches=sum(_launch(e.name) for e in host),
            kernels=len(kernels),
            kernelS=sum(e.time_range.elapsed_us() for e in kernels) / 1e6,
            busyS=busy_seconds([(e.time_range.start, e.time_range.end) for e in gpu]),
            syncs=max(0, sum(e.name in SYNCS for e in host) - 1),
            topKernels=_top_kernels(kernels))
    return out, totals


def _top_kernels(kernels) -> list:
    count, seconds = Counter(), Counter()
    for e in kernels:
        name = e.name[:120]  # templated kernel names run to kilobytes
        count[name] += 1
        seconds[name] += e.time_range.elapsed_us() / 1e6
    return [[n, count[n], s] for n, s in seconds.most_common(TOP)]
