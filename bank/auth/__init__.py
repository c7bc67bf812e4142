"""Identity and the OAuth 2 authorization server: clients, signing keys, tokens, guards."""
