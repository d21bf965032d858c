"""Protocol probes shared by every suite: TLS contexts and scans, SMTP, IMAP, HTTP.

Suites never talk to a socket themselves; they call these, which bound every network call
in time and keep a redacted transcript as evidence.
"""
