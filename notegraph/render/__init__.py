"""Site writer: jinja templates (autoescaped), static assets, concept-map and graph data for the browser."""

from notegraph.render.site import RenderReport, current_site, render_site

__all__ = ["RenderReport", "current_site", "render_site"]
