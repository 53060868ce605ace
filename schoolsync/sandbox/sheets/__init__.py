"""A stateful fake of the Google Sheets API v4 and Google's OAuth token endpoint for one project.

Written from Google's docs (Sheets API reference and limits, the service-account OAuth guide) and
the error bodies Google answers with (as quoted in many public issue threads), never from our
connector:

- ``POST /token``: the JWT-bearer grant of a service account; the RS256 signature is checked
  against the account's public key, then ``iss``, ``aud`` (this endpoint), ``iat``/``exp`` (at
  most an hour) and ``scope``. Access tokens last an hour (``expires_in: 3599``).
- ``/v4/spreadsheets/{id}/values/{range}`` GET and PUT, ``.../{range}:append`` POST,
  ``/v4/spreadsheets/{id}/values:batchUpdate`` POST: bearer token (401 UNAUTHENTICATED), unknown
  spreadsheet (404 NOT_FOUND), not shared with the service account (403 PERMISSION_DENIED),
  "Unable to parse range" (400), ``valueInputOption`` required for writes (400), per-minute read
  and write quotas per service account (429 RESOURCE_EXHAUSTED). Details in ``values`` and ``a1``.
- ``/_sandbox/*``: the key file, spreadsheets and form submissions, limits, token revocation,
  state, faults, reset.

Not modelled: ``spreadsheets.get``/``batchUpdate`` (formatting, structure), ``values:clear``,
``batchGet``, formulas (kept as text), number formats, dates, domain-wide delegation.
"""

from schoolsync.sandbox.sheets.app import create_app
from schoolsync.sandbox.sheets.config import SheetsSandboxConfig
from schoolsync.sandbox.sheets.state import SheetsSandbox

__all__ = ["SheetsSandbox", "SheetsSandboxConfig", "create_app"]
