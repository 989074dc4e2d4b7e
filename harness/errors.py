"""The one base class for mistakes a user can fix (bad file, field, value or name).

The CLI prints these as a single ``error: ...`` line and exits with status 2, without a traceback.
Programming errors stay ordinary exceptions.
"""


class UserError(Exception):
    """A problem with the user's input; the message names the file, field or value and what is valid."""
