"""The response cache's pure parts: keys, cacheability rules, byte-bounded LRU, entries.

No I/O here: the sidecar's tap on the relay and the Redis client live in
``proxy.server``; these modules decide what may be stored, under which key, and
how much memory it may take, so tests drive them without sockets.
"""
