"""The board's stylesheet: a dark wall-screen palette in custom properties.

Text colours are only ever used on ``--bg`` or ``--panel``; the contrast
test reads these properties from the served page and checks every pair.
"""

STYLE = """
:root{--bg:#0b1220;--panel:#151f33;--line:#2a3a57;--text:#e8edf6;--muted:#a9b6cc;
--link:#8cc4ff;--ok:#5fd38d;--bad:#ff8a80;--s1:#5aa9ff;--s2:#ffb454;
--new:#4cc38a;--expansion:#2bb3c0;--reactivation:#a78bfa;--contraction:#ffb454;--churned:#ff6b6b}
*{box-sizing:border-box}
body{font:clamp(14px,0.85vw,18px)/1.35 system-ui,sans-serif;margin:0;padding:14px 16px;
background:var(--bg);color:var(--text)}
a{color:var(--link)}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 22px;margin:0 0 12px}
h1{font-size:1.5em;margin:0}h1 a{color:var(--text);text-decoration:none}
nav{display:flex;gap:4px;align-items:baseline}
nav span{color:var(--muted);margin-right:4px}
nav a{color:var(--link);padding:2px 9px;border:1px solid var(--line);border-radius:12px;
text-decoration:none}
nav a.on{color:var(--bg);background:var(--link);border-color:var(--link);font-weight:600}
.sub{color:var(--muted);margin:0;flex-basis:100%}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px;
grid-auto-flow:dense}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.panel h2{font-size:1.05em;margin:0 0 6px;color:var(--text)}
.nums{display:grid;grid-template-columns:repeat(4,1fr);gap:4px 10px;margin-bottom:6px}
.num b{display:block;font-size:1.45em;font-variant-numeric:tabular-nums;color:var(--text)}
.num span{color:var(--muted);font-size:0.8em}
figure{margin:0}
figcaption{color:var(--muted);font-size:0.8em;display:flex;flex-wrap:wrap;gap:2px 10px}
.key i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
svg.chart{display:block;width:100%;height:auto}
svg .grid{stroke:var(--line);stroke-width:1}
svg .zero{stroke:var(--muted);stroke-width:1}
svg text.axis{fill:var(--muted);font-size:12px}
svg polyline{fill:none;stroke-width:2}
polyline.s1{stroke:var(--s1)}polyline.s2{stroke:var(--s2)}
circle.s1,i.s1{fill:var(--s1);background:var(--s1)}circle.s2,i.s2{fill:var(--s2);background:var(--s2)}
.mv-new{fill:var(--new);background:var(--new)}
.mv-expansion{fill:var(--expansion);background:var(--expansion)}
.mv-reactivation{fill:var(--reactivation);background:var(--reactivation)}
.mv-contraction{fill:var(--contraction);background:var(--contraction)}
.mv-churned{fill:var(--churned);background:var(--churned)}
.cap{color:var(--muted);font-size:0.8em;margin:4px 0}
table{border-collapse:collapse;width:100%;font-size:0.9em}
td,th{text-align:left;padding:3px 6px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}.r{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:var(--bad)}.ok{color:var(--ok)}.wide{grid-column:1/-1}.span2{grid-column:span 2}
.lead{margin:0 0 6px;color:var(--muted)}.lead b{font-size:1.45em;color:var(--text)}
code{color:var(--text)}
@media (min-width:1700px){.span2{grid-column:span 3}}
svg.bands{display:block;width:100%;height:auto;margin:6px 0}
.band-healthy{fill:var(--new);background:var(--new)}.band-neutral{fill:var(--s2);background:var(--s2)}
.band-at_risk{fill:var(--churned);background:var(--churned)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
dt{color:var(--muted)}dd{margin:0}
"""
