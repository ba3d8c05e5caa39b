//! PostgreSQL: a commit's single-row inserts bound as column arrays. The rows of one insert
//! (every delivery's nonce of a group commit, say) become one `INSERT ... SELECT * FROM
//! UNNEST($1::text[], $2::bigint[], ...)`, so that the statement's text is the same whatever the
//! number of rows: PostgreSQL parses and plans it once per connection and keeps the plan,
//! instead of planning a statement of a new length for each batch (measured in
//! docs/benchmarks.md, issue 18: the planning of multi-row statements cost as much as running
//! them). The events are written the same way.

use cqrs_es::persist::SerializedEvent;

use super::guarded_commit::{single_row, Bind, Write};

/// One column's values, one per row.
#[derive(Debug, PartialEq)]
pub enum Column<'a> {
    Text(Vec<Option<&'a str>>),
    Int(Vec<Option<i64>>),
    /// JSON, bound as `jsonb[]` and stored in a `json` column as before (the same text).
    Json(Vec<&'a serde_json::Value>),
}

impl<'a> Column<'a> {
    fn of(b: &'a Bind) -> Self {
        let mut c = match b {
            Bind::Text(_) | Bind::OptText(_) => Column::Text(Vec::new()),
            Bind::Int(_) | Bind::OptInt(_) => Column::Int(Vec::new()),
        };
        c.push(b);
        c
    }

    /// Appends a row's value; false (and nothing appended) when it is of another kind.
    fn push(&mut self, b: &'a Bind) -> bool {
        match (self, b) {
            (Column::Text(v), Bind::Text(s)) => v.push(Some(s.as_str())),
            (Column::Text(v), Bind::OptText(s)) => v.push(s.as_deref()),
            (Column::Int(v), Bind::Int(i)) => v.push(Some(*i)),
            (Column::Int(v), Bind::OptInt(i)) => v.push(*i),
            _ => return false,
        }
        true
    }

    fn accepts(&self, b: &Bind) -> bool {
        matches!(
            (self, b),
            (Column::Text(_), Bind::Text(_) | Bind::OptText(_))
                | (Column::Int(_), Bind::Int(_) | Bind::OptInt(_))
        )
    }

    fn array_type(&self) -> &'static str {
        match self {
            Column::Text(_) => "text[]",
            Column::Int(_) => "bigint[]",
            Column::Json(_) => "jsonb[]",
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Json(v) => v.len(),
        }
    }
}

/// The rows of one single-row insert (the same statement and guard), as arrays.
#[derive(Debug)]
pub struct RowArrays<'a> {
    /// `INSERT INTO t (a, b) ` (up to the values).
    head: &'a str,
    /// What follows the values (`ON CONFLICT ...`).
    tail: &'a str,
    pub guard: Option<&'static str>,
    pub columns: Vec<Column<'a>>,
}

impl<'a> RowArrays<'a> {
    /// The array type of the first column (what the guard counts).
    pub fn first_type(&self) -> &'static str {
        self.columns
            .first()
            .map(Column::array_type)
            .unwrap_or("text[]")
    }

    /// The rows' count.
    #[cfg(test)]
    pub fn rows(&self) -> usize {
        self.columns.first().map(Column::len).unwrap_or(0)
    }

    /// The statement, its placeholders numbered from `offset + 1`, one per column.
    pub fn sql(&self, offset: usize) -> String {
        let mut sql = String::with_capacity(self.head.len() + self.tail.len() + 64);
        sql.push_str(self.head);
        sql.push_str("SELECT * FROM UNNEST(");
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(offset + i + 1).to_string());
            sql.push_str("::");
            sql.push_str(c.array_type());
        }
        sql.push(')');
        sql.push_str(self.tail);
        sql
    }

    /// The events as rows of the `events` table (see `guarded_commit`'s insert).
    pub fn events(events: &'a [SerializedEvent]) -> Self {
        let text = |f: fn(&'a SerializedEvent) -> &'a str| {
            Column::Text(events.iter().map(|e| Some(f(e))).collect())
        };
        RowArrays {
            head: "INSERT INTO events \
                   (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
            tail: "",
            guard: None,
            columns: vec![
                text(|e| e.aggregate_type.as_str()),
                text(|e| e.aggregate_id.as_str()),
                Column::Int(
                    events
                        .iter()
                        .map(|e| Some(i64::try_from(e.sequence).unwrap_or(i64::MAX)))
                        .collect(),
                ),
                text(|e| e.event_type.as_str()),
                text(|e| e.event_version.as_str()),
                Column::Json(events.iter().map(|e| &e.payload).collect()),
                Column::Json(events.iter().map(|e| &e.metadata).collect()),
            ],
        }
    }

    /// Whether `w` is a row of this insert.
    fn takes(&self, w: &Write, head: &str, tail: &str) -> bool {
        self.head == head
            && self.tail == tail
            && self.guard == w.guard
            && w.rows == 1
            && self.columns.len() == w.binds.len()
            && self.columns.iter().zip(&w.binds).all(|(c, b)| c.accepts(b))
    }
}

