"""Chat messages cut to what each service accepts, still valid, and saying they were cut.

A receiver refuses an over-long message for good (Slack answers 400 `invalid_blocks`,
Telegram 400 "message is too long"), so a long series key or a verbose template would turn
every notification into a dead letter. The limits:

- Slack: 3,000 characters of text in a section block (the message's block);
- Mattermost: 7,000 characters of attachment text (servers before 5.0 refuse attachments
  over 7,900 characters; later ones take 16,383);
- Telegram: 4,096 characters after entity parsing, counted here in UTF-16 code units as
  Telegram counts offsets. An HTML message over it is sent as its text, escaped, without
  the markup, so no tag is left open.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

SLACK_SECTION = 3_000
MATTERMOST_TEXT = 7_000
TELEGRAM_TEXT = 4_096

_PARTIAL_ENTITY = re.compile(r"&[#a-zA-Z0-9]*$")  # `&am` left by a cut
_PARTIAL_LINK = re.compile(r"<[^>]*$")  # Slack's `<url|text>` left open


def note(total: int, limit: int) -> str:
    return f"\n… [truncated: {total:,} characters, the limit is {limit:,}]"


def fit(text: str, limit: int) -> str:
    """`text`, or its head and a note, within `limit` characters; a cut leaves no half of
    an `&...;` entity, of a Slack `<...>` link or of a Markdown `\\` escape."""
    if len(text) <= limit:
        return text
    tail = note(len(text), limit)
    head = text[: limit - len(tail)]
    head = _PARTIAL_LINK.sub("", _PARTIAL_ENTITY.sub("", head))
    if (len(head) - len(head.rstrip("\\"))) % 2:
        head = head[:-1]
    return head + tail


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit_telegram_html(text: str, limit: int = TELEGRAM_TEXT) -> str:
    """An HTML-mode message whose visible text is within `limit` UTF-16 code units."""
    parser = _Text()
    parser.feed(text)
    parser.close()
    visible = "".join(parser.parts)
    if _utf16(visible) <= limit:
        return text
    tail = note(_utf16(visible), limit)
    room = limit - _utf16(tail)
    head = visible[:room]
    while _utf16(head) > room:  # characters outside the BMP count twice
        head = head[:-1]
    return html.escape(head, quote=False) + html.escape(tail, quote=False)
