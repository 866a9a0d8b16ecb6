"""Broken phrases that make copy read like a template with holes.

"Meet the smart our latest", "Headline 3: The our", "Thanks for asking about Use
get price tool": words cut out of a prompt and pasted into a sentence leave marks a
reader sees at once -- two determiners in a row, a line ending on "the", a
capitalised instruction word in mid-sentence, "a" before a vowel, a word twice.
The scorer deducts for them in any free-text answer (real or mock), and the mock's
tests hold its own copy to zero. Each rule is a regex over the text: pure, linear.
"""

from __future__ import annotations

import re

_DET = r"(?:the|a|an|our|my|your|their|its|this|these|those)"

#: rule name -> the pattern that finds it.
RULES: dict[str, re.Pattern[str]] = {
    # "the our", "a the", "your the"
    "double_determiner": re.compile(
        rf"\b(?:the|a|an|our|my|your|their)[ \t]+{_DET}\b(?!-)", re.IGNORECASE
    ),
    # "Meet the smart our latest": a possessive inside a phrase that already has its article
    "stray_possessive": re.compile(
        r"\b(?:the|a|an)[ \t]+[a-z]+[ \t]+(?:our|my|their|your)[ \t]+\w+[ \t]*(?:[.!?,;:]|$)",
        re.IGNORECASE | re.MULTILINE,
    ),
    # a line or sentence that ends on a word that needs one after it: "Headline 3: The our"
    "dangling_word": re.compile(
        rf"\b(?:{_DET}|of|and|or)[ \t]*(?:[.!?,;:]|$)", re.IGNORECASE | re.MULTILINE
    ),
    # nothing where the subject should be: "about .", "Meet the ."
    "empty_subject": re.compile(r"\b(?:about|for|on|of|to|the|a|an)[ \t]+[.!?,;:]"),
    # an instruction or question word pasted mid-sentence: "fast What does", "about Use get"
    "prompt_fragment": re.compile(
        r"\b[a-z]+[ \t]+(?:What|How|Why|Does|Do|Is|Are|Use|Call|Write|Create|Generate|Please|"
        r"Respond|Return)\b"
    ),
    # "a easy", "a exquisite" (not "a user", "a one-off", "a European")
    "article": re.compile(r"\ba[ \t]+(?!one\b|once\b|eu|uni|use|usu)[aeio]\w*", re.IGNORECASE),
    # "the the", "latte latte"
    "repeated_word": re.compile(r"\b([A-Za-z]{2,})[ \t]+\1\b", re.IGNORECASE),
}


def problems(text: str) -> list[str]:
    """The names of the rules `text` breaks, in `RULES` order (empty: it reads fine)."""
    return [name for name, pattern in RULES.items() if pattern.search(text)]
