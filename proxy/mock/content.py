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
from proxy.mock.phrases import article, capitalised, plural, read


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


def fit(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ", 0, limit + 1)
    cut = cut[:space] if space > limit // 2 else text[:limit]
    # A cut phrase must not end on a word that leads into what was cut ("The our").
    cut = _DANGLING.sub("", cut.rstrip(" ,;:-"))
    return cut.rstrip(" ,;:-")[:limit]


_DANGLING = re.compile(
    r"(?:\s+(?:a|an|the|our|my|your|their|its|of|to|for|with|and|or|in|on|at|from|by|that|"
    r"made|is|are|was|you|have|been))+$",
    re.IGNORECASE,
)


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
    #: Who and how, from the prompt when the brand does not say: "busy parents", "playful".
    audience_hint: str = ""
    tones: tuple[str, ...] = ()
    decks: dict[str, list[int]] = field(default_factory=dict)
    #: Headlines already used, so short forms chosen to fit a limit do not repeat.
    written: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.brand.name or "we"

    def adjective(self) -> str:
        voice = self.brand.voice or self.tones
        pool = [w for tone in voice for w in _TONE_WORDS.get(tone.lower(), [])]
        return self.rng.choice(pool or _DEFAULT_ADJECTIVES)

    def cta(self) -> str:
        return self.rng.choice(_CTAS)

    def audience(self) -> str:
        return self.brand.audience or self.audience_hint or "people who care about quality"

    def verb(self, singular: str, many: str) -> str:
        """The verb form that agrees with the topic: "the lamp fits", "the shoes fit"."""
        return many if plural(self.topic) else singular

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
            deck = self.decks[kind] = self.rng.sample(range(len(options)), k=len(options))
        return options[deck.pop()]

    def _headlines(self, topic: str, adjective: str) -> list[str]:
        hello = f"{article(adjective)} {adjective}" if not plural(topic) else adjective
        return [
            f"Meet the {adjective} {topic}",
            f"{capitalised(topic)}, made {adjective}",
            f"Your {adjective} {topic} {'are' if plural(topic) else 'is'} here",
            f"Say hello to {hello} {topic}",
            f"The {topic} you have been waiting for",
        ]

    def headline(self, limit: int | None = None) -> str:
        """A headline on the topic; within `limit` characters by choosing a shorter form
        (then the topic's head noun) rather than cutting words off mid-phrase."""
        adjective = self.adjective()
        dealt = self._deal("headline", self._headlines(self.topic, adjective))
        if limit is None or len(dealt) <= limit:
            self.written.add(dealt)
            return dealt
        for topic in (self.topic, self.topic.split()[-1]):
            fitting = [h for h in self._headlines(topic, adjective) if len(h) <= limit]
            fresh = [h for h in fitting if h not in self.written]
            if fresh or fitting:
                self.written.add((fresh or fitting)[0])
                return (fresh or fitting)[0]
        return fit(capitalised(self.topic.split()[-1]), limit)

    def benefit(self) -> str:
        topic, verb = self.topic, self.verb
        if self.topic.split()[-1].lower() in _OCCASIONS:
            # A sale or an event is not a product: it does not "last" or "save time".
            return self._deal(
                "benefit",
                [
                    f"The {topic} {verb('runs', 'run')} for a limited time, so now is the moment.",
                    f"Built for {self.audience()}, the {topic} {verb('makes', 'make')} it "
                    "easy to treat yourself.",
                    f"Mark your calendar: the {topic} is one you will not want to miss.",
                    f"Everything you love, and more of it, during the {topic}.",
                    f"Thousands are already planning around the {topic}.",
                    f"Less hassle, more of what you love, thanks to the {topic}.",
                ],
            )
        return self._deal(
            "benefit",
            [
                f"Built for {self.audience()}, the {topic} {verb('fits', 'fit')} right into "
                "your day.",
                f"The {topic} {verb('saves', 'save')} time and {verb('feels', 'feel')} "
                f"{self.adjective()} from the first use.",
                f"Every detail of the {topic} was chosen with {self.audience()} in mind.",
                f"Quality you can see, value you can feel: that is the {topic}.",
                f"Less hassle, more of what you love, thanks to the {topic}.",
                f"Thousands already rely on the {topic} every single day.",
                f"Simple to start with, hard to live without: the {topic}.",
                f"Designed to last, the {topic} {verb('keeps', 'keep')} up with real life.",
            ],
        )


#: Head nouns of subjects that are occasions, not products (their own benefit lines).
_OCCASIONS = frozenset(
    {"sale", "sales", "offer", "deal", "deals", "discount", "event", "webinar", "launch",
     "promotion", "giveaway", "contest", "conference", "workshop", "festival", "week", "day",
     "weekend", "anniversary", "opening"}
)  # fmt: skip


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
        f"{w.headline(LIMITS['email_subject'] - len(' from ' + w.brand.name))}"
        f"{' from ' + w.brand.name if w.brand.name else ''}",
        LIMITS["email_subject"],
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
    headlines = [w.headline(headline_limit), w.headline(headline_limit)]
    # Search ads carry the brand as one headline when it fits, as advertisers do.
    fits = w.brand.name and len(w.brand.name) <= headline_limit
    headlines.append(w.brand.name if fits else w.headline(headline_limit))
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
            f"## FAQ\n**Is the {w.topic} right for me?** Yes, if you are among "
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
    reading = read(prompt)
    topic = (brand.name or "brand voice") if voice else reading.subject
    writer = _Writer(rng, topic, brand, platform_of(prompt), reading.audience, reading.tones)
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
