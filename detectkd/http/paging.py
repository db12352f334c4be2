"""Paging of API listings by name: `?limit=` and `?offset=` (shared by the daemon and a
`workers:` supervisor's merged answers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

API_PAGE = 500  # /api/v1/metrics: entries per page unless `limit` says otherwise
API_PAGE_MAX = 10_000


def page_args(query: Mapping[str, str]) -> tuple[int, int]:
    """`?limit=` (default 500, at most 10,000) and `?offset=`; ValueError if not integers."""
    limit = min(API_PAGE_MAX, max(1, int(query.get("limit", API_PAGE))))
    return limit, max(0, int(query.get("offset", 0)))


def page(entries: list[Any], total: int, offset: int, limit: int) -> dict[str, Any]:
    """The page at `offset` of `entries` (sorted by name, from the first, at least up to
    `offset + limit` of the `total` filtered entries)."""
    more = offset + limit < total
    return {
        "metrics": entries[offset : offset + limit],
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if more else None,
    }
