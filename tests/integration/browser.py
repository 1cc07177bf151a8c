"""A real headless Chromium for the console tests (Debian's chromium and chromium-driver,
driven by python3-selenium).

The browser runs with a fresh profile, no background networking, no component
updates, no sync, and a host resolver that finds nothing but 127.0.0.1, so it can
only ever load pages of the test's own nginx; every navigation is checked to stay on
https://127.0.0.1:PORT.  Screenshots go to $BUILD/artifacts/console/NAME.png.
"""

import os
import shutil
import tempfile
import time

from harness import BUILD, Skip, TestFailure

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
ARTIFACTS = os.path.join(BUILD, "artifacts", "console")
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


class Browser:
    def __init__(self, port):
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError as e:
            raise Skip(f"python3-selenium is not installed ({e})")
        for p in (CHROMIUM, DRIVER):
            if not os.access(p, os.X_OK):
                raise Skip(f"{p} is not installed (Debian chromium and chromium-driver)")
        self.origin = f"https://127.0.0.1:{port}"
        self.profile = tempfile.mkdtemp(prefix="enrichd-chromium-")
        self.downloads = tempfile.mkdtemp(prefix="enrichd-downloads-")
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
                  "--disable-features=Translate,OptimizationHints,MediaRouter",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                  f"--user-data-dir={self.profile}", "--window-size=1280,800",
                  # The test's nginx has a self-signed certificate.
                  "--ignore-certificate-errors"):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        o.add_experimental_option("prefs", {"download.default_directory": self.downloads,
                                            "download.prompt_for_download": False})
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=o)
        self.driver.set_page_load_timeout(20)
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": self.downloads})
        self.size("desktop")

    # -- navigation -------------------------------------------------------------
    def check_origin(self):
        url = self.driver.current_url
        if not url.startswith(self.origin + "/"):
            raise TestFailure(f"the browser left the test's nginx: {url}")

    def open(self, path):
        if not path.startswith("/"):
            raise TestFailure("open() takes a path of the test's nginx")
        self.driver.get(self.origin + path)
        self.check_origin()

    def size(self, name):
        w, h = SIZES[name]
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": w, "height": h, "deviceScaleFactor": 1,
                                     "mobile": w < 600})

    # -- finding things ----------------------------------------------------------
    def css(self, sel):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, sel)

    def one(self, sel):
        found = self.css(sel)
        if not found:
            raise TestFailure(f"no element {sel!r} on {self.driver.current_url}")
        return found[0]

    def visible(self, sel):
        found = [e for e in self.css(sel) if e.is_displayed()]
        return found[0] if found else None

    def text(self, sel):
        e = self.visible(sel)
        return e.text if e else ""

    def wait(self, cond, timeout=15, what="the page"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                v = cond()
            except Exception as e:  # noqa: BLE001 - the page is changing under us
                last, v = e, None
            if v:
                return v
            time.sleep(0.05)
        raise TestFailure(f"timed out after {timeout}s waiting for {what}"
                          + (f" (last error: {last!r})" if last else ""))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def console_errors(self):
        """Messages of severity SEVERE in the page's console (CSP violations included)."""
        try:
            return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
        except Exception:  # noqa: BLE001 - not every driver keeps the log
            return []

    # -- artefacts ------------------------------------------------------------------
    def screenshot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name + ".png")
        self.driver.save_screenshot(path)
        print(f"    screenshot {os.path.relpath(path)}")
        return path

    def downloaded(self, name, timeout=15):
        path = os.path.join(self.downloads, name)

        def done():
            return os.path.exists(path) and not os.path.exists(path + ".crdownload") and path
        return self.wait(done, timeout=timeout, what=f"the download of {name}")

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
            shutil.rmtree(self.downloads, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False
