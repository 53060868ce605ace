"""A fake Robokassa shop: its payment page and the ResultURL notifications it sends.

Written from docs.robokassa.ru (script-parameters, notifications-and-redirects, testing-mode)
and the official plugins, never from our connector:

- ``GET|POST /Merchant/Index.aspx``: checks a payment link (shop login, ``OutSum``, ``InvId``,
  ``Description``, ``SignatureValue`` = HASH of ``MerchantLogin:OutSum:InvId:Password#1`` with
  the ``Shp_`` pairs sorted; the test Password #1 when ``IsTest=1``) and shows the invoice, or
  an HTML error page (400 here) with Robokassa's error number.
- ``POST /_sandbox/pay``: a buyer pays; ResultURL is called with ``OutSum:InvId:Password#2``
  signed fields (POST form or GET, UTF-8) until it answers ``OK{InvId}`` (a few tries with a
  doubling pause); ``bad_signature`` sends a deliberately mis-signed one.
- ``GET /_sandbox/state``, ``POST /_sandbox/reset``.

Not modelled: the payment methods themselves, SuccessURL/FailURL redirects, the XML interfaces
(OpState, refunds), fiscal receipts beyond their place in the signature, ``OutSumCurrency``.
"""

from schoolsync.sandbox.robokassa.app import create_app
from schoolsync.sandbox.robokassa.config import RobokassaSandboxConfig
from schoolsync.sandbox.robokassa.shop import RobokassaSandbox

__all__ = ["RobokassaSandbox", "RobokassaSandboxConfig", "create_app"]
