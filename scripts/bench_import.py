"""`tension-monitor import` of a large file: wall time, rate, peak memory (issue 12 item 3).

    .venv/bin/python scripts/bench_import.py [--rows 20000] [--processes 2] [--no-tag]

Writes a JSONL file of --rows distinct articles (the training examples, each copy with
its own title and URL) plus 10% duplicates and 2% malformed rows, then runs the real
command against a fresh SQLite store and prints its output's last line, the wall time,
and the peak resident memory of the largest process (the command or one of its tagging
workers; `ru_maxrss` of the children). Aim: peak under 600 MB, flat in the file size.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from bench_processes import examples  # noqa: E402


def write_file(path: Path, rows: int, rng: random.Random) -> None:
    texts = examples()
    good = [json.dumps({"url": f"https://history.example/{n}", "title": f"{texts[n % len(texts)][0]} ({n})",
                        "text": texts[n % len(texts)][1], "published": f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T08:00:00Z",
                        "source": f"Source {n % 40}"}) for n in range(rows)]
    lines = good + rng.sample(good, rows // 10)
    rng.shuffle(lines)
    for _ in range(rows * 2 // 100):
        lines.insert(rng.randrange(len(lines)), '{"title": "broken row", "url": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--no-tag", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source, config = Path(tmp) / "history.jsonl", Path(tmp) / "bench.toml"
        write_file(source, args.rows, random.Random(1))
        config.write_text(f'root = "{REPO}"\n[storage]\nurl = "sqlite:///{tmp}/bench.db"\n')
        command = [str(REPO / ".venv/bin/tension-monitor"), "--config", str(config), "import", str(source),
                   "--processes", str(args.processes), *(["--no-tag"] if args.no_tag else [])]
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{source.stat().st_size / 1e6:.1f} MB file, {args.rows:,} distinct rows: exit {done.returncode}")
        print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:])
        print(f"bad rows named on stderr: {sum(1 for line in done.stderr.splitlines() if line.startswith(str(source)))}")
        print(f"wall {seconds:.1f} s ({args.rows / seconds:.1f} rows/s), peak RSS of the largest process {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
