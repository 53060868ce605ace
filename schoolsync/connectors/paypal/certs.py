"""PayPal's webhook signing certificates, kept in a directory by the hash of their URL.

A certificate is kept, in PEM, as ``<directory>/<sha256(cert url) in hex>`` (no extension).
:meth:`CertStore.load` reads the cache only (no network: it runs while a webhook request is
being answered); :meth:`CertStore.fetch` downloads a missing one, over https only, and only from
a host that ends with an allowed suffix (``.paypal.com``): a forged ``PAYPAL-CERT-URL`` pointing
elsewhere is refused before any request is made. :meth:`CertStore.seed` puts a certificate in
the cache by hand (an operator on a machine that may not reach PayPal, or a test with the
sandbox's certificate). Every use of a cached certificate checks its URL's host again.

Errors: a URL that is not https or not an allowed host, a body that is not a PEM certificate,
a 4xx answer -> ``VerificationError`` (treat the delivery as forged); timeouts, connection
errors, 429 and 5xx -> ``RetryableError`` (answer 503, PayPal tries again).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography import x509

from schoolsync.connectors.http import Endpoint, build_client, send
from schoolsync.connectors.paypal.verify import PLATFORM, host_allowed
from schoolsync.core.errors import PermanentError, VerificationError

MAX_CERT_BYTES = 64 * 1024


def cache_name(cert_url: str) -> str:
    """The file a certificate is kept in: ``sha256(cert url)`` in lower-case hex."""
    return hashlib.sha256(cert_url.encode("utf-8")).hexdigest()


def parse_pem(data: bytes) -> x509.Certificate:
    """The first certificate in ``data``.

    Raises:
        VerificationError: ``data`` holds no PEM certificate.
    """
    if len(data) > MAX_CERT_BYTES:
        raise VerificationError("paypal signing certificate is too large", platform=PLATFORM)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise VerificationError(
            "paypal signing certificate is not a PEM certificate", platform=PLATFORM
        )
    return certs[0]


class CertStore:
    """The certificate cache of one deployment (or school). Thread-safe."""

    def __init__(
        self,
        directory: Path,
        *,
        suffixes: Sequence[str] = (".paypal.com",),
        http: httpx.Client | None = None,
        timeout_s: float = 10.0,
        account: str = "paypal",
    ) -> None:
        if not suffixes:
            raise ValueError("at least one allowed certificate host suffix is required")
        self.directory = Path(directory)
        self.suffixes = tuple(s.lower() for s in suffixes)
        self._http = http
        self._owns_http = http is None
        self._timeout_s = timeout_s
        self._endpoint = Endpoint(platform=PLATFORM, account=account)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CertStore(directory={str(self.directory)!r}, suffixes={self.suffixes!r})"

    def check_url(self, cert_url: str) -> None:
        """Raises ``VerificationError`` unless ``cert_url`` is https on an allowed host."""
        parts = urlsplit(cert_url)
        host = parts.hostname or ""
        if parts.scheme != "https" or parts.username or parts.password or not host:
            raise VerificationError("paypal PAYPAL-CERT-URL is not an https URL", platform=PLATFORM)
        if not host_allowed(host, self.suffixes):
            raise VerificationError(
                f"paypal PAYPAL-CERT-URL host {host[:100]} does not end with "
                f"{' or '.join(self.suffixes)}",
                platform=PLATFORM,
            )

    def path_for(self, cert_url: str) -> Path:
        return self.directory / cache_name(cert_url)

    def cached(self, cert_url: str) -> x509.Certificate | None:
        """The cached certificate for ``cert_url``; None when absent or unreadable."""
        try:
            data = self.path_for(cert_url).read_bytes()
        except OSError:
            return None
        try:
            return parse_pem(data)
        except VerificationError:
            return None

    def load(self, cert_url: str) -> x509.Certificate:
        """The certificate for ``cert_url`` from the cache only.

        Raises:
            VerificationError: the URL is not allowed, or the certificate is not in the cache
                (``fetch`` it first).
        """
        self.check_url(cert_url)
        cert = self.cached(cert_url)
        if cert is None:
            raise VerificationError(
                "paypal signing certificate is not in the cache (fetch it before accepting)",
                platform=PLATFORM,
            )
        return cert

    def fetch(self, cert_url: str) -> x509.Certificate:
        """The certificate for ``cert_url``: from the cache, else downloaded and cached.

        Raises:
            VerificationError: the URL is not allowed, PayPal answered 4xx, or the body is not
                a certificate.
            RetryableError: timeouts, connection errors, 429, 5xx.
        """
        self.check_url(cert_url)
        cert = self.cached(cert_url)
        if cert is not None:
            return cert
        http = self._client()
        request = http.build_request("GET", cert_url, headers={"Accept": "*/*"})
        try:
            response = send(http, self._endpoint, request)
        except PermanentError as exc:
            raise VerificationError(
                f"paypal signing certificate could not be fetched: {exc.message}",
                platform=PLATFORM,
                status=exc.status,
            ) from None
        cert = parse_pem(response.content)
        self._write(cert_url, response.content)
        return cert

    def seed(self, cert_url: str, pem: bytes) -> Path:
        """Put the certificate ``pem`` in the cache for ``cert_url``; its path.

        Raises:
            VerificationError: ``pem`` is not a PEM certificate.
        """
        parse_pem(pem)
        return self._write(cert_url, pem)

    def close(self) -> None:
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = build_client("", timeout=self._timeout_s)
        return self._http

    def _write(self, cert_url: str, pem: bytes) -> Path:
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.path_for(cert_url)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(pem)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            return target
