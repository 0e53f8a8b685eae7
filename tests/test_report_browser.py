"""The HTML report opens in headless Chromium and shows the figures (a screenshot is kept).

Needs Debian's chromium and the playwright Python package (both installed by .ci/run as root);
skipped otherwise. The screenshot is written to the test's temp dir and, when RSAFLOW_ARTIFACTS is
set, copied there for a person to look at.
"""

import os
import shutil
from pathlib import Path

import pytest

from conftest import tiny_config, write_cifar10

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_shows_figures_in_a_browser(workflow, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    config = tiny_config(write_cifar10(tmp_path / "cifar"))
    del config["models"]["resnet18"]["layers"]["layer3"]
    config["compare"] = {"bootstrap": 20}
    workflow.write_config(config)
    workflow.run()
    report = workflow.path("report.html")
    workflow.run("--report", str(report))
    shots = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(report.as_uri())
        page.get_by_text("RDMs", exact=True).first.click()
        page.get_by_text("results/figures/rdms.png").first.wait_for()
        # the eye icon beside the file name opens the figure
        row = page.get_by_text("results/figures/rdms.png").first.locator("xpath=ancestor::*[self::li or self::tr or self::div][1]")
        row.locator("svg, button, a").first.click()
        image = page.locator("img").last
        image.wait_for(timeout=10000)
        natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight, img.src.slice(0, 22)]")
        shots.append(tmp_path / "report_rdms.png")
        page.screenshot(path=str(shots[-1]))
        browser.close()
    assert natural[0] > 500 and natural[1] > 200, natural  # the RDM panel, decoded from the self-contained file
    assert natural[2].startswith("data:image/png"), natural
    assert shots[-1].stat().st_size > 20000
    if os.environ.get("RSAFLOW_ARTIFACTS"):
        Path(os.environ["RSAFLOW_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shots[-1], os.environ["RSAFLOW_ARTIFACTS"])
