"""A stateful fake of one GetCourse account: import API, export API and process callbacks.

Written from GetCourse's docs and from public code that talks to real accounts, never from our
connector. What it is built on, and how sure each part is:

- Import API (`/pl/api/users`, `/pl/api/deals`; `action=add&key=…&params=base64(JSON)`), the
  answer format and the deal status codes: GetCourse's help page and its PHP SDK.
- A wrong key: HTTP 200, `success: false`, `error_code: 901`, «Неавторизованное API-обращение»
  (a test fixture of a public integration).
- Export API: start → `{"success": true, "info": {"export_id": N}}`, poll → «Файл еще не
  создан» until `{"info": {"fields": [...], "items": [[...]]}}`. Several public integrations
  agree. Limits: 100 export requests (polls included) per 2 hours → error 903 «Слишком много
  запросов…»; one export at a time → error 905 «Уже запущен один экспорт, попробуйте позднее»;
  a start needs at least one filter.
- Deal export columns («ID заказа», «Номер», …, «Стоимость, RUB» at index 10, …): three
  independent public parsers list the same titles in the same order; cells are strings, money
  as `12 000,00` (space or no-break space), dates `YYYY-MM-DD HH:MM:SS` Moscow time; «Теги»
  cells are lists. Users and payments columns are less certain (see formats.py).
- Callbacks: placeholders from GetCourse's blog and public process URLs; data in the query
  string whatever the method; a payment fires two events.

Wording of refusals the sources do not show (bad params, unknown status, a repeated order
number without `refresh_if_exists`) is the sandbox's own.
"""

from schoolsync.sandbox.getcourse.app import create_app
from schoolsync.sandbox.getcourse.config import GetCourseSandboxConfig, SandboxOffer
from schoolsync.sandbox.getcourse.sandbox import GetCourseSandbox

__all__ = ["GetCourseSandbox", "GetCourseSandboxConfig", "SandboxOffer", "create_app"]
