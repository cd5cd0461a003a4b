"""The QANet-style reader: shapes, masking, padding invariance, tiny inputs, gradients, overfitting, vectors."""

import random
import time

import pytest
import torch

from wordconv.config import EmbeddingConfig, TrainingConfig
from wordconv.models.qanet import MASKED, QANetParams, QANetReader, build_qanet, match_flags
from wordconv.models.registry import get_model, model_names
from wordconv.models.tagger import char_ids

# a reader small enough that each test is per-op overhead; everything else at its default
TINY = {"hidden": 16, "heads": 2, "char_dim": 8, "char_filters": 8, "embed_convs": 2, "model_blocks": 1}


def make_reader(vocab_size: int = 50, emb: EmbeddingConfig | None = None, **params) -> QANetReader:
    torch.manual_seed(0)
    return QANetReader(QANetParams(**{**TINY, **params}), emb or EmbeddingConfig(dim=8), vocab_size)


def encode(texts: list[list[str]], index: dict[str, int], params: QANetParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids (B, T) and hashed character ids (B, T, C) of tokenized texts, 0 = padding."""
    rows = [[char_ids(w, params.char_buckets, params.max_word_chars) for w in text] for text in texts]
    t, c = max(map(len, texts)), max(len(ch) for row in rows for ch in row)
    ids = torch.zeros(len(texts), t, dtype=torch.long)
    chars = torch.zeros(len(texts), t, c, dtype=torch.long)
    for b, (text, row) in enumerate(zip(texts, rows)):
        ids[b, : len(text)] = torch.tensor([index[w] for w in text])
        for i, ch in enumerate(row):
            chars[b, i, : len(ch)] = torch.tensor(ch)
    return ids, chars


def random_batch(lengths_c, lengths_q, vocab=50, chars=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    def side(lengths):
        ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
        ch = torch.zeros(len(lengths), max(lengths), chars, dtype=torch.long)
        for b, n in enumerate(lengths):
            ids[b, :n] = torch.randint(2, vocab, (n,), generator=g)
            ch[b, :n] = torch.randint(1, 100, (n, chars), generator=g)
        return ids, ch
    (c, cc), (q, qc) = side(lengths_c), side(lengths_q)
    return {"c_ids": c, "c_chars": cc, "q_ids": q, "q_chars": qc}


def test_registered_for_qa_only():
    entry = get_model("qanet")
    assert entry.tasks == ("qa",) and entry.config_class is QANetParams and entry.description
    assert "qanet" in model_names("qa") and "qanet" not in model_names("textcat") + model_names("ner")
    reader = entry.build(QANetParams(**TINY), EmbeddingConfig(dim=8), 50)
    assert isinstance(reader, QANetReader) and reader.span_reader and reader.output_dim == 16
    assert reader.min_length == 1 and reader.params.hidden == 16


def test_params_validation_and_training_defaults():
    with pytest.raises(ValueError, match="odd"):
        QANetParams(model_kernel=4)
    with pytest.raises(ValueError, match="divide hidden"):
        QANetParams(hidden=96, heads=5)
    with pytest.raises(ValueError):
        QANetParams(unknown_field=1)  # config sections forbid unknown keys
    defaults = QANetParams().training_defaults
    training = TrainingConfig.model_validate(defaults)  # every key is a real, valid training field
    assert training.optimizer == "adam" and training.lr == 1e-3 and training.grad_clip == 5.0


def test_shapes_and_masking():
    reader = make_reader().eval()
    batch = random_batch([7, 4], [3, 5])
    with torch.no_grad():
        out = reader(**batch)
    assert out["start_logits"].shape == out["end_logits"].shape == (2, 7)
    assert out["c2q"].shape == (2, 7, 5)
    for key in ("start_logits", "end_logits"):
        assert torch.all(out[key][1, 4:] == MASKED)  # padding positions
        assert torch.all(out[key][0] > MASKED / 10) and torch.all(out[key][1, :4] > MASKED / 10)
    torch.testing.assert_close(out["c2q"].sum(-1), torch.ones(2, 7))
    assert torch.all(out["c2q"][0, :, 3:] == 0)  # the first question has 3 real words of 5
    assert torch.equal(out["mask"], batch["c_ids"] != 0)


def test_logits_do_not_depend_on_batch_padding():
    reader = make_reader().eval()
    both = random_batch([6, 19], [3, 8], chars=5)
    both["c_chars"][1, :, 5:] = 0
    # the long neighbour also has longer words: widen the character axis with its characters
    both["c_chars"] = torch.cat([both["c_chars"], torch.randint(1, 100, (2, 19, 4))], dim=2)
    both["c_chars"][0, :, 5:] = 0
    both["q_chars"] = torch.cat([both["q_chars"], torch.zeros(2, 8, 4, dtype=torch.long)], dim=2)
    alone = {"c_ids": both["c_ids"][:1, :6], "c_chars": both["c_chars"][:1, :6, :5],
             "q_ids": both["q_ids"][:1, :3], "q_chars": both["q_chars"][:1, :3, :5]}
    with torch.no_grad():
        one, batched = reader(**alone), reader(**both)
    for key in ("start_logits", "end_logits"):
        torch.testing.assert_close(batched[key][0, :6], one[key][0], rtol=0, atol=1e-5)
        assert torch.all(batched[key][0, 6:] == MASKED)
    torch.testing.assert_close(batched["c2q"][0, :6, :3], one["c2q"][0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("train", [False, True])
def test_one_word_context_and_question(train):
    reader = make_reader().train(train)
    batch = random_batch([1], [1])
    out = reader(**batch)
    assert out["start_logits"].shape == (1, 1) and torch.isfinite(out["start_logits"]).all()
    (out["start_logits"].sum() + out["end_logits"].sum()).backward()
    # and a one-word text batched with a longer one
    out = reader(**random_batch([1, 9], [1, 4]))
    assert torch.all(out["end_logits"][0, 1:] == MASKED) and torch.isfinite(out["end_logits"]).all()


def test_gradient_reaches_every_trainable_parameter():
    reader = make_reader(dropout=0.0, word_dropout=0.0).train()
    batch = random_batch([9, 6, 4], [4, 3, 2], seed=1)
    out = reader(**batch)
    target = torch.tensor([2, 5, 0])
    loss = (torch.nn.functional.cross_entropy(out["start_logits"], target)
            + torch.nn.functional.cross_entropy(out["end_logits"], target + 1 - (target == 5).long()))
    loss.backward()
    dead = [name for name, p in reader.named_parameters()
            if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not dead, f"no gradient reaches {dead}"


def test_missing_question_or_characters_is_an_error():
    reader = make_reader()
    batch = random_batch([3], [2])
    with pytest.raises(ValueError, match="q_ids"):
        reader(batch["c_ids"], batch["c_chars"])
    with pytest.raises(ValueError, match="characters"):
        reader(batch["c_ids"], None, batch["q_ids"], None)
    with pytest.raises(ValueError, match="characters"):  # the match features read them too
        make_reader(char_dim=0)(batch["c_ids"], None, batch["q_ids"], None)
    # no character CNN and no match features: no characters needed
    out = make_reader(char_dim=0, match_features=False)(batch["c_ids"], None, batch["q_ids"], None)
    assert out["start_logits"].shape == (1, 3)


def test_match_flags_exact_ignoring_case_and_stem():
    params = QANetParams(**TINY)
    words = {w: i + 2 for i, w in enumerate("the Cat sat on mat cat THE dog Über über lives live Lives".split())}
    c_ids, c_chars = encode([["the", "Cat", "sat", "on", "the", "mat", "lives"], ["dog", "Über"]], words, params)
    q_ids, q_chars = encode([["THE", "cat", "sat", "live"], ["über"]], words, params)
    c_flags = match_flags(c_chars, c_ids != 0, q_chars, q_ids != 0)
    q_flags = match_flags(q_chars, q_ids != 0, c_chars, c_ids != 0)
    # columns: as written, ignoring case, same stem (first 4 letters, ignoring case; a shorter word itself).
    # "mat" and "on" match nothing, nor does padding
    assert c_flags[0].tolist() == [[0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 0, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]]
    assert c_flags[1].tolist() == [[0, 0, 0], [0, 1, 1]] + [[0, 0, 0]] * 5
    assert q_flags[0].tolist() == [[0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]]
    assert q_flags[1].tolist() == [[0, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    # a wider character axis on one side; a stem shared ignoring case
    c_ids, c_chars = encode([["cat", "Lives"]], words, params)
    q_ids, q_chars = encode([["Cat", "live"]], words, params)
    q_chars = torch.cat([q_chars, torch.zeros(1, 2, 4, dtype=torch.long)], dim=2)
    assert match_flags(c_chars, c_ids != 0, q_chars, q_ids != 0)[0].tolist() == [[0, 1, 1], [0, 0, 1]]
    # a short word is not matched by a longer one that starts with it
    longer = {"cats": 2, "cat": 3}
    c_ids, c_chars = encode([["cats"]], longer, params)
    q_ids, q_chars = encode([["cat"]], longer, params)
    assert match_flags(c_chars, c_ids != 0, q_chars, q_ids != 0).tolist() == [[[0, 0, 0]]]


def test_match_features_let_the_reader_point_at_the_question_word():
    """With word vectors and characters off (only the match flags tell words apart), a tiny reader learns
    to start the answer at the context word the question repeats; without the flags it cannot."""
    g = random.Random(0)
    vocab = {f"w{i}": i + 2 for i in range(40)}

    def batch(n):
        cs, qs, targets = [], [], []
        for _ in range(n):
            context = g.sample(sorted(vocab), 8)
            k = g.randrange(8)
            cs.append(context)
            qs.append([context[k]])
            targets.append(k)
        params = QANetParams(**TINY)
        c_ids, c_chars = encode(cs, vocab, params)
        q_ids, q_chars = encode(qs, vocab, params)
        # every word id is UNK: the reader sees only positions, characters (off) and the match flags
        return {"c_ids": torch.ones_like(c_ids), "c_chars": c_chars, "q_ids": torch.ones_like(q_ids),
                "q_chars": q_chars}, torch.tensor(targets)

    train, target = batch(64)
    test, test_target = batch(64)
    scores = {}
    for flags in (True, False):
        reader = make_reader(char_dim=0, match_features=flags, dropout=0.0, word_dropout=0.0)
        opt = torch.optim.Adam(reader.parameters(), lr=1e-2)
        for _ in range(60):
            loss = torch.nn.functional.cross_entropy(reader(**train)["start_logits"], target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            guess = reader.eval()(**test)["start_logits"].argmax(-1)
        scores[flags] = (guess == test_target).float().mean().item()
    assert scores[True] >= 0.95 and scores[False] <= 0.4, scores


def test_bf16_autocast_keeps_padding_masked():
    reader = make_reader().eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = reader(**random_batch([5, 2], [3, 3]))
    start = out["start_logits"]
    assert torch.isfinite(start).all() and torch.all(start[1, 2:] == torch.tensor(MASKED, dtype=start.dtype))
    start = start.float()
    assert torch.isfinite(torch.log_softmax(start, dim=1)).all()


# ---- overfitting: the answer is the city of the person the question names -------------------------------
PEOPLE = ["anna", "bruno", "chen", "dara", "emil", "fatou", "gita", "hugo"]
CITIES = [["paris"], ["new", "york"], ["lima"], ["oslo"], ["cape", "town"], ["kyoto"], ["rome"], ["hong", "kong"]]


def where_questions(n: int, seed: int = 0):
    """``n`` (question, context, start, end): "where is X ?" over a paragraph "A is in C1 . X is in C2 . ..."."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        people = rng.sample(PEOPLE, 3)
        cities = rng.sample(CITIES, 3)
        asked = i % 3
        context, span = [], None
        for person, city in zip(people, cities):
            if person == people[asked]:
                span = (len(context) + 3, len(context) + 3 + len(city) - 1)
            context += [person, "is", "in", *city, "."]
        rows.append((["where", "is", people[asked], "?"], context, *span))
    return rows


def test_overfits_sixteen_questions():
    rows = where_questions(16)
    words = sorted({w for q, c, _, _ in rows for w in q + c})
    index = {w: i + 2 for i, w in enumerate(words)}  # 0 PAD, 1 UNK
    reader = make_reader(len(words) + 2, hidden=24, dropout=0.0, char_dropout=0.0, word_dropout=0.0)
    q_ids, q_chars = encode([q for q, _, _, _ in rows], index, reader.params)
    c_ids, c_chars = encode([c for _, c, _, _ in rows], index, reader.params)
    starts, ends = torch.tensor([r[2] for r in rows]), torch.tensor([r[3] for r in rows])
    opt = torch.optim.Adam(reader.parameters(), lr=0.01)
    began, accuracy = time.perf_counter(), 0.0
    for step in range(1, 301):
        reader.train()
        out = reader(c_ids, c_chars, q_ids, q_chars)
        loss = (torch.nn.functional.cross_entropy(out["start_logits"], starts)
                + torch.nn.functional.cross_entropy(out["end_logits"], ends))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            reader.eval()
            with torch.no_grad():
                out = reader(c_ids, c_chars, q_ids, q_chars)
            exact = (out["start_logits"].argmax(1) == starts) & (out["end_logits"].argmax(1) == ends)
            accuracy = exact.float().mean().item()
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"exact-span accuracy {accuracy} after {step} steps ({time.perf_counter() - began:.1f}s)"


def test_pretrained_vectors_are_loaded_and_read():
    vocab = 12
    vectors = torch.randn(vocab, 8)
    emb = EmbeddingConfig(dim=8, mode="non-static", vectors="unused.txt", extra_words=3)
    reader = make_reader(vocab, emb=emb).eval()
    batch = random_batch([4, 3], [2, 2], vocab=vocab, seed=2)
    batch["c_ids"][0, 3] = 10  # an extra word (a vector file word the training data never had)
    with torch.no_grad():
        before = reader(**batch)["start_logits"]
    reader.embedding.load_pretrained(vectors)
    ids = batch["c_ids"]
    with torch.no_grad():
        torch.testing.assert_close(reader.embedding(ids), vectors[ids])
        after = reader(**batch)["start_logits"]
    assert not torch.allclose(before, after)
    frozen = build_qanet(QANetParams(**TINY), EmbeddingConfig(dim=8, mode="static", vectors="unused.txt",
                                                               extra_words=3), vocab)
    frozen.embedding.load_pretrained(vectors)
    assert not frozen.embedding.table.weight.requires_grad  # static: the vectors stay as loaded
