#!/usr/bin/env bash
# The run viewer's tests open its page in a real headless browser: Debian's chromium.
# Installed here when it is missing and this machine can (root with apt-get); otherwise a note.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (headless browser for the viewer's tests)" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || echo "note: could not install chromium; tests/test_view_browser.py will fail" >&2
else
  echo "note: chromium is missing (apt-get install chromium); tests/test_view_browser.py will fail" >&2
fi
