"""GRPO maths: table-driven checks against hand-computed values."""

import math

import pytest
import torch

from magic_rl import grpo


def test_group_advantages_normalise_within_each_group():
    rewards = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.5, 0.5, 0.5, 2.5])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    adv = grpo.group_advantages(rewards, groups)
    std0 = torch.tensor([1.0, -1.0, 1.0, -1.0]).std()
    assert torch.allclose(adv[:4], torch.tensor([1.0, -1.0, 1.0, -1.0]) / (std0 + 1e-6))
    r1 = torch.tensor([0.5, 0.5, 0.5, 2.5])
    assert torch.allclose(adv[4:], (r1 - r1.mean()) / (r1.std() + 1e-6))
    for g in (0, 1):
        assert abs(float(adv[groups == g].sum())) < 1e-5


def test_constant_group_has_zero_advantage():
    adv = grpo.group_advantages(torch.full((4,), 1.5), torch.zeros(4, dtype=torch.long))
    assert torch.equal(adv, torch.zeros(4))


def test_invalid_samples_are_excluded_from_statistics():
    rewards = torch.tensor([1.0, -1.0, 100.0, 3.0])
    valid = torch.tensor([True, True, False, False])
    adv = grpo.group_advantages(rewards, torch.zeros(4, dtype=torch.long), valid)
    assert adv[2] == 0 and adv[3] == 0
    expected = (torch.tensor([1.0, -1.0]) - 0.0) / (torch.tensor([1.0, -1.0]).std() + 1e-6)
    assert torch.allclose(adv[:2], expected)


def test_group_with_one_valid_member_has_no_signal():
    adv = grpo.group_advantages(
        torch.tensor([1.0, 2.0]), torch.zeros(2, dtype=torch.long), torch.tensor([True, False])
    )
    assert torch.equal(adv, torch.zeros(2))


@pytest.mark.parametrize(
    "ratio, adv, expected_loss, clipped",
    [
        (1.0, 1.0, -1.0, 0.0),  # on-policy: loss = -A
        (1.5, 1.0, -1.2, 1.0),  # A>0, ratio above 1+eps: clipped at 1.2
        (0.5, 1.0, -0.5, 0.0),  # A>0, ratio below 1-eps: unclipped (pessimistic min)
        (0.5, -1.0, 0.8, 1.0),  # A<0, ratio below 1-eps: clipped at 0.8
        (1.5, -1.0, 1.5, 0.0),  # A<0, ratio above 1+eps: unclipped
    ],
)
def test_clipped_surrogate_table(ratio, adv, expected_loss, clipped):
    logp = torch.tensor([[math.log(ratio)]])
    old = torch.zeros(1, 1)
    loss, clip = grpo.clipped_surrogate(logp, old, torch.tensor([adv]), clip_eps=0.2)
    assert loss.item() == pytest.approx(expected_loss, abs=1e-6)
    assert clip.item() == clipped


def test_kl_k3_is_zero_at_reference_and_positive_elsewhere():
    logp = torch.tensor([[-1.0, -2.0, -0.5]])
    assert torch.allclose(grpo.kl_k3(logp, logp), torch.zeros(1, 3))
    assert (grpo.kl_k3(logp, logp - 0.3) > 0).all()


def test_token_mean_and_seq_mean_differ_on_uneven_lengths():
    per_token = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    assert grpo.aggregate(per_token, mask, "token_mean").item() == pytest.approx(8 / 5)
    assert grpo.aggregate(per_token, mask, "seq_mean").item() == pytest.approx((1 + 4) / 2)


def test_microbatch_losses_sum_to_full_batch_loss():
    torch.manual_seed(0)
    per_token = torch.randn(6, 5)
    mask = (torch.rand(6, 5) > 0.3).float()
    full = grpo.aggregate(per_token, mask, "token_mean")
    total = float(mask.sum())
    parts = sum(
        grpo.aggregate(per_token[i : i + 2], mask[i : i + 2], "token_mean", normaliser=total)
        for i in range(0, 6, 2)
    )
    assert parts.item() == pytest.approx(full.item(), rel=1e-6)


