"""ML-VAE (Bouchacourt et al. 2018): evidence accumulation against the closed form, the group ELBO's terms
against explicit loops, gradients into every encoder head, the sampling options and the swap grid."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from tests.models.conftest import Sprites64
from vaeray.data.base import Batch
from vaeray.data.groups import FactorGroups
from vaeray.errors import ConfigError
from vaeray.models.multilevel import MLVAE, accumulate_evidence
from vaeray.registry import DATASETS, MODELS, load_all
from vaeray.train import fit

load_all()


def closed_form(mu: torch.Tensor, logvar: torch.Tensor, members: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of Gaussians by the textbook formula: Λ = Σ 1/σ², μ = Σ (μ_i/σ_i²) / Λ."""
    prec = 1.0 / torch.exp(logvar[members])
    total = prec.sum(0)
    return (prec * mu[members]).sum(0) / total, 1.0 / total


def random_groups(n: int, gen: torch.Generator) -> torch.Tensor:
    """Ids in [0, n) with gaps (unused slots) and groups of varying size, in shuffled positions."""
    return torch.randint(0, n // 2, (n,), generator=gen) * 2


def test_product_matches_the_closed_form_per_group():
    gen = torch.Generator().manual_seed(1)
    mu = torch.randn(12, 5, generator=gen, dtype=torch.float64) * 3
    logvar = torch.randn(12, 5, generator=gen, dtype=torch.float64) * 2
    group = random_groups(12, gen)
    mean, log_v, counts = accumulate_evidence(mu, logvar, group)
    for g in range(12):
        members = (group == g).nonzero().flatten().tolist()
        assert counts[g] == len(members)
        if members:
            m, v = closed_form(mu, logvar, members)
            torch.testing.assert_close(mean[g], m)
            torch.testing.assert_close(torch.exp(log_v[g]), v)
        else:
            assert torch.all(mean[g] == 0) and torch.all(log_v[g] == 0)


def test_product_is_stable_in_log_space():
    # precision e^90: a naive Σ 1/σ² in float32 overflows (its max is 3.4e38 ≈ e^88.7)
    mu = torch.tensor([[1.0], [3.0], [-2.0]])
    logvar = torch.tensor([[-90.0], [-90.0], [60.0]])
    mean, log_v, _ = accumulate_evidence(mu, logvar, torch.tensor([0, 0, 0]))
    assert torch.isfinite(mean).all() and torch.isfinite(log_v).all()
    torch.testing.assert_close(mean[0], torch.tensor([2.0]))
    torch.testing.assert_close(log_v[0], torch.tensor([-90.0 - math.log(2.0)]))


def test_groups_of_one_reduce_to_the_single_posterior():
    gen = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(7, 4, generator=gen), torch.randn(7, 4, generator=gen)
    mean, log_v, counts = accumulate_evidence(mu, logvar, torch.arange(7))
    torch.testing.assert_close(mean, mu)
    torch.testing.assert_close(log_v, logvar)
    assert torch.all(counts == 1)


def test_product_is_invariant_to_member_order():
    gen = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(10, 3, generator=gen), torch.randn(10, 3, generator=gen)
    group = random_groups(10, gen)
    mean, log_v, _ = accumulate_evidence(mu, logvar, group)
    perm = torch.randperm(10, generator=gen)
    mean_p, log_v_p, _ = accumulate_evidence(mu[perm], logvar[perm], group[perm])
    # every member sees the same group posterior whatever the order of the batch
    torch.testing.assert_close(mean_p[group[perm]], mean[group][perm])
    torch.testing.assert_close(log_v_p[group[perm]], log_v[group][perm])


def test_average_mode_is_disentanglement_libs_pair_rule():
    gen = torch.Generator().manual_seed(4)
    mu = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    logvar = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    mean, log_v, _ = accumulate_evidence(mu, logvar, torch.tensor([0, 0]), mode="dlib_average")
    v1, v2 = torch.exp(logvar)
    new_var = 2 * v1 * v2 / (v1 + v2)  # weak_vae.py: new_var, new_mean
    torch.testing.assert_close(torch.exp(log_v[0]), new_var)
    torch.testing.assert_close(mean[0], (mu[0] / v1 + mu[1] / v2) * new_var * 0.5)


def test_gradients_reach_every_member_and_match_finite_differences():
    gen = torch.Generator().manual_seed(5)
    mu = torch.randn(6, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(6, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    group = torch.tensor([0, 0, 0, 3, 3, 5])
    mean, log_v, _ = accumulate_evidence(mu, logvar, group)
    g_mu, g_lv = torch.autograd.grad((mean**2).sum() + log_v.sum(), (mu, logvar))
    assert (g_mu != 0).all() and (g_lv != 0).all()
    assert torch.autograd.gradcheck(lambda m, v: accumulate_evidence(m, v, group)[:2], (mu, logvar))


def build(net: str = "mlp", **over) -> MLVAE:
    spec = {"name": "ml_vae", "style_dim": 3, "content_dim": 4, "net": net, "hidden": [16], **over}
    return MODELS.build(spec, "model", observation_shape=(1, 32, 32), dataset_size=100)


def grouped_batch(n: int = 12) -> Batch:
    gen = torch.Generator().manual_seed(0)
    group = torch.tensor([0, 0, 0, 0, 4, 4, 4, 7, 8, 8, 8, 8])[:n]  # groups of 4, 3, 1, 4 in slots 0, 4, 7, 8
    return Batch(x=torch.rand(n, 1, 32, 32, generator=gen), group=group)


def last_linear(model: MLVAE) -> torch.nn.Linear:
    return [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]


@pytest.mark.parametrize("net", ["mlp", "burgess"])
@pytest.mark.parametrize("content_sample", ["member", "group"])
def test_every_encoder_head_gets_a_gradient_after_one_step(net, content_sample):
    """The seed repository's class heads never moved (section 3.4 of the research notes); ours must."""
    torch.manual_seed(0)
    model = build(net, content_sample=content_sample)
    head = last_linear(model)
    before = head.weight.detach().clone(), head.bias.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    terms = model.loss(grouped_batch(), step=0)
    opt.zero_grad()
    terms["loss"].backward()
    rows = dict(zip(("style_mu", "style_logvar", "content_mu", "content_logvar"), head.weight.grad.split([3, 3, 4, 4])))
    biases = dict(zip(rows, head.bias.grad.split([3, 3, 4, 4])))
    for name in rows:
        assert rows[name].abs().sum() > 0 and (biases[name] != 0).all(), name
    opt.step()
    changed_w = (head.weight.detach() != before[0]).any(dim=1)
    changed_b = head.bias.detach() != before[1]
    assert changed_w.all() and changed_b.all()  # every output unit of all four heads moved


@pytest.mark.parametrize("accumulation", ["product", "dlib_average"])
def test_the_group_elbo_terms_match_explicit_loops(accumulation):
    torch.manual_seed(0)
    model = build(accumulation=accumulation)
    batch = grouped_batch()
    terms = model.loss(batch, step=0)
    h = model.heads(batch.x)
    groups = sorted(set(batch.group.tolist()))
    std_normal = lambda d: Independent(Normal(torch.zeros(d), torch.ones(d)), 1)  # noqa: E731
    kl_c = 0.0
    for g in groups:
        members = (batch.group == g).nonzero().flatten().tolist()
        m, v = closed_form(h["content_mu"], h["content_logvar"], members)
        if accumulation == "dlib_average":
            v = v * len(members)  # mean of the precisions instead of their sum
        kl_c += kl_divergence(Independent(Normal(m, v.sqrt()), 1), std_normal(4))  # one content KL per group
    q_style = Independent(Normal(h["style_mu"], torch.exp(0.5 * h["style_logvar"])), 1)
    kl_s = kl_divergence(q_style, std_normal(3)).sum()  # every member's style KL
    torch.testing.assert_close(terms["kl_content"], kl_c / len(groups))
    torch.testing.assert_close(terms["kl_style"], kl_s / len(groups))
    torch.testing.assert_close(terms["loss"], terms["rec"] + terms["kl_style"] + terms["kl_content"])
    assert terms["group_size"].item() == pytest.approx(12 / 4)


@pytest.mark.parametrize("step", [0, 250, 999, 1000, 5000])
def test_kl_warmup_scales_both_kls_linearly_and_leaves_the_logged_terms(step):
    """loss = rec + min(step / kl_warmup, 1)·(KL_style + KL_content); the logged terms are the unscaled ones,
    equal to a model without warm-up on the same weights and noise."""
    batch = grouped_batch()
    torch.manual_seed(0)
    plain = build()
    warm = build(kl_warmup=1000)
    warm.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    a = plain.loss(batch, step=step)
    torch.manual_seed(1)
    b = warm.loss(batch, step=step)
    for key in ("rec", "kl_style", "kl_content"):
        torch.testing.assert_close(a[key], b[key])
    factor = min(step / 1000, 1.0)
    torch.testing.assert_close(b["loss"], b["rec"] + factor * (b["kl_style"] + b["kl_content"]))
    if step == 0:
        torch.testing.assert_close(b["loss"], b["rec"])  # nothing of the KLs at the start
    if step >= 1000:
        torch.testing.assert_close(b["loss"], a["loss"])  # the paper's objective from then on


def test_accumulation_off_treats_every_image_as_its_own_group():
    torch.manual_seed(0)
    model = build(accumulate=False)
    batch = grouped_batch()
    terms = model.loss(batch, step=0)
    h = model.heads(batch.x)
    q = Independent(Normal(h["content_mu"], torch.exp(0.5 * h["content_logvar"])), 1)
    expected = kl_divergence(q, Independent(Normal(torch.zeros(4), torch.ones(4)), 1)).mean()
    torch.testing.assert_close(terms["kl_content"], expected)
    assert terms["group_size"].item() == 1.0
    model.loss(Batch(x=batch.x), step=0)  # no groups needed


def test_ungrouped_batches_are_a_config_error():
    with pytest.raises(ConfigError, match="grouped"):
        build().loss(Batch(x=torch.rand(4, 1, 32, 32)), step=0)


@pytest.mark.parametrize("content_sample", ["member", "group"])
def test_content_samples_are_shared_per_group_or_drawn_per_member(content_sample, monkeypatch):
    torch.manual_seed(0)
    model = build(content_sample=content_sample, noise_scale=0.5)
    seen = {}
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda z: (seen.setdefault("z", z), decode(z))[1])
    batch = grouped_batch()
    model.loss(batch, step=0)
    content = seen["z"][:, 3:]
    first = content[batch.group == 0]
    same = torch.allclose(first, first[:1].expand_as(first))
    assert same == (content_sample == "group")
    # the noise is scaled: the spread around the group mean is noise_scale * σ_G
    h = model.heads(batch.x)
    mean, logvar, _ = accumulate_evidence(h["content_mu"], h["content_logvar"], batch.group)
    eps = (content - mean[batch.group]) / torch.exp(0.5 * logvar[batch.group]) / 0.5
    assert 0.4 < eps.std().item() < 1.8  # a standard normal's (16-48 draws), not 0.5x or 2x of it


def test_represent_parts_accumulates_over_the_given_groups():
    model = build()
    x = grouped_batch().x
    single = model.represent_parts(x)
    group = torch.tensor([0, 0, 0, 0, 4, 4, 4, 7, 8, 8, 8, 8])
    grouped = model.represent_parts(x, group)
    h = model.heads(x)
    m, _ = closed_form(h["content_mu"], h["content_logvar"], [4, 5, 6])
    torch.testing.assert_close(grouped["content"][5], m)
    torch.testing.assert_close(grouped["content"][7], single["content"][7])  # a group of one
    torch.testing.assert_close(grouped["style"], single["style"])  # style never pools
    assert model.represent(x).shape == (12, 7)
    ablation = build(accumulate=False)
    ablation.load_state_dict(model.state_dict())
    torch.testing.assert_close(ablation.represent_parts(x, group)["content"], grouped["content"])  # pools at test time


def test_swap_grid_decodes_style_rows_and_content_columns():
    from vaeray.viz import plot_swap_grid

    model = build()
    x = grouped_batch().x
    out = model.swap(x[:2], x[2:5])
    assert out.shape == (2, 3, 1, 32, 32)
    s, c = model.represent_parts(x[1:2])["style"], model.represent_parts(x[4:5])["content"]
    torch.testing.assert_close(out[1, 2], model.decode(torch.cat([s, c], -1)).mean[0])
    ax = plot_swap_grid(model, x[:2], x[2:5])
    image = ax.get_images()[0].get_array()
    assert image.shape == (3 * 32, 4 * 32)  # (1 + styles) x (1 + contents) cells
    assert float(image[:32, :32].max()) == 0.0  # blank corner
    torch.testing.assert_close(torch.as_tensor(image[:32, 64:96]), x[3, 0].clamp(0, 1))  # content source 2


class Sprites64Groups(FactorGroups, Sprites64):
    """The 64×64 test sprites grouped by scale: a group holds one square size at random positions."""

    def __init__(self, shared: list[str] = ("scale",), group_size: int | None = 4, **base):  # type: ignore[assignment]
        super().__init__(**base)
        self.init_factor_groups(shared, group_size)


if "test_sprites64_groups" not in DATASETS:
    DATASETS.register("test_sprites64_groups")(Sprites64Groups)


def test_on_grouped_sprites_the_content_latent_holds_the_shared_factor():
    """Through ``fit`` and the configured metrics: ground-truth groups (shared scale), the content_factors and
    probe metrics on the result."""
    cfg = {
        "seed": 0,
        "model": {"name": "ml_vae", "hidden": [128], "style_dim": 3, "content_dim": 2, "activation": "relu"},
        "data": {"name": "test_sprites64_groups"},
        "train": {"steps": 300, "batch_size": 32, "lr": 1e-3, "log_every": 300, "checkpoint_every": 300},
        "eval": {"metrics": {
            "content_factors": {"num_train": 500, "num_test": 200},
            "probe": {"num_train": None, "num_test": None, "group_sizes": [1, 4]},
        }},
    }
    m = fit(cfg, device="cpu")
    assert m["group_size"] == 4.0
    assert m["content_dci_informativeness_test"] > 0.9  # measured 0.985: scale is readable from 2 content dims
    assert m["probe_content_accuracy"] > m["probe_style_accuracy"] + 0.15  # measured 0.65 vs 0.35 (chance 1/3)
    assert m["probe_content_accuracy_k4"] >= m["probe_content_accuracy"]


def test_resume_draws_the_same_groups_and_noise_as_an_uninterrupted_run():
    """The group sampler and the grouped reparameterisation draw only from checkpointed RNG state."""

    def run(steps, checkpoint=None):
        cfg = {
            "seed": 3,
            "model": {"name": "ml_vae", "hidden": [16], "style_dim": 2, "content_dim": 2, "content_sample": "group"},
            "data": {"name": "test_sprites64_groups", "group_size": 4},
            "train": {"steps": steps, "batch_size": 16, "log_every": 5, "checkpoint_every": 10},
        }
        rows, states = [], []
        fit(cfg, device="cpu", checkpoint=checkpoint,
            report=lambda r, s: (rows.append(r["loss"]), s is not None and states.append(s)))
        return rows, states

    full_rows, full_states = run(20)
    _, half_states = run(10)
    resumed_rows, resumed_states = run(20, checkpoint=half_states[-1])
    assert resumed_rows == full_rows[2:]
    for k, v in full_states[-1]["model"].items():
        assert torch.equal(v, resumed_states[-1]["model"][k]), k
