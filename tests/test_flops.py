"""FLOP accounting (textdiff.training.flops): hand counts, torch's own matmul counter, the budget that sets
steps, the schema's budget shares and a row's summed compute.

torch.utils.flop_counter counts the matmuls (linear layers, heads) exactly but not attention on the CPU, so
the checks against it add the attention term by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from textdiff.config import CompressorParams, LatentParams, ParamsError, TrainParams, parse_params
from textdiff.families import latent, mdlm
from textdiff.io import write_json
from textdiff.losses.gaussian import denoising_pass
from textdiff.nn import BackboneConfig, Transformer
from textdiff.sampling.autoregressive import sample_sequences
from textdiff.spaces.autoencoders.compressors import build_compressor
from textdiff.training import flops as F
from textdiff.training.loop import train
from tests.reference_rows import REPO_PARAMS, profile_params

ROOT = Path(__file__).resolve().parents[1]


def counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def tiny_ar() -> Transformer:
    """d_model 8, 1 layer, vocabulary 10, 4 positions, causal: the hand-counted model."""
    torch.manual_seed(0)
    return Transformer(BackboneConfig(d_model=8, n_layers=1, n_heads=2, max_len=5, causal=True, vocab_size=10))


def test_flops_per_token_by_hand():
    d, L, V, T = 8, 1, 10, 4
    net = tiny_ar()
    # per layer: qkv 8×24 = 192, attention output 8×8 = 64, MLP 8×32 + 32×8 = 512; the head is the tied 10×8 table
    per_layer = 3 * d * d + d * d + 2 * 4 * d * d
    assert per_layer == 768
    matmul = L * per_layer + V * d
    assert net.matmul_parameters() == matmul == 848
    attention = 4 * L * d * T  # scores q·k and the weighted sum of v: 2·d each, per query and key, T keys
    assert attention == 128
    assert net.flops_per_token(T, training=False) == 2 * matmul + attention == 1824
    assert net.flops_per_token(T) == 3 * 1824 == 5472
    assert F.sequence_forward(net, T) == T * 1824
    # torch's counter sees the matmuls (not CPU attention): forward 2·848 per position, training 3 × that
    x = torch.randint(0, V, (2, T))
    assert counted(lambda: net(x)) == 2 * T * 2 * matmul
    assert counted(lambda: net(x).sum().backward()) == 3 * 2 * T * 2 * matmul


def test_causal_lm_step_runs_the_padded_inputs_and_the_head_at_targets_only():
    d, L, V = 8, 1, 10
    net = tiny_ar()
    pad = 0
    tokens = torch.tensor([[1, 5, 6, 7, 2],    # <bos> a b c <eos>: 4 targets
                           [1, 5, 2, 0, 0]])   # <bos> a <eos> <pad> <pad>: 2 targets
    T = tokens.shape[1] - 1  # the inputs tokens[:, :-1], padded to the batch's longest
    body = 2 * 768 + 4 * L * d * T  # per input position, without the head
    head = 2 * V * d
    hand = 3 * (2 * T * body + 6 * head)
    assert F.causal_lm_step_flops(net, tokens, pad) == hand == 3 * (2 * 4 * 1664 + 6 * 160)

    def step():
        keep = tokens[:, 1:] != pad
        logits = net.head(net.hidden(tokens[:, :-1])[keep])
        torch.nn.functional.cross_entropy(logits, tokens[:, 1:][keep]).backward()

    assert counted(step) == hand - 3 * 2 * T * 4 * L * d * T  # the counter leaves out attention


def latent_model(p: float) -> latent.LatentDiffusion:
    torch.manual_seed(0)
    params = LatentParams.model_validate({
        "space": {"num_latents": 4, "latent_dim": 4},
        "model": {"d_model": 8, "n_layers": 1, "n_heads": 2, "seq_len": 4,
                  "diffusion": {"schedule": "cosine", "num_train_timesteps": 100, "parametrisation": "v", "self_condition": p}}})
    return latent.build(params)


def test_self_conditioning_adds_its_expected_no_grad_pass():
    """Trained pass 3 × forward, plus p × one forward for the estimate pass run with probability p."""
    d, T = 8, 4
    blocks = 768  # as the hand-counted model (adaLN modulation is per sequence: not counted)
    with_sc = blocks + 4 * d + 4 * d + d * 4  # input projection, self-conditioning projection, output projection
    fwd = 2 * with_sc + 4 * d * T
    assert fwd == 1856
    B = 3
    batch = torch.randn(B, T, 4)
    assert F.canvas_step_flops(latent_model(0.5), batch) == B * T * (3 * fwd + 0.5 * fwd)
    assert F.canvas_step_flops(latent_model(1.0), batch) == B * T * 4 * fwd
    without = 2 * (blocks + 4 * d + d * 4) + 4 * d * T  # trained without self-conditioning: no projection, no pass
    assert F.canvas_step_flops(latent_model(0.0), batch) == B * T * 3 * without
    # with p = 1 every step runs the estimate pass, a whole forward: torch's counter sees two forwards
    # (attention aside, and the per-sequence time embedding and adaLN modulation, which are not counted)
    model = latent_model(1.0)
    t = torch.full((B,), 0.5, dtype=torch.float64)
    per_sequence = counted(lambda: model.denoiser.blocks[0].modulation(model.denoiser.time_emb(t)))
    with torch.no_grad():
        two_passes = counted(lambda: denoising_pass(model.denoiser, model.process, model.config.diffusion,
                                                    batch, t))
    assert two_passes == 2 * (B * T * (fwd - 4 * d * T) + per_sequence)


@pytest.mark.parametrize("kind", ["planner", "ld4lg"])
def test_compressor_count_matches_the_counter(kind):
    d, N, M, layers = 8, 5, 3, 2
    compressor = build_compressor(kind, CompressorParams(d_model=d, n_layers=layers, n_heads=2), 12, M, 4)
    features, padding = torch.randn(2, N, 12), torch.zeros(2, N, dtype=torch.bool)
    attention = layers * (4 * d * N * M + (4 * d * M * M if kind == "ld4lg" else 0))
    assert counted(lambda: compressor(features, padding)) == 2 * (F.compressor_forward(compressor, N, M) - attention)


def test_cross_attention_keys_and_values_are_computed_from_the_memory():
    torch.manual_seed(0)
    net = Transformer(BackboneConfig(d_model=8, n_layers=2, n_heads=2, max_len=6, causal=True, vocab_size=10,
                                     cross_dim=4))
    tokens = torch.tensor([[1, 5, 6, 7, 2, 0], [1, 5, 2, 0, 0, 0]])
    memory = torch.randn(2, 3, 4)
    T, M = 5, 3

    def forward():
        keep = tokens[:, 1:] != 0
        net.head(net.hidden(tokens[:, :-1], memory=memory)[keep])

    attention = 2 * T * 4 * 2 * 8 * (T + M)
    assert counted(forward) == F.causal_lm_step_flops(net, tokens, 0, memory_len=M) / 3 - attention


def test_cached_generation_counts_one_position_per_call_against_the_growing_cache():
    net = tiny_ar()
    vocab = type("V", (), {"bos_id": 1, "eos_id": 2, "pad_id": 0, "mask_id": None,
                           "strip": staticmethod(lambda ids: ids)})()
    for use_cache in (True, False):
        stats: dict = {}
        with FlopCounterMode(display=False) as counter:
            sample_sequences(net, 3, vocab, generator=torch.Generator().manual_seed(0), use_cache=use_cache,
                             stats=stats)
        [(rows, calls)] = stats["batches"]
        assert rows == 3 and 1 <= calls <= 4
        positions = [1 if use_cache else k + 1 for k in range(calls)]
        attention = sum(n * 4 * 8 * (k + 1) for k, n in enumerate(positions))
        nfe, per_sample = F.generation_cost(net, stats["batches"], use_cache=use_cache)
        assert nfe == calls
        assert counter.get_total_flops() == rows * (per_sample - attention)


def test_mdlm_runs_its_head_on_the_masked_fraction_and_sampling_counts_the_calls_it_makes():
    from tests.test_discrete import tiny

    model = tiny()
    assert F.mean_masked_fraction(model.schedule) == pytest.approx(0.5, abs=1e-4)
    body, head = F.body_forward(model.denoiser, 12), F.head_forward(model.denoiser)
    assert model.flops_per_token(12) == pytest.approx(3 * (body + 0.5 * head), rel=1e-4)
    costs = {}
    for use_cache in (True, False):
        stats: dict = {}
        mdlm.generate(model, 6, 32, torch.Generator().manual_seed(3), torch.device("cpu"), use_cache, stats=stats)
        assert stats["evaluated_rows"] / stats["sequences"] == stats["nfe"]
        costs[use_cache] = stats
    assert costs[False]["evaluated_rows"] == 6 * 32 and costs[True]["evaluated_rows"] < 6 * 32
    assert costs[True]["scored_positions"] < costs[False]["scored_positions"] < 6 * 32 * 12


def test_minilm_per_token_by_hand_and_by_the_counter():
    layers, h, f = 6, 384, 1536
    assert F.minilm_flops_per_token(10) == 2 * layers * (4 * h * h + 2 * h * f) + 4 * layers * h * 10
    # sorted by length, in batches padded to their longest: [3, 4] at width 4, then [5]
    width4, width5 = F.minilm_flops_per_token(4), F.minilm_flops_per_token(5)
    assert F.minilm_flops([3, 5, 4], batch_size=2) == 2 * 4 * width4 + 5 * width5
    assert F.minilm_flops([3, 5, 4], batch_size=2, kind="embeddings") == 0.0
    from textdiff.spaces.minilm import minilm_model

    model, ids = minilm_model(), torch.randint(1000, 2000, (2, 10))
    with torch.no_grad():
        total = counted(lambda: model(input_ids=ids))
    pooler = 2 * 2 * h * h  # BERT's pooler on [CLS], once per sentence; the features do not use it
    assert total - pooler == 2 * 10 * (F.minilm_flops_per_token(10) - 4 * layers * h * 10)


def test_budget_sets_steps_and_warmup():
    cfg = TrainParams(steps=400, warmup_steps=40, budget_share=0.5)
    assert F.budgeted(cfg, None, 1e9) is cfg
    out = F.budgeted(cfg, 1e12, 1e9)
    assert (out.steps, out.warmup_steps) == (500, 40)
    short = F.budgeted(cfg, 1e11, 1e9)
    assert (short.steps, short.warmup_steps) == (50, 5)
    assert F.budgeted(TrainParams(), 1e12, 3e11).steps == 3  # null share = 1; floor
    from textdiff.errors import InputError

    with pytest.raises(InputError, match=r"budget.train_flops \(1e\+03\) .* buys no training step: one step costs 1e\+09"):
        F.budgeted(TrainParams(), 1e3, 1e9)


def test_training_under_a_budget_lands_on_it_and_its_steps_join_the_fingerprint(tmp_path):
    net = tiny_ar()
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 6, (500,), generator=g)

    def batch_fn(step: int) -> torch.Tensor:  # padded batches of varying length, deterministic in the step
        n = lengths[step % 500: step % 500 + 4]
        width = int(n.max())
        out = torch.zeros(4, width, dtype=torch.long)
        for i, k in enumerate(n.tolist()):
            out[i, :k] = torch.randint(3, 10, (k,), generator=torch.Generator().manual_seed(step * 10 + i))
        return out

    def loss_fn(model, b):
        keep = b[:, 1:] != 0
        return torch.nn.functional.cross_entropy(model.head(model.hidden(b[:, :-1])[keep]), b[:, 1:][keep])

    flops_fn = lambda b: F.causal_lm_step_flops(net, b, 0)  # noqa: E731
    per_step = F.mean_step_flops(batch_fn, flops_fn)
    budget = 30.5 * per_step
    cfg = TrainParams(steps=1000, warmup_steps=20, checkpoint_every=10, log_every=5)
    result = train(net, loss_fn, batch_fn, cfg, checkpoint_dir=None, fingerprint="x", device=torch.device("cpu"),
                   progress=False, flops_fn=flops_fn, budget_flops=budget)
    assert result.planned_steps == result.steps == 30 and result.warmup_steps == 3
    assert result.flops == sum(flops_fn(batch_fn(s)) for s in range(30))
    assert abs(result.flops / budget - 1) <= F.WITHIN_BUDGET
    # a checkpoint of one budget is not resumed under another
    part = train(tiny_ar(), loss_fn, batch_fn, cfg, checkpoint_dir=tmp_path, fingerprint="x",
                 device=torch.device("cpu"), progress=False, stop_after=10, flops_fn=flops_fn, budget_flops=budget)
    assert part.steps == 10 and part.flops > 0
    other = train(tiny_ar(), loss_fn, batch_fn, cfg, checkpoint_dir=tmp_path, fingerprint="x",
                  device=torch.device("cpu"), progress=False, stop_after=12, flops_fn=flops_fn,
                  budget_flops=2 * budget)
    assert other.resumed_from == 0
    resumed = train(tiny_ar(), loss_fn, batch_fn, cfg, checkpoint_dir=tmp_path, fingerprint="x",
                    device=torch.device("cpu"), progress=False, flops_fn=flops_fn, budget_flops=2 * budget)
    assert resumed.resumed_from == 10 and resumed.flops == sum(flops_fn(batch_fn(s)) for s in range(resumed.steps))
    with pytest.raises(ValueError, match="flops_fn"):
        train(tiny_ar(), loss_fn, batch_fn, cfg, checkpoint_dir=None, fingerprint="x", device=torch.device("cpu"),
              progress=False, budget_flops=budget)


def test_default_params_give_every_row_its_whole_budget():
    from textdiff.config import train_components

    p = REPO_PARAMS
    assert p.budget.train_flops is not None
    for row, section in p.rows.items():
        shares = [F.effective_share(c) for c in train_components(section).values()]
        assert math.isclose(sum(shares), 1.0), row
    assert profile_params("tiny").budget.train_flops is None


def _raw(budget=None, **rows) -> dict:
    sections = {"ar": {"family": "ar"}, "latent_planner": {"family": "latent"}}
    for name, section in rows.items():
        sections[name] = {**sections.get(name, {"family": name}), **section}
    return {"rows": sections, **({"budget": budget} if budget else {})}


def test_shares_must_sum_to_one_and_errors_name_the_keys():
    with pytest.raises(ParamsError, match=r"rows\.latent_planner\.space\.train\.budget_share \(0\.6\) \+ "
                                          r"rows\.latent_planner\.train\.budget_share \(0\.5\) = 1\.1"):
        parse_params(_raw(latent_planner={"space": {"train": {"budget_share": 0.6}},
                                          "train": {"budget_share": 0.5}}))
    with pytest.raises(ParamsError, match=r"rows\.latent_planner\.space\.train\.budget_share not set"):
        parse_params(_raw(budget={"train_flops": 1e12}, latent_planner={"space": {"train": {"budget_share": None}}}))
    with pytest.raises(ParamsError, match=r"rows\.ar\.train\.budget_share is 0\.5"):
        parse_params(_raw(ar={"train": {"budget_share": 0.5}}))
    with pytest.raises(ParamsError, match=r"rows\.encoder\.train\.budget_share not set"):
        parse_params(_raw(encoder={"train": {"budget_share": None}}))
    ok = parse_params(_raw(budget={"train_flops": 1e12},
                           latent_planner={"space": {"train": {"budget_share": 0.3}}, "train": {"budget_share": 0.7}}))
    assert ok.row("latent_planner").space.train.budget_share == 0.3
    both_unset = {"space": {"train": {"budget_share": None}}, "train": {"budget_share": None}}
    assert parse_params(_raw(latent_planner=both_unset)).budget.train_flops is None  # no budget: shares may stay unset


def test_row_compute_sums_a_rows_components(tmp_path):
    write_json(tmp_path / "train" / "latent_ld4lg.json",
               {"train_flops": 5.2e11, "budget_flops": 1e12, "budget_share": 0.5})
    write_json(tmp_path / "autoencoder" / "latent_ld4lg.json",
               {"train_flops": 4.9e11, "budget_flops": 1e12, "budget_share": 0.5, "frozen_encoder_flops": 3e11})
    write_json(tmp_path / "space" / "latent_ld4lg.json", {"frozen_encoder_flops": 2e11})
    row = F.row_compute(tmp_path, "latent_ld4lg")
    assert row["train_flops"] == pytest.approx(1.01e12)
    assert row["components"] == {"train": 5.2e11, "autoencoder": 4.9e11}
    assert row["frozen_encoder_flops"] == pytest.approx(5e11)
    assert row["budget_flops"] == 1e12 and row["within_budget"] is True
    write_json(tmp_path / "train" / "ar.json", {"train_flops": 7e11, "budget_flops": 1e12, "budget_share": 1.0})
    assert F.row_compute(tmp_path, "ar")["within_budget"] is False
    write_json(tmp_path / "train" / "mdlm.json", {"train_flops": 7e11, "budget_flops": None, "budget_share": None})
    assert F.row_compute(tmp_path, "mdlm")["within_budget"] is None


def test_mfu_is_against_the_peak_measured_in_the_runs_precision():
    """The training stage records the matmul peak it measured and the run's FLOP/s over it."""
    from types import SimpleNamespace

    from textdiff.training.peak import mfu_record

    cpu = torch.device("cpu")
    record = mfu_record(SimpleNamespace(flops=6e9, wall_s=2.0), cpu, "fp32")
    assert record["peak_dtype"] == "float32" and 1e8 < record["peak_flops"] < 1e14
    assert math.isclose(record["mfu_vs_cpu_peak"] * record["peak_flops"] * 2.0, 6e9)
    assert mfu_record(SimpleNamespace(flops=6e9, wall_s=2.0), cpu, "bf16")["peak_dtype"] == "bfloat16"
    assert mfu_record(SimpleNamespace(flops=6e9, wall_s=0.0), cpu, "fp32") == {"peak_flops": None,
                                                                             "mfu_vs_cpu_peak": None}
