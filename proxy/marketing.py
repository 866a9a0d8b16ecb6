"""The marketing rules one table holds: tasks, their structure, platform limits, brands.

The mock writes content to these rules and the quality scorer (`proxy.quality`)
checks answers against them, so the two can never disagree about what an email
needs or how long a post on X may be. Pure: no I/O, nothing of the mock.

The task comes from the `x-llm-task` header or is recognised in the prompt; the
brand from the `x-brand-context` header (JSON) or from "Brand: ..." style lines in
the system prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TASKS = (
    "social_media_post",
    "email",
    "ad_copy",
    "landing_page",
    "campaign_plan",
    "blog_post",
    "product_description",
    "content_variations",
    "brand_voice_analysis",
)

#: Platform limits, in characters (the providers' published maximums).
LIMITS = {
    "x": 280,
    "linkedin": 3000,
    "instagram": 2200,
    "facebook": 63206,
    "tiktok": 2200,
    "threads": 500,
    "google_ads_headline": 30,
    "google_ads_description": 90,
    "meta_ads_headline": 40,
    "meta_ads_primary_text": 125,
    "email_subject": 78,
    "email_preheader": 100,
}
#: Most hashtags a post may carry, per platform that caps them.
HASHTAG_LIMITS = {"instagram": 30, "tiktok": 30}


# Order matters: the first task whose words appear in the prompt wins.
_TASK_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (task, re.compile(words, re.IGNORECASE))
    for task, words in (
        (
            "brand_voice_analysis",
            r"\b(brand voice|tone of voice|voice analysis|analy[sz]e .*voice)",
        ),
        ("content_variations", r"\b(variations?|variants?|a/b|ab test|split test)\b"),
        ("campaign_plan", r"\b(campaign plan|marketing plan|campaign strategy|plan a campaign)"),
        ("landing_page", r"\blanding page\b"),
        ("ad_copy", r"\b(ad copy|ads?\b|advert|google ads|meta ads|ppc|tagline)"),
        ("email", r"\b(e-?mail|newsletter|subject line)\b"),
        ("blog_post", r"\b(blog|article)\b"),
        ("product_description", r"\b(product description|product page|describe (a|the|our))"),
        ("social_media_post", r"\b(social|tweet|post|linkedin|instagram|facebook|tiktok|x\.com)"),
    )
)
_TASK_ALIASES = {
    "social": "social_media_post",
    "social_post": "social_media_post",
    "post": "social_media_post",
    "ad": "ad_copy",
    "ads": "ad_copy",
    "landing": "landing_page",
    "campaign": "campaign_plan",
    "blog": "blog_post",
    "product": "product_description",
    "variations": "content_variations",
    "ab_test": "content_variations",
    "brand_voice": "brand_voice_analysis",
    "voice_analysis": "brand_voice_analysis",
}


@dataclass(frozen=True, slots=True)
class Brand:
    name: str = ""
    voice: tuple[str, ...] = ()
    audience: str = ""
    keywords: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()


def normalise_task(value: str | None) -> str | None:
    if not value:
        return None
    key = re.sub(r"[^a-z]+", "_", value.strip().lower()).strip("_")
    key = _TASK_ALIASES.get(key, key)
    return key if key in TASKS else None


def recognise_task(prompt: str) -> str | None:
    for task, pattern in _TASK_WORDS:
        if pattern.search(prompt):
            return task
    return None


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(p.strip() for p in re.split(r"[,;]", value) if p.strip())
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return ()


def _brand_from(data: Mapping[str, Any]) -> Brand | None:
    def first(*keys: str) -> Any:
        return next((data[k] for k in keys if data.get(k)), None)

    brand = Brand(
        name=str(first("name", "brand", "brand_name", "brandName") or ""),
        voice=_strings(first("voice", "tone", "tone_words", "voice_tone", "toneWords")),
        audience=str(first("audience", "target_audience", "targetAudience") or ""),
        keywords=_strings(first("keywords", "keywords_to_include", "include", "keywordsToInclude")),
        avoid=_strings(first("avoid", "words_to_avoid", "banned_words", "wordsToAvoid", "banned")),
    )
    return brand if brand != Brand() else None


def brand_from_header(value: str | None) -> Brand | None:
    """The `x-brand-context` header: a JSON object; an unreadable one is ignored."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return _brand_from(data) if isinstance(data, dict) else None


