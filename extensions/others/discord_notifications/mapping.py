"""Pure message building: event names, embeds per event, Discord's size limits, mentions, answers.

Nothing here does I/O. Values the producer sends are rendered through allow-lists (user fields) and the
shared ``is_sensitive_key`` deny-list (everything else, ``changes`` included), so a password, a two-factor
secret or a token never reaches a channel whatever the snapshot holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

from extensions.http import ApiResponse
from extensions.money import parse_amount
from extensions.redaction import is_sensitive_key

PAYMENTER_EVENTS: dict[str, str] = {
    "order.created": "Order Created",
    "order.updated": "Order Updated",
    "user.created": "User Created",
    "user.updated": "User Updated",
    "invoice.created": "Invoice Created",
    "invoice.updated": "Invoice Updated",
    "invoice.paid": "Invoice Paid",
    "ticket.created": "Ticket Created",
    "ticket.updated": "Ticket Updated",
    "ticket.replied": "Ticket Replied",
    "service.created": "Service Created",
    "service.updated": "Service Updated",
}
WORKER_EVENTS = frozenset(
    "service.created service.suspended service.unsuspended service.terminated service.upgraded "
    "payment.succeeded payment.processing payment.failed payment.refunded payment.fee "
    "billing_agreement.created billing_agreement.cancelled subscription.cancelled affiliate.rewarded "
    "affiliate.signup announcement.published job.failed".split()
)
GREEN, BLUE, PURPLE, ORANGE, RED, YELLOW, TEAL = 0x2ECC71, 0x3498DB, 0x9B59B6, 0xE67E22, 0xE74C3C, 0xF1C40F, 0x1ABC9C
COLORS = {"ticket": PURPLE, "announcement": YELLOW, "affiliate": TEAL, "job": RED}
ACTION_COLORS = {"updated": BLUE, "upgraded": BLUE, "processing": ORANGE, "suspended": ORANGE, "fee": YELLOW}
ACTION_COLORS |= {"refunded": ORANGE, "cancelled": ORANGE, "failed": RED, "terminated": RED}

FOOTER = "Paymenter Notifications"
TITLE, DESCRIPTION, FIELDS, NAME, VALUE, TOTAL = 256, 4096, 25, 256, 1024, 6000
MASKED = "********"
IGNORED_CHANGES = frozenset({"created_at", "updated_at", "remember_token"})
USER_FIELDS = frozenset({"first_name", "last_name", "role_id", "email_verified_at", "credits"})
USER_HIDDEN = frozenset({"email", "password"})  # shown as changed, never with their values
LINKED = {"order": "orders", "invoice": "invoices", "ticket": "tickets", "service": "services", "user": "users"}
MONEY_FORMATS = {"1.000,00": (".", ","), "1,000.00": (",", "."), "1 000,00": (" ", ","), "1 000.00": (" ", ".")}
_MARKDOWN = re.compile(r"([\\*_~`|\[\]<>])")


def event_type(name: str) -> str:
    """``Invoice Paid`` or ``invoice.paid`` → ``invoice.paid``."""
    return ".".join(name.lower().split())


def is_paymenter_event(event: str, data: dict[str, Any]) -> bool:
    """``service.created`` is both a Paymenter event (a ``service`` snapshot) and this worker's own."""
    if event not in PAYMENTER_EVENTS:
        return False
    return event not in WORKER_EVENTS or isinstance(data.get("service"), dict)


@dataclass
class Embed:
    title: str
    description: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    color: int = GREEN
    url: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class Links:
    """Admin links need the app URL; without one the label is shown bare."""

    app_url: str | None

    def model(self, kind: str, ident: Any) -> str:
        label = f"{kind.capitalize()} #{escape(ident)}"
        if not self.app_url or ident is None:
            return label
        return f"[{label}]({self.app_url}/admin/{LINKED[kind]}/{quote(str(ident), safe='')}/edit)"

    @staticmethod
    def name(user: dict[str, Any]) -> str:
        """First + last name (only these, the display name or the id: a user is rendered by allow-list)."""
        joined = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
        return escape(joined or user.get("name") or f"#{user.get('id', '?')}")

    def user(self, user: Any) -> str:
        user = _dict(user)
        label = f"User {self.name(user)}"
        if not self.app_url or user.get("id") is None:
            return label
        return f"[{label}]({self.app_url}/admin/users/{quote(str(user['id']), safe='')}/edit)"


# --- text and money -----------------------------------------------------------------------------------