/// The single-row inserts of `writes` grouped into arrays (in the order each statement first
/// appears), and the other writes as they are.
pub fn group(writes: &[Write]) -> (Vec<RowArrays<'_>>, Vec<&Write>) {
    let mut arrays: Vec<RowArrays<'_>> = Vec::new();
    let mut others = Vec::new();
    for w in writes {
        let Some((values_head, _, tail)) = single_row(&w.sql).filter(|_| w.rows == 1) else {
            others.push(w);
            continue;
        };
        let Some(head) = values_head.strip_suffix("VALUES ") else {
            others.push(w);
            continue;
        };
        match arrays.iter_mut().find(|a| a.takes(w, head, tail)) {
            Some(a) => {
                for (c, b) in a.columns.iter_mut().zip(&w.binds) {
                    c.push(b);
                }
            }
            None if !w.binds.is_empty() => arrays.push(RowArrays {
                head,
                tail,
                guard: w.guard,
                columns: w.binds.iter().map(Column::of).collect(),
            }),
            None => others.push(w),
        }
    }
    (arrays, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "INSERT INTO n (nonce, at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING";

    fn nonce(n: &str, at: i64, guard: Option<&'static str>) -> Write {
        Write {
            sql: NONCE.into(),
            binds: vec![Bind::Text(n.into()), Bind::Int(at)],
            guard,
            rows: 1,
        }
    }

    #[test]
    fn rows_of_one_insert_become_one_statement_whose_text_does_not_depend_on_their_number() {
        let one = [nonce("a", 1, Some("replayed"))];
        let three = [
            nonce("a", 1, Some("replayed")),
            nonce("b", 2, Some("replayed")),
            nonce("c", 3, Some("replayed")),
        ];
        let (a1, o1) = group(&one);
        let (a3, o3) = group(&three);
        assert!(o1.is_empty() && o3.is_empty());
        assert_eq!(a1.len(), 1);
        assert_eq!(a3.len(), 1);
        assert_eq!(a1[0].sql(4), a3[0].sql(4));
        assert_eq!(
            a3[0].sql(4),
            "INSERT INTO n (nonce, at) SELECT * FROM UNNEST($5::text[], $6::bigint[]) ON CONFLICT (nonce) DO NOTHING"
        );
        assert_eq!(a3[0].rows(), 3);
        assert_eq!(
            a3[0].columns,
            vec![
                Column::Text(vec![Some("a"), Some("b"), Some("c")]),
                Column::Int(vec![Some(1), Some(2), Some(3)])
            ]
        );
    }

    #[test]
    fn different_guards_kinds_and_statements_stay_apart() {
        let optional = Write {
            sql: NONCE.into(),
            binds: vec![Bind::OptText(None), Bind::OptInt(Some(4))],
            guard: Some("replayed"),
            rows: 1,
        };
        let wrong_kind = Write {
            sql: NONCE.into(),
            binds: vec![Bind::Int(1), Bind::Int(2)],
            guard: Some("replayed"),
            rows: 1,
        };
        let update = Write {
            sql: "UPDATE t SET x = $1".into(),
            binds: vec![Bind::Int(1)],
            guard: None,
            rows: 1,
        };
        let writes = [
            nonce("a", 1, Some("replayed")),
            nonce("b", 2, None),
            optional,
            wrong_kind,
            update,
        ];
        let (arrays, others) = group(&writes);
        assert_eq!(arrays.len(), 3, "{arrays:?}");
        assert_eq!(
            arrays[0].columns,
            vec![
                Column::Text(vec![Some("a"), None]),
                Column::Int(vec![Some(1), Some(4)])
            ]
        );
        assert_eq!(arrays[1].guard, None);
        assert_eq!(
            arrays[2].columns,
            vec![Column::Int(vec![Some(1)]), Column::Int(vec![Some(2)])]
        );
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].sql, "UPDATE t SET x = $1");
    }

    #[test]
    fn events_are_seven_arrays() {
        let e = SerializedEvent {
            aggregate_id: "o-1".into(),
            sequence: 3,
            aggregate_type: "Order".into(),
            event_type: "Placed".into(),
            event_version: "1".into(),
            payload: serde_json::json!({"a": 1}),
            metadata: serde_json::json!({}),
        };
        let events = [e.clone(), e];
        let rows = RowArrays::events(&events);
        assert_eq!(rows.rows(), 2);
        assert_eq!(
            rows.sql(0),
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])"
        );
    }
}
