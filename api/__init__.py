"""Read API: stats, accounts and keys over HTTP."""
