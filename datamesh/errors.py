"""The one exception type the tool raises for problems a user can fix."""


class DatameshError(Exception):
    """A failure explained in one sentence that names the file, key or component and what to do.

    `tasks.py` prints the sentence and exits non-zero; nothing else catches it.
    """
