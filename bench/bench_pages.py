"""Issue 11's page figures in a real Chromium: every owner page's first render under
Chromium's "Slow 4G" throttling, and its bytes before images.

``ctplhub serve`` runs on an SQLite database made by ``ctplhub init`` with the demo
insurers (the pages' speed does not depend on the data; the answer page is the one GET
pages lead to and is measured as a POST of the query form). Each page is loaded in a new
browser context (a cold cache, as a first visit), with the network throttled through the
DevTools protocol to DevTools' "Slow 4G" preset: 562.5 ms round trip, 1.6 Mbit/s down
and 750 kbit/s up, each times 0.9, as ``devtools-frontend``'s ``NetworkManager`` defines
it. First render is the page's ``first-contentful-paint``; bytes are the encoded sizes
of every response the page loaded (HTML, CSS, scripts), none of them images. Medians of
``--rounds`` loads per page.

    .venv/bin/python bench/bench_pages.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from common import Home, fresh_home, log, server
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
SLOW_4G = {
    "offline": False,
    "latency": 150 * 3.75,
    "downloadThroughput": 1.6 * 1000 * 1000 / 8 * 0.9,
    "uploadThroughput": 750 * 1000 / 8 * 0.9,
}
PAGES = ("/", "/certificate", "/subscribe", "/who-read", "/dispute", "/dispute/status",
         "/renew", "/faq", "/privacy", "/verify", "/ask")  # fmt: skip
FIRST_RENDER_MS = 1000
BUDGET_BYTES = 100 * 1024


def measure(page: Page, url: str, form: dict[str, str] | None) -> dict[str, float]:
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(int(r.headers.get("content-length", "0") or 0)))
    client = page.context.new_cdp_session(page)
    client.send("Network.enable")
    client.send("Network.emulateNetworkConditions", SLOW_4G)
    if form is None:
        page.goto(url, wait_until="load")
    else:  # the answer page: the query form posted, as an owner does
        page.goto(url, wait_until="load")
        sizes.clear()
        for name, value in form.items():
            page.locator(f"#{name}").fill(value)
        with page.expect_navigation(wait_until="load"):
            page.locator("form.query-form button[type=submit]").first.click()
    fcp = page.evaluate(
        """() => new Promise((done) => {
             new PerformanceObserver((list) => {
               for (const e of list.getEntries())
                 if (e.name === "first-contentful-paint") done(e.startTime);
             }).observe({type: "paint", buffered: true});
             setTimeout(() => done(-1), 10000);
           })"""
    )
    return {"first_render_ms": float(fcp or -1), "bytes": float(sum(sizes))}


def run(rounds: int) -> dict[str, Any]:
    home = Home.for_db("ctplhub_bench_pages", engine="sqlite")
    fresh_home(home)
    results: dict[str, dict[str, Any]] = {}
    with server(home, name="pages") as srv, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        targets = [(p, None) for p in PAGES] + [
            ("/ (answer)", {"plate": "苏E12345", "vin_last6": "183294"})
        ]
        for name, form in targets:
            path = "/" if form is not None else name
            loads = []
            for _ in range(rounds):
                context = browser.new_context(
                    viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN"
                )
                loads.append(measure(context.new_page(), srv.base + path, form))
                context.close()
            renders = [m["first_render_ms"] for m in loads]
            results[name] = {
                "first_render_ms_median": round(statistics.median(renders), 1),
                "first_render_ms_max": round(max(renders), 1),
                "bytes": int(statistics.median(m["bytes"] for m in loads)),
            }
            log(f"  {name}: {results[name]}")
        browser.close()
    worst = max(r["first_render_ms_median"] for r in results.values())
    heaviest = max(r["bytes"] for r in results.values())
    return {
        "benchmark": "pages",
        "network": "DevTools Slow 4G (562.5 ms RTT, 1.44 Mbit/s down)",
        "rounds": rounds,
        "pages": results,
        "worst_first_render_ms": worst,
        "heaviest_bytes": heaviest,
        "meets_target": worst < FIRST_RENDER_MS and heaviest < BUDGET_BYTES,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(args.rounds)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
