"""Marketing content that fits the task, the brand and the platform's limits.

The app this mock stands in for runs nine content operations. An answer with the
right structure (an email has a subject, a preheader and a body; an ad a headline,
a description and a call to action), on brand (its name, tone, keywords, never
its banned words) and within the platform's limits lets the app's parsing,
rendering and validation run on the mock exactly as they will on a real model.

The task comes from the `x-llm-task` header or is recognised in the prompt; the
brand from the `x-brand-context` header (JSON) or from "Brand: ..." style lines in
the system prompt. Pure and deterministic from the request's random source.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
_INSTAGRAM_HASHTAGS = 30

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
    tags = w.hashtags(3 if platform != "instagram" else 8)
    if platform == "x":
        room = LIMITS["x"]
        tag_text = " ".join(tags[:2])
        return fit(body, room - len(tag_text) - 1) + (" " + tag_text if tag_text else "")
    text = body + ("\n\n" + " ".join(tags[:_INSTAGRAM_HASHTAGS]) if tags else "")
    return fit(text, LIMITS.get(platform, LIMITS["linkedin"]))


def _email(w: _Writer) -> str:
    subject = fit(f"{w.headline()}{' from ' + w.brand.name if w.brand.name else ''}", 78)
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
    headline_limit = 40 if w.platform == "meta_ads" else LIMITS["google_ads_headline"]
    description_limit = 125 if w.platform == "meta_ads" else LIMITS["google_ads_description"]
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


def scrub(text: str, avoid: tuple[str, ...]) -> str:
    """Remove the brand's banned words (whole words, any case), line structure kept."""
    for word in avoid:
        text = re.sub(rf"[ \t]*\b{re.escape(word)}\b", "", text, flags=re.IGNORECASE)
    return text


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
