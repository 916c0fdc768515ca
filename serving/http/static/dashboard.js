// The dashboard page: weekly and monthly charts (uPlot) of events, actors and revenue for one
// level, the latest growth, and the custom metrics the signed-in caller may see. Every figure
// comes from the API with the session cookie; nothing is loaded from elsewhere.
(function () {
  "use strict";
  var MEASURES = [
    ["event_count", "events", "event_count_growth_pct"],
    ["unique_actors", "actors", "unique_actors_growth_pct"],
    ["revenue_cents", "revenue (cents)", "revenue_growth_pct"],
  ];
  var PERIOD = { weekly: "week_start", monthly: "month_start" };
  var charts = [];

  function byId(id) { return document.getElementById(id); }

  function getJson(path) {
    return fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (reply) {
        if (reply.status === 401) { window.location.assign("/"); }
        if (!reply.ok) { throw new Error(path + " answered " + reply.status); }
        return reply.json();
      });
  }

  function allRows(grain, level) {
    var rows = [];
    function page(cursor) {
      var query = new URLSearchParams(level);
      query.set("limit", "1000");
      if (cursor) { query.set("cursor", cursor); }
      return getJson("/v1/metrics/" + grain + "?" + query.toString()).then(function (body) {
        rows = rows.concat(body.data);
        return body.next_cursor ? page(body.next_cursor) : rows;
      });
    }
    return page(null);
  }

  function text(value) { return value === null || value === undefined ? "–" : String(value); }

  function growthTable(table, grain, rows) {
    var last = rows[rows.length - 1];
    var html = "<tr><th>latest " + grain.replace("ly", "") + "</th>";
    MEASURES.forEach(function (m) { html += "<th>" + m[1] + "</th>"; });
    html += "</tr>";
    if (!last) {
      table.innerHTML = html + "<tr><td colspan='4'>no data</td></tr>";
      return;
    }
    html += "<tr><td>" + last[PERIOD[grain]] + "</td>";
    MEASURES.forEach(function (m) {
      var growth = last[m[2]];
      var cls = growth === null ? "" : growth >= 0 ? "up" : "down";
      html += "<td class='" + cls + "' data-measure='" + m[0] + "' data-growth='" + text(growth) +
        "'>" + text(last[m[0]]) + " (" + (growth === null ? "–" : growth + "%") + ")</td>";
    });
    table.innerHTML = html + "</tr>";
  }

  function draw(element, title, rows, grain, measure) {
    element.innerHTML = "";
    var xs = rows.map(function (r) { return Date.parse(r[PERIOD[grain]] + "T00:00:00Z") / 1000; });
    var ys = rows.map(function (r) { return r[measure]; });
    var chart = new uPlot(
      {
        title: title,
        width: 420,
        height: 220,
        scales: { x: { time: true } },
        series: [{}, { label: title, stroke: "#2563eb", fill: "rgba(37,99,235,0.12)" }],
      },
      [xs, ys],
      element
    );
    element.setAttribute("data-points", String(xs.length));
    element.setAttribute("data-total", String(ys.reduce(function (a, b) { return a + b; }, 0)));
    charts.push(chart);
  }

  function showCustomMetrics() {
    var body = byId("custom").querySelector("tbody");
    return getJson("/v1/custom-metrics").then(function (listing) {
      body.innerHTML = "";
      return Promise.all(listing.data.slice(0, 20).map(function (definition) {
        var row = document.createElement("tr");
        row.setAttribute("data-id", definition.id);
        [definition.name, definition.metric_type, definition.visibility, "…"].forEach(function (v) {
          var cell = document.createElement("td");
          cell.textContent = v;
          row.appendChild(cell);
        });
        body.appendChild(row);
        return getJson("/v1/custom-metrics/" + definition.id + "/values").then(function (values) {
          var latest = values.data[values.data.length - 1];
          row.lastChild.textContent = latest ? text(latest.value) + " (" + latest.period_start + ")" : "–";
        });
      }));
    });
  }

  function show(level) {
    byId("status").textContent = "loading…";
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    var grains = ["weekly", "monthly"];
    return Promise.all(grains.map(function (grain) { return allRows(grain, level); }))
      .then(function (results) {
        grains.forEach(function (grain, index) {
          var rows = results[index];
          growthTable(byId(grain + "-growth"), grain, rows);
          MEASURES.forEach(function (m) {
            draw(byId(grain + "-" + m[0]), grain + " " + m[1], rows, grain, m[0]);
          });
        });
        return showCustomMetrics();
      })
      .then(function () {
        byId("status").textContent = "";
        document.body.setAttribute("data-ready", "true");
      })
      .catch(function (error) {
        byId("status").textContent = String(error);
        document.body.setAttribute("data-ready", "error");
      });
  }

  var form = byId("level");
  function level() {
    var data = new FormData(form);
    return {
      entity_type: data.get("entity_type"),
      entity_id: data.get("entity_id"),
      event_type: data.get("event_type"),
    };
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var chosen = level();
    history.replaceState(null, "", "/?" + new URLSearchParams(chosen).toString());
    show(chosen);
  });
  var initial = new URLSearchParams(window.location.search);
  ["entity_type", "entity_id", "event_type"].forEach(function (name) {
    if (initial.get(name)) { form.elements[name].value = initial.get(name); }
  });
  getJson("/v1/whoami").then(function (me) { byId("who").textContent = "signed in as " + me.user_id; });
  show(level());
})();
