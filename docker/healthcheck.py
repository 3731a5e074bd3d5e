"""Container health check: GET $HEALTHCHECK_URL (default: the API's /health) must answer 200.

Standard library only, so it also works while the app is starting. Exit 0 = healthy, 1 = unhealthy
(with one line saying why, shown by ``docker inspect``).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("CREDIT_SCORER_API__PORT", "8000")
    url = os.environ.get("HEALTHCHECK_URL", f"http://127.0.0.1:{port}/health")
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {url} answered {exc.code}: {exc.read(300).decode(errors='replace')}")
        return 1
    except OSError as exc:
        print(f"unhealthy: {url} unreachable: {exc}")
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
