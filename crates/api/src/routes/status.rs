//! The status page: `GET /` (plain HTML, inline CSS and a little vanilla JS,
//! no build step) and the JSON it polls, `GET /api/v1/status`.
//!
//! It shows the thumbfarm queues with their depth (from `Queue::stats()`,
//! as cached by the API's stats poller), rates (jobs this replica published,
//! and rendered / transcoded / failed events seen on `thumbfarm.events`, per
//! minute), the last failures and the last renders. The events come from a
//! subscription of the replica's own ([`StatusBoard`]). No cookie is read or
//! set.
//!
//! Two views ([`Access`]):
//! - **anonymous** (no `Authorization` header): queues, rates and hashes;
//!   failure reasons are generic ([`FailureKind::public_text`]); the store
//!   and queue are not named; recent renders carry a thumbnail URL only in
//!   `public` token mode, where a URL holds no secret. Nothing here mints a
//!   token for the deployment's secrets.
//! - **operator** (`Authorization: Bearer <API key>`): the full reasons,
//!   the store and queue, and working `tile_100` URLs in every token mode.
//!   The page itself takes the key from its URL fragment (`/#key=…`, never
//!   sent to the server) or a form, keeps it in `sessionStorage` and sends
//!   it with its polls.
//!
//! With `--admin-listen` the page, its JSON and `/metrics` move to the
//! operator port (see `server.rs`).

use crate::http::auth::check_api_key;
use crate::http::error::ApiError;
use crate::services::status_board::{Access, Replica, StatusDoc};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn disabled() -> Response {
    let body = serde_json::json!({ "error": "the status page is turned off (--status-page)", "status": 404 });
    no_store((StatusCode::NOT_FOUND, axum::Json(body)).into_response())
}

async fn document(state: &AppState, access: Access) -> StatusDoc {
    let board = state.status();
    if let Err(e) = board.ensure_listening().await {
        tracing::debug!(error = %e, "status: cannot subscribe to events");
    }
    let replica = Replica {
        tokens: state.tokens(),
        public_url: state.options().public_url.as_deref(),
        store: state.store().as_ref(),
    };
    board.snapshot(replica, access).await
}

/// `GET /api/v1/status`: the status document (JSON).
pub async fn status_json(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.options().status_page {
        return disabled();
    }
    match access_of(&state, &headers) {
        Ok(access) => no_store(axum::Json(document(&state, access).await).into_response()),
        Err(e) => e.into_response(),
    }
}

/// The JSON embedded in the page, safe inside `<script>`.
fn embed_json(doc: &StatusDoc) -> String {
    serde_json::to_string(doc)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `GET /`: the status page. The page is served in the anonymous view; its
/// script asks for the operator view with the key it was given.
pub async fn page(State(state): State<AppState>) -> Response {
    if !state.options().status_page {
        return disabled();
    }
    let doc = document(&state, Access::Anonymous).await;
    let html = PAGE.replace("__INITIAL_STATUS__", &embed_json(&doc));
    let mut response = (StatusCode::OK, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data: http: https:; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ),
    );
    no_store(response)
}

/// The page. `__INITIAL_STATUS__` is replaced by the status document, which
/// the script renders at once and then polls every few seconds.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>thumbfarm status</title>
<style>
  :root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ec; --bg:#f7f8fa; --bad:#b3261e; --ok:#1b7f3b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: var(--muted); font-size: 12px; }
  main { padding: 16px 24px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
  section h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: var(--muted); }
  .bad { color: var(--bad); }
  .ok { color: var(--ok); }
  .error { color: var(--bad); margin: 4px 0; }
  .reason { word-break: break-word; }
  code { font-size: 12px; }
  #renders { display: grid; grid-template-columns: repeat(auto-fill, minmax(104px, 1fr)); gap: 8px; }
  #renders figure { margin: 0; font-size: 11px; color: var(--muted); text-align: center; }
  #renders img { width: 100px; height: 100px; object-fit: cover; background: var(--line); border-radius: 4px; display: block; margin: 0 auto 2px; }
  dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-variant-numeric: tabular-nums; }
