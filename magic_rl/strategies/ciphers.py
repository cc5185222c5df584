"""The four encoding strategies' ciphers: decimal ASCII codes, Caesar (shift 3), Morse, Atbash.

`encode(strategy, text)` gives the payload an encoding rewrite carries; `decode(strategy, text)`
inverts it, from either a bare payload or a whole rewrite (the payload is what follows the
rewrite's first line break). Round trips are exact for ASCII, Caesar and Atbash; Morse has no
letter case, so `decode("morse", ...)` gives the seed in upper case.

Run: `python -c "from magic_rl.strategies.ciphers import encode; print(encode('morse', 'Hi'))"`.
"""

from __future__ import annotations

import string

CIPHERS = ("ascii", "caesar", "morse", "atbash")
CAESAR_SHIFT = 3

# International Morse code (ITU-R M.1677-1) for letters, digits and the punctuation it defines.
MORSE = {
    "A": ".-", "B": "-...", "C": "-.-.", "D": "-..", "E": ".", "F": "..-.", "G": "--.",
    "H": "....", "I": "..", "J": ".---", "K": "-.-", "L": ".-..", "M": "--", "N": "-.",
    "O": "---", "P": ".--.", "Q": "--.-", "R": ".-.", "S": "...", "T": "-", "U": "..-",
    "V": "...-", "W": ".--", "X": "-..-", "Y": "-.--", "Z": "--..",
    "0": "-----", "1": ".----", "2": "..---", "3": "...--", "4": "....-", "5": ".....",
    "6": "-....", "7": "--...", "8": "---..", "9": "----.",
    ".": ".-.-.-", ",": "--..--", "?": "..--..", "'": ".----.", "!": "-.-.--", "/": "-..-.",
    "(": "-.--.", ")": "-.--.-", "&": ".-...", ":": "---...", ";": "-.-.-.", "=": "-...-",
    "+": ".-.-.", "-": "-....-", "_": "..--.-", '"': ".-..-.", "$": "...-..-", "@": ".--.-.",
}  # fmt: skip
_FROM_MORSE = {code: char for char, code in MORSE.items()}
MORSE_WORD_SEP = " / "

_LOWER, _UPPER = string.ascii_lowercase, string.ascii_uppercase
_CAESAR = str.maketrans(
    _LOWER + _UPPER,
    _LOWER[CAESAR_SHIFT:] + _LOWER[:CAESAR_SHIFT] + _UPPER[CAESAR_SHIFT:] + _UPPER[:CAESAR_SHIFT],
)
_CAESAR_BACK = {v: k for k, v in _CAESAR.items()}
_ATBASH = str.maketrans(_LOWER + _UPPER, _LOWER[::-1] + _UPPER[::-1])


def encode(strategy: str, text: str) -> str:
    """The payload of `text` under cipher `strategy`. Raises ValueError for a character the
    cipher cannot carry (Morse) or an unknown cipher."""
    if strategy == "ascii":
        return " ".join(str(ord(c)) for c in text)
    if strategy == "caesar":
        return text.translate(_CAESAR)
    if strategy == "atbash":
        return text.translate(_ATBASH)
    if strategy == "morse":
        return MORSE_WORD_SEP.join(_morse_word(w) for w in text.split())
    raise ValueError(f"unknown cipher {strategy!r} (ciphers: {list(CIPHERS)})")


def decode(strategy: str, text: str) -> str:
    """Invert `encode`. `text` is a whole encoding rewrite (framing line, line break, payload) or
    a payload without line breaks. Raises ValueError naming the bad token."""
    payload = text.split("\n", 1)[1] if "\n" in text else text
    if strategy == "ascii":
        try:
            return "".join(chr(int(tok)) for tok in payload.split())
        except ValueError as e:
            raise ValueError(f"ascii payload: not a decimal code list ({e})") from None
    if strategy == "caesar":
        return payload.translate(_CAESAR_BACK)
    if strategy == "atbash":
        return payload.translate(_ATBASH)  # Atbash is its own inverse.
    if strategy == "morse":
        words = payload.split(MORSE_WORD_SEP.strip())
        return " ".join("".join(_from_morse(code) for code in w.split()) for w in words)
    raise ValueError(f"unknown cipher {strategy!r} (ciphers: {list(CIPHERS)})")


def _morse_word(word: str) -> str:
    missing = sorted({c for c in word.upper() if c not in MORSE})
    if missing:
        raise ValueError(f"morse: characters {missing} have no Morse code (in {word!r})")
    return " ".join(MORSE[c] for c in word.upper())


def _from_morse(code: str) -> str:
    if code not in _FROM_MORSE:
        raise ValueError(f"morse payload: {code!r} is not a Morse code")
    return _FROM_MORSE[code]
