//! SQLite binds a numbered placeholder (`$7`) by looking its number up in a list, one step per
//! placeholder before it, so a statement of n numbered placeholders costs n²/2 steps to bind
//! (sqlx asks each one's name); the multi-row statements of a batch have hundreds to thousands.
//! Anonymous placeholders (`?`) bind in order at no such cost. The statements are written once
//! for both databases with `$N`; on SQLite, those whose placeholders appear in order, each once,
//! are run with `?` instead.

use std::borrow::Cow;

/// `sql` with `$1, $2, ... $n` replaced by `?` when they appear in that order, each once (the
/// same statement, bound the same way); otherwise `sql` unchanged.
pub fn anonymous(sql: &str) -> Cow<'_, str> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1usize;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let digits = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits {
            // A `$` that is no placeholder: leave the statement as it is.
            return Cow::Borrowed(sql);
        }
        match sql[digits..i].parse::<usize>() {
            Ok(n) if n == expected => expected += 1,
            _ => return Cow::Borrowed(sql),
        }
        out.push_str(&sql[copied..start]);
        out.push('?');
        copied = i;
    }
    if expected == 1 {
        return Cow::Borrowed(sql);
    }
    out.push_str(&sql[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_placeholders_become_anonymous() {
        assert_eq!(
            anonymous("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            anonymous("SELECT x FROM t WHERE a = $1 AND b IN ($2,$3)"),
            "SELECT x FROM t WHERE a = ? AND b IN (?,?)"
        );
    }

    #[test]
    fn anything_else_is_left_as_written() {
        for sql in [
            "SELECT 1",
            "UPDATE t SET a = $2 WHERE b = $1",
            "SELECT $1, $1",
            "SELECT $1, $3",
            "SELECT '$' || $1",
        ] {
            assert!(
                matches!(anonymous(sql), Cow::Borrowed(s) if s == sql),
                "{sql}"
            );
        }
    }

    #[test]
    fn the_tenth_placeholder_is_not_read_as_the_first() {
        let sql: String = (1..=12)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(anonymous(&sql), ["?"; 12].join(","));
    }
}
