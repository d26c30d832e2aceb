"""The errors a user can fix: bad params, a bad corpus file, a damaged or missing artefact.

The stages print these as one line (what is wrong, which key, file or line) and exit 2;
anything else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """Something the user gave or has on disk is unusable; the message says what and where."""
