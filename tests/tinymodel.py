"""Write a tiny but real ONNX Runtime GenAI chat model for tests.

No model hub is reachable from CI, yet the app has to be tested against the real Foundry
Local runtime: loading a model, chatting in-process and over HTTP, streaming, stopping,
switching models and context-length errors. :func:`build_model` writes, in well under a
second, a model folder the runtime loads like any downloaded model, but whose reply is
known in advance, so tests can compare text exactly.

How the model always says the same thing, even when the server samples:

* The tokenizer is a hand-written byte-level BPE (GPT-2 style): 256 byte tokens, so any
  prompt tokenizes, plus one token per word of the answer, plus the chat markers.
* The chat template always ends with ``<|assistant|>``. The graph writes, for every token
  it sees, its absolute position if it is that marker and -1 otherwise into the KV cache
  (one head of size 1). The largest value in the cache is the position of the latest
  marker, so the number of tokens generated since then is ``length - 1 - max``: that
  counter indexes a table of answer tokens. A counter, unlike a bigram table, lets words
  repeat in the answer.
* Logits are 0 for the chosen token and ``-_MARGIN`` for every other, so every sampler
  (any temperature, top-k, top-p, penalties) picks the chosen token, and no ``exp`` can
  overflow.
* With ``width > 0`` a real MLP (embedding, ``depth`` Tanh layers, projection) adds its
  output to the logits, scaled so it never moves more than 1: benchmarks then measure real
  matrix products, and the reply does not change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # what opset 17 was released with; newer IR versions may outrun the runtime
_SEED = 0
_MARGIN = 1000.0  # logit gap between the scripted token and every other token
EOS = "<|endoftext|>"
_ASSISTANT = "<|assistant|>"
SPECIAL_TOKENS = (EOS, "<|system|>", "<|user|>", _ASSISTANT, "<|end|>")
# Always ends with the assistant marker, even without add_generation_prompt, because the
# graph counts answer tokens from the last marker.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}" + _ASSISTANT
)
MODEL_FILE = "model.onnx"
# MLP weights live beside the graph, as in real models: serializing, checking and saving a
# small graph instead of an 80 MB protobuf makes the 20M-parameter build several times faster.
_WEIGHTS_FILE = "model.onnx.data"


@dataclass(frozen=True)
class Vocab:
    """Token table of one model and the token ids the graph scripts."""

    tokens: dict[str, int]
    """Byte-level token string to id, bytes first, then answer words, then specials."""
    answer_ids: tuple[int, ...]
    """The answer, one id per word, as first said."""
    loop_ids: tuple[int, ...]
    """The answer as repeated by an endless model: the first word gets a leading space."""

    @property
    def size(self) -> int:
        """Number of tokens, i.e. the width of the logits."""
        return len(self.tokens)

    @property
    def eos_id(self) -> int:
        """End of sequence: ends generation."""
        return self.tokens[EOS]

    @property
    def assistant_id(self) -> int:
        """The marker after which the answer starts."""
        return self.tokens[_ASSISTANT]


def build_model(
    dest: Path,
    answer: str,
    *,
    endless: bool = False,
    width: int = 0,
    depth: int = 0,
    context_length: int = 512,
) -> Path:
    """Write a model folder that answers any prompt with exactly ``answer``; return it.

    Args:
        dest: Folder to write (created, files overwritten).
        answer: The reply, split into one token per word (with its leading whitespace).
        endless: Repeat the answer instead of ending with EOS, so that generation runs
            until the token budget: for testing Stop and streaming throughput.
        width: Hidden size of an MLP whose tiny contribution to the logits gives the model
            real compute to benchmark; 0 for none.
        depth: Number of ``width x width`` Tanh layers of that MLP (needs ``width > 0``).
            ``width=1024, depth=19`` is about 20M parameters.
        context_length: Context window written to ``genai_config.json``, so that a small
            value lets tests provoke "prompt too long" errors.
    """
    _check_arguments(answer, width, depth, context_length)
    vocab = _make_vocab(answer)
    weights = _mlp_weights(vocab.size, width, depth)
    dest.mkdir(parents=True, exist_ok=True)
    write_json(dest / "genai_config.json", genai_config(vocab, context_length))
    write_json(dest / "tokenizer.json", tokenizer_json(vocab))
    write_json(dest / "tokenizer_config.json", tokenizer_config(context_length))
    _write_weights(dest / _WEIGHTS_FILE, weights)
    onnx.save_model(_make_model(vocab, endless=endless, weights=weights), dest / MODEL_FILE)
    # By path, so that the checker finds the weights file next to the graph.
    onnx.checker.check_model(dest / MODEL_FILE)
    return dest


def parameter_count(dest: Path) -> int:
    """Count the float weights of a model written by :func:`build_model`.

    Only float matrices count: scalars and the integer answer tables are bookkeeping, so
    the default model, which has no MLP, counts 0.
    """
    model = onnx.load_model(dest / MODEL_FILE, load_external_data=False)
    return sum(
        int(np.prod(tensor.dims))
        for tensor in model.graph.initializer
        if tensor.data_type == TensorProto.FLOAT and len(tensor.dims) == 2
    )


def _check_arguments(answer: str, width: int, depth: int, context_length: int) -> None:
    """Reject what would make a model that cannot say ``answer`` or cannot load."""
    if not answer:
        raise ValueError("answer must not be empty")
    if any(special in answer for special in SPECIAL_TOKENS):
        raise ValueError("answer must not contain a chat marker such as <|end|>")
    if width < 0 or depth < 0:
        raise ValueError("width and depth must not be negative")
    if depth > 0 and width == 0:
        raise ValueError("depth needs width > 0")
    if context_length < 1:
        raise ValueError("context_length must be positive")


def _split_answer(answer: str) -> list[str]:
    """Split into words, each with the whitespace before it (" from", " the")."""
    return re.findall(r"\s*\S+|\s+", answer)


def byte_symbols() -> list[str]:
    """GPT-2's printable stand-in for each byte, as byte-level BPE tokenizers expect."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols: dict[int, str] = {byte: chr(byte) for byte in printable}
    shifted = (byte for byte in range(256) if byte not in symbols)
    for offset, byte in enumerate(shifted):
        symbols[byte] = chr(256 + offset)
    return [symbols[byte] for byte in range(256)]


