"""Pure parts of Announcements: the data model, visibility (spec R1), HTML → safe text, the event data."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import quote, urljoin, urlsplit

from pydantic import ConfigDict, Field

from extensions.base import Checkbox, Payload

TEXT_LIMIT = 3500  # with the 255-character teaser, within an embed description (4096)
DROPPED = frozenset({"script", "style", "template", "noscript", "iframe", "object", "svg", "head", "title"})
PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "figure", "hr"})
BLOCKS = PARAGRAPHS | {"div", "section", "article", "header", "footer", "main", "aside", "tr", "dl", "dt", "dd"}
INDENT = "\x00"  # list indentation, kept through the per-line whitespace trim
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MASS_MENTION = re.compile(r"@(everyone|here)|<@")

Visibility = Literal["visible", "scheduled", "draft", "unscheduled"]


class Announcement(Payload):
    """A row of ``ext_announcements`` as the producer snapshots it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int | str
    title: str = Field(min_length=1, max_length=255)
    description: str = Field("", max_length=255)
    content: str = Field("", max_length=1_000_000)
    slug: str = Field(min_length=1, max_length=255)
    is_active: Checkbox = False
    published_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def aware(moment: datetime) -> datetime:
    """Naive datetimes are read as UTC (send ISO 8601 with an offset to be exact)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def visibility(announcement: Announcement, now: datetime) -> Visibility:
    """Public iff active and ``published_at <= now``; a NULL ``published_at`` never becomes public."""
    if not announcement.is_active:
        return "draft"
    if announcement.published_at is None:
        return "unscheduled"
    return "visible" if aware(announcement.published_at) <= now else "scheduled"


def withdrawn(announcement: Announcement, withdrawn_at: str) -> bool:
    """A withdraw hides every snapshot not newer than it; a later save (re-published) is shown again."""
    if announcement.updated_at is None:
        return True
    return aware(announcement.updated_at) <= aware(datetime.fromisoformat(withdrawn_at))


def claim_key(announcement_id: int | str, revision: int) -> str:
    """Once per announcement; an explicit re-announce sends a new ``revision``."""
    return f"announcement:{announcement_id}" + (f":r{revision}" if revision else "")


def public_url(app_url: str | None, slug: str) -> str | None:
    return f"{app_url}/announcements/{quote(slug, safe='')}" if app_url else None


def iso(moment: datetime) -> str:
    return aware(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


def published_event(announcement: Announcement, app_url: str | None) -> dict[str, object]:
    assert announcement.published_at is not None
    return {
        "id": announcement.id,
        "slug": announcement.slug,
        "title": announcement.title,
        "description": announcement.description,
        "text": html_to_text(announcement.content, app_url),
        "url": public_url(app_url, announcement.slug),
        "published_at": iso(announcement.published_at),
    }


class _TextParser(HTMLParser):
    def __init__(self, base: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.out: list[str] = []
        self.dropped = 0
        self.lists: list[list[int]] = []  # [ordered, count] per open list
        self.links: list[tuple[str | None, int]] = []  # (safe href, where its label starts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED:
            self.dropped += 1
        elif self.dropped:
            return
        elif tag == "br":
            self.out.append("\n")
        elif tag in ("ul", "ol"):
            self.out.append("" if self.lists else "\n\n")  # a nested list continues its item
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            ordered, count = self.lists[-1] if self.lists else (False, 0)
            if self.lists:
                self.lists[-1][1] = count + 1
            indent = INDENT * 2 * max(len(self.lists) - 1, 0)
            self.out.append(f"\n{indent}{f'{count + 1}.' if ordered else '•'} ")
        elif tag == "a":
            self.links.append((self._href(dict(attrs).get("href")), len(self.out)))
        elif tag in BLOCKS:
            self.out.append("\n\n" if tag in PARAGRAPHS else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED:
            self.dropped = max(self.dropped - 1, 0)
        elif self.dropped:
            return
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.out.append("" if self.lists else "\n\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and href.removeprefix("mailto:") not in label:
                self.out.append(f" ({href})" if label else href)
        elif tag in BLOCKS:
            self.out.append("\n\n" if tag in PARAGRAPHS else "\n")

    def handle_data(self, data: str) -> None:
        if not self.dropped:
            self.out.append(re.sub(r"\s+", " ", _CONTROL.sub("", data)))

    def _href(self, href: str | None) -> str | None:
        """Only http(s) and mailto links survive; relative ones are resolved against the app URL."""
        if not href:
            return None
        href = urljoin(self.base + "/", href.strip()) if self.base else href.strip()
        return href if urlsplit(href).scheme in ("http", "https", "mailto") else None


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def html_to_text(html: str, base: str | None = None, limit: int = TEXT_LIMIT) -> str:
    """The editor's HTML as plain text for a chat message: tags stripped, entities decoded, blocks and
    list items on their own lines, links as ``text (url)``, scripts and styles dropped, mass mentions
    defused, at most ``limit`` characters."""
    parser = _TextParser(base)
    parser.feed(html)
    parser.close()
    lines = [line.strip(" \t").replace(INDENT, " ") for line in "".join(parser.out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    text = _MASS_MENTION.sub(lambda m: m.group(0).replace("@", "@\u200b"), text)
    return cut(text, limit)
