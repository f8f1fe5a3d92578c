//! Each fault kind is accepted by the format, drawn by swarm mode and lifted (or kept on
//! purpose) before the liveness phase.

use super::*;

/// The kinds serde accepts for `kind`, read from its error for an unknown one: the list
/// comes from the enum itself, so a new variant cannot be missed.
fn kinds_the_format_accepts() -> Vec<String> {
    let error = toml::from_str::<TimedFault>("at_s = 1\nkind = \"no-such-kind\"").unwrap_err().to_string();
    let (_, expected) = error.split_once("expected one of").unwrap_or_else(|| panic!("{error}"));
    expected
        .split(',')
        .map(|name| name.trim().trim_matches(|c: char| c == '`' || c.is_whitespace()).to_owned())
        .collect()
}

#[test]
fn the_tag_list_names_every_kind_the_format_accepts() {
    let tags: Vec<String> =
        FaultTag::ALL.iter().map(|tag| serde_json::to_value(tag).unwrap().as_str().unwrap().to_owned()).collect();
    assert_eq!(tags, kinds_the_format_accepts());
}

#[test]
fn at_s_sits_next_to_the_kind_and_its_fields() {
    let fault: TimedFault = toml::from_str("kind = \"crash\"\nat_s = 4\nnode = 2\ntear = true").unwrap();
    assert_eq!(fault, TimedFault::new(4.0, FaultKind::Crash { node: 2, tear: true }));
    let heal: TimedFault = toml::from_str("kind = \"heal\"\nat_s = 2.5").unwrap();
    assert_eq!(heal, TimedFault::new(2.5, FaultKind::Heal {}));
    let again: TimedFault = toml::from_str(&toml::to_string(&fault).unwrap()).unwrap();
    assert_eq!(again, fault, "round-trips through TOML");
}

#[test]
fn a_misspelt_fault_field_is_refused_by_name() {
    let error = toml::from_str::<TimedFault>("kind = \"crash\"\nat_s = 4\nnod = 2").unwrap_err().to_string();
    assert!(error.contains("nod"), "{error}");
    let error = toml::from_str::<TimedFault>("kind = \"heal\"\nat_s = 4\nnode = 2").unwrap_err().to_string();
    assert!(error.contains("node"), "{error}");
    assert!(toml::from_str::<TimedFault>("kind = \"heal\"").is_err(), "at_s is required");
}

/// A world reduced to what faults change, to apply faults and lifts to.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    nodes: usize,
    booted: usize,
    cut: bool,
    clogged: std::collections::BTreeSet<usize>,
    down: std::collections::BTreeSet<usize>,
    paused: std::collections::BTreeSet<usize>,
    loss: Probability,
    skew_ms: std::collections::BTreeMap<usize, i64>,
}

/// Four nodes running out of five that may exist, on links with 10 % loss.
fn baseline() -> Model {
    Model {
        nodes: 5,
        booted: 4,
        cut: false,
        clogged: Default::default(),
        down: Default::default(),
        paused: Default::default(),
        loss: Probability::new(0.1).unwrap(),
        skew_ms: Default::default(),
    }
}

impl FaultTarget for Model {
    fn node_count(&self) -> usize {
        self.nodes
    }
    fn default_loss(&self) -> Probability {
        Probability::new(0.1).unwrap()
    }
    fn partition(&mut self, _groups: &[Vec<usize>]) {
        self.cut = true;
    }
    fn partition_one_way(&mut self, _from: &[usize], _to: &[usize]) {
        self.cut = true;
    }
    fn heal(&mut self) {
        self.cut = false;
    }
    fn set_clogged(&mut self, node: usize, clogged: bool) {
        if clogged {
            self.clogged.insert(node);
        } else {
            self.clogged.remove(&node);
        }
    }
    fn crash(&mut self, node: usize, _tear: bool) {
        self.down.insert(node);
        self.paused.remove(&node);
    }
    fn restart(&mut self, node: usize) {
        self.down.remove(&node);
    }
    fn pause(&mut self, node: usize) {
        if !self.down.contains(&node) {
            self.paused.insert(node);
        }
    }
    fn resume(&mut self, node: usize) {
        self.paused.remove(&node);
    }
    fn add_node(&mut self) {
        self.booted = (self.booted + 1).min(self.nodes);
    }
    fn set_loss(&mut self, loss: Probability) {
        self.loss = loss;
    }
    fn set_skew_ms(&mut self, node: usize, ms: i64) {
        if ms == 0 {
            self.skew_ms.remove(&node);
        } else {
            self.skew_ms.insert(node, ms);
        }
    }
}

