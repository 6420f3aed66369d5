//! Property tests of the `POST /analyze` body parser (`make fuzz` runs them longer):
//! any bytes get a value or an error naming its code, never a panic; well-formed
//! bodies are parsed exactly.

use moodwire_server::{AnalyzeRequest, ApiError};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_bytes_get_an_answer(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = AnalyzeRequest::parse(&body);
    }

    #[test]
    fn any_json_gets_an_answer(value in any_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        if let Err(e) = AnalyzeRequest::parse(&body) {
            // Every refusal is one of the documented 4xx answers.
            prop_assert!(matches!(
                e,
                ApiError::Input(_)
                    | ApiError::InvalidJson(_)
                    | ApiError::NotAnObject
                    | ApiError::MissingField(_)
                    | ApiError::WrongType { .. }
                    | ApiError::UnknownField(_)
            ), "{e:?}");
        }
    }

    #[test]
    fn well_formed_bodies_are_parsed_exactly(
        keyword in "[a-zA-Z0-9 ]{0,120}",
        limit in prop::option::of(-5i64..1200),
        plot in prop::option::of(any::<bool>()),
        examples in prop::option::of(-3i64..10),
        subreddits in prop::option::of(prop::collection::vec("[A-Za-z0-9_]{1,23}|[a-z/ -]{0,5}", 0..13)),
        window in prop::option::of(prop::sample::select(vec!["hour", "day", "week", "month", "year", "all", "Week", "fortnight", ""])),
    ) {
        let mut body = Map::new();
        body.insert("keyword".into(), json!(keyword));
        if let Some(limit) = limit {
            body.insert("limit".into(), json!(limit));
        }
        if let Some(plot) = plot {
            body.insert("return_plot".into(), json!(plot));
        }
        if let Some(examples) = examples {
            body.insert("examples".into(), json!(examples));
        }
        if let Some(subreddits) = &subreddits {
            body.insert("subreddits".into(), json!(subreddits));
        }
        if let Some(window) = window {
            body.insert("window".into(), json!(window));
        }
        let parsed = AnalyzeRequest::parse(&serde_json::to_vec(&Value::Object(body)).unwrap());
        let trimmed = keyword.trim();
        let keyword_ok = !trimmed.is_empty() && trimmed.chars().count() <= 100;
        let limit_ok = limit.is_none_or(|l| (1..=1000).contains(&l));
        let examples_ok = examples.is_none_or(|n| (0..=5).contains(&n));
        // Reddit's rule for a name; names compared in lowercase, each counted once.
        let name_ok = |n: &String| {
            (2..=21).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let distinct = |names: &Vec<String>| {
            names.iter().map(|n| n.to_lowercase()).collect::<std::collections::BTreeSet<_>>()
        };
        let subreddits_ok = subreddits
            .as_ref()
            .is_none_or(|names| names.iter().all(name_ok) && distinct(names).len() <= 10);
        let window_ok = window.is_none_or(|w| ["hour", "day", "week", "month", "year", "all"].contains(&w));
        let all_ok = keyword_ok && limit_ok && examples_ok && subreddits_ok && window_ok;
        match parsed {
            Ok(request) => {
                prop_assert!(all_ok);
                let question = &request.question;
                prop_assert_eq!(question.keyword.as_str(), trimmed);
                prop_assert_eq!(question.limit.get() as i64, limit.unwrap_or(250));
                let expected: Vec<String> = subreddits.as_ref().map(distinct).unwrap_or_default().into_iter().collect();
                prop_assert_eq!(question.scope.subreddits.names(), &expected[..]);
                prop_assert_eq!(question.scope.window.as_str(), window.unwrap_or("all"));
                prop_assert_eq!(request.return_plot, plot.unwrap_or(true));
                prop_assert_eq!(request.examples.get() as i64, examples.unwrap_or(0));
            }
            Err(ApiError::Input(e)) => {
                prop_assert!(!all_ok);
                prop_assert!(["keyword", "limit", "examples", "subreddits", "window"].contains(&e.field()));
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}
