"""Pure translation between wire models and the domain; message templates. No I/O here."""
