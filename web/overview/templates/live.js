// The overview's live refresh: the server sends the headline sentences as
// server-sent events and this puts them in place. The page is whole
// without it; it only saves a reload.
(function () {
  'use strict';
  if (!window.EventSource) { return; }
  var es = new EventSource('/overview/live');
  es.addEventListener('counts', function (e) {
    var d;
    try { d = JSON.parse(e.data); } catch (err) { return; }
    Object.keys(d).forEach(function (k) {
      var el = document.querySelector('[data-live="' + k + '"]');
      if (el && el.textContent !== d[k]) { el.textContent = d[k]; }
    });
  });
}());
