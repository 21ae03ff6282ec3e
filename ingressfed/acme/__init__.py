"""ACME (RFC 8555) certificates for the proxy's HTTPS listener: a source of ``tls.book.Offer``s."""
