"""The landing page at ``/``: domains, loaded models and links."""

from __future__ import annotations

from html import escape

import smartcare

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b2a35}
h1{margin-bottom:.2rem} .sub{color:#5a6b78;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1rem 0}
td,th{padding:.4rem .6rem;border-bottom:1px solid #dde}
th{text-align:left;background:#f3f6f9} .ok{color:#17803d} .off{color:#a15c00}
nav a{margin-right:1rem}
"""


def render_landing(mounts, status: dict[str, str | None], models: list[dict]) -> str:
    """HTML listing each mounted domain (or why not), each shipped model, and useful links."""
    rows = []
    for m in mounts:
        reason = status.get(m.name)
        state = ('<span class="ok">mounted</span>' if reason is None
                 else f'<span class="off">unavailable: {escape(reason)}</span>')
        href = {"fhir": "/fhir/metadata", "cds-hooks": "/cds-services"}.get(m.name, f"/docs#/{m.name}")
        link = f'<a href="{href}">{m.prefix}</a>' if reason is None else escape(m.prefix)
        rows.append(f"<tr><td>{escape(m.name)}</td><td>{escape(m.description)}</td><td>{link}</td>"
                    f"<td>{state}</td></tr>")
    model_rows = [
        f"<tr><td>{escape(str(c.get('name')))}</td><td>{escape(str(c.get('task', '')))}</td>"
        f"<td>{escape(str(c.get('architecture', '')))}</td>"
        f"<td>{escape(str(c.get('parameters', '')))}</td></tr>"
        for c in models
    ] or ['<tr><td colspan="4">no shipped models yet</td></tr>']
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>smartcare</title><style>{_STYLE}</style></head>
<body>
<h1>smartcare</h1>
<p class="sub">Transformer models at work across smart healthcare &middot; version {smartcare.__version__}</p>
<nav><a href="/docs">API docs</a><a href="/fhir/metadata">FHIR metadata</a>
<a href="/cds-services">CDS Hooks discovery</a><a href="/health">health</a><a href="/ready">ready</a></nav>
<h2>Domains</h2>
<table id="domains"><tr><th>domain</th><th>what</th><th>prefix</th><th>state</th></tr>{''.join(rows)}</table>
<h2>Models</h2>
<table id="models"><tr><th>name</th><th>task</th><th>architecture</th><th>parameters</th></tr>
{''.join(model_rows)}</table>
</body></html>"""
