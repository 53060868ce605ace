"""The kernel: settings, config, errors, the state store, logging and PII masking."""
