"""The `mlc graph --format html` page in headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium; skipped where either is absent): it loads from file:// with
no console errors and no network, draws the expected nodes at every stage, and its stage menu,
node clicks, search and before/after view work.

`python tests/test_browser.py --screenshot docs/img/graph.png` takes the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

MODEL = textwrap.dedent(
    """
    import numpy as np


    def mlp(x, w1, b1, w2):
        h = np.tanh(x @ w1 + b1)
        z = h @ w2
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    """
)
ARGS = ["f32[4,6]", "f32[6,5]", "f32[5]", "f32[5,3]"]


def _skip_reason():
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)"
    if not os.path.exists(DRIVER):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def start_browser(width=1400, height=900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='mlc-chromium-')}")
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def write_page(directory, stage="fused", model=MODEL, target="mlp", args=ARGS) -> str:
    src = os.path.join(directory, "model.py")
    with open(src, "w") as f:
        f.write(model)
    out = os.path.join(directory, "graph.html")
    cmd = [sys.executable, "-m", "mlc.cli", "graph", f"{src}:{target}", "--stage", stage]
    for a in args:
        cmd += ["--arg", a]
    r = subprocess.run(  # from the model's folder: nodes say model.py:LINE
        [*cmd, "--format", "html", "-o", out], capture_output=True, text=True, cwd=directory
    )
    assert r.returncode == 0, r.stderr
    return out


def wait_for(driver, script, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = driver.execute_script(script)
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def load(driver, path):
    driver.get("file://" + path)
    wait_for(driver, "return document.body.dataset.ready === '1'")


def select_stage(driver, stage_id):
    index = driver.execute_script(
        "const d = JSON.parse(document.getElementById('mlc-data').textContent);"
        "return d.stages.findIndex(s => s.id === arguments[0]);",
        stage_id,
    )
    assert index >= 0, stage_id
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "stage")).select_by_value(str(index))
    wait_for(driver, f"return document.body.dataset.stage === '{index}'")
    return index


def drawn(driver, pane="after") -> int:
    return driver.execute_script(f"return document.querySelectorAll('#{pane} svg g.node').length")


def console_errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


@pytest.fixture(scope="module")
def lowered(tmp_path_factory):
    import mlc
    from mlc.cli import load_function, parse_arg_type

    directory = tmp_path_factory.mktemp("browser")
    path = write_page(str(directory))
    fn = load_function(f"{directory}/model.py:mlp")
    low = mlc.jit(fn, backend="cpu").lower(*[parse_arg_type(t) for t in ARGS])
    return path, low


@pytest.fixture(scope="module")
def browser(lowered):
    driver = start_browser()
    try:
        load(driver, lowered[0])
        yield driver
    finally:
        driver.quit()


def test_page_loads_offline_without_errors_and_draws_every_node(browser, lowered):
    _, low = lowered
    assert console_errors(browser) == []
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert [r for r in resources if not r.startswith(("file:", "data:", "blob:"))] == []
    assert browser.find_element("id", "stage").get_attribute("value") == browser.execute_script(
        "return document.body.dataset.stage"
    )
    # the initial stage is the fused graph: one drawn node per IR node, one cluster per kernel
    assert drawn(browser) == len(low.optimized.nodes())
    clusters = browser.execute_script("return document.querySelectorAll('#after svg g.cluster')")
    assert len(clusters) == len(low.plan.kernels)
    red = browser.execute_script(
        "return [...document.querySelectorAll('#after svg g.edge path')]"
        ".filter(p => p.getAttribute('stroke-dasharray')).length"
    )
    assert red == len({(id(u.producer), id(u.consumer)) for u in low.plan.unfused})


def test_selecting_a_stage_redraws_it(browser, lowered):
    _, low = lowered
    select_stage(browser, "traced")
    assert drawn(browser) == len(low.graph.nodes())
    select_stage(browser, "kernels")
    plan = low.plan
    assert drawn(browser) == len(plan.kernels) + len(low.optimized.inputs) + 1  # + the output
    select_stage(browser, "pass0:cse")
    assert drawn(browser) > 0
    select_stage(browser, "optimized")
    assert drawn(browser) == len(low.optimized.nodes())
    assert console_errors(browser) == []


def click_node(driver, pred: str):
    """Click the drawn node whose metadata satisfies the JS predicate ``pred`` (on ``m``)."""
    node_id = driver.execute_script(
        "const d = JSON.parse(document.getElementById('mlc-data').textContent);"
        "const s = d.stages[Number(document.body.dataset.stage)];"
        f"return Object.keys(s.nodes).find(k => {{ const m = s.nodes[k]; return {pred}; }});"
    )
    assert node_id, pred
    g = driver.find_element("css selector", f'#after g.node[data-node="{node_id}"]')
    g.click()
    wait_for(driver, f"return document.getElementById('info').dataset.node === '{node_id}'")
    return driver.find_element("id", "info").text


def test_clicking_a_node_shows_attributes_type_and_source_line(browser, lowered):
    _, low = lowered
    select_stage(browser, "fused")
    text = click_node(browser, "m.op === 'tanh'")
    tanh = next(n for n in low.optimized.nodes() if n.op == "tanh")
    assert str(tanh.type) in text and f"model.py:{tanh.loc.line}" in text
    assert "h = np.tanh(x @ w1 + b1)" in text  # the source line's text
    assert "tanh_0" in text or "kernel" in text
    text = click_node(browser, "m.op === 'reduce_max'")
    assert "axes" in text and "(1,)" in text and "z.max(axis=1, keepdims=True)" in text
    # a kernel's cluster (its label): what it computes, reads and writes
    from selenium.common.exceptions import ElementClickInterceptedException

    labels = browser.find_elements("css selector", "#after g.cluster text")
    assert len(labels) == len(low.plan.kernels)
    clicked = 0
    for label, kernel in zip(labels, low.plan.kernels):
        assert label.text.split(": ")[0] in (kernel.name, f"library {kernel.name}")
        try:
            label.click()
        except ElementClickInterceptedException:  # an edge drawn across the label
            continue
        node = f"cluster_{kernel.name}"
        wait_for(browser, f"return document.getElementById('info').dataset.node === '{node}'")
        text = browser.find_element("id", "info").text
        assert kernel.name in text and "reads" in text and "writes" in text
        clicked += 1
    assert clicked
    # the kernels stage: a kernel's description and its LLVM IR
    select_stage(browser, "kernels")
    text = click_node(browser, "m.op === 'kernel'")
    assert "KERNEL DESCRIPTION" in text.upper() and "LLVM IR" in text.upper() and "define " in text


def test_search_highlights_matching_nodes(browser, lowered):
    from selenium.webdriver.common.keys import Keys

    _, low = lowered
    select_stage(browser, "optimized")
    box = browser.find_element("id", "search")

    def search(text):  # replace the box's text as a user would (clear() fires no input event)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        if text:
            box.send_keys(text)

    search("dot_general")
    want = sum(1 for n in low.optimized.nodes() if n.op == "dot_general")
    assert want == 2
    wait_for(browser, f"return document.getElementById('matches').dataset.count === '{want}'")
    assert len(browser.find_elements("css selector", "#after g.node.match")) == want
    assert browser.find_element("id", "matches").text == f"{want} of {drawn(browser)}"
    box.send_keys(Keys.ENTER)  # selects the first match
    assert "dot_general" in browser.find_element("id", "info").text
    search("%1")  # an SSA name matches exactly, not %10..%19
    wait_for(browser, "return document.getElementById('matches').dataset.count === '1'")
    search("")
    wait_for(browser, "return document.querySelectorAll('#after g.node.match').length === 0")
    assert browser.find_element("id", "matches").text == ""


def test_before_after_view_of_a_pass(browser, lowered):
    _, low = lowered
    stages = browser.execute_script(
        "return JSON.parse(document.getElementById('mlc-data').textContent).stages"
        ".map(s => [s.id, s.note, Object.keys(s.nodes).length, s.before])"
    )
    changed = [s for s in stages if s[0].startswith("pass") and not s[1]]
    assert changed
    sid, _, count, before = changed[0]
    select_stage(browser, sid)
    box = browser.find_element("id", "compare")
    if not box.is_selected():
        box.click()
    wait_for(browser, "return !document.getElementById('before').hidden")
    assert drawn(browser, "before") == stages[before][2] and drawn(browser, "after") == count
    marked = browser.execute_script(
        "return document.querySelectorAll('#after g.node.added, #before g.node.removed').length"
    )
    assert marked > 0  # the pass changed something, and the view shows what
    heading = browser.find_element("css selector", "#after h2").text
    assert heading.startswith("after: ") and " nodes" in heading
    box.click()
    wait_for(browser, "return document.getElementById('before').hidden")
    assert console_errors(browser) == []


def screenshot(path: str):
    """The README picture: an MLP forward pass at the fused stage."""
    model = textwrap.dedent(
        """
        import numpy as np


        def mlp(x, w1, b1, w2, b2):
            h = np.tanh(x @ w1 + b1)
            logits = h @ w2 + b2
            z = logits - logits.max(axis=1, keepdims=True)
            return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        """
    )
    args = ["f32[64,784]", "f32[784,128]", "f32[128]", "f32[128,10]", "f32[10]"]
    with tempfile.TemporaryDirectory() as d:
        page = write_page(d, "fused", model, "mlp", args)
        driver = start_browser(1500, 1250)
        try:
            load(driver, page)
            click_node(driver, "m.op === 'reduce_max'")
            driver.save_screenshot(path)
        finally:
            driver.quit()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--screenshot":
        screenshot(sys.argv[2])
    else:
        sys.exit(pytest.main([__file__, *sys.argv[1:]]))
