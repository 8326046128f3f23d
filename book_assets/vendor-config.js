// Tell require.js where the vendored widget manager lives, so that the fonts its CSS
// names load from this book (_static/vendor/html-manager/) and not from a path next to
// the page. Loaded after require.js and before embed-amd.js (nb_ipywidgets_js in _config.yml).
(function () {
  var here = document.currentScript.src.replace(/[^\/]*$/, "");  // .../_static/
  require.config({paths: {"@jupyter-widgets/html-manager/dist": here + "vendor/html-manager"}});
})();
