"""Plain-sentence captions of metadata rows."""

from __future__ import annotations

from typing import Any, Mapping

#: health code → (adjective before "subject", phrase after it)
HEALTH_WORDS = {"H": ("healthy", ""), "PD": ("", "with Parkinson's disease")}
GENDER_WORDS = {"F": "female", "M": "male"}


def _present(value: Any) -> bool:
    return value is not None and value == value and str(value) != ""  # None, NaN, ""


def _article(word: str) -> str:
    spoken_vowel = word[0] in "aeiou" or word.startswith(("8", "11 ", "18 "))
    return "an" if spoken_vowel else "a"


def describe_subject(row: Mapping[str, Any], extra: str = "") -> str:
    """``an EEG spectrogram of a 62 year old, healthy, male subject`` (+ `` <extra>``)."""
    words, after = [], ""
    age = row.get("age")
    if _present(age):
        words.append(f"{int(float(age))} year old")
    health = row.get("health")
    if _present(health):
        before, after = HEALTH_WORDS.get(str(health), (str(health), ""))
        if before:
            words.append(before)
    gender = row.get("gender")
    if _present(gender):
        words.append(GENDER_WORDS.get(str(gender), str(gender)))
    if words:
        text = f"an EEG spectrogram of {_article(words[0])} " + ", ".join(words) + " subject"
    elif after:
        text = "an EEG spectrogram of a subject"
    else:
        text = "an EEG spectrogram"
    if after:
        text += f" {after}"
    return f"{text} {extra}".strip() if extra else text


def caption_of(row: Mapping[str, Any], registry: Any = None) -> str:
    """The caption of a row by its data set plugin's ``caption`` (the one function per data set
    that preprocessing, ``sd generate`` and ``sd meta build`` all use).

    Without the plugin (not installed, or no registry) the row's own caption is kept, else
    :func:`describe_subject`; a plugin whose caption fails on a row lacking columns it expects
    (a generated row, say) falls back to :func:`describe_subject` too."""
    plugin = None
    if registry is not None:
        plugin = getattr(registry, "datasets", {}).get(str(row.get("dataset", "")))
    if plugin is None:
        own = row.get("caption")
        return str(own) if _present(own) else describe_subject(row)
    try:
        return str(plugin.caption(row))
    except Exception:  # noqa: BLE001 - see the docstring
        return describe_subject(row)
