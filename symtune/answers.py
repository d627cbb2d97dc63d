"""Answer normalisation: the answer in a generated line, for exact match against a target."""

import re

QUOTES = "'\"`"


def normalize(text: str, pattern: str | None = None) -> str | None:
    """The answer in a generated line, for exact match: the first match of `pattern` (a task's
    output regex) if given, stripped, casefolded and unquoted. None: no answer found."""
    if pattern is not None:
        found = re.search(pattern, text)
        if not found:
            return None
        text = found.group(0)
    text = text.strip().casefold()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in QUOTES:
        text = text[1:-1].strip()
    return text
