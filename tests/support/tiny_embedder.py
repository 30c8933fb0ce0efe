"""Write a tiny but real ONNX Runtime GenAI embedding model for tests.

Foundry Local 2.x serves a model folder registered with the task ``embeddings`` (the SDK's
``EmbeddingsSession``, the web service's ``/catalogs/local/v1/embeddings``) when its decoder has a
``hidden_states`` output named in ``genai_config.json`` (``model.decoder.outputs.hidden_states``)
and ``model.decoder.hidden_size`` is that output's width. The runtime appends the end-of-text
token to each text, runs the decoder once over the whole text and takes the hidden state of the
LAST token (last-token pooling, as Qwen3-Embedding does), L2-normalized.

:func:`build_embedding_model` writes such a folder whose vector is a bag of words, so that a
retrieval test can rely on it: texts that share words are close (cosine), texts that share none
are nearly orthogonal, and word order, case and punctuation do not matter.

How, with the byte-level tokenizer of :mod:`tests.tinymodel` (one token per byte, no word tokens):

* A table maps each token to a character code: letters (lowercased), digits and non-ASCII bytes
  are word characters; every other byte and every special token separates words.
* The graph finds, for every token, where its word starts (the last separator before it, found
  with ``CumSum`` and ``NonZero`` over the flattened batch) and hashes the word as a polynomial in
  its character codes, summed with ``CumSum``, into one of ``_BUCKETS`` rows of a fixed random
  table (seed 0): the vector of that word.
* The hidden state of a token is the mean of the vectors of the words that ended at or before it,
  so the last token's state, the one the runtime keeps, is the mean over the whole text.

The decoder's other outputs are those of :mod:`tests.tinymodel` (scripted logits that always choose
the end of text, a dummy KV cache), so ONNX Runtime GenAI loads it like any decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from tests.tinymodel import (
    EOS,
    IR_VERSION,
    MODEL_FILE,
    OPSET,
    SPECIAL_TOKENS,
    Vocab,
    byte_symbols,
    genai_config,
    graph_inputs,
    graph_outputs,
    script_nodes,
    tokenizer_config,
    tokenizer_json,
    write_json,
)

_SEED = 0
_BUCKETS = 4093  # rows of the word-vector table (a prime): distinct words rarely share one
_PRIME = 1_000_003  # modulus of the polynomial word hash, before it picks a row
_RADIX = 131
_MAX_WORD = 64  # characters that count in a word's hash; longer words are cut there
_EPSILON = 1e-6  # added to every state, so that a text without words is not a zero vector


def build_embedding_model(
    folder: Path, dim: int = 32, *, context_length: int = 4096, synonyms: Mapping[str, str] | None = None
) -> Path:
    """Write a bag-of-words embedding model of ``dim`` dimensions into ``folder``; return it.

    Args:
        folder: Folder to write (created, files overwritten).
        dim: Width of the vectors (``hidden_size``). Random vectors of 32 dimensions are about
            0.18 apart in cosine on average: enough to tell related from unrelated texts.
        context_length: Longest text in tokens (one per UTF-8 byte, plus the end of text).
        synonyms: Words the model takes to mean another (ASCII, lowercase): ``{"automobile":
            "car"}`` gives "automobile" the vector of "car", as a real embedding model would
            bring them close. A search by words cannot see that; a search by meaning can.
    """
    if dim < 1:
        raise ValueError("dim must be positive")
    if context_length < 2:
        raise ValueError("context_length must be at least 2")
    vocab = _byte_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    config = genai_config(vocab, context_length)
    config["model"]["decoder"]["hidden_size"] = dim
    config["model"]["decoder"]["outputs"]["hidden_states"] = "hidden_states"
    write_json(folder / "genai_config.json", config)
    write_json(folder / "tokenizer.json", tokenizer_json(vocab))
    write_json(folder / "tokenizer_config.json", tokenizer_config(context_length))
    onnx.save_model(_make_model(vocab, dim, synonyms or {}), folder / MODEL_FILE)
    onnx.checker.check_model(folder / MODEL_FILE)
    return folder


def _byte_vocab() -> Vocab:
    """One token per byte (id = byte value), then the chat markers; the model always says EOS."""
    tokens = {symbol: index for index, symbol in enumerate(byte_symbols())}
    for special in SPECIAL_TOKENS:
        tokens.setdefault(special, len(tokens))
    eos = (tokens[EOS],)
    return Vocab(tokens=tokens, answer_ids=eos, loop_ids=eos)


def _character_codes(vocab_size: int) -> NDArray[np.int64]:
    """Code of each token: lowercased byte + 1 for word characters, 0 for separators."""
    codes = np.zeros(vocab_size, np.int64)
    for byte in range(256):
        char = chr(byte)
        if byte >= 0x80 or (char.isascii() and char.isalnum()):
            codes[byte] = ord(char.lower()) + 1 if byte < 0x80 else byte + 1
    return codes


def word_bucket(word: str) -> int:
    """The row of the word-vector table that the graph's hash gives an ASCII word."""
    powers = [pow(_RADIX, k, _PRIME) for k in range(_MAX_WORD)]
    total = sum((ord(char.lower()) + 1) * powers[min(k, _MAX_WORD - 1)] for k, char in enumerate(word))
    return (total % _PRIME) % _BUCKETS


