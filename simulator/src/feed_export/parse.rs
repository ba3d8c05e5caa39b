//! Reading a saved feed: pages, single events (JSON Lines), or arrays of either.

use salvage_gateway::feed::{FeedEvent, FeedPage};
use serde_json::Value;

use super::error::FeedExportError;

/// Reads saved feed events. The text may hold, one after the other (whitespace or newlines
/// between them): feed pages as `GET /v1/events` answers them (`{"events": [...],
/// "next_after": N}`), single feed events (JSON Lines), or JSON arrays of either. Events are
/// returned in the order they appear.
pub fn parse_feed(text: &str) -> Result<Vec<FeedEvent>, FeedExportError> {
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for (i, value) in stream.enumerate() {
        let value = value.map_err(|e| {
            FeedExportError::NotAFeed(format!(
                "JSON value {} (line {}, column {}): {e}",
                i + 1,
                e.line(),
                e.column()
            ))
        })?;
        collect(value, &format!("JSON value {}", i + 1), &mut out)?;
    }
    Ok(out)
}

fn collect(value: Value, place: &str, out: &mut Vec<FeedEvent>) -> Result<(), FeedExportError> {
    match value {
        Value::Array(items) => {
            for (j, item) in items.into_iter().enumerate() {
                collect(item, &format!("{place}, element {j}"), out)?;
            }
            Ok(())
        }
        Value::Object(map) if map.contains_key("events") => {
            let page: FeedPage = serde_json::from_value(Value::Object(map))
                .map_err(|e| FeedExportError::NotAFeed(format!("{place}: not a feed page: {e}")))?;
            out.extend(page.events);
            Ok(())
        }
        Value::Object(map) => {
            let event: FeedEvent = serde_json::from_value(Value::Object(map)).map_err(|e| {
                FeedExportError::NotAFeed(format!("{place}: not a feed event: {e}"))
            })?;
            out.push(event);
            Ok(())
        }
        other => Err(FeedExportError::NotAFeed(format!(
            "{place}: expected a feed page, a feed event or an array of them, found {}",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "something else",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed_export::test_support::{feed_of_text, stories};

    #[test]
    fn saved_feeds_are_read_as_pages_arrays_or_json_lines() {
        let feed = feed_of_text(&stories());
        let (a, b) = feed.split_at(10);
        let page = |events: &[FeedEvent], next: i64| {
            serde_json::to_string(&FeedPage {
                events: events.to_vec(),
                next_after: next,
            })
            .unwrap()
        };
        let pages = format!("{}\n{}\n", page(a, 10), page(b, feed.len() as i64));
        assert_eq!(parse_feed(&pages).unwrap(), feed);
        let array = serde_json::to_string_pretty(&feed).unwrap();
        assert_eq!(parse_feed(&array).unwrap(), feed);
        let jsonl: String = feed
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        assert_eq!(parse_feed(&jsonl).unwrap(), feed);
        assert!(parse_feed("").unwrap().is_empty());
        let e = parse_feed("42").unwrap_err().to_string();
        assert!(e.contains("JSON value 1: expected a feed page"), "{e}");
        let e = parse_feed("{\"events\": 3}").unwrap_err().to_string();
        assert!(e.contains("not a feed page"), "{e}");
        let e = parse_feed("{\"position\": 1} {").unwrap_err().to_string();
        assert!(e.contains("not a feed event"), "{e}");
    }
}
