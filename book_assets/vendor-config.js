// Tell require.js where the vendored widget manager lives, so that the fonts its CSS
// names load from this book (_static/vendor/html-manager/) and not from a path next to
// the page. Loaded after require.js and before embed-amd.js (nb_ipywidgets_js in _config.yml).
// The widget modules bundled in embed-amd.js (@jupyter-widgets/base, controls, ...) set
// webpack's public path, where their icon fonts are fetched from, to the folder of their
// own require.js module URI; without a path for them that URI is relative to the page
// (chapters/@jupyter-widgets/...), where no font is. Each is mapped into the bundle's folder.
(function () {
  var here = document.currentScript.src.replace(/[^\/]*$/, "");  // .../_static/
  var bundle = here + "vendor/html-manager";
  var paths = {"@jupyter-widgets/html-manager/dist": bundle};
  ["base", "base7", "controls", "controls7", "output"].forEach(function (name) {
    paths["@jupyter-widgets/" + name] = bundle + "/" + name;
  });
  require.config({paths: paths});
})();
