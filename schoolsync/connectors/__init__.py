"""One package per platform: typed clients, wire models and inbound webhook verification."""
