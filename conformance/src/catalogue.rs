//! The rule IDs of the rules catalogue (`shared/spec/rules.md`, and the card-network rules N1-N9
//! of `docs/rules.md`), with a short name each, in the catalogue's order. The scenario suite must
//! cover every one of them.

/// One rule of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable ID, e.g. `C3`.
    pub id: &'static str,
    /// A short name for reports.
    pub name: &'static str,
}

const fn r(id: &'static str, name: &'static str) -> Rule {
    Rule { id, name }
}

/// Every rule, in the catalogue's order.
pub const RULES: &[Rule] = &[
    r(
        "S1",
        "six FlexFactor credentials required; secrets never shown",
    ),
    r("S2", "expiry_days 1..=21, default 21; ignored for cascades"),
    r("S3", "FlexFactor never on a campaign product"),
    r("S4", "FlexFactor never in an ATRI gateway profile"),
    r(
        "S5",
        "FlexFactor allowed in cascade profiles (direct or ATRI)",
    ),
    r(
        "S6",
        "recycle: FlexFactor only on re-attempts 4-6, 7-9 or final",
    ),
    r("S7", "cascade_all and include_chargebacks off by default"),
    r("S8", "a subscription never bills on FlexFactor"),
    r(
        "D1",
        "declines record gateway, code, message, verdict, advice",
    ),
    r(
        "D2",
        "decline mappings: scope, order type, contained-in, first wins",
    ),
    r("D3", "only (effective) soft declines go to FlexFactor"),
    r("D4", "hard-declined rebill: Recycle Failed at once"),
    r("C1", "soft-declined sale follows its cascade route"),
    r(
        "C2",
        "cascade_all: every soft decline straight to FlexFactor",
    ),
    r("C3", "no cascade to FlexFactor without ip_address"),
    r("C4", "no cascade on a Single Transaction campaign"),
    r(
        "C5",
        "cascade is one CIT /evaluate; unknown outcome cancelled",
    ),
    r("C6", "the answer to a cascaded order is final"),
    r(
        "R1",
        "rerun names the FlexFactor gateway, never an ATRI profile",
    ),
    r(
        "R2",
        "rerun is an async MIT with expiry; order salvage-pending",
    ),
    r("R3", "only effective-soft declines are rerun"),
    r("R4", "new sales with recurring products may be rerun"),
    r(
        "R5",
        "no rerun of pending/complete/salvaged; repeat is idempotent",
    ),
    r(
        "Y1",
        "soft-declined rebill enters recycle billing; waits chain",
    ),
    r(
        "Y2",
        "regular re-attempts on the billing gateway; approval advances",
    ),
    r(
        "Y3",
        "first FlexFactor slot: one MIT submission, later slots unused",
    ),
    r(
        "Y4",
        "all re-attempts declined, no FlexFactor slot: Recycle Failed",
    ),
    r("O1", "new sale success: Complete and fulfilled"),
    r("O2", "new sale failure: Declined"),
    r(
        "O3",
        "trial completion failure: status unchanged, failure recorded",
    ),
    r(
        "O4",
        "recurring success: one cycle, fulfilled, declining gateway",
    ),
    r("O5", "recurring failure: Recycle Failed"),
    r(
        "O6",
        "salvaged new sale: bills on the declining gateway, card number",
    ),
    r("O7", "a result is applied at most once"),
    r(
        "O8",
        "expired pending salvage is reconciled by GET /orders/{id}",
    ),
    r(
        "K1",
        "include_chargebacks: chargeback marks the order, CRM told",
    ),
    r("K2", "without it: acknowledged, recorded as ignored"),
    r("K3", "order.refunded marks the salvaged order Refunded"),
    r(
        "W1",
        "webhook signature and content hash verified, else 401",
    ),
    r("W2", "stale date or replayed nonce refused"),
    r("W3", "2xx only once stored"),
    r("W4", "verified delivery for an unknown order kept"),
    r("W5", "oversized or malformed bodies: 4xx, nothing changed"),
    r("F1", "token reused until expiry; one refresh on 401"),
    r("F2", "cards tokenized; no card number or CVV kept"),
    r(
        "F3",
        "idempotency key fixed by (order, attempt); unknown reconciled",
    ),
    r("F4", "cents to /evaluate and /capture; refunds in dollars"),
    r("F5", "case-insensitive names; unknown status kept as such"),
    r("N1", "Visa category 1: the card is never reattempted"),
    r("N2", "Visa: at most 15 reattempts of a card in 30 days"),
    r(
        "N3",
        "Mastercard MAC 03/21/99: none in 30 days; MAC 01: none",
    ),
    r(
        "N4",
        "Mastercard MAC 24-30: wait the advised time (cascade: blocked)",
    ),
    r("N5", "Mastercard: at most 35 attempts on a card in 30 days"),
    r(
        "N6",
        "no category given: per-processor code table; unknown is 4",
    ),
    r(
        "N7",
        "a forbidden attempt is recorded with its reason, not made",
    ),
    r(
        "N8",
        "counts from the event history of every order and subscription",
    ),
    r(
        "N9",
        "hand-overs to FlexFactor obey N1 and N3 by default; configurable",
    ),
];

/// The rule with this ID.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// True when `filter` selects `id`: the exact ID (`C3`) or its group letter (`C`),
/// case-insensitively.
pub fn selects(filter: &str, id: &str) -> bool {
    let f = filter.trim();
    f.eq_ignore_ascii_case(id) || (f.len() == 1 && id.len() > 1 && id[..1].eq_ignore_ascii_case(f))
}

/// True when `filter` names a rule of the catalogue or a group letter (for `--only`).
pub fn is_filter(filter: &str) -> bool {
    let f = filter.trim();
    find(&f.to_ascii_uppercase()).is_some()
        || (f.len() == 1 && RULES.iter().any(|r| selects(f, r.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_every_group_complete() {
        let expect = [
            ("S", 8),
            ("D", 4),
            ("C", 6),
            ("R", 5),
            ("Y", 4),
            ("O", 8),
            ("K", 3),
            ("W", 5),
            ("F", 5),
            ("N", 9),
        ];
        for (group, n) in expect {
            for i in 1..=n {
                let id = format!("{group}{i}");
                assert!(find(&id).is_some(), "{id} missing");
            }
        }
        assert_eq!(RULES.len(), 57);
    }

    #[test]
    fn filters_select_ids_and_groups() {
        assert!(selects("C3", "C3"));
        assert!(selects("c3", "C3"));
        assert!(selects("C", "C3"));
        assert!(!selects("C3", "C4"));
        assert!(!selects("C", "O3"));
        assert!(is_filter("c3") && is_filter("K") && !is_filter("Z9") && !is_filter("CC"));
    }
}
