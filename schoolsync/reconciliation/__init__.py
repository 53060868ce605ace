"""The pure payment-matching engine (ledger entries, rules, reports). No I/O here."""
