"""Label code as training, inference or other, by path and content.

A programme cares which side of the model a copied file sits on: copying a
serving stack (generate loops, KV cache) says little about how the model was
made; copying a training loop or optimiser set-up is evidence about the
training the vendor claims. Path words weigh 3, content hits 1 each; ties
and weak evidence (< 2 points) are "other".
"""

from __future__ import annotations

import re

_TRAIN_PATH = re.compile(r"(?:^|[/_.-])(train|trainer|training|pretrain|finetune|fine_tune|sft|dpo|ppo|rlhf|grpo|optim|optimizer|optimization|loss|losses|lr_scheduler|scheduler|distill|deepspeed|fsdp)(?:[/_.-]|s?\.py$|$)", re.IGNORECASE)
_INFER_PATH = re.compile(r"(?:^|[/_.-])(inference|infer|generate|generation|serve|server|serving|engine|sampling|sampler|decode|decoding|kv_cache|cache_utils|cache|api_server|openai|streamer|speculative|beam_search)(?:[/_.-]|s?\.py$|$)", re.IGNORECASE)

_TRAIN_CONTENT = re.compile(
    r"\.backward\(|optimizer\.step\(|\.zero_grad\(|lr_scheduler|clip_grad_norm|GradScaler|accelerator\.backward|"
    r"train_dataloader|for\s+\w+\s+in\s+range\(\s*\w*epochs|num_train_epochs|gradient_accumulation|"
    r"torch\.optim\.|AdamW\(|loss_fct\s*\(|\.train\(\)"
)
_INFER_CONTENT = re.compile(
    r"\.generate\(|past_key_values|kv_cache|KVCache|logits_processor|top_p|top_k|temperature|beam|"
    r"torch\.no_grad\(|inference_mode|sampling_params|SamplingParams|@app\.(?:get|post)|uvicorn|"
    r"max_new_tokens|stopping_criteria|prefill|decode_step|paged_attention|block_table"
)


def code_label(*, path: str, text: str) -> str:
    """'training', 'inference' or 'other' for a file path and a piece of its text."""
    train = 3 * len(_TRAIN_PATH.findall(path)) + len(_TRAIN_CONTENT.findall(text))
    infer = 3 * len(_INFER_PATH.findall(path)) + len(_INFER_CONTENT.findall(text))
    if max(train, infer) < 2 or train == infer:
        return "other"
    return "training" if train > infer else "inference"
