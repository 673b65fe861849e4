"""Site writer: jinja templates (autoescaped), static assets, concept-map and graph data for the browser."""

from notegraph.render.site import RenderReport, render_site

__all__ = ["RenderReport", "render_site"]
