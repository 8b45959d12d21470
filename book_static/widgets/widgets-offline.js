/*
 * Make the vendored ipywidgets embed bundle (embed-amd.js, beside this file) work offline.
 * Loaded before require.js and embed-amd.js on every page that holds saved widget state
 * (see nb_ipywidgets_js in _config.yml). Part of the dualenc book; BSD-3-Clause like ipywidgets.
 *
 * 1. Fonts. embed-amd.js carries the FontAwesome 5 CSS of the widgets; its url()s are resolved
 *    against the URI that RequireJS gives the bundle's AMD modules (`module.uri`), which by
 *    default is the page's folder + the module id, e.g. notebooks/@jupyter-widgets/html-manager/
 *    dist/. Map the @jupyter-widgets module ids to this folder (RequireJS `paths`, given as the
 *    global `require` config object that require.js reads when it loads), so the fonts are
 *    looked up here, where the .woff2/.woff files are. `__jupyter_widgets_assets_path__` is the
 *    bundle's own public-path override; set it to the same folder.
 * 2. Modules. The core widget modules (@jupyter-widgets/base, controls, output) are built into
 *    embed-amd.js. Any other widget module would be fetched from the CDN named by a
 *    `data-jupyter-widgets-cdn` script attribute (default https://cdn.jsdelivr.net/npm/).
 *    Name a local folder instead, so that nothing is ever fetched from outside the book:
 *    such a module fails to load (and the widget shows an error) rather than going online.
 * 3. MathJax. ipywidgets typesets widget labels with the MathJax 2 call `MathJax.Hub.Queue`,
 *    but the book loads MathJax 3 (which has no `Hub`), so every label threw "Cannot read
 *    properties of undefined (reading 'Queue')". Give MathJax 3 a small `Hub.Queue` that
 *    typesets with the MathJax 3 API. It is added on `load`, before embed-amd.js renders the
 *    widgets (that also happens on `load`, in a listener registered after this one).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) {
    return;
  }
  // absolute URL of this folder, e.g. file:///.../_build/html/_static/widgets/
  var base = script.src.replace(/[?#].*$/, "").replace(/[^\/]*$/, "");
  var dir = base.replace(/\/$/, "");

  window.__jupyter_widgets_assets_path__ = base;
  if (typeof window.require === "undefined" && typeof window.requirejs === "undefined") {
    window.require = {
      paths: {
        "@jupyter-widgets/html-manager/dist": dir,
        "@jupyter-widgets": dir,
      },
    };
  }
  script.setAttribute("data-jupyter-widgets-cdn", base + "widget-modules/");

  function addHubShim() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) {
      return; // no MathJax, MathJax 2, or MathJax 3 not loaded
    }
    mj.Hub = {
      Queue: function () {
        var elements = [];
        for (var i = 0; i < arguments.length; i++) {
          var call = arguments[i];
          if (Array.isArray(call) && call[0] === "Typeset" && call[2]) {
            elements.push(call[2]);
          }
        }
        if (!elements.length) {
          return;
        }
        mj.startup.promise
          .then(function () {
            return mj.typesetPromise ? mj.typesetPromise(elements) : null;
          })
          .catch(function (err) {
            console.warn("widgets-offline: MathJax typeset failed", err);
          });
      },
    };
  }
  if (document.readyState === "complete") {
    addHubShim();
  } else {
    window.addEventListener("load", addHubShim);
  }
})();
