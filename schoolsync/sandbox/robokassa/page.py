"""``GET|POST /Merchant/Index.aspx``: the payment page, as far as the shop's side can tell.

Checks what Robokassa checks before showing its page (docs.robokassa.ru/script-parameters):
the shop (``MerchantLogin``, or the old ``MrchLogin``), ``OutSum`` (a positive number with a
dot), ``InvId`` (empty or a whole number), ``Description`` (at most 100 characters) and
``SignatureValue`` with Password #1, or the test Password #1 when ``IsTest=1``. A refusal is an
HTML page with Robokassa's error number where it is widely reported (26: unknown shop, 23: test
payment without test settings, 29: wrong SignatureValue) and a reason; the sandbox answers it
with 400 so that tests see it. An accepted link shows the invoice with a "pay" button that
posts to ``/_sandbox/pay``.
"""

from __future__ import annotations

import html
import re
import time
from decimal import Decimal
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from schoolsync.sandbox.robokassa.shop import RobokassaSandbox
from schoolsync.sandbox.robokassa.signing import is_shp, matches, page_signature

_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?$")
MAX_DESCRIPTION = 100


class PageError(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='ru'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>",
        status_code=status,
    )


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        raw = (await request.body()).decode("utf-8", errors="replace")
        params.update(dict(parse_qsl(raw, keep_blank_values=True)))
    return params


def _field(params: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in params.items():
        if key.lower() == wanted:
            return value
    return None


def check(sb: RobokassaSandbox, params: dict[str, str]) -> dict[str, object]:
    """The invoice a link describes; ``PageError`` as Robokassa would refuse it."""
    login = _field(params, "MerchantLogin") or _field(params, "MrchLogin")
    if login != sb.config.merchant_login:
        raise PageError(26, "Магазин не найден: неверный параметр MerchantLogin")
    is_test = (_field(params, "IsTest") or "").strip() == "1"
    password = sb.password1(is_test)
    if not password:
        raise PageError(
            23,
            "Тестовый платёж не может быть создан. У магазина отсутствуют настройки тестовых "
            "параметров",
        )
    out_sum = (_field(params, "OutSum") or "").strip()
    if not _AMOUNT.match(out_sum) or Decimal(out_sum) <= 0:
        raise PageError(None, "Неверный параметр OutSum: сумма должна быть положительным числом")
    inv_id = (_field(params, "InvId") or "").strip()
    if inv_id and not inv_id.isdigit():
        raise PageError(None, "Неверный параметр InvId: номер счёта должен быть целым числом")
    description = _field(params, "Description") or ""
    if len(description) > MAX_DESCRIPTION:
        raise PageError(None, "Неверный параметр Description: не более 100 символов")
    signature = _field(params, "SignatureValue") or ""
    shp = [(key, value) for key, value in params.items() if is_shp(key)]
    expected = page_signature(
        sb.algorithm,
        login,
        out_sum,
        inv_id,
        password,
        shp,
        receipt=_field(params, "Receipt"),
    )
    if not signature or not matches(expected, signature):
        raise PageError(29, "Неверный параметр SignatureValue")
    return {
        "inv_id": inv_id,
        "out_sum": out_sum,
        "description": description,
        "is_test": is_test,
        "email": _field(params, "Email"),
        "shp": dict(shp),
        "opened_at": int(time.time()),
    }


async def payment_page(sb: RobokassaSandbox, request: Request) -> Response:
    params = await _params(request)
    sb.count("page_views")
    try:
        invoice = check(sb, params)
    except PageError as exc:
        sb.count("page_errors")
        with sb.lock:
            sb.page_errors.append({"code": exc.code, "reason": exc.reason})
        number = f"Код ошибки {exc.code}. " if exc.code is not None else ""
        return _page(
            "Ошибка",
            f"<h1>Ошибка</h1><p class='error'>{number}{html.escape(exc.reason)}</p>",
            status=400,
        )
    with sb.lock:
        sb.invoices[str(invoice["inv_id"])] = invoice
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(str(v))}'>"
        for k, v in {
            "inv_id": invoice["inv_id"],
            "out_sum": invoice["out_sum"],
            "is_test": "1" if invoice["is_test"] else "0",
        }.items()
    )
    test = " (тестовый режим)" if invoice["is_test"] else ""
    return _page(
        "Robokassa sandbox",
        f"<h1>Оплата счёта №{html.escape(str(invoice['inv_id']))}{test}</h1>"
        f"<p>{html.escape(str(invoice['description']))}</p>"
        f"<p>Сумма: {html.escape(str(invoice['out_sum']))} ₽</p>"
        f"<form method='post' action='../_sandbox/pay'>{hidden}"
        "<button type='submit'>Оплатить</button></form>",
    )
