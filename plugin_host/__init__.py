"""Plugins bound to our data: where the sandbox meets the accounts, the store and the projections.

:mod:`plugins_runtime` runs a script and knows nothing of accounts; :mod:`accounts` folds the
plugin store and knows nothing of QuickJS. This package joins them for the two services that run
plugins, the read API (RPC) and the hook processor: :mod:`plugin_host.rows` hands the SQL executor
the caller's account and store rows, :mod:`plugin_host.host` implements the sandbox's
``HostCalls`` for one plugin and one user (scoped SQL, plugin writes recorded as events, the
key-value namespace), and :mod:`plugin_host.executor` runs one call of an installed plugin.
"""