_SYSTEM_LINE = re.compile(
    r"^\s*[-*]?\s*(brand(?: name)?|voice|tone|audience|target audience|keywords(?: to include)?|"
    r"include|avoid|words to avoid|banned words|do not use)\s*:\s*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)


def brand_from_system(system: str) -> Brand | None:
    """Brand lines in a system prompt: "Brand: Acme", "Voice: warm, witty", "Avoid: cheap"."""
    found: dict[str, str] = {}
    for label, value in _SYSTEM_LINE.findall(system):
        label = label.lower()
        key = (
            "name" if label.startswith("brand") else
            "voice" if label in ("voice", "tone") else
            "audience" if "audience" in label else
            "keywords" if label.startswith(("keywords", "include")) else "avoid"
        )  # fmt: skip
        found.setdefault(key, value.strip().rstrip("."))
    return _brand_from(found) if found else None


def system_text(payload: Mapping[str, Any]) -> str:
    """The system prompt in any dialect: OpenAI system/developer turns, Anthropic `system`,
    Responses `instructions`, Gemini `systemInstruction`."""
    parts: list[str] = []
    for message in payload.get("messages") or []:
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            parts.append(_text(message.get("content")))
    parts.append(_text(payload.get("system")))
    parts.append(_text(payload.get("instructions")))
    instruction = payload.get("systemInstruction") or payload.get("system_instruction")
    if isinstance(instruction, dict):
        parts.append(_text(instruction.get("parts")))
    return "\n".join(p for p in parts if p)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def platform_of(prompt: str) -> str | None:
    lowered = prompt.lower()
    for platform, pattern in (
        ("x", r"\b(twitter|tweet|x\.com|on x|for x|x post|x/twitter)\b"),
        ("linkedin", r"\blinkedin\b"),
        ("instagram", r"\b(instagram|insta|ig)\b"),
        ("facebook", r"\bfacebook\b"),
        ("tiktok", r"\btiktok\b"),
        ("threads", r"\bthreads\b"),
        ("google_ads", r"\b(google ads|search ads?|adwords|ppc)\b"),
        ("meta_ads", r"\b(meta ads?|facebook ads?|instagram ads?)\b"),
    ):
        if re.search(pattern, lowered):
            return platform
    return None


def scrub(text: str, avoid: tuple[str, ...]) -> str:
    """Remove the brand's banned words (whole words, any case), line structure kept."""
    for word in avoid:
        text = re.sub(rf"[ \t]*\b{re.escape(word)}\b", "", text, flags=re.IGNORECASE)
    return text


def avoided_pattern(word: str) -> re.Pattern[str]:
    """How a brand's avoided word is found: the whole word, any case."""
    return re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Part:
    """One element a task's text answer must have: `count` or more lines matching `pattern`."""

    name: str
    pattern: re.Pattern[str]
    count: int = 1


def _label(label: str) -> re.Pattern[str]:
    """A "Label: value" line, tolerant of Markdown emphasis and list marks around the label."""
    return re.compile(rf"^[ \t>*_-]*{label}[*_]*\s*:[*_]*\s*\S", re.IGNORECASE | re.MULTILINE)


_HEADING = re.compile(r"^#\s+\S", re.MULTILINE)
_SECTION = re.compile(r"^#{2,3}\s+\S", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S", re.MULTILINE)

#: What each task's free-text answer must contain (JSON and tool answers are checked
#: against the request's schema instead). The mock's writers produce exactly these.
STRUCTURES: dict[str, tuple[Part, ...]] = {
    "social_media_post": (),
    "email": (
        Part("subject", _label("Subject")),
        Part("preheader", _label("Preheader")),
        Part("body", re.compile(r"\n\s*\n\s*\S")),
    ),
    "ad_copy": (
        Part("headline", _label(r"Headline(?:\s*\d+)?")),
        Part("description", _label(r"(?:Description|Primary text)(?:\s*\d+)?")),
        Part("cta", _label(r"(?:CTA|Call to action)")),
    ),
    "landing_page": (
        Part("hero", _HEADING),
        Part("sections", _SECTION, 3),
        Part("cta", re.compile(r"\[[^\]\n]+\]|\bCTA\b", re.IGNORECASE)),
    ),
    "campaign_plan": (
        Part("objective", _label("Objectives?")),
        Part("audience", _label("(?:Target )?Audience")),
        Part("channels", _label("Channels")),
        Part(
            "timeline",
            re.compile(
                r"^[ \t>*_#-]*(?:Timeline|Week\s*\d+|Phase\s*\d+)", re.IGNORECASE | re.MULTILINE
            ),
            2,
        ),
        Part("kpis", _label("(?:KPIs?|Metrics)")),
    ),
    "blog_post": (
        Part("title", _HEADING),
        Part("sections", _SECTION, 2),
    ),
    "product_description": (Part("features", _BULLET, 2),),
    "content_variations": (
        Part(
            "variants",
            re.compile(
                r"^[ \t>*_#-]*(?:Variant|Variation|Option|Version)\s+\w",
                re.IGNORECASE | re.MULTILINE,
            ),
            2,
        ),
    ),
    "brand_voice_analysis": (
        Part("summary", _label("Summary")),
        Part("tone", re.compile(r"^[ \t>*_#-]*Tone\b", re.IGNORECASE | re.MULTILINE)),
        Part("do", _label("Do")),
        Part("dont", _label("(?:Don't|Don\u2019t|Avoid)")),
    ),
}

#: Labelled fields of a task's answer that a platform limit applies to: (task, label, limit
#: key in LIMITS, or None to take it from the ad platform).
FIELD_LIMITS: tuple[tuple[str, str, str], ...] = (
    ("email", "Subject", "email_subject"),
    ("email", "Preheader", "email_preheader"),
    ("ad_copy", r"Headline(?:\s*\d+)?", "ads_headline"),
    ("ad_copy", r"(?:Description|Primary text)(?:\s*\d+)?", "ads_description"),
)


def ad_limits(platform: str | None) -> tuple[int, int]:
    """Headline and description limits of the ad platform (Google Ads unless Meta is named)."""
    if platform == "meta_ads":
        return LIMITS["meta_ads_headline"], LIMITS["meta_ads_primary_text"]
    return LIMITS["google_ads_headline"], LIMITS["google_ads_description"]


def limit_of(key: str, platform: str | None) -> int:
    headline, description = ad_limits(platform)
    return {"ads_headline": headline, "ads_description": description}.get(key) or LIMITS[key]


#: Tasks whose answer names the brand (a signature, a plan's brand line, a variant's body).
BRAND_NAME_TASKS = frozenset(
    {"email", "campaign_plan", "content_variations", "brand_voice_analysis"}
)
#: Tasks whose answer carries at least one of the brand's keywords.
BRAND_KEYWORD_TASKS = frozenset(
    {"email", "landing_page", "campaign_plan", "blog_post", "product_description"}
)
