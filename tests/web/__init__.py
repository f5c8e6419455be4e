"""Browser tests: the service's pages in Debian's chromium, driven by Playwright (see conftest.py)."""
