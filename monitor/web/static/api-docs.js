// Starts Swagger UI on /docs. A file, not an inline script, so the page keeps the strict
// Content-Security-Policy (script-src 'self') of every other page.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.specUrl, dom_id: "#swagger-ui", deepLinking: true });
});
