"""A tqdm bar on stderr as a ProgressCallback, for the archive's commands (stdout stays the export itself)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tqdm import tqdm

from archive.services.tables import ProgressCallback


class _RawWriter:
    """tqdm redraws its line with carriage returns; Django's OutputWrapper would end each write with a newline."""

    def __init__(self, wrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()


@contextlib.contextmanager
def command_progress(stderr, *, unit: str, disable: bool = False) -> Iterator[ProgressCallback]:
    with tqdm(unit=unit, unit_scale=True, file=_RawWriter(stderr), disable=disable) as bar:

        def progress(done: int, total: int | None, message: str) -> None:
            bar.total = total
            bar.update(done - bar.n)
            bar.set_postfix_str(message[:40], refresh=False)

        yield progress
