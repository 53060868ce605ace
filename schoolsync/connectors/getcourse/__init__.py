"""GetCourse: the import API (users, orders), the export API (tables by column title), "Call URL"
callbacks from order processes, and GetCourse's money strings.

Sources and how sure we are of each fact are in the module docstrings; the column titles of the
deal export are in ``exports.DEAL_COLUMNS``.
"""

from schoolsync.connectors.getcourse.callbacks import (
    CALLBACK_URL_TEMPLATE,
    GetCourseCallbacks,
    OrderCallback,
    callback_url,
    parse_callback,
)
from schoolsync.connectors.getcourse.client import GetCourseClient, Pacer
from schoolsync.connectors.getcourse.config import GetCourseAccount
from schoolsync.connectors.getcourse.exports import (
    DEAL_COLUMNS,
    DealExportRow,
    ExportBudget,
    ExportTable,
    GetCourseExports,
)
from schoolsync.connectors.getcourse.models import DealImport, ImportResult, UserImport
from schoolsync.connectors.getcourse.money import format_money, parse_money

__all__ = [
    "CALLBACK_URL_TEMPLATE",
    "DEAL_COLUMNS",
    "DealExportRow",
    "DealImport",
    "ExportBudget",
    "ExportTable",
    "GetCourseAccount",
    "GetCourseCallbacks",
    "GetCourseClient",
    "GetCourseExports",
    "ImportResult",
    "OrderCallback",
    "Pacer",
    "UserImport",
    "callback_url",
    "format_money",
    "parse_callback",
    "parse_money",
]
