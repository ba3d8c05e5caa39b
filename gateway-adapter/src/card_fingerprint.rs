//! N8: a card's fingerprint, the same for every tokenization of one card number, so the network
//! rules count a card across orders even though FlexFactor gives every tokenization a new token.
//!
//! HMAC-SHA-256 of the card number under a key derived from the setup's first FlexFactor
//! gateway's HMACSigningKey (by gateway id): stable across restarts and across processes with
//! the same setup, and useless without the key (a plain hash of a card number could be reversed
//! by trying every number of a BIN). Only the fingerprint is kept; the number never is (F2).

use hmac::{Hmac, Mac};
use salvage_domain::Setup;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Fingerprints card numbers.
pub struct CardFingerprinter {
    key: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for CardFingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardFingerprinter").finish_non_exhaustive()
    }
}

impl CardFingerprinter {
    /// The fingerprinter of `setup`; none without a FlexFactor gateway (then no card number can
    /// be tokenized either).
    pub fn from_setup(setup: &Setup) -> Option<CardFingerprinter> {
        let gateway = setup.flexfactor_gateways().min_by(|a, b| a.id.cmp(&b.id))?;
        let secret = gateway.credentials.hmac_signing_key.expose_secret();
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
        mac.update(b"salvage card fingerprint v1");
        let key = mac.finalize().into_bytes().to_vec();
        Some(CardFingerprinter {
            key: SecretBox::new(Box::new(key)),
        })
    }

    /// The fingerprint of card number `number` (digits only are read).
    pub fn fingerprint(&self, number: &str) -> String {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        // A key of any length is accepted by HMAC; the fallback is never taken.
        let Ok(mut mac) = HmacSha256::new_from_slice(self.key.expose_secret()) else {
            return String::new();
        };
        mac.update(digits.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let hex: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("fp_{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(key: &str) -> Setup {
        let mut s = match Setup::from_toml_str(include_str!("../../examples/salvage.toml")) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        for g in &mut s.gateways {
            if let salvage_domain::setup::Gateway::FlexFactor(ff) = g {
                ff.credentials
                    .set("hmac_signing_key", secrecy::SecretString::from(key));
            }
        }
        s
    }

    #[test]
    fn n8_one_card_one_fingerprint_another_card_another() {
        let f = CardFingerprinter::from_setup(&setup("a2V5LW9uZQ==")).unwrap();
        let a = f.fingerprint("4111 1111 1111 1111");
        assert_eq!(a, f.fingerprint("4111111111111111"));
        assert_ne!(a, f.fingerprint("4111111111111112"));
        assert!(a.starts_with("fp_") && a.len() == 35, "{a}");
        assert!(!a.contains("4111"));
        // Another key: another fingerprint (useless without the key).
        let g = CardFingerprinter::from_setup(&setup("a2V5LXR3bw==")).unwrap();
        assert_ne!(a, g.fingerprint("4111111111111111"));
    }

    #[test]
    fn without_a_flexfactor_gateway_there_is_no_fingerprinter() {
        assert!(CardFingerprinter::from_setup(&Setup::default()).is_none());
    }
}