</style>
</head>
<body data-polls="0">
<header>
  <h1>thumbfarm</h1>
  <span class="meta" id="backends"></span>
  <span class="meta">updated <span id="updated">never</span> · <span id="poll-state">polling every 3 s</span></span>
  <form id="key-form" class="meta" autocomplete="off">
    <span id="access">anonymous view: generic reasons, no store names</span>
    <input id="key" type="password" placeholder="API key" size="18" aria-label="API key">
    <button type="submit">show details</button>
  </form>
</header>
<noscript><p style="padding:0 24px">This page needs JavaScript; the same data is at <a href="api/v1/status">/api/v1/status</a>.</p></noscript>
<main>
  <section>
    <h2>Queues</h2>
    <p class="error" id="queues-error" hidden></p>
    <table id="queues">
      <thead><tr><th>queue</th><th class="num">ready</th><th class="num">unacked</th><th class="num">consumers</th><th class="num">ready Δ/min</th></tr></thead>
      <tbody></tbody>
    </table>
    <p class="muted" id="queues-as-of"></p>
  </section>
  <section>
    <h2>Rates (per minute)</h2>
    <dl id="rates"></dl>
  </section>
  <section style="grid-column: 1 / -1">
    <h2>Recent renders</h2>
    <div id="renders"></div>
    <p class="muted" id="renders-empty">No renders seen since this replica started.</p>
  </section>
  <section style="grid-column: 1 / -1">
    <h2>Recent failures</h2>
    <table id="failures">
      <thead><tr><th>when</th><th>asset</th><th>reason</th><th>kind</th></tr></thead>
      <tbody></tbody>
    </table>
    <p class="muted" id="failures-empty">No failures seen since this replica started.</p>
  </section>
