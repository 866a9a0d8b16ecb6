"""Marketing content that fits the task, the brand and the platform's limits.

The app this mock stands in for runs nine content operations. An answer with the
right structure (an email has a subject, a preheader and a body; an ad a headline,
a description and a call to action), on brand (its name, tone, keywords, never
its banned words) and within the platform's limits lets the app's parsing,
rendering and validation run on the mock exactly as they will on a real model.

The rules themselves (tasks, structures, platform limits, brand reading) are the
table in `proxy.marketing`, which the quality scorer checks answers against.
Pure and deterministic from the request's random source.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.marketing import (
    HASHTAG_LIMITS,
    LIMITS,
    Brand,
    ad_limits,
    brand_from_header,
    normalise_task,
    platform_of,
    scrub,
)


@dataclass(frozen=True, slots=True)
class MockContext:
    """What the mock reads from the request's headers (the server passes them in)."""

    task: str | None = None
    brand: Brand | None = None
    request_id: str | None = None
    #: How many times this exact request was seen before: fault draws differ per retry.
    occurrence: int = 0
    #: The mock answers for a real request whose providers failed: no simulated faults
    #: or latency then, it is the availability of last resort.
    fallback: bool = False

    @classmethod
    def from_headers(
        cls,
        headers: Mapping[str, str],
        request_id: str | None = None,
        occurrence: int = 0,
        fallback: bool = False,
    ) -> MockContext:
        return cls(
            task=normalise_task(headers.get("x-llm-task")),
            brand=brand_from_header(headers.get("x-brand-context")),
            request_id=request_id,
            occurrence=occurrence,
            fallback=fallback,
        )


# -- writing ---------------------------------------------------------------------------------

_ABOUT = re.compile(
    r"\b(?:for|about|promoting|announcing|launching|introducing|on)\s+"
    r"(?:(?:a|an|the|our|my|their|new)\s+)*([^.,;:!?\n]+)",
    re.IGNORECASE,
)
_LEAD_VERBS = re.compile(
    r"^(?:please\s+)?(?:help(?: me)?(?: with)?|write|create|draft|generate|make|give me|compose|"
    r"describe|produce|plan)\s+"
    r"(?:me\s+)?(?:(?:a|an|the|some|\d+)\s+)?",
    re.IGNORECASE,
)
_TASK_NOUNS = re.compile(
    r"\b(social media post|post|email|ad copy|ads?|landing page|campaign plan|campaign|blog post|"
    r"product description|variations?|variants?|brand voice analysis|tagline|tweet|caption|"
    r"newsletter|article|copy|on (x|twitter|linkedin|instagram|facebook|tiktok))\b",
    re.IGNORECASE,
)


def subject_of(prompt: str) -> str:
    """What the content is about, in a few words: "a lamp" from "... description for a lamp"."""
    first_line = prompt.strip().splitlines()[0] if prompt.strip() else ""
    first_line = re.sub(r"\([^)]*\)", "", first_line)
    match = _ABOUT.search(first_line)
    text = match.group(1) if match else _LEAD_VERBS.sub("", first_line)
    text = _TASK_NOUNS.sub("", text)
    drop = {"a", "an", "the", "for", "our", "my", "their", "your", "new", "some"}
    words = [w for w in re.split(r"\s+", text) if w and w.lower() not in drop]
    return " ".join(words[:6]).strip(" -") or "our latest launch"


