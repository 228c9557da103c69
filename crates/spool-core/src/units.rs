//! Units: memory sizes as Spark and the Azure ML SDK write them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of memory in mebibytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemoryMb(pub u64);

/// Why a memory size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a memory size: write a whole number followed by k, m, g, t or p (e.g. `2g`, `512m`)"
)]
pub struct ParseMemoryError {
    pub input: String,
}

impl MemoryMb {
    /// Parses a size matching the Azure ML SDK rule `^\d+[kKmMgGtTpP]$` (e.g. `2g`, `512m`).
    /// Kibibyte sizes round up to whole mebibytes.
    pub fn parse(input: &str) -> Result<MemoryMb, ParseMemoryError> {
        let err = || ParseMemoryError {
            input: input.to_string(),
        };
        // The unit is the last character, which need not be one byte (`1é`).
        let unit_at = input.char_indices().next_back().map_or(0, |(i, _)| i);
        let (digits, unit) = input.split_at(unit_at);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: u64 = digits.parse().map_err(|_| err())?;
        let mb = match unit {
            "k" | "K" => n.div_ceil(1024),
            "m" | "M" => n,
            "g" | "G" => n.checked_mul(1024).ok_or_else(err)?,
            "t" | "T" => n.checked_mul(1024 * 1024).ok_or_else(err)?,
            "p" | "P" => n.checked_mul(1024 * 1024 * 1024).ok_or_else(err)?,
            _ => return Err(err()),
        };
        Ok(MemoryMb(mb))
    }

    /// Returns the size in the form the JVM and Spark accept (`2g` when whole gibibytes, else `512m`).
    pub fn to_spark(self) -> String {
        if self.0 > 0 && self.0.is_multiple_of(1024) {
            format!("{}g", self.0 / 1024)
        } else {
            format!("{}m", self.0)
        }
    }
}

impl fmt::Display for MemoryMb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1024 && self.0.is_multiple_of(1024) {
            write!(f, "{} GiB", self.0 / 1024)
        } else if self.0 >= 1024 {
            write!(f, "{:.1} GiB", self.0 as f64 / 1024.0)
        } else {
            write!(f, "{} MiB", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_memory_forms() {
        assert_eq!(MemoryMb::parse("2g"), Ok(MemoryMb(2048)));
        assert_eq!(MemoryMb::parse("2G"), Ok(MemoryMb(2048)));
        assert_eq!(MemoryMb::parse("512m"), Ok(MemoryMb(512)));
        assert_eq!(MemoryMb::parse("1t"), Ok(MemoryMb(1024 * 1024)));
        assert_eq!(MemoryMb::parse("1536k"), Ok(MemoryMb(2)));
    }

    #[test]
    fn rejects_other_forms() {
        for bad in ["", "g", "2", "2gb", "2.5g", "-1g", " 2g", "2 g"] {
            assert!(MemoryMb::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn regression_11_a_multibyte_last_character_is_rejected_without_a_panic() {
        // Found by the YAML fuzz test (issue 11): `split_at` landed inside `é` and panicked,
        // in the spec loader and in Livy's `driverMemory` alike.
        for bad in ["1é", "é", "2\u{10ffff}", "12g\u{fffd}"] {
            assert!(MemoryMb::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn renders_for_spark() {
        assert_eq!(MemoryMb(2048).to_spark(), "2g");
        assert_eq!(MemoryMb(1536).to_spark(), "1536m");
    }
}
