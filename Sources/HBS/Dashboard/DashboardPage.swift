/// The dashboard's page and style: one HTML document and its CSS, inside the binary (no fetch
/// from anywhere but this HBS). Readable on a narrow screen: panels stack, tables scroll.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fledge rollouts</title>
<link rel="stylesheet" href="/ui/style.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
  <h1>Fledge</h1>
  <span id="hbs-status" class="muted">connecting…</span>
  <form id="token-form" hidden>
    <label>Admin token <input id="token" type="password" autocomplete="off"></label>
    <button type="submit">Use</button>
  </form>
</header>
<main>
  <section id="rollouts-panel">
    <h2>Rollouts</h2>
    <ul id="rollouts"></ul>
  </section>
  <section id="rollout-panel">
    <h2>Rollout <span id="rollout-id">–</span> <span id="release" class="muted"></span></h2>
    <p>Phase <strong id="phase">–</strong> <span id="pause-reason" class="muted"></span></p>
    <p class="big"><span id="done">0</span> of <span id="hosts">0</span> hosts done
      <span class="muted">· ETA <span id="eta">–</span></span></p>
    <div class="bar"><div id="bar-fill"></div></div>
    <dl id="counts"></dl>
    <p>Bytes from CDNs <strong id="bytes-cdn">0 B</strong> · from peers <strong id="bytes-peer">0 B</strong></p>
    <div class="actions">
      <button id="btn-pause" data-action="pause">Pause</button>
      <button id="btn-resume" data-action="resume">Resume</button>
      <button id="btn-abort" data-action="abort" class="danger">Abort</button>
      <button id="btn-rollback" data-action="rollback" class="danger">Roll back</button>
      <span id="action-status" class="muted"></span>
    </div>
    <h3>Batches</h3>
    <table class="compact"><thead><tr><th>Batch</th><th>Counts</th></tr></thead><tbody id="batches"></tbody></table>
    <h3>Over time</h3>
    <svg id="chart" viewBox="0 0 600 220" preserveAspectRatio="none" role="img" aria-label="hosts done and bytes by source over time"></svg>
    <p class="legend"><span class="key done"></span>hosts done <span class="key cdn"></span>bytes from CDNs <span class="key peer"></span>bytes from peers</p>
    <h3>Failed hosts</h3>
    <ul id="failed"></ul>
    <h3>Events</h3>
    <ol id="events" reversed></ol>
  </section>
  <section id="agents-panel">
    <h2>Agents <span id="agents-count" class="muted"></span></h2>
    <div class="filters">
      <label>State <select id="filter-state"><option value="">any</option></select></label>
      <label>Version <select id="filter-version"><option value="">any</option></select></label>
      <label>Label <input id="filter-label" placeholder="idc=a"></label>
    </div>
    <div class="scroll"><table><thead><tr><th>Host</th><th>Version</th><th>State</th><th>Starts</th><th>Labels</th><th>Error</th></tr></thead>
      <tbody id="agents"></tbody></table></div>
  </section>
</main>
</body>
</html>
"""#

    static let css = #"""
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; color: #1d2330; background: #f4f5f7; }
header { display: flex; flex-wrap: wrap; gap: 1em; align-items: center; padding: .6em 1em; background: #1d2330; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
header form { margin-left: auto; }
main { display: grid; gap: 1em; padding: 1em; grid-template-columns: minmax(12em, 1fr) 3fr; }
#agents-panel { grid-column: 1 / -1; }
section { background: #fff; border-radius: 6px; padding: .8em 1em; box-shadow: 0 1px 2px #0002; min-width: 0; }
h2 { font-size: 1.1em; margin: 0 0 .5em; } h3 { font-size: 1em; margin: 1em 0 .4em; }
.muted { color: #6b7280; } .big { font-size: 1.3em; }
ul, ol { padding-left: 1.2em; margin: 0; }
#rollouts li { cursor: pointer; padding: .15em 0; } #rollouts li.selected { font-weight: bold; }
.bar { height: .8em; background: #e5e7eb; border-radius: .4em; overflow: hidden; }
#bar-fill { height: 100%; width: 0; background: #16a34a; transition: width .3s; }
dl { display: flex; flex-wrap: wrap; gap: .3em 1.2em; } dt { color: #6b7280; } dd { margin: 0 0 0 .3em; font-weight: bold; }
.actions { display: flex; flex-wrap: wrap; gap: .5em; align-items: center; }
button { padding: .35em .9em; border: 1px solid #9ca3af; border-radius: 4px; background: #fff; cursor: pointer; }
button.danger { border-color: #dc2626; color: #b91c1c; } button:disabled { opacity: .4; cursor: default; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #e5e7eb; }
.scroll { overflow-x: auto; } .filters { display: flex; flex-wrap: wrap; gap: 1em; margin-bottom: .5em; }
#failed li { color: #b91c1c; } #events { max-height: 16em; overflow-y: auto; font-size: .9em; padding-left: 3em; }
#events .failed { color: #b91c1c; } #events .paused, #events .aborted { color: #b45309; }
svg { width: 100%; height: 12em; background: #fafafa; border: 1px solid #e5e7eb; }
.legend .key { display: inline-block; width: 1em; height: .3em; margin: 0 .3em 0 1em; vertical-align: middle; }
.key.done, .line.done { background: #16a34a; stroke: #16a34a; } .key.cdn, .line.cdn { background: #2563eb; stroke: #2563eb; }
.key.peer, .line.peer { background: #9333ea; stroke: #9333ea; } .line { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; }
@media (max-width: 700px) { main { grid-template-columns: 1fr; padding: .5em; } header form { margin-left: 0; } }
"""#
}
