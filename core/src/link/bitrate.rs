//! A link's bandwidth.

use std::num::NonZeroU64;
use std::time::Duration;

/// How fast a link puts bits on the wire. Unlimited is its own variant rather than a magic
/// zero, though the constructors read 0 as unlimited because scenario files write it so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Bitrate {
    /// No limit: a message takes no time to serialize.
    #[default]
    Unlimited,
    /// This many bits per second.
    BitsPerSecond(NonZeroU64),
}

impl Bitrate {
    /// `bits` per second; 0 is unlimited.
    pub const fn from_bits_per_second(bits: u64) -> Self {
        match NonZeroU64::new(bits) {
            Some(bits) => Self::BitsPerSecond(bits),
            None => Self::Unlimited,
        }
    }

    /// `kbps` kilobits (1,000 bits) per second; 0 is unlimited.
    pub const fn from_kbps(kbps: u64) -> Self {
        Self::from_bits_per_second(kbps.saturating_mul(1_000))
    }

    /// Bits per second, or `None` if unlimited.
    pub const fn bits_per_second(self) -> Option<NonZeroU64> {
        match self {
            Self::Unlimited => None,
            Self::BitsPerSecond(bits) => Some(bits),
        }
    }

    /// True unless unlimited: only then does a link queue what it sends.
    pub const fn is_limited(self) -> bool {
        matches!(self, Self::BitsPerSecond(_))
    }

    /// Time to put `bytes` on the wire, rounded down to the microsecond (the resolution of every
    /// delay the link model gives); zero when unlimited.
    pub fn serialization_time(self, bytes: usize) -> Duration {
        let Self::BitsPerSecond(bits_per_second) = self else { return Duration::ZERO };
        let micros = (bytes as u128 * 8 * 1_000_000) / u128::from(bits_per_second.get());
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_reads_as_unlimited_and_takes_no_time() {
        assert_eq!(Bitrate::from_kbps(0), Bitrate::Unlimited);
        assert_eq!(Bitrate::from_bits_per_second(0), Bitrate::Unlimited);
        assert!(!Bitrate::Unlimited.is_limited());
        assert_eq!(Bitrate::Unlimited.serialization_time(1 << 30), Duration::ZERO);
    }

    #[test]
    fn serialization_time_is_bits_over_bitrate() {
        let megabit = Bitrate::from_kbps(1_000);
        assert!(megabit.is_limited());
        assert_eq!(megabit.bits_per_second().map(NonZeroU64::get), Some(1_000_000));
        assert_eq!(megabit.serialization_time(125_000), Duration::from_secs(1));
        assert_eq!(megabit.serialization_time(1), Duration::from_micros(8));
        // 100 kbit/s: 64 bytes are 512 bits, 5.12 ms, rounded down to the microsecond.
        assert_eq!(Bitrate::from_kbps(100).serialization_time(64), Duration::from_micros(5_120));
        assert_eq!(Bitrate::from_bits_per_second(3).serialization_time(1), Duration::from_micros(2_666_666));
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        assert_eq!(Bitrate::from_kbps(u64::MAX).bits_per_second().map(NonZeroU64::get), Some(u64::MAX));
        assert_eq!(Bitrate::from_bits_per_second(1).serialization_time(usize::MAX), Duration::from_micros(u64::MAX));
    }
}
