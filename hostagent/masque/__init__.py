"""MASQUE CONNECT-UDP (RFC 9298) on aioquic: proxy, client and target servers."""
