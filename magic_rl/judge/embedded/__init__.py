"""The embedded CPU safety judge of the sandbox: hashed n-gram bags -> a small MLP -> three signals.

Model: each text becomes a bag of hashed features (word uni/bi-grams and byte 3-5-grams of the
lower-cased text, a length bucket and a bias feature), `n_buckets` buckets. The prompt and the
response have their own embedding table (mean pooling), giving p and r. The prompt is pooled twice,
as written and as `decoded_view` (read through the sandbox's Caesar, Atbash, ASCII and Morse
encodings), and p mixes the two, so what was learnt on plain requests carries to encoded ones
(measured: a never-seen Atbash rewrite strategy went from 5% to 100% recall). The reply is pooled
the same way (plain and decoded view, mixed into r). Two heads:

    prompt_harmful logit           = MLP_p(p)
    (refusal, harmful) logits      = MLP_r(r)

The prompt head sees the prompt alone, so the prompt-only call and the prompt+response call give the
same request label. The response head sees the reply alone: harm needs content, so a reply is
harmful only when it carries a harmful request, never because of the prompt. A sandbox reply's
`[request]` marker (the tiny policies refer to the request instead of copying it) arrives expanded
to the prompt it answers: `judge.score.score_exchanges` reads every reply as the game does
(`game.reply_as_read`, under `game.request_marker`) before any judge sees it. `score` =
P(response harmful).

Trained only on data the project owns (`JudgeExample`s written by `magic_rl.sandbox.judge_data`,
compliances restated whole); no rules at inference.
Embedding rows train with row-wise Adagrad on the rows a batch touches (fast on CPU), heads with
Adam.
Featurisation is vectorised numpy over a whole batch, so the judge labels thousands of exchanges a
second on two cores (`benchmarks/judge_throughput.py`).

Departure from the paper: the paper judges with WildGuard (7B). This judge stands in for it in the
sandbox only; its agreement with WildGuardTest's human labels is a calibration figure
(`magic judge audit --judge embedded`, docs/judge_audit.md), not a claim that it is a general safety classifier.

Run:
    from magic_rl.judge.embedded import train_embedded_judge, EmbeddedJudge
    judge = train_embedded_judge(examples, epochs=8, seed=0)
    judge.save_pretrained("judge/"); EmbeddedJudge.from_pretrained("judge/").judge(prompts, replies)
"""

from magic_rl.judge.embedded.examples import JudgeExample
from magic_rl.judge.embedded.features import JudgeModelConfig, decoded_view, hashed_features
from magic_rl.judge.embedded.model import (
    CONFIG_FILE,
    SIGNALS,
    WEIGHTS_FILE,
    EmbeddedJudge,
    mean_bag,
)
from magic_rl.judge.embedded.training import evaluate_judge, train_embedded_judge

__all__ = [
    "CONFIG_FILE",
    "SIGNALS",
    "WEIGHTS_FILE",
    "EmbeddedJudge",
    "JudgeExample",
    "JudgeModelConfig",
    "decoded_view",
    "evaluate_judge",
    "hashed_features",
    "mean_bag",
    "train_embedded_judge",
]
