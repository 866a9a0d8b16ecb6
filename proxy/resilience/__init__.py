"""Resilience as pure state machines: breakers, retry policy, rate limits, tenant quotas.

Nothing here does I/O or sleeps. Each class takes the time as an argument (`now`,
seconds on a monotonic clock), so tests drive hours of behaviour in microseconds
and the aiohttp edge (`proxy.server.attempts`) only executes the steps that
`chain.Chain` decides.
"""