</main>
<script id="initial-status" type="application/json">__INITIAL_STATUS__</script>
<script>
"use strict";
(function () {
  var POLL_MS = 3000;
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k])); } }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(x) { return (x === null || x === undefined) ? "–" : String(x); }
  function fill(tbody, rows) { while (tbody.firstChild) tbody.removeChild(tbody.firstChild); rows.forEach(function (r) { tbody.appendChild(r); }); }
  function render(s) {
    if (!s) return;
    document.getElementById("backends").textContent = (s.store && s.queue) ? s.store + " · " + s.queue : "";
    document.body.setAttribute("data-access", s.access);
    document.getElementById("access").textContent = s.access === "operator" ? "operator view" : "anonymous view: generic reasons, no store names";
    document.getElementById("updated").textContent = s.generated_at;
    var qerr = document.getElementById("queues-error");
    qerr.hidden = !s.queues_error;
    qerr.textContent = s.queues_error ? "queue depths unavailable: " + s.queues_error : "";
    fill(document.querySelector("#queues tbody"), s.queues.map(function (q) {
      var tr = el("tr", { "data-queue": q.queue, "data-ready": q.ready, "data-unacked": q.unacked, "data-consumers": q.consumers });
      tr.appendChild(el("td", null, q.queue));
      tr.appendChild(el("td", { "class": "num ready" + (q.queue === "thumbfarm.dead" && q.ready > 0 ? " bad" : "") }, q.ready));
      tr.appendChild(el("td", { "class": "num unacked" }, q.unacked));
      tr.appendChild(el("td", { "class": "num consumers" }, q.consumers));
      var d = q.ready_change_per_min;
      tr.appendChild(el("td", { "class": "num change" }, d === null ? "–" : (d > 0 ? "+" : "") + d));
      return tr;
    }));
    document.getElementById("queues-as-of").textContent = s.queues_as_of ? "depths as of " + s.queues_as_of : "";
    var rates = document.getElementById("rates");
    while (rates.firstChild) rates.removeChild(rates.firstChild);
    [["jobs published", s.rates.jobs_published_per_min, "jobs_published", s.totals.jobs_published],
     ["rendered", s.rates.rendered_per_min, "rendered", s.totals.rendered],
     ["transcoded", s.rates.transcoded_per_min, "transcoded", s.totals.transcoded],
     ["failed", s.rates.failed_per_min, "failed", s.totals.failed]].forEach(function (r) {
      rates.appendChild(el("dt", null, r[0]));
      rates.appendChild(el("dd", { "data-rate": r[2] }, num(r[1]) + "  (" + r[3] + " since start)"));
    });
    var box = document.getElementById("renders");
    while (box.firstChild) box.removeChild(box.firstChild);
    s.recent_renders.forEach(function (r) {
      var f = el("figure", { "data-hash": r.hash });
      if (r.thumb_url) f.appendChild(el("img", { src: r.thumb_url, alt: r.hash, loading: "lazy", width: 100, height: 100 }));
      f.appendChild(el("figcaption", { title: r.hash + " · " + r.sizes.join(", ") }, r.hash.slice(0, 10) + "…"));
      box.appendChild(f);
    });
    document.getElementById("renders-empty").hidden = s.recent_renders.length > 0;
    fill(document.querySelector("#failures tbody"), s.recent_failures.map(function (x) {
      var tr = el("tr", { "data-hash": x.hash });
      tr.appendChild(el("td", null, x.at));
      var code = el("code", null, x.hash.slice(0, 12) + "…"); code.title = x.hash;
      var td = el("td"); td.appendChild(code); tr.appendChild(td);
      tr.appendChild(el("td", { "class": "reason" }, x.reason));
      tr.appendChild(el("td", { "class": x.permanent ? "bad" : "muted" }, x.permanent ? "permanent" : "transient"));
      return tr;
    }));
    document.getElementById("failures-empty").hidden = s.recent_failures.length > 0;
  }
  // The API key: from the URL fragment (never sent to the server) or the
  // form, kept for this tab only.
  var KEY = "thumbfarm-status-key";
  var m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (m) {
    try { sessionStorage.setItem(KEY, decodeURIComponent(m[1])); } catch (e) { /* private mode */ }
    history.replaceState(null, "", location.pathname + location.search);
  }
  function key() { try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; } }
  document.getElementById("key-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    try { sessionStorage.setItem(KEY, document.getElementById("key").value); } catch (e) { /* private mode */ }
    document.getElementById("key").value = "";
  });
  function poll() {
    var headers = {};
    if (key()) headers["Authorization"] = "Bearer " + key();
    fetch("api/v1/status", { cache: "no-store", credentials: "omit", headers: headers })
      .then(function (r) {
        if (r.status === 401) { try { sessionStorage.removeItem(KEY); } catch (e) { /* private mode */ } throw new Error("API key refused"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (s) {
        render(s);
        document.body.setAttribute("data-polls", String(Number(document.body.getAttribute("data-polls")) + 1));
        document.getElementById("poll-state").textContent = "polling every " + POLL_MS / 1000 + " s";
        document.getElementById("poll-state").className = "";
      })
      .catch(function (e) {
        var p = document.getElementById("poll-state");
        p.textContent = "status unavailable (" + e.message + "), retrying";
        p.className = "bad";
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  try { render(JSON.parse(document.getElementById("initial-status").textContent)); } catch (e) { /* the poll renders */ }
  poll();
})();
</script>
</body>
</html>
"##;

/// The view a request may see: operator with a valid API key, anonymous
/// without credentials, refused (401) with a wrong key.
pub fn access_of(state: &AppState, headers: &HeaderMap) -> Result<Access, ApiError> {
    if headers.get(header::AUTHORIZATION).is_none() {
        return Ok(Access::Anonymous);
    }
    check_api_key(&state.options().api_keys, headers).map(|()| Access::Operator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script() {
        let s = serde_json::json!({"reason": "</script><script>alert(1)</script>&"}).to_string();
        let escaped = s.replace('<', "\\u003c").replace('>', "\\u003e");
        assert!(!escaped.contains("</script"));
        assert!(PAGE.contains("__INITIAL_STATUS__"));
    }
}
