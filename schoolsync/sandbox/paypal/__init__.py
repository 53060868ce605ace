"""A fake PayPal REST app: OAuth2, captures, refunds, orders and v1 sales, webhook events
signed like PayPal's.

Written from PayPal's REST docs (authentication, Orders v2, Payments v2, webhooks and
verify-webhook-signature) and the verification algorithm of its SDKs, never from our connector:

- ``POST /v1/oauth2/token`` (Basic client credentials), ``GET /v2/payments/captures/{id}``,
  ``GET /v2/payments/refunds/{id}``, ``GET /v2/checkout/orders/{id}``,
  ``GET /v1/payments/sale/{id}``, ``POST /v1/notifications/verify-webhook-signature``; errors
  in PayPal's shapes (``invalid_client``, ``invalid_token``, ``RESOURCE_NOT_FOUND``,
  ``VALIDATION_ERROR``). Details in ``api``.
- Its own RSA key pair and a self-signed certificate for
  ``messageverificationcerts.sandbox.paypal.com``, served at ``/_sandbox/cert.pem``.
  ``PAYPAL-CERT-URL`` names a PayPal-style https URL (``config.cert_url``) whose content is that
  certificate: receivers seed their certificate cache with it.
- ``POST /_sandbox/captures`` pays (an order and its capture) and sends
  ``PAYMENT.CAPTURE.COMPLETED``; ``POST /_sandbox/captures/{id}/refund`` sends
  ``PAYMENT.CAPTURE.REFUNDED``; ``POST /_sandbox/sales`` makes a v1 sale and sends
  ``PAYMENT.SALE.COMPLETED``; ``POST /_sandbox/events/{id}/resend`` delivers an event again
  as a new transmission; ``GET /_sandbox/events`` shows bodies and headers; state, reset,
  token revocation.

Not modelled: creating and approving orders through the API, the buyer's approval pages,
authorizations, refunds through the API, webhook subscriptions, the v1 payments API beyond
reading a sale (payments, sale refunds), rate limits.
"""

from schoolsync.sandbox.paypal.app import create_app
from schoolsync.sandbox.paypal.config import PayPalSandboxConfig
from schoolsync.sandbox.paypal.state import PayPalSandbox

__all__ = ["PayPalSandbox", "PayPalSandboxConfig", "create_app"]