def escape(value: Any) -> str:
    """Producer text rendered literally (no masked links or formatting smuggled in)."""
    return _MARKDOWN.sub(r"\\\1", str(value if value is not None else ""))


def cut(text: str, limit: int) -> str:
    """Cut characters (never bytes): ``limit - 3`` of them plus ``...``."""
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..." if limit > 3 else text[:limit]


def money(amount: Decimal, currency: Any) -> str:
    """Paymenter's price string: prefix + amount with 2 decimals in the currency's format + suffix."""
    info = currency if isinstance(currency, dict) else {"code": currency}
    thousands, point = MONEY_FORMATS.get(str(info.get("format") or ""), (",", "."))
    plain = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
    text = plain.replace(",", "\0").replace(".", point).replace("\0", thousands)
    prefix, suffix = str(info.get("prefix") or ""), str(info.get("suffix") or "")
    if prefix or suffix:
        return f"{prefix}{text}{suffix}"
    return f"{text} {info.get('code') or ''}".strip()


def _quantity(line: dict[str, Any]) -> int:
    quantity = line.get("quantity")
    return 1 if quantity is None else int(quantity)


def _line_total(line: dict[str, Any]) -> Decimal:
    return parse_amount(line.get("price", "0")) * _quantity(line)


def _currency(*models: dict[str, Any]) -> Any:
    for model in models:
        for key in ("currency", "currency_code"):
            if model.get(key):
                return model[key]
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --- Paymenter's twelve events --------------------------------------------------------------------------

Fields = list[tuple[str, str]]


def _php_old(value: Any) -> str:
    if value is None or value is False:
        return ""
    return "1" if value is True else str(value)