/// One fault of each kind, with an effect where the kind has one.
fn example(tag: FaultTag) -> FaultKind {
    match tag {
        FaultTag::Partition => FaultKind::Partition { groups: Groups::Count(2) },
        FaultTag::PartitionOneWay => FaultKind::PartitionOneWay { from: vec![0], to: vec![1] },
        FaultTag::Heal => FaultKind::Heal {},
        FaultTag::Clog => FaultKind::Clog { node: 1 },
        FaultTag::Unclog => FaultKind::Unclog { node: 1 },
        FaultTag::Crash => FaultKind::Crash { node: 2, tear: true },
        FaultTag::Restart => FaultKind::Restart { node: 2 },
        FaultTag::Pause => FaultKind::Pause { node: 3 },
        FaultTag::Resume => FaultKind::Resume { node: 3 },
        FaultTag::AddNode => FaultKind::AddNode {},
        FaultTag::SetLoss => FaultKind::SetLoss { loss: Probability::new(0.5).unwrap() },
        FaultTag::Skew => FaultKind::Skew { node: 0, ms: 2_000 },
    }
}

#[test]
fn every_lasting_effect_is_lifted_before_the_liveness_phase_unless_it_stays_on_purpose() {
    for tag in FaultTag::ALL {
        let fault = example(tag);
        assert_eq!(fault.tag(), tag);
        let mut world = baseline();
        fault.apply(&mut world);
        let changed = world != baseline();
        lift_all(&mut world);
        match fault.at_liveness() {
            AtLiveness::Stays => assert_ne!(world, baseline(), "{tag:?} is said to stay, but left nothing"),
            AtLiveness::LiftedBy(_) => {
                assert!(changed, "{tag:?} is said to last, but changed nothing");
                assert_eq!(world, baseline(), "{tag:?} is still in effect after the lifts");
            }
            AtLiveness::Undoes => assert_eq!(world, baseline(), "{tag:?} left an effect of its own"),
        }
    }
}

#[test]
fn skew_is_lifted_before_the_liveness_phase() {
    let mut world = baseline();
    FaultKind::Skew { node: 4, ms: -1_500 }.apply(&mut world);
    lift_all(&mut world);
    assert!(world.skew_ms.is_empty(), "{:?}", world.skew_ms);
}

#[test]
fn the_liveness_phase_runs_exactly_the_lifts_fault_kinds_need() {
    let needed: std::collections::BTreeSet<Lift> = FaultTag::ALL
        .iter()
        .filter_map(|tag| match example(*tag).at_liveness() {
            AtLiveness::LiftedBy(lift) => Some(lift),
            AtLiveness::Undoes | AtLiveness::Stays => None,
        })
        .collect();
    assert_eq!(needed, Lift::ALL.into_iter().collect());
}

#[test]
fn swarm_mode_draws_every_fault_kind() {
    let base: crate::scenario::Scenario = toml::from_str(
        "name = \"base\"\nnodes = 5\nduration_s = 30\nliveness_s = 10\n[workload]\napp = \"kv-store\"\ncalls_per_node_per_s = 1\n",
    )
    .unwrap();
    let drawn: std::collections::BTreeSet<FaultTag> =
        (0..300).flat_map(|seed| crate::swarm::swarm(&base, seed).faults).map(|fault| fault.kind.tag()).collect();
    let missing: Vec<FaultTag> = FaultTag::ALL.into_iter().filter(|tag| !drawn.contains(tag)).collect();
    assert!(missing.is_empty(), "swarm mode never draws {missing:?}");
}
