"""Notification texts: every catalogue complete, every language readable."""

from __future__ import annotations

import re
import string

import pytest

from alerts.channels import LANGUAGES, notification_text
from alerts.channels.texts import catalogue, supported_language, translate

SEVERITIES = ("critical", "high", "normal", "technical")


def placeholders(text: str) -> set[str]:
    """The {names} a format string fills in."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("severity", SEVERITIES)
def test_subject_and_body_name_the_resident_and_the_severity(language: str, severity: str) -> None:
    subject, body = notification_text(
        language,
        alert_title="Panic button",
        resident_name="Guðrún Sigurðardóttir",
        severity=severity,
        tier=2,
        console_url="https://vaki.example/alerts/42",
    )

    word = translate(language, severity, "severity")
    assert "Guðrún Sigurðardóttir" in subject
    assert "Guðrún Sigurðardóttir" in body
    assert subject.startswith(word.upper())
    assert word in body
    assert "2" in body
    assert "https://vaki.example/alerts/42" in body
    assert "{" not in subject + body


def test_english_reads_as_specified() -> None:
    subject, body = notification_text(
        "en",
        alert_title="Panic button",
        resident_name="Guðrún Sigurðardóttir",
        severity="critical",
        tier=1,
        console_url=None,
    )

    assert subject == "CRITICAL: Panic button — Guðrún Sigurðardóttir"
    assert body.splitlines() == [
        "Panic button — Guðrún Sigurðardóttir",
        "Severity: critical",
        "Escalation tier 1",
        "Acknowledge the alert in the Vaki console.",
    ]


def test_icelandic_is_not_english() -> None:
    subject, body = notification_text(
        "is",
        alert_title="Panic button",
        resident_name="Guðrún Sigurðardóttir",
        severity="critical",
        tier=1,
        console_url=None,
    )

    assert translate("is", "critical", "severity") != "critical"
    assert subject == "BRÁÐATILVIK: Neyðarhnappur — Guðrún Sigurðardóttir"
    assert "critical" not in body.lower()
    assert "Neyðarhnappur" in body


@pytest.mark.parametrize("language", ["de", "", "xx-YY"])
def test_an_unknown_language_falls_back_to_english(language: str) -> None:
    assert notification_text(
        language,
        alert_title="Fall detected",
        resident_name="Jón",
        severity="high",
        tier=3,
        console_url=None,
    ) == notification_text(
        "en",
        alert_title="Fall detected",
        resident_name="Jón",
        severity="high",
        tier=3,
        console_url=None,
    )


@pytest.mark.parametrize(("tag", "language"), [("is-IS", "is"), ("sv_FI", "sv"), ("PL", "pl")])
def test_regional_tags_use_their_language(tag: str, language: str) -> None:
    assert supported_language(tag) == language


def test_a_title_missing_from_the_catalogues_is_used_as_given() -> None:
    subject, _ = notification_text(
        "fi",
        alert_title="Jääkaapin ovi auki",
        resident_name="Aino",
        severity="technical",
        tier=1,
        console_url=None,
    )

    assert subject == "TEKNINEN: Jääkaapin ovi auki — Aino"


def test_every_catalogue_translates_every_message_with_the_same_placeholders() -> None:
    reference = {(message.context, message.id) for message in catalogue("en") if message.id}
    assert {("severity", severity) for severity in SEVERITIES} <= reference
    problems = []
    for language in LANGUAGES:
        messages = {(message.context, message.id): message for message in catalogue(language)}
        for key in sorted(reference, key=str):
            message = messages.get(key)
            if message is None or not message.string or message.fuzzy:
                problems.append(f"{language}: no translation for {key}")
            elif placeholders(str(message.string)) != placeholders(str(key[1])):
                problems.append(f"{language}: placeholders differ in {key}")
        extra = {key for key in messages if key[1]} - reference
        if extra:
            problems.append(f"{language}: not in the English catalogue: {sorted(extra, key=str)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language != "en"])
def test_every_other_language_really_translates_severities_and_alarm_names(
    language: str,
) -> None:
    same = [
        message.id
        for message in catalogue(language)
        if message.context in ("severity", "alert")
        and message.string == message.id
        # "normal" is the same word in Swedish.
        and not (language == "sv" and message.id == "normal")
    ]
    assert not same, f"{language} leaves these in English: {same}"


def test_subject_fits_a_lock_screen_line_in_every_language() -> None:
    for language in LANGUAGES:
        subject, _ = notification_text(
            language,
            alert_title="Vital sign out of range",
            resident_name="Guðrún Sigurðardóttir",
            severity="high",
            tier=1,
            console_url=None,
        )
        assert len(subject) <= 90, subject
        assert not re.search(r"\s{2,}", subject)
