// Loads Troupe's OpenAPI document from the same server. Everything the page
// needs is served from the binary; validatorUrl is off so that nothing is
// fetched from elsewhere.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