def _make_model(vocab: Vocab, dim: int, synonyms: Mapping[str, str]) -> onnx.ModelProto:
    """The tinymodel decoder (logits, KV cache) plus the ``hidden_states`` output."""
    nodes, initializers = script_nodes(vocab, endless=False)
    nodes.append(helper.make_node("Identity", ["scripted"], ["logits"]))
    bag_nodes, bag_initializers = _bag_of_words_nodes(vocab.size, dim, synonyms)
    outputs = [
        *graph_outputs(vocab.size),
        helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, ["batch", "seq", dim]),
    ]
    graph = helper.make_graph(
        nodes + bag_nodes, "tiny_embedder", graph_inputs(), outputs, initializers + bag_initializers
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def _bag_of_words_nodes(
    vocab_size: int, dim: int, synonyms: Mapping[str, str]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes that compute ``hidden_states`` from ``input_ids``: at each token, the mean vector of
    the words that ended so far in its row. Works on the batch flattened to one stream of ``n``
    tokens; a word never spans two rows."""
    rng = np.random.default_rng(_SEED)
    table = rng.standard_normal((_BUCKETS, dim)).astype(np.float32)
    for word, meaning in synonyms.items():
        table[word_bucket(word)] = table[word_bucket(meaning)]
    constants: dict[str, NDArray[Any]] = {
        "bw_codes": _character_codes(vocab_size),
        "bw_powers": np.array([pow(_RADIX, k, _PRIME) for k in range(_MAX_WORD)], np.int64),
        "bw_table": table,
        "bw_epsilon": np.full(dim, _EPSILON, np.float32),
        "bw_flat": np.array([-1], np.int64),
        "bw_before_first": np.array([-1], np.int64),
        "bw_zero": np.array(0, np.int64),
        "bw_one": np.array(1, np.int64),
        "bw_one_1d": np.array([1], np.int64),
        "bw_last_char": np.array(_MAX_WORD - 1, np.int64),
        "bw_prime": np.array(_PRIME, np.int64),
        "bw_buckets": np.array(_BUCKETS, np.int64),
        "bw_one_f": np.array(1.0, np.float32),
        "bw_dim": np.array([dim], np.int64),
        "bw_axis_1": np.array(1, np.int64),
        "bw_axes_1": np.array([1], np.int64),
        "bw_end": np.array([np.iinfo(np.int64).max], np.int64),
    }
    initializers = [numpy_helper.from_array(value, name) for name, value in constants.items()]
    node = helper.make_node
    nodes = [
        # The stream: token codes, separators, positions 0..n-1 and the row of each.
        node("Shape", ["input_ids"], ["bw_shape"]),
        node("Gather", ["bw_shape", "bw_one"], ["bw_row_len"]),
        node("Reshape", ["input_ids", "bw_flat"], ["bw_ids"]),
        node("Gather", ["bw_codes", "bw_ids"], ["bw_code"]),
        node("Equal", ["bw_code", "bw_zero"], ["bw_is_sep"]),
        node("Not", ["bw_is_sep"], ["bw_is_char"]),
        node("Cast", ["bw_is_sep"], ["bw_sep"], to=TensorProto.INT64),
        node("Size", ["bw_ids"], ["bw_n"]),
        node("Range", ["bw_zero", "bw_n", "bw_one"], ["bw_index"]),
        node("Mod", ["bw_index", "bw_row_len"], ["bw_column"]),
        node("Sub", ["bw_index", "bw_column"], ["bw_row_start"]),
        # Where each token's word starts: after the last separator so far, not before its row.
        node("CumSum", ["bw_sep", "bw_zero"], ["bw_seps_so_far"]),
        node("NonZero", ["bw_is_sep"], ["bw_sep_where"]),
        node("Reshape", ["bw_sep_where", "bw_flat"], ["bw_sep_index"]),
        node("Concat", ["bw_before_first", "bw_sep_index"], ["bw_last_sep_table"], axis=0),
        node("Gather", ["bw_last_sep_table", "bw_seps_so_far"], ["bw_last_sep"]),
        node("Add", ["bw_last_sep", "bw_one"], ["bw_after_sep"]),
        node("Max", ["bw_after_sep", "bw_row_start"], ["bw_start_any"]),
        node("Min", ["bw_start_any", "bw_index"], ["bw_start"]),  # a separator "starts" at itself
        # Polynomial hash: code * radix^(place in word), summed over the word with CumSum.
        node("Sub", ["bw_index", "bw_start"], ["bw_place_any"]),
        node("Min", ["bw_place_any", "bw_last_char"], ["bw_place"]),
        node("Gather", ["bw_powers", "bw_place"], ["bw_power"]),
        node("Mul", ["bw_code", "bw_power"], ["bw_term"]),
        node("CumSum", ["bw_term", "bw_zero"], ["bw_sum"]),
        node("Sub", ["bw_sum", "bw_term"], ["bw_sum_before"]),
        node("Gather", ["bw_sum_before", "bw_start"], ["bw_sum_before_word"]),
        node("Sub", ["bw_sum", "bw_sum_before_word"], ["bw_word_sum"]),
        node("Mod", ["bw_word_sum", "bw_prime"], ["bw_hash"]),
        node("Mod", ["bw_hash", "bw_buckets"], ["bw_bucket"]),
        # A word ends at a character followed by a separator or by the end of its row.
        node("Slice", ["bw_sep", "bw_one_1d", "bw_end"], ["bw_sep_after"]),
        node("Concat", ["bw_sep_after", "bw_one_1d"], ["bw_next_sep"], axis=0),
        node("Sub", ["bw_row_len", "bw_one"], ["bw_last_column"]),
        node("Equal", ["bw_column", "bw_last_column"], ["bw_row_end"]),
        node("Cast", ["bw_next_sep"], ["bw_next_is_sep"], to=TensorProto.BOOL),
        node("Or", ["bw_next_is_sep", "bw_row_end"], ["bw_before_break"]),
        node("And", ["bw_is_char", "bw_before_break"], ["bw_word_end"]),
        node("Cast", ["bw_word_end"], ["bw_weight"], to=TensorProto.FLOAT),
        # Mean of the word vectors so far in each row.
        node("Gather", ["bw_table", "bw_bucket"], ["bw_vector"]),
        node("Unsqueeze", ["bw_weight", "bw_axes_1"], ["bw_weight_col"]),
        node("Mul", ["bw_vector", "bw_weight_col"], ["bw_word_vector"]),
        node("Concat", ["bw_shape", "bw_dim"], ["bw_shape_3d"], axis=0),
        node("Reshape", ["bw_word_vector", "bw_shape_3d"], ["bw_word_vectors"]),
        node("Reshape", ["bw_weight", "bw_shape"], ["bw_weights"]),
        node("CumSum", ["bw_word_vectors", "bw_axis_1"], ["bw_vector_sum"]),
        node("CumSum", ["bw_weights", "bw_axis_1"], ["bw_words"]),
        node("Max", ["bw_words", "bw_one_f"], ["bw_words_at_least_1"]),
        node("Unsqueeze", ["bw_words_at_least_1", "bw_flat"], ["bw_divisor"]),
        node("Div", ["bw_vector_sum", "bw_divisor"], ["bw_mean"]),
        node("Add", ["bw_mean", "bw_epsilon"], ["hidden_states"]),
    ]
    return nodes, initializers
