"""Writes one metrics row per logged chunk to ``metrics.jsonl``, ``metrics.csv``, TensorBoard and, optionally,
Weights & Biases."""

from __future__ import annotations

import csv
import json
import math
import os
import uuid
from typing import Any

from rlx.config import ConfigError


def _clean(value: Any) -> Any:
    """JSON-safe scalar: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5, 2]`` -> ``'1-3, 5, 2'`` (runs of consecutive numbers, in the given order)."""
    parts: list[list[int]] = []
    for n in numbers:
        if parts and n == parts[-1][-1] + 1:
            parts[-1].append(n)
        else:
            parts.append([n])
    return ", ".join(f"{p[0]}-{p[-1]}" if len(p) > 1 else str(p[0]) for p in parts)


def read_metrics(run_dir: str) -> list[dict]:
    """The rows of ``RUN_DIR/metrics.jsonl`` (an empty list if there are none). A last line cut short by a
    killed process is ignored; any other line that is not a row (a JSON object with an integer ``chunk``)
    is a ConfigError naming it, since the rows after it would be lost or misread."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if all(not rest.strip() for rest in lines[number:]):
                break  # only the final write can be partial: rows are appended and fsynced one by one
            row = None
        if not (isinstance(row, dict) and isinstance(row.get("chunk"), int)):
            raise ConfigError(f"{path}: line {number} is not a metrics row (a JSON object with a 'chunk' number)")
        rows.append(row)
    return rows


class WandbLogger:
    """Logs rows to one Weights & Biases run at ``step = env_steps``. The run's id is kept in ``RUN_DIR/wandb_id``,
    so a resumed rlx run continues the same W&B run (W&B ignores rows at steps it has already seen, so chunks
    redone after the restored checkpoint stay as first logged there; ``metrics.jsonl`` is the record)."""

    def __init__(self, run_dir: str, settings: Any, config: dict, default_group: str | None = None):
        import wandb

        id_path = os.path.join(run_dir, "wandb_id")
        if os.path.exists(id_path):
            with open(id_path) as f:
                run_id = f.read().strip()
        else:
            run_id = uuid.uuid4().hex[:12]
            with open(id_path + ".tmp", "w") as f:
                f.write(run_id)
            os.replace(id_path + ".tmp", id_path)
        self._run = wandb.init(
            project=settings.project,
            entity=settings.entity,
            group=settings.group or default_group,
            mode=settings.mode,
            dir=run_dir,
            id=run_id,
            resume="allow",
            name=os.path.basename(os.path.abspath(run_dir)),
            config=config,
            reinit="create_new",  # a sweep logs several runs from one process
        )

    def log(self, row: dict) -> None:
        values = {k: v for k, v in row.items() if k not in ("chunk", "env_steps") and isinstance(v, (int, float))}
        self._run.log(values, step=row["env_steps"])

    def close(self, exit_code: int = 0) -> None:
        """Finishes the W&B run; a non-zero ``exit_code`` (an interrupted or diverged rlx run) shows it as failed."""
        self._run.finish(exit_code=exit_code)


class MetricsWriter:
    """Appends rows; on resume, first drops rows of chunks after the restored checkpoint."""

    def __init__(
        self,
        run_dir: str,
        tensorboard: bool = True,
        resume_after_chunk: int | None = None,
        wandb: WandbLogger | None = None,
    ):
        self.run_dir = run_dir
        self._wandb = wandb
        self._jsonl = os.path.join(run_dir, "metrics.jsonl")
        self._csv = os.path.join(run_dir, "metrics.csv")
        self.rows: list[dict] = []
        purge_step = None
        if resume_after_chunk is not None and (resume_after_chunk > 0 or os.path.exists(self._jsonl)):
            self.rows = [r for r in read_metrics(run_dir) if r["chunk"] <= resume_after_chunk]
            chunks = [r["chunk"] for r in self.rows]
            if chunks != list(range(1, resume_after_chunk + 1)):  # each chunk's row is written before its checkpoint
                found = f"are for chunks {_ranges(chunks)}, not one per chunk" if chunks else "are missing"
                raise ConfigError(
                    f"{self._jsonl}: the restored checkpoint is after chunk {resume_after_chunk}, but the rows up to it "
                    f"{found} (was the file edited or removed?); the log was not changed"
                )
            self._rewrite_jsonl()
            self._rewrite_csv()
            purge_step = self.rows[-1]["env_steps"] + 1 if self.rows else 0
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(run_dir, "tensorboard"), purge_step=purge_step)

    def _rewrite_jsonl(self) -> None:
        tmp = self._jsonl + ".tmp"
        with open(tmp, "w") as f:
            for row in self.rows:
                f.write(json.dumps(row) + "\n")
        os.replace(tmp, self._jsonl)

    def _rewrite_csv(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        tmp = self._csv + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        os.replace(tmp, self._csv)

    def write(self, row: dict) -> None:
        row = {k: _clean(v) for k, v in row.items()}
        self.rows.append(row)
        with open(self._jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._rewrite_csv()
        if self._tb is not None:
            for key, value in row.items():
                if key not in ("chunk", "env_steps") and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, global_step=row["env_steps"])
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(row)

    def close(self, exit_code: int = 0) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.close(exit_code)
