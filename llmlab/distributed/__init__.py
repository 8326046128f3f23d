"""Real multi-process training under DDP, ZeRO, FSDP, tensor and pipeline parallelism (chapter 7).

One module per technique, each a few short public functions that a training script would call
(the layout of picotron and torchtitan):

* :mod:`.data_parallel`   ``wrap_ddp`` (DistributedDataParallel) and ``zero1_optimizer`` (ZeRO-1);
* :mod:`.fsdp`            ``fsdp_mesh`` and ``apply_fsdp``: FSDP2's ``fully_shard`` per block, then
  the root (ZeRO-2, ZeRO-3, hybrid sharding, CPU offload);
* :mod:`.tensor_parallel` ``TP_PLAN``, ``tp_mesh`` and ``apply_tp``: Megatron-LM's column- then
  row-wise split of every Llama block;
* :mod:`.pipeline`        ``pipeline_stage``, ``pipeline_schedule`` (GPipe, 1F1B), ``pipeline_step``;
* :mod:`.fsdp_tp`         ``fsdp_tp_mesh`` and ``apply_fsdp_tp``: the 2-D (data, tensor) mesh,
  tensor parallelism within a row and FSDP across the rows.

Around them, the measured runs:

* :mod:`.measure`   what a rank counts: bytes handed to collectives, bytes held, busy time;
* :mod:`.worker`    one rank (``python -m llmlab.distributed.worker SPEC RANK``, or under torchrun):
  builds the model, applies a technique above, trains, measures, writes its results;
* :mod:`.launcher`  ``run``: checks the arguments, starts the ranks, enforces the timeout, collects
  the results; ``write_spec`` for torchrun;
* :mod:`.results`   the strategy names, ``RunResult``, ``RankResult``, ``read_results``;
* :mod:`.tables`    the tables of a run against the calculator (:mod:`llmlab.memory`) and the textbook;
* :mod:`.explorer`  the sharding and 3-D parallelism explorers' figures (their panels are in
  :mod:`llmlab.widgets`).

The recorded pipeline-bubble grid is :mod:`llmlab.records.pipeline_bubble`.
Imports go one way: the techniques import only torch and the models; the worker imports the
techniques and :mod:`.measure`; the launcher, the tables and the explorer import :mod:`.results`
and the calculator, never the worker.
"""
