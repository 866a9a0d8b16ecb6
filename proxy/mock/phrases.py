"""What a prompt is about, as noun phrases a sentence can be built on.

The mock writes "Meet the bold {subject}" and fills a tool's `product` argument, so
the subject must be a noun phrase ("oat-milk latte"), never a cut of the prompt
("our latest", "What does latte cost?", "Use get price tool"). A small set of rules
does it, no NLP model: instructions and formatting sentences are set aside, the
phrase after "about / announcing / for ..." is taken up to where its clause ends,
determiners, style words and task nouns are dropped; a question gives its noun
("What does a latte cost?" -> "latte"). The audience ("for busy parents"), the
tone ("in a playful tone") and a place ("in Berlin") are read the same way.
Pure and cheap: a few regexes over the prompt's first sentences.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

#: The subject when the prompt names none: reads well after "the" and an adjective.
DEFAULT_SUBJECT = "new collection"
#: Characters of the prompt read: the subject is stated early.
_HEAD = 2000

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
#: Sentences that instruct rather than say what the content is about.
_INSTRUCTION = re.compile(
    r"^\s*(?:please\s+)?(?:use|call|invoke|run|respond|reply|answer|return|format|output|"
    r"keep|make sure|ensure|don'?t|do not|never|always|avoid|include|mention|limit|"
    r"you are|you're|act as|as an?|think|here is|the output|json)\b",
    re.IGNORECASE,
)
#: Words that introduce what the content is about; "for" also introduces an audience.
_INTRO = re.compile(
    r"\b(?=[adfilopsADFILOPS])"  # a first letter of one of the words: skips most positions
    r"(?:about|promoting|announcing|launching|introducing|featuring|showcasing|"
    r"advertising|selling|describing|for|on)\s+",
    re.IGNORECASE,
)
#: Words that end the subject's clause ("... latte for busy parents"), and what "and" may
#: lead into ("... and mention the price"). Word sets, not one big case-insensitive regex:
#: `re` tries such an alternation at every position, which was most of the mock's time.
_CLAUSE_WORDS = frozenset(
    [
        "to",
        "that",
        "which",
        "who",
        "with",
        "in",
        "on",
        "at",
        "by",
        "from",
        "for",
        "about",
        "using",
        "targeting",
        "aimed",
        "highlighting",
        "emphasising",
        "emphasizing",
        "focusing",
        "featuring",
        "including",
        "so",
        "as",
        "under",
        "within",
        "without",
        "while",
        "because",
        "but",
        "then",
        "where",
        "when",
    ]
)
_AND_VERBS = frozenset(
    ["mention", "include", "highlight", "keep", "make", "use", "add", "end", "say"]
)
#: Punctuation (or a spaced dash) that ends the clause.
_CLAUSE_MARK = re.compile('[,;:()\\[\\]"]|\\s[-\u2013\u2014]\\s')
_DETERMINERS = frozenset(
    [
        "a",
        "an",
        "the",
        "our",
        "my",
        "their",
        "your",
        "his",
        "her",
        "its",
        "this",
        "that",
        "these",
        "those",
        "some",
        "any",
    ]
)
#: Words about the copy, not the thing: "a short, punchy post".
_STYLE = frozenset(
    [
        "short",
        "long",
        "brief",
        "quick",
        "catchy",
        "punchy",
        "engaging",
        "compelling",
        "persuasive",
        "creative",
        "viral",
        "fun",
        "friendly",
        "professional",
        "playful",
        "witty",
        "bold",
        "warm",
        "formal",
        "casual",
        "snappy",
        "clever",
        "informative",
        "detailed",
        "simple",
        "concise",
        "new",
        "latest",
        "something",
        "anything",
        "content",
        "text",
        "hello",
        "hi",
        "hey",
        "thanks",
    ]
)
#: Words about the task or the platform, not the thing (one word, or two together).
_TASK_WORDS = frozenset(
    [
        "post",
        "posts",
        "email",
        "emails",
        "e-mail",
        "newsletter",
        "newsletters",
        "ad",
        "ads",
        "advert",
        "adverts",
        "article",
        "articles",
        "description",
        "descriptions",
        "variation",
        "variations",
        "variant",
        "variants",
        "headline",
        "headlines",
        "tagline",
        "taglines",
        "tweet",
        "tweets",
        "caption",
        "captions",
        "copy",
        "thread",
        "threads",
        "reel",
        "reels",
        "blog",
        "blogs",
        "campaign",
        "campaigns",
        "google",
        "meta",
        "search",
        "linkedin",
        "instagram",
        "facebook",
        "tiktok",
        "twitter",
        "x",
    ]
)
_TASK_PAIRS = frozenset(
    {("social", "media"), ("landing", "page"), ("landing", "pages"), ("product", "description"),
     ("product", "descriptions"), ("campaign", "plan"), ("campaign", "plans")}
)  # fmt: skip
_QUESTION = re.compile(
    r"^\s*(?:what(?:'s| is| are| does| do)?|how(?: much| many)?|where|when|which|who|why|"
    r"is|are|does|do|can|could|would|will|should|tell me)\b",
    re.IGNORECASE,
)
#: Words of a question that are not its noun: "What does a latte cost?".
_QUESTION_WORDS = frozenset(
    [
        "what",
        "what's",
        "how",
        "where",
        "when",
        "which",
        "who",
        "why",
        "is",
        "are",
        "does",
        "do",
        "did",
        "can",
        "could",
        "would",
        "will",
        "should",
        "tell",
        "me",
        "much",
        "many",
        "cost",
        "costs",
        "price",
        "priced",
        "prices",
        "available",
        "sell",
        "sold",
        "buy",
        "get",
        "have",
        "has",
        "in",
        "stock",
        "open",
        "ship",
        "shipping",
        "deliver",
        "delivery",
        "it",
        "there",
        "be",
        "you",
        "i",
        "we",
        "us",
        "please",
        "right",
        "now",
        "today",
        "currently",
    ]
)
_AUDIENCE_NOUNS = frozenset(
    [
        "people",
        "parents",
        "moms",
        "mums",
        "dads",
        "owners",
        "teams",
        "students",
        "professionals",
        "developers",
        "engineers",
        "customers",
        "buyers",
        "shoppers",
        "travelers",
        "travellers",
        "runners",
        "gamers",
        "families",
        "founders",
        "marketers",
        "millennials",
        "seniors",
        "teens",
        "teenagers",
        "kids",
        "readers",
        "users",
        "fans",
        "lovers",
        "enthusiasts",
        "commuters",
        "executives",
        "managers",
        "leaders",
        "creators",
        "nurses",
        "teachers",
        "women",
        "men",
        "employees",
        "clients",
        "subscribers",
        "members",
        "beginners",
        "athletes",
        "foodies",
        "homeowners",
        "retirees",
        "startups",
        "businesses",
        "smbs",
        "freelancers",
        "designers",
        "cyclists",
        "hikers",
        "gardeners",
        "cooks",
    ]
)
#: What introduces an audience; the noun that ends it is looked up in `_AUDIENCE_NOUNS`.
_FOR_WHOM = re.compile(
    r"\b(?=[aftAFT])(?:for|targeting|aimed at|to reach|to|audience:?)\s+", re.IGNORECASE
)
_TONE = re.compile(
    r"\b(?:in|with)\s+an?\s+([a-z]+)(?:\s*(?:,|and)\s*([a-z]+))?\s+(?:tone|voice|style)\b"
    r"|\b(?:tone|voice)\s*:\s*([a-z]+)",
    re.IGNORECASE,
)
_PLACE = re.compile(r"\b(?:in|at|near|to|from)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b")
#: A request to write: its object is the subject unless "about / for ..." names one.
_LEAD = re.compile(
    r"^\s*(?:please\s+)?(?:help(?: me)?(?: with)?|write|create|draft|generate|make|"
    r"give me|compose|describe|produce|plan|analy[sz]e|promote|announce|launch|introduce|"
    r"advertise|sell|pitch|market)\s+",
    re.IGNORECASE,
)
#: An errand (what tool-using apps ask): its object is the subject, whatever follows.
_ERRAND = re.compile(
    r"^\s*(?:please\s+)?(?:order|buy|book|reserve|find|get|show me|check|look up|search for|"
    r"add|cancel|track)\s+",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9][\w'&+-]*")


def _sentences(prompt: str) -> list[str]:
    """The prompt's sentences that say what to write, instructions set aside."""
    found = [s.strip() for s in _SENTENCE.findall(prompt[:_HEAD]) if s.strip()]
    return [s for s in found if not _INSTRUCTION.match(s)] or found[:1]


