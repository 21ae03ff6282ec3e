"""HTTPS certificates: the pure model (parse and check), the per-host book, SNI contexts and sources."""
