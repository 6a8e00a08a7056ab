"""Reads of the detection app: lists for the API, pages and live-stream history, written and tested once."""

from __future__ import annotations

# --- API and pages ------------------------------------------------------------------------------------------------


# --- live-stream history ------------------------------------------------------------------------------------------