def fit(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ", 0, limit + 1)
    cut = cut[:space] if space > limit // 2 else text[:limit]
    return cut.rstrip(" ,;:-")[:limit]


_TONE_WORDS = {
    "playful": ["fun", "bright", "joyful"],
    "friendly": ["easy", "welcoming", "warm"],
    "professional": ["reliable", "proven", "efficient"],
    "luxury": ["refined", "exquisite", "timeless"],
    "bold": ["bold", "fearless", "standout"],
    "warm": ["warm", "thoughtful", "caring"],
    "witty": ["clever", "smart", "surprising"],
    "confident": ["confident", "proven", "strong"],
}
_DEFAULT_ADJECTIVES = ["fresh", "simple", "smart", "trusted", "better"]
_CTAS = ["Shop now", "Learn more", "Get started", "Try it today", "Discover more", "Sign up"]


@dataclass
class _Writer:
    rng: random.Random
    topic: str
    brand: Brand
    platform: str | None
    decks: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.brand.name or "we"

    def adjective(self) -> str:
        pool = [w for tone in self.brand.voice for w in _TONE_WORDS.get(tone.lower(), [])]
        return self.rng.choice(pool or _DEFAULT_ADJECTIVES)

    def cta(self) -> str:
        return self.rng.choice(_CTAS)

    def audience(self) -> str:
        return self.brand.audience or "people who care about quality"

    def keywords_sentence(self) -> str:
        if not self.brand.keywords:
            return ""
        return f"Think {', '.join(self.brand.keywords)}."

    def hashtags(self, count: int) -> list[str]:
        source = [*self.brand.keywords, self.topic, self.brand.name]
        tags = ["#" + re.sub(r"[^A-Za-z0-9]", "", w.title()) for w in source if w]
        return list(dict.fromkeys(t for t in tags if len(t) > 1))[:count]

    def _deal(self, kind: str, options: list[str]) -> str:
        """The next of `options`, each used once before any repeats (no copy-paste feel)."""
        deck = self.decks.get(kind)
        if not deck:
            deck = self.decks[kind] = self.rng.sample(options, k=len(options))
        return deck.pop()

    def headline(self) -> str:
        return self._deal(
            "headline",
            [
                f"Meet the {self.adjective()} {self.topic}",
                f"{self.topic.capitalize()}, made {self.adjective()}",
                f"Your {self.adjective()} {self.topic} is here",
                f"Say hello to a {self.adjective()} {self.topic}",
                f"The {self.topic} you have been waiting for",
            ],
        )

    def benefit(self) -> str:
        return self._deal(
            "benefit",
            [
                f"Built for {self.audience()}, the {self.topic} fits right into your day.",
                f"The {self.topic} saves time and feels {self.adjective()} from the first use.",
                f"Every detail of the {self.topic} was chosen with {self.audience()} in mind.",
                f"Quality you can see, value you can feel: that is the {self.topic}.",
                f"Less hassle, more of what you love, thanks to the {self.topic}.",
                f"Thousands already rely on the {self.topic} every single day.",
                f"Simple to start with, hard to live without: the {self.topic}.",
                f"Designed to last, the {self.topic} keeps up with real life.",
            ],
        )


def _social(w: _Writer) -> str:
    platform = w.platform or "linkedin"
    body = f"{w.headline()}. {w.benefit()} {w.keywords_sentence()}".strip()
    if w.brand.name:
        body += f" From {w.brand.name}."
    body += f" {w.cta()}."
    tags = w.hashtags(3 if platform != "instagram" else 8)[: HASHTAG_LIMITS.get(platform, 30)]
    if platform == "x":
        room = LIMITS["x"]
        tag_text = " ".join(tags[:2])
        return fit(body, room - len(tag_text) - 1) + (" " + tag_text if tag_text else "")
    text = body + ("\n\n" + " ".join(tags) if tags else "")
    return fit(text, LIMITS.get(platform, LIMITS["linkedin"]))


def _email(w: _Writer) -> str:
    subject = fit(
        f"{w.headline()}{' from ' + w.brand.name if w.brand.name else ''}", LIMITS["email_subject"]
    )
    preheader = fit(f"{w.benefit()}", LIMITS["email_preheader"])
    body = "\n\n".join(
        [
            "Hi there,",
            w.benefit(),
            f"{w.keywords_sentence()} It is {w.adjective()} and ready for you.".strip(),
            f"{w.cta()}: https://example.com/{re.sub(r'[^a-z0-9]+', '-', w.topic.lower())}",
            f"Warm regards,\n{w.brand.name or 'The team'}",
        ]
    )
    return f"Subject: {subject}\nPreheader: {preheader}\n\n{body}"


def _ad(w: _Writer) -> str:
    headline_limit, description_limit = ad_limits(w.platform)
    headlines = [w.headline(), w.headline()]
    # Search ads carry the brand as one headline when it fits, as advertisers do.
    fits = w.brand.name and len(w.brand.name) <= headline_limit
    headlines.append(w.brand.name if fits else w.headline())
    descriptions = [f"{w.benefit()} {w.keywords_sentence()}".strip(), w.benefit()]
    lines = [f"Headline {i}: {fit(h, headline_limit)}" for i, h in enumerate(headlines, 1)]
    lines += [
        f"Description {i}: {fit(d, description_limit)}" for i, d in enumerate(descriptions, 1)
    ]
    lines.append(f"CTA: {w.cta()}")
    return "\n".join(lines)


def _landing(w: _Writer) -> str:
    return "\n\n".join(
        [
            f"# {w.headline()}\n{w.benefit()}\n[{w.cta()}]",
            "## Why you'll love it\n" + "\n".join(f"- {w.benefit()}" for _ in range(3)),
            f"## How it works\n1. Choose your {w.topic}.\n2. Make it yours.\n3. Enjoy it daily.",
            f'## What customers say\n"The {w.topic} is {w.adjective()} and worth it." - Maya R.',
            f"## FAQ\n**Is the {w.topic} right for me?** Yes, if you are one of "
            f"{w.audience()}.\n**Can I return it?** Within 30 days, no questions asked.",
            f"## Ready?\n{w.keywords_sentence()} [{w.cta()}]".replace("\n ", "\n"),
        ]
    )


def _campaign(w: _Writer) -> str:
    channels = w.rng.sample(["email", "instagram", "linkedin", "google ads", "blog", "x"], k=4)
    weeks = [
        f"- Week {i + 1}: {phase} on {channel} - assets: {asset}"
        for i, (phase, channel, asset) in enumerate(
            zip(
                ["Teaser", "Launch", "Amplify", "Convert"],
                channels,
                ["2 teaser posts", "launch email, 3 ads", "blog post, 4 posts", "retargeting ads"],
                strict=True,
            )
        )
    ]  # fmt: skip
    return "\n".join(
        [
            f"Campaign: {w.headline()}",
            *([f"Brand: {w.brand.name}"] if w.brand.name else []),
            *([f"Key messages: {', '.join(w.brand.keywords)}"] if w.brand.keywords else []),
            f"Objective: grow awareness and sales of the {w.topic}",
            f"Audience: {w.audience()}",
            f"Channels: {', '.join(channels)}",
            "Timeline:",
            *weeks,
            "KPIs: reach, click-through rate, conversions, cost per acquisition",
            "Budget split: "
            + ", ".join(f"{c} {p}%" for c, p in zip(channels, (40, 25, 20, 15), strict=True)),
        ]
    )


def _blog(w: _Writer) -> str:
    sections = [
        f"## {title}\n{w.benefit()} {w.benefit()}"
        for title in (f"Why the {w.topic} matters", "What to look for", "Getting started")
    ]
    return "\n\n".join(
        [
            f"# {w.headline()}",
            f"{w.benefit()} {w.keywords_sentence()}".strip(),
            *sections,
            f"## Conclusion\n{w.benefit()} {w.cta()}.",
        ]
    )


def _product(w: _Writer) -> str:
    features = "\n".join(f"- {w.benefit()}" for _ in range(3))
    return (
        f"{w.headline()}\n\n{w.benefit()} {w.keywords_sentence()}".rstrip()
        + f"\n\nFeatures:\n{features}\n\n{w.cta()}."
    )


def _variations(w: _Writer, count: int) -> str:
    angles = ["Benefit-led", "Urgency", "Social proof", "Question hook", "Story"]
    return "\n\n".join(
        f"Variant {chr(65 + i)} ({angles[i % len(angles)]}):\nHeadline: {w.headline()}\n"
        f"Body: {w.benefit()}{' ' + w.brand.name + '.' if w.brand.name else ''}\nCTA: {w.cta()}"
        for i in range(count)
    )


def _voice(w: _Writer) -> str:
    tones = list(w.brand.voice) or ["friendly", "confident", "clear"]
    scores = "\n".join(f"- {t.capitalize()}: {w.rng.randint(6, 9)}/10" for t in tones)
    return "\n".join(
        [
            f"Brand voice analysis{' for ' + w.brand.name if w.brand.name else ''}",
            f"Summary: the copy reads {', '.join(tones)} and speaks to {w.audience()}.",
            "Tone attributes:",
            scores,
            f"Consistency score: {w.rng.randint(70, 95)}/100",
            "Do: use short sentences, lead with benefits, keep one call to action.",
            "Don't: overpromise, stack jargon, or bury the offer.",
            f"Suggested rewrite: {w.headline()}. {w.benefit()}",
        ]
    )


_WRITERS: dict[str, Callable[[_Writer], str]] = {
    "social_media_post": _social,
    "email": _email,
    "ad_copy": _ad,
    "landing_page": _landing,
    "campaign_plan": _campaign,
    "blog_post": _blog,
    "product_description": _product,
    "brand_voice_analysis": _voice,
}


def write(task: str, rng: random.Random, prompt: str, brand: Brand | None) -> str:
    """The content for `task`, on brand, within the platform's limits."""
    brand = brand or Brand()
    voice = task == "brand_voice_analysis"
    topic = (brand.name or "your brand") if voice else subject_of(prompt)
    writer = _Writer(rng, topic, brand, platform_of(prompt))
    if task == "content_variations":
        found = re.search(r"\b([2-5]|two|three|four|five)\b", prompt.lower())
        words = {"two": 2, "three": 3, "four": 4, "five": 5}
        count = (
            (int(found.group(1)) if found.group(1).isdigit() else words[found.group(1)])
            if found
            else 2
        )
        text = _variations(writer, count)
    else:
        text = _WRITERS[task](writer)
    return scrub(text, brand.avoid)


#: JSON mode with no schema: the fields each task's consumers read.
TASK_SCHEMAS: dict[str, dict[str, Any]] = {
    task: {"type": "object", "properties": {k: {"type": "string"} for k in keys},
           "required": list(keys), "additionalProperties": False}
    for task, keys in (
        ("social_media_post", ("text", "hashtags")),
        ("email", ("subject", "preheader", "body", "cta")),
        ("ad_copy", ("headline", "description", "cta")),
        ("landing_page", ("headline", "subheadline", "body", "cta")),
        ("campaign_plan", ("name", "objective", "audience", "timeline")),
        ("blog_post", ("title", "intro", "body", "conclusion")),
        ("product_description", ("title", "description", "cta")),
        ("content_variations", ("variant_a", "variant_b")),
        ("brand_voice_analysis", ("summary", "tone", "recommendations")),
    )
}  # fmt: skip
