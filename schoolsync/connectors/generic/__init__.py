"""The generic source: any system that can sign a JSON body with HMAC-SHA256.

It proves the inbox and job machinery before the real platforms, and lets a school feed events
from tools schoolsync does not know yet.
"""