def _make_vocab(answer: str) -> Vocab:
    """Bytes first (so any prompt tokenizes), then the answer's words, then the markers."""
    symbols = byte_symbols()
    tokens = {symbol: index for index, symbol in enumerate(symbols)}

    def token_id(text: str) -> int:
        piece = "".join(symbols[byte] for byte in text.encode("utf-8"))
        return tokens.setdefault(piece, len(tokens))

    words = _split_answer(answer)
    answer_ids = tuple(token_id(word) for word in words)
    first = words[0] if words[0][0].isspace() else " " + words[0]
    loop_ids = (token_id(first), *answer_ids[1:])
    for special in SPECIAL_TOKENS:
        tokens.setdefault(special, len(tokens))
    return Vocab(tokens=tokens, answer_ids=answer_ids, loop_ids=loop_ids)


def tokenizer_json(vocab: Vocab) -> dict[str, Any]:
    """Describe a byte-level BPE with no merges as a Hugging Face ``tokenizer.json``.

    Without merges a prompt tokenizes byte by byte, except that the runtime keeps a
    pre-token whole when it is itself in the vocabulary (" the" when the answer has it).
    Either way any prompt tokenizes, which is all a test needs.
    """
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    added = [
        {
            "id": vocab.tokens[special],
            "content": special,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for special in SPECIAL_TOKENS
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": vocab.tokens,
            "merges": [],
        },
    }


def tokenizer_config(context_length: int) -> dict[str, Any]:
    """Name the tokenizer class and chat template: without them the runtime cannot chat."""
    return {
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": EOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "add_bos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": context_length,
        "chat_template": _CHAT_TEMPLATE,
    }


