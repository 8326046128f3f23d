"""Checks for the exercise notebooks (``exercises/``): one function per exercise.

A student writes a function (or an answer) in an exercise notebook and passes it to
its check, for example ``check_top_p(top_p_filter)`` (chapter 5). Every check

- runs the student's code on the example shown in the notebook *and* on hidden
  edge cases (ties, batches, empty or exact-fit inputs, other shapes and dtypes),
- compares with the reference in ``llmlab`` (or in torch / Hugging Face, which that
  reference is itself tested against), and
- prints what passed and, for what failed, the input, what was expected in words and
  what went wrong (wrong shape or dtype, off by a constant factor, not normalised,
  too many or too few tokens kept...), without printing the reference's answer.

It returns ``True`` when every case passes and ``False`` otherwise, so tests and
autograders can use it. Quiz answers are stored only as salted hashes.

Layout: every check is importable from here (``from llmlab import exercises as ex;
ex.check_top_p(...)``), but each chapter's checks, quiz key and private helpers live in
that chapter's module, ``chNN_name.py``, named after its exercise source
``exercises/src/NN_name.py``; the machinery they share (running the cases, the feedback
on numbers and tensors, the quiz hashes, a tiny GPT-2) is in ``_harness.py``. A new
check goes in its chapter's module and is imported and listed in ``__all__`` here.

Checks by chapter:

- 1 (lifecycle, :mod:`.ch01_lifecycle`): :func:`check_fit_to_context`, :func:`check_greedy_completion`,
  :func:`check_model_card_numbers`, :func:`check_lifecycle_quiz`
- 2 (transformers, :mod:`.ch02_transformers`): :func:`check_causal_mask`, :func:`check_attention`,
  :func:`check_positional_encoding`, :func:`check_families_quiz`
- 3 (pre-training, :mod:`.ch03_pretraining`): :func:`check_causal_lm_loss`, :func:`check_perplexity`,
  :func:`check_exact_duplicates`, :func:`check_shingles_jaccard`
- 4 (prompting, :mod:`.ch04_prompting`): :func:`check_few_shot_prompt`, :func:`check_max_shots`,
  :func:`check_label_log_prob`, :func:`check_wilson_interval`, :func:`check_icl_quiz`,
  :func:`check_flip_and_calibrate` (which runs :func:`check_flip_labels` and :func:`check_calibrate`)
- 5 (sampling, :mod:`.ch05_sampling`): :func:`check_temperature`, :func:`check_top_k`, :func:`check_top_p`,
  :func:`check_entropy`, :func:`check_sampling_quiz`
- 6 (memory and quantization, :mod:`.ch06_memory_quantization`): :func:`check_model_states`,
  :func:`check_gpt_param_count`, :func:`check_absmax_int8`, :func:`check_zeropoint_int8`,
  :func:`check_formats_quiz`
- 7 (multi-GPU, :mod:`.ch07_multi_gpu`): :func:`check_max_params`, :func:`check_fsdp_shard`,
  :func:`check_hybrid_states`, :func:`check_comm_bytes`, :func:`check_tp_mlp_bytes`,
  :func:`check_pipeline_bubble`, :func:`check_fsdp_quiz`
- 8 (scaling laws, :mod:`.ch08_scaling_laws`): :func:`check_training_compute`, :func:`check_compute_optimal`,
  :func:`check_power_law_fit`, :func:`check_training_days`, :func:`check_scaling_quiz`
- 9 (domain adaptation, :mod:`.ch09_domain_adaptation`): :func:`check_fertility`, :func:`check_token_share`,
  :func:`check_docs_for_share`, :func:`check_domain_quiz`
- 10 (prompt tuning, :mod:`.ch10_prompt_tuning`): :func:`check_soft_prompt_params`, :func:`check_prepend`,
  :func:`check_answer_loss`, :func:`check_encoder_params`, :func:`check_place_slots`, :func:`check_peft_quiz`
- 11 (evaluation, :mod:`.ch11_evaluation`): :func:`check_option_logprob`, :func:`check_per_char_logprob`,
  :func:`check_items_needed`, :func:`check_contaminated`, :func:`check_evaluation_quiz`
- 12 (fine-tuning, :mod:`.ch12_finetuning`): :func:`check_lora_trainable`, :func:`check_merge`,
  :func:`check_nf4_codes`, :func:`check_smallest_rank`, :func:`check_finetuning_quiz`
- 13 (alignment, :mod:`.ch13_alignment`): :func:`check_dpo`, :func:`check_advantages`,
  :func:`check_best_of_n`, :func:`check_bradley_terry`, :func:`check_alignment_quiz`
- 14 (serving, :mod:`.ch14_serving`): :func:`check_kv_bytes`, :func:`check_speculative_speedup`,
  :func:`check_block_table`, :func:`check_prompt_lookup`, :func:`check_serving_quiz`
- 15 (augmentation, :mod:`.ch15_augmentation`): :func:`check_cosine_search`, :func:`check_recall_at_k`,
  :func:`check_tool_call`, :func:`check_supported`, :func:`check_augmentation_quiz`

``__all__`` lists the checks the notebooks call (``tests/test_exercises.py`` checks that every one
of them is used); ``check_flip_labels`` and ``check_calibrate`` are importable too.
"""

