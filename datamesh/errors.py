"""The one exception type the tool raises for problems a user can fix."""

from pathlib import Path


class DatameshError(Exception):
    """A failure explained in one sentence that names the file, key or component and what to do.

    `tasks.py` prints the sentence and exits non-zero; nothing else catches it.
    """


def shown(path: Path | str) -> str:
    """A path as messages print it: relative to the current folder when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
