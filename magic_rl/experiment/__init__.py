"""Multi-run experiments behind `magic experiment`: the ablation over variants and training seeds,
and the attacker against frozen defenders (`attacker.py`, docs/attacker.md).

`design.py` says what is compared (variants, metric columns, aggregation, paired differences),
`ablation.py` runs it (train and evaluate each variant x seed, resumably), `render.py` writes the
table out (ablation.md, the terminal table).
"""
