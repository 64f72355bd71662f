"""Tests of the MASQUE CONNECT-UDP proxy, client and targets (hostagent.masque)."""