def test_grpo_loss_gradient_pushes_up_positive_advantage_tokens():
    logits = torch.zeros(2, 3, requires_grad=True)
    logp = torch.log_softmax(logits, -1)[:, :1].expand(2, 2)  # same token prob per position
    old = logp.detach()
    loss, stats = grpo.grpo_loss(
        logp, old, torch.tensor([1.0, -1.0]), torch.ones(2, 2), clip_eps=0.2
    )
    loss.backward()
    # descending the loss raises the chosen token's logit for A>0 and lowers it for A<0
    assert logits.grad[0, 0] < 0 < logits.grad[1, 0]
    assert stats["clip_frac"] == 0.0


def test_kl_requires_reference_logprobs():
    x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo.grpo_loss(x, x, torch.ones(1), torch.ones(1, 1), clip_eps=0.2, kl_beta=0.1)
    loss, stats = grpo.grpo_loss(
        x, x, torch.ones(1), torch.ones(1, 1), clip_eps=0.2, kl_beta=0.1, ref_logp=x - 1
    )
    assert stats["kl"] > 0


# k3 = e^d - d - 1 with d = ref - logp, by hand: e^0.3 - 0.3 - 1 = 0.0498588..., e^-0.3 + 0.3 - 1 =
# 0.0408182..., e^1 - 2 = 0.7182818..., e^-1 = 0.3678794... The estimator is not symmetric in d, so a
# reversed direction (d = logp - ref) or k2 = d^2/2 (0.045 at d = ±0.3) gives other numbers.
K3_TABLE = [(0.3, 0.0498588076), (-0.3, 0.0408182207), (1.0, 0.7182818285), (-1.0, 0.3678794412)]


@pytest.mark.parametrize(("d", "k3"), K3_TABLE)
def test_kl_k3_values_by_hand(d, k3):
    logp = torch.tensor([[-2.0]], dtype=torch.float64)
    assert grpo.kl_k3(logp, logp + d).item() == pytest.approx(k3, abs=1e-9)


def test_kl_term_adds_beta_times_the_token_mean_of_k3_to_the_loss():
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.7, -1.1, 0.0]], dtype=torch.float64)
    ref = logp + torch.tensor([[0.3, -0.3, 1.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.float64)
    adv = torch.tensor([0.7, -1.3], dtype=torch.float64)
    mean_k3 = (0.0498588076 + 0.0408182207 + 0.7182818285 + 0.3678794412 + 0.0) / 5
    base, _ = grpo.grpo_loss(logp, logp, adv, mask, clip_eps=0.2)
    for beta in (0.05, 0.5):
        loss, stats = grpo.grpo_loss(
            logp, logp, adv, mask, clip_eps=0.2, kl_beta=beta, ref_logp=ref
        )
        assert (loss - base).item() == pytest.approx(beta * mean_k3, abs=1e-9)
        assert stats["kl"] == pytest.approx(mean_k3, abs=1e-9)


def test_seq_mean_microbatch_losses_sum_to_the_full_batch_loss():
    # seq_mean's step normaliser is the number of sequences in the whole step, not in the micro-batch
    per_token = torch.tensor([[1.0, 3.0, 0.0], [2.0, 0.0, 0.0], [4.0, 4.0, 4.0], [6.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])
    full = grpo.aggregate(per_token, mask, "seq_mean")
    assert full.item() == pytest.approx((2.0 + 2.0 + 4.0 + 3.0) / 4)
    parts = sum(
        grpo.aggregate(per_token[i : i + 2], mask[i : i + 2], "seq_mean", normaliser=4.0)
        for i in (0, 2)
    )
    assert parts.item() == pytest.approx(full.item())
