"""Rewriting the emotion data set's template cue ("i feel X", "im feeling X").

The data set's labels were gathered from that pattern, so nearly every text carries
it (1,981 of the 2,000 test texts contain "feel"), and a model can learn the cue
instead of the emotion. These rules rewrite the cue, keeping the meaning, in four
variants; the robustness suite measures the model on each (built from the test and
validation splits only), and the training recipe uses them as augmentation.

Texts are in the data set's form (lowercase letters and single spaces; contractions
as "im", "i m", "ive", "i ve"). The rules, applied left to right to every match:

| cue | i_am | im_so | dropped | third |
|---|---|---|---|---|
| i feel like / i feel that | i think | i think | (removed) | she thinks |
| i am / im / i m feeling | i am | im so | (removed) | she is |
| i was feeling | i was | i was so | (removed) | she was |
| ive / i ve / i have been feeling | ive been | ive been so | (removed) | she has been |
| i [still, really, just, always, do, ...] feel | i [adverb] am | im so | (removed) | she is |
| i feel | i am | im so | (removed) | she is |
| i felt | i was | i was so | (removed) | she was |
| makes / made / make me feel | makes / made / make me | ... me so | makes / made / make me | makes / made / make her |
| feeling (first word) | being | being so | (removed) | she is |

Then, in every variant alike, what is left of the verb (the noun "a feeling",
"feelings" stays):

| left | becomes |
|---|---|
| do not / dont / did not / does not feel | am not / was not / is not |
| am / im / is / are / was / were / been / be [one word] feeling | am / ... [word] |
| can / could / will / would / should / might / may / must / to / but feel | ... be |
| feeling (not after a, the, that, this, no, any, my, your, her, his, their, our) | being |
| feels | is |
| felt | was |
| feel | am |

Texts the rules do not touch (a few percent: no cue at all) are kept as they are.
"""

from __future__ import annotations

import re

VARIANTS = ("i_am", "im_so", "dropped", "third")

ADVERBS = "still|really|just|always|do|sometimes|often|definitely|honestly|actually|kind of|kinda|truly|totally|genuinely|also|even|usually|never|now"

# (pattern, {variant: replacement}); the first matching rule at a place wins.
RULES: list[tuple[re.Pattern, dict[str, str]]] = [
    (re.compile(r"\bi (?:feel|felt) (?:like|that)\b"),
     {"i_am": "i think", "im_so": "i think", "dropped": "", "third": "she thinks"}),
    (re.compile(r"\b(?:i am|im|i m) feeling\b"),
     {"i_am": "i am", "im_so": "im so", "dropped": "", "third": "she is"}),
    (re.compile(r"\bi was feeling\b"),
     {"i_am": "i was", "im_so": "i was so", "dropped": "", "third": "she was"}),
    (re.compile(r"\b(?:ive|i ve|i have) been feeling\b"),
     {"i_am": "ive been", "im_so": "ive been so", "dropped": "", "third": "she has been"}),
    (re.compile(rf"\bi ((?:{ADVERBS}) )feel\b"),
     {"i_am": r"i \1am", "im_so": "im so", "dropped": "", "third": r"she \1is"}),
    (re.compile(r"\bi feel\b"),
     {"i_am": "i am", "im_so": "im so", "dropped": "", "third": "she is"}),
    (re.compile(r"\bi felt\b"),
     {"i_am": "i was", "im_so": "i was so", "dropped": "", "third": "she was"}),
    (re.compile(r"\b(makes|made|make) me feel\b"),
     {"i_am": r"\1 me", "im_so": r"\1 me so", "dropped": r"\1 me", "third": r"\1 her"}),
    (re.compile(r"^feeling\b"),
     {"i_am": "being", "im_so": "being so", "dropped": "", "third": "she is"}),
]

_ANY = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in RULES))

# What is left of the verb, the same in every variant: (pattern, replacement).
LEFTOVERS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\b(?:do not|dont|don t) feel\b"), "am not"),
    (re.compile(r"\b(?:did not|didnt|didn t) feel\b"), "was not"),
    (re.compile(r"\b(?:does not|doesnt|doesn t) feel\b"), "is not"),
    (re.compile(r"\b(am|im|i m|is|are|was|were|been|be)((?: [a-z]+)?) feeling\b"), r"\1\2"),
    (re.compile(r"\b(can|could|will|would|should|might|may|must|cant|couldnt|wont|wouldnt|shouldnt|to|but) feel\b"), r"\1 be"),
    (re.compile(r"\b(?<!\ba )(?<!\bthe )(?<!\bthat )(?<!\bthis )(?<!\bno )(?<!\bany )(?<!\bmy )(?<!\byour )(?<!\bher )(?<!\bhis )(?<!\btheir )(?<!\bour )feeling\b"), "being"),
    (re.compile(r"\bfeels\b"), "is"),
    (re.compile(r"\bfelt\b"), "was"),
    (re.compile(r"\bfeel\b"), "am"),
]


def rewrite(text: str, variant: str) -> str:
    """`text` with every template cue rewritten as `variant` says (see the table)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")

    def replace(match: re.Match) -> str:
        found = match.group(0)
        for pattern, replacements in RULES:
            whole = pattern.fullmatch(found)
            if whole:
                return whole.expand(replacements[variant])
        return found

    text = _ANY.sub(replace, text)
    for pattern, replacement in LEFTOVERS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def has_cue(text: str) -> bool:
    """Whether the text says the template's verb at all."""
    return re.search(r"\b(?:feel|feels|felt|feeling)\b", text) is not None


if __name__ == "__main__":
    examples = [
        "i feel afraid this new ai thing will take my job",
        "im feeling really grateful for my friends",
        "i still feel so lonely on sundays",
        "i feel like everythings going to happen without me",
        "it makes me feel useless",
        "feeling pretty aggravated right now",
        "when a friend dropped a frog down my neck",
    ]
    for text in examples:
        print(text)
        for variant in VARIANTS:
            print(f"  {variant:8} {rewrite(text, variant)}")