from __future__ import annotations

from .ch01_lifecycle import (
    check_fit_to_context,
    check_greedy_completion,
    check_lifecycle_quiz,
    check_model_card_numbers,
)
from .ch02_transformers import check_attention, check_causal_mask, check_families_quiz, check_positional_encoding
from .ch03_pretraining import check_causal_lm_loss, check_exact_duplicates, check_perplexity, check_shingles_jaccard
from .ch04_prompting import check_calibrate as check_calibrate
from .ch04_prompting import (
    check_few_shot_prompt,
    check_flip_and_calibrate,
    check_icl_quiz,
    check_label_log_prob,
    check_max_shots,
    check_wilson_interval,
)
from .ch04_prompting import check_flip_labels as check_flip_labels
from .ch05_sampling import check_entropy, check_sampling_quiz, check_temperature, check_top_k, check_top_p
from .ch06_memory_quantization import (
    check_absmax_int8,
    check_formats_quiz,
    check_gpt_param_count,
    check_model_states,
    check_zeropoint_int8,
)
from .ch07_multi_gpu import (
    check_comm_bytes,
    check_fsdp_quiz,
    check_fsdp_shard,
    check_hybrid_states,
    check_max_params,
    check_pipeline_bubble,
    check_tp_mlp_bytes,
)
from .ch08_scaling_laws import (
    check_compute_optimal,
    check_power_law_fit,
    check_scaling_quiz,
    check_training_compute,
    check_training_days,
)
from .ch09_domain_adaptation import check_docs_for_share, check_domain_quiz, check_fertility, check_token_share
from .ch10_prompt_tuning import (
    check_answer_loss,
    check_encoder_params,
    check_peft_quiz,
    check_place_slots,
    check_prepend,
    check_soft_prompt_params,
)
from .ch11_evaluation import (
    check_contaminated,
    check_evaluation_quiz,
    check_items_needed,
    check_option_logprob,
    check_per_char_logprob,
)
from .ch12_finetuning import (
    check_finetuning_quiz,
    check_lora_trainable,
    check_merge,
    check_nf4_codes,
    check_smallest_rank,
)
from .ch13_alignment import (
    check_advantages,
    check_alignment_quiz,
    check_best_of_n,
    check_bradley_terry,
    check_dpo,
)
from .ch14_serving import (
    check_block_table,
    check_kv_bytes,
    check_prompt_lookup,
    check_serving_quiz,
    check_speculative_speedup,
)
from .ch15_augmentation import (
    check_augmentation_quiz,
    check_cosine_search,
    check_recall_at_k,
    check_supported,
    check_tool_call,
)

__all__ = [
    "check_fit_to_context", "check_greedy_completion", "check_model_card_numbers", "check_lifecycle_quiz",
    "check_causal_mask", "check_attention", "check_positional_encoding", "check_families_quiz",
    "check_causal_lm_loss", "check_perplexity", "check_exact_duplicates", "check_shingles_jaccard",
    "check_temperature", "check_top_k", "check_top_p", "check_entropy", "check_sampling_quiz",
    "check_model_states", "check_gpt_param_count", "check_absmax_int8", "check_zeropoint_int8",
    "check_formats_quiz",
    "check_max_params", "check_fsdp_shard", "check_hybrid_states", "check_comm_bytes", "check_tp_mlp_bytes",
    "check_pipeline_bubble", "check_fsdp_quiz",
    "check_few_shot_prompt", "check_max_shots", "check_label_log_prob", "check_wilson_interval", "check_icl_quiz",
    "check_flip_and_calibrate",
    "check_training_compute", "check_compute_optimal", "check_power_law_fit", "check_training_days",
    "check_scaling_quiz",
    "check_fertility", "check_token_share", "check_docs_for_share", "check_domain_quiz",
    "check_soft_prompt_params", "check_prepend", "check_answer_loss", "check_encoder_params", "check_place_slots",
    "check_peft_quiz",
    "check_option_logprob", "check_per_char_logprob", "check_items_needed", "check_contaminated",
    "check_evaluation_quiz",
    "check_lora_trainable", "check_merge", "check_nf4_codes", "check_smallest_rank", "check_finetuning_quiz",
    "check_dpo", "check_advantages", "check_best_of_n", "check_bradley_terry", "check_alignment_quiz",
    "check_kv_bytes", "check_speculative_speedup", "check_block_table", "check_prompt_lookup", "check_serving_quiz",
    "check_cosine_search", "check_recall_at_k", "check_tool_call", "check_supported", "check_augmentation_quiz",
]
