"""Label code as training, inference or other, by path and content.

A programme cares which side of the model a copied file sits on: copying a
serving stack (generate loops, KV cache, request schedulers) says little
about how the model was made; copying a training loop, trainer or optimiser
set-up is evidence about the training the vendor claims. One funded team's
defence was exactly that only inference code resembled a foreign project, so
a wrong label costs more than no label: when evidence is weak or points both
ways the answer is "other".

Evidence, each cue with a weight (bench/codelabels.py measures them on
11,716 real files of seven ML projects; cues were chosen on transformers,
trl and vllm and checked on the held-out sglang, megatron-core, ms-swift and
modelscope, see BENCHMARKS.md "Training / inference labels"):

- path words (weight 3 each, a word counted once): folder and file names
  such as `trainer`, `optimizer`, `loss` or `serving`, `kv_cache`,
  `entrypoints`; a serving engine's folders (`vllm/`, `sglang/srt/`,
  `model_executor/`) weigh 3 once for the whole path, since model code there
  is the serving implementation. Vendors rename paths, so content must carry the label
  alone when it can; paths of a known reference project are reliable.
- content cues (weight 1 or 2, each cue counted at most twice so one
  repeated name cannot decide): imports (`torch.optim`, `from vllm ...`),
  calls (`loss.backward()`, `optimizer.step()`), and names that only one side
  uses (`TrainingArguments`, `train_dataloader`, `reward_funcs`;
  `SamplingParams`, `forward_batch`, `attn_metadata`, `max_new_tokens`).
  Names both sides use (`past_key_values`, `loss`, `torch.no_grad`) are left
  out: every transformers model file has them.

A side wins when it has at least MIN_SCORE points and beats the other side by
MARGIN points; otherwise the answer is "other".
"""

from __future__ import annotations

import re

# Tuned on transformers + trl + vllm (bench/codelabels.py): with 4 points a
# single strong content cue (2) is not enough, two are; a margin of 3 keeps
# regions that mix a generate() call into a trainer (GRPO rollouts) from
# flipping to inference.
MIN_SCORE = 4
MARGIN = 3
PATH_WEIGHT = 3
PROJECT_WEIGHT = 3
IMPORT_WEIGHT = 2
CUE_CAP = 2  # a cue counts at most this many times

_WORD = r"(?:^|[/_.-])({words})(?=[/_.-]|s?\.py$|$)"

_TRAIN_PATH = re.compile(_WORD.format(words="|".join((
    "train", "trainer", "trainers", "training", "pretrain", "finetune", "fine_tune", "sft", "dpo", "ppo", "grpo",
    "rlhf", "kto", "orpo", "rloo", "gkd", "optim", "optimizer", "optimizers", "optimization", "lr_scheduler",
    "lrscheduler", "loss", "losses", "loss_scale", "distill", "distillation", "deepspeed", "fsdp", "collator",
    "data_collator", "reward", "rewards", "rl_core", "trl", "sequence_parallel", "pipeline_parallel",
))), re.IGNORECASE)
_INFER_PATH = re.compile(_WORD.format(words="|".join((
    "inference", "infer", "infer_engine", "generate", "generation", "serve", "server", "serving", "entrypoints",
    "api_server", "openai", "sampling", "sampler", "sampling_params", "decode", "decoding", "kv_cache", "cache_utils",
    "mem_cache", "kv_transfer", "kv_offload", "spec_decode", "speculative", "beam_search",
    "streamer", "detokenizer", "tokenizer_manager", "pipelines",
))), re.IGNORECASE)
# Folders of a serving engine (vllm, sglang's srt runtime, ...): counted once, because a path
# like sglang/srt/... is one piece of evidence, not two; a serving engine's own utilities and
# configs stay "other" unless their content adds evidence.
_PROJECT_PATH = re.compile(r"(?:^|/)(vllm|sglang|srt|model_executor|tensorrt_llm|lmdeploy)(?=/)", re.IGNORECASE)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Imports of a serving engine, at the start of a line.
_SERVING_IMPORT = re.compile(r"^[ \t]*(?:from|import)[ \t]+(?:vllm|sglang|tensorrt_llm|lmdeploy)\b", re.MULTILINE)
# Calls, not names: `loss.backward()` runs a training step, while `def backward(ctx, grad)` in an
# autograd Function is model code (transformers' integrations/moe.py, megatron's tensor_parallel),
# and the bare name `train` is mostly a dataset split ("train"). Counting the names made 39 of the
# tune set's other-called-training errors (backward) and 18 more (train).
_BACKWARD_CALL = re.compile(r"\.backward\(")
_TRAIN_CALL = re.compile(r"\.train\(\s*\)")


def _cue(name: str, weight: int, words: str = "", pattern: str = "") -> tuple:
    """A cue fires on identifiers: exact names (`words`) or names matching `pattern` in full.

    Identifiers are counted once per text (one tokenizer pass, ~20 ms for a 240 KB file) instead of
    running a regex per cue over the whole text, which cost ~0.6 s on transformers' trainer.py.
    """
    return name, weight, frozenset(words.split()), re.compile(pattern) if pattern else None


