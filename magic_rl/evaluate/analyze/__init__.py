"""Attack-pattern analysis (docs/DESIGN.md §6): the paper's 20-class taxonomy, taggers, and
per-stage statistics of a run's attacker rewrites.

    TAXONOMY / FAMILIES      the 20 classes (0-19) in 6 families, as in the paper (Appendix F.4)
    tag_taxonomy(text, seed) rule/regex tagger -> a code: "7", or a hybrid "0_3", or "19" (none)
    tag_strategy(text, seed) which of the 20 SORRY-Bench pool strategies made `text`, or "none"
    LLMTagger(...)           the paper's LLM-judge classification through an OpenAI-compatible URL
    EXPECTED_CLASSES         the taxonomy classes each pool strategy should land in (see `rules`)
    pool_accuracy(records)   both rule taggers against pool provenance
    self_bleu / embedding_diversity / analyze_replay(run_dir)   diversity and stage statistics
    novelty_ranks(texts)     each text's in-group self-BLEU rank (the attacker's novelty term)

Files: `taxonomy` (classes, families, codes), `cues` (the rule tagger's regex cues per class),
`rules` (the rule taggers, expected classes, pool accuracy), `llm` (the paper's LLM tagger),
`diversity` (self-BLEU, embedding diversity), `replay` (per-stage analysis of replay.jsonl).

Departures from the paper: the paper classifies with an LLM judge (its prompt is shipped as
`assets/report/classification_prompt.txt` and used by `LLMTagger`); the sandbox uses the rule
tagger, which knows the pool's phrasings and generic jailbreak cues, not the long tail a 7B
attacker invents — treat its codes on real runs as a rough first look. Diversity (self-BLEU,
embedding diversity) is this project's addition; the "embedding" is a hashed character-n-gram
TF-IDF vector, not a neural embedding, so it runs anywhere with numpy.

Run: `magic analyze runs/sandbox` (writes runs/sandbox/analysis/strategy.json);
`python -c "from magic_rl.evaluate.analyze import pool_accuracy; print(pool_accuracy())"`.
"""

from magic_rl.evaluate.analyze.cues import CUES, Cue
from magic_rl.evaluate.analyze.diversity import (
    char_ngram_tfidf,
    embedding_diversity,
    novelty_ranks,
    self_bleu,
    self_bleu_each,
    tokenize,
)
from magic_rl.evaluate.analyze.llm import (
    PROMPT_PATH,
    LLMTagger,
    classification_messages,
    load_classification_prompt,
    parse_classification,
)
from magic_rl.evaluate.analyze.replay import (
    analyze_replay,
    read_replay,
    stage_edges,
    stage_stats,
    write_analysis,
)
from magic_rl.evaluate.analyze.rules import (
    EXPECTED_CLASSES,
    Tagger,
    pool_accuracy,
    rule_tagger,
    tag_strategy,
    tag_taxonomy,
    taxonomy_scores,
)
from magic_rl.evaluate.analyze.taxonomy import (
    FAMILIES,
    NONE,
    TAXONOMY,
    UNKNOWN,
    classes_of,
    code_name,
    code_of,
    family_of_class,
    is_hybrid,
)

__all__ = [
    "CUES",
    "EXPECTED_CLASSES",
    "FAMILIES",
    "NONE",
    "PROMPT_PATH",
    "TAXONOMY",
    "UNKNOWN",
    "Cue",
    "LLMTagger",
    "Tagger",
    "analyze_replay",
    "char_ngram_tfidf",
    "classes_of",
    "classification_messages",
    "code_name",
    "code_of",
    "embedding_diversity",
    "family_of_class",
    "is_hybrid",
    "load_classification_prompt",
    "novelty_ranks",
    "parse_classification",
    "pool_accuracy",
    "read_replay",
    "rule_tagger",
    "self_bleu",
    "self_bleu_each",
    "stage_edges",
    "stage_stats",
    "tag_strategy",
    "tag_taxonomy",
    "taxonomy_scores",
    "tokenize",
    "write_analysis",
]
