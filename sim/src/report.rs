//! Figures of a run, and the text, JSON and HTML reports.

use crate::network::NetStats;
use crate::record::SharedRecorder;
use crate::world::RunOutcome;
use std::fmt::Write as _;
use std::time::Duration;

/// p50, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Samples.
    pub count: usize,
}

fn percentiles(mut values: Vec<Duration>) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_unstable();
    let at = |q: f64| values[((values.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1_000.0;
    Percentiles { p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1.0), count: values.len() }
}

/// The run's figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Per-node time to its final state in the liveness phase.
    pub convergence: Percentiles,
    /// When all live nodes agreed, after the liveness phase began (ms).
    pub converged_after_ms: Option<f64>,
    /// Per delta: time until every node that applied it had (all-node propagation), for deltas
    /// that reached every live node.
    pub propagation_all: Percentiles,
    /// [`Self::propagation_all`] for deltas written while the network was whole.
    pub propagation_connected: Percentiles,
    /// [`Self::propagation_all`] for deltas written while some link was cut: they wait for the
    /// heal, so they measure the heal, not gossip.
    pub propagation_cut: Percentiles,
    /// Per (delta, node): time from authoring to application there.
    pub propagation_each: Percentiles,
    /// Acknowledged writes.
    pub writes_acknowledged: usize,
    /// Deltas authored (writes and handler deltas).
    pub deltas_authored: usize,
    /// Network traffic.
    pub network: NetStats,
    /// Messages per authored delta.
    pub messages_per_delta: f64,
    /// Bytes per authored delta.
    pub bytes_per_delta: f64,
    /// Largest pending queue seen.
    pub max_pending: usize,
    /// Core inputs and outputs traced.
    pub trace_events: u64,
    /// Simulated seconds.
    pub simulated_s: f64,
    /// Wall seconds (filled in by the caller).
    pub wall_s: f64,
    /// Live nodes at the end.
    pub live_nodes: usize,
}

/// The spans of simulated time during which some link was cut or a node clogged.
#[derive(Debug, Clone, Default)]
pub(crate) struct CutWindows {
    closed: Vec<(Duration, Duration)>,
    open_since: Option<Duration>,
}

impl CutWindows {
    /// Notes the network's state at `now` (after a fault was applied).
    pub(crate) fn observe(&mut self, now: Duration, cut: bool) {
        match (cut, self.open_since) {
            (true, None) => self.open_since = Some(now),
            (false, Some(since)) => {
                self.closed.push((since, now));
                self.open_since = None;
            }
            _ => {}
        }
    }

    fn contains(&self, at: Duration) -> bool {
        self.open_since.is_some_and(|since| at >= since) || self.closed.iter().any(|(from, to)| at >= *from && at < *to)
    }
}

/// What the world hands over at the end of a run to compute its figures.
pub(crate) struct RunTotals<'a> {
    pub(crate) recorder: &'a SharedRecorder,
    pub(crate) cuts: &'a CutWindows,
    pub(crate) network: &'a NetStats,
    pub(crate) per_node_convergence: &'a [Duration],
    pub(crate) converged_at: Option<Duration>,
    pub(crate) writes: usize,
    pub(crate) simulated: Duration,
    pub(crate) live_nodes: usize,
}

pub(crate) fn figures(totals: RunTotals<'_>) -> Figures {
    let RunTotals { recorder, cuts, network, per_node_convergence, converged_at, writes, simulated, live_nodes } =
        totals;
    let recorder = recorder.lock();
    let mut all = Vec::new();
    let (mut connected, mut cut) = (Vec::new(), Vec::new());
    let mut each = Vec::new();
    for (id, arrivals) in &recorder.arrivals {
        each.extend(arrivals.iter().map(|(_, delay)| *delay));
        let nodes: std::collections::BTreeSet<usize> = arrivals.iter().map(|(node, _)| *node).collect();
        if nodes.len() + 1 >= live_nodes {
            let slowest = arrivals.iter().map(|(_, delay)| *delay).max().unwrap_or_default();
            all.push(slowest);
            let written_at = recorder.authored.get(id).copied().unwrap_or_default();
            if cuts.contains(written_at) {
                cut.push(slowest);
            } else {
                connected.push(slowest);
            }
        }
    }
    let deltas = recorder.authored.len().max(1);
    Figures {
        convergence: percentiles(per_node_convergence.to_vec()),
        converged_after_ms: converged_at.map(|at| at.as_secs_f64() * 1_000.0),
        propagation_all: percentiles(all),
        propagation_connected: percentiles(connected),
        propagation_cut: percentiles(cut),
        propagation_each: percentiles(each),
        writes_acknowledged: writes,
        deltas_authored: recorder.authored.len(),
        network: network.clone(),
        messages_per_delta: network.messages as f64 / deltas as f64,
        bytes_per_delta: network.bytes as f64 / deltas as f64,
        max_pending: recorder.samples.iter().map(|sample| sample.max_pending).max().unwrap_or(0),
        trace_events: recorder.events,
        simulated_s: simulated.as_secs_f64(),
        wall_s: 0.0,
        live_nodes,
    }
}

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
                html_escape(&check.name),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_windows_cover_from_the_cut_to_the_heal_and_stay_open_until_healed() {
        let secs = Duration::from_secs;
        let mut cuts = CutWindows::default();
        cuts.observe(secs(10), true);
        cuts.observe(secs(15), true);
        cuts.observe(secs(20), false);
        cuts.observe(secs(30), true);
        assert!(!cuts.contains(secs(9)));
        assert!(cuts.contains(secs(10)) && cuts.contains(secs(19)));
        assert!(!cuts.contains(secs(20)) && !cuts.contains(secs(29)));
        assert!(cuts.contains(secs(45)), "a cut not yet healed is still open");
    }

    #[test]
    fn percentiles_pick_ranks_from_sorted_values() {
        let values = (1..=100).map(Duration::from_millis).collect();
        let figures = percentiles(values);
        assert_eq!((figures.p50_ms.round(), figures.p99_ms, figures.max_ms, figures.count), (51.0, 99.0, 100.0, 100));
    }
}
