#!/usr/bin/env python3
"""One Markdown row per suite_bench --json report: how the costs grow with the history's size.

Usage: tools/bench/scale_table.py suite_12100.json suite_121000.json suite_1000000.json ...
"""
import json,sys
rows=[]
for f in sys.argv[1:]:
    j=json.load(open(f))
    ing=j['ingest']; rb=j['rebuild']; q=j['queries']; m=j['memory']; p=j.get('peer')
    ev=rb['events']
    def n(x): return f"{x:,.0f}"
    rows.append([n(j['history']['leads']), n(ev),
      n(ing['embedded_batched']['commands_per_s']),
      n(rb['all']['events_per_s']), f"{rb['all']['events_per_s']/rb['raw_put_per_s']:.2f} ×",
      f"{q['get_lead']['p99_ms']:.2f} ms", f"{q['cohort_funnel']['p50_ms']:.1f} ms",
      n(m['writer_peak_rss_mib']), n(m['rebuild_all_peak_rss_mib']), n(m['serve_peak_rss_mib']),
      n((m['log_bytes']+m['view_bytes'])/1048576/(ev/1e6)),
      n(p['ingest']['commands_per_s']) if p else "not run",
      f"{ing['embedded_batched']['commands_per_s']/p['ingest']['commands_per_s']:.2f} ×" if p else "",
      f"{p['cohort_funnel']['p50_ms']:.1f} ms" if p else "",
      f"{p['cohort_funnel']['p50_ms']/q['cohort_funnel']['p50_ms']:.1f} ×" if p else ""])
print("| leads | events | ingest batched, commands/s | rebuild all, events/s | ÷ raw Put | GetLead p99 | cohort funnel p50 | peak RSS writer / rebuild / serve (MiB) | disk MiB per M events | peer ingest, commands/s | leadflow ÷ peer | peer funnel p50 | peer ÷ leadflow |")
print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
for r in rows:
    print("| "+" | ".join(r[:7]+[f"{r[7]} / {r[8]} / {r[9]}"]+r[10:])+" |")
