"""Multi-run experiments behind `magic experiment`: `ablation.py` (the ablation table over variants
and training seeds)."""
