//! The text, JSON and HTML reports of a run.

use crate::outcome::{Percentiles, RunOutcome};
use std::fmt::Write as _;

fn line(out: &mut String, label: &str, value: String) {
    let _ = writeln!(out, "  {label:<34}{value:>28}");
}

fn p(value: &Percentiles) -> String {
    format!("{:.0} / {:.0} / {:.0} ms", value.p50_ms, value.p99_ms, value.max_ms)
}

/// The text report (without the final trace-hash line).
pub fn text(name: &str, seed: u64, outcome: &RunOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario {name}, seed {seed}");
    let _ = writeln!(out, "checks");
    for check in &outcome.checks {
        let _ = writeln!(out, "  [{}] {}: {}", if check.passed { "pass" } else { "FAIL" }, check.name, check.detail);
    }
    let figures = &outcome.figures;
    let _ = writeln!(out, "figures (p50 / p99 / max)");
    line(&mut out, "convergence per node", p(&figures.convergence));
    line(
        &mut out,
        "all nodes agree after",
        figures.converged_after_ms.map_or("never".to_owned(), |ms| format!("{ms:.0} ms")),
    );
    line(&mut out, "propagation to all nodes", p(&figures.propagation_all));
    if figures.propagation_cut.count > 0 {
        line(&mut out, "  written while connected", p(&figures.propagation_connected));
        line(&mut out, "  written during a cut", p(&figures.propagation_cut));
    }
    line(&mut out, "propagation per node", p(&figures.propagation_each));
    line(&mut out, "writes acknowledged", figures.writes_acknowledged.to_string());
    line(&mut out, "deltas authored", figures.deltas_authored.to_string());
    line(
        &mut out,
        "messages (total / per delta)",
        format!("{} / {:.1}", figures.network.messages, figures.messages_per_delta),
    );
    line(&mut out, "bytes (total / per delta)", format!("{} / {:.0}", figures.network.bytes, figures.bytes_per_delta));
    line(
        &mut out,
        "gossip lost / cut / dup-suppressed",
        format!("{} / {} / {}", figures.network.lost, figures.network.cut, figures.network.duplicates_suppressed),
    );
    line(&mut out, "request timeouts", figures.network.request_timeouts.to_string());
    line(&mut out, "maximum pending", figures.max_pending.to_string());
    line(&mut out, "live nodes at the end", figures.live_nodes.to_string());
    line(&mut out, "simulated time", format!("{:.1} s", figures.simulated_s));
    line(&mut out, "wall time", format!("{:.2} s", figures.wall_s));
    let speed = figures.simulated_s / figures.wall_s.max(1e-9);
    // Slower than real time needs its decimals (0.12x, not 0x).
    let speed = if speed < 10.0 { format!("{speed:.2}x") } else { format!("{speed:.0}x") };
    line(&mut out, "simulated / wall", speed);
    out
}

/// The JSON report.
pub fn json(name: &str, seed: u64, outcome: &RunOutcome) -> String {
    let value = serde_json::json!({
        "scenario": name,
        "seed": seed,
        "passed": outcome.checks.iter().all(|check| check.passed),
        "checks": outcome.checks,
        "figures": outcome.figures,
        "faults": outcome.faults,
        "samples": outcome.samples,
        "trace_hash": outcome.trace_hash,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// An HTML page with an SVG plot: root-hash agreement and pending counts over simulated time,
/// faults marked.
pub fn html(name: &str, seed: u64, outcome: &RunOutcome) -> String {
    let (width, height, pad) = (900.0, 360.0, 40.0);
    let end = outcome.samples.last().map_or(1.0, |sample| sample.t_s).max(1e-3);
    let max_pending = outcome.samples.iter().map(|sample| sample.max_pending).max().unwrap_or(0).max(1) as f64;
    let x = |t: f64| pad + (width - 2.0 * pad) * t / end;
    let y = |fraction: f64| height - pad - (height - 2.0 * pad) * fraction;
    let path = |value: &dyn Fn(&crate::record::Sample) -> f64| {
        outcome
            .samples
            .iter()
            .map(|sample| format!("{:.1},{:.1}", x(sample.t_s), y(value(sample))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let agreement = path(&|sample| sample.agreement);
    let pending = path(&|sample| sample.max_pending as f64 / max_pending);
    let mut faults = String::new();
    for (at, label) in &outcome.faults {
        let _ = write!(
            faults,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#c33" stroke-dasharray="4"/><text x="{0:.1}" y="{3}" font-size="10" transform="rotate(-30 {0:.1} {3})">{4}</text>"##,
            x(*at),
            pad,
            height - pad,
            pad - 4.0,
            html_escape(label)
        );
    }
    let checks: String = outcome
        .checks
        .iter()
        .map(|check| {
            format!(
                "<li>{} <b>{}</b>: {}</li>",
                if check.passed { "pass" } else { "FAIL" },
                html_escape(check.name.as_str()),
                html_escape(&check.detail)
            )
        })
        .collect();
    format!(
        r##"<!doctype html><html><head><meta charset="utf-8"><title>{name} seed {seed}</title></head>
<body style="font-family:sans-serif"><h1>{name} — seed {seed}</h1><ul>{checks}</ul>
<svg width="{width}" height="{height}" style="border:1px solid #ccc">
<polyline fill="none" stroke="#2a7" stroke-width="2" points="{agreement}"/>
<polyline fill="none" stroke="#37c" stroke-width="1.5" points="{pending}"/>
{faults}
<text x="{pad}" y="{h}" font-size="11">0 s</text><text x="{w}" y="{h}" font-size="11" text-anchor="end">{end:.1} s</text>
</svg>
<p><span style="color:#2a7">■</span> share of live nodes agreeing on root and heads (0–1) &nbsp;
<span style="color:#37c">■</span> largest pending queue (0–{max_pending:.0}) &nbsp; <span style="color:#c33">┆</span> faults</p>
<p>trace_hash={hash}</p></body></html>
"##,
        h = height - pad / 2.0,
        w = width - pad,
        hash = outcome.trace_hash,
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
