"""Accounts: the account state folded from account events, credentials and tokens."""
