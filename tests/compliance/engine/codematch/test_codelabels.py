"""Training / inference / other labels on copied code, as a reviewer would read them.

The funded-team defence "only inference code, not training code, resembled a
foreign project" turns on these labels, so the tests pin the two costly
mistakes (a training loop called inference, a serving stack called training)
and the safe fallback ("other" when evidence is weak), at the true path and
at a renamed one (vendors rename files).

CI has no torch, transformers or vllm, so training and serving code here are
short excerpts written for these tests in the style of those projects (not
copied); the inference client from huggingface_hub, which CI installs, is a
real file.
"""

import importlib.util
import os

import pytest

from compliance.engine.codematch import code_label
from compliance.engine.codematch.labels import code_label_explain

RENAMED = "src/module_17.py"

TRAINING_LOOP = '''
from torch.optim import AdamW
from transformers import get_scheduler


def fit(model, train_dataloader, num_train_epochs, learning_rate):
    optimizer = AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=100,
                                 num_training_steps=num_train_epochs * len(train_dataloader))
    model.train()
    global_step = 0
    for epoch in range(num_train_epochs):
        for batch in train_dataloader:
            outputs = model(**batch)
            outputs.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            global_step += 1
    return global_step
'''

PREFERENCE_TRAINER = '''
class PairwiseTrainer(Trainer):
    """Preference optimisation against a frozen reference model."""

    def compute_loss(self, model, inputs, return_outputs=False):
        chosen_logps = self.sequence_logps(model, inputs["chosen_input_ids"])
        rejected_logps = self.sequence_logps(model, inputs["rejected_input_ids"])
        with torch.no_grad():
            ref_chosen = self.sequence_logps(self.ref_model, inputs["chosen_input_ids"])
            ref_rejected = self.sequence_logps(self.ref_model, inputs["rejected_input_ids"])
        margin = (chosen_logps - ref_chosen) - (rejected_logps - ref_rejected)
        loss = -F.logsigmoid(self.beta * margin).mean()
        rewards = self.beta * margin.detach()
        self.store_metrics({"rewards/margin": rewards.mean()})
        return (loss, rewards) if return_outputs else loss

    def rollout(self, prompts):
        # sampling from the policy during training does not make this serving code
        return self.model.generate(prompts, max_new_tokens=self.args.max_completion_length)
'''

PAGED_ATTENTION_RUNNER = '''
class DecoderLayerRunner:
    def forward(self, positions, hidden_states, kv_cache, attn_metadata):
        qkv, _ = self.qkv_proj(hidden_states)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q, k = self.rotary_emb(positions, q, k)
        key_cache, value_cache = kv_cache
        write_to_paged_cache(k, v, key_cache, value_cache, attn_metadata.slot_mapping)
        if attn_metadata.num_prefills:
            out = self.prefill_attention(q, k, v, attn_metadata)
        else:
            out = paged_attention(q, key_cache, value_cache, attn_metadata.block_tables,
                                  attn_metadata.seq_lens, self.scale)
        return self.o_proj(out)

    def execute_model(self, scheduler_output, sampling_params):
        for req in scheduler_output.scheduled_requests:
            self.input_batch.add_request(req.request_id, req.prompt_token_ids, sampling_params)
        return self.sampler(self.compute_logits(), self.input_batch.sampling_metadata)
'''

COMPLETIONS_SERVER = '''
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()


@app.post("/v1/completions")
async def create_completion(request: CompletionRequest):
    params = SamplingParams(temperature=request.temperature, top_p=request.top_p,
                            max_tokens=request.max_tokens, stop=request.stop)
    request_id = new_request_id()
    results = engine.generate(request.prompt, params, request_id)
    if request.stream:
        return StreamingResponse(stream_chunks(results), media_type="text/event-stream")
    return await collect(results)
'''

# Shared model definition: both sides run it, so neither label applies, even though it
# mentions a cache and computes a loss when labels are given (as model files do).
MODEL_DEFINITION = '''
class TinyDecoderModel(PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=None, labels=None):
        hidden_states = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=attention_mask, past_key_values=past_key_values)
        logits = self.lm_head(self.norm(hidden_states))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits, past_key_values=past_key_values)
'''

# A custom autograd op defines backward(): model code, not a training step.
AUTOGRAD_FUNCTION = '''
class ScaledSiLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return F.silu(x) * scale

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(x)
        grad = grad_output * ctx.scale * sig * (1 + x * (1 - sig))
        return grad, None
'''


@pytest.mark.parametrize("path", ["myproject/training/loop.py", RENAMED])
def test_training_loop_is_training_even_renamed(path):
    assert code_label(path=path, text=TRAINING_LOOP) == "training"


@pytest.mark.parametrize("path", ["myproject/trainer/pairwise_trainer.py", RENAMED])
def test_preference_trainer_that_samples_rollouts_stays_training(path):
    # a generate() call inside a trainer must not turn it into "inference" (the defence's argument)
    assert code_label(path=path, text=PREFERENCE_TRAINER) == "training"


