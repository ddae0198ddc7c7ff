"""The one exception type that binaries turn into a one-line message."""


class UserError(ValueError):
  """Bad input a user can fix: the message names the problem and the fix.

  Binaries catch it, print `error: <message>` on one line and exit with
  status 2, before writing any output.
  """
