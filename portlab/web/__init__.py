"""The live page (`portlab trace --web`, `portlab demo --web`): a small web server on loopback.

    serve   the standard library's HTTP server, the page, and a server-sent-events stream
"""