@pytest.mark.parametrize("path", ["engine/worker/model_runner.py", RENAMED])
def test_paged_attention_runner_is_inference_even_renamed(path):
    assert code_label(path=path, text=PAGED_ATTENTION_RUNNER) == "inference"


@pytest.mark.parametrize("path", ["server/api_server.py", RENAMED])
def test_completions_server_is_inference(path):
    assert code_label(path=path, text=COMPLETIONS_SERVER) == "inference"


@pytest.mark.parametrize("path", ["mymodel/modeling_tiny.py", RENAMED])
def test_shared_model_definition_is_other(path):
    assert code_label(path=path, text=MODEL_DEFINITION) == "other"


def test_autograd_backward_definition_is_not_a_training_step():
    assert code_label(path=RENAMED, text=AUTOGRAD_FUNCTION) == "other"


def test_one_weak_cue_is_not_enough():
    # a single mention of an optimizer in a utility: evidence too weak to call it training
    text = "def describe(optimizer):\n    return type(optimizer).__name__\n"
    assert code_label(path=RENAMED, text=text) == "other"


def test_path_of_a_serving_engine_decides_when_content_is_weak():
    # model code inside a serving engine is its serving implementation: the engine's folder plus one
    # weak cue (quant_config) says inference; the same text renamed has too little evidence
    text = """
class TinyMLP(nn.Module):
    def __init__(self, hidden_size, intermediate_size, quant_config=None):
        super().__init__()
        self.gate_up_proj = MergedColumnLinear(hidden_size, [intermediate_size] * 2, bias=False)
        self.down_proj = RowLinear(intermediate_size, hidden_size, bias=False)
        self.act_fn = SiluAndMul()

    def forward(self, x):
        gate_up, _ = self.gate_up_proj(x)
        x, _ = self.down_proj(self.act_fn(gate_up))
        return x
"""
    assert code_label(path="vllm/model_executor/models/tiny.py", text=text) == "inference"
    assert code_label(path=RENAMED, text=text) == "other"


def test_explain_names_the_cues_that_fired():
    explained = code_label_explain(path=RENAMED, text=TRAINING_LOOP)
    assert explained["label"] == "training"
    assert "backward() x1" in explained["training_evidence"]
    assert any(entry.startswith("training data") for entry in explained["training_evidence"])
    assert explained["training"] > explained["inference"]
    # a renamed path gives no path evidence
    assert not any(entry.startswith("path:") for entry in explained["training_evidence"])


def _installed(package: str, relative: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.skip(f"{package} is not installed: .venv/bin/pip install -r requirements-dev.txt "
                    "(it comes with requirements.txt)")
    return os.path.join(list(spec.submodule_search_locations)[0], relative)


def test_real_inference_client_from_huggingface_hub_is_inference_when_renamed():
    with open(_installed("huggingface_hub", "inference/_client.py"), encoding="utf-8") as handle:
        text = handle.read()
    assert code_label(path="huggingface_hub/inference/_client.py", text=text) == "inference"
    assert code_label(path=RENAMED, text=text) == "inference"


@pytest.mark.parametrize("package, relative", [("django", "db/models/query.py"), ("gguf", "gguf_reader.py")])
def test_real_files_of_unrelated_code_are_other(package, relative):
    with open(_installed(package, relative), encoding="utf-8") as handle:
        text = handle.read()
    assert code_label(path=f"{package}/{relative}", text=text) == "other"
    assert code_label(path=RENAMED, text=text) == "other"


def test_a_match_takes_the_origin_files_label_when_the_vendor_renamed_it(tmp_path):
    """The origin's path inside a known project is trusted over the vendor's path: a generic-looking
    excerpt of a trainer stays training when the vendor files it under `serving/generate.py`."""
    from compliance.engine.codematch.index import code_index_add
    from compliance.engine.codematch.scan import code_scan

    generic = "\n".join(
        f"def step_{i}(state, batch, cfg):\n"
        f"    total = sum(x * cfg.scale_{i} for x in batch)\n"
        f"    state.history.append((total, len(batch), cfg.name_{i}))\n"
        f"    return state.merge(total, weight=cfg.weight_{i}, tag='s{i}')\n"
        for i in range(12))
    code_index_add(index_dir=str(tmp_path / "index"), name="trainlib", version="1", license_expression="MIT",
                   source=[("trainlib/trainer/loop.py", (TRAINING_LOOP + "\n\n" + generic).encode())])
    vendor = "import os\n\n" + generic
    disguised = "serving/generate.py"
    result = code_scan(source=[(disguised, vendor.encode())], index_dir=str(tmp_path / "index"))
    assert result.matches, "the pasted block is found"
    assert code_label(path=disguised, text=generic) == "inference", "the vendor's path alone says inference"
    assert {m.label for m in result.matches} == {"training"}
