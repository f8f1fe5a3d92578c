//! How a scenario file writes the core's link model ([`rhizome_core::link`]): milliseconds as
//! numbers, bandwidth in kbit/s (0 for unlimited), probabilities as numbers in 0..=1. The
//! core's types hold only valid values, so a value out of range is a parse error here that
//! names the profile and the field (`profile "lossy": loss: a probability must be within
//! 0..=1 (got 1.5)`), not a link that quietly always loses.

use rhizome_core::link::{Bitrate, LatencyDistribution, LinkProfile, Probability};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// A latency distribution as written: `{ fixed = 10 }`, `{ uniform = [10, 50] }` (min, max) or
/// `{ normal = [30, 10] }` (mean, standard deviation), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum LatencyToml {
    Fixed(f64),
    Uniform([f64; 2]),
    Normal([f64; 2]),
}

/// A link profile as written in `[profiles.<name>]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileToml {
    latency_ms: LatencyToml,
    #[serde(default)]
    jitter_ms: f64,
    #[serde(default)]
    loss: f64,
    #[serde(default)]
    duplicate: f64,
    #[serde(default)]
    reorder: f64,
    #[serde(default)]
    bandwidth_kbps: u64,
}

/// Milliseconds as written, to the nanosecond: whole and decimal milliseconds convert exactly,
/// so the model samples the same values the file says.
fn duration(field: &str, ms: f64) -> Result<Duration, String> {
    if !(ms.is_finite() && ms >= 0.0) {
        return Err(format!("{field}: milliseconds must be a finite number >= 0 (got {ms})"));
    }
    Ok(Duration::from_nanos((ms * 1e6).round() as u64))
}

fn millis(duration: Duration) -> f64 {
    duration.as_nanos() as f64 / 1e6
}

fn probability(field: &str, value: f64) -> Result<Probability, String> {
    Probability::new(value).map_err(|error| format!("{field}: {error}"))
}

impl TryFrom<ProfileToml> for LinkProfile {
    type Error = String;

    fn try_from(toml: ProfileToml) -> Result<Self, String> {
        let latency = match toml.latency_ms {
            LatencyToml::Fixed(ms) => LatencyDistribution::Fixed(duration("latency_ms.fixed", ms)?),
            LatencyToml::Uniform([min, max]) => LatencyDistribution::Uniform {
                min: duration("latency_ms.uniform", min)?,
                max: duration("latency_ms.uniform", max)?,
            },
            LatencyToml::Normal([mean, std_dev]) => LatencyDistribution::Normal {
                mean: duration("latency_ms.normal", mean)?,
                std_dev: duration("latency_ms.normal", std_dev)?,
            },
        };
        Ok(Self {
            latency,
            jitter: duration("jitter_ms", toml.jitter_ms)?,
            loss: probability("loss", toml.loss)?,
            duplicate: probability("duplicate", toml.duplicate)?,
            reorder: probability("reorder", toml.reorder)?,
            bandwidth: Bitrate::from_kbps(toml.bandwidth_kbps),
        })
    }
}

impl From<&LinkProfile> for ProfileToml {
    fn from(profile: &LinkProfile) -> Self {
        let latency_ms = match profile.latency {
            LatencyDistribution::Fixed(latency) => LatencyToml::Fixed(millis(latency)),
            LatencyDistribution::Uniform { min, max } => LatencyToml::Uniform([millis(min), millis(max)]),
            LatencyDistribution::Normal { mean, std_dev } => LatencyToml::Normal([millis(mean), millis(std_dev)]),
        };
        Self {
            latency_ms,
            jitter_ms: millis(profile.jitter),
            loss: profile.loss.get(),
            duplicate: profile.duplicate.get(),
            reorder: profile.reorder.get(),
            bandwidth_kbps: profile.bandwidth.bits_per_second().map_or(0, |bits| bits.get() / 1_000),
        }
    }
}

