"""The sandbox tokenizer: a byte-level BPE trained on the project's own corpus, with a chat template.

`train_tokenizer(texts, vocab_size, out_dir)` trains a `tokenizers` BPE (GPT-2 style byte-level, so
any text encodes without an unknown token), adds the chat special tokens and the format tags, and
saves a `PreTrainedTokenizerFast` that `AutoTokenizer.from_pretrained(out_dir)` loads back.

Chat layout (one line per turn header, every turn closed by `<|end|>`, which is also the EOS token, so
generation stops exactly where an assistant turn ends):

    <|bos|><|system|>\\n{system}<|end|>\\n<|user|>\\n{user}<|end|>\\n<|assistant|>\\n{reply}<|end|>\\n

`add_generation_prompt=True` appends `<|assistant|>\\n`.

Token kinds, and why:
- `<|bos|> <|end|> <|pad|> <|system|> <|user|> <|assistant|>` are *special*: atomic, never produced
  by ordinary text and removed by `decode(..., skip_special_tokens=True)`.
- `<think> </think> <answer> </answer>` are *added but not special*: atomic (one id each, so the
  format check sees the exact tag and a tiny model learns it as one symbol) yet kept by
  `skip_special_tokens=True`, because the strict format check (R_fmt, docs/DESIGN.md §3) runs on
  decoded text.

Departure from the paper: the paper uses Qwen2.5's tokenizer; the sandbox trains its own small one so
the whole world is built from project-authored text.

Run: `python -m magic_rl.sandbox.tokenizer OUT_DIR [VOCAB] < corpus.txt` (one text per line).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BOS = "<|bos|>"
EOS = "<|end|>"
PAD = "<|pad|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = (PAD, BOS, EOS, *ROLE_TOKENS.values())
FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")

CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{- raise_exception('unknown chat role: ' + message['role']) -}}"
    "{%- endif -%}"
    "{{- '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}"
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, out_dir: str | Path
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE of `vocab_size` ids (specials and tags included) and save it.

    Deterministic for the same texts in the same order. Returns the loaded fast tokenizer.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    n_reserved = len(SPECIAL_TOKENS) + len(FORMAT_TAGS)
    n_bytes = len(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size < n_bytes + n_reserved:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least "
            f"{n_bytes} byte tokens + {n_reserved} special/tag tokens"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        # The tags are added after training; reserve their ids inside the requested size.
        vocab_size=vocab_size - len(FORMAT_TAGS),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("train_tokenizer: no non-empty texts to train on")
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in FORMAT_TAGS])

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)
    return hf


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m magic_rl.sandbox.tokenizer OUT_DIR [VOCAB] < corpus.txt")
    vocab = int(argv[1]) if len(argv) > 1 else 2048
    tok = train_tokenizer((line.rstrip("\n") for line in sys.stdin), vocab, argv[0])
    print(f"saved {len(tok)} tokens to {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
