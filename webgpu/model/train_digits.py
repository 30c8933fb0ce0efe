"""Train the digit recogniser that webgpu/index.html runs, and export it to ONNX.

The data is scikit-learn's bundled `load_digits` set (1,797 handwritten digits as 8x8 images with
values 0..16; nothing is downloaded). A quarter of it, stratified, is held out and never used
for training; the accuracy printed at the end is measured on that part, with onnxruntime on the
exported file when onnxruntime is installed, else with torch.

The model takes the raw 0..16 pixel values, shape [batch, 1, 8, 8] float32 (input "pixels"), and
returns class probabilities, shape [batch, 10] (output "probabilities"). The split, the seed and
the measured accuracy are written into the ONNX file's metadata, so a test can check the
committed file against the same held-out samples.

Reproducible: fixed seed, one CPU thread, deterministic algorithms. Training needs torch (CPU
build), onnx, onnxscript, numpy and scikit-learn; it takes well under a minute on two cores:

    python -m venv /tmp/train-venv
    /tmp/train-venv/bin/pip install torch==2.13.0 onnx onnxscript numpy scikit-learn onnxruntime \
        --extra-index-url https://download.pytorch.org/whl/cpu
    /tmp/train-venv/bin/python webgpu/model/train_digits.py  # writes webgpu/model/digits.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

SEED = 0
"""Seeds torch and the train/held-out split."""
TEST_SIZE = 0.25
"""Share of load_digits held out (stratified by class)."""
OPSET = 17
HERE = Path(__file__).resolve().parent


class DigitNet(nn.Module):
    """A small CNN (about 40k parameters) for 8x8 digits with values 0..16."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 32 x 4 x 4
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 64 x 2 x 2
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(256, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(pixels / 16.0))


class WithSoftmax(nn.Module):
    """What is exported: the network followed by softmax, so the page gets probabilities."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(pixels), dim=1)


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test); images as float32 [n, 1, 8, 8] in 0..16."""
    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=TEST_SIZE, random_state=SEED, stratify=digits.target
    )
    return x_train, x_test, y_train.astype(np.int64), y_test.astype(np.int64)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to one pixel, then scale its ink a little or make it black and white:
    drawn digits are never centred like the scanned ones, nor as grey."""
    out = torch.empty_like(batch)
    shifts = torch.randint(-1, 2, (len(batch), 2), generator=generator)
    gains = 0.8 + 0.4 * torch.rand(len(batch), 1, 1, 1, generator=generator)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        out[i] = torch.roll(batch[i], shifts=(dy, dx), dims=(1, 2))
        # What rolled over an edge comes back on the other side: clear it.
        if dy:
            out[i, :, 0 if dy > 0 else -1, :] = 0
        if dx:
            out[i, :, :, 0 if dx > 0 else -1] = 0
    # Half of the images become ink-or-paper, like a pen stroke: drawn digits have no grey levels
    # but the anti-aliased edges.
    thresholds = torch.randint(3, 11, (len(batch), 1, 1, 1), generator=generator)
    binary = torch.rand(len(batch), 1, 1, 1, generator=generator) < 0.5
    out = torch.where(binary, (out >= thresholds).float() * 16, out * gains)
    return torch.clamp(out, 0, 16)


def train(x: np.ndarray, y: np.ndarray, epochs: int) -> DigitNet:
    generator = torch.Generator().manual_seed(SEED)
    model = DigitNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=epochs * ((len(x) + 63) // 64)
    )
    images, labels = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), 64):
            index = order[start : start + 64]
            optimizer.zero_grad()
            loss = loss_fn(model(augment(images[index], generator)), labels[index])
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def export(model: DigitNet, out: Path, metadata: dict[str, Any]) -> None:
    wrapped = WithSoftmax(model).eval()
    program = torch.onnx.export(
        wrapped,
        (torch.zeros(2, 1, 8, 8),),
        input_names=["pixels"],
        output_names=["probabilities"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    assert program is not None
    proto = program.model_proto
    proto.doc_string = "Digit recogniser for 8x8 load_digits images (values 0..16); see train_digits.py"
    proto.producer_name = "foundry-desk train_digits.py"
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))


def onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"pixels": x})
    return float((probabilities.argmax(1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "digits.onnx")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    x_train, x_test, y_train, y_test = split()
    model = train(x_train, y_train, args.epochs)
    with torch.no_grad():
        torch_accuracy = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    metadata = {
        "dataset": "sklearn.datasets.load_digits",
        "split": "train_test_split(stratify=target)",
        "test_size": TEST_SIZE,
        "seed": SEED,
        "held_out_samples": len(y_test),
        "held_out_accuracy": f"{torch_accuracy:.4f}",
        "input": "pixels float32 [batch,1,8,8], values 0..16 (ink = high)",
        "output": "probabilities float32 [batch,10]",
        "torch": torch.__version__,
        "epochs": args.epochs,
    }
    export(model, args.out, metadata)
    runtime_accuracy = onnx_accuracy(args.out, x_test, y_test)
    report = {
        "out": str(args.out),
        "bytes": args.out.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_samples": len(y_train),
        "held_out_samples": len(y_test),
        "held_out_accuracy_torch": round(torch_accuracy, 4),
        "held_out_accuracy_onnxruntime": None if runtime_accuracy is None else round(runtime_accuracy, 4),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
