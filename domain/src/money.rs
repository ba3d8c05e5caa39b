//! Money: integer minor units with an ISO-4217 currency. Never floats.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO-4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Why a currency code or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency code {0:?} is not three upper-case letters (ISO 4217, for example \"USD\")")]
    BadCurrency(String),
    #[error("amount {0} is negative; amounts are non-negative integer minor units")]
    Negative(i64),
    #[error("cannot combine {0} and {1}: different currencies")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflow")]
    Overflow,
}

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses a code such as `USD`.
    pub fn new(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::BadCurrency(code.to_string()));
        }
        Ok(Currency([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Number of decimal places of the minor unit (ISO 4217). Two unless listed.
    pub fn minor_exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::new(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::new(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money in integer minor units (cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    /// A non-negative amount in minor units.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor < 0 {
            return Err(MoneyError::Negative(amount_minor));
        }
        Ok(Money {
            amount_minor,
            currency,
        })
    }

    pub fn zero(currency: Currency) -> Self {
        Money {
            amount_minor: 0,
            currency,
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let amount_minor = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount_minor,
            currency: self.currency,
        })
    }

    /// The amount as a decimal string in major units, exact (`1999` USD is `"19.99"`).
    /// FlexFactor's refund call takes dollars this way (F4).
    pub fn to_decimal_string(&self) -> String {
        let exp = self.currency.minor_exponent();
        if exp == 0 {
            return self.amount_minor.to_string();
        }
        let div = 10_i64.pow(exp);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let div = div.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = exp as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currency_must_be_three_upper_case_letters() {
        assert!(Currency::new("USD").is_ok());
        assert!(Currency::new("usd").is_err());
        assert!(Currency::new("US").is_err());
        assert!(Currency::new("USDX").is_err());
        assert!(Currency::new("U$D").is_err());
    }

    #[test]
    fn f4_decimal_rendering_is_exact() {
        let usd = |m| Money::new(m, Currency::USD).unwrap();
        assert_eq!(usd(1999).to_decimal_string(), "19.99");
        assert_eq!(usd(5).to_decimal_string(), "0.05");
        assert_eq!(usd(100).to_decimal_string(), "1.00");
        let jpy = Money::new(500, Currency::new("JPY").unwrap()).unwrap();
        assert_eq!(jpy.to_decimal_string(), "500");
        let kwd = Money::new(1234, Currency::new("KWD").unwrap()).unwrap();
        assert_eq!(kwd.to_decimal_string(), "1.234");
    }

    #[test]
    fn negative_amounts_and_mixed_currencies_are_refused() {
        assert_eq!(Money::new(-1, Currency::USD), Err(MoneyError::Negative(-1)));
        let a = Money::new(1, Currency::USD).unwrap();
        let b = Money::new(1, Currency::EUR).unwrap();
        assert!(matches!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch(_, _))
        ));
    }

    proptest! {
        #[test]
        fn decimal_string_round_trips(minor in 0i64..10_000_000_000) {
            let m = Money::new(minor, Currency::USD).unwrap();
            let s = m.to_decimal_string();
            let (whole, frac) = s.split_once('.').unwrap();
            let back = whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
            prop_assert_eq!(back, minor);
        }
    }
}
