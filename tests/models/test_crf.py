"""The linear-chain CRF, checked exactly against brute-force enumeration of all C^T paths on tiny lattices."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from wordconv.models.crf import CRF, DISALLOWED, allowed_transitions

C = 3
LENGTHS = [4, 1, 3, 2]  # a padded batch: T = 4, every row a different length
IOB2 = ["O", "B-PER", "I-PER"]


def random_crf(seed: int = 0, **masks) -> CRF:
    """A CRF with O(1) random scores (the default init is too small to make the tests discriminating)."""
    torch.manual_seed(seed)
    crf = CRF(C, **masks)
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.normal_()
    return crf


def padded_batch(lengths=LENGTHS, steps: int | None = None, seed: int = 1, pad_value: float = float("nan")):
    """Emissions (B, T, C), mask and tags; padding holds NaN emissions and out-of-range tags (-100)."""
    gen = torch.Generator().manual_seed(seed)
    steps = steps or max(lengths)
    mask = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]
    emissions = torch.randn(len(lengths), steps, C, generator=gen) * 2
    emissions[~mask] = pad_value
    tags = torch.randint(0, C, (len(lengths), steps), generator=gen).masked_fill(~mask, -100)
    return emissions, mask, tags


def path_score(crf: CRF, em: torch.Tensor, path) -> float:
    """score(y) in float64 from the raw parameters (no penalties) for one unpadded sentence em (L, C)."""
    tr, st, en, em = (x.detach().double() for x in (crf.transitions, crf.start, crf.end, em))
    s = st[path[0]] + en[path[-1]] + sum(em[t, y] for t, y in enumerate(path))
    return float(s + sum(tr[a, b] for a, b in itertools.pairwise(path)))


def brute(crf: CRF, em: torch.Tensor, allowed=None, allowed_start=None, allowed_end=None):
    """(log Z, best path, best score, marginals (L, C)) by enumerating every (allowed) path of em (L, C)."""
    paths = []
    for path in itertools.product(range(C), repeat=em.shape[0]):
        if allowed is not None and not all(allowed[a, b] for a, b in itertools.pairwise(path)):
            continue
        if allowed_start is not None and not allowed_start[path[0]]:
            continue
        if allowed_end is not None and not allowed_end[path[-1]]:
            continue
        paths.append(path)
    scores = torch.tensor([path_score(crf, em, p) for p in paths], dtype=torch.float64)
    log_z = torch.logsumexp(scores, 0).item()
    best = int(scores.argmax())
    probs = torch.exp(scores - log_z)
    marg = torch.zeros(em.shape[0], C, dtype=torch.float64)
    for p, w in zip(paths, probs, strict=True):
        for t, y in enumerate(p):
            marg[t, y] += w
    return log_z, list(paths[best]), scores[best].item(), marg


# ---------------------------------------------------------------------------------------------- exact vs brute force


def test_log_partition_and_likelihood_match_brute_force():
    crf = random_crf()
    em, mask, tags = padded_batch()
    log_z = crf.log_partition(em, mask)
    ll = crf.log_likelihood(em, tags, mask)
    score = crf.score(em, tags, mask)
    assert log_z.shape == ll.shape == score.shape == (len(LENGTHS),)
    assert log_z.dtype == torch.float32
    for b, n in enumerate(LENGTHS):
        ref_z, *_ = brute(crf, em[b, :n])
        ref_s = path_score(crf, em[b, :n], tags[b, :n].tolist())
        assert log_z[b].item() == pytest.approx(ref_z, abs=1e-4)
        assert score[b].item() == pytest.approx(ref_s, abs=1e-4)
        assert ll[b].item() == pytest.approx(ref_s - ref_z, abs=1e-4)
        assert ll[b].item() <= 0


def test_likelihoods_of_all_paths_sum_to_one():
    crf = random_crf(3)
    em, mask, _ = padded_batch([3], seed=4)
    paths = torch.tensor(list(itertools.product(range(C), repeat=3)))
    lls = crf.log_likelihood(em.expand(len(paths), -1, -1), paths, mask.expand(len(paths), -1))
    assert torch.logsumexp(lls, 0).item() == pytest.approx(0.0, abs=1e-5)


def test_decode_matches_brute_force():
    crf = random_crf()
    for seed in range(5):
        em, mask, _ = padded_batch(seed=seed)
        path, best = crf.decode(em, mask)
        assert path.dtype == torch.long and path.shape == mask.shape
        assert (path[~mask] == 0).all()
        for b, n in enumerate(LENGTHS):
            _, ref_path, ref_score, _ = brute(crf, em[b, :n])
            assert path[b, :n].tolist() == ref_path
            assert best[b].item() == pytest.approx(ref_score, abs=1e-4)
        # the returned score is the score of the returned path
        torch.testing.assert_close(best, crf.score(em, path, mask))


def test_marginals_match_brute_force():
    crf = random_crf(2)
    em, mask, _ = padded_batch(seed=7)
    marg = crf.marginals(em, mask)
    assert marg.shape == em.shape and marg.dtype == torch.float32
    assert (marg[~mask] == 0).all()
    torch.testing.assert_close(marg.sum(-1), mask.float())
    for b, n in enumerate(LENGTHS):
        *_, ref = brute(crf, em[b, :n])
        torch.testing.assert_close(marg[b, :n].double(), ref, atol=1e-5, rtol=0)


def test_marginals_are_the_gradient_of_log_partition():
    crf = random_crf(5)
    em, mask, _ = padded_batch(seed=8, pad_value=0.0)
    em.requires_grad_(True)
    crf.log_partition(em, mask).sum().backward()
    torch.testing.assert_close(em.grad, crf.marginals(em.detach(), mask), atol=1e-5, rtol=0)


@pytest.mark.parametrize("pad_value", [0.0, 1e4, float("nan"), float("inf")])
def test_padding_does_not_change_results(pad_value):
    """Each sentence alone (no padding) == inside a batch padded to T = 6 with garbage at the padding."""
    crf = random_crf(1)
    em, mask, tags = padded_batch(steps=6, seed=11, pad_value=pad_value)
    batch = (
        crf.log_partition(em, mask),
        crf.log_likelihood(em, tags, mask),
        *crf.decode(em, mask),
        crf.marginals(em, mask),
    )
    for b, n in enumerate(LENGTHS):
        e, m, y = em[b : b + 1, :n], mask[b : b + 1, :n], tags[b : b + 1, :n]
        alone = (crf.log_partition(e, m), crf.log_likelihood(e, y, m), *crf.decode(e, m), crf.marginals(e, m))
        for got, ref in zip(batch, alone, strict=True):
            torch.testing.assert_close(got[b, :n] if got.dim() > 1 else got[b], ref[0])
    assert all(torch.isfinite(x).all() for x in batch)


def test_reductions():
    crf = random_crf()
    em, mask, tags = padded_batch()
    nll = crf(em, tags, mask, reduction="none")
    torch.testing.assert_close(nll, -crf.log_likelihood(em, tags, mask))
    torch.testing.assert_close(crf(em, tags, mask), nll.mean())
    torch.testing.assert_close(crf(em, tags, mask, reduction="sum"), nll.sum())
    with pytest.raises(ValueError, match="reduction"):
        crf(em, tags, mask, reduction="token_mean")


def test_bf16_emissions_are_computed_in_float32():
    crf = random_crf()
    em, mask, tags = padded_batch(pad_value=0.0)
    em16 = em.bfloat16()
    nll = crf(em16, tags, mask, reduction="none")
    assert nll.dtype == torch.float32
    torch.testing.assert_close(nll, crf(em16.float(), tags, mask, reduction="none"))
    assert crf.marginals(em16, mask).dtype == crf.decode(em16, mask)[1].dtype == torch.float32


def test_input_validation():
    crf = CRF(C)
    em, mask, tags = padded_batch()
    with pytest.raises(ValueError, match="emissions"):
        crf.log_partition(em[..., :2], mask)
    with pytest.raises(ValueError, match="mask"):
        crf.log_partition(em, mask[:, :2])
    with pytest.raises(ValueError, match="tags"):
        crf.score(em, tags[:, :2], mask)
    with pytest.raises(TypeError, match="bool"):
        CRF(C, allowed=torch.ones(C, C))
    with pytest.raises(ValueError, match="shape"):
        CRF(C, allowed_start=torch.ones(C + 1, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------- constraints


def test_decode_respects_allowed_transitions_and_brute_force_agrees():
    allowed, start, end = allowed_transitions(IOB2, "iob2")
    crf = random_crf(4, allowed=allowed, allowed_start=start, allowed_end=end)
    with torch.no_grad():  # make the forbidden moves the most attractive ones without constraints
        crf.transitions[0, 2] = 5.0  # O -> I-PER
        crf.start[2] = 5.0  # start with I-PER
    for seed in range(10):
        em, mask, _ = padded_batch(seed=seed)
        em[..., 2] += 2.0
        path, best = crf.decode(em, mask)
        log_z, marg = crf.log_partition(em, mask), crf.marginals(em, mask)
        for b, n in enumerate(LENGTHS):
            p = path[b, :n].tolist()
            assert start[p[0]] and end[p[-1]]
            assert all(allowed[a, c] for a, c in itertools.pairwise(p)), p
            ref_z, ref_path, ref_score, ref_marg = brute(crf, em[b, :n], allowed, start, end)
            assert p == ref_path
            assert best[b].item() == pytest.approx(ref_score, abs=1e-4)
            assert log_z[b].item() == pytest.approx(ref_z, abs=1e-4)
            torch.testing.assert_close(marg[b, :n].double(), ref_marg, atol=1e-5, rtol=0)
    # and without the constraints the same CRF does pick a forbidden move
    free = random_crf(4)
    free.load_state_dict(crf.state_dict())
    assert (free.decode(em, mask)[0] == 2).any() and not torch.equal(free.decode(em, mask)[0], path)


def test_constraint_buffers_are_non_persistent_and_rebuildable():
    crf = CRF.from_labels(IOB2, "iob2")
    assert set(crf.state_dict()) == {"transitions", "start", "end"}
    assert crf.transition_penalty[0, 2] == DISALLOWED and crf.start_penalty[2] == DISALLOWED
    assert crf.transition_penalty[1, 2] == 0 and (crf.end_penalty == 0).all()
    fresh = CRF(len(IOB2))
    fresh.load_state_dict(crf.state_dict())
    assert (fresh.transition_penalty == 0).all()
    fresh.set_allowed(*allowed_transitions(IOB2, "iob2"))
    torch.testing.assert_close(fresh.transition_penalty, crf.transition_penalty)
    fresh.set_allowed()
    assert (fresh.transition_penalty == 0).all() and (fresh.start_penalty == 0).all()


def test_gradients_flow_and_are_finite():
    allowed, start, end = allowed_transitions(IOB2, "iob2")
    for masks in ({}, {"allowed": allowed, "allowed_start": start, "allowed_end": end}):
        crf = random_crf(**masks)
        em, mask, tags = padded_batch(pad_value=float("nan"))
        em.requires_grad_(True)
        crf(em, tags, mask).backward()
        for g in (crf.transitions.grad, crf.start.grad, crf.end.grad, em.grad):
            assert g is not None and torch.isfinite(g).all()
        assert crf.transitions.grad.abs().sum() > 0 and em.grad[mask].abs().sum() > 0
        assert (em.grad[~mask] == 0).all()


# ---------------------------------------------------------------------------------------------- allowed_transitions


def as_sets(labels, allowed, start, end):
    pairs = {(labels[a], labels[b]) for a, b in allowed.nonzero().tolist()}
    return pairs, {labels[i] for i in start.nonzero().flatten().tolist()}, {labels[i] for i in end.nonzero().flatten()}


def test_allowed_transitions_iob2():
    labels = ["I-LOC", "B-PER", "O", "I-PER", "B-LOC"]  # any order
    allowed, start, end = allowed_transitions(labels, "IOB2")
    assert allowed.dtype == start.dtype == end.dtype == torch.bool
    assert allowed.shape == (5, 5) and start.shape == end.shape == (5,)
    pairs, starts, ends = as_sets(labels, allowed, start, end)
    into_i = {(a, b) for a, b in pairs if b.startswith("I-")}
    assert into_i == {("B-PER", "I-PER"), ("I-PER", "I-PER"), ("B-LOC", "I-LOC"), ("I-LOC", "I-LOC")}
    others = [label for label in labels if not label.startswith("I-")]
    assert {(a, b) for a, b in pairs if not b.startswith("I-")} == set(itertools.product(labels, others))
    assert starts == {"O", "B-PER", "B-LOC"}
    assert ends == set(labels)


def test_allowed_transitions_bioes():
    labels = ["S-PER", "O", "E-PER", "B-PER", "I-PER", "B-LOC", "E-LOC", "I-LOC", "S-LOC"]
    allowed, start, end = allowed_transitions(labels, "bioes")
    pairs, starts, ends = as_sets(labels, allowed, start, end)
    openers = {"O", "B-PER", "B-LOC", "S-PER", "S-LOC"}
    expected = set()
    for a in labels:
        if a[0] in "BI":
            expected |= {(a, "I-" + a[2:]), (a, "E-" + a[2:])}
        else:
            expected |= {(a, b) for b in openers}
    assert pairs == expected
    assert ("B-PER", "E-PER") in pairs and ("B-PER", "E-LOC") not in pairs and ("I-PER", "O") not in pairs
    assert ("E-PER", "I-PER") not in pairs and ("S-LOC", "B-PER") in pairs and ("O", "E-PER") not in pairs
    assert starts == openers
    assert ends == {"O", "E-PER", "E-LOC", "S-PER", "S-LOC"}


def test_allowed_transitions_rejects_bad_input():
    with pytest.raises(ValueError, match="scheme"):
        allowed_transitions(IOB2, "bilou")
    with pytest.raises(ValueError, match="IOB2"):
        allowed_transitions(["O", "S-PER"], "iob2")
    with pytest.raises(ValueError, match="parse"):
        allowed_transitions(["O", "PER"], "iob2")
    with pytest.raises(ValueError, match="duplicate"):
        allowed_transitions(["O", "O"], "bioes")


# ---------------------------------------------------------------------------------------------- training


def sticky_task(n: int, seed: int):
    """Sentences whose first word (id 0..2) fixes the tag of every word; later words (ids 3..6) are pure noise.

    A per-word classifier can only guess the noise words (1/3 of them right), so high accuracy needs the
    CRF's transitions to carry the first word's tag along the sentence.
    """
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 7, (n,), generator=gen)
    steps = int(lengths.max())
    mask = torch.arange(steps)[None, :] < lengths[:, None]
    tags = torch.randint(0, C, (n, 1), generator=gen).expand(n, steps).masked_fill(~mask, 0)
    words = torch.randint(3, 7, (n, steps), generator=gen)
    words[:, 0] = tags[:, 0]
    return words, tags, mask


def test_training_learns_transitions():
    """Overfit-style check (seeded, ~2 s): only the transitions and a linear emission layer are trained."""
    torch.manual_seed(0)
    vocab = 7
    emit = nn.Linear(vocab, C)  # a linear emission layer on one-hot words: no context at all
    crf = CRF(C)
    crf.start.requires_grad_(False).zero_()
    crf.end.requires_grad_(False).zero_()
    opt = torch.optim.Adam([*emit.parameters(), crf.transitions], lr=0.1)
    words, tags, mask = sticky_task(128, seed=1)
    x = nn.functional.one_hot(words, vocab).float()
    for _ in range(100):
        opt.zero_grad()
        loss = crf(emit(x), tags, mask)
        loss.backward()
        opt.step()
    test_words, test_tags, test_mask = sticky_task(256, seed=2)
    with torch.no_grad():
        pred, _ = crf.decode(emit(nn.functional.one_hot(test_words, vocab).float()), test_mask)
    accuracy = (pred == test_tags)[test_mask].float().mean().item()
    per_word_ceiling = ((1 + (test_mask.sum(1) - 1) / 3) / test_mask.sum(1)).mean().item()  # ~0.5
    assert accuracy > 0.98 > per_word_ceiling + 0.3
    assert loss.item() < 0.1 and math.isfinite(loss.item())
    assert crf.transitions.argmax(dim=1).tolist() == list(range(C))  # learned: stay in your tag


def test_unsorted_rows_decode_together_as_alone_and_both_at_once():
    """decode / marginals sort the rows by length (the rows still in the sentence at step t are a block):
    rows in any order give what each gives alone, and decode_with_marginals is the two together."""
    crf = random_crf(3)
    lengths = [2, 6, 1, 6, 3, 5, 2]
    em, mask, _ = padded_batch(lengths=lengths, seed=5, pad_value=float("nan"))
    path, score, probs = crf.decode_with_marginals(em, mask)
    torch.testing.assert_close((path, score), crf.decode(em, mask))
    torch.testing.assert_close(probs, crf.marginals(em, mask))
    for b, n in enumerate(lengths):
        p1, s1 = crf.decode(em[b:b + 1, :n], mask[b:b + 1, :n])
        assert torch.equal(path[b, :n], p1[0]) and (path[b, n:] == 0).all()
        torch.testing.assert_close(score[b], s1[0])
        torch.testing.assert_close(probs[b, :n], crf.marginals(em[b:b + 1, :n], mask[b:b + 1, :n])[0])
    torch.testing.assert_close(probs.sum(-1), mask.float())  # a distribution at each word, 0 at padding


def test_decoding_under_bf16_autocast_stays_float32():
    """Inside a bf16 autocast region (a model run in bf16) the recursions still run in float32."""
    crf = random_crf(4)
    em, mask, tags = padded_batch(pad_value=0.0)
    want = (*crf.decode(em, mask), crf.marginals(em, mask), crf(em, tags, mask, reduction="none"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = (*crf.decode(em, mask), crf.marginals(em, mask), crf(em, tags, mask, reduction="none"))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        torch.testing.assert_close(g, w)


def test_decode_needs_a_left_aligned_mask():
    crf = random_crf()
    em, mask, _ = padded_batch(pad_value=0.0)
    holes = mask.clone()
    holes[0, 1] = False  # a gap inside the first sentence
    with pytest.raises(ValueError, match="left-aligned"):
        crf.decode(em, holes)
    with pytest.raises(ValueError, match="left-aligned"):
        crf.marginals(em, holes)


def _marginals_float64(crf: CRF, em: torch.Tensor) -> torch.Tensor:
    """Forward-backward in float64 for one sentence em (L, C), no constraints: the reference."""
    tr, st, en, em = (x.detach().double() for x in (crf.transitions, crf.start, crf.end, em))
    alphas, betas = [st + em[0]], [en]
    for t in range(1, len(em)):
        alphas.append(torch.logsumexp(alphas[-1][:, None] + tr, dim=0) + em[t])
    for t in range(len(em) - 2, -1, -1):
        betas.insert(0, torch.logsumexp(tr + (em[t + 1] + betas[0])[None, :], dim=1))
    a, b = torch.stack(alphas), torch.stack(betas)
    return torch.exp(a + b - torch.logsumexp(a[-1] + en, dim=0))


def test_marginals_stay_exact_on_long_confident_sentences():
    """Log-scores reach the thousands on a long sentence with large emissions; marginals are still
    exact to float32 precision (the forward-backward is rescaled at every step)."""
    crf = random_crf(5)
    gen = torch.Generator().manual_seed(6)
    em = torch.randn(1, 400, C, generator=gen) * 8 + 10  # log Z ~ 4,000 and beyond
    mask = torch.ones(1, 400, dtype=torch.bool)
    got = crf.marginals(em, mask)[0].double()
    torch.testing.assert_close(got, _marginals_float64(crf, em[0]), atol=2e-6, rtol=0)