def genai_config(vocab: Vocab, context_length: int) -> dict[str, Any]:
    """ONNX Runtime GenAI settings: one layer, one KV head of size 1.

    ``past_present_share_buffer`` is off because the graph concatenates its cache itself
    instead of writing into a preallocated buffer.
    """
    return {
        "model": {
            "type": "llama",
            "bos_token_id": vocab.eos_id,
            "eos_token_id": vocab.eos_id,
            "pad_token_id": vocab.eos_id,
            "context_length": context_length,
            "vocab_size": vocab.size,
            "decoder": {
                "filename": MODEL_FILE,
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "head_size": 1,
                "hidden_size": 1,
                "num_attention_heads": 1,
                "num_key_value_heads": 1,
                "num_hidden_layers": 1,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
            },
        },
        "search": {
            "do_sample": False,
            "max_length": context_length,
            "min_length": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            "past_present_share_buffer": False,
            "early_stopping": True,
            "length_penalty": 1.0,
            "repetition_penalty": 1.0,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }


def _make_model(vocab: Vocab, *, endless: bool, weights: dict[str, NDArray[np.float32]]) -> onnx.ModelProto:
    """Assemble the decoder: scripted logits, plus the MLP when there are weights for it."""
    nodes, initializers = script_nodes(vocab, endless=endless)
    if weights:
        layers = [name for name in weights if name.startswith("layer_")]
        nodes += [*_mlp_nodes(layers), helper.make_node("Add", ["scripted", "mlp"], ["logits"])]
        initializers += _external_initializers(weights)
    else:
        nodes.append(helper.make_node("Identity", ["scripted"], ["logits"]))
    graph = helper.make_graph(nodes, "tinymodel", graph_inputs(), graph_outputs(vocab.size), initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def graph_inputs() -> list[onnx.ValueInfoProto]:
    """Declare what ONNX Runtime GenAI feeds a decoder (``attention_mask`` goes unused)."""
    cache: list[str | int] = ["batch", 1, "past", 1]
    return [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
        helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, cache),
        helper.make_tensor_value_info("past_key_values.0.value", TensorProto.FLOAT, cache),
    ]


def graph_outputs(vocab_size: int) -> list[onnx.ValueInfoProto]:
    """Logits for every input position and the grown cache."""
    cache: list[str | int] = ["batch", 1, "total", 1]
    return [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", vocab_size]),
        helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, cache),
        helper.make_tensor_value_info("present.0.value", TensorProto.FLOAT, cache),
    ]


