//! Which card network a card belongs to, from its BIN.

use serde::{Deserialize, Serialize};

/// The networks whose retry rules Salvage enforces, and every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardNetwork {
    Visa,
    Mastercard,
    /// American Express, Discover and the rest: no retry rule of Visa's or Mastercard's applies.
    Other,
}

impl CardNetwork {
    /// The network of a card from its BIN (its first six or eight digits): Visa starts with 4,
    /// Mastercard with 51-55 or 2221-2720.
    pub fn from_bin(bin: &str) -> CardNetwork {
        let digits: String = bin.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.starts_with('4') {
            return CardNetwork::Visa;
        }
        let two: u32 = digits.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
        let four: u32 = digits.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
        if (51..=55).contains(&two) || (2221..=2720).contains(&four) {
            return CardNetwork::Mastercard;
        }
        CardNetwork::Other
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CardNetwork::Visa => "visa",
            CardNetwork::Mastercard => "mastercard",
            CardNetwork::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_follow_the_bin_ranges() {
        assert_eq!(CardNetwork::from_bin("411111"), CardNetwork::Visa);
        assert_eq!(CardNetwork::from_bin("555555"), CardNetwork::Mastercard);
        assert_eq!(CardNetwork::from_bin("510000"), CardNetwork::Mastercard);
        assert_eq!(CardNetwork::from_bin("222100"), CardNetwork::Mastercard);
        assert_eq!(CardNetwork::from_bin("272099"), CardNetwork::Mastercard);
        assert_eq!(CardNetwork::from_bin("272100"), CardNetwork::Other);
        assert_eq!(CardNetwork::from_bin("378282"), CardNetwork::Other);
        assert_eq!(CardNetwork::from_bin("601111"), CardNetwork::Other);
        assert_eq!(CardNetwork::from_bin(""), CardNetwork::Other);
    }
}
