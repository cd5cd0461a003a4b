"""TextCNN training throughput as a fraction of this machine's fp32 matmul peak, measured in the same run.

    python bench/throughput.py                                   # MR fold 0, 3 epochs, all cores: the table
    python bench/throughput.py --data imdb --epochs 1            # IMDB (22,500 train reviews, 400-token cap)
    python bench/throughput.py --profile                         # + torch.profiler top ops of the step loop
    python bench/throughput.py --experiments                     # + step-only variants (what the profile suggests)
    OMP_NUM_THREADS=1 python bench/throughput.py --limit 1000 --epochs 1 --threads 1 --no-write   # smoke run

What is measured, one after the other in one process, with ``--threads`` torch threads throughout:

1. **peak**: ``torch.mm`` of two n x n fp32 matrices (n in ``--peak-sizes``), the best of ``--peak-repeats``
   after a warm-up; peak GFLOP/s = 2 n^3 / best time, the largest over the sizes; measured before the
   training and again after the step loops, and the higher of the two is used (a busy machine).
2. **end to end**: Kim's TextCNN with wordconv's default config (random 300-d embeddings, widths 3/4/5 x 100
   filters, wide padding, 1-max, dropout 0.5, max-norm 3, Adam lr 1e-3 fused, batch 50) trained through
   ``wordconv.pipeline.fit`` (the normal Trainer path) on ``--data`` (MR fold 0: 8,635 train sentences, or
   IMDB: 22,500 train reviews).  Epoch time = the Trainer's ``epoch_seconds``: length bucketing, padding,
   tensor building, the steps, the progress bookkeeping; not the dev evaluation (its own ``eval_seconds``)
   and not tokenization / vocabulary (``preprocess_seconds``, once per run, shown in its own line and in
   the "incl. preprocessing" fraction, which spreads it over the epochs).
3. **pipeline only**: iterating ``train.batches`` for one epoch without a model (bucketing + padding alone).
4. **step only**: the Trainer's step body (lr factor, forward with loss, zero_grad, backward, fused Adam
   step, max-norm) over prebuilt batches of one epoch (``--step-batches`` of them; the same shuffled
   bucketed batches the Trainer would make), after ``--warmup-steps`` untimed steps.

Counted FLOPs, per training batch of B texts padded to T tokens (T = the real padded length of that batch,
recorded from the batches the Trainer actually iterated), E = 300, F = 100, widths w in {3, 4, 5}, C classes:

    conv forward   2 B T E F (3+4+5)     the one (B T, E) x (E, F sum(w)) GEMM wordconv runs (models/ops.py)
    conv backward  2 x the forward       weight gradient X^T dY and input gradient dY W^T (the input gradient
                                         exists only because the embedding is trained: it is counted)
    head           2 B (3F) C forward,   2 x that backward (weight and input gradients)

Not counted (reported as their own "elementwise" figure, so nothing is dropped silently): the shift-and-add
that turns tap products into conv outputs (B L_w F (w-1) adds per width, L_w = T + 2 pad - w + 1), the
mask / max / bias / ReLU / dropout / cross-entropy, the embedding gather and its gradient scatter-add
(B T E adds), and the Adam update (~12 flops per trainable parameter; it is memory-bound: fused Adam moves
~28 bytes per parameter per step, the whole embedding table every step, see "adam MB/step").

Also printed: the textbook conv count, sum over widths of 2 B (T + 2 pad - w + 1) E F w, i.e. Kim's
wide convolution counted over every window including those over the zero padding (the GEMM never
multiplies those zeros, so this count is higher: ~20 % on MR's short sentences, ~2 % on IMDB), and the
fraction of counted FLOPs spent on real (not batch-padding) tokens.

Fractions: achieved GFLOP/s (counted FLOPs / seconds) over the peak.  Goal: >= 60 % end to end.

``--profile``: torch.profiler over ``--profile-steps`` steps of the step loop (ops by self CPU time), a
cProfile of one pipeline-only epoch and one of tokenization + vocabulary lookup (5,000 training texts).

``--experiments``: the step-only loop again with variants that need no change to wordconv (each its own
fresh model and optimizer, patched in this process only; see ``EXPERIMENTS``), timed round-robin with the
plain loop (``--step-repeats`` rounds, best round each) so that a busy machine slows them alike; printed as
the plain loop's counted FLOPs over the variant's time, and as a speed ratio to the plain loop:
    sparse embedding + SparseAdam        sparse embedding gradient, lazy Adam on the table (changes the
                                         optimizer's math: rows not in a batch do not move)
    training.sparse_embeddings (LazyAdam) the same lazy Adam as wordconv's option (one optimizer, resumable)
    Adam foreach (not fused)             the multi-tensor Adam (the pre-fused default)
    pad T to a multiple of 8             GEMM row counts aligned (more padding)
    nn.Conv1d per width                  the stock oneDNN convolution instead of models/ops.py's GEMM
    bf16 autocast                        only on CPUs with native bf16 (AVX-512 BF16 / AMX)
plus the share of counted FLOPs on real tokens with wordconv's bucketing (chunks of 50 batches) and with a
whole-epoch sort.  ``--accuracy``: MR test accuracy of dense fused Adam vs the two sparse variants,
trained through ``fit`` (10 epochs, patience 2).  ``--set training.sparse_embeddings=true`` runs the whole
bench (end to end and step only) with wordconv's lazy Adam.

Results go to ``--results`` (bench/results/throughput.json; a dict of the last run incl. the ``metrics`` that
bench/compare.py checks) and a table between ``<!-- throughput:begin -->`` / ``<!-- throughput:end -->`` in
BENCHMARKS.md, unless ``--no-write`` or ``--limit`` (a smoke run): then nothing, except the JSON to a
``--results`` path given explicitly.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch
from rich.console import Console

from benchlib import machine, write_between  # bench/ is on sys.path

from wordconv.pipeline import fit, load_splits, resolve_config
from wordconv.tasks.base import EncodedTexts
from wordconv.training.lazy_adam import sparse_tables
from wordconv.training.trainer import build_optimizer, lr_factor

BEGIN, END, HEADING = "<!-- throughput:begin -->", "<!-- throughput:end -->", "## Training throughput (TextCNN)"
GOAL_FRACTION = 0.60  # of the fp32 matmul peak, end to end


# ------------------------------------------------------------------------------------------------ peak

def matmul_peak(sizes: list[int], repeats: int) -> dict:
    """fp32 ``torch.mm`` GFLOP/s per size (best of ``repeats`` after a warm-up) and the best of all."""
    per_size = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b, out=out)
            best = min(best, time.perf_counter() - t)
        per_size[n] = 2 * n ** 3 / best / 1e9
    return {"gflops": max(per_size.values()), "per_size": per_size, "repeats": repeats}


# ------------------------------------------------------------------------------------------------ FLOPs

def model_shape(model: torch.nn.Module) -> dict:
    enc = model.encoder
    return {"E": enc.embedding.dim, "F": enc.convs[0].out_channels,
            "widths": [c.kernel_size[0] for c in enc.convs], "pad": enc.pad, "C": model.output.out_features,
            "vocab": enc.embedding.table.num_embeddings,
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def batch_flops(B: int, T: int, real: int, s: dict) -> dict:
    """Counted and uncounted work of one training step on a (B, T) batch with ``real`` real tokens."""
    E, F, W, pad, C = s["E"], s["F"], s["widths"], s["pad"], s["C"]
    gemm = 2 * B * T * E * F * sum(W)
    head = 2 * B * F * len(W) * C
    counted = 3 * gemm + 3 * head
    nominal_conv = sum(2 * B * (T + 2 * pad - w + 1) * E * F * w for w in W)
    elementwise = (sum(B * (T + 2 * pad - w + 1) * F * (w - 1 + 3) for w in W)  # shift-adds, mask, max
                   + B * T * E  # embedding gradient scatter-add
                   + 12 * s["params"])  # Adam
    return {"counted": counted, "nominal": 3 * nominal_conv + 3 * head,
            "real_tokens": 3 * 2 * real * E * F * sum(W) + 3 * head, "elementwise": elementwise}


def sum_flops(shapes: list[tuple[int, int, int]], s: dict) -> dict:
    total = {"counted": 0, "nominal": 0, "real_tokens": 0, "elementwise": 0}
    for B, T, real in shapes:
        for k, v in batch_flops(B, T, real, s).items():
            total[k] += v
    return total


class BatchRecorder:
    """Wraps ``EncodedTexts.batches`` (in this process only) to record, for every shuffled (= training)
    pass, the (B, T, real tokens) of each batch the Trainer receives, and the training data object."""

    def __init__(self):
        self.epochs: list[list[tuple[int, int, int]]] = []
        self.train: EncodedTexts | None = None
        self._orig = EncodedTexts.batches

    def __enter__(self):
        rec, orig = self, self._orig

        def batches(data, batch_size, *, shuffle, generator=None):
            if not shuffle:
                yield from orig(data, batch_size, shuffle=shuffle, generator=generator)
                return
            rec.train = data
            shapes: list[tuple[int, int, int]] = []
            rec.epochs.append(shapes)
            for b in orig(data, batch_size, shuffle=shuffle, generator=generator):
                shapes.append((b["ids"].shape[0], b["ids"].shape[1], int(b["lengths"].sum())))
                yield b

        EncodedTexts.batches = batches
        return self

    def __exit__(self, *exc):
        EncodedTexts.batches = self._orig


# ------------------------------------------------------------------------------------------------ loops

def step_loop(model, optimizer, batches, cfg, total_steps: int):
    """The Trainer's step body (fp32: autocast is off for a word CNN), as a function of the batches."""
    constrain = getattr(model, "apply_constraints", None)
    total = torch.zeros((), dtype=torch.float64)

    def run(bs, step0=0):
        nonlocal total
        model.train()
        for i, batch in enumerate(bs):
            factor = lr_factor(cfg.schedule, step0 + i, total_steps, cfg.warmup, cfg.slanted_ratio)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            loss = model(**batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if constrain is not None:
                constrain()
            total = total + loss.detach().double() * len(batch["index"])
        float(total)
    return run


def timed(fn, *a) -> float:
    t = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t


def fresh_model(args, cfg, vocab_size: int, labels: list[str]):
    from wordconv.pipeline import build_model

    torch.manual_seed(cfg.training.seed)
    return build_model(cfg, vocab_size, labels)


def prepare_steps(args, cfg, train: EncodedTexts, vocab_size: int, labels: list[str], variant=None) -> dict:
    """A fresh model and optimizer (``variant`` may change them) over prebuilt batches of one epoch, warmed up."""
    gen = torch.Generator().manual_seed(cfg.training.seed + 1)
    batches = list(train.batches(cfg.training.batch_size, shuffle=True, generator=gen))
    model = fresh_model(args, cfg, vocab_size, labels)
    if cfg.training.sparse_embeddings:  # as Trainer.fit does
        for table in sparse_tables(model):
            table.sparse = True
    make_opt = lambda m: build_optimizer(m, cfg.training)  # noqa: E731
    if variant is not None:
        model, batches, make_opt = variant(model, batches, make_opt, cfg)
    optimizer = make_opt(model)
    run = step_loop(model, optimizer, batches, cfg.training, len(batches) * 2)
    run(batches[: args.warmup_steps])
    timed_batches = batches[: args.step_batches or len(batches)]
    return {"run": run, "batches": timed_batches, "all_seconds": [], "steps": len(timed_batches),
            "shapes": [(b["ids"].shape[0], b["ids"].shape[1], int(b["lengths"].sum())) for b in timed_batches]}


def time_round_robin(preps: dict[str, dict], repeats: int, s: dict) -> None:
    """Time every prepared loop once per round, ``repeats`` rounds (a busy machine slows them alike);
    keep the best round of each."""
    for _ in range(repeats):
        for p in preps.values():
            p["all_seconds"].append(timed(p["run"], p["batches"]))
    for p in preps.values():
        p["seconds"] = min(p["all_seconds"])
        p["ms_per_step"] = p["seconds"] / p["steps"] * 1e3
        p["flops"] = sum_flops(p["shapes"], s)
        p["gflops"] = p["flops"]["counted"] / p["seconds"] / 1e9


# ------------------------------------------------------------------------------------------------ variants
# Each takes (model, batches, make_optimizer, cfg) and returns them changed; they only touch objects of
# this process (nothing in src/): what a change in wordconv would do, measured before making it.

def sparse_pair(model, lr: float) -> "_Pair":
    """Sparse embedding gradient + SparseAdam on the table (lazy Adam: only the rows in the batch move),
    fused Adam on the other weights."""
    table = model.encoder.embedding.table
    table.sparse = True
    rest = [p for p in model.parameters() if p.requires_grad and p is not table.weight]
    return _Pair(torch.optim.Adam([{"params": rest, "lr": lr, "base_lr": lr}], lr=lr, fused=True),
                 torch.optim.SparseAdam([{"params": [table.weight], "lr": lr, "base_lr": lr}], lr=lr))


def v_sparse_embedding(model, batches, make_opt, cfg):
    """Embedding gradient as a sparse tensor, SparseAdam on the table, fused Adam on the rest."""
    return model, batches, lambda m: sparse_pair(m, cfg.training.lr)


def v_lazy_adam(model, batches, make_opt, cfg):
    """What ``training.sparse_embeddings=true`` does: sparse table gradients, wordconv's LazyAdam on everything."""
    for table in sparse_tables(model):
        table.sparse = True
    training = cfg.training.model_copy(update={"sparse_embeddings": True})
    return model, batches, lambda m: build_optimizer(m, training)


def v_foreach_adam(model, batches, make_opt, cfg):
    """torch.optim.Adam(foreach=True) instead of fused (the pre-fused default)."""
    lr = cfg.training.lr
    return model, batches, lambda m: torch.optim.Adam(
        [{"params": [p for p in m.parameters() if p.requires_grad], "lr": lr, "base_lr": lr}], lr=lr, foreach=True)


def v_pad8(model, batches, make_opt, cfg):
    """Batches padded to a multiple of 8 tokens (GEMM row count aligned)."""
    out = []
    for b in batches:
        T = b["ids"].shape[1]
        extra = (-T) % 8
        if extra:
            b = dict(b, ids=torch.nn.functional.pad(b["ids"], (0, extra)))
        out.append(b)
    return model, out, make_opt


def v_conv1d(model, batches, make_opt, cfg):
    """Stock F.conv1d per width (oneDNN) instead of wordconv's one-GEMM multi-width conv."""
    import wordconv.models.textcnn as tc

    def conv(x, weights, pad):
        xt = x.transpose(1, 2)
        return [torch.nn.functional.conv1d(xt, w, padding=pad).transpose(1, 2) for w in weights]

    orig = model.forward

    def fwd(*a, **k):  # autograd keeps the graph: only the forward needs the swap
        keep, tc.multi_width_conv = tc.multi_width_conv, conv
        try:
            return orig(*a, **k)
        finally:
            tc.multi_width_conv = keep

    model.forward = fwd
    return model, batches, make_opt


def v_bf16(model, batches, make_opt, cfg):
    """bf16 autocast on the CPU (AVX-512 BF16 here): not fp32 any more; its fraction is over the fp32 peak."""
    orig = model.forward

    def fwd(*a, **k):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return orig(*a, **k)

    model.forward = fwd
    return model, batches, make_opt


EXPERIMENTS = {
    "sparse embedding + SparseAdam": v_sparse_embedding,
    "training.sparse_embeddings (LazyAdam)": v_lazy_adam,
    "Adam foreach (not fused)": v_foreach_adam,
    "pad T to a multiple of 8": v_pad8,
    "nn.Conv1d per width": v_conv1d,
}
if any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")):
    EXPERIMENTS["bf16 autocast"] = v_bf16  # emulated (and ~7x slower) on a CPU without native bf16


def accuracy_check(args, cfg, splits, console) -> dict:
    """MR test accuracy with and without the sparse-embedding optimizer (through the normal fit path,
    with wordconv.training.trainer.build_optimizer replaced in this process)."""
    import wordconv.training.trainer as tr
    from wordconv.pipeline import evaluate_examples

    out = {}
    orig_build = tr.build_optimizer
    for name in ("dense fused Adam (default)", "sparse embedding + SparseAdam", "training.sparse_embeddings (LazyAdam)"):
        run_cfg = cfg
        if name.startswith("sparse"):
            tr.build_optimizer = lambda model, config: sparse_pair(model, config.lr)
        elif name.startswith("training.sparse"):
            run_cfg = resolve_config(cfg, ["training.sparse_embeddings=true"])
        try:
            art, res = fit(run_cfg, splits, console)
        finally:
            tr.build_optimizer = orig_build
        metrics, _ = evaluate_examples(art, splits.test)
        out[name] = {"test_accuracy": metrics["accuracy"], "best_epoch": res.best_epoch,
                     "epoch_seconds": [h["epoch_seconds"] for h in res.history]}
        console.print(f"  {name}: test accuracy {metrics['accuracy'] * 100:.2f}, epochs "
                      f"{[h['epoch_seconds'] for h in res.history]}")
    return out


class _Pair:
    """Two optimizers stepped as one (enough of the Optimizer interface for the Trainer)."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.param_groups = a.param_groups + b.param_groups

    def zero_grad(self, set_to_none=True):
        self.a.zero_grad(set_to_none)
        self.b.zero_grad(set_to_none)

    def step(self, closure=None):
        self.a.step()
        self.b.step()

    def state_dict(self):
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}


# ------------------------------------------------------------------------------------------------ main

def load(args, cfg):
    splits = load_splits(cfg)
    if args.limit:  # a smoke run: a random sample (the files list one class after the other)
        rng = random.Random(args.seed)
        splits = replace(splits, train=rng.sample(splits.train, min(args.limit, len(splits.train))),
                         dev=rng.sample(splits.dev, min(max(args.limit // 8, 50), len(splits.dev))),
                         test=rng.sample(splits.test, min(max(args.limit // 8, 50), len(splits.test))))
    return splits


def profile_steps(run, batches, n: int, top: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(batches[:n])
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def profile_pipeline(train: EncodedTexts, batch_size: int, top: int) -> str:
    prof = cProfile.Profile()
    prof.runcall(lambda: sum(1 for _ in train.batches(batch_size, shuffle=True,
                                                       generator=torch.Generator().manual_seed(0))))
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def profile_preprocessing(cfg, vocab, texts: list[str], top: int) -> tuple[str, float]:
    """cProfile of turning ``texts`` into ids as fit() does (Preprocessor, then Vocab.encode); and the
    plain rate in tokens/s (timed without the profiler)."""
    from wordconv.data.text import Preprocessor

    pre = Preprocessor(cfg.preprocessing)
    t = time.perf_counter()
    n = sum(len(vocab.encode(pre(x))) for x in texts)
    rate = n / (time.perf_counter() - t)
    prof = cProfile.Profile()
    prof.runcall(lambda: [vocab.encode(pre(x)) for x in texts])
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue(), rate


def table(r: dict) -> str:
    pk = r["peak_gflops"]
    lines = ["| measurement | seconds | GFLOP/s | fraction of fp32 matmul peak |", "|---|---|---|---|",
             f"| fp32 matmul peak (torch.mm, best of {r['peak']['repeats']}) | - | {pk:.1f} | 100 % |"]
    for key, label in (("step_only", "step only (prebuilt batches: fwd + bwd + Adam)"),
                       ("end_to_end", "**end to end** (epoch: bucketing, padding, steps)"),
                       ("with_preprocessing", "end to end incl. tokenization + vocab (spread over the epochs)")):
        m = r[key]
        lines.append(f"| {label} | {m['seconds']:.2f} | {m['gflops']:.1f} | **{m['fraction'] * 100:.1f} %** |")
    md = "\n".join(lines) + "\n\n"
    fl = r["epoch_flops"]
    md += (f"{r['data']}: {r['train_texts']:,} training texts, {r['steps_per_epoch']} steps of batch "
           f"{r['batch_size']} per epoch, mean padded length {r['mean_T']:.1f} tokens; counted "
           f"{fl['counted'] / 1e9:.1f} GFLOP per epoch (conv GEMM fwd + 2x bwd incl. the input gradient, head); "
           f"nominal wide-conv count {fl['nominal'] / 1e9:.1f} GFLOP (fraction "
           f"{r['end_to_end']['fraction_nominal'] * 100:.1f} % end to end); {fl['real_tokens'] / fl['counted'] * 100:.0f} % "
           f"of counted FLOPs on real tokens; pipeline alone {r['pipeline_only_seconds']:.2f} s per epoch; "
           f"Adam moves ~{r['adam_mb_per_step']:.0f} MB per step ({r['shape']['params']:,} parameters). "
           f"Goal: >= {GOAL_FRACTION * 100:.0f} % end to end.\n\n")
    if r.get("experiments"):
        md += ("| step-only variant (same texts) | ms/step | GFLOP/s (plain loop's count) | fraction | "
               "speed vs plain step loop |\n|---|---|---|---|---|\n")
        for name, e in r["experiments"].items():
            md += (f"| {name} | {e['ms_per_step']:.1f} | {e['gflops']:.1f} | {e['fraction'] * 100:.1f} % | "
                   f"{e['speedup']:.2f}x |\n")
        md += "\n"
    md += (f"Command: `python bench/throughput.py --data {r['data']} --epochs {r['epochs']}`, {r['date']}, "
           f"{r['machine']}.\n")
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="mr", help="a registry dataset (mr: fold --fold; imdb ...)")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--epochs", type=int, default=3, help="end-to-end epochs (the best epoch is reported)")
    ap.add_argument("--limit", type=int, default=None, help="training texts (smoke runs; writes nothing)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--peak-sizes", default="1024,2048,3072")
    ap.add_argument("--peak-repeats", type=int, default=5)
    ap.add_argument("--step-batches", type=int, default=None, help="timed step-only batches (default: an epoch)")
    ap.add_argument("--step-repeats", type=int, default=2)
    ap.add_argument("--warmup-steps", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="torch.profiler top ops of the step loop + cProfile")
    ap.add_argument("--profile-steps", type=int, default=20)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--experiments", action="store_true", help="step-only variants (see EXPERIMENTS)")
    ap.add_argument("--accuracy", action="store_true",
                    help="also train to convergence with dense vs sparse embedding Adam: test accuracy")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config overrides (a.b=c)")
    ap.add_argument("--progress", action="store_true", help="show the Trainer's progress bar (off: quiet)")
    ap.add_argument("--results", default=None,
                    help="results JSON (default bench/results/throughput.json; with --no-write only when given)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    console = Console(stderr=True)

    sizes = [int(x) for x in args.peak_sizes.split(",")]
    peak = matmul_peak(sizes, args.peak_repeats)
    console.print(f"fp32 matmul peak: {peak['gflops']:.1f} GFLOP/s on {threads} threads "
                  f"({', '.join(f'{n}: {g:.1f}' for n, g in peak['per_size'].items())})")

    cfg = resolve_config(None, list(args.sets) + [f"training.epochs={args.epochs}", "training.patience=null",
                                                  f"training.threads={threads}"],
                         data=args.data, model="textcnn", fold=args.fold if args.data == "mr" else None,
                         data_dir=args.data_dir, seed=args.seed, progress=args.progress)
    splits = load(args, cfg)
    with BatchRecorder() as rec:
        art, result = fit(cfg, splits, console)
    train = rec.train
    s = model_shape(art.model)
    hist = result.history
    epoch_s = [h["epoch_seconds"] for h in hist]
    flops = [sum_flops(ep, s) for ep in rec.epochs]
    best = min(range(len(hist)), key=lambda i: epoch_s[i] / flops[i]["counted"])  # the fastest epoch
    e2e_s, fl, shapes = epoch_s[best], flops[best], rec.epochs[best]
    prep_s = art.meta["training"]["preprocess_seconds"]
    console.print(f"end to end: epochs {epoch_s} s (dev eval {[h['eval_seconds'] for h in hist]} s, not counted), "
                  f"tokenization + vocab {prep_s:.2f} s")

    pipe = [timed(lambda: sum(1 for _ in train.batches(cfg.training.batch_size, shuffle=True,
                                                       generator=torch.Generator().manual_seed(i))))
            for i in range(2)]
    console.print(f"pipeline only (bucketing + padding, no model): {min(pipe):.3f} s per epoch "
                  f"({min(pipe) / e2e_s * 100:.1f} % of the end-to-end epoch)")

    vocab, vocab_size, labels = art.vocab, len(art.vocab), list(art.labels)
    del art
    preps = {"plain": prepare_steps(args, cfg, train, vocab_size, labels)}
    if args.experiments:
        for name, variant in EXPERIMENTS.items():
            preps[name] = prepare_steps(args, cfg, train, vocab_size, labels, variant)
    time_round_robin(preps, args.step_repeats, s)
    steps = preps["plain"]

    # the peak once more, after the training: a shared machine is as busy for one as for the other
    peak2 = matmul_peak(sizes, args.peak_repeats)
    peak["after"] = peak2["gflops"]
    peak["before"] = peak["gflops"]
    pk = peak["gflops"] = max(peak["gflops"], peak2["gflops"])
    console.print(f"fp32 matmul peak again: {peak2['gflops']:.1f} GFLOP/s; using {pk:.1f}")

    all_counted = sum(f["counted"] for f in flops)
    e2e = {"seconds": e2e_s, "gflops": fl["counted"] / e2e_s / 1e9, "all_epoch_seconds": epoch_s,
           "fraction_nominal": fl["nominal"] / e2e_s / 1e9 / pk, "epoch": best + 1}
    e2e["fraction"] = e2e["gflops"] / pk
    with_prep = {"seconds": prep_s + sum(epoch_s), "gflops": all_counted / (prep_s + sum(epoch_s)) / 1e9}
    with_prep["fraction"] = with_prep["gflops"] / pk
    steps["fraction"] = steps["gflops"] / pk
    console.print(f"end to end: epoch {best + 1}, {fl['counted'] / 1e9:.1f} GFLOP counted in {e2e_s:.2f} s -> "
                  f"{e2e['gflops']:.1f} GFLOP/s = [bold]{e2e['fraction'] * 100:.1f} %[/] of peak (nominal wide-conv "
                  f"count: {e2e['fraction_nominal'] * 100:.1f} %); incl. tokenization + vocab over "
                  f"{len(hist)} epoch(s): {with_prep['fraction'] * 100:.1f} %")
    console.print(f"step only: {steps['steps']} steps, {steps['ms_per_step']:.1f} ms/step, {steps['gflops']:.1f} "
                  f"GFLOP/s = [bold]{steps['fraction'] * 100:.1f} %[/] of peak (rounds: "
                  f"{', '.join(f'{x:.2f}' for x in steps['all_seconds'])} s)")
    adam_mb = 28 * s["params"] / 1e6
    mean_T = statistics.fmean(T for _, T, _ in shapes)
    console.print(f"shape: E={s['E']} F={s['F']} widths={s['widths']} pad={s['pad']} C={s['C']} vocab={s['vocab']:,} "
                  f"params={s['params']:,}; mean padded T {mean_T:.1f}, real tokens "
                  f"{fl['real_tokens'] / fl['counted'] * 100:.0f} % of counted FLOPs; uncounted elementwise "
                  f"~{fl['elementwise'] / 1e9:.2f} GFLOP/epoch; fused Adam moves ~{adam_mb:.0f} MB/step")

    experiments = {}
    for name, e in preps.items():
        if name == "plain":
            continue
        # the same texts: the plain loop's counted FLOPs over this loop's time (padding a variant adds is
        # not useful work), and the wall-time ratio
        e["gflops"] = steps["flops"]["counted"] / e["seconds"] / 1e9
        e["fraction"] = e["gflops"] / pk
        e["speedup"] = steps["seconds"] / e["seconds"]
        console.print(f"  {name}: {e['ms_per_step']:.1f} ms/step, {e['gflops']:.1f} GFLOP/s = "
                      f"{e['fraction'] * 100:.1f} % of peak, {e['speedup']:.2f}x the plain step loop")
        experiments[name] = {k: e[k] for k in ("ms_per_step", "gflops", "fraction", "speedup", "seconds")}
    bucketing = {}
    if args.experiments:  # bucketing: the share of counted FLOPs on real tokens, chunks of 50 batches vs all
        from wordconv.data.batching import bucket_batches
        for factor in (50, 10**9):
            idx = bucket_batches(train.lengths, cfg.training.batch_size, shuffle=True,
                                 generator=torch.Generator().manual_seed(0), bucket_factor=factor)
            sh = [(len(b), max(max(train.lengths[i] for i in b), train.min_length),
                   sum(train.lengths[i] for i in b)) for b in idx]
            f2 = sum_flops(sh, s)
            share = f2["real_tokens"] / f2["counted"]
            bucketing[f"bucket_factor {factor if factor < 10**9 else 'whole epoch'}"] = share
            console.print(f"  bucket_factor {factor if factor < 10**9 else 'whole epoch'}: real-token share of "
                          f"counted FLOPs {share * 100:.1f} %")

    if args.profile:
        console.print(f"[bold]torch.profiler, {args.profile_steps} steps (self CPU time):[/]")
        print(profile_steps(steps["run"], steps["batches"], args.profile_steps, args.top))
        console.print("[bold]cProfile of one pipeline-only epoch:[/]")
        print(profile_pipeline(train, cfg.training.batch_size, args.top))
        text, rate = profile_preprocessing(cfg, vocab, [ex.text for ex in splits.train[:5000]], args.top)
        console.print(f"[bold]cProfile of tokenization + vocabulary lookup (5,000 training texts; "
                      f"{rate:,.0f} tokens/s without the profiler):[/]")
        print(text)
    del preps
    accuracy = accuracy_check(args, resolve_config(cfg, ["training.epochs=10", "training.patience=2"]),
                              splits, console) if args.accuracy else None

    r = {"data": args.data, "fold": args.fold if args.data == "mr" else None, "train_texts": len(train),
         "epochs": len(hist), "batch_size": cfg.training.batch_size, "threads": threads,
         "steps_per_epoch": len(shapes), "mean_T": mean_T, "shape": s, "peak": peak, "peak_gflops": pk,
         "end_to_end": e2e, "with_preprocessing": with_prep, "preprocess_seconds": prep_s,
         "pipeline_only_seconds": min(pipe),
         "step_only": {k: steps[k] for k in ("seconds", "all_seconds", "steps", "ms_per_step", "gflops", "fraction")},
         "epoch_flops": fl, "adam_mb_per_step": adam_mb, "experiments": experiments, "bucketing_real_token_share": bucketing,
         "accuracy": accuracy,
         "limit": args.limit, "date": str(date.today()), "machine": machine()}
    # the flat keys bench/compare.py checks
    r["metrics"] = {"peak_gflops": pk, "end_to_end_gflops": e2e["gflops"], "end_to_end_fraction": e2e["fraction"],
                    "step_only_gflops": steps["gflops"], "step_only_fraction": steps["fraction"]}
    print(table(r))
    if args.results or not (args.limit or args.no_write):  # an explicit --results is written even by a smoke run
        path = Path(args.results or "bench/results/throughput.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r, indent=1, default=str) + "\n")
    if not (args.limit or args.no_write):
        write_between(table(r), BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