/// `#[serde(with)]` for a scenario's `profiles` table.
pub(crate) mod profiles {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        profiles: &BTreeMap<String, LinkProfile>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let toml: BTreeMap<&String, ProfileToml> =
            profiles.iter().map(|(name, profile)| (name, ProfileToml::from(profile))).collect();
        toml.serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, LinkProfile>, D::Error> {
        BTreeMap::<String, ProfileToml>::deserialize(deserializer)?
            .into_iter()
            .map(|(name, toml)| match LinkProfile::try_from(toml) {
                Ok(profile) => Ok((name, profile)),
                Err(error) => Err(D::Error::custom(format!("profile {name:?}: {error}"))),
            })
            .collect()
    }
}

/// `#[serde(with)]` for a probability written as a bare number (a fault's `loss`).
pub(crate) mod probability {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(probability: &Probability, serializer: S) -> Result<S::Ok, S::Error> {
        probability.get().serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Probability, D::Error> {
        Probability::new(f64::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct File {
        #[serde(with = "profiles")]
        profiles: BTreeMap<String, LinkProfile>,
    }

    fn parse(profile: &str) -> Result<LinkProfile, String> {
        let text = format!("[profiles.lossy]\n{profile}\n");
        let file: File = toml::from_str(&text).map_err(|error| error.to_string())?;
        Ok(file.profiles["lossy"])
    }

    #[test]
    fn every_key_reads_into_the_typed_profile() {
        let profile = parse(
            "latency_ms = { normal = [30, 10.5] }\njitter_ms = 10\nloss = 0.3\nduplicate = 0.1\nreorder = 0.2\nbandwidth_kbps = 100000",
        )
        .unwrap();
        let expected = LinkProfile {
            latency: LatencyDistribution::Normal {
                mean: Duration::from_millis(30),
                std_dev: Duration::from_micros(10_500),
            },
            jitter: Duration::from_millis(10),
            loss: Probability::new(0.3).unwrap(),
            duplicate: Probability::new(0.1).unwrap(),
            reorder: Probability::new(0.2).unwrap(),
            bandwidth: Bitrate::from_bits_per_second(100_000_000),
        };
        assert_eq!(profile, expected);
        let defaults = parse("latency_ms = { fixed = 10 }").unwrap();
        assert_eq!(defaults.latency, LatencyDistribution::Fixed(Duration::from_millis(10)));
        assert_eq!(
            (defaults.loss, defaults.bandwidth, defaults.jitter),
            (Probability::ZERO, Bitrate::Unlimited, Duration::ZERO)
        );
    }

    #[test]
    fn an_out_of_range_value_is_a_parse_error_naming_the_profile_and_field() {
        for (line, field) in [
            ("loss = 1.5", "loss: a probability must be within 0..=1 (got 1.5)"),
            ("duplicate = -0.1", "duplicate: a probability"),
            ("reorder = 2", "reorder: a probability"),
            ("jitter_ms = -1", "jitter_ms: milliseconds must be"),
        ] {
            let error = parse(&format!("latency_ms = {{ uniform = [10, 50] }}\n{line}")).unwrap_err();
            assert!(error.contains(&format!("profile \"lossy\": {field}")), "{line}: {error}");
        }
        let error = parse("latency_ms = { uniform = [-5, 50] }").unwrap_err();
        assert!(error.contains("latency_ms.uniform: milliseconds must be"), "{error}");
        let error = parse("latency_ms = { fixed = 10 }\nlos = 0.1").unwrap_err();
        assert!(error.contains("unknown field `los`"), "{error}");
    }

    #[test]
    fn profiles_round_trip_through_the_file_form() {
        let text = "[profiles.a]\nlatency_ms = { uniform = [0.25, 50] }\nloss = 0.02\nbandwidth_kbps = 1500\n";
        let file: File = toml::from_str(text).unwrap();
        let again: File = toml::from_str(&toml::to_string(&file).unwrap()).unwrap();
        assert_eq!(again.profiles, file.profiles);
        assert_eq!(
            file.profiles["a"].latency,
            LatencyDistribution::Uniform { min: Duration::from_micros(250), max: Duration::from_millis(50) }
        );
    }
}
