#!/usr/bin/env python3
"""Regenerates the llama.cpp cross-check vectors in this folder.

Inputs are random strings over an alphabet of tricky pieces (contractions in odd cases, Unicode
whitespace, scripts, emoji sequences, digits, special-token texts). Expected ids come from
llama.cpp through node-llama-cpp 3.21.1 (see shared/tools/README.md for installing it):

  python3 gen_peer_cases.py            # writes peer-plain.inp, peer-special.inp
  for v in llama-spm llama-bpe qwen2 phi-3 gpt-2; do
    node $T tokenize-file ../shared/vocab/ggml-vocab-$v.gguf peer-plain.inp > peer-plain-$v.out
    node tokfile_special.mjs ../shared/vocab/ggml-vocab-$v.gguf peer-special.inp > peer-special-$v.out
  done
(tokfile_special.mjs: the same as tokenize-file but with model.tokenize(text, true).)
"""
import random

SEP = "\n__ggml_vocab_test__\n"

def plain_cases(n):
    rnd = random.Random(7)
    alphabet = list("abcXYZ019 \t\n\r'’-_.,;:!?()[]{}<>\"/\\@#$%^&*+=~`|") + [
        "'s", "'S", "'ll", "'LL", "'ve", "'re", "'d", "'m", "ſ", "K", "é", "ß", "İ", "中文", "日本語", "한국어",
        "Привет", "العربية", "हिन्दी", "ไทย", "🦙", "😶‍🌫️", "👍🏽", "\u00a0", "\u2003", "\u3000", "\u200b",
        "\u2028", "1234567", "३४५", "½", "①", "ℌ", "ǅ", "\U0001F600", "\x7f", "\x01", "Ġ", "<s>", "</s>",
        "<|im_start|>", "[INST]", "  ", "   ", "\n\n\n"]
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 40))) for _ in range(n)]

def special_cases(n):
    rnd = random.Random(3)
    pieces = ["<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|user|>", "<|end|>",
              "<|assistant|>", "<|system|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
              "<|begin_of_text|>", "[PAD151650]", "<|placeholder1|>", " ", "\n", "  ", "Hello", "world", "\n\n",
              " x ", "é", "🦙"]
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12))) for _ in range(n)]

if __name__ == "__main__":
    for name, cases in (("peer-plain.inp", plain_cases(120)), ("peer-special.inp", special_cases(120))):
        with open(name, "w", encoding="utf-8", newline="") as f:
            f.write(SEP.join(cases) + SEP)
