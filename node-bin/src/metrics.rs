//! Prometheus metrics. Two kinds of series live in one registry:
//!
//! - measured here, live: the delta apply latency histogram (fed by
//!   [`crate::apply_timer::ApplyTimer`]), HTTP responses by status class, rate-limited requests,
//!   WebSocket clients (connected, dropped as slow);
//! - copied from the node's own counters ([`NodeStatus`]) at each scrape: a collector encodes
//!   the last snapshot, so totals the node keeps are still exposed as Prometheus counters (not
//!   gauges set to a value) and never go through a second copy that could drift.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use rhizome_node::NodeStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The content type of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// HTTP status classes counted, `1xx` to `5xx`.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// How much of the node's figures a scrape sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Totals only: no series names a context. What an unauthenticated scrape gets, since a
    /// context id tells an outsider which topic to subscribe to.
    Totals,
    /// Per-context series too (`{context="<id>"}`), for a scrape with the API token.
    PerContext,
}

/// The node binary's metrics.
pub struct Metrics {
    registry: Registry,
    delta_apply_seconds: Histogram,
    http_responses: [Counter; 5],
    rate_limited: Counter,
    connection_limit_reached: Counter,
    ws_clients: Gauge,
    ws_dropped_slow: Counter,
    invitations_issued: Counter,
    invitations_accepted: Counter,
    /// By the core's `InvitationError::label`: a stable, small set of values.
    invitations_refused: Family<[(&'static str, &'static str); 1], Counter>,
    node: Arc<NodeCollector>,
    /// Held from setting the collector's detail to the end of encoding, so a concurrent scrape
    /// with the other detail cannot render in between.
    render_lock: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every series registered (at zero).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // 50 µs to ~3.3 s: a merge of a small delta up to a heavy cascade.
        let delta_apply_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 17));
        registry.register(
            "rhizome_delta_apply_seconds",
            "Time from the input that carried or unblocked a peer's delta to its application (commit excluded)",
            delta_apply_seconds.clone(),
        );
        let http_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let http_responses = STATUS_CLASSES.map(|class| http_family.get_or_create(&[("class", class)]).clone());
        registry.register("rhizome_http_requests", "HTTP responses by status class", http_family);
        let rate_limited = Counter::default();
        registry.register("rhizome_http_rate_limited", "Requests refused by the rate limiter", rate_limited.clone());
        let connection_limit_reached = Counter::default();
        registry.register(
            "rhizome_http_connection_limit_reached",
            "Times the API had api.max_connections open and stopped accepting until one closed",
            connection_limit_reached.clone(),
        );
        let ws_clients = Gauge::default();
        registry.register("rhizome_ws_clients", "Connected WebSocket event clients", ws_clients.clone());
        let ws_dropped_slow = Counter::default();
        registry.register(
            "rhizome_ws_clients_dropped_slow",
            "WebSocket clients closed because they fell behind",
            ws_dropped_slow.clone(),
        );
        let invitations_issued = Counter::default();
        registry.register("rhizome_invitations_issued", "Invitation tokens issued", invitations_issued.clone());
        let invitations_accepted = Counter::default();
        registry.register(
            "rhizome_invitations_accepted",
            "Invitation tokens this node joined with",
            invitations_accepted.clone(),
        );
        let invitations_refused = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "rhizome_invitations_refused",
            "Invitation tokens refused, by reason (forged, expired, replayed, wrong_invitee, malformed...)",
            invitations_refused.clone(),
        );
        let node = Arc::new(NodeCollector::default());
        registry.register_collector(Box::new(node.clone()));
        Self {
            registry,
            delta_apply_seconds,
            http_responses,
            rate_limited,
            connection_limit_reached,
            ws_clients,
            ws_dropped_slow,
            invitations_issued,
            invitations_accepted,
            invitations_refused,
            node,
            render_lock: Mutex::new(()),
        }
    }

    /// Records one delta's apply latency.
    pub fn observe_delta_apply(&self, elapsed: Duration) {
        self.delta_apply_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts one HTTP response by its status class.
    pub fn count_http_response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.http_responses[class].inc();
    }

    /// Counts a request the rate limiter refused.
    pub fn count_rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts a time the API reached its connection bound.
    pub fn count_connection_limit_reached(&self) {
        self.connection_limit_reached.inc();
    }

    /// Times the API reached its connection bound, so far.
    pub fn connection_limit_reached(&self) -> u64 {
        self.connection_limit_reached.get()
    }

    /// A WebSocket client connected.
    pub fn ws_client_connected(&self) {
        self.ws_clients.inc();
    }

    /// A WebSocket client went away; `slow` if we closed it for falling behind.
    pub fn ws_client_disconnected(&self, slow: bool) {
        self.ws_clients.dec();
        if slow {
            self.ws_dropped_slow.inc();
        }
    }

    /// WebSocket clients closed for falling behind, so far.
    pub fn ws_dropped_slow(&self) -> u64 {
        self.ws_dropped_slow.get()
    }

    /// Counts an invitation token issued.
    pub fn count_invitation_issued(&self) {
        self.invitations_issued.inc();
    }

    /// Counts an invitation token joined with.
    pub fn count_invitation_accepted(&self) {
        self.invitations_accepted.inc();
    }

    /// Counts an invitation token refused for `reason` (an `InvitationError::label`).
    pub fn count_invitation_refused(&self, reason: &'static str) {
        self.invitations_refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// Invitation tokens refused for `reason`, so far.
    pub fn invitations_refused(&self, reason: &'static str) -> u64 {
        self.invitations_refused.get_or_create(&[("reason", reason)]).get()
    }

    /// Requests refused by the rate limiter, so far.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.get()
    }

    /// The exposition text. `status` refreshes the node's series; `None` (the node has
    /// stopped) keeps the last snapshot, so its counters never go backwards.
    pub fn render(&self, status: Option<&NodeStatus>, detail: Detail) -> String {
        let _rendering = self.render_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.node.per_context.store(detail == Detail::PerContext, std::sync::atomic::Ordering::Relaxed);
        if let Some(status) = status {
            *self.node.snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(status.clone());
        }
        self.node.running.store(status.is_some(), std::sync::atomic::Ordering::Relaxed);
        let mut text = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding metrics");
        }
        text
    }
}

