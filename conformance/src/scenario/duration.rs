//! The durations of the scenario files (`advance`, `date_offset`).

/// Parses `1d`, `2h`, `30m`, `45s`, `1d1h30m`, `-10m` (a sign, then number-unit pairs).
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    if body.is_empty() {
        return Err(format!(
            "{text:?}: a duration such as \"1d\", \"2h\", \"1d1m\", \"30s\""
        ));
    }
    let mut total = chrono::Duration::zero();
    let mut digits = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: a number before each unit"))?;
        digits.clear();
        let part = match c {
            'd' => chrono::Duration::try_days(n),
            'h' => chrono::Duration::try_hours(n),
            'm' => chrono::Duration::try_minutes(n),
            's' => chrono::Duration::try_seconds(n),
            other => return Err(format!("{text:?}: unknown unit {other:?} (d, h, m, s)")),
        }
        .ok_or_else(|| format!("{text:?}: too large"))?;
        total = total
            .checked_add(&part)
            .ok_or_else(|| format!("{text:?}: too large"))?;
    }
    if !digits.is_empty() {
        return Err(format!("{text:?}: a unit after {digits} (d, h, m, s)"));
    }
    Ok(if negative { -total } else { total })
}

/// `1d1h` for reports.
pub fn format_duration(d: chrono::Duration) -> String {
    let mut s = d.num_seconds();
    let mut out = String::new();
    if s < 0 {
        out.push('-');
        s = -s;
    }
    for (unit, n) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if s >= n {
            out.push_str(&format!("{}{unit}", s / n));
            s %= n;
        }
    }
    if out.is_empty() || out == "-" {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("1d1m").unwrap(),
            chrono::Duration::minutes(24 * 60 + 1)
        );
        assert_eq!(
            parse_duration("-10m").unwrap(),
            chrono::Duration::minutes(-10)
        );
        assert_eq!(
            parse_duration("90s").unwrap(),
            chrono::Duration::seconds(90)
        );
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(
            format_duration(chrono::Duration::minutes(24 * 60 + 1)),
            "1d1m"
        );
    }
}
