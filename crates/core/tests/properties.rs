//! Property tests of the domain's parsers (`make fuzz` runs them longer):
//! any input is answered with a value or a named error, never a panic, and what is
//! accepted is exactly what the contract says.

use moodwire_core::{InputError, Keyword, Limit};
use proptest::prelude::*;

proptest! {
    #[test]
    fn a_keyword_is_accepted_exactly_when_trimmed_it_is_1_to_100_chars(raw in any::<String>()) {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        match Keyword::parse(&raw) {
            Ok(keyword) => {
                prop_assert_eq!(keyword.as_str(), trimmed);
                prop_assert!((1..=Keyword::MAX_CHARS).contains(&chars));
            }
            Err(InputError::BlankKeyword) => prop_assert_eq!(chars, 0),
            Err(InputError::KeywordTooLong { got, .. }) => {
                prop_assert_eq!(got, chars);
                prop_assert!(chars > Keyword::MAX_CHARS);
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn normalization_is_canonical(raw in "\\PC{0,40}( \\PC{0,40}){0,3}") {
        if let Ok(keyword) = Keyword::parse(&raw) {
            let normalized = keyword.normalized();
            prop_assert_eq!(normalized.trim(), normalized.as_str());
            prop_assert!(!normalized.contains("  "));
            prop_assert!(normalized.split(' ').all(|w| !w.is_empty() && !w.contains(char::is_whitespace)));
            prop_assert_eq!(normalized.to_lowercase(), normalized.clone());
            // Normalizing again changes nothing (when the lowercase form still fits).
            if let Ok(again) = Keyword::parse(&normalized) {
                prop_assert_eq!(again.normalized(), normalized);
            }
        }
    }

    #[test]
    fn case_and_spacing_do_not_make_a_different_question(
        words in prop::collection::vec("[A-Za-z0-9#+.]{1,12}", 1..5),
        gaps in prop::collection::vec("[ \t]{1,3}", 4),
        upper in any::<bool>(),
    ) {
        let plain = words.join(" ");
        let mut messy = String::from(gaps[0].as_str());
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                messy.push_str(&gaps[i % gaps.len()]);
            }
            messy.push_str(&if upper { word.to_uppercase() } else { word.to_lowercase() });
        }
        prop_assert_eq!(
            Keyword::parse(&messy).unwrap().normalized(),
            Keyword::parse(&plain).unwrap().normalized()
        );
    }

    #[test]
    fn a_limit_is_accepted_exactly_from_1_to_1000(raw in any::<i64>()) {
        match Limit::parse(raw) {
            Ok(limit) => {
                prop_assert!((1..=1000).contains(&raw));
                prop_assert_eq!(limit.get() as i64, raw);
            }
            Err(e) => {
                prop_assert!(!(1..=1000).contains(&raw));
                prop_assert_eq!(e.field(), "limit");
            }
        }
    }
}
