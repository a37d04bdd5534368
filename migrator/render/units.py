"""render: sizes and durations as people read them (`1.5 MB`, `2 min 05 s`), for every view.

Place in the flow: render, below the plan, status and report views. Its own module, with no import, so
that `status` and `report` (which read the state file only) do not load the dry run's renderer.
"""

from __future__ import annotations


def human_bytes(size: float) -> str:
    """`size` bytes in B, KB, MB, GB or TB (powers of 1,024), one decimal from KB up."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def human_seconds(seconds: float) -> str:
    """`seconds` as `< 1 s`, `42 s`, `2 min 05 s` or `1 h 03 min`."""
    if seconds < 1:
        return "< 1 s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