def _clean(phrase: str) -> str:
    """A candidate phrase cut at its clause's end, less determiners, style and task words."""
    mark = _CLAUSE_MARK.search(phrase)
    tokens = _WORD.findall(phrase[: mark.start()] if mark else phrase)
    lowered = [t.lower() for t in tokens]
    words: list[str] = []
    skip = False
    for i, (token, low) in enumerate(zip(tokens, lowered, strict=True)):
        after = lowered[i + 1] if i + 1 < len(tokens) else ""
        if i and (low in _CLAUSE_WORDS or (low == "and" and after in _AND_VERBS)):
            break
        if skip or (low, after) in _TASK_PAIRS:
            skip = not skip
            continue
        if low not in _TASK_WORDS and not token.isdigit():
            words.append(token)
    while words and (words[0].lower() in _DETERMINERS or words[0].lower() in _STYLE):
        words.pop(0)
    words = [w for w in words if w.lower() not in _DETERMINERS][:5]
    while words and words[-1].lower() in _DETERMINERS | {"and", "or", "of", "to", "me"}:
        words.pop()
    return " ".join(words)


def _is_audience(phrase: str) -> bool:
    words = phrase.lower().split()
    return bool(words) and words[-1] in _AUDIENCE_NOUNS


def _question_noun(sentence: str) -> str:
    if not _QUESTION.match(sentence):
        return ""
    words: list[str] = []
    for word in _WORD.findall(sentence):
        lowered = word.lower()
        if lowered in {"in", "at", "for", "on", "near", "with", "from", "to"} and words:
            break
        if lowered not in _QUESTION_WORDS and lowered not in _DETERMINERS:
            words.append(word)
    return " ".join(words[:3])


