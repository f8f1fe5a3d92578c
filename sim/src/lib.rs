//! rhizome-sim: the deterministic madsim world. N nodes run the real `rhizome-node` loop over a
//! simulated transport (per-link latency, loss, duplication, reordering, bandwidth, partitions)
//! on simulated disks that lose unsynced writes on a crash. Same scenario and seed, same trace
//! hash.
//!
//! The link model itself is the core's ([`rhizome_core::link`]), the one the core's test cluster
//! applies too; `link_toml` is how scenario files write it.
//!
//! Everything that needs the simulator is built only with `--cfg madsim` (`cargo xtask sim`
//! sets it); without it only the scenario format and the disk build.

pub mod disk;
pub mod faults;
pub(crate) mod link_toml;
pub mod roles;
pub mod scenario;
pub mod swarm;

#[cfg(madsim)]
pub mod checks;
#[cfg(madsim)]
pub(crate) mod figures;
#[cfg(madsim)]
pub(crate) mod network;
#[cfg(madsim)]
pub mod outcome;
#[cfg(madsim)]
pub(crate) mod record;
#[cfg(madsim)]
pub mod report;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod world;