def _php_new(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _humanize(attribute: str) -> str:
    text = attribute.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def change_fields(model: str, changes: dict[str, Any]) -> Fields:
    """``{attribute: [old, new]}`` → fields; user attributes by allow-list, everything by the deny-list."""
    fields = []
    for name, pair in changes.items():
        if name in IGNORED_CHANGES:
            continue
        hidden = is_sensitive_key(name) or (model == "user" and name in USER_HIDDEN)
        if hidden:
            fields.append((_humanize(name), MASKED))
        elif model != "user" or name in USER_FIELDS:
            old, new = pair if isinstance(pair, list | tuple) and len(pair) == 2 else (None, pair)
            fields.append((_humanize(name), f"{escape(_php_old(old))} -> {escape(_php_new(new))}"))
    return fields


def _only_paid(changes: dict[str, Any]) -> bool:
    """Invoice Updated saying only "now paid" repeats the Invoice Paid message sent with it."""
    status = changes.get("status")
    new = status[-1] if isinstance(status, list | tuple) and status else status
    return new == "paid" and set(changes) - IGNORED_CHANGES <= {"status", "paid_at"}


def _updated(kind: str, data: dict[str, Any], links: Links) -> Fields | None:
    model, changes = _dict(data.get(kind)), _dict(data.get("changes"))
    fields = change_fields(kind, changes)
    if not fields or (kind == "invoice" and _only_paid(changes)):
        return None  # a timestamp-only save is noise
    first = ("Name", links.name(model)) if kind == "user" else ("ID", links.model(kind, model.get("id")))
    return [first, *fields]


def _lines(model: dict[str, Any], key: str, links: Links) -> Fields:
    """``Total`` then one field per service (orders) or item (invoices)."""
    total, fields, currency = Decimal(0), [], _currency(model)
    for line in _list(model.get(key)):
        amount = _line_total(line)
        total += amount
        if key == "services":
            product = _dict(line.get("product")).get("name") or "Service"
            fields.append((escape(product), f"{links.model('service', line.get('id'))} ({money(amount, currency)})"))
        else:
            price = money(parse_amount(line.get("price", "0")), currency)
            fields.append((escape(line.get("description") or "Item"), f"{_quantity(line)} x {price}"))
    return [("Total", money(total, currency)), *fields]


def _order_created(data: dict[str, Any], links: Links, kind: str = "order", key: str = "services") -> Fields:
    model = _dict(data.get(kind))
    head = [("ID", links.model(kind, model.get("id"))), ("User", links.user(model.get("user")))]
    return head + _lines(model, key, links)


def _invoice_created(data: dict[str, Any], links: Links) -> Fields:
    return _order_created(data, links, "invoice", "items")


def _invoice_paid(data: dict[str, Any], links: Links) -> Fields:
    return [("ID", links.model("invoice", _dict(data.get("invoice")).get("id")))]


def _ticket_created(data: dict[str, Any], links: Links) -> Fields:
    ticket = _dict(data.get("ticket"))
    head = [("Id", links.model("ticket", ticket.get("id"))), ("User id", links.user(ticket.get("user")))]
    return [*head, ("Subject", escape(ticket.get("subject")))]


def _ticket_replied(data: dict[str, Any], links: Links) -> Fields:
    message = _dict(data.get("ticketMessage") or data.get("ticket_message"))
    ticket_id = message.get("ticket_id") or _dict(message.get("ticket")).get("id")
    return [("Ticket id", links.model("ticket", ticket_id)), ("Message", escape(message.get("message")))]


def _service_created(data: dict[str, Any], links: Links) -> Fields:
    service = _dict(data.get("service"))
    product = _dict(service.get("product"))
    price = money(_line_total(service), _currency(service, product))
    head = [("ID", links.model("service", service.get("id"))), ("User", links.user(service.get("user")))]
    return [*head, ("Product", escape(product.get("name"))), ("Price", price)]


def _user_created(data: dict[str, Any], links: Links) -> Fields:
    user = _dict(data.get("user"))
    head = [("ID", escape(user.get("id"))), ("Name", links.name(user)), ("Email", escape(user.get("email")))]
    props = _dict(user.get("properties"))
    return head + [(escape(k), escape(v)) for k, v in props.items() if not is_sensitive_key(k)]


CREATED = {
    "order.created": _order_created,
    "invoice.created": _invoice_created,
    "invoice.paid": _invoice_paid,
    "ticket.created": _ticket_created,
    "ticket.replied": _ticket_replied,
    "service.created": _service_created,
    "user.created": _user_created,
}


def _color(event: str) -> int:
    kind, _, action = event.partition(".")
    return ACTION_COLORS.get(action, COLORS.get(kind, GREEN))


# --- this worker's own events -----------------------------------------------------------------------------

WORKER_SKIP = frozenset(
    "connection extension currency sealed sealed_omitted events occurred_at properties service_id invoice_id "
    "user_id amount fee error".split()
)


def _scalar_fields(data: dict[str, Any]) -> Fields:
    """What else the event says, minus anything under a sensitive name and anything nested."""
    fields = []
    for key, value in [*data.items(), *_dict(data.get("properties")).items()]:
        if key in WORKER_SKIP or is_sensitive_key(key) or isinstance(value, dict | list) or value in (None, ""):
            continue
        fields.append((_humanize(key), escape(value)))
    return fields


def _worker_fields(data: dict[str, Any], links: Links) -> Fields:
    fields = []
    for key, kind in (("service_id", "service"), ("invoice_id", "invoice")):
        if data.get(key) is not None:
            fields.append((kind.capitalize(), links.model(kind, data[key])))
    if data.get("user_id") is not None:
        fields.append(("User", links.user({"id": data["user_id"]})))
    for key in ("amount", "fee"):
        if data.get(key) not in (None, ""):
            fields.append((_humanize(key), money(parse_amount(data[key]), data.get("currency"))))
    fields += [(_humanize(k), escape(data[k])) for k in ("extension", "connection") if data.get(k)]
    return fields + _scalar_fields(data)


def worker_embed(event: str, data: dict[str, Any], links: Links) -> Embed:
    embed = Embed(title=event.replace(".", " ").replace("_", " ").title(), color=_color(event))
    if event == "announcement.published":
        # Admin-written text, already reduced to safe plain text by the announcements extension.
        embed.title, embed.url = str(data.get("title") or embed.title), data.get("url") or None
        embed.description = "\n\n".join(str(p) for p in (data.get("description"), data.get("text")) if p)
        embed.timestamp = data.get("published_at")
        return embed
    if event == "job.failed":
        error = _dict(data.get("error"))
        embed.description = f"{escape(error.get('code'))}: {escape(error.get('message'))}"
        embed.fields = _scalar_fields(data)
        return embed
    embed.fields, embed.timestamp = _worker_fields(data, links), data.get("occurred_at")
    return embed


def build_embed(event: str, data: dict[str, Any], links: Links) -> Embed | None:
    """The embed for ``event`` (None: nothing to send); ValueError for an unknown event or a float amount."""
    if is_paymenter_event(event, data):
        kind, _, action = event.partition(".")
        fields = _updated(kind, data, links) if action == "updated" else CREATED[event](data, links)
        if fields is None:
            return None
        label = PAYMENTER_EVENTS[event]
        return Embed(label, f"A new event has occurred: {label}", fields, _color(event))
    if event in WORKER_EVENTS:
        return worker_embed(event, data, links)
    raise ValueError(f"unknown event '{cut(event, 60)}'")


# --- limits and the message ---------------------------------------------------------------------------------


def _cap(lengths: list[int], budget: int) -> int:
    """The largest per-piece length such that the pieces, each cut to it, fit in ``budget``."""
    ordered = sorted(lengths)
    for i, length in enumerate(ordered):
        if length * (len(ordered) - i) > budget:
            return max(budget // (len(ordered) - i), 1)
        budget -= length
    return ordered[-1] if ordered else 0


def fit(embed: Embed, timestamp: str) -> dict[str, Any]:
    """Clamp to Discord's limits: never fail on size; empty values become ``-``."""
    fields = [(cut(n.strip() or "-", NAME), cut(v.strip() or "-", VALUE)) for n, v in embed.fields]
    if len(fields) > FIELDS:
        fields = [*fields[: FIELDS - 1], ("…", f"…and {len(fields) - FIELDS + 1} more")]
    title, description = cut(embed.title.strip() or "-", TITLE), cut(embed.description.strip(), DESCRIPTION)
    pieces = [description] + [p for pair in fields for p in pair]
    budget = TOTAL - len(title) - len(FOOTER)
    if sum(map(len, pieces)) > budget:
        limit = _cap([len(p) for p in pieces], budget)
        pieces = [cut(p, limit) for p in pieces]
        description, flat = pieces[0], pieces[1:]
        fields = list(zip(flat[::2], flat[1::2], strict=True))
    body: dict[str, Any] = {
        "title": title,
        "color": embed.color,
        "fields": [{"name": n, "value": v, "inline": True} for n, v in fields],
        "footer": {"text": FOOTER},
        "timestamp": embed.timestamp or timestamp,
    }
    if description:
        body["description"] = description
    if embed.url:
        body["url"] = embed.url
    return body


def message(embed: dict[str, Any], ping_type: str | None, ping_id: str | None) -> dict[str, Any]:
    """The webhook body; only the configured user or role may be pinged (never a role by default)."""
    body: dict[str, Any] = {"embeds": [embed], "allowed_mentions": {"parse": []}}
    if ping_id and ping_type == "user":
        body["content"], body["allowed_mentions"]["users"] = f"<@{ping_id}>", [ping_id]
    elif ping_id and ping_type == "role":
        body["content"], body["allowed_mentions"]["roles"] = f"<@&{ping_id}>", [ping_id]
    return body


# --- answers --------------------------------------------------------------------------------------------------


def _flatten(errors: Any, path: str) -> list[str]:
    if not isinstance(errors, dict):
        return []
    found = [f"{path or 'body'}: {e.get('message')}" for e in errors.get("_errors", []) if isinstance(e, dict)]
    for key, value in errors.items():
        if key != "_errors":
            found += _flatten(value, f"{path}.{key}" if path else str(key))
    return found


def error_reason(response: ApiResponse) -> str | None:
    """Discord's message plus the first offending form fields (``embeds.0.fields.3.value: ...``)."""
    body = response.body if isinstance(response.body, dict) else {}
    parts = [str(body["message"])] if body.get("message") else []
    return "; ".join(parts + _flatten(body.get("errors"), "")[:3]) or None


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def rate_limited(response: ApiResponse) -> tuple[float, bool]:
    """A 429: ``(seconds to wait, global?)`` from the body's ``retry_after`` or the ``Retry-After`` header."""
    body = response.body if isinstance(response.body, dict) else {}
    wait = _seconds(body.get("retry_after")) or _seconds(response.headers.get("Retry-After")) or 1.0
    is_global = bool(body.get("global")) or response.headers.get("X-RateLimit-Global", "").lower() == "true"
    return wait, is_global


def bucket_exhausted(response: ApiResponse) -> float | None:
    """Seconds until the bucket refills when this answer used its last request, else None."""
    if response.headers.get("X-RateLimit-Remaining") != "0":
        return None
    return _seconds(response.headers.get("X-RateLimit-Reset-After")) or 1.0


def dead_reason(response: ApiResponse) -> str | None:
    """Why a webhook must not be called again (deleted, or its token revoked), or None."""
    body = response.body if isinstance(response.body, dict) else {}
    if response.status == 404:
        return f"HTTP 404: {body.get('message') or 'Unknown Webhook'}"
    text = str(body.get("message") or "")
    if response.status == 401 and (body.get("code") == 50027 or "invalid webhook token" in text.lower()):
        return f"HTTP 401: {text or 'Invalid Webhook Token'}"
    return None
