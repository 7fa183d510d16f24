"""The web front end: HTML pages, their static assets, and the browser's session cookie.

Pages are plain HTML shells (``web/pages``) that load ES modules from ``web/static``; every
number on them is read from the JSON API by the browser, so a page holds no user data and needs
no server-side rendering. :func:`web.routes.build_web_router` serves them, with a strict
Content-Security-Policy; :mod:`web.session` keeps the browser's refresh token in an HttpOnly
cookie (docs/web.md).
"""
