"""The load-history progress display."""

from __future__ import annotations


def test_history_progress_is_a_bar_on_a_terminal_and_log_lines_otherwise() -> None:
    import io
    from zoneinfo import ZoneInfo

    from detectkd.commands.history import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = Progress("orders", 100 * 3600, out, out.isatty())
    bar.update(25 * 3600, 1_767_225_600, 150, 2, ZoneInfo("UTC"))
    bar.update(100 * 3600, 1_767_495_600, 600, 3, ZoneInfo("UTC"))
    bar.finish()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[#######" in text and " 25%" in text and "100%" in text and "600 points, 3 anomalous" in text