# (name shown to a reviewer, weight, identifiers)
_TRAIN_CUES = [
    _cue("optimizer step", 2, "zero_grad optim"),
    _cue("optimizer", 1, "optimizer optimizers Optimizer param_groups AdamW"),
    _cue("lr schedule", 1, "lr_scheduler learning_rate warmup_steps warmup_ratio weight_decay get_scheduler",
         r"\w*LRScheduler"),
    _cue("grad clipping / scaling", 2, "clip_grad_norm_ clip_grad_norm GradScaler grad_norm loss_scale main_grad"),
    _cue("Trainer", 2, "TrainingArguments training_args TrainerCallback TrainerState TrainerControl",
         r"\w+Trainer"),
    _cue("trainer hooks", 2, "compute_loss training_step on_step_end on_train_begin on_train_end on_epoch_end"),
    _cue("training data", 2, "train_dataloader train_dataset data_collator DataCollator collator "
                             "per_device_train_batch_size get_train_dataloader"),
    _cue("epochs / steps", 1, "num_train_epochs epoch epochs global_step gradient_accumulation_steps "
                              "micro_batch_size microbatch num_microbatches"),
    _cue("distributed training", 1, "DistributedDataParallel no_sync forward_backward zero_stage deepspeed "
                                    "DeepSpeed finalize_model_grads"),
    _cue("gradients", 1, "requires_grad_ gradient_checkpointing gradient_checkpointing_enable"),
    _cue("RL / preference", 2, "reward_funcs reward_model reward rewards advantages advantage ref_model "
                               "completion_mask logps", r"(?:chosen|rejected)_\w+"),
    _cue("distillation", 1, "student teacher"),
    _cue("PEFT set-up", 1, "peft_config get_peft_model prepare_model_for_kbit_training"),
    _cue("experiment loggers", 1, "wandb tensorboard SummaryWriter swanlab"),
]
_INFER_CUES = [
    _cue("sampling params", 2, "SamplingParams sampling_params max_new_tokens max_tokens"),
    _cue("engine config", 2, "vllm_config VllmConfig server_args ServerArgs model_runner ModelRunner"),
    _cue("forward batch", 2, "forward_batch ForwardBatch forward_mode attn_metadata AttentionMetadata "
                             "ForwardContext get_forward_context"),
    _cue("paged KV cache", 2, "block_table block_tables slot_mapping req_to_token token_to_kv_pool kv_cache "
                              "kv_caches KVCache paged_attention", r"\w*(?:radix|prefix_cach)\w*"),
    _cue("prefill / decode", 1, "prefill is_decode num_decodes num_prefills is_extend",
         r"(?:prefill|decode|extend)_\w+"),
    _cue("requests", 1, "request_id Request request req reqs num_seqs max_num_seqs "
                        "max_num_batched_tokens"),
    _cue("API server", 1, "APIRouter FastAPI uvicorn StreamingResponse stream", r"ChatCompletion\w*"),
    _cue("generation", 1, "generate streamer logits_processor LogitsProcessor stopping_criteria "
                          "eos_token_id detokenize detokenizer", r"beam_\w+"),
    _cue("speculative decoding", 1, "speculative spec_decode num_speculative_tokens", r"draft_\w+"),
    _cue("CUDA graphs", 1, "cuda_graph CUDAGraph cudagraph", r"\w*cuda_?graph\w*"),
    _cue("serving weight loading", 1, "weight_loader load_weights quant_config"),
]


def _side(*, path: str, idents: dict, path_re: re.Pattern, cues: list, extra: list) -> tuple[int, list[str]]:
    """Points for one side and the evidence a reviewer can check (path words, cues with hit counts)."""
    score, evidence = 0, []
    for word in sorted({m.lower() for m in path_re.findall(path)}):
        score += PATH_WEIGHT
        evidence.append(f"path:{word}")
    for name, weight, words, pattern in cues:
        hits = sum(idents.get(word, 0) for word in words)
        if pattern is not None:
            hits += sum(count for ident, count in idents.items() if pattern.fullmatch(ident))
        hits = min(CUE_CAP, hits)
        if hits:
            score += weight * hits
            evidence.append(f"{name} x{hits}")
    for name, weight, hits in extra:
        hits = min(CUE_CAP, hits)
        if hits:
            score += weight * hits
            evidence.append(f"{name} x{hits}")
    return score, evidence


def code_label_explain(*, path: str, text: str) -> dict:
    """The label with its evidence: scores per side and the cues that fired, for a reviewer."""
    idents: dict[str, int] = {}
    for ident in _IDENT.findall(text):
        idents[ident] = idents.get(ident, 0) + 1
    train, train_evidence = _side(path=path, idents=idents, path_re=_TRAIN_PATH, cues=_TRAIN_CUES,
                                  extra=[("backward()", 2, len(_BACKWARD_CALL.findall(text))),
                                         ("train mode", 1, len(_TRAIN_CALL.findall(text)))])
    project = sorted({m.lower() for m in _PROJECT_PATH.findall(path)})
    infer, infer_evidence = _side(path=path, idents=idents, path_re=_INFER_PATH, cues=_INFER_CUES,
                                  extra=[("serving engine imports", IMPORT_WEIGHT, len(_SERVING_IMPORT.findall(text))),
                                         (f"project:{'/'.join(project)}", PROJECT_WEIGHT, 1 if project else 0)])
    if train >= MIN_SCORE and train - infer >= MARGIN:
        label = "training"
    elif infer >= MIN_SCORE and infer - train >= MARGIN:
        label = "inference"
    else:
        label = "other"
    return {"label": label, "training": train, "inference": infer,
            "training_evidence": train_evidence, "inference_evidence": infer_evidence}


def code_label(*, path: str, text: str) -> str:
    """'training', 'inference' or 'other' for a file path and a piece of its text."""
    return code_label_explain(path=path, text=text)["label"]
