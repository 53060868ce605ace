"""A stateful fake of the Telegram Bot API for one bot sitting in the school's forum groups.

Written from the Bot API docs (core.telegram.org/bots/api), the Bot FAQ on flood limits and the
error texts Telegram answers with (as quoted by many public bots), never from our connector:

- `/bot<token>/<method>`, GET or POST, JSON or form; `{"ok": true, "result": ...}` or
  `{"ok": false, "error_code", "description", "parameters"?}`. A wrong token is 401
  «Unauthorized», an unknown method 404 «Not Found».
- `sendMessage`: text 1-4096 characters after entity parsing; `parse_mode=HTML` accepts only
  Telegram's tags, well nested (400 «Bad Request: can't parse entities: ...»); 400 «message is too
  long», «chat not found»; 403 «bot was kicked from the supergroup chat» after a kick; flood
  limits answer 429 «Too Many Requests: retry after N» with `parameters.retry_after`, and a
  refused message is not recorded. Message ids run in sequence per chat across the bot's
  messages and people's.
- `editMessageText`: the bot's own live messages; 400 «message to edit not found», «message
  can't be edited», «message is not modified: ...» (same text, entities and reply markup); sets
  `edit_date`; takes from the per-bot flood limit only.
- `deleteMessage`: the bot's own live messages; 400 «message to delete not found», «message
  can't be deleted»; the record stays, marked deleted.
- `getUpdates` (offset confirms, negative offset from the end, long polling capped), `setWebhook`
  (`secret_token` comes back as `X-Telegram-Bot-Api-Secret-Token`), `deleteWebhook`,
  `getWebhookInfo`; 409 for `getUpdates` while a webhook is set.
- `/_sandbox/*`: what the bot sent (`messages`, `?present=1` without deleted ones) and edited
  (`edits`), a person writing in a group, a kick, state, faults (errors, timeouts, lost answers),
  flood limits changed at run time (`limits`), reset.

Not modelled: entities in answers (they are parsed, and compared by edits), Markdown parsing,
multipart bodies, inline messages, admin rights (the bot deletes only its own messages), the
48-hour limit on deleting, other methods.
"""

from schoolsync.sandbox.telegram.app import create_app
from schoolsync.sandbox.telegram.bot import TelegramSandbox
from schoolsync.sandbox.telegram.config import TelegramSandboxConfig

__all__ = ["TelegramSandbox", "TelegramSandboxConfig", "create_app"]
