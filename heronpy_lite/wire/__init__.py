"""The wire protocol, sans-IO: frames, control messages, tuple batches, plans.

Nothing in this package imports asyncio or touches a socket.
"""
