//! The one task that owns the libp2p swarm. It never waits on the node: commands come in
//! through a bounded queue, events go out through the event queue (see `events.rs`), and
//! timers drive request deadlines, publish retries, bootstrap, health checks and peer exchange.
//!
//! The task's work is split by concept: `gossip.rs` (publish, retry, receive), `requests.rs`
//! (both directions of request/response), `peers.rs` (connections, discovery, health,
//! bootstrap).

mod gossip;
mod peers;
mod requests;

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::commands::Command;
use crate::config::NetConfig;
use crate::events::EventQueue;
use crate::health::HealthTable;
use crate::identity::context_topic;
use crate::metrics::Counters;
use crate::retry_queue::RetryQueue;
use crate::subscriptions::Subscriptions;
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};
use requests::{InboundTable, OutboundTable};
use rhizome_core::ContextId;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, sleep_until, Instant, Interval, MissedTickBehavior};

/// Everything the swarm task owns.
pub(crate) struct SwarmTask {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) config: NetConfig,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: Arc<EventQueue>,
    pub(crate) subscriptions: Arc<Subscriptions>,
    pub(crate) counters: Arc<Counters>,
    /// Contexts gossipsub is subscribed to now.
    pub(crate) subscribed: BTreeSet<ContextId>,
    pub(crate) health: HealthTable,
    pub(crate) retry: RetryQueue,
    pub(crate) outbound: OutboundTable,
    pub(crate) inbound: InboundTable,
    /// The bootstrap peers, redialled while the node is short of peers.
    pub(crate) bootstrap_peers: Vec<(libp2p::PeerId, Multiaddr)>,
    /// Listeners that have not reported an address yet.
    pub(crate) listeners_pending: Vec<libp2p::core::transport::ListenerId>,
    /// Our listen addresses (without `/p2p`).
    pub(crate) listen_addrs: Vec<Multiaddr>,
    /// `listen_addrs` callers waiting for every listener to come up.
    pub(crate) listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    /// Peer exchange rounds so far; each walks towards a different key.
    pub(crate) peer_exchange_round: u64,
    /// The task's start: `now_ms` counts from here.
    pub(crate) started: Instant,
}

impl std::fmt::Debug for SwarmTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmTask").field("local", self.swarm.local_peer_id()).finish_non_exhaustive()
    }
}

/// Closes the event queue however the task ends (even by a panic), so the node sees `None`.
struct CloseOnDrop(Arc<EventQueue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn ticker(period_ms: u64) -> Interval {
    let period = Duration::from_millis(period_ms);
    let mut ticker = interval_at(Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

impl SwarmTask {
    /// Milliseconds since the task started: the clock of the health table and retry queue.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs until shut down or until every handle and the transport are dropped.
    pub(crate) async fn run(mut self) {
        let _close = CloseOnDrop(self.events.clone());
        let subscriptions = self.subscriptions.clone();
        let mut retry_tick = ticker(self.config.publish_retry_interval_ms);
        let mut bootstrap_tick = ticker(self.config.bootstrap_interval_ms);
        let mut health_tick = ticker(self.config.health_check_interval_ms);
        let mut peer_exchange_tick = ticker(self.config.peer_exchange_interval_ms);
        let shutdown_reply = loop {
            let next_deadline = self.outbound.next_deadline();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                () = subscriptions.notify.notified() => self.sync_subscriptions(),
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                () = sleep_until(next_deadline.unwrap_or_else(Instant::now)), if next_deadline.is_some() => {
                    self.expire_requests();
                }
                _ = retry_tick.tick() => self.retry_publishes(None),
                _ = bootstrap_tick.tick() => self.bootstrap_round(),
                _ = health_tick.tick() => self.health_check(),
                _ = peer_exchange_tick.tick() => self.peer_exchange(),
            }
        };
        self.shutdown();
        // The swarm (listeners, connections) is gone before the caller hears of the shutdown,
        // so a restarted node can bind the same addresses at once.
        drop(self);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn on_command(&mut self, command: Command) {
        // A publish right after a subscribe must see the subscription.
        self.sync_subscriptions();
        match command {
            Command::Publish { context, bytes } => self.publish(context, bytes),
            Command::Request { to, id, bytes, timeout } => self.start_request(to, id, bytes, timeout),
            Command::Respond { to, id, bytes } => self.respond(to, id, bytes),
            Command::Dial { addr, reply } => {
                let _ = reply.send(self.dial_addr(addr));
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::ListenAddrs { reply } => {
                if self.listeners_pending.is_empty() {
                    let _ = reply.send(self.full_listen_addrs());
                } else {
                    self.listen_waiters.push(reply);
                }
            }
            // The loop stops on it before it gets here.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// Brings gossipsub's subscriptions in line with what the node wants.
    fn sync_subscriptions(&mut self) {
        let Some(wanted) = self.subscriptions.take_changed() else {
            return;
        };
        for context in self.subscribed.difference(&wanted) {
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&context_topic(context));
        }
        for context in wanted.difference(&self.subscribed) {
            if let Err(error) = self.swarm.behaviour_mut().gossipsub.subscribe(&context_topic(context)) {
                tracing::warn!(%context, %error, "gossipsub subscribe failed");
            }
        }
        self.subscribed = wanted;
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossipsub(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(event)) => self.on_mdns(event),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::NewListenAddr { listener_id, address } => {
                tracing::info!(%address, "listening");
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
                self.listener_settled(listener_id);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => self.listen_addrs.retain(|known| *known != address),
            SwarmEvent::ListenerClosed { listener_id, .. } => self.listener_settled(listener_id),
            SwarmEvent::ListenerError { error, .. } => tracing::warn!(%error, "listener error"),
            other => self.on_connection_event(other),
        }
    }

    /// A listener reported its first address or closed: callers waiting for the addresses are
    /// answered once no listener is pending.
    fn listener_settled(&mut self, listener: libp2p::core::transport::ListenerId) {
        self.listeners_pending.retain(|pending| *pending != listener);
        if self.listeners_pending.is_empty() {
            let addrs = self.full_listen_addrs();
            for waiter in self.listen_waiters.drain(..) {
                let _ = waiter.send(addrs.clone());
            }
        }
    }

    fn full_listen_addrs(&self) -> Vec<Multiaddr> {
        let local = *self.swarm.local_peer_id();
        self.listen_addrs.iter().filter_map(|addr| addr.clone().with_p2p(local).ok()).collect()
    }

    /// Stops queueing events and closes every connection. Queued events stay for the node.
    fn shutdown(&mut self) {
        self.events.close();
        let peers: Vec<libp2p::PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        tracing::info!("network task stopped");
    }
}