def subject_of(prompt: str) -> str:
    """What the content is about: "oat-milk latte" from "Write a post announcing our new
    oat-milk latte for busy parents"; `DEFAULT_SUBJECT` when the prompt names nothing."""
    for sentence in _sentences(prompt):
        sentence = re.sub(r"\([^)]*\)", "", sentence)
        asked = _question_noun(sentence)
        if asked:
            return asked
        errand = _ERRAND.match(sentence)
        if errand:  # "Order 2 lattes for pickup": the object, not what follows "for"
            phrase = _clean(sentence[errand.end() :])
            if phrase:
                return phrase
        for intro in _INTRO.finditer(sentence):
            phrase = _clean(sentence[intro.end() :])
            if phrase and not _is_audience(phrase):
                return phrase
        phrase = _clean(_LEAD.sub("", sentence))
        if phrase and not _is_audience(phrase):
            return phrase
    return DEFAULT_SUBJECT


def audience_of(prompt: str) -> str:
    """Who the content is for ("busy parents"), or "" when the prompt does not say."""
    head = prompt[:_HEAD]
    for intro in _FOR_WHOM.finditer(head):
        words = _WORD.findall(head[intro.end() : intro.end() + 80])[:5]
        for end, word in enumerate(words):
            lowered = word.lower()
            if lowered in _AUDIENCE_NOUNS or (lowered == "z" and end and words[end - 1] == "Gen"):
                kept = words[: end + 1]
                return " ".join(w for w in kept if w.lower() not in _DETERMINERS)
    return ""


def tones_of(prompt: str) -> tuple[str, ...]:
    """The tone words the prompt asks for ("in a playful and witty tone")."""
    head = prompt[:_HEAD]
    lowered = head.lower()
    if "tone" not in lowered and "voice" not in lowered and "style" not in lowered:
        return ()
    found = _TONE.search(head)
    return tuple(w.lower() for w in (found.groups() if found else ()) if w)


def place_of(prompt: str) -> str:
    """A capitalised place the prompt names after "in / at / near" ("Berlin"), or ""."""
    found = _PLACE.search(prompt[:_HEAD])
    return found.group(1) if found else ""


_MONEY = re.compile(
    r"[$\u20ac\u00a3]\s?(\d{1,9}(?:\.\d{1,2})?)\b"
    r"|\b(\d{1,9}(?:\.\d{1,2})?)\s?(?:usd|eur|gbp|dollars?|euros?|pounds?)\b",
    re.IGNORECASE,
)
_COUNT = re.compile(
    r"(?<![$\u20ac\u00a3\d.-])\b(\d{1,6})\b(?![.,-]?\d|\s?(?:%|usd|eur|gbp|dollars?|euros?))",
    re.IGNORECASE,
)


def amounts_of(prompt: str) -> tuple[float, ...]:
    """Sums of money the prompt names ("$12.50", "300 EUR"), in order."""
    return tuple(float(a or b) for a, b in _MONEY.findall(prompt[:_HEAD]))


def counts_of(prompt: str) -> tuple[int, ...]:
    """Plain whole numbers the prompt names ("2 lattes", "for 4 guests"), money left out."""
    return tuple(int(n) for n in _COUNT.findall(prompt[:_HEAD]))


@dataclass(frozen=True, slots=True)
class Reading:
    """What every mock answer reads from a prompt's words (see the functions of the same
    names); places and numbers only a tool call or JSON needs are read on their own."""

    subject: str
    audience: str
    tones: tuple[str, ...]


def read(prompt: str) -> Reading:
    """The prompt's subject, audience and tones, read once per distinct prompt head: the
    mock is deterministic and apps send the same prompts again and again, so a small cache
    (keyed by the first characters, the only ones read) saves the regex work."""
    return _read(prompt[:_HEAD])


@functools.lru_cache(maxsize=256)
def _read(head: str) -> Reading:
    return Reading(subject_of(head), audience_of(head), tones_of(head))


def article(word: str) -> str:
    """ "a" or "an" for the word that follows."""
    lowered = word.lower()
    vowel = lowered[:1] in ("a", "e", "i", "o") or (
        lowered[:1] == "u" and not lowered.startswith(("uni", "use", "usu", "ur"))
    )
    return "an" if vowel or lowered.startswith(("hour", "honest")) else "a"


def plural(phrase: str) -> bool:
    """Whether the phrase's head noun is plural ("running shoes"), for "is" / "are"."""
    head = phrase.split()[-1].lower() if phrase.split() else ""
    return head.endswith("s") and not head.endswith(("ss", "us", "is", "news"))


def capitalised(text: str) -> str:
    """`text` with its first letter upper-case and the rest as it was (keeps "iPhone", "Acme")."""
    return text[:1].upper() + text[1:]