/// A per-context gauge: its name, its help and how to read it off a context's status.
type ContextGauge = (&'static str, &'static str, fn(&rhizome_node::ContextStatus) -> usize);

/// Encodes the node's counters from the last [`NodeStatus`] seen.
#[derive(Debug, Default)]
struct NodeCollector {
    snapshot: Mutex<Option<NodeStatus>>,
    running: std::sync::atomic::AtomicBool,
    /// The scrape being rendered may see context ids ([`Detail::PerContext`]).
    per_context: std::sync::atomic::AtomicBool,
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One series per `(label value, value)` under one name.
fn labelled(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    label: &'static str,
    values: impl IntoIterator<Item = (String, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (label_value, value) in values {
        let labels = [(label, label_value)];
        let series = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value).encode(series)?,
            _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(series)?,
        }
    }
    Ok(())
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let running = self.running.load(std::sync::atomic::Ordering::Relaxed);
        gauge(&mut encoder, "rhizome_node_running", "1 while the node loop runs", i64::from(running))?;
        let snapshot = self.snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(status) = snapshot else {
            return Ok(());
        };
        let core = &status.metrics;
        let e = &mut encoder;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        gauge(e, "rhizome_peers", "Connected peers", count(status.peers.len()))?;
        gauge(e, "rhizome_contexts", "Joined contexts", count(status.contexts.len()))?;
        let per_context = self.per_context.load(std::sync::atomic::Ordering::Relaxed);
        let context_gauges: [ContextGauge; 3] = [
            ("rhizome_pending_deltas", "Deltas waiting for parents", |c| c.pending),
            ("rhizome_applied_deltas", "Deltas in the applied DAG", |c| c.applied),
            ("rhizome_handler_jobs", "Event handler jobs waiting", |c| c.handler_jobs),
        ];
        for (name, help, pick) in context_gauges {
            if per_context {
                let values = status.contexts.iter().map(|context| (context.context.to_string(), pick(context) as u64));
                labelled(e, name, help, MetricType::Gauge, "context", values)?;
            } else {
                gauge(e, name, help, count(status.contexts.iter().map(pick).sum()))?;
            }
        }
        counter(e, "rhizome_syncs_started", "Sync sessions started", core.syncs_started)?;
        counter(e, "rhizome_syncs_succeeded", "Sync sessions that completed", core.syncs_succeeded)?;
        counter(e, "rhizome_syncs_failed", "Sync sessions that failed", core.syncs_failed)?;
        counter(e, "rhizome_gossip_received", "Gossip messages received", core.gossip_received)?;
        counter(e, "rhizome_gossip_sent", "Gossip messages published", core.gossip_sent)?;
        counter(e, "rhizome_heartbeats_sent", "Heartbeats broadcast", core.heartbeats_sent)?;
        counter(e, "rhizome_heartbeats_received", "Heartbeats received from peers", core.heartbeats_received)?;
        counter(
            e,
            "rhizome_heartbeats_misattributed",
            "Heartbeats ignored: their sender is not their gossip publisher",
            core.heartbeats_misattributed,
        )?;
        counter(
            e,
            "rhizome_heartbeats_replayed",
            "Heartbeats ignored: no newer than the last one from their sender",
            core.heartbeats_replayed,
        )?;
        counter(
            e,
            "rhizome_local_hlc_mismatches",
            "Local writes refused: the app ran at another HLC than its delta's",
            core.local_hlc_mismatches,
        )?;
        counter(
            e,
            "rhizome_local_heads_mismatches",
            "Local writes refused: the app read the state at other heads than its delta's parents",
            core.local_heads_mismatches,
        )?;
        counter(
            e,
            "rhizome_wall_clock_steps",
            "Inputs whose wall clock jumped against the monotonic clock by more than the HLC drift bound",
            core.wall_clock_steps,
        )?;
        counter(
            e,
            "rhizome_divergences_detected",
            "Silent divergences detected (equal heads, different roots)",
            core.divergences_detected,
        )?;
        counter(e, "rhizome_deltas_applied", "Deltas applied (directly or by cascade)", core.deltas_applied)?;
        counter(e, "rhizome_deltas_received", "Deltas received from peers", core.deltas_received)?;
        counter(e, "rhizome_deltas_pended", "Deltas that went pending", core.deltas_pended)?;
        counter(e, "rhizome_local_deltas", "Deltas authored here", core.local_deltas)?;
        counter(e, "rhizome_snapshots_adopted", "Snapshots adopted", core.snapshots_adopted)?;
        counter(
            e,
            "rhizome_snapshot_deltas_without_events",
            "Application deltas taken in as snapshot state: their events never reached this node",
            core.snapshot_deltas_without_events,
        )?;
        let reasons = |map: &std::collections::BTreeMap<&'static str, u64>| {
            map.iter().map(|(reason, value)| ((*reason).to_owned(), *value)).collect::<Vec<_>>()
        };
        labelled(
            e,
            "rhizome_deltas_rejected",
            "Deltas refused, by reason",
            MetricType::Counter,
            "reason",
            reasons(&core.rejected),
        )?;
        labelled(
            e,
            "rhizome_decode_errors",
            "Peer messages that did not decode, by reason",
            MetricType::Counter,
            "reason",
            reasons(&core.decode_errors),
        )?;
        labelled(
            e,
            "rhizome_sync_failures",
            "Failed sync sessions, by reason",
            MetricType::Counter,
            "reason",
            reasons(&core.sync_failures),
        )?;
        // Membership, sealing and snapshot trust (issue 14): every refusal by its reason.
        let plain: [(&str, &str, u64); 15] = [
            (
                "rhizome_non_member_messages",
                "Sync requests and heartbeats from peers that are no members",
                core.non_member_messages,
            ),
            (
                "rhizome_syncs_refused_non_member",
                "Sync sessions not started because the peer is no member",
                core.syncs_refused_non_member,
            ),
            (
                "rhizome_keys_learned",
                "Context keys learned (wrapped to this node, or from an invitation)",
                core.keys_learned,
            ),
            (
                "rhizome_key_unwrap_failures",
                "Key wraps addressed to this node that did not open",
                core.key_unwrap_failures,
            ),
            (
                "rhizome_key_requests_sent",
                "Keys asked of other members: handed to this node by an applied delta, not held",
                core.key_requests_sent,
            ),
            (
                "rhizome_key_requests_served",
                "Key requests answered with the key wrapped to the member",
                core.key_requests_served,
            ),
            (
                "rhizome_key_requests_refused",
                "Key requests answered with no key (not held, or the asker was not handed it)",
                core.key_requests_refused,
            ),
            (
                "rhizome_key_answers_useless",
                "Answers to our key requests with no key, or one that did not open",
                core.key_answers_useless,
            ),
            (
                "rhizome_key_rotations",
                "Key rotations authored so a write could be sealed for every member",
                core.key_rotations,
            ),
            ("rhizome_attestations_taken", "Signed heartbeat attestations verified and kept", core.attestations_taken),
            (
                "rhizome_snapshots_unvouched",
                "Snapshots refused for want of enough member vouchers",
                core.snapshots_unvouched,
            ),
            (
                "rhizome_snapshots_single_voucher",
                "Snapshots adopted on one member's word (checked afterwards)",
                core.snapshots_single_voucher,
            ),
            (
                "rhizome_snapshots_confirmed",
                "Single-voucher snapshots another member's attestation confirmed",
                core.snapshots_confirmed,
            ),
            (
                "rhizome_snapshot_repairs",
                "Snapshot repairs started on a contradicting member's attestation",
                core.snapshot_repairs,
            ),
            (
                "rhizome_snapshot_disputes",
                "Contradicting attestations counted without a repair",
                core.snapshot_disputes,
            ),
        ];
        for (name, help, value) in plain {
            counter(e, name, help, value)?;
        }
        labelled(
            e,
            "rhizome_attestations_refused",
            "Heartbeat attestations refused, by reason",
            MetricType::Counter,
            "reason",
            reasons(&core.attestations_refused),
        )?;
        labelled(
            e,
            "rhizome_snapshot_demands_refused",
            "Peers' snapshot demands our own view did not warrant, by error code",
            MetricType::Counter,
            "code",
            reasons(&core.snapshot_demands_refused),
        )?;
        // Per peer, bounded in the core (MAX_REFUSING_PEERS_TRACKED).
        let by_peer = core.refusals_by_peer.iter().map(|(peer, value)| (peer.to_string(), *value)).collect::<Vec<_>>();
        labelled(
            e,
            "rhizome_refusals_by_peer",
            "Deltas and messages refused, by the peer that sent them (the worst offenders, bounded)",
            MetricType::Counter,
            "peer",
            by_peer,
        )?;
        counter(e, "rhizome_wasm_fuel_used", "WASM fuel used by all calls", status.runtime.fuel_used)?;
        labelled(
            e,
            "rhizome_deltas_refused_by_runtime",
            "Deltas whose merge the runtime refused (the core quarantines them), by reason",
            MetricType::Counter,
            "reason",
            reasons(&status.runtime.deltas_refused),
        )?;
        let calls = [
            ("committed".to_owned(), status.driver.calls_committed),
            ("failed".to_owned(), status.driver.calls_failed),
        ];
        labelled(e, "rhizome_calls", "API calls by outcome", MetricType::Counter, "outcome", calls)?;
        counter(
            e,
            "rhizome_call_deltas",
            "Deltas made from batches of API calls (calls committed / call deltas = calls per delta)",
            status.driver.call_deltas,
        )?;
        counter(e, "rhizome_commits", "Write transactions committed", status.driver.commits)?;
        counter(
            e,
            "rhizome_subscribers_dropped_slow",
            "Node event subscribers dropped for falling behind",
            status.driver.subscribers_dropped_slow,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_series_render_and_count() {
        let metrics = Metrics::new();
        metrics.observe_delta_apply(Duration::from_millis(2));
        metrics.count_http_response(200);
        metrics.count_http_response(429);
        metrics.count_rate_limited();
        let text = metrics.render(None, Detail::PerContext);
        assert!(text.contains("rhizome_delta_apply_seconds_count 1"), "{text}");
        assert!(text.contains("rhizome_http_requests_total{class=\"2xx\"} 1"), "{text}");
        assert!(text.contains("rhizome_http_requests_total{class=\"4xx\"} 1"), "{text}");
        assert!(text.contains("rhizome_http_rate_limited_total 1"), "{text}");
        assert!(text.contains("rhizome_node_running 0"), "{text}");
        assert!(!text.contains("rhizome_peers"), "no node series before a first snapshot");
        assert!(text.ends_with("# EOF\n"));
    }
}
