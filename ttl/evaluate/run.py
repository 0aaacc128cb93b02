"""`python -m ttl.evaluate checkpoints=... [data.path=...]`: perplexity per checkpoint
(docs/evaluation.md), by default on the run's own held-out data (its config.yaml). Writes
evaluation.csv, evaluation.md and perplexity.png to `output_dir`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ttl.checkpoints import Checkpoint, find_checkpoints, load_checkpoint, resolve_device
from ttl.cli import command_config, require
from ttl.data.fingerprint import tokenizer_fingerprint
from ttl.data.manifest import MANIFEST
from ttl.data.packing import check_packing
from ttl.data.sources import TextSource, iter_documents, open_corpus, resolve_source
from ttl.errors import TTLError
from ttl.evaluate.config import EvaluateConfig
from ttl.evaluate.perplexity import (
    METHODS,
    packed_blocks,
    perplexity_packed,
    perplexity_sliding,
    token_stream,
)
from ttl.evaluate.report import EvaluationRow, evaluations_table, plot_evaluations, write_csv
from ttl.rundir import EVALUATION, EVALUATION_CSV, evaluation_dir, load_config

USAGE = "python -m ttl.evaluate checkpoints=<run dir | step dir | Hub id> data.path=<file or dir>"


def _setting(explicit, run_cfg: DictConfig | None, key: str, fallback):
    """The user's value, else the training run's (config.yaml), else `fallback`."""
    if explicit is not None:
        return explicit
    if run_cfg is not None and OmegaConf.select(run_cfg, key) is not None:
        return OmegaConf.select(run_cfg, key)
    return fallback


def evaluation_source(path: str, split: str, text_column: str, val_fraction: float,
                      val_documents: int | None = None) -> TextSource:
    """Where the evaluation documents come from: a named split of the source (`validation`,
    when it has none: the documents the training run held out, `resolve_source`), or `all`:
    every document of every split."""
    local = Path(path).expanduser()
    if (local / MANIFEST).is_file():
        raise TTLError(f"data.path={path} holds prepared token shards ({MANIFEST}); evaluation "
                       "reads raw text: pass data.path=<the text files or Hub dataset>")
    if split != "all":
        return resolve_source(path, split, text_column, "train", "validation", val_fraction, val_documents)
    corpus = open_corpus(path)
    return TextSource(corpus, tuple(corpus.splits), text_column)


def evaluate_checkpoints(checkpoints: Sequence[Checkpoint], texts: Callable[[], Iterable[str]],
                         method: str = "packed", packing: str = "ttl", seq_len: int | None = None,
                         stride: int | None = None, max_tokens: int | None = None, batch_size: int = 8,
                         device: str = "auto", dtype: str = "float32", tokenizer: str | None = None,
                         log: Callable[[str], None] = print) -> list[EvaluationRow]:
    """Perplexity of each checkpoint on the documents `texts()` yields, in the given order; the
    text is tokenized once per distinct tokenizer. `seq_len` defaults to each model's
    `max_position_embeddings`; `stride` (sliding only) to half of `seq_len`."""
    if method not in METHODS:
        raise TTLError(f"method={method!r}: choose one of {', '.join(METHODS)}")
    if batch_size < 1:
        raise TTLError(f"batch_size={batch_size}: must be at least 1")
    if max_tokens is not None and max_tokens < 2:
        raise TTLError(f"data.max_tokens={max_tokens}: must be at least 2")
    if stride is not None and method != "sliding":
        raise TTLError(f"stride={stride} applies to method=sliding only (method={method})")
    check_packing(packing)
    device = resolve_device(device)
    cache: dict[tuple, object] = {}
    rows = []
    for checkpoint in checkpoints:
        model, tok = load_checkpoint(checkpoint, device, dtype, tokenizer)
        context = model.config.max_position_embeddings
        length = seq_len or context
        if length > context:
            raise TTLError(f"seq_len={length} exceeds the model's max_position_embeddings={context} "
                           f"({checkpoint.name})")
        step = stride if stride is not None else max(1, length // 2)
        key = (tokenizer_fingerprint(tok), method, length)
        if key not in cache:
            cache[key] = (packed_blocks(texts(), tok, packing, length, max_tokens) if method == "packed"
                          else token_stream(texts(), tok, packing, max_tokens))
        start = time.perf_counter()
        result = (perplexity_packed(model, cache[key], batch_size) if method == "packed"
                  else perplexity_sliding(model, cache[key], length, step, batch_size))
        log(f"{checkpoint.name}: perplexity {result.ppl:.2f} over {result.tokens:,} tokens "
            f"({method}, seq_len {length}{f', stride {step}' if method == 'sliding' else ''}; "
            f"{time.perf_counter() - start:.1f} s)")
        rows.append(EvaluationRow(
            checkpoint=checkpoint.source, revision=checkpoint.revision, step=checkpoint.step,
            tokens=checkpoint.tokens, perplexity=result.ppl, loss=result.loss,
            eval_tokens=result.tokens, method=method, seq_len=length,
            stride=step if method == "sliding" else None, val_ppl=checkpoint.val_ppl,
            energy_kwh=checkpoint.energy_kwh, emissions_kg_co2eq=checkpoint.emissions_kg_co2eq,
            wall_time_s=checkpoint.wall_time_s, config_hash=checkpoint.config_hash,
        ))
        del model
    return rows


def evaluate(cfg: DictConfig | Mapping, log: Callable[[str], None] = print) -> list[EvaluationRow]:
    """Run an evaluation (`EvaluateConfig`'s keys: the command line's config, or a mapping of the
    keys to change, e.g. `{"checkpoints": "runs/quickstart"}`), write its files, return the rows."""
    cfg = cfg if isinstance(cfg, DictConfig) else command_config(EvaluateConfig, cfg)
    require(cfg, "checkpoints", USAGE)
    if cfg.method not in METHODS:
        raise TTLError(f"method={cfg.method!r}: choose one of {', '.join(METHODS)}")
    checkpoints = find_checkpoints(cfg.checkpoints, list(cfg.revisions), cfg.tokens_per_step)
    local_run = Path(cfg.checkpoints).expanduser()
    run_cfg = load_config(local_run) if local_run.is_dir() else None
    data_path = _setting(cfg.data.path, run_cfg, "data.path", None)
    if data_path is None:
        why = ("no training config.yaml beside it names its data" if local_run.is_dir() else
               "it is not a local directory, so it is taken as a Hub model id")
        raise TTLError(f"data.path is required for checkpoints={cfg.checkpoints} ({why}): {USAGE}")
    source = evaluation_source(
        str(data_path), cfg.data.split,
        _setting(cfg.data.text_column, run_cfg, "data.text_column", "text"),
        _setting(cfg.data.val_fraction, run_cfg, "data.val_fraction", 0.01),
        _setting(cfg.data.val_documents, run_cfg, "data.val_documents", None),
    )
    # Default context: the run's training blocks (seq_len), else each model's own context.
    seq_len = cfg.seq_len or (OmegaConf.select(run_cfg, "data.seq_len") if run_cfg else None)
    log(f"evaluating {len(checkpoints)} checkpoint(s) on {source.describe()}")
    rows = evaluate_checkpoints(
        checkpoints, lambda: iter_documents(source), method=cfg.method,
        packing=_setting(cfg.data.packing, run_cfg, "data.packing", "ttl"), seq_len=seq_len,
        stride=cfg.stride, max_tokens=cfg.data.max_tokens, batch_size=cfg.batch_size,
        device=cfg.device, dtype=cfg.dtype, tokenizer=cfg.tokenizer, log=log,
    )
    output = Path(cfg.output_dir) if cfg.output_dir else (
        evaluation_dir(local_run) if run_cfg is not None and not (local_run / "config.json").is_file()
        else Path(EVALUATION))
    write_csv(rows, output / EVALUATION_CSV)
    table = evaluations_table(rows)
    (output / "evaluation.md").write_text(table)
    plot_evaluations(rows, output / "perplexity.png", title=f"{cfg.checkpoints} ({cfg.method})")
    log(table)
    log(f"wrote {output / 'evaluation.csv'}, {output / 'evaluation.md'}, {output / 'perplexity.png'}")
    return rows

