#!/usr/bin/env python3
"""Write a tiny llama-architecture GGUF model for ollamactl's real-server tests.

The model has random float32 weights (2 layers, 64 wide, ~600 KB), so whatever it
generates is gibberish -- but it is a genuine GGUF that Ollama's llama.cpp runner
loads and runs, fast, on any CPU.  The vocabulary is SentencePiece-style ("llama"
tokenizer): <unk> <s> </s>, the 256 byte-fallback tokens <0x00>..<0xFF>, then a
few hundred word and character pieces, so any UTF-8 prompt tokenizes.

The output is deterministic for a given --seed (same bytes, same digest).

Needs the PyPI packages ``gguf`` and ``numpy`` (scripts/real-ollama.sh installs
them into its venv).

usage: make_tiny_gguf.py OUT.gguf [--seed N]
"""

from __future__ import annotations

import argparse

import gguf
import numpy as np

# Model shape: small enough to be instant, big enough to be a real transformer.
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_LAYER = 2
N_CTX = 2048

# Whole-word pieces (each gets the SentencePiece word-start marker U+2581).
WORD_TEXT = """
the a an and of to in is it you that he was for on are with as I his they be at one
have this from or had by hot word but what some we can out other were all there when
up use your how said each she which do their time if will way about many then them
write would like so these her long make thing see him two has look more day could go
come did number sound no most people my over know water than call first who may down
side been now find hello world why sky blue tiny model test ollama llama
"""
WORDS = WORD_TEXT.split()
CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()"
WORD_START = "\u2581"


def build_vocab() -> tuple[list[str], list[float], list[int]]:
    """Return (tokens, scores, token types) of the SentencePiece-style vocabulary."""
    tt = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>"]
    scores = [0.0, 0.0, 0.0]
    types = [tt.UNKNOWN, tt.CONTROL, tt.CONTROL]

    # Byte fallback: any byte the pieces below cannot cover becomes <0xNN>.
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        scores.append(0.0)
        types.append(tt.BYTE)

    pieces = [WORD_START + w for w in WORDS]
    for c in CHARS:
        pieces += [c, WORD_START + c]
    pieces.append(WORD_START)

    seen = set(tokens)
    for rank, piece in enumerate(pieces):
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        # The SPM tokenizer merges towards higher scores: prefer longer pieces.
        scores.append(-1000.0 + 10.0 * len(piece) - 0.001 * rank)
        types.append(tt.NORMAL)
    return tokens, scores, [int(t) for t in types]


def write_model(path: str, seed: int) -> int:
    """Write the GGUF file; return the vocabulary size."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = build_vocab()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD
    kv_width = head_dim * N_HEAD_KV

    w = gguf.GGUFWriter(path, "llama")

    # -- hyper-parameters
    w.add_name("ollamactl-tiny-random-llama")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(n_vocab)

    # -- tokenizer
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    # -- tensors (numpy shape is (rows, cols) = ggml's (ne1, ne0))
    def randn(name: str, rows: int, cols: int, scale: float = 0.02) -> None:
        w.add_tensor(name, (rng.standard_normal((rows, cols)) * scale).astype(np.float32))

    def ones(name: str, n: int) -> None:
        w.add_tensor(name, np.ones((n,), dtype=np.float32))

    randn("token_embd.weight", n_vocab, N_EMBD, scale=1.0)
    for i in range(N_LAYER):
        blk = f"blk.{i}"
        ones(f"{blk}.attn_norm.weight", N_EMBD)
        randn(f"{blk}.attn_q.weight", N_EMBD, N_EMBD)
        randn(f"{blk}.attn_k.weight", kv_width, N_EMBD)
        randn(f"{blk}.attn_v.weight", kv_width, N_EMBD)
        randn(f"{blk}.attn_output.weight", N_EMBD, N_EMBD)
        ones(f"{blk}.ffn_norm.weight", N_EMBD)
        randn(f"{blk}.ffn_gate.weight", N_FF, N_EMBD)
        randn(f"{blk}.ffn_up.weight", N_FF, N_EMBD)
        randn(f"{blk}.ffn_down.weight", N_EMBD, N_FF)
    ones("output_norm.weight", N_EMBD)
    randn("output.weight", n_vocab, N_EMBD, scale=0.5)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="path of the .gguf file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args()
    n_vocab = write_model(args.out, args.seed)
    print(f"wrote {args.out}: llama, {N_LAYER} layers, n_embd={N_EMBD}, vocab={n_vocab}")


if __name__ == "__main__":
    main()
