"""Captions from the command line (``ganforge sample RUN --text ... | --text-file FILE``); a
text-conditional run (``TextConditioned``) draws samples for them (``Run.draw``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ganforge.errors import GanforgeError

#: the largest caption file read (each caption draws -n samples: a million bytes is plenty)
MAX_CAPTION_FILE = 1_000_000


def read_prompts(texts: Sequence[str] | None, text_file: str | None) -> list[str] | None:
    """The captions given by ``--text`` (repeatable) and ``--text-file`` (one per line, blank
    lines skipped), in that order; None when neither was given. Empty captions and an unreadable
    or empty file are one-line errors."""
    if texts is None and text_file is None:
        return None
    prompts = []
    for text in texts or ():
        if not text.strip():
            raise GanforgeError("--text is empty", 'write a caption, e.g. --text "a dark ankle boot"')
        prompts.append(text.strip())
    if text_file is not None:
        path = Path(text_file)
        if path.exists() and not path.is_file():  # a folder, /dev/zero, a pipe: no end to read to
            raise GanforgeError(f"caption file {path} is not a regular file",
                                "pass a UTF-8 text file with one caption per line")
        if path.is_file() and path.stat().st_size > MAX_CAPTION_FILE:
            raise GanforgeError(f"caption file {path} holds {path.stat().st_size:,} bytes",
                                f"pass at most {MAX_CAPTION_FILE:,} bytes of captions (one per line)")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise GanforgeError(f"caption file {path} does not exist",
                                "pass a UTF-8 text file with one caption per line") from None
        except (OSError, UnicodeDecodeError) as err:
            raise GanforgeError(f"cannot read caption file {path}: {err}",
                                "pass a UTF-8 text file with one caption per line") from None
        from_file = [line.strip() for line in lines if line.strip()]
        if not from_file:
            raise GanforgeError(f"caption file {path} has no captions",
                                "write one caption per line, e.g. 'a light sneaker'")
        prompts.extend(from_file)
    return prompts

