"""A real headless Chromium for the HTML view tests, driven by selenium.

``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``. When no browser can be
found the tests are skipped with a loud reason, except under ``CI=true``, where a missing
browser is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)

XSS_TOKENS = [
    "</script><script>window.__xss=1;alert(1)</script>",
    "<img src=x onerror=\"window.__xss=2;alert(1)\">",
    "\" onmouseover=\"window.__xss=3;alert(1)",
    "javascript:window.__xss=4;alert(1)",
    "\u2028</SCRIPT >&amp;",
]


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def start_browser() -> Any:
    """A headless Chromium session, or skip (fail under CI=true) with the reason."""
    reason = None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        reason = "selenium is not installed (pip install -e '.[test]')"
    browser, driver = _find(BROWSERS), _find(DRIVERS)
    if reason is None and (browser is None or driver is None):
        reason = ("no headless Chromium found: apt-get install -y chromium chromium-driver "
                  f"(browser={browser}, driver={driver})")
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"HTML view tests need a browser under CI: {reason}")
        pytest.skip(f"BROWSER TESTS NOT RUN: {reason}")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def load(drv: Any, path: Any, timeout: float = 10.0) -> str:
    """Open ``path`` from file:// and wait until the view reports ready; return its state."""
    drv.get("file://" + os.path.abspath(str(path)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = drv.execute_script(
            "var r = document.getElementById('probe-root'); return r && r.dataset.ready;"
        )
        if state:
            return state
        time.sleep(0.02)
    return "timeout"


def console_errors(drv: Any) -> list[dict]:
    return [e for e in drv.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def resources(drv: Any) -> int:
    return drv.execute_script("return performance.getEntriesByType('resource').length")


def no_alert(drv: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        drv.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def screenshot_colors(drv: Any) -> int:
    """Distinct colours in a screenshot (a blank page has one)."""
    from PIL import Image

    img = Image.open(io.BytesIO(drv.get_screenshot_as_png())).convert("RGB")
    return len(img.getcolors(maxcolors=1 << 20) or [])


def canvas_sum(drv: Any, css: str) -> float:
    """Sum of the RGBA bytes of the first canvas matching ``css`` (to see a redraw)."""
    return drv.execute_script(
        "var c = document.querySelector(arguments[0]); var d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; var s = 0;"
        "for (var i = 0; i < d.length; i++) s += d[i] * ((i % 7) + 1); return s;", css
    )


def open_clean(drv: Any, view: Any, folder: Any, name: str) -> None:
    """Save ``view`` as ``folder/name.html`` and open it: it loads, logs no console error,
    fetches nothing, raises no alert, runs no injected script and draws something."""
    path = view.save(Path(folder) / f"{name}.html")
    assert load(drv, path) == "1"
    assert console_errors(drv) == []
    assert resources(drv) == 0
    assert no_alert(drv)
    assert drv.execute_script("return window.__xss") is None
    assert screenshot_colors(drv) > 20


def hover(drv: Any, element: Any, dx: int = 0, dy: int = 0) -> None:
    """Move the pointer to ``dx, dy`` pixels from the centre of ``element``."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(drv).move_to_element_with_offset(element, dx, dy).perform()


def dataset(drv: Any) -> dict:
    return drv.execute_script(
        "return Object.assign({}, document.getElementById('probe-root').dataset)"
    )


def screenshots(pages: dict[str, str], out: str, size: tuple[int, int] = (1000, 700)) -> list[str]:
    """Screenshots of saved views (``{name: html path}``) as ``out/html_<name>.png``, taken
    by the test browser (used for the README: ``python tests/_browser.py OUT HTML...``)."""
    from PIL import Image

    drv = start_browser()
    drv.set_window_size(*size)
    written = []
    try:
        for name, path in pages.items():
            assert load(drv, path) == "1", path
            time.sleep(0.2)
            img = Image.open(io.BytesIO(drv.get_screenshot_as_png())).convert("RGB")
            target = os.path.join(out, f"html_{name}.png")
            img.quantize(colors=128).save(target, optimize=True)
            written.append(target)
    finally:
        drv.quit()
    return written


if __name__ == "__main__":  # python tests/_browser.py docs/figures docs/figures/html/*.html
    import sys

    files = sys.argv[2:]
    names = {os.path.basename(f)[5:-5] if os.path.basename(f).startswith("html_")
             else os.path.basename(f)[:-5]: f for f in files}
    print("\n".join(screenshots(names, sys.argv[1])))
