"""The controller's versioned view for data planes (proxies, DNS servers), and how they follow it."""

from __future__ import annotations

from ingressfed.feed.view import FeedFormatError, FeedView, decode_view, encode_view

__all__ = ["FeedFormatError", "FeedView", "decode_view", "encode_view"]
