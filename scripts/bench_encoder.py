"""Benchmark the sentence encoder (monitor/encoder.py, models/encoder/).

Prints, in one run:
  1. session + tokenizer load time and the RSS the loaded encoder adds;
  2. embed_documents texts/second on ~300-word news texts (the training examples, cut or
     joined to 300 words, so two ~180-word chunks each), for each --threads value;
  3. embed() sentences/second on the same texts' sentences.

    .venv/bin/python scripts/bench_encoder.py [--n 300] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ENCODER = REPO / "models" / "encoder"


def rss_mb() -> float:
    """Current resident set size from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def news_texts(n: int, words: int = 300) -> list[str]:
    """Training texts as a stream of words, cut into n texts of `words` words."""
    stream: list[str] = []
    for path in sorted((REPO / "models" / "training").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            stream += f"{record.get('title', '')}. {record['text']}".split()
    return [" ".join(stream[i * words : (i + 1) * words]) for i in range(min(n, len(stream) // words))]


def best_of(rounds: int, fn) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="texts per measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="repeat each measurement, keep the best")
    args = parser.parse_args()

    import numpy  # noqa: F401  (loaded before measuring, the project imports it anyway)

    before = rss_mb()
    start = time.perf_counter()
    from monitor.encoder import load_encoder

    encoder = load_encoder(ENCODER, threads=args.threads[0])
    load_s = time.perf_counter() - start
    encoder.embed(["warm up"])
    print(f"import + load: {load_s:.2f} s; RSS added by the loaded encoder: {rss_mb() - before:.0f} MB")

    texts = news_texts(args.n)
    sentences = [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s) >= 20]
    print(f"{len(texts)} texts of 300 words; {len(sentences)} sentences")
    for threads in args.threads:
        encoder = load_encoder(ENCODER, threads=threads)
        docs_s = best_of(args.rounds, lambda: encoder.embed_documents(texts))
        sents_s = best_of(args.rounds, lambda: encoder.embed(sentences))
        print(
            f"threads={threads}: embed_documents {len(texts) / docs_s:.1f} texts/s; "
            f"embed {len(sentences) / sents_s:.0f} sentences/s; RSS now {rss_mb():.0f} MB (arena keeps its peak)"
        )


if __name__ == "__main__":
    main()
