"""Launch under ``python -m torch.distributed.run --nproc_per_node N ...`` or plainly.

What happens, honestly:
- plain launch: one process; an ``hf`` model is spread over every visible GPU by
  ``device_map="auto"`` (or runs on the CPU).
- N processes on a node with GPUs: the process group uses NCCL and the ``hf`` model is
  split across the N GPUs by transformers' tensor parallelism (``tp_plan="auto"``).  Every
  rank runs the same search (greedy decoding, same seed, same batches), because every
  forward pass needs all ranks; rank 0 alone writes the run directory and prints.
- N processes without GPUs: the process group uses gloo, but there is nothing to split a
  model over, so rank 0 runs the job alone and the other ranks leave at once (they would
  only repeat rank 0's computation on the same cores).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # "nccl" / "gloo" when a process group was started

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def tensor_parallel(self) -> bool:
        return self.backend == "nccl"

    @property
    def participates(self) -> bool:
        """Whether this rank runs the job (all ranks under tensor parallelism, else rank 0)."""
        return self.is_main or self.tensor_parallel

    def describe(self) -> str:
        if not self.distributed:
            return "single process"
        how = "tensor parallel over the node's GPUs" if self.tensor_parallel else "CPU: rank 0 runs the job, other ranks exit"
        return f"{self.world_size} processes ({self.backend}; {how})"


def init_distributed() -> DistContext:
    """Start the process group when launched by torch.distributed.run (RANK / WORLD_SIZE set)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_gpu = torch.cuda.is_available()
    backend = "nccl" if use_gpu else "gloo"
    if use_gpu:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # Ranks wait for each other during long searches: a generous collective timeout.
        dist.init_process_group(backend=backend, timeout=timedelta(hours=12))
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend)


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.backend is None:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if ctx.tensor_parallel:
            dist.barrier()
        dist.destroy_process_group()
