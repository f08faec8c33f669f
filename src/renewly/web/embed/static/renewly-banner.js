// Renewly's banner in the host product's dashboard (docs/portal.md, "The banner embed").
//
//   <script src="https://billing.example.com/embed/renewly-banner.js" defer></script>
//   <renewly-banner token="TOKEN"></renewly-banner>
//
// TOKEN comes from POST /v1/banner_tokens, asked for by the host's backend for the member who
// views the page. The element makes an iframe of /embed/banner?token=TOKEN, beside this script.
// Attributes: `token` (changing it reloads the banner), `height` (a CSS length, 3.5em by
// default), `label` (the iframe's title for screen readers, "Billing notice" by default).
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(".", script && script.src ? script.src : window.location.href);

  class RenewlyBanner extends HTMLElement {
    static get observedAttributes() { return ["token", "height", "label"]; }

    connectedCallback() { this.render(); }

    attributeChangedCallback() { if (this.isConnected) { this.render(); } }

    render() {
      var root = this.shadowRoot || this.attachShadow({ mode: "open" });
      var token = this.getAttribute("token");
      root.replaceChildren();
      if (!token) { return; }
      var address = new URL("banner", base);
      address.searchParams.set("token", token);
      var frame = document.createElement("iframe");
      frame.src = address.href;
      frame.title = this.getAttribute("label") || "Billing notice";
      frame.referrerPolicy = "no-referrer";
      // The most a frame can be refused: the banner page needs no script, form, pop-up or
      // navigation of the host's page, so a fault in it could do none of those.
      frame.setAttribute("sandbox", "");
      frame.style.border = "0";
      frame.style.display = "block";
      frame.style.width = "100%";
      frame.style.height = this.getAttribute("height") || "3.5em";
      root.appendChild(frame);
    }
  }

  if (!window.customElements.get("renewly-banner")) {
    window.customElements.define("renewly-banner", RenewlyBanner);
  }
})();
