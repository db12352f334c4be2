"""What /api/v1 answers, as a user reads it: the same time format everywhere."""

from __future__ import annotations


def test_outbox_items_show_the_channel_id_and_iso_times() -> None:
    from detectkd.http.api import outbox_row
    from detectkd.storage.base import OutboxItem

    item = OutboxItem(7, "k", "orders", "", "webhook:ab12", "{}", 1, 1_767_225_600.0, 1_767_225_660.5)
    shown = outbox_row(item)
    assert shown["channel"] == "webhook:ab12"
    assert (shown["created_at"], shown["next_attempt_at"]) == (
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:01:00.500000+00:00",
    )
