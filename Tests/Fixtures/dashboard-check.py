#!/usr/bin/python3
"""Drives HBS's dashboard in a real headless Chromium (Debian's chromium and chromium-driver,
through Selenium) while a rollout runs, and checks it against the admin API:

  1. the page shows the rollout the API shows: id, phase, hosts done of all (read again until
     both agree: the rollout moves between the two reads);
  2. the failing host appears among the failed hosts with its reason;
  3. the agents table lists what /v1/agents lists, and its label filter filters;
  4. on a narrow screen (400 px) nothing overflows the page sideways;
  5. a screenshot mid-rollout (--screenshot);
  6. clicking Pause pauses the rollout: the page and the API both say paused.

Usage: dashboard-check.py --admin http://127.0.0.1:PORT --failed-host NAME --reason TEXT --screenshot PATH
Prints one JSON line; exit 0 when every check held, 1 with the first that did not."""
import argparse
import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def api(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.load(response)


def until(what, check, seconds=20):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # the page may be mid-render
            last = error
        time.sleep(0.2)
    raise AssertionError("%s (last seen: %r)" % (what, last))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin", required=True)
    parser.add_argument("--failed-host", required=True)
    parser.add_argument("--reason", required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    checks = []
    try:
        driver.get(args.admin + "/ui/")
        text = lambda id: driver.find_element(By.ID, id).text

        rollout = until("the page shows a rollout", lambda: text("rollout-id") not in ("", "–") and text("rollout-id"))
        checks.append("rollout %s shown" % rollout)

        def agree():
            page = (text("phase"), text("done"), text("hosts"))
            summary = api(args.admin, "/v1/rollouts/" + rollout)
            truth = (summary["phase"], str(summary["counts"].get("done", 0)), str(summary["hosts"]))
            return page == truth and page
        shown = until("the page's phase, done and hosts equal the API's", agree)
        checks.append("page equals API: phase %s, %s of %s done" % shown)

        def failed_shown():
            for item in driver.find_elements(By.CSS_SELECTOR, "#failed li"):
                if item.get_attribute("data-host") == args.failed_host and args.reason in item.text:
                    return item.text
            return None
        checks.append("failed host shown: " + until("the failing host with its reason", failed_shown))

        agents = api(args.admin, "/v1/agents")
        until("every agent in the table", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#agents tr")) == len(agents))
        label = driver.find_element(By.ID, "filter-label")
        label.send_keys("idc=b")
        wanted = sum(1 for a in agents if a["labels"].get("idc") == "b")
        until("the label filter", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#agents tr")) == wanted)
        label.clear()
        label.send_keys(" ")
        checks.append("agents table: %d agents, %d with idc=b" % (len(agents), wanted))

        until("the chart has lines", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#chart polyline")) == 3)
        driver.save_screenshot(args.screenshot)
        checks.append("screenshot " + args.screenshot)

        driver.set_window_size(400, 900)
        time.sleep(0.5)
        width = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1] + 1:
            raise AssertionError("on a 400 px screen the page is %d px wide" % width[0])
        checks.append("narrow screen: %d px page in a %d px window" % tuple(width))
        driver.set_window_size(1280, 1400)

        until("Pause can be clicked", lambda: driver.find_element(By.ID, "btn-pause").is_enabled())
        driver.find_element(By.ID, "btn-pause").click()
        until("the page says paused", lambda: text("phase") == "paused")
        phase = api(args.admin, "/v1/rollouts/" + rollout)["phase"]
        if phase != "paused":
            raise AssertionError("the API says %s after Pause" % phase)
        until("the pause event in the events list", lambda: any("paused" in e.text for e in driver.find_elements(By.CSS_SELECTOR, "#events li")))
        checks.append("pause clicked: page and API paused")
        print(json.dumps({"ok": True, "checks": checks}))
        return 0
    except Exception as error:
        print(json.dumps({"ok": False, "checks": checks, "error": str(error)}))
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
