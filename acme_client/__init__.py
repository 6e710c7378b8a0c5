"""ACME (RFC 8555) client for managed certificates: accounts, orders, HTTP-01 challenges."""