def script_nodes(vocab: Vocab, *, endless: bool) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes that compute ``scripted``: logits choosing the next answer token.

    ``step`` (tokens since the last assistant marker) picks from ``table``: the answer,
    then either EOS forever or the answer again in a loop.
    """
    first = list(vocab.answer_ids)
    tail = list(vocab.loop_ids) if endless else [vocab.eos_id]
    constants: dict[str, NDArray[Any]] = {
        "one": np.array(1, np.int64),
        "minus_one": np.array(-1.0, np.float32),
        "marker_id": np.array(vocab.assistant_id, np.int64),
        "first_len": np.array(len(first), np.int64),
        "tail_len": np.array(len(tail), np.int64),
        "table": np.array(first + tail, np.int64),
        "vocab_size": np.array(vocab.size, np.int64),
        "vocab_dim": np.array([vocab.size], np.int64),
        "onehot_values": np.array([-_MARGIN, 0.0], np.float32),
    }
    initializers = [numpy_helper.from_array(value, name) for name, value in constants.items()]
    node = helper.make_node
    nodes = [
        # Absolute position of each input token: past length + 0, 1, 2...
        node("Shape", ["past_key_values.0.key"], ["past_len"], start=2, end=3),
        node("Shape", ["input_ids"], ["ids_shape"]),
        node(
            "ConstantOfShape",
            ["ids_shape"],
            ["ones"],
            value=helper.make_tensor("one_value", TensorProto.INT64, [1], [1]),
        ),
        node("CumSum", ["ones", "one"], ["counts"]),
        node("Add", ["counts", "past_len"], ["counts_after_past"]),
        node("Sub", ["counts_after_past", "one"], ["positions"]),
        node("Cast", ["positions"], ["positions_f"], to=TensorProto.FLOAT),
        # Cache entry: the position where the token is the assistant marker, else -1.
        node("Equal", ["input_ids", "marker_id"], ["is_marker"]),
        node("Where", ["is_marker", "positions_f", "minus_one"], ["marks"]),
        node("Unsqueeze", ["marks", "cache_axes"], ["new_cache"]),
        node("Concat", ["past_key_values.0.key", "new_cache"], ["present.0.key"], axis=2),
        node("Identity", ["present.0.key"], ["present.0.value"]),
        # step = total length - 1 - position of the last marker.
        node("ReduceMax", ["present.0.key"], ["last_marker_f"], axes=[1, 2, 3], keepdims=0),
        node("Cast", ["last_marker_f"], ["last_marker"], to=TensorProto.INT64),
        node("Shape", ["present.0.key"], ["total_len"], start=2, end=3),
        node("Sub", ["total_len", "one"], ["last_position"]),
        node("Sub", ["last_position", "last_marker"], ["step"]),
        # index = step while in the first answer, then first_len + (step - first_len) % tail_len.
        node("Less", ["step", "first_len"], ["in_first"]),
        node("Sub", ["step", "first_len"], ["tail_step"]),
        node("Mod", ["tail_step", "tail_len"], ["tail_index"]),
        node("Add", ["tail_index", "first_len"], ["later_index"]),
        node("Where", ["in_first", "step", "later_index"], ["index"]),
        node("Gather", ["table", "index"], ["next_token"]),
        # Same row for every position: only the last one is used for generation.
        node("OneHot", ["next_token", "vocab_size", "onehot_values"], ["row"]),
        node("Unsqueeze", ["row", "one"], ["row_3d"]),
        node("Concat", ["ids_shape", "vocab_dim"], ["logits_shape"], axis=0),
        node("Expand", ["row_3d", "logits_shape"], ["scripted"]),
    ]
    initializers.append(numpy_helper.from_array(np.array([1, 3], np.int64), "cache_axes"))
    return nodes, initializers


def _mlp_weights(vocab_size: int, width: int, depth: int) -> dict[str, NDArray[np.float32]]:
    """Random MLP weights (fixed seed), in graph order; none when ``width`` is 0.

    Hidden values stay in [-1, 1] (uniform embedding, then Tanh) and each projection
    column sums to at most 1 in absolute value, so the MLP moves no logit by more than 1
    and the scripted token keeps its lead.
    """
    if width == 0:
        return {}
    rng = np.random.default_rng(_SEED)
    weights = {"embedding": rng.random((vocab_size, width), np.float32) * 2 - 1}
    scale = np.float32(1 / np.sqrt(width))
    for layer in range(depth):
        weights[f"layer_{layer}"] = rng.standard_normal((width, width), np.float32) * scale
    bound = np.float32(1 / width)
    weights["projection"] = (rng.random((width, vocab_size), np.float32) * 2 - 1) * bound
    return weights


def _mlp_nodes(layers: list[str]) -> list[onnx.NodeProto]:
    """Nodes that compute ``mlp`` from ``input_ids``: embed, one Tanh layer per name, project."""
    node = helper.make_node
    nodes = [node("Gather", ["embedding", "input_ids"], ["hidden_0"])]
    for index, layer in enumerate(layers):
        nodes += [
            node("MatMul", [f"hidden_{index}", layer], [f"linear_{index}"]),
            node("Tanh", [f"linear_{index}"], [f"hidden_{index + 1}"]),
        ]
    nodes.append(node("MatMul", [f"hidden_{len(layers)}", "projection"], ["mlp"]))
    return nodes


def _external_initializers(weights: dict[str, NDArray[np.float32]]) -> list[onnx.TensorProto]:
    """Point initializers into the weights file, laid out as :func:`_write_weights` does."""
    initializers = []
    offset = 0
    for name, array in weights.items():
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        place = {"location": _WEIGHTS_FILE, "offset": offset, "length": array.nbytes}
        for key, value in place.items():
            tensor.external_data.add(key=key, value=str(value))
        initializers.append(tensor)
        offset += array.nbytes
    return initializers


def _write_weights(path: Path, weights: dict[str, NDArray[np.float32]]) -> None:
    """Write the weights back to back as little-endian float32; remove a stale file."""
    if not weights:
        path.unlink(missing_ok=True)
        return
    with path.open("wb") as handle:
        for array in weights.values():
            array.astype("<f4", copy=False).tofile(handle)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write UTF-8 JSON, keeping non-ASCII token strings readable."""
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
