// bindguard dashboard: re-reads the page's live part (dashboard/live, same filters) every few
// seconds and swaps it in when its digest changed, keeping open details and focus. Without
// this script the page is complete as served; the filters then submit as a plain form.
(function () {
  'use strict';
  var main = document.getElementById('live');
  var form = document.getElementById('filters');
  var announce = document.getElementById('announce');
  var checked = document.getElementById('checked');
  if (!main || !form || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = (parseInt(main.getAttribute('data-refresh'), 10) || 5) * 1000;
  var timer = null;
  var failing = false;

  function query() {
    var q = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {
      if (v !== '') {
        q.append(k, v);
      }
    });
    return q.toString();
  }

  function swap(cur, next) {
    var open = {};
    main.querySelectorAll('details[open]').forEach(function (d) {
      open[d.id] = true;
    });
    var active = document.activeElement;
    var focused = active && main.contains(active) ? active.id : '';
    var node = document.importNode(next, true);
    node.querySelectorAll('details').forEach(function (d) {
      if (open[d.id]) {
        d.open = true;
      }
    });
    if (cur) {
      main.replaceChild(node, cur);
    } else {
      main.appendChild(node);
    }
    if (focused) {
      var f = document.getElementById(focused);
      if (f) {
        f.focus();
      }
    }
  }

  function refresh() {
    clearTimeout(timer);
    fetch('dashboard/live?' + query(), { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('HTTP ' + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, 'text/html').querySelector('.live');
        var cur = main.querySelector('.live');
        var now = new Date().toLocaleTimeString();
        if (next && (!cur || cur.getAttribute('data-digest') !== next.getAttribute('data-digest'))) {
          swap(cur, next);
          announce.textContent = 'Updated at ' + now + '.';
        } else if (failing) {
          announce.textContent = 'Reconnected at ' + now + '.';
        }
        failing = false;
        checked.textContent = 'Checked at ' + now + '.';
      })
      .catch(function (e) {
        failing = true;
        announce.textContent = 'Could not refresh (' + e.message + '); retrying every ' + every / 1000 + ' s.';
      })
      .then(function () {
        timer = setTimeout(refresh, every);
      });
  }

  function applyFilters(ev) {
    if (ev) {
      ev.preventDefault();
    }
    var q = query();
    history.replaceState(null, '', q ? '?' + q : location.pathname);
    refresh();
  }

  form.addEventListener('submit', applyFilters);
  form.addEventListener('change', function () {
    applyFilters();
  });
  timer = setTimeout(refresh, every);
})();
