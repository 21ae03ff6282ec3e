"""Pure decisions: no I/O, no asyncio, no clock. Time arrives as ``now``."""
